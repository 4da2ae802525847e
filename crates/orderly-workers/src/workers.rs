//! The handle dependents receive: submit named jobs, observe the pool.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use orderly::BoxError;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::error::{SubmitError, SubmitErrorKind};
use crate::metrics::JobMetrics;
use crate::policy::WhenFull;
use crate::report::DrainReport;

/// A job accepted into the queue.
pub(crate) struct Queued {
    pub(crate) name: Arc<str>,
    pub(crate) job: BoxFuture<'static, Result<(), BoxError>>,
}

/// What the handle and the dispatcher share for one run of the pool (one start).
pub(crate) struct Shared {
    pub(crate) pool: Arc<str>,
    /// Cancelled when the pool begins stopping: no new job from then on.
    pub(crate) stopping: CancellationToken,
    pub(crate) queue: mpsc::Sender<Queued>,
    pub(crate) when_full: WhenFull,
    /// The jobs running now, by id (ids in start order).
    pub(crate) running: Mutex<BTreeMap<u64, Arc<str>>>,
    pub(crate) next_id: AtomicU64,
    pub(crate) drained: watch::Sender<Option<Arc<DrainReport>>>,
    pub(crate) metrics: JobMetrics,
}

impl Shared {
    pub(crate) fn job_started(&self, name: Arc<str>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, name);
        self.metrics.started();
        id
    }

    pub(crate) fn job_ended(&self, id: u64) {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        self.metrics.ended();
    }

    pub(crate) fn running_names(&self) -> Vec<Arc<str>> {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    fn refuse(&self, job: Arc<str>, kind: SubmitErrorKind) -> SubmitError {
        self.metrics.rejected();
        SubmitError::new(self.pool.clone(), job, kind)
    }
}

/// The resource a [`WorkerPool`](crate::WorkerPool) delegates: a cheap, cloneable handle to
/// submit named background jobs and to watch the pool.
///
/// A job is a future returning `Result<(), E>`. Its name is what logs, metrics and the stop
/// report use. A job that fails or panics is logged with its name and counted in
/// `workers_jobs_failed_total`; it never stops the pool or the system (report a fatal
/// condition with [`Context::fail`](orderly::Context::fail) from the job if you need to).
///
/// Long jobs should watch [`stopping`](Self::stopping) (or a
/// [`stopping_token`](Self::stopping_token)) and end early, or they risk being aborted at the
/// pool's drain deadline.
#[derive(Clone)]
#[must_use]
pub struct Workers {
    pub(crate) shared: Arc<Shared>,
}

impl Workers {
    /// Submits a job named `name`.
    ///
    /// When the queue is full it waits for room ([`WhenFull::Wait`], the default) or fails at
    /// once ([`WhenFull::Reject`]).
    ///
    /// # Shutdown
    /// Once the pool begins stopping it refuses every job with an error for which
    /// [`SubmitError::is_stopping`] is true, also a submit that is waiting for room.
    ///
    /// # Cancel safety
    /// Cancel safe: if the future is dropped before it completes, the job was not queued.
    pub async fn submit<F, E>(&self, name: impl Into<Arc<str>>, job: F) -> Result<(), SubmitError>
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let name = name.into();
        let shared = &self.shared;
        if shared.stopping.is_cancelled() {
            return Err(shared.refuse(name, SubmitErrorKind::Stopping));
        }
        let permit = match shared.when_full {
            WhenFull::Reject => match shared.queue.try_reserve() {
                Ok(permit) => permit,
                Err(mpsc::error::TrySendError::Full(())) => {
                    return Err(shared.refuse(name, SubmitErrorKind::QueueFull));
                }
                Err(mpsc::error::TrySendError::Closed(())) => {
                    return Err(shared.refuse(name, SubmitErrorKind::Stopping));
                }
            },
            WhenFull::Wait => {
                let reserved = tokio::select! {
                    biased;
                    () = shared.stopping.cancelled() => None,
                    permit = shared.queue.reserve() => permit.ok(),
                };
                match reserved {
                    Some(permit) => permit,
                    None => return Err(shared.refuse(name, SubmitErrorKind::Stopping)),
                }
            }
        };
        shared.metrics.enqueued();
        permit.send(Queued {
            name,
            job: box_job(job),
        });
        Ok(())
    }

    /// Submits a job named `name` if the queue has room now; never waits.
    ///
    /// # Shutdown
    /// Once the pool begins stopping it refuses every job ([`SubmitError::is_stopping`]).
    pub fn try_submit<F, E>(&self, name: impl Into<Arc<str>>, job: F) -> Result<(), SubmitError>
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let name = name.into();
        let shared = &self.shared;
        if shared.stopping.is_cancelled() {
            return Err(shared.refuse(name, SubmitErrorKind::Stopping));
        }
        match shared.queue.try_reserve() {
            Ok(permit) => {
                shared.metrics.enqueued();
                permit.send(Queued {
                    name,
                    job: box_job(job),
                });
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(())) => {
                Err(shared.refuse(name, SubmitErrorKind::QueueFull))
            }
            Err(mpsc::error::TrySendError::Closed(())) => {
                Err(shared.refuse(name, SubmitErrorKind::Stopping))
            }
        }
    }

    /// The pool's name (its component's name).
    pub fn pool(&self) -> &str {
        &self.shared.pool
    }

    /// Completes when the pool begins stopping. Select on it in long jobs.
    pub fn stopping(&self) -> WaitForCancellationFutureOwned {
        self.shared.stopping.clone().cancelled_owned()
    }

    /// A token cancelled when the pool begins stopping, to hand to code that takes one.
    pub fn stopping_token(&self) -> CancellationToken {
        self.shared.stopping.child_token()
    }

    /// Whether the pool has begun stopping (it takes no new job).
    pub fn is_stopping(&self) -> bool {
        self.shared.stopping.is_cancelled()
    }

    /// The names of the jobs running now, in the order they started.
    pub fn running(&self) -> Vec<Arc<str>> {
        self.shared.running_names()
    }

    /// How many accepted jobs wait for a worker.
    pub fn queued(&self) -> usize {
        let queue = &self.shared.queue;
        queue.max_capacity() - queue.capacity()
    }

    /// Waits until the pool has stopped and returns what its drain did.
    ///
    /// # Shutdown
    /// Completes only after the pool's stop: await it from outside the pool's jobs.
    pub async fn drained(&self) -> Arc<DrainReport> {
        let mut drained = self.shared.drained.subscribe();
        loop {
            if let Some(report) = drained.borrow_and_update().clone() {
                return report;
            }
            // The sender lives in `shared`, which `self` holds: `changed` cannot fail.
            if drained.changed().await.is_err() {
                return Arc::default();
            }
        }
    }
}

fn box_job<F, E>(job: F) -> BoxFuture<'static, Result<(), BoxError>>
where
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<BoxError>,
{
    job.map(|result| result.map_err(Into::into)).boxed()
}

impl fmt::Debug for Workers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workers")
            .field("pool", &self.shared.pool)
            .field("stopping", &self.is_stopping())
            .field("running", &self.running())
            .field("queued", &self.queued())
            .finish()
    }
}
