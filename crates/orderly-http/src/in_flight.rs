//! The requests in flight: counted, and named by route when a drain is cut short.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use http::Method;
use slab::Slab;
use tokio::time::Instant;

use crate::request_id::RequestId;
use crate::route::Route;
use crate::service::Peer;

/// Longest path recorded in the report; longer ones are cut (a report line, not a log of the
/// input).
const MAX_PATH: usize = 120;

/// One request in flight: what the drain report, the metrics and the access log say about it,
/// and what its handler can ask for (the [`Shutdown`] signal, the request id).
#[derive(Debug)]
pub(crate) struct Flight {
    pub(crate) method: Method,
    /// Its path, or its route if the server knew it before routing.
    target: Target,
    /// When its head was read.
    pub(crate) start: Instant,
    /// The route the route layer found, for a [`Target::Path`]. Kept apart from the target
    /// because `OnceLock::from` goes through the lock's slow path (about 50 instructions); the
    /// same goes for `client_id` and `made_id`.
    found_route: OnceLock<Arc<Route>>,
    /// Its connection's, with what the listener's requests share (the drain signal, the
    /// in-flight count, the instruments).
    pub(crate) peer: Arc<Peer>,
    /// The client's id.
    client_id: Option<RequestId>,
    /// Without one, the id the server made when something asked ([`Flight::request_id`]).
    made_id: OnceLock<RequestId>,
}

thread_local! {
    /// The request whose service the server is calling or polling on this thread.
    static CURRENT: Cell<Option<Arc<Flight>>> = const { Cell::new(None) };
}

/// While it lives, its request is the current one on this thread (see [`Guard::make_current`]).
#[derive(Debug)]
pub(crate) struct Current {
    previous: Option<Arc<Flight>>,
}

impl Drop for Current {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // Nothing to restore if the thread is being torn down.
        let _ = CURRENT.try_with(|current| current.replace(previous));
    }
}

/// What the server knows of a request's path before routing.
#[derive(Debug)]
enum Target {
    /// A static path seen before: its route, whose name is the path (axum routes by the path
    /// alone), so the path needs no copy.
    Known(Arc<Route>),
    /// The path the client asked for: a copy, not the request's `Uri`, which shares the buffer
    /// hyper reads the connection into. Holding it until the response body is sent would keep
    /// hyper from reusing that buffer for the next request (8 KiB allocated per request, the
    /// largest single cost the server used to add).
    Path(Box<str>),
}

impl Flight {
    /// A request whose head was read now; its `route`, if already known.
    pub(crate) fn new(
        method: Method,
        path: &str,
        peer: Arc<Peer>,
        client_id: Option<RequestId>,
        route: Option<Arc<Route>>,
    ) -> Self {
        Self {
            method,
            target: match route {
                Some(route) => Target::Known(route),
                None => Target::Path(path.into()),
            },
            start: Instant::now(),
            found_route: OnceLock::new(),
            peer,
            client_id,
            made_id: OnceLock::new(),
        }
    }

    /// Calls `f` with the current request (see [`Guard::make_current`]), if there is one. The
    /// request is taken out of the thread's slot meanwhile: `f` asking again would find none.
    pub(crate) fn with_current<T>(f: impl FnOnce(&Flight) -> T) -> Option<T> {
        CURRENT.with(|current| {
            let flight = current.take();
            let result = flight.as_deref().map(f);
            current.set(flight);
            result
        })
    }

    /// Its id, made now if the client sent none and nothing asked before; `None` on the admin
    /// listener, which records nothing.
    pub(crate) fn request_id(&self) -> Option<&RequestId> {
        self.peer.listener.recording.as_ref()?;
        self.client_id
            .as_ref()
            .or_else(|| Some(self.made_id.get_or_init(RequestId::generate)))
    }

    /// Its id if it has one yet: the client's, or one something asked for.
    pub(crate) fn request_id_if_any(&self) -> Option<&RequestId> {
        self.client_id.as_ref().or_else(|| self.made_id.get())
    }

    /// The path the client asked for (without the query).
    pub(crate) fn path(&self) -> &str {
        match &self.target {
            Target::Known(route) => &route.name,
            Target::Path(path) => path,
        }
    }

    /// The axum route it matched, once routed.
    pub(crate) fn route(&self) -> Option<&Arc<Route>> {
        match &self.target {
            Target::Known(route) => Some(route),
            Target::Path(_) => self.found_route.get(),
        }
    }

    /// Records the route it matched (the first one, if a nested router matches again).
    pub(crate) fn set_route(&self, route: Arc<Route>) {
        if let Target::Path(_) = self.target {
            let _ = self.found_route.set(route);
        }
    }

    /// `METHOD /route` or, before routing or when no route matched, `METHOD /path` (cut).
    fn report_line(&self) -> String {
        match self.route() {
            Some(route) => format!("{} {}", self.method, route.name),
            None => {
                let path = self.path();
                let mut end = path.len().min(MAX_PATH);
                while !path.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{} {}", self.method, &path[..end])
            }
        }
    }
}

/// The requests in flight. A request is in flight from the moment its head is read until its
/// response body has been sent or dropped.
///
/// They are counted, not listed: the only reader of a list would be the report of a drain cut
/// at its deadline, and the requests that drain cuts end there, as their connections are
/// closed. So from the cut on ([`InFlight::cut`]), each request that ends writes its line to
/// the report as it goes. Upgraded sessions are the exception: the cut does not end them (the
/// server has no hold on them), so they are listed apart while they last.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    /// Set at the drain deadline.
    cutting: AtomicBool,
    /// The requests that ended after it: `METHOD /route` lines.
    cut: Mutex<Vec<String>>,
    /// The upgraded sessions still open.
    upgraded: Mutex<Slab<Arc<Flight>>>,
}

impl InFlight {
    /// How many requests are in flight.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// The drain's deadline has come: the requests that end from now on were cut.
    pub(crate) fn cut(&self) {
        self.cutting.store(true, Ordering::SeqCst);
    }

    /// The routes of the requests cut since [`cut`](Self::cut), and of the upgraded sessions
    /// still open, with how many requests each, busiest first.
    pub(crate) fn report(&self) -> Vec<(String, usize)> {
        let mut routes: HashMap<String, usize> = HashMap::new();
        for line in lock(&self.cut).drain(..) {
            *routes.entry(line).or_default() += 1;
        }
        for (_, flight) in lock(&self.upgraded).iter() {
            *routes.entry(flight.report_line()).or_default() += 1;
        }
        let mut routes: Vec<(String, usize)> = routes.into_iter().collect();
        routes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        routes
    }
}

/// Nothing panics while holding these locks; a poisoned list is still a valid list.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One request in flight; dropping it ends the request.
#[derive(Debug)]
pub(crate) struct Guard {
    flight: Arc<Flight>,
}

impl Guard {
    /// Counts `flight` in its listener's requests in flight until the guard is dropped.
    pub(crate) fn enter(flight: Arc<Flight>) -> Guard {
        flight
            .peer
            .listener
            .in_flight
            .count
            .fetch_add(1, Ordering::Relaxed);
        Guard { flight }
    }

    /// The request.
    pub(crate) fn flight(&self) -> &Flight {
        &self.flight
    }

    /// Makes the request the current one on this thread until the returned value is dropped:
    /// the route layer (which fills in the route) and the [`Shutdown`](crate::Shutdown) and
    /// [`RequestId`](crate::RequestId) extractors find it there while the server calls and
    /// polls the request's service. This is how `tracing` knows the current span.
    ///
    /// Not an entry in the request's extensions, which would travel with the request to
    /// another task: each entry is a boxed value in a map made for the request, and that
    /// entry cost more than anything else the server adds (about 250 instructions a request,
    /// measured with callgrind).
    pub(crate) fn make_current(&self) -> Current {
        Current {
            previous: CURRENT.replace(Some(self.flight.clone())),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let registry = &self.flight.peer.listener.in_flight;
        registry.count.fetch_sub(1, Ordering::Relaxed);
        if registry.cutting.load(Ordering::SeqCst) {
            lock(&registry.cut).push(self.flight.report_line());
        }
    }
}

/// A request whose response switched protocols (see `upgrade`): in flight, and listed in the
/// drain's report if the deadline comes first, until dropped.
#[derive(Debug)]
pub(crate) struct Upgraded {
    key: usize,
    guard: Guard,
}

impl Upgraded {
    /// The session of the request `guard` is for.
    pub(crate) fn new(guard: &Guard) -> Self {
        let flight = guard.flight.clone();
        let key = lock(&flight.peer.listener.in_flight.upgraded).insert(flight.clone());
        Self {
            key,
            guard: Guard::enter(flight),
        }
    }
}

impl Drop for Upgraded {
    fn drop(&mut self) {
        let registry = &self.guard.flight.peer.listener.in_flight;
        // The list's reference goes after the lock is released.
        let entry = lock(&registry.upgraded).try_remove(self.key);
        drop(entry);
    }
}

#[cfg(test)]
mod tests;
