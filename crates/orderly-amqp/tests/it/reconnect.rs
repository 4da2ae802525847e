//! The broker drops the connections: the consumer reconnects and resumes, reporting its
//! health on the way; the publisher reconnects on the next publish.

use std::time::Duration;

use orderly::{Env, EventKind, System};
use orderly_amqp::{Consumer, ConsumerSettings, Publisher, PublisherSettings};
use orderly_messaging::{Delivery, HandlerError, Json};
use tokio::sync::mpsc;

use crate::support::{Vhost, unique};

const WITHIN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_and_publisher_reconnect_after_the_broker_closed_their_connections() {
    crate::support::logs();
    let vhost = Vhost::new("reconnect");
    let queue = unique("jobs");
    let (seen, mut handled) = mpsc::unbounded_channel();
    let handler = move |Json(n): Json<u32>, _delivery: Delivery| {
        let seen = seen.clone();
        async move {
            seen.send(n).unwrap();
            Ok::<_, HandlerError>(())
        }
    };
    let mut system = System::builder("reconnect").env(Env::empty());
    let publisher = system.add(
        "publisher",
        (),
        Publisher::new(PublisherSettings::new(vhost.url(), &queue)),
    );
    system.add(
        "jobs",
        (),
        Consumer::new(ConsumerSettings::new(vhost.url(), &queue), handler),
    );
    let running = system.build().unwrap().start().await.unwrap();
    let handle = running.resource(publisher).unwrap();
    let mut events = running.events();

    handle.publish(&Json(1_u32)).await.unwrap();
    assert_eq!(
        tokio::time::timeout(WITHIN, handled.recv()).await.unwrap(),
        Some(1)
    );

    vhost.close_connections();
    // The consumer notices, reports it, and comes back (events, so no change is missed).
    let mut healths = Vec::new();
    tokio::time::timeout(WITHIN, async {
        while let Some(event) = events.recv().await {
            if let EventKind::HealthChanged { component, health } = event.kind
                && &*component == "jobs"
            {
                healths.push(health.is_unhealthy());
                if healths.ends_with(&[true, false]) {
                    break;
                }
            }
        }
    })
    .await
    .unwrap();

    // The publisher's connection was closed too: the next publish may fail once (its fate
    // unknown) and reconnects; publishing again with the same id is safe.
    let mut published = false;
    for _ in 0..3 {
        match handle.publish_with_id(&Json(2_u32), "two").await {
            Ok(()) => {
                published = true;
                break;
            }
            Err(error) => assert!(error.is_unconfirmed(), "{error}"),
        }
    }
    assert!(published);
    assert_eq!(
        tokio::time::timeout(WITHIN, handled.recv()).await.unwrap(),
        Some(2)
    );
    let report = running.stop().await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(vhost.ready(&queue).await, 0);
}
