use std::sync::Arc;

use http::Method;

use super::InFlight;

#[test]
fn counts_per_route_until_the_guards_drop() {
    let registry = Arc::new(InFlight::default());
    let a = registry.enter(&Method::GET, "/events");
    let b = registry.enter(&Method::GET, "/events");
    let c = registry.enter(&Method::POST, "/orders");
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
fn long_paths_are_cut_on_a_character_boundary() {
    let registry = Arc::new(InFlight::default());
    let path = format!("/{}", "é".repeat(100));
    let _guard = registry.enter(&Method::GET, &path);
    let (route, _) = registry.snapshot().remove(0);
    assert!(route.len() <= "GET ".len() + super::MAX_PATH);
    assert!(route.starts_with("GET /é"));
}
