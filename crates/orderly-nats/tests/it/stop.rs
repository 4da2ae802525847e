//! Stop with messages in flight: every handler runs to its end, every message is acknowledged
//! before the connection goes away, and nothing is delivered again after AckWait.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use orderly::System;
use orderly_messaging::{Delivery, HandlerError, Json};
use orderly_nats::{ConsumerSettings, JetStreamConsumer};
use tokio::sync::{Semaphore, mpsc};

use crate::support::{
    Numbered, consumer_info, create_stream, delete_streams, jetstream, nats_url, receive, recorder,
    unique,
};

const ACK_WAIT: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_finishes_and_acks_every_message_in_flight_and_nothing_is_redelivered() {
    let js = jetstream().await;
    let stream = unique("stop");
    let prefix = create_stream(&js, &stream).await;
    for n in 0..10 {
        js.publish(format!("{prefix}.a"), format!(r#"{{"n":{n}}}"#).into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    // Handlers enter, say so, and wait for the test to release them.
    let (entered_tx, mut entered) = mpsc::unbounded_channel();
    let release = Arc::new(Semaphore::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let handler = {
        let release = release.clone();
        let finished = finished.clone();
        move |Json(m): Json<Numbered>, _d: Delivery| {
            let entered = entered_tx.clone();
            let release = release.clone();
            let finished = finished.clone();
            async move {
                let _ = entered.send(m.n);
                release
                    .acquire()
                    .await
                    .map_err(HandlerError::retry)?
                    .forget();
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }
    };
    let settings = ConsumerSettings::new(&stream, "worker")
        .url(nats_url())
        .prefetch(4)
        .ack_wait(ACK_WAIT);
    let mut system = System::builder("stop");
    system.add("consumer", (), JetStreamConsumer::new(settings, handler));
    let running = system.build().unwrap().start().await.unwrap();

    // Four in flight (the prefetch), none acknowledged yet.
    let in_flight = receive(&mut entered, 4).await;
    let info = consumer_info(&js, &stream, "worker").await;
    assert_eq!(
        info.num_ack_pending, 4,
        "the prefetch bounds what is in flight"
    );

    // Stop while they run: the stop waits for them.
    let stopping = tokio::spawn(running.stop());
    // Handlers run past AckWait: progress acknowledgements keep their messages.
    tokio::time::sleep(ACK_WAIT + Duration::from_millis(500)).await;
    assert!(!stopping.is_finished(), "the stop waits for the handlers");
    release.add_permits(4);
    let report = stopping.await.unwrap();
    assert!(report.is_clean(), "{}", report.summary());
    assert_eq!(
        finished.load(Ordering::SeqCst),
        4,
        "no handler was cancelled"
    );
    assert!(
        entered.try_recv().is_err(),
        "nothing pulled after the stop began"
    );

    let info = consumer_info(&js, &stream, "worker").await;
    assert_eq!(
        info.num_ack_pending, 0,
        "every message in flight was acknowledged"
    );
    assert_eq!(info.num_redelivered, 0);
    assert_eq!(
        info.delivered.consumer_sequence, 4,
        "nothing delivered twice"
    );

    // A new consumer after AckWait gets the six others, once each, and none of the four.
    tokio::time::sleep(ACK_WAIT).await;
    let (handler, mut deliveries) = recorder();
    let settings = ConsumerSettings::new(&stream, "worker")
        .url(nats_url())
        .prefetch(4)
        .ack_wait(ACK_WAIT);
    let mut system = System::builder("stop-2");
    system.add("consumer", (), JetStreamConsumer::new(settings, handler));
    let running = system.build().unwrap().start().await.unwrap();
    let rest = receive(&mut deliveries, 6).await;
    tokio::time::sleep(ACK_WAIT + Duration::from_secs(1)).await;
    let report = running.stop().await;
    assert!(report.is_clean(), "{}", report.summary());
    assert!(deliveries.try_recv().is_err(), "no redelivery");
    let mut all: Vec<i64> = in_flight
        .into_iter()
        .chain(rest.iter().map(|r| r.1))
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    assert!(rest.iter().all(|(_, _, attempt)| *attempt == 1));
    let info = consumer_info(&js, &stream, "worker").await;
    assert_eq!(info.num_redelivered, 0);
    assert_eq!(info.ack_floor.stream_sequence, 10);
    delete_streams(&js, &stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_consumer_stops_cleanly_once_its_pull_expires() {
    let js = jetstream().await;
    let stream = unique("idle");
    create_stream(&js, &stream).await;
    let (handler, _deliveries) = recorder();
    let settings = ConsumerSettings::new(&stream, "worker")
        .url(nats_url())
        .pull_expiry(Duration::from_millis(500));
    // The stop timeout would abandon a stop that waited for a pull that never ends.
    let mut system = System::builder("idle").stop_timeout(Duration::from_secs(10));
    system.add("consumer", (), JetStreamConsumer::new(settings, handler));
    let running = system.build().unwrap().start().await.unwrap();
    let report = running.stop().await;
    assert!(report.is_clean(), "{}", report.summary());
    let info = consumer_info(&js, &stream, "worker").await;
    assert_eq!(info.num_waiting, 0, "no pull left at the server");
    delete_streams(&js, &stream).await;
}
