//! C14: the typed event stream, its order and durations, and `log_all_events()`.

use std::time::Duration;

use orderly::{Event, EventKind, SystemBuilder};
use serde_json::Value;

use crate::support::{
    Captured, Log, Plan, Probe, at, builder, observed, started, trace, until_stopped,
};

const SECOND: Duration = Duration::from_secs(1);

/// base (starts in 3 s, stops in 2 s) <- top.
fn timed(b: SystemBuilder) -> SystemBuilder {
    let log = Log::default();
    let mut b = b;
    let base = Probe::new("base", &log)
        .on_start(Plan::sleep(3 * SECOND))
        .on_stop(Plan::sleep(2 * SECOND));
    let base = b.add("base", (), base);
    b.add("top", base, Probe::new("top", &log));
    b
}

async fn run(b: SystemBuilder) -> Vec<Event> {
    let (system, mut events) = observed(b);
    let report = started(system).await.stop().await;
    assert!(report.is_clean(), "{report}");
    until_stopped(&mut events).await
}

#[tokio::test(start_paused = true)]
async fn events_follow_the_lifecycle_in_order() {
    let events = run(timed(builder("events"))).await;

    assert_eq!(
        trace(&events),
        [
            "system_starting",
            "component_starting base",
            "component_started base",
            "component_starting top",
            "component_started top",
            "system_started",
            "readiness_changed",
            "readiness_changed",
            "system_stopping",
            "component_stopping top",
            "component_stopped top",
            "component_stopping base",
            "component_stopped base",
            "system_stopped",
        ]
    );
    let readiness: Vec<bool> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ReadinessChanged { ready, .. } => Some(ready),
            _ => None,
        })
        .collect();
    assert_eq!(readiness, [true, false]);
    assert!(events.iter().all(|e| &*e.system == "events"));
}

#[tokio::test(start_paused = true)]
async fn durations_are_exact_on_the_paused_clock() {
    let events = run(timed(builder("events"))).await;

    let took = |name: &str| {
        events.iter().find_map(|e| match &e.kind {
            EventKind::ComponentStarted { component, took }
            | EventKind::ComponentStopped { component, took }
                if e.kind.name() == name && &**component == "base" =>
            {
                Some(*took)
            }
            EventKind::SystemStarted { took } | EventKind::SystemStopped { took, .. }
                if e.kind.name() == name =>
            {
                Some(*took)
            }
            _ => None,
        })
    };
    assert_eq!(took("component_started"), Some(3 * SECOND));
    assert_eq!(took("system_started"), Some(3 * SECOND));
    assert_eq!(took("component_stopped"), Some(2 * SECOND));
    assert_eq!(took("system_stopped"), Some(2 * SECOND));
    assert_eq!(at(&events, "component_starting top"), 3 * SECOND);
    assert_eq!(at(&events, "system_stopped"), 5 * SECOND);
}

/// Runs `b` with a JSON `tracing` subscriber for this thread and returns what it captured.
async fn logged(b: SystemBuilder) -> Vec<Value> {
    let captured = Captured::default();
    let guard = captured.install();
    run(b).await;
    drop(guard);
    captured.events()
}

#[tokio::test(start_paused = true)]
async fn log_all_events_sends_every_event_through_tracing_with_fields() {
    let lines = logged(timed(builder("logged").log_all_events())).await;

    let names: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(names.first(), Some(&"system_starting"));
    assert_eq!(names.last(), Some(&"system_stopped"));
    assert_eq!(names.len(), 14, "{names:?}");
    let started = lines
        .iter()
        .find(|l| l["event"] == "component_started" && l["component"] == "base")
        .expect("component_started base is logged");
    assert_eq!(started["system"], "logged");
    assert_eq!(started["took_ms"], 3000.0);
    assert_eq!(started["message"], "component started");
    let stopped = lines.last().unwrap();
    assert_eq!(stopped["exit_code"], 0);
    assert_eq!(stopped["reason"], "stop requested");
}

#[tokio::test(start_paused = true)]
async fn events_are_not_logged_unless_asked() {
    let lines = logged(timed(builder("quiet"))).await;

    assert_eq!(lines, Vec::<Value>::new());
}
