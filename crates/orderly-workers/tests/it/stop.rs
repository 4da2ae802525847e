//! The stop: running jobs finish, the pending policy, the drain deadline names what overran,
//! jobs can observe the stop.

use std::time::Duration;

use orderly::{BoxError, Outcome};
use orderly_workers::{Pending, WorkerPool};

use crate::fixture::{Jobs, start};

#[tokio::test(start_paused = true)]
async fn a_running_job_finishes_before_the_stop_completes() {
    let (running, workers) = start(WorkerPool::builder()).await;
    let mut jobs = Jobs::new();
    let (release, job) = jobs.held("report");
    workers.submit("report", job).await.unwrap();
    jobs.started().await;

    let stop = tokio::spawn(running.stop());
    workers.stopping().await;
    // The pool is stopping and the job still runs: the stop waits for it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !stop.is_finished(),
        "the stop did not wait for the running job"
    );
    assert!(!jobs.any_ended());
    release.send(()).unwrap();
    assert_eq!(jobs.ended().await.as_ref(), "report");
    let report = stop.await.unwrap();
    assert!(report.is_clean(), "{}", report.summary());
    let drained = workers.drained().await;
    assert!(drained.is_complete());
    assert_eq!(drained.finished, 1);
}

#[tokio::test(start_paused = true)]
async fn queued_jobs_run_at_stop_with_the_finish_policy() {
    let (running, workers) = start(WorkerPool::builder().concurrency(1)).await;
    let mut jobs = Jobs::new();
    let (release_a, a) = jobs.held("a");
    workers.submit("a", a).await.unwrap();
    jobs.started().await;
    let (release_b, b) = jobs.held("b");
    workers.submit("b", b).await.unwrap();

    let stop = tokio::spawn(running.stop());
    workers.stopping().await;
    release_a.send(()).unwrap();
    assert_eq!(
        jobs.started().await.as_ref(),
        "b",
        "the queued job ran after all"
    );
    release_b.send(()).unwrap();
    let report = stop.await.unwrap();
    assert!(report.is_clean(), "{}", report.summary());
    let drained = workers.drained().await;
    assert!(drained.abandoned.is_empty());
    assert_eq!(drained.finished, 2);
}

#[tokio::test(start_paused = true)]
async fn queued_jobs_are_dropped_and_named_with_the_drop_policy() {
    let (running, workers) =
        start(WorkerPool::builder().concurrency(1).pending(Pending::Drop)).await;
    let mut jobs = Jobs::new();
    let (release_a, a) = jobs.held("a");
    workers.submit("a", a).await.unwrap();
    jobs.started().await;
    let (_release_b, b) = jobs.held("b");
    workers.submit("b", b).await.unwrap();
    let (_release_c, c) = jobs.held("c");
    workers.submit("c", c).await.unwrap();

    let stop = tokio::spawn(running.stop());
    workers.stopping().await;
    release_a.send(()).unwrap();
    let report = stop.await.unwrap();
    assert!(
        report.is_clean(),
        "dropping by policy is not a failure: {}",
        report.summary()
    );
    assert_eq!(jobs.ended().await.as_ref(), "a");
    assert!(!jobs.any_started(), "a dropped job ran");
    let drained = workers.drained().await;
    let abandoned: Vec<&str> = drained.abandoned.iter().map(|n| &**n).collect();
    assert_eq!(abandoned, ["b", "c"]);
    assert_eq!(drained.finished, 1);
}

#[tokio::test(start_paused = true)]
async fn a_job_that_overruns_the_drain_timeout_is_aborted_and_named_in_the_report() {
    let (running, workers) = start(
        WorkerPool::builder()
            .concurrency(1)
            .drain_timeout(Duration::from_secs(3)),
    )
    .await;
    let mut jobs = Jobs::new();
    let (_release, stuck) = jobs.held("stuck export");
    workers.submit("stuck export", stuck).await.unwrap();
    jobs.started().await;
    let (_release_next, next) = jobs.held("next");
    workers.submit("next", next).await.unwrap();

    let report = running.stop().await;
    assert!(!report.is_clean());
    let pool = report.component("workers").unwrap();
    let Outcome::StopFailed(failure) = &pool.outcome else {
        panic!("the pool's stop did not fail: {}", pool.outcome);
    };
    let message = failure.to_string();
    assert!(message.contains("'stuck export'"), "{message}");
    assert!(message.contains("never started: 'next'"), "{message}");
    assert!(
        !failure.is_timeout(),
        "the pool, not the supervisor, ended the drain: {message}"
    );
    let drained = workers.drained().await;
    assert_eq!(drained.overran.len(), 1);
    assert_eq!(drained.took, Duration::from_secs(3));
    assert!(
        workers.running().is_empty(),
        "an aborted job is still listed as running"
    );
    assert!(!jobs.any_ended());
}

#[tokio::test(start_paused = true)]
async fn a_long_job_observes_the_stop_and_ends_early() {
    let (running, workers) =
        start(WorkerPool::builder().drain_timeout(Duration::from_secs(2))).await;
    let (started, began) = tokio::sync::oneshot::channel();
    let stopping = workers.stopping_token();
    workers
        .submit("long scan", async move {
            started.send(()).unwrap();
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(3600)) => Err::<(), BoxError>("never stopped".into()),
                () = stopping.cancelled() => Ok(()),
            }
        })
        .await
        .unwrap();
    began.await.unwrap();
    let report = running.stop().await;
    assert!(report.is_clean(), "{}", report.summary());
    let drained = workers.drained().await;
    assert!(drained.is_complete());
    assert_eq!(drained.took, Duration::ZERO, "the job ended at once");
}
