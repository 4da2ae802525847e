//! Regression tests, each named after a bug: the peers' known failures (corpjs-system and
//! others, SPEC §2) and the bugs these tests found in orderly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orderly::{
    BoxError, Context, ExitReason, Outcome, Report, Running, SighupPolicy, Signal, Spec,
};
use tokio::sync::{Notify, oneshot};

use crate::support::{
    Act, Log, Plan, Probe, at, build, builder, components, failed, next, observed, started, trace,
    until_stopped, within,
};

const SECOND: Duration = Duration::from_secs(1);

/// corpjs leaks the components that started when a later start fails.
#[tokio::test(start_paused = true)]
async fn start_failure_after_others_started_stops_exactly_those_in_reverse_order() {
    let log = Log::default();
    let mut b = builder("leak");
    let config = b.add("config", (), Probe::new("config", &log));
    let db = b.add(
        "db",
        config,
        Probe::new("db", &log).on_stop(Plan::sleep(SECOND)),
    );
    let cache = b.add(
        "cache",
        config,
        Probe::new("cache", &log).on_stop(Plan::sleep(SECOND)),
    );
    b.add("metrics", (), Probe::new("metrics", &log));
    b.add(
        "pending",
        (),
        Probe::new("pending", &log).on_start(Act::Hang),
    );
    let broken = Probe::new("broken", &log).on_start(Plan::sleep(SECOND).then(Act::Fail));
    let broken = b.add("broken", (db, cache), broken);
    b.add("after", broken, Probe::new("after", &log));
    let (system, mut events) = observed(b);

    let report = failed(system).await;

    let events = until_stopped(&mut events).await;
    let stops = components(&events, "component_stopping");
    assert_eq!(stops.len(), 4, "exactly the started ones: {stops:?}");
    assert!(stops.contains(&"metrics".to_owned()));
    // db and cache stop together, config once both are done (the failure came at 1 s).
    assert_eq!(at(&events, "component_stopping db"), SECOND);
    assert_eq!(at(&events, "component_stopping cache"), SECOND);
    assert_eq!(at(&events, "component_stopping config"), 2 * SECOND);
    for name in ["config", "db", "cache", "metrics"] {
        assert_eq!(log.count(&format!("stop {name}")), 1, "{name}");
    }
    assert!(matches!(
        report.component("pending").unwrap().outcome,
        Outcome::Cancelled
    ));
    assert!(matches!(
        report.component("after").unwrap().outcome,
        Outcome::NotStarted
    ));
    assert_eq!(report.exit_code, 1);
}

/// corpjs races its own signal handlers when systems are nested: the child also reacts to the
/// signal and stops its components under the parent's feet.
#[tokio::test(start_paused = true)]
async fn nested_system_does_not_race_its_parent_on_a_stop_signal() {
    let log = Log::default();
    let mut child = builder("child").shutdown_delay(5 * SECOND);
    let first = child.add("first", (), Probe::new("first", &log));
    let second = child.add("second", first, Probe::new("second", &log));
    let child = build(child);
    let mut child_events = child.events();
    let mut b = builder("parent");
    let base = b.add("base", (), Probe::new("base", &log));
    let nested = b.add("child", (), child);
    let user = Probe::new("user", &log).on_stop(Plan::sleep(SECOND));
    b.add("user", (base, nested.get(second)), user);
    let running = started(build(b)).await;

    running.signal(Signal::Terminate);
    let report = running.wait().await;

    assert!(matches!(
        report.reason,
        ExitReason::Signal(Signal::Terminate)
    ));
    assert_eq!(report.exit_code, 0, "{report}");
    let stops: Vec<String> = log
        .take()
        .into_iter()
        .filter(|l| l.starts_with("stop"))
        .collect();
    assert_eq!(stops.len(), 4, "each exactly once: {stops:?}");
    assert_eq!(stops[0], "stop user");
    let place = |line: &str| stops.iter().position(|s| s == line).unwrap();
    assert!(place("stop second") < place("stop first"));
    assert!(stops.contains(&"stop base".to_owned()));
    let child_events = until_stopped(&mut child_events).await;
    assert_eq!(
        at(&child_events, "component_stopping second"),
        SECOND,
        "after user stopped"
    );
    assert_eq!(at(&child_events, "component_stopping first"), SECOND);
    let child_events = trace(&child_events);
    assert!(!child_events.contains(&"signal_received".to_owned()));
    assert!(!child_events.contains(&"shutdown_delay".to_owned()));
    assert_eq!(
        child_events
            .iter()
            .filter(|e| *e == "system_stopping")
            .count(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_that_hangs_does_not_keep_the_components_below_it_from_stopping() {
    let log = Log::default();
    let mut b = builder("hang").stop_timeout(2 * SECOND);
    let base = b.add("base", (), Probe::new("base", &log));
    let hung = b.add("hung", base, Probe::new("hung", &log).on_stop(Act::Hang));
    b.add("top", hung, Probe::new("top", &log));

    let report = started(build(b)).await.stop().await;

    assert_eq!(log.take()[3..], ["stop top", "stop hung", "stop base"]);
    assert!(
        matches!(&report.component("hung").unwrap().outcome, Outcome::StopFailed(f) if f.is_timeout())
    );
    assert!(matches!(
        report.component("base").unwrap().outcome,
        Outcome::Stopped
    ));
    assert_eq!(report.stop_took, 2 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn a_component_that_was_never_started_is_never_stopped() {
    let log = Log::default();
    let mut b = builder("never");
    let base = b.add("base", (), Probe::new("base", &log));
    b.add(
        "in_flight",
        (),
        Probe::new("in_flight", &log).on_start(Act::Hang),
    );
    let skipped = Probe::new("skipped", &log).on_start(Act::Fail);
    b.add(Spec::new("skipped").ignorable(), (), skipped);
    let broken = Probe::new("broken", &log).on_start(Plan::sleep(SECOND).then(Act::Fail));
    let broken = b.add("broken", base, broken);
    b.add("dependent", broken, Probe::new("dependent", &log));

    failed(build(b)).await;

    assert_eq!(log.take(), ["start base", "stop base"]);
}

/// A shutdown signal while a start is slow: the start in flight is cancelled, what started
/// stops, and it is a clean exit. The in-process handle exists once the system started, so
/// the slow start is the one after a SIGHUP restart.
#[tokio::test(start_paused = true)]
async fn shutdown_during_a_slow_start_stops_only_what_started() {
    let log = Log::default();
    let mut b = builder("slow-start").sighup(SighupPolicy::Restart);
    let base = b.add("base", (), Probe::new("base", &log));
    b.add("after", base, Probe::new("after", &log));
    let starts = AtomicU64::new(0);
    b.add_fn("slow", (), move |(), _ctx| {
        let again = starts.fetch_add(1, Ordering::SeqCst) > 0;
        async move {
            if again {
                std::future::pending::<()>().await;
            }
            Ok::<_, BoxError>(())
        }
    });
    let running = started(build(b)).await;
    let mut events = running.events();

    running.signal(Signal::Hangup);
    next(&mut events, "restarting").await;
    next(&mut events, "component_started after").await;
    running.signal(Signal::Terminate);
    let report = running.wait().await;

    assert!(
        matches!(report.reason, ExitReason::Signal(Signal::Terminate)),
        "{report}"
    );
    assert_eq!(report.exit_code, 0);
    assert!(matches!(
        report.component("slow").unwrap().outcome,
        Outcome::Cancelled
    ));
    let cycle = ["start base", "start after", "stop after", "stop base"];
    assert_eq!(log.take(), [cycle, cycle].concat());
    assert!(
        trace(&until_stopped(&mut events).await).contains(&"component_cancelled slow".to_owned())
    );
}

/// Found here: the first SIGTERM while a restart stopped the components was taken for a second
/// one and forced the exit (143), abandoning every component.
#[tokio::test(start_paused = true)]
async fn sigterm_during_a_restart_stops_gracefully_instead_of_forcing_the_exit() {
    let (report, log) = interrupt_a_restart(|running| running.signal(Signal::Terminate)).await;

    assert!(
        matches!(report.reason, ExitReason::Signal(Signal::Terminate)),
        "{report}"
    );
    assert_eq!(report.exit_code, 0);
    assert_eq!(
        log,
        ["start base", "start draining", "stop draining", "stop base"]
    );
}

/// Found here: a stop requested while a restart stopped the components was dropped; the
/// system started again and `Running::stop` never returned.
#[tokio::test(start_paused = true)]
async fn stop_during_a_restart_is_not_lost() {
    let (report, log) = interrupt_a_restart(Running::shutdown).await;

    assert!(
        matches!(report.reason, ExitReason::Requested { by: None }),
        "{report}"
    );
    assert_eq!(report.restarts, 0);
    assert_eq!(
        log,
        ["start base", "start draining", "stop draining", "stop base"]
    );
}

/// base <- draining (whose stop waits for the test): restarts, and calls `interrupt` while
/// `draining` is stopping.
async fn interrupt_a_restart(interrupt: impl FnOnce(&Running)) -> (Report, Vec<String>) {
    let (log, release) = (Log::default(), Arc::new(Notify::new()));
    let mut b = builder("restart");
    let base = b.add("base", (), Probe::new("base", &log));
    b.add(
        "draining",
        base,
        Probe::new("draining", &log).on_stop(Plan::gate(&release)),
    );
    let running = started(build(b)).await;
    let mut events = running.events();

    running.restart();
    next(&mut events, "component_stopping draining").await;
    interrupt(&running);
    release.notify_one();
    (within(running.wait()).await, log.take())
}

/// Found here: removing a component that another declared optional left the dependent waiting
/// for it forever ("orderly bug: start stalled").
#[tokio::test(start_paused = true)]
async fn removed_optional_dependency_does_not_stall_the_start() {
    let mut b = builder("removed");
    let present = b.add("present", (), Probe::new("present", &Log::default()));
    let removed = b.add("removed", (), Probe::new("removed", &Log::default()));
    let user = b.add_fn(
        "user",
        (present, removed.optional()),
        |(_, removed), _ctx| async move { Ok::<_, BoxError>(removed.is_none()) },
    );
    b.remove(removed);

    let running = within(started(build(b))).await;

    assert_eq!(running.resource(user), Some(true));
}

/// A nested system whose components hang in stop (inner), abandoned by its parent's stop
/// timeout; `inner` spawns a task that ignores `stopping` and reports its drop on `dropped`.
fn abandoned_child(log: &Log, dropped: oneshot::Sender<()>) -> orderly::System {
    let mut child = builder("child");
    let dropped = Mutex::new(Some(dropped));
    let log = log.clone();
    child.add_fn("inner", (), move |(), ctx: Context| {
        let dropped = dropped.lock().expect("not poisoned").take();
        log.push("start inner");
        async move {
            ctx.spawn("deaf", async move {
                let _dropped = dropped;
                std::future::pending::<Result<(), BoxError>>().await
            });
            Ok::<_, BoxError>(())
        }
    });
    build(child)
}

/// Found here: abandoning a nested system (its stop timed out) aborted its supervisor but not
/// its components' tasks, which ran on forever.
#[tokio::test(start_paused = true)]
async fn abandoned_nested_system_leaks_no_tasks() {
    let (dropped, aborted) = oneshot::channel();
    let mut b = builder("parent");
    let child = abandoned_child(&Log::default(), dropped);
    b.add(Spec::new("child").stop_timeout(SECOND), (), child);

    let report = started(build(b)).await.stop().await;

    assert!(
        matches!(&report.component("child").unwrap().outcome, Outcome::StopFailed(f) if f.is_timeout())
    );
    within(aborted)
        .await
        .expect_err("the task was dropped, not finished");
}

/// Found here: after a nested system was abandoned by a stop timeout, restarting the parent
/// failed with "nested system 'child' is already running" while the old run was torn down.
/// A system is started once at a time (`start` consumes it; see the `compile_fail` example
/// on `System`), and a nested one again only once its previous run ended.
#[tokio::test(start_paused = true)]
async fn nested_system_starts_again_only_after_its_abandoned_run_ended() {
    let log = Log::default();
    let mut child = builder("child");
    child.add("inner", (), Probe::new("inner", &log).on_stop(Act::Hang));
    let mut b = builder("parent");
    b.add(Spec::new("child").stop_timeout(SECOND), (), build(child));
    let (system, mut events) = observed(b);
    let running = started(system).await;

    running.restart();
    next(&mut events, "restarting").await;
    let restarted = within(events.wait_for(|e| e.kind.name() == "system_started")).await;

    assert!(restarted.is_some());
    assert_eq!(running.stop().await.restarts, 1);
    assert_eq!(
        log.take(),
        ["start inner", "stop inner", "start inner", "stop inner"]
    );
}

/// A component whose start had finished, but whose task asked to stop before the supervisor
/// saw that start finish, was taken for a start in flight: marked cancelled and never stopped.
#[tokio::test(start_paused = true)]
async fn a_start_that_finished_just_before_a_stop_request_is_stopped_not_cancelled() {
    struct AsksToStop(Log);
    impl orderly::Component for AsksToStop {
        type Deps = ();
        type Resource = ();
        async fn start(&mut self, (): (), ctx: Context) -> Result<(), BoxError> {
            let asking = ctx.clone();
            ctx.spawn("ask", async move {
                asking.shutdown();
                Ok::<_, BoxError>(())
            });
            Ok(())
        }
        async fn stop(&mut self) -> Result<(), BoxError> {
            self.0.push("stop asker");
            Ok(())
        }
    }
    let log = Log::default();
    let mut b = builder("race");
    b.add("asker", (), AsksToStop(log.clone()));
    b.add(
        "slow",
        (),
        Probe::new("slow", &log).on_start(Plan::sleep(10 * SECOND)),
    );

    let report = within(failed(build(b))).await;

    assert_eq!(report.exit_code, 0, "{report}");
    assert!(
        matches!(
            report.component("asker").map(|c| &c.outcome),
            Some(Outcome::Stopped)
        ),
        "{report}"
    );
    assert!(
        matches!(
            report.component("slow").map(|c| &c.outcome),
            Some(Outcome::Cancelled)
        ),
        "{report}"
    );
    assert_eq!(log.take(), ["stop asker"]);
}
