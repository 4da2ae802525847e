//! C5 start failures, C6 stop failures, C12 panics.

use std::sync::Arc;
use std::time::Duration;

use orderly::{BoxError, Event, EventKind, ExitReason, Failure, Outcome, Report, Step};
use tokio::sync::Notify;

use crate::support::{
    Act, Log, Plan, Probe, builder, components, failed, observed, started, trace, until_stopped,
};

/// base <- middle <- broken (whose start does `act`) <- after; `slow` is independent and still
/// starting when `broken` fails.
async fn start_failing(act: Act) -> (Report, Vec<String>, Vec<Event>) {
    let log = Log::default();
    let mut b = builder("failing");
    let base = b.add("base", (), Probe::new("base", &log));
    let middle = b.add("middle", base, Probe::new("middle", &log));
    let slow = Probe::new("slow", &log).on_start(Plan::sleep(Duration::from_secs(60)));
    b.add("slow", (), slow);
    let broken = b.add(
        "broken",
        middle,
        Probe::new("broken", &log).on_start(Plan::sleep(Duration::from_secs(1)).then(act)),
    );
    b.add("after", broken, Probe::new("after", &log));
    let (system, mut events) = observed(b);

    let report = failed(system).await;

    let events = until_stopped(&mut events).await;
    (report, log.take(), events)
}

fn start_failure(report: &Report) -> (&str, &Failure) {
    match &report.reason {
        ExitReason::StartFailed { component, failure } => (component, failure),
        other => panic!("expected a start failure, got {other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_start_error_stops_what_started_in_reverse_and_names_the_component_and_cause() {
    let (report, log, events) = start_failing(Act::Fail).await;

    assert_eq!(
        log,
        ["start base", "start middle", "stop middle", "stop base"]
    );
    assert_eq!(report.exit_code, 1);
    let (component, failure) = start_failure(&report);
    assert_eq!(component, "broken");
    assert_eq!(failure.to_string(), "broken refused to start");
    assert_eq!(
        report.reason.to_string(),
        "component 'broken' failed to start: broken refused to start"
    );
    assert!(matches!(
        report.component("broken").unwrap().outcome,
        Outcome::StartFailed(_)
    ));
    assert_eq!(components(&events, "component_failed"), ["broken"]);
}

#[tokio::test(start_paused = true)]
async fn starts_in_flight_are_cancelled_and_never_stopped() {
    let (report, log, events) = start_failing(Act::Fail).await;

    assert!(matches!(
        report.component("slow").unwrap().outcome,
        Outcome::Cancelled
    ));
    assert_eq!(components(&events, "component_cancelled"), ["slow"]);
    assert_eq!(
        components(&events, "component_stopping"),
        ["middle", "base"]
    );
    assert!(!log.iter().any(|l| l.contains("slow")), "{log:?}");
}

#[tokio::test(start_paused = true)]
async fn a_start_panic_is_that_components_start_failure() {
    let (report, log, _) = start_failing(Act::Panic).await;

    let (component, failure) = start_failure(&report);
    assert_eq!(component, "broken");
    assert!(failure.is_panic(), "{failure}");
    assert_eq!(failure.to_string(), "panicked: broken start exploded");
    assert_eq!(report.exit_code, 1);
    assert_eq!(
        log,
        ["start base", "start middle", "stop middle", "stop base"]
    );
}

/// base <- broken (whose stop does `act`) <- top.
async fn stop_failing(act: Act) -> (Report, Vec<String>, Vec<Event>) {
    let log = Log::default();
    let mut b = builder("stop-failing");
    let base = b.add("base", (), Probe::new("base", &log));
    let broken = b.add("broken", base, Probe::new("broken", &log).on_stop(act));
    b.add("top", broken, Probe::new("top", &log));
    let (system, mut events) = observed(b);

    let report = started(system).await.stop().await;

    let events = until_stopped(&mut events).await;
    (report, log.take(), events)
}

fn stop_failure(report: &Report, component: &str) -> Failure {
    match &report.component(component).expect("in the report").outcome {
        Outcome::StopFailed(failure) => failure.clone(),
        other => panic!("expected {component}'s stop to fail, got {other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_stop_error_is_reported_and_the_others_still_stop() {
    let (report, log, events) = stop_failing(Act::Fail).await;

    assert_eq!(log[3..], ["stop top", "stop broken", "stop base"]);
    assert_eq!(
        stop_failure(&report, "broken").to_string(),
        "broken refused to stop"
    );
    assert!(matches!(
        report.component("base").unwrap().outcome,
        Outcome::Stopped
    ));
    assert_eq!(report.exit_code, 1, "a failed stop is a failure");
    let failed = events.iter().find_map(|e| match &e.kind {
        EventKind::ComponentFailed {
            component, step, ..
        } => Some((component.clone(), *step)),
        _ => None,
    });
    assert_eq!(failed, Some(("broken".into(), Step::Stop)));
}

#[tokio::test(start_paused = true)]
async fn a_stop_panic_is_reported_and_the_others_still_stop() {
    let (report, log, events) = stop_failing(Act::Panic).await;

    assert_eq!(log[3..], ["stop top", "stop broken", "stop base"]);
    let failure = stop_failure(&report, "broken");
    assert!(failure.is_panic());
    assert_eq!(failure.to_string(), "panicked: broken stop exploded");
    assert_eq!(report.exit_code, 1);
    assert_eq!(components(&events, "component_stopped"), ["top", "base"]);
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_a_spawned_task_fails_the_system_naming_component_and_task() {
    let log = Log::default();
    let trigger = Arc::new(Notify::new());
    let mut b = builder("tasks");
    let base = b.add("base", (), Probe::new("base", &log));
    let armed = trigger.clone();
    b.add_fn("worker", base, move |_: &'static str, ctx| {
        let armed = armed.clone();
        async move {
            ctx.spawn("poller", async move {
                armed.notified().await;
                panic!("poller lost its connection");
                #[allow(unreachable_code)]
                Ok::<_, BoxError>(())
            });
            Ok::<_, BoxError>(())
        }
    });
    let (system, mut events) = observed(b);
    let running = started(system).await;

    trigger.notify_one();
    let report = running.wait().await;

    let ExitReason::Failed { component, failure } = &report.reason else {
        panic!("expected a run failure, got {}", report.reason);
    };
    assert_eq!(&**component, "worker");
    assert!(failure.is_panic());
    assert_eq!(failure.task(), Some("poller"));
    assert_eq!(
        report.reason.to_string(),
        "component 'worker' failed: task 'poller' panicked: poller lost its connection"
    );
    assert_eq!(report.exit_code, 1);
    assert_eq!(log.take(), ["start base", "stop base"]);
    let events = until_stopped(&mut events).await;
    assert!(trace(&events).contains(&"component_failed worker".to_owned()));
}
