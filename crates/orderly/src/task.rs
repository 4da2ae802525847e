//! One-off tasks (twelve-factor XII): a migration, a repair, a report, run as its own process
//! with the service's configuration and components; its result becomes the exit code.

use std::fmt;
use std::future::Future;

use crate::component::Component;
use crate::context::Context;
use crate::error::BoxError;
use crate::health::Phase;

/// The component [`SystemBuilder::add_task`](crate::SystemBuilder::add_task) adds: its start
/// spawns the work and returns at once; the work begins when the system has started, and its
/// end stops the system.
pub(crate) struct Task<F, D> {
    work: F,
    _deps: std::marker::PhantomData<fn(D)>,
}

impl<F, D> Task<F, D> {
    pub(crate) fn new(work: F) -> Self {
        Self {
            work,
            _deps: std::marker::PhantomData,
        }
    }
}

impl<F, D, E, Fut> Component for Task<F, D>
where
    D: Send + 'static,
    F: FnMut(D, Context) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<BoxError>,
{
    type Deps = D;
    type Resource = ();

    async fn start(&mut self, deps: D, ctx: Context) -> Result<(), BoxError> {
        let work = (self.work)(deps, ctx.clone());
        let done = ctx.clone();
        // A panic is caught by `spawn` and fails the component like an error.
        ctx.spawn(ctx.name().to_owned(), async move {
            // The work begins once the whole system has started, not only the task's
            // dependencies: it runs on the same components as the service, and its end is
            // never mistaken for a shutdown during the start (which would cancel the start).
            let mut status = done.status();
            let started = status
                .wait_for(|s| !matches!(s.phase, Phase::Created | Phase::Starting))
                .await
                .is_ok_and(|s| s.phase == Phase::Running);
            if !started {
                return Ok(()); // the system stops before it ran: nothing to do
            }
            match work.await {
                Ok(()) => done.shutdown(),
                // Not returned: the report names the component, not "task 'x' failed".
                Err(error) => done.fail(error),
            }
            Ok::<_, BoxError>(())
        });
        Ok(())
    }
}

impl<F, D> fmt::Debug for Task<F, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task").finish_non_exhaustive()
    }
}
