//! Publisher confirms, unroutable messages, and the stop.

use orderly::{Env, System};
use orderly_amqp::{ErrorKind, Publisher, PublisherSettings};
use orderly_messaging::Json;
use serde::Serialize;

use crate::support::{Vhost, unique};

#[derive(Serialize)]
struct Reading {
    n: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_returns_once_the_broker_confirmed_and_stop_refuses_new_messages() {
    let vhost = Vhost::new("pub");
    let queue = unique("readings");
    vhost.declare(&queue, "quorum").await;
    let mut system = System::builder("pub").env(Env::empty());
    let publisher = system.add(
        "publisher",
        (),
        Publisher::new(PublisherSettings::new(vhost.url(), &queue)),
    );
    let running = system.build().unwrap().start().await.unwrap();
    let handle = running.resource(publisher).unwrap();

    let publishes = (0..100).map(|n| {
        let handle = handle.clone();
        async move { handle.publish(&Json(Reading { n })).await }
    });
    for result in futures_util::future::join_all(publishes).await {
        result.unwrap();
    }
    handle
        .publish_with_id(&Json(Reading { n: 100 }), "reading-100")
        .await
        .unwrap();
    // Confirmed means stored: every message is in the queue now, persistent and identified.
    assert_eq!(vhost.ready(&queue).await, 101);
    let messages = vhost.take_all(&queue).await;
    assert!(
        messages
            .iter()
            .any(|(id, _, body)| id == "reading-100" && body == r#"{"n":100}"#)
    );
    let mut ids: Vec<_> = messages.iter().map(|(id, _, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 101, "every message has its own id");

    // No queue for this routing key: returned by the broker, an error rather than a loss.
    let mut settings = PublisherSettings::new(vhost.url(), "nowhere");
    settings.routing_key = unique("nowhere");
    let mut system = System::builder("pub2").env(Env::empty());
    let nowhere = system.add("nowhere", (), Publisher::new(settings));
    let other = system.build().unwrap().start().await.unwrap();
    let error = other
        .resource(nowhere)
        .unwrap()
        .publish(&Json(Reading { n: 0 }))
        .await
        .unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::Unroutable { .. }),
        "{error}"
    );
    assert!(error.is_rejected_by_broker());
    assert!(
        error.to_string().starts_with("nowhere: unroutable message"),
        "{error}"
    );
    assert!(other.stop().await.is_clean());

    let report = running.stop().await;
    assert!(report.is_clean(), "{report:?}");
    let error = handle.publish(&Json(Reading { n: 1 })).await.unwrap_err();
    assert!(error.is_stopping(), "{error}");
    assert_eq!(
        error.to_string(),
        "publisher: the publisher is stopping and takes no new messages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_waits_for_pending_confirms() {
    let vhost = Vhost::new("flush");
    let queue = unique("readings");
    vhost.declare(&queue, "classic").await;
    let mut system = System::builder("flush").env(Env::empty());
    let publisher = system.add(
        "publisher",
        (),
        Publisher::new(PublisherSettings::new(vhost.url(), &queue)),
    );
    let running = system.build().unwrap().start().await.unwrap();
    let handle = running.resource(publisher).unwrap();

    // Many publishes in flight, then the stop: each either was confirmed (and is in the queue)
    // or was refused as stopping; none is left unconfirmed.
    let tasks: Vec<_> = (0..2000)
        .map(|n| {
            let handle = handle.clone();
            tokio::spawn(async move { handle.publish(&Json(Reading { n })).await })
        })
        .collect();
    tokio::task::yield_now().await;
    let report = running.stop().await;
    assert!(report.is_clean(), "{report:?}");
    let mut confirmed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => confirmed += 1,
            Err(error) => assert!(error.is_stopping(), "{error}"),
        }
    }
    assert_eq!(vhost.ready(&queue).await, confirmed);
}
