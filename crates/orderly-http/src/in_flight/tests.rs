use std::sync::Arc;

use http::{Method, Uri};

use super::{Flight, Guard, InFlight};
use crate::route::Route;
use crate::service::Peer;

/// A request for `target` (a path and perhaps a query) of connection `connection` in
/// `registry`.
fn flight(
    registry: &Arc<InFlight>,
    connection: usize,
    method: Method,
    target: &str,
) -> Arc<Flight> {
    Arc::new(Flight::new(
        method,
        target.parse::<Uri>().unwrap().path(),
        Peer::for_tests(registry.clone(), connection),
        None,
        None,
    ))
}

#[test]
fn counts_per_route_across_connections_until_the_guards_drop() {
    let registry = Arc::new(InFlight::default());
    let a = Guard::enter(flight(&registry, 0, Method::GET, "/events"));
    // Another connection, and one that shares the first one's shard.
    let b = Guard::enter(flight(&registry, 1, Method::GET, "/events?since=1"));
    let c = Guard::enter(flight(&registry, super::SHARDS, Method::POST, "/orders"));
    assert_eq!(registry.count(), 3);
    assert_eq!(
        registry.snapshot(),
        vec![("GET /events".into(), 2), ("POST /orders".into(), 1)]
    );
    drop((a, c));
    assert_eq!(registry.snapshot(), vec![("GET /events".into(), 1)]);
    drop(b);
    assert_eq!(registry.count(), 0);
    assert!(registry.snapshot().is_empty());
}

#[test]
fn a_routed_request_is_reported_by_its_route_not_its_path() {
    let registry = Arc::new(InFlight::default());
    let one = flight(&registry, 0, Method::GET, "/orders/1");
    let two = flight(&registry, 0, Method::GET, "/orders/2");
    let _guards = (Guard::enter(one.clone()), Guard::enter(two.clone()));
    let route = Arc::new(Route::new("/orders/{id}"));
    one.set_route(route.clone());
    two.set_route(route);
    assert_eq!(registry.snapshot(), vec![("GET /orders/{id}".into(), 2)]);
}

#[test]
fn long_paths_are_cut_on_a_character_boundary() {
    let registry = Arc::new(InFlight::default());
    let path = format!("/{}", "%C3%A9é".repeat(30));
    let _guard = Guard::enter(flight(&registry, 0, Method::GET, &path));
    let (route, _) = registry.snapshot().remove(0);
    assert!(route.len() <= "GET ".len() + super::MAX_PATH);
    assert!(route.starts_with("GET /%C3%A9"));
}
