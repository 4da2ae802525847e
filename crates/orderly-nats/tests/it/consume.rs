//! Consume and acknowledge, with the publisher's message ids.

use std::collections::HashSet;

use orderly::System;
use orderly_messaging::Json;
use orderly_nats::{ConsumerSettings, JetStreamConsumer, JetStreamPublisher, PublisherSettings};

use crate::support::{
    Numbered, consumer_info, create_stream, delete_streams, jetstream, nats_url, receive, recorder,
    unique,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_handled_once_and_acked_with_the_publishers_id() {
    let js = jetstream().await;
    let stream = unique("consume");
    let prefix = create_stream(&js, &stream).await;
    let (handler, mut deliveries) = recorder();

    let mut system = System::builder("consume");
    let settings = ConsumerSettings::new(&stream, "worker")
        .url(nats_url())
        .prefetch(8);
    system.add("consumer", (), JetStreamConsumer::new(settings, handler));
    let publisher = system.add(
        "publisher",
        (),
        JetStreamPublisher::new(PublisherSettings::new(nats_url())),
    );
    let running = system.build().unwrap().start().await.unwrap();
    let publisher = running.resource(publisher).unwrap();

    let mut ids = HashSet::new();
    for n in 0..50 {
        let published = publisher
            .publish(&format!("{prefix}.numbers"), &Json(Numbered { n }))
            .await
            .unwrap();
        assert_eq!(published.stream, stream);
        assert!(!published.duplicate);
        let id = format!("n-{n}");
        publisher
            .publish_with_id(&format!("{prefix}.ids"), &id, &Json(Numbered { n }))
            .await
            .unwrap();
        ids.insert(id);
    }

    let got = receive(&mut deliveries, 100).await;
    let report = running.stop().await;
    assert!(report.is_clean(), "{}", report.summary());

    let with_ids: HashSet<String> = got
        .iter()
        .filter(|(id, _, _)| id.starts_with("n-"))
        .map(|(id, _, _)| id.clone())
        .collect();
    assert_eq!(
        with_ids, ids,
        "the handler sees the publisher's message ids"
    );
    let all: HashSet<&String> = got.iter().map(|(id, _, _)| id).collect();
    assert_eq!(all.len(), 100, "100 distinct ids: {got:?}");
    assert!(got.iter().all(|(_, _, attempt)| *attempt == 1));
    assert!(deliveries.try_recv().is_err(), "nothing delivered twice");

    let info = consumer_info(&js, &stream, "worker").await;
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.num_pending, 0);
    assert_eq!(
        info.ack_floor.stream_sequence, 100,
        "every message acknowledged"
    );
    assert_eq!(info.num_redelivered, 0);
    delete_streams(&js, &stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_stream_fails_the_start_naming_it() {
    let stream = unique("missing");
    let (handler, _deliveries) = recorder();
    let mut system = System::builder("missing");
    let settings = ConsumerSettings::new(&stream, "worker").url(nats_url());
    system.add("consumer", (), JetStreamConsumer::new(settings, handler));
    let error = system.build().unwrap().start().await.err().unwrap();
    let text = format!("{error:?} {error}");
    assert!(text.contains(&stream), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_the_start_without_showing_the_password() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let (handler, _deliveries) = recorder();
    let mut system = System::builder("unreachable");
    let settings =
        ConsumerSettings::new("S", "worker").url(format!("nats://alice:hunter2@127.0.0.1:{port}"));
    system.add("consumer", (), JetStreamConsumer::new(settings, handler));
    let error = system.build().unwrap().start().await.err().unwrap();
    let text = format!("{error:?} {error}");
    assert!(text.contains("alice:***@127.0.0.1"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
