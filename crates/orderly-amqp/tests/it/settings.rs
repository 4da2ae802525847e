//! The settings read through `orderly-config` under the documented variable names; the URL is
//! a secret, and a bad value names its variable.

use std::time::Duration;

use orderly::Env;
use orderly_amqp::{ConsumerSettings, Declare, PublisherSettings, QueueType};
use orderly_config::Config;
use serde::Deserialize;

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
