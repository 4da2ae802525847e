//! Admin one-off tasks (twelve-factor XII, `SystemBuilder::add_task`): the task runs on the
//! service's components, its end stops the system, its result is the exit code; and
//! `ExitWith`, `before_exit`.

use std::sync::Arc;
use std::time::Duration;

use orderly::{BoxError, Context, ExitReason, ExitWith, FailureKind, Report, Spec};
use tokio::sync::Notify;

use crate::support::{
    Log, Plan, Probe, add_handle, build, builder, failed, next, observed, started, trace,
    until_stopped, within,
};

/// `db <- report`: the task records what it received, then ends with `result`.
async fn run_task(result: Result<(), BoxError>) -> (Report, Vec<String>) {
    let log = Log::default();
    let mut b = builder("admin").shutdown_delay(Duration::from_secs(30));
    let db = b.add("db", (), Probe::new("db", &log));
    let task_log = log.clone();
    let mut result = Some(result);
    b.add_task("report", db, move |db: &'static str, _ctx| {
        task_log.push(format!("report on {db}"));
        let result = result.take().expect("the task runs once");
        async move { result }
    });
    let (system, mut events) = observed(b);
    let running = started(system).await;
    let report = within(running.wait()).await;
    let events = trace(&until_stopped(&mut events).await);
    assert!(
        !events.contains(&"shutdown_delay".to_owned()),
        "a task's end skips the shutdown delay: {events:#?}"
    );
    assert_eq!(log.take(), ["start db", "report on db", "stop db"]);
    (report, events)
}

#[tokio::test(start_paused = true)]
async fn a_task_that_succeeds_stops_the_system_cleanly_with_exit_code_0() {
    let (report, events) = run_task(Ok(())).await;

    assert_eq!(report.exit_code, 0, "{report}");
    assert!(
        matches!(&report.reason, ExitReason::Requested { by: Some(by) } if &**by == "report"),
        "{report}"
    );
    // The task stops first: nothing depends on it, and it depends on `db`.
    let stopped: Vec<&String> = events
        .iter()
        .filter(|e| e.starts_with("component_stopped"))
        .collect();
    assert_eq!(
        stopped,
        ["component_stopped report", "component_stopped db"],
        "{events:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_error_is_exit_code_1_and_the_report_names_the_task_and_the_error() {
    let (report, _) = run_task(Err("3 rows are corrupt".into())).await;

    assert_eq!(report.exit_code, 1, "{report}");
    assert_eq!(
        report.reason.to_string(),
        "component 'report' failed: 3 rows are corrupt"
    );
}

#[tokio::test(start_paused = true)]
async fn an_exit_with_error_sets_the_exit_code_and_keeps_its_message() {
    let error = ExitWith::new(2, "3 late orders");
    let (report, _) = run_task(Err(error.into())).await;

    assert_eq!(report.exit_code, 2, "{report}");
    assert_eq!(
        report.reason.to_string(),
        "component 'report' failed: 3 late orders"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_fails_the_system_with_the_panic_message() {
    let mut b = builder("admin");
    b.add_task("repair", (), |(), _ctx| async {
        if true {
            panic!("index out of range");
        }
        Ok::<_, BoxError>(())
    });
    let (system, _events) = observed(b);
    let report = within(started(system).await.wait()).await;

    assert_eq!(report.exit_code, 1, "{report}");
    let ExitReason::Failed { component, failure } = &report.reason else {
        panic!("not a failure: {report}");
    };
    assert_eq!(&**component, "repair");
    assert!(
        matches!(failure.kind(), FailureKind::Panic(message) if message == "index out of range"),
        "{failure}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_work_begins_once_the_whole_system_has_started() {
    // Not as soon as `db` started: a task that ended during the start would cancel it.
    let log = Log::default();
    let mut b = builder("admin");
    let db = b.add("db", (), Probe::new("db", &log));
    b.add(
        "slow",
        (),
        Probe::new("slow", &log).on_start(Plan::sleep(Duration::from_secs(10))),
    );
    let task_log = log.clone();
    b.add_task("report", db, move |_: &'static str, _ctx| {
        let log = task_log.clone();
        async move {
            log.push("report");
            Ok::<_, BoxError>(())
        }
    });
    let report = within(started(build(b)).await.wait()).await;

    assert!(report.is_clean(), "{report}");
    let outcome = report.component("report").map(|c| c.outcome.to_string());
    assert_eq!(outcome.as_deref(), Some("stopped"));
    assert_eq!(log.take()[..3], ["start db", "start slow", "report"]);
}

/// A stop while the task runs: the task sees `stopping` and may finish its unit of work; the
/// stop waits for it, and its result still counts.
async fn stopped_mid_task(result: Result<(), BoxError>) -> Report {
    let (begun, log) = (Arc::new(Notify::new()), Log::default());
    let mut b = builder("admin");
    let task_begun = begun.clone();
    let task_log = log.clone();
    let mut result = Some(result);
    b.add_task("migrate", (), move |(), ctx: Context| {
        let (begun, log) = (task_begun.clone(), task_log.clone());
        let result = result.take().expect("the task runs once");
        async move {
            begun.notify_one();
            ctx.stopping().await;
            log.push("finished the current migration");
            result
        }
    });
    let running = started(build(b)).await;
    begun.notified().await;
    let report = within(running.stop()).await;
    assert_eq!(log.take(), ["finished the current migration"]);
    report
}

#[tokio::test(start_paused = true)]
async fn a_stop_while_the_task_runs_waits_for_it_and_ends_cleanly() {
    let report = stopped_mid_task(Ok(())).await;

    assert_eq!(report.exit_code, 0, "{report}");
    assert!(matches!(report.reason, ExitReason::Requested { by: None }));
}

#[tokio::test(start_paused = true)]
async fn a_task_that_fails_while_the_system_stops_fails_the_stop() {
    let report = stopped_mid_task(Err("migration 7 rolled back".into())).await;

    assert_eq!(report.exit_code, 1, "{report}");
    let outcome = report.component("migrate").map(|c| c.outcome.to_string());
    assert_eq!(
        outcome.as_deref(),
        Some("stop failed: migration 7 rolled back")
    );
}

#[tokio::test(start_paused = true)]
async fn a_service_components_stop_request_still_waits_out_the_shutdown_delay() {
    // The contrast to the task: the same request from a regular component keeps serving for
    // the delay, because traffic may still be routed to it.
    let mut b = builder("service").shutdown_delay(Duration::from_secs(5));
    let job = add_handle(&mut b, "job");
    let (system, mut events) = observed(b);
    let running = started(system).await;
    running.resource(job).expect("job runs").shutdown();
    next(&mut events, "shutdown_delay").await;
    assert!(within(running.wait()).await.is_clean());
}

#[tokio::test(start_paused = true)]
async fn exit_with_from_a_start_sets_the_exit_code() {
    let mut b = builder("admin");
    b.add_fn(Spec::new("check"), (), |(), _ctx| async {
        Err::<(), _>(ExitWith::new(3, "schema is 2 versions behind"))
    });
    let report = failed(build(b)).await;

    assert_eq!(report.exit_code, 3, "{report}");
}

#[tokio::test]
async fn before_exit_hooks_run_in_order_when_run_ends_on_an_invalid_system() {
    let log = Log::default();
    let (first, second) = (log.clone(), log.clone());
    let mut b = builder("invalid")
        .before_exit(move || first.push("flush logs"))
        .before_exit(move || second.push("flush metrics"));
    b.add_fn("twin", (), |(), _ctx| async { Ok::<_, BoxError>(()) });
    b.add_fn("twin", (), |(), _ctx| async { Ok::<_, BoxError>(()) });

    // An invalid system never owns the signals, so this `run` is safe in a test process.
    let code = b.run().await;

    assert_eq!(code, std::process::ExitCode::from(70));
    assert_eq!(log.take(), ["flush logs", "flush metrics"]);
}
