//! A failing handler: redelivery after the delay, then the dead-letter stream with the reason;
//! a rejected or undecodable message goes there at once. The others are not held up.

use std::time::Duration;

use orderly::System;
use orderly_messaging::{Delivery, HandlerError, Json};
use orderly_nats::{
    ConsumerSettings, DEAD_LETTER_REASON, DELIVERIES, JetStreamConsumer, ORIGINAL_STREAM,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::support::{
    Numbered, consumer_info, create_stream, delete_streams, eventually, jetstream, nats_url,
    receive, stream_messages, unique,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_message_is_redelivered_after_the_delay_then_dead_lettered_with_the_reason() {
    let js = jetstream().await;
    let stream = unique("poison");
    let prefix = create_stream(&js, &stream).await;
    let (tx, mut deliveries) = mpsc::unbounded_channel();
    let handler = move |Json(m): Json<Numbered>, d: Delivery| {
        let tx = tx.clone();
        async move {
            let _ = tx.send((m.n, d.attempt(), Instant::now()));
            match m.n {
                -1 => Err(HandlerError::retry("the database is down")),
                -2 => Err(HandlerError::reject("value out of range")),
                _ => Ok(()),
            }
        }
    };
    let settings = ConsumerSettings::new(&stream, "worker")
        .url(nats_url())
        .prefetch(4)
        .max_deliveries(3)
        .retry_delay(Duration::from_millis(300));
    let mut system = System::builder("poison");
    system.add("consumer", (), JetStreamConsumer::new(settings, handler));
    let running = system.build().unwrap().start().await.unwrap();

    js.publish(format!("{prefix}.a"), r#"{"n":-1}"#.into())
        .await
        .unwrap()
        .await
        .unwrap();
    for n in 0..20 {
        js.publish(format!("{prefix}.a"), format!(r#"{{"n":{n}}}"#).into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    js.publish(format!("{prefix}.a"), r#"{"n":-2}"#.into())
        .await
        .unwrap()
        .await
        .unwrap();
    js.publish(format!("{prefix}.a"), "not json".into())
        .await
        .unwrap()
        .await
        .unwrap();

    // 20 good ones once, the poison three times, the rejected one once (the undecodable one
    // never reaches the handler).
    let got = receive(&mut deliveries, 24).await;
    let dead = format!("{stream}_DEAD");
    eventually("three messages in the dead-letter stream", || async {
        stream_messages(&js, &dead).await == 3
    })
    .await;
    let report = running.stop().await;
    assert!(report.is_clean(), "{}", report.summary());

    let good: Vec<_> = got.iter().filter(|(n, _, _)| *n >= 0).collect();
    assert_eq!(good.len(), 20);
    assert!(good.iter().all(|(_, attempt, _)| *attempt == 1));
    let poison: Vec<_> = got.iter().filter(|(n, _, _)| *n == -1).collect();
    let attempts: Vec<u32> = poison.iter().map(|(_, a, _)| *a).collect();
    assert_eq!(attempts, [1, 2, 3]);
    for pair in poison.windows(2) {
        assert!(
            pair[1].2 - pair[0].2 >= Duration::from_millis(250),
            "redelivered after the retry delay"
        );
    }
    assert_eq!(got.iter().filter(|(n, _, _)| *n == -2).count(), 1);

    let dead_stream = js.get_stream(&dead).await.unwrap();
    let mut reasons = Vec::new();
    for sequence in 1..=3 {
        let message = dead_stream.get_raw_message(sequence).await.unwrap();
        let headers = message.headers;
        assert_eq!(headers.get(ORIGINAL_STREAM).unwrap().as_str(), stream);
        reasons.push((
            String::from_utf8_lossy(&message.payload).into_owned(),
            headers.get(DEAD_LETTER_REASON).unwrap().as_str().to_owned(),
            headers.get(DELIVERIES).unwrap().as_str().to_owned(),
        ));
    }
    reasons.sort_by_key(|(payload, _, _)| match payload.as_str() {
        r#"{"n":-1}"# => 0,
        r#"{"n":-2}"# => 1,
        _ => 2,
    });
    assert_eq!(reasons[0].0, r#"{"n":-1}"#);
    assert!(reasons[0].1.contains("failed 3 deliveries"), "{reasons:?}");
    assert!(reasons[0].1.contains("the database is down"), "{reasons:?}");
    assert_eq!(reasons[0].2, "3");
    assert_eq!(reasons[1].0, r#"{"n":-2}"#);
    assert!(
        reasons[1].1.contains("rejected: value out of range"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1].2, "1");
    assert_eq!(reasons[2].0, "not json");
    assert!(reasons[2].1.contains("invalid JSON"), "{reasons:?}");

    // Dead-lettered messages are terminated on the stream: nothing is left to deliver.
    let info = consumer_info(&js, &stream, "worker").await;
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.num_pending, 0);
    delete_streams(&js, &stream).await;
}
