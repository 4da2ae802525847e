//! C13: a system nested in another as one component.

use std::sync::Arc;
use std::time::Duration;

use orderly::{
    BoxError, Context, ExitReason, ExitWith, Health, InvalidConfig, Key, Report, System,
};
use tokio::sync::Notify;

use crate::support::{
    Act, Log, Probe, add_handle, build, builder, failed, next, observed, started,
};

/// A child system: first <- second.
fn child(log: &Log) -> (System, Key<&'static str>) {
    let mut b = builder("child").shutdown_delay(Duration::from_secs(5));
    let first = b.add("first", (), Probe::new("first", log));
    let second = b.add("second", first, Probe::new("second", log));
    (build(b), second)
}

#[tokio::test(start_paused = true)]
async fn the_childs_resources_are_visible_to_the_parent_under_its_name() {
    let log = Log::default();
    let (system, second) = child(&log);
    let mut b = builder("parent");
    let nested = b.add("child", (), system);
    let user = b.add_fn(
        "user",
        nested.get(second),
        |second: &'static str, _ctx| async move { Ok::<_, BoxError>(format!("user of {second}")) },
    );

    let running = started(build(b)).await;

    assert_eq!(running.resource(user).as_deref(), Some("user of second"));
    assert_eq!(
        running.resource(nested).unwrap().get(second),
        Some("second")
    );
    assert!(running.stop().await.is_clean());
}

#[tokio::test(start_paused = true)]
async fn the_child_stops_in_its_parents_order_without_a_second_shutdown_delay() {
    let log = Log::default();
    let (system, second) = child(&log);
    let mut b = builder("parent");
    let base = b.add("base", (), Probe::new("base", &log));
    let nested = b.add("child", (), system);
    b.add("user", (base, nested.get(second)), Probe::new("user", &log));

    let report = started(build(b)).await.stop().await;

    assert!(report.is_clean(), "{report}");
    assert_eq!(
        report.stop_took,
        Duration::ZERO,
        "the child's own delay is not applied"
    );
    let mut log = log.take();
    let mut started: Vec<String> = log.drain(..3).collect();
    started.sort();
    assert_eq!(started, ["start base", "start first", "start second"]);
    assert_eq!(log[..2], ["start user", "stop user"]);
    let mut stopped = log[2..].to_vec();
    stopped.sort();
    assert_eq!(stopped, ["stop base", "stop first", "stop second"]);
    assert!(
        log.iter().position(|l| l == "stop second") < log.iter().position(|l| l == "stop first")
    );
}

#[tokio::test(start_paused = true)]
async fn a_child_that_fails_to_start_fails_the_parent_naming_both() {
    let log = Log::default();
    let mut inner = builder("child");
    inner.add("broken", (), Probe::new("broken", &log).on_start(Act::Fail));
    let mut b = builder("parent");
    b.add("child", (), build(inner));

    let report = failed(build(b)).await;

    assert_eq!(
        report.reason.to_string(),
        "component 'child' failed to start: system 'child' did not start: component 'broken' \
         failed to start: broken refused to start"
    );
    assert_eq!(report.exit_code, 1);
}

#[tokio::test(start_paused = true)]
async fn a_childs_invalid_configuration_is_the_parents_exit_code() {
    let mut inner = builder("child");
    inner.add_fn("settings", (), |(), _ctx: Context| async {
        Err::<(), BoxError>(InvalidConfig::new("PORT: not a number").into())
    });
    let mut b = builder("parent");
    b.add("child", (), build(inner));

    let report = failed(build(b)).await;

    assert!(report.reason.to_string().contains("PORT: not a number"));
    assert_eq!(report.exit_code, 78);
}

#[tokio::test(start_paused = true)]
async fn a_childs_exit_with_code_is_the_parents_exit_code() {
    let (report, log) =
        parent_of_asking_child(|ctx| ctx.fail(ExitWith::new(3, "3 late orders"))).await;

    assert!(report.reason.to_string().contains("3 late orders"));
    assert_eq!(report.exit_code, 3);
    assert_eq!(log, ["start base", "stop base"]);
}

/// A child system with one component that asks `ask` when `trigger` is notified.
fn asking_child(trigger: &Arc<Notify>, ask: fn(&Context)) -> System {
    let mut b = builder("child");
    let trigger = trigger.clone();
    b.add_fn("inner", (), move |(), ctx: Context| {
        let trigger = trigger.clone();
        async move {
            let task = ctx.clone();
            ctx.spawn("trigger", async move {
                tokio::select! {
                    () = trigger.notified() => ask(&task),
                    () = task.stopping() => {}
                }
                Ok::<_, BoxError>(())
            });
            Ok::<_, BoxError>(())
        }
    });
    build(b)
}

/// parent: base <- child (`asking_child`); returns the report once the child asked.
async fn parent_of_asking_child(ask: fn(&Context)) -> (Report, Vec<String>) {
    let (log, trigger) = (Log::default(), Arc::new(Notify::new()));
    let mut b = builder("parent");
    b.add("base", (), Probe::new("base", &log));
    b.add("child", (), asking_child(&trigger, ask));
    let running = started(build(b)).await;

    trigger.notify_one();
    (running.wait().await, log.take())
}

#[tokio::test(start_paused = true)]
async fn a_failure_inside_the_running_child_stops_the_parent_naming_both() {
    let (report, log) = parent_of_asking_child(|ctx| ctx.fail("lost the line")).await;

    let ExitReason::Failed { component, .. } = &report.reason else {
        panic!("expected a failure, got {}", report.reason);
    };
    assert_eq!(&**component, "child");
    assert!(
        report
            .reason
            .to_string()
            .contains("component 'inner' failed: lost the line")
    );
    assert_eq!(report.exit_code, 1);
    assert_eq!(log, ["start base", "stop base"]);
}

#[tokio::test(start_paused = true)]
async fn a_clean_stop_inside_the_child_stops_the_parent_cleanly() {
    let (report, log) = parent_of_asking_child(Context::shutdown).await;

    assert!(matches!(&report.reason, ExitReason::Requested { by: Some(by) } if &**by == "child"));
    assert_eq!(report.exit_code, 0);
    assert_eq!(log, ["start base", "stop base"]);
}

#[tokio::test(start_paused = true)]
async fn the_childs_readiness_is_the_nested_components_health() {
    let mut inner = builder("child");
    let db = add_handle(&mut inner, "db");
    let mut b = builder("parent");
    let nested = b.add("child", (), build(inner));
    let running = started(build(b)).await;
    let mut events = running.events();
    let db = running.resource(nested).unwrap().get(db).unwrap();

    db.set_health(Health::unhealthy("connection refused"));
    next(&mut events, "readiness_changed").await;

    let status = running.status().borrow().clone();
    assert_eq!(
        status.readiness().reason,
        "child is unhealthy: db is unhealthy: connection refused"
    );
    db.set_health(Health::Healthy);
    next(&mut events, "readiness_changed").await;
    assert!(running.status().borrow().readiness().ok);
    assert!(running.stop().await.is_clean());
}

#[tokio::test(start_paused = true)]
async fn the_child_restarts_with_its_parent() {
    let log = Log::default();
    let (system, second) = child(&log);
    let mut b = builder("parent");
    let nested = b.add("child", (), system);
    let (system, mut events) = observed(b);
    let running = started(system).await;

    running.restart();
    next(&mut events, "restarting").await;
    next(&mut events, "system_started").await;

    assert_eq!(
        running.resource(nested).unwrap().get(second),
        Some("second")
    );
    let report = running.stop().await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.restarts, 1);
    let cycle = ["start first", "start second", "stop second", "stop first"];
    assert_eq!(log.take(), [cycle, cycle].concat());
}
