//! C16 startup, readiness and liveness derived from the components' state and health; C17 the
//! shutdown choreography (readiness false, shutdown delay, stop, exit).

use std::sync::Arc;
use std::time::Duration;

use orderly::{
    Env, EventKind, ExitReason, Health, Phase, SHUTDOWN_DELAY, SHUTDOWN_TIMEOUT, Signal, Spec,
    State,
};
use tokio::sync::Notify;

use crate::support::{
    Act, Log, Plan, Probe, add_handle, at, build, builder, failed, next, observed, position,
    started, until_stopped,
};

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn readiness_turns_false_the_instant_shutdown_begins() {
    let mut b = builder("health");
    b.add("base", (), Probe::new("base", &Log::default()));
    let running = started(build(b)).await;
    assert!(running.status().borrow().readiness().ok);
    let mut events = running.events();

    running.signal(Signal::Terminate);
    let events = until_stopped(&mut events).await;

    let readiness = position(&events, "readiness_changed");
    assert!(matches!(
        &events[readiness].kind,
        EventKind::ReadinessChanged { ready: false, reason } if &**reason == "system is stopping"
    ));
    assert_eq!(readiness, position(&events, "signal_received") + 1);
    assert!(readiness < position(&events, "system_stopping"));
    assert!(readiness < position(&events, "component_stopping base"));
    let flips = events
        .iter()
        .filter(|e| e.kind.name() == "readiness_changed")
        .count();
    assert_eq!(flips, 1, "never ready again while draining");
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_required_component_makes_the_system_unready() {
    let mut b = builder("health");
    let db = add_handle(&mut b, "db");
    let running = started(build(b)).await;
    let mut events = running.events();
    let db = running.resource(db).unwrap();

    db.set_health(Health::degraded("slow replica"));
    next(&mut events, "health_changed db").await;
    assert!(
        running.status().borrow().readiness().ok,
        "degraded is still ready"
    );

    db.set_health(Health::unhealthy("connection refused"));
    next(&mut events, "readiness_changed").await;
    let status = running.status().borrow().clone();
    assert!(!status.readiness().ok);
    assert_eq!(
        status.readiness().reason,
        "db is unhealthy: connection refused"
    );
    assert!(status.liveness().ok, "an outage restarts no process");

    db.set_health(Health::Healthy);
    next(&mut events, "readiness_changed").await;
    assert!(running.status().borrow().readiness().ok);
    assert!(running.stop().await.is_clean());
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_ignorable_component_leaves_the_system_ready() {
    let mut b = builder("health");
    let cache = add_handle(&mut b, Spec::new("cache").ignorable());
    let running = started(build(b)).await;
    let mut events = running.events();

    running
        .resource(cache)
        .unwrap()
        .set_health(Health::unhealthy("evicted"));
    next(&mut events, "health_changed cache").await;

    let status = running.status().borrow().clone();
    assert!(status.component("cache").unwrap().health.is_unhealthy());
    assert!(status.readiness().ok);
    assert!(running.stop().await.is_clean());
}

#[tokio::test(start_paused = true)]
async fn liveness_stays_true_while_draining() {
    let release = Arc::new(Notify::new());
    let mut b = builder("health");
    b.add(
        "server",
        (),
        Probe::new("server", &Log::default()).on_stop(Plan::gate(&release)),
    );
    let running = started(build(b)).await;
    let mut events = running.events();

    running.signal(Signal::Terminate);
    next(&mut events, "component_stopping server").await;

    let status = running.status().borrow().clone();
    assert_eq!(status.phase, Phase::Stopping);
    assert_eq!(status.component("server").unwrap().state, State::Stopping);
    assert!(status.liveness().ok);
    assert!(!status.readiness().ok);
    release.notify_one();
    assert!(running.wait().await.is_clean());
}

#[tokio::test(start_paused = true)]
async fn startup_passes_once_every_mandatory_component_started() {
    let (log, release) = (Log::default(), Arc::new(Notify::new()));
    let mut b = builder("health");
    b.add(
        "slow",
        (),
        Probe::new("slow", &log).on_start(Plan::gate(&release)),
    );
    let optional = Probe::new("optional", &log).on_start(Act::Fail);
    b.add(Spec::new("optional").ignorable(), (), optional);
    let system = build(b);
    let (status, mut events) = (system.status(), system.events());
    assert_eq!(status.borrow().startup().reason, "system is created");

    let starting = tokio::spawn(system.start());
    next(&mut events, "component_skipped optional").await;
    assert!(!status.borrow().startup().ok);
    assert_eq!(status.borrow().startup().reason, "system is starting");
    release.notify_one();
    let running = starting.await.unwrap().unwrap();

    assert!(
        status.borrow().startup().ok,
        "a skipped ignorable component does not block it"
    );
    assert!(status.borrow().readiness().ok);
    assert!(running.stop().await.is_clean());
}

#[tokio::test(start_paused = true)]
async fn the_shutdown_delay_passes_between_stopping_and_the_first_stop() {
    let mut b = builder("choreography").shutdown_delay(5 * SECOND);
    let server = add_handle(&mut b, "server");
    let running = started(build(b)).await;
    let server = running.resource(server).unwrap();
    let mut events = running.events();

    running.signal(Signal::Terminate);
    let stopping = next(&mut events, "system_stopping").await.elapsed;
    next(&mut events, "shutdown_delay").await;
    assert!(!running.status().borrow().readiness().ok);
    assert!(
        !server.is_stopping(),
        "traffic is still served during the delay"
    );
    assert_eq!(
        running.status().borrow().component("server").unwrap().state,
        State::Running
    );
    let report = running.wait().await;
    let events = until_stopped(&mut events).await;

    assert_eq!(
        at(&events, "component_stopping server") - stopping,
        5 * SECOND
    );
    assert_eq!(report.stop_took, 5 * SECOND);
    assert!(report.is_clean(), "{report}");
}

#[tokio::test(start_paused = true)]
async fn the_delay_and_the_deadline_come_from_the_environment() {
    let env = Env::from_pairs([(SHUTDOWN_DELAY, "2s"), (SHUTDOWN_TIMEOUT, "3s")]);
    let mut b = builder("choreography")
        .shutdown_delay(10 * SECOND)
        .shutdown_timeout(20 * SECOND)
        .env(env);
    b.add(
        "hung",
        (),
        Probe::new("hung", &Log::default()).on_stop(Act::Hang),
    );
    let (system, mut events) = observed(b);

    let report = started(system).await.stop().await;
    let events = until_stopped(&mut events).await;

    assert!(
        matches!(report.reason, ExitReason::DeadlineExceeded { .. }),
        "{report}"
    );
    assert_eq!(
        report.stop_took,
        5 * SECOND,
        "2 s delay, then the 3 s deadline"
    );
    let delay = events.iter().find_map(|e| match e.kind {
        EventKind::ShutdownDelay { delay } => Some(delay),
        _ => None,
    });
    assert_eq!(delay, Some(2 * SECOND));
}

#[tokio::test(start_paused = true)]
async fn a_failed_start_does_not_wait_out_the_delay() {
    let log = Log::default();
    let mut b = builder("choreography").shutdown_delay(5 * SECOND);
    let base = b.add("base", (), Probe::new("base", &log));
    b.add(
        "broken",
        base,
        Probe::new("broken", &log).on_start(Act::Fail),
    );

    let report = failed(build(b)).await;

    assert_eq!(
        report.stop_took,
        Duration::ZERO,
        "never ready: nothing to drain"
    );
    assert_eq!(log.take(), ["start base", "stop base"]);
}
