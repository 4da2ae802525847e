//! Submitting: the concurrency limit, the queue and its policy, refusal once stopping.

use std::time::Duration;

use orderly_workers::{WhenFull, WorkerPool};

use crate::fixture::{Jobs, start};

#[tokio::test(start_paused = true)]
async fn runs_at_most_concurrency_jobs_and_queues_the_rest() {
    let (running, workers) = start(WorkerPool::builder().concurrency(2).queue_capacity(4)).await;
    let mut jobs = Jobs::new();
    let mut releases = Vec::new();
    for name in ["a", "b", "c"] {
        let (release, job) = jobs.held(name);
        workers.submit(name, job).await.unwrap();
        releases.push(release);
    }
    assert_eq!(jobs.started().await.as_ref(), "a");
    assert_eq!(jobs.started().await.as_ref(), "b");
    // Let every task that can run, run: the third job must still wait for a worker.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !jobs.any_started(),
        "a third job started with concurrency 2"
    );
    let names: Vec<String> = workers.running().iter().map(|n| n.to_string()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(workers.queued(), 1);

    releases.remove(0).send(()).unwrap();
    assert_eq!(jobs.ended().await.as_ref(), "a");
    assert_eq!(jobs.started().await.as_ref(), "c");
    drop(releases);
    assert!(running.stop().await.is_clean());
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_rejects_with_the_reject_policy_and_try_submit() {
    let (running, workers) = start(
        WorkerPool::builder()
            .concurrency(1)
            .queue_capacity(1)
            .when_full(WhenFull::Reject),
    )
    .await;
    let mut jobs = Jobs::new();
    let (release_a, a) = jobs.held("a");
    workers.submit("a", a).await.unwrap();
    assert_eq!(jobs.started().await.as_ref(), "a");
    let (release_b, b) = jobs.held("b");
    workers.submit("b", b).await.unwrap();

    let (_c_release, c) = jobs.held("c");
    let refused = workers.submit("c", c).await.unwrap_err();
    assert!(refused.is_queue_full(), "{refused}");
    assert_eq!(refused.job(), "c");
    assert_eq!(refused.pool(), "workers");
    let (_d_release, d) = jobs.held("d");
    assert!(workers.try_submit("d", d).unwrap_err().is_queue_full());

    drop((release_a, release_b));
    assert!(running.stop().await.is_clean());
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_makes_submit_wait_for_room_with_the_wait_policy() {
    let (running, workers) = start(WorkerPool::builder().concurrency(1).queue_capacity(1)).await;
    let mut jobs = Jobs::new();
    let (release_a, a) = jobs.held("a");
    workers.submit("a", a).await.unwrap();
    assert_eq!(jobs.started().await.as_ref(), "a");
    let (release_b, b) = jobs.held("b");
    workers.submit("b", b).await.unwrap();

    let (release_c, c) = jobs.held("c");
    let submitter = workers.clone();
    let waiting = tokio::spawn(async move { submitter.submit("c", c).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !waiting.is_finished(),
        "submit returned while the queue was full"
    );

    release_a.send(()).unwrap();
    waiting.await.unwrap().unwrap();
    assert_eq!(jobs.started().await.as_ref(), "b");
    drop((release_b, release_c));
    assert!(running.stop().await.is_clean());
    assert_eq!(
        workers.drained().await.finished,
        2,
        "b and c ran to their end"
    );
}

#[tokio::test(start_paused = true)]
async fn refuses_jobs_once_stopping_also_a_submit_waiting_for_room() {
    let (running, workers) = start(WorkerPool::builder().concurrency(1).queue_capacity(1)).await;
    let mut jobs = Jobs::new();
    let (release_a, a) = jobs.held("a");
    workers.submit("a", a).await.unwrap();
    assert_eq!(jobs.started().await.as_ref(), "a");
    let (release_b, b) = jobs.held("b");
    workers.submit("b", b).await.unwrap();
    let (_release_c, c) = jobs.held("c");
    let submitter = workers.clone();
    let waiting = tokio::spawn(async move { submitter.submit("c", c).await });

    let stop = tokio::spawn(running.stop());
    workers.stopping().await;
    let refused = waiting.await.unwrap().unwrap_err();
    assert!(refused.is_stopping(), "{refused}");
    let (_d_release, d) = jobs.held("late");
    assert!(workers.try_submit("late", d).unwrap_err().is_stopping());
    let (_e_release, e) = jobs.held("later");
    assert!(workers.submit("later", e).await.unwrap_err().is_stopping());

    release_a.send(()).unwrap();
    drop(release_b);
    let report = stop.await.unwrap();
    assert!(report.is_clean(), "{}", report.summary());
}
