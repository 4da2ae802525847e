//! The component contract, and components made from closures.

use std::fmt;
use std::future::Future;

use crate::context::Context;
use crate::error::BoxError;

/// A part of a service with a lifecycle: a config loader, a database pool, an HTTP server…
///
/// `start` receives exactly the dependencies the component was added with (their resources'
/// values, see [`Dependencies`](crate::Dependencies)) and a [`Context`], and returns the
/// resource it delegates to its dependents. `stop` is optional. Both run in their own task, so
/// a panic is caught and reported as this component's failure, and a timeout abandons them.
///
/// A component is started again after an in-process restart, so `start` takes `&mut self` and
/// should leave the value ready for another `start` after `stop`.
///
/// ```
/// use orderly::{BoxError, Component, Context};
///
/// #[derive(Clone)]
/// struct Pool(std::sync::Arc<String>);
///
/// struct Database;
///
/// impl Component for Database {
///     type Deps = String; // the URL, mapped from the config
///     type Resource = Pool;
///
///     async fn start(&mut self, url: String, _ctx: Context) -> Result<Pool, BoxError> {
///         Ok(Pool(url.into()))
///     }
///
///     async fn stop(&mut self) -> Result<(), BoxError> {
///         Ok(()) // close the pool
///     }
/// }
/// ```
pub trait Component: Send + 'static {
    /// What `start` receives: the `Output` of the dependencies the component is added with.
    type Deps: Send + 'static;
    /// What the component delegates to its dependents; each receives a clone.
    type Resource: Clone + Send + Sync + 'static;

    /// Starts the component.
    ///
    /// When the system begins shutting down while this runs, the future is dropped (the start
    /// is cancelled) and `stop` is not called.
    fn start(
        &mut self,
        deps: Self::Deps,
        ctx: Context,
    ) -> impl Future<Output = Result<Self::Resource, BoxError>> + Send;

    /// Stops the component, after every component that depends on it has stopped. The default
    /// does nothing. Tasks spawned with [`Context::spawn`] are awaited after it returns.
    fn stop(&mut self) -> impl Future<Output = Result<(), BoxError>> + Send {
        async { Ok(()) }
    }
}

/// A component whose `start` is a closure and that has nothing to stop; made by [`from_fn`] or
/// [`SystemBuilder::add_fn`](crate::SystemBuilder::add_fn).
pub struct FromFn<F, D> {
    f: F,
    _deps: std::marker::PhantomData<fn(D)>,
}

/// Makes a component from a closure `|deps, ctx| async { … }`.
///
/// Tasks the closure spawns with [`Context::spawn`] are the component's "stop": they see
/// [`Context::stopping`] fire and are awaited.
pub fn from_fn<D, R, E, F, Fut>(f: F) -> FromFn<F, D>
where
    F: FnMut(D, Context) -> Fut + Send + 'static,
    Fut: Future<Output = Result<R, E>> + Send,
    E: Into<BoxError>,
{
    FromFn {
        f,
        _deps: std::marker::PhantomData,
    }
}

impl<D, R, E, F, Fut> Component for FromFn<F, D>
where
    D: Send + 'static,
    R: Clone + Send + Sync + 'static,
    F: FnMut(D, Context) -> Fut + Send + 'static,
    Fut: Future<Output = Result<R, E>> + Send,
    E: Into<BoxError>,
{
    type Deps = D;
    type Resource = R;

    async fn start(&mut self, deps: D, ctx: Context) -> Result<R, BoxError> {
        (self.f)(deps, ctx).await.map_err(Into::into)
    }
}

impl<F, D> fmt::Debug for FromFn<F, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFn").finish_non_exhaustive()
    }
}

/// A component that delegates a fixed value; used by
/// [`SystemBuilder::provide`](crate::SystemBuilder::provide) to put a fake in place of a real
/// component in tests.
#[derive(Debug)]
pub(crate) struct Value<R>(pub(crate) R);

impl<R: Clone + Send + Sync + 'static> Component for Value<R> {
    type Deps = ();
    type Resource = R;

    async fn start(&mut self, (): (), _ctx: Context) -> Result<R, BoxError> {
        Ok(self.0.clone())
    }
}

/// The object-safe face of a component, used by the supervisor.
pub(crate) trait Erased: Send {
    fn start(
        &mut self,
        deps: Box<dyn std::any::Any + Send>,
        ctx: Context,
    ) -> futures_util::future::BoxFuture<'_, Result<crate::deps::Slot, BoxError>>;
    fn stop(&mut self) -> futures_util::future::BoxFuture<'_, Result<(), BoxError>>;
}

pub(crate) struct Wrapped<C>(pub(crate) C);

impl<C: Component> Erased for Wrapped<C> {
    fn start(
        &mut self,
        deps: Box<dyn std::any::Any + Send>,
        ctx: Context,
    ) -> futures_util::future::BoxFuture<'_, Result<crate::deps::Slot, BoxError>> {
        Box::pin(async move {
            // The builder pairs each component with dependencies whose output is `C::Deps`.
            let deps = deps
                .downcast::<C::Deps>()
                .map_err(|_| "orderly bug: dependencies of the wrong type")?;
            let resource = self.0.start(*deps, ctx).await?;
            Ok(std::sync::Arc::new(resource) as crate::deps::Slot)
        })
    }

    fn stop(&mut self) -> futures_util::future::BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(self.0.stop())
    }
}
