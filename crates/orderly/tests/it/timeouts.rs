//! C7: per-component start and stop timeouts, and the global shutdown deadline.

use std::sync::Mutex;
use std::time::Duration;

use orderly::{BoxError, Event, EventKind, ExitReason, FailureKind, Outcome, Spec, Step};

use tokio::sync::oneshot;

use crate::support::{
    Act, Log, Plan, Probe, at, build, builder, failed, observed, started, until_stopped, within,
};

const SECOND: Duration = Duration::from_secs(1);

fn timed_out(events: &[Event]) -> Vec<(String, Step, Duration)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ComponentTimedOut {
                component,
                step,
                after,
            } => Some((component.to_string(), *step, *after)),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_start_timeout_fails_the_system_naming_the_component() {
    let log = Log::default();
    let mut b = builder("timeouts");
    let base = b.add("base", (), Probe::new("base", &log));
    let stuck = Probe::new("stuck", &log).on_start(Act::Hang);
    b.add(Spec::new("stuck").start_timeout(2 * SECOND), base, stuck);
    let (system, mut events) = observed(b);

    let report = failed(system).await;
    let events = until_stopped(&mut events).await;

    let ExitReason::StartFailed { component, failure } = &report.reason else {
        panic!("expected a start failure, got {}", report.reason);
    };
    assert_eq!(&**component, "stuck");
    assert!(failure.is_timeout());
    assert_eq!(
        report.reason.to_string(),
        "component 'stuck' failed to start: timed out after 2s"
    );
    assert_eq!(
        timed_out(&events),
        [("stuck".into(), Step::Start, 2 * SECOND)]
    );
    assert_eq!(at(&events, "component_timed_out stuck"), 2 * SECOND);
    assert_eq!(log.take(), ["start base", "stop base"]);
    assert_eq!(report.exit_code, 1);
}

#[tokio::test(start_paused = true)]
async fn the_system_start_timeout_applies_to_components_without_their_own() {
    let log = Log::default();
    let mut b = builder("timeouts").start_timeout(3 * SECOND);
    b.add(
        "slow",
        (),
        Probe::new("slow", &log).on_start(Plan::sleep(4 * SECOND)),
    );
    let patient = Probe::new("patient", &log).on_start(Plan::sleep(4 * SECOND));
    b.add(Spec::new("patient").start_timeout(5 * SECOND), (), patient);

    let report = failed(build(b)).await;

    let ExitReason::StartFailed { component, failure } = &report.reason else {
        panic!("expected a start failure, got {}", report.reason);
    };
    assert_eq!(&**component, "slow");
    assert!(matches!(failure.kind(), FailureKind::Timeout(after) if *after == 3 * SECOND));
    assert_eq!(report.start_took, 3 * SECOND);
    assert!(matches!(
        report.component("patient").unwrap().outcome,
        Outcome::Cancelled
    ));
}

#[tokio::test(start_paused = true)]
async fn a_stop_timeout_abandons_the_stop_aborts_its_tasks_and_names_it() {
    let log = Log::default();
    let (dropped, aborted) = oneshot::channel();
    let dropped = Mutex::new(Some(dropped));
    let mut b = builder("timeouts");
    let base = b.add("base", (), Probe::new("base", &log));
    b.add_fn(
        Spec::new("stubborn").stop_timeout(3 * SECOND),
        base,
        move |_: &'static str, ctx| {
            let guard = Dropped(dropped.lock().unwrap().take());
            async move {
                // A task that ignores `stopping`: only an abort ends it.
                ctx.spawn("deaf", async move {
                    let _guard = guard;
                    std::future::pending::<Result<(), BoxError>>().await
                });
                Ok::<_, BoxError>(())
            }
        },
    );
    let (system, mut events) = observed(b);

    let report = started(system).await.stop().await;
    let events = until_stopped(&mut events).await;

    let outcome = &report.component("stubborn").unwrap().outcome;
    assert!(
        matches!(outcome, Outcome::StopFailed(f) if f.is_timeout()),
        "{outcome}"
    );
    assert_eq!(
        report.component("stubborn").unwrap().stopped_in,
        Some(3 * SECOND)
    );
    assert_eq!(
        timed_out(&events),
        [("stubborn".into(), Step::Stop, 3 * SECOND)]
    );
    assert_eq!(log.take(), ["start base", "stop base"], "base still stops");
    assert_eq!(report.exit_code, 1);
    within(aborted).await.expect("the task was aborted");
}

/// Reports, by dropping its sender, that the task holding it was dropped (aborted).
struct Dropped(Option<oneshot::Sender<()>>);

impl Drop for Dropped {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_global_deadline_ends_the_stop_with_code_124_naming_what_was_still_stopping() {
    let log = Log::default();
    let mut b = builder("deadline").shutdown_timeout(10 * SECOND);
    let base = b.add("base", (), Probe::new("base", &log));
    b.add("hung", base, Probe::new("hung", &log).on_stop(Act::Hang));

    let report = started(build(b)).await.stop().await;

    let ExitReason::DeadlineExceeded { still_stopping } = &report.reason else {
        panic!("expected the deadline, got {}", report.reason);
    };
    assert_eq!(still_stopping, &[std::sync::Arc::from("hung")]);
    assert_eq!(
        report.reason.to_string(),
        "shutdown deadline exceeded; still stopping: 'hung'"
    );
    assert_eq!(report.exit_code, 124);
    assert_eq!(report.stop_took, 10 * SECOND);
    let hung = &report.component("hung").unwrap().outcome;
    assert!(matches!(hung, Outcome::StopFailed(f) if matches!(f.kind(), FailureKind::Abandoned)));
    assert!(matches!(
        report.component("base").unwrap().outcome,
        Outcome::NotStopped
    ));
    assert_eq!(log.take(), ["start base", "start hung", "stop hung"]);
}

#[tokio::test(start_paused = true)]
async fn the_default_deadline_fits_inside_the_kubernetes_grace_period() {
    let mut b = builder("deadline");
    b.add(
        "hung",
        (),
        Probe::new("hung", &Log::default()).on_stop(Act::Hang),
    );

    let report = started(build(b)).await.stop().await;

    assert_eq!(report.exit_code, 124);
    assert_eq!(report.stop_took, Duration::from_secs(25));
}
