//! The control handle a component receives: request stop or restart, spawn tracked tasks,
//! report health, learn that it is stopping.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;

use crate::error::{BoxError, Failure};
use crate::event::EventStream;
use crate::health::{Health, Status, StatusCell};
use crate::supervisor::{Origin, Request};

/// The control handle a component receives in `start`. Cheap to clone; clones can be moved into
/// the tasks the component spawns.
///
/// Requests to stop or restart the system made by an *ignorable* component are logged and not
/// obeyed.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

struct Inner {
    name: Arc<str>,
    origin: Origin,
    /// Index of the component in `Status::components`.
    index: usize,
    requests: mpsc::UnboundedSender<Request>,
    stopping: CancellationToken,
    tasks: Tasks,
    status: Arc<StatusCell>,
}

impl Context {
    pub(crate) fn new(
        name: Arc<str>,
        origin: Origin,
        index: usize,
        requests: mpsc::UnboundedSender<Request>,
        status: Arc<StatusCell>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                name,
                origin,
                index,
                requests,
                stopping: CancellationToken::new(),
                tasks: Tasks::default(),
                status,
            }),
        }
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Asks the system to stop cleanly (exit code 0), as SIGTERM would.
    pub fn shutdown(&self) {
        self.send(Request::Shutdown {
            from: self.inner.origin,
        });
    }

    /// Asks the system to stop because this component failed: the exit code is the
    /// component-failure code (1) and the report names this component and `error`.
    pub fn fail(&self, error: impl Into<BoxError>) {
        self.send(Request::Fail {
            from: self.inner.origin,
            failure: Failure::error(error.into()),
        });
    }

    /// Asks the system to restart in-process: stop every component in reverse order, then start
    /// them all again (e.g. after a configuration change).
    pub fn restart(&self) {
        self.send(Request::Restart {
            from: self.inner.origin,
        });
    }

    fn send(&self, request: Request) {
        // The supervisor is gone only once the system stopped; nothing is left to ask.
        let _ = self.inner.requests.send(request);
    }

    /// Reports this component's health; see [`Status::readiness`].
    pub fn set_health(&self, health: Health) {
        self.inner.status.set_health(self.inner.index, health);
    }

    /// The system's status, updated as it changes (for health endpoints).
    pub fn status(&self) -> watch::Receiver<Status> {
        self.inner.status.subscribe()
    }

    /// The system's events from now on.
    pub fn events(&self) -> EventStream {
        self.inner.status.bus().subscribe()
    }

    /// Completes when this component is asked to stop (just before its `stop` runs), or when
    /// its start is cancelled. Select on it in long-running loops.
    pub fn stopping(&self) -> WaitForCancellationFutureOwned {
        self.inner.stopping.clone().cancelled_owned()
    }

    /// Whether this component has been asked to stop.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.is_cancelled()
    }

    /// A token cancelled when this component is asked to stop; to hand to code that takes a
    /// [`CancellationToken`].
    pub fn stopping_token(&self) -> CancellationToken {
        self.inner.stopping.child_token()
    }

    /// Spawns a task that belongs to this component.
    ///
    /// The task should end when [`stopping`](Context::stopping) fires; the component's stop
    /// waits for it (within the component's stop timeout, after which it is aborted). If it
    /// returns an error or panics, the component has failed: the system stops with the
    /// component-failure exit code and the report names the component and `name` (an ignorable
    /// component is marked unhealthy instead).
    pub fn spawn<F, E>(&self, name: impl Into<Arc<str>>, task: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let name = name.into();
        let requests = self.inner.requests.clone();
        let origin = self.inner.origin;
        self.inner.tasks.spawn(async move {
            let failure = match std::panic::AssertUnwindSafe(task).catch_unwind().await {
                Ok(Ok(())) => return,
                Ok(Err(error)) => Failure::error(error.into()),
                Err(payload) => Failure::from_panic(&*payload),
            };
            let _ = requests.send(Request::Fail {
                from: origin,
                failure: failure.in_task(name),
            });
        });
    }

    pub(crate) fn begin_stop(&self) {
        self.inner.stopping.cancel();
    }

    pub(crate) async fn wait_tasks(&self) {
        self.inner.tasks.wait().await;
    }

    pub(crate) fn abort_tasks(&self) {
        self.inner.tasks.abort_all();
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("component", &self.inner.name)
            .field("stopping", &self.inner.stopping.is_cancelled())
            .finish()
    }
}

/// A component's spawned tasks: tracked so the stop can wait for them, abortable at a timeout.
#[derive(Default)]
struct Tasks {
    tracker: TaskTracker,
    handles: Mutex<Vec<AbortHandle>>,
}

impl Tasks {
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.tracker.spawn(task).abort_handle();
        let mut handles = self.handles.lock().unwrap_or_else(PoisonError::into_inner);
        if handles.len() >= 64 {
            handles.retain(|h| !h.is_finished());
        }
        handles.push(handle);
    }

    async fn wait(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    fn abort_all(&self) {
        let handles = self.handles.lock().unwrap_or_else(PoisonError::into_inner);
        for handle in handles.iter() {
            handle.abort();
        }
    }
}
