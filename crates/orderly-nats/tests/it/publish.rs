//! The publisher returns once the stream acknowledged; duplicates are detected by message id;
//! failures are errors; after the stop no publish goes out.

use orderly::System;
use orderly_messaging::Json;
use orderly_nats::{JetStreamPublisher, PublisherSettings};

use crate::support::{
    Numbered, create_stream, delete_streams, jetstream, nats_url, stream_messages, unique,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_returns_the_streams_acknowledgement_and_the_stop_refuses_new_ones() {
    let js = jetstream().await;
    let stream = unique("publish");
    let prefix = create_stream(&js, &stream).await;
    let mut system = System::builder("publish");
    let key = system.add(
        "publisher",
        (),
        JetStreamPublisher::new(PublisherSettings::new(nats_url())),
    );
    let running = system.build().unwrap().start().await.unwrap();
    let publisher = running.resource(key).unwrap();
    let subject = format!("{prefix}.x");

    let first = publisher
        .publish(&subject, &Json(Numbered { n: 1 }))
        .await
        .unwrap();
    assert_eq!(
        (first.stream.as_str(), first.sequence),
        (stream.as_str(), 1)
    );
    // Acknowledged means stored: the stream has it now.
    assert_eq!(stream_messages(&js, &stream).await, 1);

    let second = publisher
        .publish_with_id(&subject, "order-7", &Json(Numbered { n: 2 }))
        .await
        .unwrap();
    assert_eq!(second.sequence, 2);
    assert!(!second.duplicate);
    let again = publisher
        .publish_with_id(&subject, "order-7", &Json(Numbered { n: 2 }))
        .await
        .unwrap();
    assert!(again.duplicate, "the same id is stored once");
    assert_eq!(again.sequence, 2);
    assert_eq!(stream_messages(&js, &stream).await, 2);

    let stored = js
        .get_stream(&stream)
        .await
        .unwrap()
        .get_raw_message(2)
        .await
        .unwrap();
    assert_eq!(
        stored.headers.get("Nats-Msg-Id").unwrap().as_str(),
        "order-7"
    );
    assert_eq!(
        stored.headers.get("Content-Type").unwrap().as_str(),
        "application/json"
    );
    assert_eq!(&stored.payload[..], br#"{"n":2}"#);

    // No stream on the subject: an error naming it, not a silent loss.
    let nowhere = format!("{}.nowhere", unique("none"));
    let error = publisher
        .publish(&nowhere, &Json(Numbered { n: 3 }))
        .await
        .unwrap_err();
    assert!(error.is_publish(), "{error}");
    assert!(error.to_string().contains(&nowhere), "{error}");
    assert_eq!(error.component(), "publisher");

    let report = running.stop().await;
    assert!(report.is_clean(), "{}", report.summary());
    let error = publisher
        .publish(&subject, &Json(Numbered { n: 4 }))
        .await
        .unwrap_err();
    assert!(error.is_stopping(), "{error}");
    assert_eq!(stream_messages(&js, &stream).await, 2);
    delete_streams(&js, &stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stop_waits_for_publishes_in_flight() {
    let js = jetstream().await;
    let stream = unique("inflight");
    let prefix = create_stream(&js, &stream).await;
    let mut system = System::builder("publish-in-flight");
    let key = system.add(
        "publisher",
        (),
        JetStreamPublisher::new(PublisherSettings::new(nats_url())),
    );
    let running = system.build().unwrap().start().await.unwrap();
    let publisher = running.resource(key).unwrap();
    let subject = format!("{prefix}.x");

    // 200 publishes racing the stop: each either was acknowledged (and is stored) or was
    // refused because the publisher was stopping; none is lost in between.
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200 {
        let publisher = publisher.clone();
        let subject = subject.clone();
        tasks.spawn(async move { publisher.publish(&subject, &Json(Numbered { n })).await });
    }
    tokio::task::yield_now().await;
    let report = running.stop().await;
    assert!(report.is_clean(), "{}", report.summary());
    let mut acknowledged = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(_) => acknowledged += 1,
            Err(error) => assert!(error.is_stopping(), "{error}"),
        }
    }
    assert_eq!(stream_messages(&js, &stream).await, acknowledged);
    delete_streams(&js, &stream).await;
}
