//! hyper's background tasks (connections, HTTP/2 streams) spawned on a tracker, so the drill
//! can wait for them instead of leaving them behind.

use std::future::Future;

use tokio_util::task::TaskTracker;

/// A hyper executor that spawns on a [`TaskTracker`].
#[derive(Clone, Debug)]
pub(crate) struct Tracked(pub(crate) TaskTracker);

impl<F> hyper::rt::Executor<F> for Tracked
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(future);
    }
}
