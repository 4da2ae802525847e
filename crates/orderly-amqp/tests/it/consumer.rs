//! Consume, acknowledge after success, retry, dead-letter, and drain on stop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use orderly::{Env, State, System};
use orderly_amqp::{Consumer, ConsumerSettings, Declare, QueueType, REASON_HEADER};
use orderly_messaging::{Delivery, HandlerError, Json};
use serde::Deserialize;
use tokio::sync::{Semaphore, mpsc};

use crate::support::{Vhost, eventually, unique};

const WITHIN: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
struct Job {
    n: u32,
    #[serde(default)]
    fail: bool,
}

fn jobs(range: std::ops::Range<u32>) -> impl Iterator<Item = (String, String)> {
    range.map(|n| (format!("job-{n}"), format!(r#"{{"n":{n}}}"#)))
}

fn builder(name: &str) -> orderly::SystemBuilder {
    System::builder(name.to_owned()).env(Env::empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledges_each_message_after_its_handler_succeeded() {
    let vhost = Vhost::new("ack");
    let queue = unique("jobs");
    let (seen, mut handled) = mpsc::unbounded_channel();
    let handler = move |Json(job): Json<Job>, delivery: Delivery| {
        let seen = seen.clone();
        async move {
            seen.send((delivery.id().to_owned(), job.n, delivery.attempt()))
                .unwrap();
            Ok::<_, HandlerError>(())
        }
    };
    let mut system = builder("ack");
    system.add(
        "jobs",
        (),
        Consumer::new(ConsumerSettings::new(vhost.url(), &queue), handler),
    );
    let running = system.build().unwrap().start().await.unwrap();

    vhost.publish(&queue, jobs(0..50)).await;
    let mut got = Vec::new();
    while got.len() < 50 {
        got.push(
            tokio::time::timeout(WITHIN, handled.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    got.sort_by_key(|(_, n, _)| *n);
    for (n, (id, job, attempt)) in got.iter().enumerate() {
        assert_eq!(
            (id.as_str(), *job, *attempt),
            (format!("job-{n}").as_str(), n as u32, 1)
        );
    }
    let report = running.stop().await;
    assert!(report.is_clean(), "{report:?}");
    // Acknowledged, not merely delivered: after the channel closed nothing came back.
    assert_eq!(vhost.ready(&queue).await, 0);
    assert!(handled.try_recv().is_err(), "no message was handled twice");
}

async fn retries_then_dead_letters(queue_type: QueueType) {
    let vhost = Vhost::new("dlq");
    let queue = unique("jobs");
    let (seen, mut handled) = mpsc::unbounded_channel();
    let handler = move |Json(job): Json<Job>, delivery: Delivery| {
        let seen = seen.clone();
        async move {
            seen.send((job.n, delivery.attempt())).unwrap();
            if job.fail {
                return Err(HandlerError::retry(format!("job {} always fails", job.n)));
            }
            Ok(())
        }
    };
    let mut settings = ConsumerSettings::new(vhost.url(), &queue);
    settings.queue_type = queue_type;
    settings.max_deliveries = 3;
    let mut system = builder("dlq");
    system.add("jobs", (), Consumer::new(settings, handler));
    let running = system.build().unwrap().start().await.unwrap();

    let mut messages: Vec<_> = jobs(0..10).collect();
    messages.insert(3, ("poison".into(), r#"{"n":99,"fail":true}"#.into()));
    messages.push(("garbage".into(), "not json".into()));
    vhost.publish(&queue, messages).await;

    let dead_letter_queue = format!("{queue}.dead");
    eventually(WITHIN, "two dead letters", || async {
        (vhost.ready(&dead_letter_queue).await == 2).then_some(())
    })
    .await;
    let report = running.stop().await;
    assert!(report.is_clean(), "{report:?}");

    let mut attempts: HashMap<u32, Vec<u32>> = HashMap::new();
    while let Ok((n, attempt)) = handled.try_recv() {
        attempts.entry(n).or_default().push(attempt);
    }
    assert_eq!(
        attempts[&99],
        [1, 2, 3],
        "the poison message was tried max_deliveries times"
    );
    for n in 0..10 {
        assert_eq!(
            attempts[&n],
            [1],
            "job {n} was handled once, not blocked by the poison"
        );
    }
    assert_eq!(vhost.ready(&queue).await, 0);

    let mut dead = vhost.take_all(&dead_letter_queue).await;
    dead.sort_by(|a, b| a.0.cmp(&b.0));
    let (id, headers, _) = &dead[0];
    assert_eq!(id, "garbage");
    assert!(
        headers[REASON_HEADER].contains("invalid JSON"),
        "{headers:?}"
    );
    let (id, headers, body) = &dead[1];
    assert_eq!(id, "poison");
    assert_eq!(body, r#"{"n":99,"fail":true}"#);
    assert_eq!(
        headers[REASON_HEADER],
        "failed 3 deliveries; last error: job 99 always fails"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_queue_requeues_until_the_limit_then_dead_letters_with_the_reason() {
    retries_then_dead_letters(QueueType::Quorum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_queue_counts_attempts_exactly_and_dead_letters_with_the_reason() {
    retries_then_dead_letters(QueueType::Classic).await;
}

async fn stop_finishes_and_acknowledges_every_in_flight_message(queue_type: QueueType) {
    let vhost = Vhost::new("drain");
    let queue = unique("jobs");
    let prefetch = 4;
    let started = Arc::new(Semaphore::new(0));
    let release = Arc::new(Semaphore::new(0));
    let (seen, mut handled) = mpsc::unbounded_channel();
    let handler = {
        let (started, release) = (started.clone(), release.clone());
        move |Json(job): Json<Job>, delivery: Delivery| {
            let (started, release, seen) = (started.clone(), release.clone(), seen.clone());
            async move {
                started.add_permits(1);
                release.acquire().await.unwrap().forget();
                seen.send((job.n, delivery.attempt())).unwrap();
                Ok::<_, HandlerError>(())
            }
        }
    };
    let mut settings = ConsumerSettings::new(vhost.url(), &queue);
    settings.prefetch = prefetch;
    settings.queue_type = queue_type;
    let mut system = builder("drain");
    system.add("jobs", (), Consumer::new(settings, handler));
    let running = system.build().unwrap().start().await.unwrap();
    vhost.publish(&queue, jobs(0..10)).await;

    // `prefetch` handlers are running and holding their messages.
    let _ = tokio::time::timeout(WITHIN, started.acquire_many(u32::from(prefetch)))
        .await
        .unwrap()
        .unwrap();
    let mut status = running.status();
    let stopping = tokio::spawn(running.stop());
    let component_stopping = |s: &orderly::Status| {
        s.components
            .iter()
            .any(|c| &*c.name == "jobs" && c.state == State::Stopping)
    };
    tokio::time::timeout(WITHIN, status.wait_for(component_stopping))
        .await
        .unwrap()
        .unwrap();
    if queue_type == QueueType::Classic {
        // The subscription is cancelled: the broker sends nothing more, even once the
        // handlers free the prefetch window. (A quorum queue keeps counting a cancelled
        // consumer until its messages are settled, so this is observable on classic only.)
        eventually(WITHIN, "the subscription to be cancelled", || async {
            (vhost.counts(&queue).await.1 == 0).then_some(())
        })
        .await;
    }
    assert!(!stopping.is_finished(), "the stop waits for the handlers");
    release.add_permits(100);
    let report = tokio::time::timeout(WITHIN, stopping)
        .await
        .unwrap()
        .unwrap();
    assert!(report.is_clean(), "{report:?}");

    let mut got = Vec::new();
    while let Ok(seen) = handled.try_recv() {
        got.push(seen);
    }
    assert!(
        got.iter().all(|(_, attempt)| *attempt == 1),
        "none was a redelivery: {got:?}"
    );
    let mut distinct: Vec<_> = got.iter().map(|(n, _)| *n).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), got.len(), "none was handled twice: {got:?}");
    // Every handled message was acknowledged; the rest is still in the queue, untouched.
    assert_eq!(vhost.ready(&queue).await as usize, 10 - got.len());
    if queue_type == QueueType::Classic {
        assert_eq!(
            got.len(),
            usize::from(prefetch),
            "exactly the in-flight messages: {got:?}"
        );
    } else {
        assert!(got.len() >= usize::from(prefetch), "{got:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_drains_in_flight_messages_of_a_classic_queue() {
    stop_finishes_and_acknowledges_every_in_flight_message(QueueType::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_drains_in_flight_messages_of_a_quorum_queue() {
    stop_finishes_and_acknowledges_every_in_flight_message(QueueType::Quorum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_policy_fails_the_start_on_a_missing_queue_and_accepts_an_existing_one() {
    let vhost = Vhost::new("check");
    let queue = unique("jobs");
    let handler = |Json(_job): Json<Job>, _delivery: Delivery| async { Ok::<_, HandlerError>(()) };
    let mut settings = ConsumerSettings::new(vhost.url(), &queue);
    settings.declare = Declare::Check;

    let mut system = builder("check");
    system.add("jobs", (), Consumer::new(settings.clone(), handler));
    let error = system
        .build()
        .unwrap()
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(&format!("jobs: queue '{queue}'")), "{error}");
    assert!(error.contains("NOT_FOUND"), "{error}");

    vhost.declare(&queue, "quorum").await;
    vhost.declare(&format!("{queue}.dead"), "quorum").await;
    let mut system = builder("check");
    system.add("jobs", (), Consumer::new(settings, handler));
    let running = system.build().unwrap().start().await.unwrap();
    assert!(running.stop().await.is_clean());
}
