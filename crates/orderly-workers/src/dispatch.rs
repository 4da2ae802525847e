//! The dispatcher: takes queued jobs at the pool's concurrency, runs each in its own task, and
//! drains them at stop.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::policy::Pending;
use crate::pool::Settings;
use crate::report::DrainReport;
use crate::workers::{Queued, Shared};

/// Runs the pool until it begins stopping, then drains it and publishes the [`DrainReport`].
/// The jobs are tasks of a `JoinSet` this future owns: aborting it aborts them.
pub(crate) async fn dispatch(
    shared: Arc<Shared>,
    mut queue: mpsc::Receiver<Queued>,
    settings: Settings,
) {
    let mut jobs = JoinSet::new();
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            () = shared.stopping.cancelled() => break,
            Some(_) = jobs.join_next(), if !jobs.is_empty() => {}
            next = queue.recv(), if open && jobs.len() < settings.concurrency => match next {
                Some(queued) => launch(&shared, &mut jobs, queued),
                // Every handle is gone: nothing more can come; keep running what runs.
                None => open = false,
            },
        }
    }
    let report = drain(&shared, &mut queue, &mut jobs, open, &settings).await;
    shared.drained.send_replace(Some(Arc::new(report)));
}

async fn drain(
    shared: &Arc<Shared>,
    queue: &mut mpsc::Receiver<Queued>,
    jobs: &mut JoinSet<()>,
    mut open: bool,
    settings: &Settings,
) -> DrainReport {
    let began = Instant::now();
    // From here a submit fails; jobs already accepted stay in the queue.
    queue.close();
    let running = shared.running_names();
    tracing::info!(
        pool = %shared.pool,
        running = ?running,
        queued = queue.len(),
        pending = ?settings.pending,
        "worker pool stopping: no new jobs; draining"
    );
    let mut report = DrainReport::default();
    let deadline = began + settings.drain_timeout;
    let timed_out = loop {
        if jobs.is_empty() && !open {
            break false;
        }
        tokio::select! {
            biased;
            Some(_) = jobs.join_next(), if !jobs.is_empty() => report.finished += 1,
            next = queue.recv(), if open && (settings.pending == Pending::Drop || jobs.len() < settings.concurrency) => {
                match next {
                    Some(queued) if settings.pending == Pending::Drop => {
                        shared.metrics.dequeued();
                        report.abandoned.push(queued.name);
                    }
                    Some(queued) => launch(shared, jobs, queued),
                    None => open = false,
                }
            }
            () = tokio::time::sleep_until(deadline) => break true,
        }
    };
    if timed_out {
        report.overran = shared.running_names();
        while let Ok(queued) = queue.try_recv() {
            shared.metrics.dequeued();
            report.abandoned.push(queued.name);
        }
        // Aborts the jobs; each one's guard takes it out of the running set.
        jobs.shutdown().await;
        tracing::error!(
            pool = %shared.pool,
            overran = ?report.overran,
            abandoned = ?report.abandoned,
            drain_timeout = ?settings.drain_timeout,
            "worker pool drain timed out: jobs aborted"
        );
    } else if !report.abandoned.is_empty() {
        tracing::warn!(
            pool = %shared.pool,
            abandoned = ?report.abandoned,
            "worker pool stopped: queued jobs dropped without running (Pending::Drop)"
        );
    }
    shared.metrics.abandoned(report.abandoned.len());
    report.took = began.elapsed();
    tracing::info!(
        pool = %shared.pool,
        finished = report.finished,
        took = ?report.took,
        "worker pool drained"
    );
    report
}

/// Takes a running job out of the running set when its task ends, also when it is aborted.
struct RunningGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.shared.job_ended(self.id);
    }
}

fn launch(shared: &Arc<Shared>, jobs: &mut JoinSet<()>, queued: Queued) {
    shared.metrics.dequeued();
    let Queued { name, job } = queued;
    let guard = RunningGuard {
        shared: shared.clone(),
        id: shared.job_started(name.clone()),
    };
    jobs.spawn(async move {
        let began = Instant::now();
        let result = AssertUnwindSafe(job).catch_unwind().await;
        let shared = &guard.shared;
        let succeeded = match result {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::warn!(pool = %shared.pool, job = %name, %error, "job failed");
                false
            }
            Err(payload) => {
                let message = panic_message(&*payload);
                tracing::error!(pool = %shared.pool, job = %name, panic = %message, "job panicked");
                false
            }
        };
        shared.metrics.finished(began.elapsed(), succeeded);
        drop(guard);
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
