//! A system with one worker pool, and jobs that say when they start and wait to be released.

use std::sync::Arc;

use orderly::{BoxError, Running, System};
use orderly_workers::{WorkerPoolBuilder, Workers};
use tokio::sync::{mpsc, oneshot};

/// Starts a system whose only component is the pool `workers`.
pub(crate) async fn start(pool: WorkerPoolBuilder) -> (Running, Workers) {
    let mut system = System::builder("test");
    let workers = system.add("workers", (), pool.build().unwrap());
    let running = system.build().unwrap().start().await.unwrap();
    let workers = running.resource(workers).unwrap();
    (running, workers)
}

/// Jobs that report their start on one channel and end when released.
pub(crate) struct Jobs {
    started_tx: mpsc::UnboundedSender<Arc<str>>,
    started: mpsc::UnboundedReceiver<Arc<str>>,
    ended_tx: mpsc::UnboundedSender<Arc<str>>,
    ended: mpsc::UnboundedReceiver<Arc<str>>,
}

impl Jobs {
    pub(crate) fn new() -> Self {
        let (started_tx, started) = mpsc::unbounded_channel();
        let (ended_tx, ended) = mpsc::unbounded_channel();
        Self {
            started_tx,
            started,
            ended_tx,
            ended,
        }
    }

    /// A job named `name` that runs until the returned sender is used (or dropped).
    pub(crate) fn held(
        &self,
        name: &str,
    ) -> (
        oneshot::Sender<()>,
        impl Future<Output = Result<(), BoxError>> + Send + 'static,
    ) {
        let (release, released) = oneshot::channel::<()>();
        let name: Arc<str> = name.into();
        let started = self.started_tx.clone();
        let ended = self.ended_tx.clone();
        let job = async move {
            started.send(name.clone()).unwrap();
            let _ = released.await;
            ended.send(name).unwrap();
            Ok(())
        };
        (release, job)
    }

    /// The next job to start.
    pub(crate) async fn started(&mut self) -> Arc<str> {
        self.started.recv().await.unwrap()
    }

    /// The next job to end.
    pub(crate) async fn ended(&mut self) -> Arc<str> {
        self.ended.recv().await.unwrap()
    }

    /// Whether a job started that was not yet taken with `started`.
    pub(crate) fn any_started(&mut self) -> bool {
        !self.started.is_empty()
    }

    /// Whether a job ended that was not yet taken with `ended`.
    pub(crate) fn any_ended(&mut self) -> bool {
        !self.ended.is_empty()
    }
}
