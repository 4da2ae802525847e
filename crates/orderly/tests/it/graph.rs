//! C4: start along the graph, concurrently where it allows; stop is the mirror.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;

use crate::support::{
    Log, Plan, Probe, at, build, builder, components, observed, position, started, until_stopped,
    within,
};

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn a_component_starts_as_soon_as_its_own_dependencies_are_started() {
    let log = Log::default();
    let mut b = builder("graph");
    let fast = b.add(
        "fast",
        (),
        Probe::new("fast", &log).on_start(Plan::sleep(SECOND)),
    );
    let slow = b.add(
        "slow",
        (),
        Probe::new("slow", &log).on_start(Plan::sleep(5 * SECOND)),
    );
    b.add("needs_fast", fast, Probe::new("needs_fast", &log));
    b.add("needs_both", (fast, slow), Probe::new("needs_both", &log));
    let (system, mut events) = observed(b);

    let running = started(system).await;
    let report = running.stop().await;
    let events = until_stopped(&mut events).await;

    assert!(report.is_clean(), "{report}");
    assert_eq!(at(&events, "component_starting fast"), Duration::ZERO);
    assert_eq!(at(&events, "component_starting slow"), Duration::ZERO);
    assert_eq!(at(&events, "component_starting needs_fast"), SECOND);
    assert_eq!(at(&events, "component_starting needs_both"), 5 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn independent_components_start_concurrently() {
    let log = Log::default();
    // Each start waits for the other to have begun: started one at a time, neither finishes.
    let both = Arc::new(Barrier::new(2));
    let mut b = builder("graph");
    let left = b.add(
        "left",
        (),
        Probe::new("left", &log).on_start(Plan::barrier(&both)),
    );
    let right = b.add(
        "right",
        (),
        Probe::new("right", &log).on_start(Plan::barrier(&both)),
    );
    b.add("top", (left, right), Probe::new("top", &log));

    let running = within(started(build(b))).await;

    let mut started = log.take();
    assert_eq!(started.pop().as_deref(), Some("start top"));
    started.sort();
    assert_eq!(started, ["start left", "start right"]);
    assert!(running.stop().await.is_clean());
}

#[tokio::test(start_paused = true)]
async fn stop_is_the_mirror_of_start() {
    // base <- left, right <- top: a diamond.
    let log = Log::default();
    let both = Arc::new(Barrier::new(2));
    let mut b = builder("graph");
    let base = b.add("base", (), Probe::new("base", &log));
    let left = b.add(
        "left",
        base,
        Probe::new("left", &log).on_stop(Plan::barrier(&both).then_sleep(SECOND)),
    );
    let right = b.add(
        "right",
        base,
        Probe::new("right", &log).on_stop(Plan::barrier(&both).then_sleep(3 * SECOND)),
    );
    b.add("top", (left, right), Probe::new("top", &log));
    let (system, mut events) = observed(b);

    let running = started(system).await;
    let report = within(running.stop()).await;
    let events = until_stopped(&mut events).await;

    assert!(report.is_clean(), "{report}");
    let stopping = components(&events, "component_stopping");
    assert_eq!(stopping.first().map(String::as_str), Some("top"));
    assert_eq!(stopping.last().map(String::as_str), Some("base"));
    // left and right stop concurrently (each stop waits for the other to begin) and base only
    // once the slower of them is done.
    assert_eq!(at(&events, "component_stopped left"), SECOND);
    assert_eq!(at(&events, "component_stopped right"), 3 * SECOND);
    assert!(
        position(&events, "component_stopped right") < position(&events, "component_stopping base")
    );
    assert_eq!(at(&events, "component_stopping base"), 3 * SECOND);
}

/// A probe whose stop takes a second.
fn slow_stop<D>(name: &'static str, log: &Log) -> Probe<D> {
    Probe::new(name, log).on_stop(Plan::sleep(SECOND))
}

#[tokio::test(start_paused = true)]
async fn a_chain_stops_in_reverse_order_of_start_each_after_its_dependents() {
    let log = Log::default();
    let mut b = builder("chain");
    let config = b.add("config", (), slow_stop("config", &log));
    let db = b.add("db", config, slow_stop("db", &log));
    let http = b.add("http", (config, db), slow_stop("http", &log));
    b.add("worker", (db, http), slow_stop("worker", &log));
    let (system, mut events) = observed(b);

    let report = started(system).await.stop().await;
    let events = until_stopped(&mut events).await;

    assert!(report.is_clean(), "{report}");
    let order = ["config", "db", "http", "worker"];
    let starts = order.map(|name| format!("start {name}"));
    let stops = order.map(|name| format!("stop {name}"));
    assert_eq!(
        log.take(),
        [&starts[..], &stops.into_iter().rev().collect::<Vec<_>>()].concat()
    );
    // Each stop begins the moment the one after it in the chain has stopped, not before.
    for (i, name) in ["worker", "http", "db", "config"].into_iter().enumerate() {
        let seconds = u32::try_from(i).unwrap();
        assert_eq!(
            at(&events, &format!("component_stopping {name}")),
            seconds * SECOND
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_foundation_starts_before_and_stops_after_every_other_component() {
    // No component declares the logger, yet it is up first and down last.
    let log = Log::default();
    let mut b = builder("graph");
    let db = b.add("db", (), Probe::new("db", &log));
    b.add(
        "http",
        db,
        Probe::new("http", &log).on_stop(Plan::sleep(SECOND)),
    );
    b.add("worker", (), Probe::new("worker", &log));
    b.add(
        orderly::Spec::new("logger").foundation(),
        (),
        Probe::new("logger", &log),
    );

    let running = started(build(b)).await;
    let report = running.stop().await;

    assert!(report.is_clean(), "{report}");
    let lines = log.take();
    assert_eq!(lines.first().map(String::as_str), Some("start logger"));
    assert_eq!(lines.last().map(String::as_str), Some("stop logger"));
    assert_eq!(lines.len(), 8, "{lines:?}");
}

#[test]
fn a_foundation_that_depends_on_a_regular_component_is_a_build_error() {
    let log = Log::default();
    let mut b = builder("graph");
    let config = b.add("config", (), Probe::new("config", &log));
    b.add(
        orderly::Spec::new("admin").foundation(),
        config,
        Probe::<&'static str>::new("admin", &log),
    );
    let Err(error) = b.build() else {
        panic!("a foundation depending on a regular component must not build");
    };
    assert_eq!(
        error.to_string(),
        "system 'graph' is invalid:\n  - foundation 'admin' depends on 'config', which is not a foundation"
    );
}
