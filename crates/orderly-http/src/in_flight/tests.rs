use std::sync::Arc;

use http::{Method, Uri};

use super::{Flight, Guard, InFlight, Upgraded};
use crate::route::Route;
use crate::service::Peer;

/// A request for `target` (a path and perhaps a query) in `registry`.
fn flight(registry: &Arc<InFlight>, method: Method, target: &str) -> Arc<Flight> {
    Arc::new(Flight::new(
        method,
        target.parse::<Uri>().unwrap().path(),
        Peer::for_tests(registry.clone()),
        None,
        None,
    ))
}

#[test]
fn requests_are_counted_until_their_guards_drop_and_reported_only_when_cut() {
    let registry = Arc::new(InFlight::default());
    let a = Guard::enter(flight(&registry, Method::GET, "/events"));
    let b = Guard::enter(flight(&registry, Method::GET, "/events?since=1"));
    let c = Guard::enter(flight(&registry, Method::POST, "/orders"));
    let done = Guard::enter(flight(&registry, Method::GET, "/done"));
    assert_eq!(registry.count(), 4);
    // Ended before the deadline: not cut.
    drop(done);
    registry.cut();
    drop((a, b, c));
    assert_eq!(registry.count(), 0);
    assert_eq!(
        registry.report(),
        vec![("GET /events".into(), 2), ("POST /orders".into(), 1)]
    );
}

#[test]
fn a_routed_request_is_reported_by_its_route_not_its_path() {
    let registry = Arc::new(InFlight::default());
    let one = flight(&registry, Method::GET, "/orders/1");
    let two = flight(&registry, Method::GET, "/orders/2");
    let guards = (Guard::enter(one.clone()), Guard::enter(two.clone()));
    let route = Arc::new(Route::new("/orders/{id}"));
    one.set_route(route.clone());
    two.set_route(route);
    registry.cut();
    drop(guards);
    assert_eq!(registry.report(), vec![("GET /orders/{id}".into(), 2)]);
}

#[test]
fn long_paths_are_cut_on_a_character_boundary() {
    let registry = Arc::new(InFlight::default());
    let path = format!("/{}", "%C3%A9é".repeat(30));
    let guard = Guard::enter(flight(&registry, Method::GET, &path));
    registry.cut();
    drop(guard);
    let (route, _) = registry.report().remove(0);
    assert!(route.len() <= "GET ".len() + super::MAX_PATH);
    assert!(route.starts_with("GET /%C3%A9"));
}

/// The cut does not end an upgraded session: it is listed while it is open.
#[test]
fn upgraded_sessions_are_in_flight_and_listed_while_open() {
    let registry = Arc::new(InFlight::default());
    let request = Guard::enter(flight(&registry, Method::GET, "/ws"));
    let session = Upgraded::new(&request);
    // The `101` response has been sent.
    drop(request);
    assert_eq!(registry.count(), 1);
    registry.cut();
    assert_eq!(registry.report(), vec![("GET /ws".into(), 1)]);
    drop(session);
    assert_eq!(registry.count(), 0);
}
