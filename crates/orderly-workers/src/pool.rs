//! The worker-pool component and its builder.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use orderly::{BoxError, Component, Context};
use tokio::sync::{mpsc, watch};

use crate::dispatch::dispatch;
use crate::error::{BuildError, PoolError, PoolErrorKind};
use crate::metrics::JobMetrics;
use crate::policy::{Pending, WhenFull};
use crate::workers::{Shared, Workers};

/// The pool's settings, validated by [`WorkerPoolBuilder::build`].
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) concurrency: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) when_full: WhenFull,
    pub(crate) pending: Pending,
    pub(crate) drain_timeout: Duration,
}

/// A pool of background workers, as an orderly component.
///
/// It runs at most `concurrency` jobs at once, each in its own task (tracked: a job never
/// outlives the pool), and keeps at most `queue_capacity` accepted jobs waiting. Its resource
/// is a [`Workers`] handle that dependents use to submit named jobs.
///
/// # Stop
/// When the pool is asked to stop (after every component that depends on it has stopped):
/// 1. it refuses new jobs at once ([`SubmitError::is_stopping`](crate::SubmitError::is_stopping));
///    [`Workers::stopping`] fires, so long jobs can end early;
/// 2. running jobs finish; accepted jobs not started yet run or are dropped, as the
///    [`Pending`] policy says (default: they run);
/// 3. at the *drain timeout* the jobs still running are aborted and the stop fails with a
///    [`PoolError`] that names them (and the accepted jobs that never started), so the system's
///    report names them too.
///
/// Keep the drain timeout below the component's stop timeout and the system's shutdown
/// deadline (`SHUTDOWN_TIMEOUT`, default 25 s): if the system's timeout fires first, the pool
/// is abandoned as a whole and only its log line at the start of the drain names the jobs.
///
/// # Failures
/// A job that returns an error or panics is logged (`job failed` / `job panicked`, with the
/// job's name) and counted in `workers_jobs_failed_total`; the pool and the system go on.
///
/// # Metrics
/// Labelled `pool` = the component's name: `workers_jobs_running`, `workers_jobs_queued`
/// (gauges), `workers_jobs_completed_total`, `workers_jobs_failed_total`,
/// `workers_jobs_abandoned_total`, `workers_jobs_rejected_total` (counters),
/// `workers_job_duration_seconds` (histogram).
pub struct WorkerPool {
    settings: Settings,
    running: Option<Arc<Shared>>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("settings", &self.settings)
            .field("running", &self.running.is_some())
            .finish()
    }
}

impl WorkerPool {
    /// A builder with the defaults: concurrency 4, queue capacity 128, [`WhenFull::Wait`],
    /// [`Pending::Finish`], drain timeout 20 s.
    pub fn builder() -> WorkerPoolBuilder {
        WorkerPoolBuilder {
            settings: Settings {
                concurrency: 4,
                queue_capacity: 128,
                when_full: WhenFull::Wait,
                pending: Pending::Finish,
                drain_timeout: Duration::from_secs(20),
            },
        }
    }
}

/// Builds a [`WorkerPool`]; [`build`](Self::build) reports every invalid setting at once.
#[derive(Clone, Debug)]
#[must_use]
pub struct WorkerPoolBuilder {
    settings: Settings,
}

impl WorkerPoolBuilder {
    /// How many jobs run at once (at least 1).
    pub fn concurrency(mut self, workers: usize) -> Self {
        self.settings.concurrency = workers;
        self
    }

    /// How many accepted jobs may wait for a worker (at least 1).
    pub fn queue_capacity(mut self, jobs: usize) -> Self {
        self.settings.queue_capacity = jobs;
        self
    }

    /// What [`Workers::submit`] does when the queue is full.
    pub fn when_full(mut self, policy: WhenFull) -> Self {
        self.settings.when_full = policy;
        self
    }

    /// What happens at stop to accepted jobs that have not started.
    pub fn pending(mut self, policy: Pending) -> Self {
        self.settings.pending = policy;
        self
    }

    /// How long the stop waits for jobs before it aborts them and names them (more than zero).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.settings.drain_timeout = timeout;
        self
    }

    /// The pool, or every problem with the settings.
    pub fn build(self) -> Result<WorkerPool, BuildError> {
        let s = &self.settings;
        let mut problems = Vec::new();
        if s.concurrency == 0 {
            problems.push("concurrency must be at least 1".to_owned());
        }
        if s.queue_capacity == 0 {
            problems.push("queue_capacity must be at least 1".to_owned());
        } else if s.queue_capacity > tokio::sync::Semaphore::MAX_PERMITS {
            problems.push(format!(
                "queue_capacity must be at most {}",
                tokio::sync::Semaphore::MAX_PERMITS
            ));
        }
        if s.drain_timeout.is_zero() {
            problems.push("drain_timeout must be more than zero".to_owned());
        }
        if !problems.is_empty() {
            return Err(BuildError::new(problems));
        }
        Ok(WorkerPool {
            settings: self.settings,
            running: None,
        })
    }
}

impl Component for WorkerPool {
    type Deps = ();
    type Resource = Workers;

    async fn start(&mut self, (): (), ctx: Context) -> Result<Workers, BoxError> {
        let (queue, jobs) = mpsc::channel(self.settings.queue_capacity);
        let pool: Arc<str> = Arc::from(ctx.name());
        let shared = Arc::new(Shared {
            metrics: JobMetrics::new(&pool),
            pool,
            stopping: ctx.stopping_token(),
            queue,
            when_full: self.settings.when_full,
            running: std::sync::Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            drained: watch::Sender::new(None),
        });
        let dispatcher = dispatch(shared.clone(), jobs, self.settings.clone());
        ctx.spawn("dispatcher", async move {
            dispatcher.await;
            Ok::<(), Infallible>(())
        });
        self.running = Some(shared.clone());
        Ok(Workers { shared })
    }

    async fn stop(&mut self) -> Result<(), BoxError> {
        let Some(shared) = self.running.take() else {
            return Ok(());
        };
        shared.stopping.cancel();
        let report = Workers {
            shared: shared.clone(),
        }
        .drained()
        .await;
        if report.overran.is_empty() {
            return Ok(());
        }
        Err(PoolError::new(
            shared.pool.clone(),
            PoolErrorKind::Overran {
                running: report.overran.clone(),
                abandoned: report.abandoned.clone(),
            },
        )
        .into())
    }
}
