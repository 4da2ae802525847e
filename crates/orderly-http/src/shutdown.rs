//! The signal that long-lived responses (SSE, WebSocket, streaming bodies) select on.

use std::convert::Infallible;
use std::future::Future;

use axum::extract::FromRequestParts;
use http::request::Parts;
use tokio_util::sync::CancellationToken;

use crate::in_flight::Flight;

/// Fires when the server that received the request begins draining.
///
/// Every request served by [`HttpServer`](crate::HttpServer) carries one: in axum it is an
/// extractor, and any tower service on the request's way finds it with [`Shutdown::current`].
/// A long-lived response selects on
/// [`draining`](Shutdown::draining) and ends cleanly, so the drain does not have to wait for
/// the deadline and cut it:
///
/// ```
/// use std::convert::Infallible;
/// use axum::response::sse::{Event, Sse};
/// use futures_util::{stream, StreamExt};
/// use orderly_http::Shutdown;
///
/// async fn events(shutdown: Shutdown) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
///     let ticks = stream::repeat_with(|| Ok(Event::default().data("tick")))
///         .then(|e| async { tokio::time::sleep(std::time::Duration::from_secs(1)).await; e });
///     let goodbye = stream::once(async { Ok(Event::default().event("bye").data("server stopping")) });
///     Sse::new(ticks.take_until(shutdown.draining()).chain(goodbye))
/// }
/// let app: axum::Router = axum::Router::new().route("/events", axum::routing::get(events));
/// ```
///
/// Outside an `HttpServer` (a router called directly in a unit test) the extractor gives a
/// signal that never fires.
#[derive(Clone, Debug)]
pub struct Shutdown {
    draining: CancellationToken,
}

impl Shutdown {
    pub(crate) fn new(draining: CancellationToken) -> Self {
        Self { draining }
    }

    /// A signal that never fires, for a request not served by an `HttpServer`.
    pub fn never() -> Self {
        Self::new(CancellationToken::new())
    }

    /// Completes when the server begins draining (at once if it already has). The future does
    /// not borrow `self`, so it can be moved into a stream (`take_until`).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: drop it and call again.
    pub fn draining(&self) -> impl Future<Output = ()> + Send + use<> {
        self.draining.clone().cancelled_owned()
    }

    /// Whether the server is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// The signal of the request an `HttpServer` is serving with the code that asks: the
    /// request's handler, its extractors, and any tower service on its way, while the server
    /// calls or polls them (see [`RequestId::current`](crate::RequestId::current)). `None`
    /// elsewhere, such as in a task the request's code spawned: take the signal along.
    ///
    /// ```
    /// use orderly_http::Shutdown;
    ///
    /// fn draining() -> bool {
    ///     Shutdown::current().is_some_and(|shutdown| shutdown.is_draining())
    /// }
    /// assert!(!draining());
    /// ```
    pub fn current() -> Option<Shutdown> {
        Flight::with_current(|flight| flight.peer.listener.shutdown.clone())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Shutdown {
    type Rejection = Infallible;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(Shutdown::current().unwrap_or_else(Shutdown::never))
    }
}
