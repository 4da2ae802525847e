//! The route a request matched, for metrics labels, the access log and the drain report.
//!
//! axum knows the route only inside the router, after routing, and keeps it in the request's
//! extensions, which the server never sees again. So the server puts a layer on every route of
//! the router it serves ([`record_routes`]); the layer gives the current request's
//! [`Flight`](crate::in_flight::Flight) (see `Guard::make_current`) the [`Route`] it matched.
//!
//! The layer is not free: axum makes every layered route a boxed service around the original
//! boxed route, so a request through it clones two boxes instead of one and goes through a
//! second route future (about 1,000 instructions a request, measured with callgrind). A static
//! route needs none of that once it has been seen: its path *is* its route (axum routes by the
//! path alone), so the server remembers the paths that matched a static route ([`Known`]) and
//! sends their later requests to the same router without the layer, their route already known.
//! Routes with parameters (`/orders/{id}`) always go through the layer.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use tower::{Layer, Service};

use crate::http_metrics::RouteKeys;
use crate::in_flight::Flight;

/// A route of the served router, as requests are labelled and logged with it.
#[derive(Debug)]
pub(crate) struct Route {
    /// The route as axum writes it, e.g. `/orders/{id}`.
    pub(crate) name: Arc<str>,
    /// Its metrics' keys.
    pub(crate) keys: RouteKeys,
}

impl Route {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            keys: RouteKeys::default(),
        }
    }
}

/// What a listener serves: the service, with the route layer if it is an axum `Router`.
#[derive(Clone, Debug)]
pub(crate) struct Routed<S> {
    /// Records the route of each request (with the layer, for a router).
    pub(crate) recording: S,
    /// The same router without the layer, and the static paths seen so far; `None` for a
    /// service that is not a router.
    pub(crate) known: Option<(S, Arc<Known>)>,
}

impl<S> Routed<S> {
    /// `service` as it is: its requests count as unmatched.
    pub(crate) fn plain(service: S) -> Self {
        Self {
            recording: service,
            known: None,
        }
    }
}

/// Puts the route layer on `service` if it is an axum [`Router`] (the usual case); any other
/// service is served as it is, and its requests count as unmatched.
///
/// The router's handlers are also turned into routes here, once, as `axum::serve` does
/// (`with_state(())`): a `Router<()>` called as a service otherwise does it for every request,
/// layers included.
pub(crate) fn record_routes<S: Clone + 'static>(service: S) -> Routed<S> {
    // `S` is generic (any tower service); a type check once per start finds the router
    // without asking every caller to add the layer.
    let mut recording = service.clone();
    let mut plain = service;
    match (
        (&mut recording as &mut dyn Any).downcast_mut::<Router>(),
        (&mut plain as &mut dyn Any).downcast_mut::<Router>(),
    ) {
        (Some(layered), Some(router)) => {
            *layered = std::mem::take(layered).layer(RecordRoute).with_state(());
            *router = std::mem::take(router).with_state(());
        }
        _ => return Routed::plain(recording),
    }
    Routed {
        recording,
        known: Some((plain, Arc::default())),
    }
}

/// The paths that matched a static route, each with its [`Route`]: at most one entry per
/// static route of the router, so it needs no bound.
///
/// Hashed with foldhash's fixed-seed hasher rather than the standard library's SipHash (a
/// tenth of the cost on a short path): SipHash's keys guard a map whose entries an attacker
/// chooses from piling up in one bucket; here only the router's own static routes are ever
/// entered.
#[derive(Debug, Default)]
pub(crate) struct Known(RwLock<HashMap<Box<str>, Arc<Route>, foldhash::fast::FixedState>>);

impl Known {
    /// The route of `path`, if a request to it matched a static route before.
    pub(crate) fn route(&self, path: &str) -> Option<Arc<Route>> {
        let paths = self.0.read().unwrap_or_else(PoisonError::into_inner);
        paths.get(path).cloned()
    }

    /// A request to `path` matched `route`: remembered if the route is static (its name is the
    /// path), so that the next requests to `path` skip the layer.
    pub(crate) fn learn(&self, path: &str, route: &Arc<Route>) {
        if *route.name != *path {
            return;
        }
        let mut paths = self.0.write().unwrap_or_else(PoisonError::into_inner);
        paths.entry(path.into()).or_insert_with(|| route.clone());
    }
}

/// The layer; see the module docs.
#[derive(Clone, Copy, Debug)]
struct RecordRoute;

impl<S> Layer<S> for RecordRoute {
    type Service = RecordRouteService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RecordRouteService {
            inner,
            route: Arc::default(),
        }
    }
}

/// One route's service with the layer. Every request it sees matched the same route, so the
/// [`Route`] is made once and shared by every request after.
#[derive(Clone, Debug)]
struct RecordRouteService<S> {
    inner: S,
    route: Arc<OnceLock<Arc<Route>>>,
}

impl<S> RecordRouteService<S> {
    fn route(&self, matched: &MatchedPath) -> Arc<Route> {
        match self.route.get() {
            Some(route) if *route.name == *matched.as_str() => route.clone(),
            // The first request; or, against expectations, another route: not cached.
            _ => {
                let route = Arc::new(Route::new(matched.as_str()));
                let _ = self.route.set(route.clone());
                route
            }
        }
    }
}

impl<S> Service<Request> for RecordRouteService<S>
where
    S: Service<Request>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Some(matched) = request.extensions().get::<MatchedPath>() {
            Flight::with_current(|flight| flight.set_route(self.route(matched)));
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::future::{Future, poll_fn};

    use axum::body::Body;
    use axum::routing::get;
    use http::Method;
    use tower::ServiceExt;

    use super::*;
    use crate::in_flight::{Flight, Guard};

    async fn route_of(router: &Router, path: &str) -> Option<Arc<Route>> {
        let flight = Arc::new(Flight::new(
            Method::GET,
            path,
            crate::service::Peer::for_tests(Default::default()),
            None,
            None,
        ));
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = path.parse().unwrap();
        let response = router.clone().oneshot(request);
        tokio::pin!(response);
        // Polled as the server polls it: with the request as the current one.
        let guard = Guard::enter(flight.clone());
        poll_fn(|cx| {
            let _current = guard.make_current();
            response.as_mut().poll(cx)
        })
        .await
        .unwrap();
        flight.route().cloned()
    }

    /// Regression: a `Router<()>` served as a service re-applied its layers to every request,
    /// so each request made its route (and its metric keys) anew.
    #[tokio::test]
    async fn requests_to_one_route_share_it_and_unmatched_ones_have_none() {
        let router =
            record_routes(Router::new().route("/orders/{id}", get(|| async { "order" }))).recording;
        let one = route_of(&router, "/orders/1").await.unwrap();
        let two = route_of(&router, "/orders/2").await.unwrap();
        assert_eq!(&*one.name, "/orders/{id}");
        assert!(
            Arc::ptr_eq(&one, &two),
            "one Route per route, not per request"
        );
        assert!(route_of(&router, "/elsewhere").await.is_none());
    }

    /// Only a path that matched a static route is remembered: its route is its path.
    #[tokio::test]
    async fn the_paths_of_static_routes_are_known_after_their_first_request() {
        let routed = record_routes(
            Router::new()
                .route("/health", get(|| async { "ok" }))
                .route("/orders/{id}", get(|| async { "order" })),
        );
        let (_, known) = routed.known.clone().unwrap();
        let router = routed.recording;
        for path in ["/health", "/orders/7"] {
            assert!(known.route(path).is_none());
            let route = route_of(&router, path).await.unwrap();
            known.learn(path, &route);
        }
        let health = known
            .route("/health")
            .expect("a static route's path is known");
        assert_eq!(&*health.name, "/health");
        assert!(
            Arc::ptr_eq(&health, &route_of(&router, "/health").await.unwrap()),
            "the same Route, with the same metric handles"
        );
        assert!(
            known.route("/orders/7").is_none(),
            "a route with parameters is not"
        );
    }

    /// A service that is not a router is served as it is, with nothing to remember.
    #[test]
    fn another_service_is_served_as_it_is() {
        let routed = record_routes(tower::service_fn(|_: Request| async {
            Ok::<_, std::convert::Infallible>(axum::response::Response::new(Body::empty()))
        }));
        assert!(routed.known.is_none());
    }
}
