//! The settings read through `orderly-config` under the documented variable names; the URL is
//! a secret, and a bad value names its variable. A consumer configured from the environment
//! consumes; one with bad variables exits 78.

use std::time::Duration;

use orderly::{Env, ExitReason, System};
use orderly_amqp::{Consumer, ConsumerSettings, Declare, PublisherSettings, QueueType};
use orderly_config::Config;
use orderly_messaging::{Delivery, HandlerError, Json};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::support::{Vhost, unique};

#[derive(Debug, Deserialize)]
struct Settings {
    orders: ConsumerSettings,
    events: PublisherSettings,
}

fn load(env: &[(&str, &str)]) -> Result<Settings, orderly_config::ConfigError> {
    Config::<Settings>::builder("APP")
        .env(Env::from_pairs(env.iter().copied()))
        .strict()
        .build()
        .load()
}

#[test]
fn reads_the_documented_variables_and_never_shows_the_url() {
    let settings = load(&[
        ("APP_ORDERS__URL", "amqp://app:hunter2@broker:5672/shop"),
        ("APP_ORDERS__QUEUE", "orders"),
        ("APP_ORDERS__QUEUE_TYPE", "classic"),
        ("APP_ORDERS__DECLARE", "check"),
        ("APP_ORDERS__PREFETCH", "8"),
        ("APP_ORDERS__MAX_DELIVERIES", "4"),
        ("APP_ORDERS__DEAD_LETTER_QUEUE", "orders.failed"),
        ("APP_ORDERS__RECONNECT_DELAY", "250ms"),
        ("APP_ORDERS__RECONNECT_MAX_DELAY", "5s"),
        ("APP_EVENTS__EXCHANGE", "events"),
        ("APP_EVENTS__ROUTING_KEY", "order.placed"),
    ])
    .unwrap();
    let orders = &settings.orders;
    assert_eq!(orders.url.expose(), "amqp://app:hunter2@broker:5672/shop");
    assert_eq!(orders.queue, "orders");
    assert_eq!(orders.queue_type, QueueType::Classic);
    assert_eq!(orders.declare, Declare::Check);
    assert_eq!((orders.prefetch, orders.max_deliveries), (8, 4));
    assert_eq!(orders.dead_letter_queue(), "orders.failed");
    assert_eq!(orders.reconnect_delay, Duration::from_millis(250));
    assert_eq!(orders.reconnect_max_delay, Duration::from_secs(5));
    assert_eq!(settings.events.exchange, "events");
    assert_eq!(settings.events.routing_key, "order.placed");
    assert!(!format!("{settings:?}").contains("hunter2"));
}

#[test]
fn a_bad_value_or_a_missing_one_names_its_variable() {
    let error = load(&[
        ("APP_ORDERS__QUEUE", "orders"),
        ("APP_ORDERS__PREFETCH", "lots"),
        ("APP_ORDERS__QUEUE_TYPE", "stream"),
        ("APP_EVENTS__ROUTING_KEY", "x"),
    ])
    .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("APP_ORDERS__PREFETCH"), "{message}");
    assert!(message.contains("APP_ORDERS__QUEUE_TYPE"), "{message}");
    let missing = load(&[("APP_EVENTS__ROUTING_KEY", "x")])
        .unwrap_err()
        .to_string();
    assert!(missing.contains("APP_ORDERS__QUEUE"), "{missing}");
}

/// The settings of a configured consumer, under the caller's prefix (`AMQP` here).
#[derive(Debug, Deserialize)]
struct App {
    amqp: ConsumerSettings,
}

/// A system with a config component reading `env` under the prefix `SHOP` and a consumer made
/// from it, which sends what it handles to `handled`.
fn configured_system(
    env: &[(&str, &str)],
    handled: mpsc::UnboundedSender<(String, u32)>,
) -> orderly::SystemBuilder {
    let mut system = System::builder("configured").env(Env::empty());
    let config = system.add(
        "config",
        (),
        Config::<App>::builder("SHOP")
            .env(Env::from_pairs(env.iter().copied()))
            .strict()
            .build(),
    );
    system.add(
        "orders",
        config.map(|app| app.amqp.clone()),
        Consumer::configured(move |settings: ConsumerSettings| {
            let handled = handled.clone();
            let handler = move |Json(n): Json<u32>, delivery: Delivery| {
                let handled = handled.clone();
                async move {
                    let _ = handled.send((delivery.id().to_owned(), n));
                    Ok::<_, HandlerError>(())
                }
            };
            (settings, handler)
        }),
    );
    system
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_configured_from_the_environment_consumes_its_queue() {
    let vhost = Vhost::new("configured");
    let queue = unique("orders");
    let url = vhost.url();
    let (tx, mut handled) = mpsc::unbounded_channel();
    let env = [
        ("SHOP_AMQP__URL", url.as_str()),
        ("SHOP_AMQP__QUEUE", queue.as_str()),
        ("SHOP_AMQP__QUEUE_TYPE", "classic"),
        ("SHOP_AMQP__PREFETCH", "2"),
        ("SHOP_AMQP__MAX_DELIVERIES", "3"),
    ];
    let running = configured_system(&env, tx)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    // The queue was declared by the consumer, with the configured type.
    vhost
        .publish(
            &queue,
            (0..5).map(|n| (format!("order-{n}"), n.to_string())),
        )
        .await;
    let mut got = Vec::new();
    while got.len() < 5 {
        let next = tokio::time::timeout(Duration::from_secs(30), handled.recv())
            .await
            .unwrap()
            .unwrap();
        got.push(next);
    }
    got.sort_by_key(|(_, n)| *n);
    let expected: Vec<_> = (0..5).map(|n| (format!("order-{n}"), n)).collect();
    assert_eq!(got, expected);
    let report = running.stop().await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(vhost.ready(&queue).await, 0);
    // Declared as configured: a classic queue (a quorum declare of it would be refused).
    assert_eq!(vhost.queue_type(&queue), "classic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_consumer_with_bad_variables_exits_78_naming_them_not_the_password() {
    // Values that do not parse: the config component names each variable.
    let (tx, _handled) = mpsc::unbounded_channel();
    let env = [
        ("SHOP_AMQP__URL", "amqp://shop:hunter2@127.0.0.1:5672/%2f"),
        ("SHOP_AMQP__QUEUE", "orders"),
        ("SHOP_AMQP__PREFETCH", "-1"),
        ("SHOP_AMQP__MAX_DELIVERIES", "often"),
    ];
    let report = configured_system(&env, tx)
        .build()
        .unwrap()
        .start()
        .await
        .err()
        .unwrap()
        .into_report();
    assert_eq!(report.exit_code, 78, "{}", report.reason);
    let message = report.reason.to_string();
    for variable in ["SHOP_AMQP__PREFETCH", "SHOP_AMQP__MAX_DELIVERIES"] {
        assert!(message.contains(variable), "{variable}: {message}");
    }
    assert!(!message.contains("hunter2"), "{message}");

    // Values that parse but the consumer refuses: its start fails, as invalid configuration,
    // naming the setting; nothing is connected.
    let (tx, _handled) = mpsc::unbounded_channel();
    let env = [
        ("SHOP_AMQP__URL", "amqp://shop:hunter2@127.0.0.1:5672/%2f"),
        ("SHOP_AMQP__QUEUE", "orders"),
        ("SHOP_AMQP__PREFETCH", "0"),
    ];
    let report = configured_system(&env, tx)
        .build()
        .unwrap()
        .start()
        .await
        .err()
        .unwrap()
        .into_report();
    assert_eq!(report.exit_code, 78, "{}", report.reason);
    let ExitReason::StartFailed { component, failure } = &report.reason else {
        panic!("not a start failure: {}", report.reason);
    };
    assert_eq!(&**component, "orders");
    assert!(failure.is_invalid_config());
    let message = failure.to_string();
    assert!(message.contains("`prefetch`"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}
