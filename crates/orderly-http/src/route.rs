//! The route a request matched, for metrics labels, the access log and the drain report.
//!
//! axum knows the route only inside the router, after routing, and keeps it in the request's
//! extensions, which the server never sees again. So the server puts a layer on every route of
//! the router it serves ([`record_routes`]); the layer gives the request's
//! [`Flight`](crate::in_flight::Flight), which the server shares, the [`Route`] it matched.

use std::any::Any;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use tower::{Layer, Service};

use crate::http_metrics::RouteKeys;
use crate::in_flight::Served;

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

/// Puts the route layer on `service` if it is an axum [`Router`] (the usual case); any other
/// service is served as it is, and its requests count as unmatched.
///
/// The router's handlers are also turned into routes here, once, as `axum::serve` does
/// (`with_state(())`): a `Router<()>` called as a service otherwise does it for every request,
/// layers included.
pub(crate) fn record_routes<S: 'static>(mut service: S) -> S {
    // `S` is generic (any tower service); a type check once per start finds the router
    // without asking every caller to add the layer.
    if let Some(router) = (&mut service as &mut dyn Any).downcast_mut::<Router>() {
        *router = std::mem::take(router).layer(RecordRoute).with_state(());
    }
    service
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
        let extensions = request.extensions();
        if let (Some(flight), Some(matched)) =
            (Served::of(extensions), extensions.get::<MatchedPath>())
        {
            flight.set_route(self.route(matched));
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use http::{Method, Uri};
    use tower::ServiceExt;

    use super::*;
    use crate::in_flight::Flight;

    async fn route_of(router: &Router, path: &str) -> Option<Arc<Route>> {
        let flight = Arc::new(Flight::new(
            Method::GET,
            path.parse::<Uri>().unwrap(),
            crate::service::Peer::for_tests(Default::default(), 0),
            None,
        ));
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = path.parse().unwrap();
        request.extensions_mut().insert(Served(flight.clone()));
        router.clone().oneshot(request).await.unwrap();
        flight.route().cloned()
    }

    /// Regression: a `Router<()>` served as a service re-applied its layers to every request,
    /// so each request made its route (and its metric keys) anew.
    #[tokio::test]
    async fn requests_to_one_route_share_it_and_unmatched_ones_have_none() {
        let router = record_routes(Router::new().route("/orders/{id}", get(|| async { "order" })));
        let one = route_of(&router, "/orders/1").await.unwrap();
        let two = route_of(&router, "/orders/2").await.unwrap();
        assert_eq!(&*one.name, "/orders/{id}");
        assert!(
            Arc::ptr_eq(&one, &two),
            "one Route per route, not per request"
        );
        assert!(route_of(&router, "/elsewhere").await.is_none());
    }
}
