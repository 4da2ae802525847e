//! A private nats-server is killed and started again on the same port and store: the consumer
//! is unhealthy meanwhile, reconnects, resumes consuming; the publisher publishes again.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use orderly::{Health, System};
use orderly_messaging::Json;
use orderly_nats::{ConsumerSettings, JetStreamConsumer, JetStreamPublisher, PublisherSettings};
use tokio::process::{Child, Command};

use crate::support::{DEADLINE, Numbered, eventually, receive, recorder};

const NATS_SERVER: &str = "/usr/sbin/nats-server";

fn start_server(port: u16, store: &Path) -> Child {
    let server = std::env::var("NATS_SERVER").unwrap_or_else(|_| NATS_SERVER.to_owned());
    Command::new(server)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn wait_for_server(url: &str) {
    eventually("the private server accepts connections", || async {
        async_nats::connect(url).await.is_ok()
    })
    .await;
}

fn consumer_health(running: &orderly::Running) -> Option<Health> {
    running
        .status()
        .borrow()
        .components
        .iter()
        .find(|c| &*c.name == "consumer")
        .map(|c| c.health.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_resumes_after_the_server_restarts() {
    let store = tempfile::tempdir().unwrap();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("nats://127.0.0.1:{port}");
    let mut server = start_server(port, store.path());
    wait_for_server(&url).await;

    let (handler, mut deliveries) = recorder();
    let settings = ConsumerSettings::new("RESTART", "worker")
        .url(&url)
        .subjects(["restart.>"])
        .prefetch(4)
        .ack_wait(Duration::from_secs(2))
        .pull_expiry(Duration::from_millis(500));
    let mut system = System::builder("reconnect");
    system.add("consumer", (), JetStreamConsumer::new(settings, handler));
    let key = system.add(
        "publisher",
        (),
        JetStreamPublisher::new(PublisherSettings::new(&url)),
    );
    let running = system.build().unwrap().start().await.unwrap();
    let publisher = running.resource(key).unwrap();

    for n in 0..5 {
        publisher
            .publish("restart.a", &Json(Numbered { n }))
            .await
            .unwrap();
    }
    let before = receive(&mut deliveries, 5).await;

    server.kill().await.unwrap();
    eventually("the consumer reports the lost connection", || async {
        matches!(consumer_health(&running), Some(Health::Unhealthy(_)))
    })
    .await;
    assert!(
        !running.status().borrow().readiness().ok,
        "not ready while disconnected"
    );

    let mut server = start_server(port, store.path());
    eventually("the consumer is healthy again", || async {
        consumer_health(&running) == Some(Health::Healthy)
    })
    .await;

    // The publisher reconnected too; a publish in the first instants may still fail.
    for n in 5..10 {
        let published = tokio::time::timeout(DEADLINE, async {
            loop {
                match publisher
                    .publish_with_id("restart.a", &format!("m-{n}"), &Json(Numbered { n }))
                    .await
                {
                    Ok(published) => break published,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(published.stream, "RESTART");
    }
    // A killed server may have lost acknowledgements it had not written yet: messages from
    // before may come again (at least once); every new one must come.
    let mut seen: std::collections::BTreeSet<i64> = before.iter().map(|d| d.1).collect();
    tokio::time::timeout(DEADLINE, async {
        while !(5..10).all(|n| seen.contains(&n)) {
            let (_, n, _) = deliveries.recv().await.unwrap();
            seen.insert(n);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("after the restart, only {seen:?}"));
    let report = running.stop().await;
    assert!(report.is_clean(), "{}", report.summary());
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    server.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_and_a_publisher_stop_cleanly_while_the_server_is_down() {
    let store = tempfile::tempdir().unwrap();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("nats://127.0.0.1:{port}");
    let mut server = start_server(port, store.path());
    wait_for_server(&url).await;

    let (handler, _deliveries) = recorder();
    let settings = ConsumerSettings::new("DOWN", "worker")
        .url(&url)
        .subjects(["down.>"])
        .pull_expiry(Duration::from_millis(500));
    let mut system = System::builder("down").stop_timeout(Duration::from_secs(10));
    system.add("consumer", (), JetStreamConsumer::new(settings, handler));
    system.add(
        "publisher",
        (),
        JetStreamPublisher::new(PublisherSettings::new(&url)),
    );
    let running = system.build().unwrap().start().await.unwrap();

    server.kill().await.unwrap();
    eventually("the consumer reports the lost connection", || async {
        matches!(consumer_health(&running), Some(Health::Unhealthy(_)))
    })
    .await;
    let report = running.stop().await;
    assert!(report.is_clean(), "{}", report.summary());
}
