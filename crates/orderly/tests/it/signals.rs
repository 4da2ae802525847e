//! C10 signals, delivered in-process with `Running::signal` (the real ones are in `process`),
//! and C11 exit codes.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use orderly::{
    BoxError, Context, EventKind, ExitCodes, ExitReason, FailureKind, InvalidConfig, Outcome,
    Report, SighupPolicy, Signal,
};
use tokio::sync::Notify;

use crate::support::{
    Act, Log, Probe, build, builder, failed, next, observed, started, trace, until_stopped,
};

/// base <- top, stopped by `signal`.
async fn stopped_by(signal: Signal) -> (Report, Vec<String>, Vec<String>) {
    let log = Log::default();
    let mut b = builder("signals");
    let base = b.add("base", (), Probe::new("base", &log));
    b.add("top", base, Probe::new("top", &log));
    let (system, mut events) = observed(b);
    let running = started(system).await;

    running.signal(signal);
    let report = running.wait().await;

    (report, log.take(), trace(&until_stopped(&mut events).await))
}

#[tokio::test(start_paused = true)]
async fn sigterm_stops_gracefully_in_reverse_order_with_code_0() {
    let (report, log, events) = stopped_by(Signal::Terminate).await;

    assert!(matches!(
        report.reason,
        ExitReason::Signal(Signal::Terminate)
    ));
    assert_eq!(report.reason.to_string(), "SIGTERM received");
    assert_eq!(report.exit_code, 0);
    assert_eq!(log, ["start base", "start top", "stop top", "stop base"]);
    assert!(events.contains(&"signal_received".to_owned()), "{events:?}");
}

#[tokio::test(start_paused = true)]
async fn sigint_stops_gracefully_in_reverse_order_with_code_0() {
    let (report, log, _) = stopped_by(Signal::Interrupt).await;

    assert!(matches!(
        report.reason,
        ExitReason::Signal(Signal::Interrupt)
    ));
    assert_eq!(report.exit_code, 0);
    assert_eq!(log, ["start base", "start top", "stop top", "stop base"]);
}

/// base <- stuck (whose stop hangs): `first`, then `second` once `stuck` is stopping.
async fn forced_by(first: Signal, second: Signal) -> (Report, Vec<String>) {
    let log = Log::default();
    let mut b = builder("forced");
    let base = b.add("base", (), Probe::new("base", &log));
    b.add("stuck", base, Probe::new("stuck", &log).on_stop(Act::Hang));
    let (system, mut events) = observed(b);
    let running = started(system).await;

    running.signal(first);
    next(&mut events, "component_stopping stuck").await;
    running.signal(second);
    let report = running.wait().await;

    assert!(matches!(report.reason, ExitReason::Forced(signal) if signal == second));
    let stuck = &report.component("stuck").expect("in the report").outcome;
    assert!(matches!(stuck, Outcome::StopFailed(f) if matches!(f.kind(), FailureKind::Abandoned)));
    assert!(matches!(
        report.component("base").expect("in the report").outcome,
        Outcome::NotStopped
    ));
    (report, log.take())
}

#[tokio::test(start_paused = true)]
async fn a_second_sigterm_while_stopping_forces_the_exit_with_143() {
    let (report, log) = forced_by(Signal::Terminate, Signal::Terminate).await;

    assert_eq!(report.exit_code, 143);
    assert_eq!(report.reason.to_string(), "second SIGTERM: forced exit");
    assert_eq!(report.stop_took, Duration::ZERO, "no waiting once forced");
    assert_eq!(log, ["start base", "start stuck", "stop stuck"]);
}

#[tokio::test(start_paused = true)]
async fn a_sigint_after_sigterm_while_stopping_forces_the_exit_with_130() {
    let (report, _) = forced_by(Signal::Terminate, Signal::Interrupt).await;

    assert_eq!(report.exit_code, 130);
}

#[tokio::test(start_paused = true)]
async fn a_second_signal_during_the_shutdown_delay_forces_the_exit() {
    let log = Log::default();
    let mut b = builder("forced").shutdown_delay(Duration::from_secs(5));
    b.add("base", (), Probe::new("base", &log));
    let (system, mut events) = observed(b);
    let running = started(system).await;

    running.signal(Signal::Terminate);
    next(&mut events, "shutdown_delay").await;
    running.signal(Signal::Terminate);
    let report = running.wait().await;

    assert_eq!(report.exit_code, 143);
    assert_eq!(report.stop_took, Duration::ZERO);
    assert!(matches!(
        report.component("base").unwrap().outcome,
        Outcome::NotStopped
    ));
    assert_eq!(log.take(), ["start base"]);
}

#[tokio::test(start_paused = true)]
async fn sighup_is_ignored_by_default() {
    let log = Log::default();
    let mut b = builder("hup");
    b.add("base", (), Probe::new("base", &log));
    let running = started(build(b)).await;
    let mut events = running.events();

    running.signal(Signal::Hangup);
    let report = running.stop().await;

    let events = trace(&until_stopped(&mut events).await);
    assert_eq!(events[..2], ["signal_received", "readiness_changed"]);
    assert!(!events.contains(&"restarting".to_owned()));
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.restarts, 0);
    assert_eq!(log.take(), ["start base", "stop base"]);
}

#[tokio::test(start_paused = true)]
async fn sighup_is_left_to_the_components_with_the_notify_policy() {
    let log = Log::default();
    let mut b = builder("hup").sighup(SighupPolicy::Notify);
    b.add("base", (), Probe::new("base", &log));
    // Sees SIGHUP and decides not to restart, as a config watcher does with invalid files.
    let seen = Arc::new(Notify::new());
    let heard = seen.clone();
    b.add_fn("reloader", (), move |(), ctx: Context| {
        let heard = heard.clone();
        async move {
            let mut events = ctx.events();
            let stopping = ctx.clone();
            ctx.spawn("hup", async move {
                let hangup = |kind: &EventKind| {
                    matches!(
                        kind,
                        EventKind::SignalReceived {
                            signal: Signal::Hangup
                        }
                    )
                };
                loop {
                    tokio::select! {
                        Some(event) = events.recv() => {
                            if hangup(&event.kind) {
                                heard.notify_one();
                            }
                        }
                        () = stopping.stopping() => return Ok::<_, BoxError>(()),
                    }
                }
            });
            Ok::<_, BoxError>(())
        }
    });
    let running = started(build(b)).await;

    running.signal(Signal::Hangup);
    seen.notified().await;
    let report = running.stop().await;

    assert!(report.is_clean(), "{report}");
    assert_eq!(report.restarts, 0, "the system itself does not restart");
    assert_eq!(log.take(), ["start base", "stop base"]);
}

#[tokio::test(start_paused = true)]
async fn sighup_restarts_in_process_when_enabled() {
    let log = Log::default();
    let mut b = builder("hup").sighup(SighupPolicy::Restart);
    let base = b.add("base", (), Probe::new("base", &log));
    b.add("top", base, Probe::new("top", &log));
    let (system, mut events) = observed(b);
    let running = started(system).await;

    running.signal(Signal::Hangup);
    next(&mut events, "restarting").await;
    next(&mut events, "system_started").await;
    let report = running.stop().await;

    assert!(report.is_clean(), "{report}");
    assert_eq!(report.restarts, 1);
    assert_eq!(
        log.take(),
        [
            "start base",
            "start top",
            "stop top",
            "stop base",
            "start base",
            "start top",
            "stop top",
            "stop base",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_requested_during_startup_cancels_starts_in_flight_and_stops_what_started() {
    let log = Log::default();
    let mut b = builder("early");
    let base = b.add("base", (), Probe::new("base", &log));
    b.add("slow", (), Probe::new("slow", &log).on_start(Act::Hang));
    b.add_fn(
        "quitter",
        base,
        |_: &'static str, ctx: Context| async move {
            ctx.shutdown();
            Ok::<_, BoxError>(())
        },
    );
    let (system, mut events) = observed(b);

    let report = failed(system).await;

    assert!(report.is_clean(), "a normal transition: {report}");
    assert!(matches!(&report.reason, ExitReason::Requested { by: Some(by) } if &**by == "quitter"));
    assert!(matches!(
        report.component("slow").unwrap().outcome,
        Outcome::Cancelled
    ));
    assert_eq!(log.take(), ["start base", "stop base"]);
    let events = trace(&until_stopped(&mut events).await);
    assert!(
        events.contains(&"component_cancelled slow".to_owned()),
        "{events:?}"
    );
}

/// A component that asks the system to stop when `trigger` is notified.
fn stops_when(trigger: &Arc<Notify>) -> impl orderly::Component<Deps = (), Resource = ()> {
    let trigger = trigger.clone();
    orderly::from_fn(move |(), ctx: Context| {
        let trigger = trigger.clone();
        async move {
            let task = ctx.clone();
            ctx.spawn("stopper", async move {
                tokio::select! {
                    () = trigger.notified() => task.shutdown(),
                    () = task.stopping() => {}
                }
                Ok::<_, BoxError>(())
            });
            Ok::<_, BoxError>(())
        }
    })
}

/// `System::run` installs the process's signal handlers (it sends no signal here); the
/// signals themselves are tested on a child process in `process`.
#[tokio::test(start_paused = true)]
async fn one_system_per_process_owns_the_signals_also_with_nested_systems() {
    let trigger = Arc::new(Notify::new());
    let mut child = builder("child");
    child.add("inner", (), Probe::new("inner", &Log::default()));
    let mut owner = builder("owner");
    owner.add("child", (), build(child));
    owner.add("stopper", (), stops_when(&trigger));
    let owner = build(owner);
    let mut events = owner.events();
    let owner = tokio::spawn(owner.run());
    next(&mut events, "system_started").await;

    let mut second = builder("second");
    second.add("base", (), Probe::new("base", &Log::default()));
    let refused = build(second).run().await;

    assert_eq!(
        refused,
        ExitCode::from(70),
        "a second owner is an invalid system"
    );
    trigger.notify_one();
    assert_eq!(owner.await.unwrap(), ExitCode::SUCCESS);
}

#[tokio::test(start_paused = true)]
async fn an_invalid_config_start_failure_exits_78_before_anything_else_starts() {
    let log = Log::default();
    let mut b = builder("config");
    let config = b.add_fn("config", (), |(), _ctx| async {
        Err::<(), _>(InvalidConfig::new("PORT: 'eighty' is not a number"))
    });
    b.add("db", config, Probe::new("db", &log));

    let report = failed(build(b)).await;

    let ExitReason::StartFailed { component, failure } = &report.reason else {
        panic!("expected a start failure, got {}", report.reason);
    };
    assert_eq!(&**component, "config");
    assert!(failure.is_invalid_config());
    assert_eq!(failure.to_string(), "PORT: 'eighty' is not a number");
    assert_eq!(report.exit_code, 78);
    assert_eq!(log.take(), Vec::<String>::new());
}

#[test]
fn the_exit_code_table_is_the_documented_one() {
    let codes = ExitCodes::default();

    assert_eq!(
        (
            codes.failure,
            codes.invalid_system,
            codes.invalid_config,
            codes.deadline
        ),
        (1, 70, 78, 124)
    );
}

#[tokio::test(start_paused = true)]
async fn exit_codes_are_overridable() {
    let mut codes = ExitCodes::default();
    codes.failure = 3;
    codes.invalid_system = 4;
    codes.deadline = 5;
    let log = Log::default();

    let mut b = builder("custom").exit_codes(codes);
    b.add("broken", (), Probe::new("broken", &log).on_start(Act::Fail));
    let failed = failed(build(b)).await;
    assert_eq!(failed.exit_code, 3);

    let mut b = builder("custom")
        .exit_codes(codes)
        .shutdown_timeout(Duration::from_secs(1));
    b.add("hung", (), Probe::new("hung", &log).on_stop(Act::Hang));
    let late = started(build(b)).await.stop().await;
    assert_eq!(late.exit_code, 5);

    let mut b = builder("custom").exit_codes(codes);
    b.add("twin", (), Probe::new("twin", &log));
    b.add("twin", (), Probe::new("twin", &log));
    assert_eq!(b.build().unwrap_err().exit_code(), 4);
}
