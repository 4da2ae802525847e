use std::sync::Arc;

use http::{Method, Uri};

use super::{Flight, InFlight};
use crate::route::Route;
use crate::shutdown::Shutdown;

fn flight(method: Method, path: &str) -> Arc<Flight> {
    Arc::new(Flight::new(
        method,
        path.parse::<Uri>().unwrap(),
        Arc::new(Shutdown::never()),
        Arc::new(crate::service::Peer::new(None, 0)),
        None,
    ))
}

#[test]
fn counts_per_route_across_connections_until_the_guards_drop() {
    let registry = Arc::new(InFlight::default());
    let a = registry.enter(0, flight(Method::GET, "/events"));
    // Another connection, and one that shares the first one's shard.
    let b = registry.enter(1, flight(Method::GET, "/events?since=1"));
    let c = registry.enter(super::SHARDS, flight(Method::POST, "/orders"));
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
    let one = flight(Method::GET, "/orders/1");
    let two = flight(Method::GET, "/orders/2");
    let _guards = (
        registry.enter(0, one.clone()),
        registry.enter(0, two.clone()),
    );
    let route = Arc::new(Route::new("/orders/{id}"));
    one.set_route(route.clone());
    two.set_route(route);
    assert_eq!(registry.snapshot(), vec![("GET /orders/{id}".into(), 2)]);
}

#[test]
fn long_paths_are_cut_on_a_character_boundary() {
    let registry = Arc::new(InFlight::default());
    let path = format!("/{}", "%C3%A9é".repeat(30));
    let _guard = registry.enter(0, flight(Method::GET, &path));
    let (route, _) = registry.snapshot().remove(0);
    assert!(route.len() <= "GET ".len() + super::MAX_PATH);
    assert!(route.starts_with("GET /%C3%A9"));
}
