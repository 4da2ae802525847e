//! systemd's notify protocol: a real datagram socket stands in for the service manager
//! ([`Manager`]), and what it receives is the oracle. The clock is paused: each notice is in the
//! socket's queue before the supervisor takes its next step, so the runtime never waits on I/O
//! that is not already there, and the watchdog's pings come as fast as the test reads them.

use std::sync::Arc;
use std::time::Duration;

use orderly::{BoxError, Component, Context, Env, Problem, Signal, System, SystemBuilder};
use tokio::sync::Notify;

use crate::support::{
    Captured, Log, Manager, Plan, Probe, Queue, build, count, next, observed, started, states,
};

const SECOND: Duration = Duration::from_secs(1);

fn builder(name: &str, env: Env) -> SystemBuilder {
    System::builder(name).env(env)
}

/// db <- http.
fn service(env: Env, log: &Log) -> SystemBuilder {
    let mut b = builder("service", env);
    let db = b.add("db", (), Probe::new("db", log));
    b.add("http", db, Probe::<&str>::new("http", log));
    b
}

#[tokio::test(start_paused = true)]
async fn ready_once_started_then_watchdog_pings_while_running() {
    let manager = Manager::bind();
    let env = manager.env(&[("WATCHDOG_USEC", "2000000")]);
    let running = started(build(service(env, &Log::default()))).await;

    let messages = manager.until("READY=1").await;
    assert_eq!(
        messages.first().map(String::as_str),
        Some("STATUS=starting")
    );
    assert_eq!(
        messages.last().map(String::as_str),
        Some("READY=1\nSTATUS=running")
    );
    // Nothing else happens while it runs: every further message is a ping.
    for _ in 0..5 {
        assert_eq!(manager.next().await, "WATCHDOG=1");
    }

    let report = running.stop().await;
    assert!(report.is_clean(), "{report}");
    let messages = manager.until("STOPPING=1").await;
    assert_eq!(
        messages.last().map(String::as_str),
        Some("STOPPING=1\nSTATUS=stopping: stop requested")
    );
}

/// Records, when its stop begins, the state changes the manager has received by then.
struct Witness {
    queue: Queue,
    log: Log,
}

impl Component for Witness {
    type Deps = &'static str;
    type Resource = ();

    async fn start(&mut self, _db: &'static str, _ctx: Context) -> Result<(), BoxError> {
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), BoxError> {
        for state in states(&self.queue.drain()) {
            self.log.push(format!("manager has {state}"));
        }
        self.log.push("stop http");
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn stopping_reaches_the_manager_before_any_component_stops() {
    let manager = Manager::bind();
    let log = Log::default();
    let mut b = builder("service", manager.env(&[])).shutdown_delay(5 * SECOND);
    let db = b.add("db", (), Probe::new("db", &log));
    let queue = manager.queue();
    b.add(
        "http",
        db,
        Witness {
            queue,
            log: log.clone(),
        },
    );
    let running = started(build(b)).await;
    manager.until("READY=1").await;
    log.take();

    let report = running.stop().await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(
        log.take(),
        ["manager has STOPPING=1", "stop http", "stop db"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_is_reloading_then_ready() {
    let manager = Manager::bind();
    let (system, mut events) = observed(service(manager.env(&[]), &Log::default()));
    let running = started(system).await;
    manager.until("READY=1").await;

    let before = monotonic_usec();
    running.restart();
    next(&mut events, "restarting").await;
    let messages = manager.until("READY=1").await;
    let after = monotonic_usec();

    assert_eq!(states(&messages), ["RELOADING=1", "READY=1"]);
    // systemd's Type=notify-reload tells this reload from older ones by CLOCK_MONOTONIC.
    let usec: u64 = messages
        .iter()
        .flat_map(|m| m.lines())
        .find_map(|line| line.strip_prefix("MONOTONIC_USEC="))
        .and_then(|usec| usec.parse().ok())
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {messages:#?}"));
    assert!(
        (before..=after).contains(&usec),
        "{usec} not in {before}..={after}"
    );
    let report = running.stop().await;
    assert!(report.is_clean(), "{report}");
}

fn monotonic_usec() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("the monotonic clock");
    u64::try_from(Duration::from(now).as_micros()).expect("fits in u64")
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_a_restart_tells_the_manager_it_is_stopping() {
    let manager = Manager::bind();
    let log = Log::default();
    let gate = Arc::new(Notify::new());
    let mut b = builder("service", manager.env(&[]));
    b.add("db", (), Probe::new("db", &log).on_stop(Plan::gate(&gate)));
    let (system, mut events) = observed(b);
    let running = started(system).await;
    manager.until("READY=1").await;

    running.restart();
    next(&mut events, "component_stopping db").await;
    running.signal(Signal::Terminate);
    next(&mut events, "signal_received").await;
    gate.notify_one();

    let report = running.wait().await;
    assert!(report.is_clean(), "{report}");
    let messages = manager.until("STOPPING=1").await;
    assert_eq!(states(&messages), ["RELOADING=1", "STOPPING=1"]);
}

#[cfg(target_os = "linux")]
#[tokio::test(start_paused = true)]
async fn an_abstract_socket_is_reached_by_its_name() {
    let manager = Manager::bind_abstract();
    assert!(manager.address().starts_with('@'));
    let running = started(build(service(manager.env(&[]), &Log::default()))).await;

    let messages = manager.until("READY=1").await;
    assert_eq!(states(&messages), ["READY=1"]);
    let report = running.stop().await;
    assert!(report.is_clean(), "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_nested_system_never_notifies() {
    let manager = Manager::bind();
    let log = Log::default();
    let mut parent = builder("parent", manager.env(&[]));
    parent.add("child", (), build(service(manager.env(&[]), &log)));
    let running = started(build(parent)).await;
    let report = running.stop().await;
    assert!(report.is_clean(), "{report}");

    let messages = manager.until("STOPPING=1").await;
    assert_eq!(states(&messages), ["READY=1", "STOPPING=1"]);
    assert_eq!(count(&messages, "STATUS=starting"), 1);
    assert_eq!(manager.queue().drain(), Vec::<String>::new());
}

#[tokio::test(start_paused = true)]
async fn no_pings_when_the_watchdog_is_meant_for_another_process() {
    let manager = Manager::bind();
    let other = (std::process::id() + 1).to_string();
    let env = manager.env(&[("WATCHDOG_USEC", "2000000"), ("WATCHDOG_PID", &other)]);
    let running = started(build(service(env, &Log::default()))).await;
    manager.until("READY=1").await;

    // Ten pings' worth of (paused) time.
    tokio::time::sleep(10 * 2 * SECOND).await;
    assert_eq!(manager.queue().drain(), Vec::<String>::new());
    let report = running.stop().await;
    assert!(report.is_clean(), "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_delays_a_notice_instead_of_dropping_it() {
    let manager = Manager::bind();
    let (system, mut events) = observed(service(manager.env(&[]), &Log::default()));
    let running = started(system).await;
    manager.until("READY=1").await;

    // Fill the manager's queue, as a busy systemd would leave it.
    let filler = std::os::unix::net::UnixDatagram::unbound().unwrap();
    filler.connect(manager.address()).unwrap();
    filler.set_nonblocking(true).unwrap();
    let filled = (0..100_000).find(|_| filler.send(b"FILLER=1").is_err());
    assert!(filled.is_some(), "the queue never filled");

    running.shutdown();
    next(&mut events, "system_stopping").await;
    let filler_messages = manager.queue().drain();
    assert_eq!(count(&filler_messages, "STOPPING=1"), 0);

    let messages = manager.until("STOPPING=1").await;
    assert_eq!(states(&messages), ["STOPPING=1"]);
    let report = running.wait().await;
    assert!(report.is_clean(), "{report}");
}

/// The wait for room in a full queue used to register the socket with the runtime's I/O
/// driver, which panics on a runtime built without I/O (a started system needs only the
/// timer). The manager here is read with plain non-blocking calls for the same reason.
#[test]
fn a_full_queue_on_a_runtime_without_io_does_not_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let manager = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        manager.set_nonblocking(true).unwrap();
        let filler = std::os::unix::net::UnixDatagram::unbound().unwrap();
        filler.connect(&path).unwrap();
        filler.set_nonblocking(true).unwrap();
        let filled = (0..100_000).find(|_| filler.send(b"FILLER=1").is_err());
        assert!(filled.is_some(), "the queue never filled");

        let env = Env::from_pairs([("NOTIFY_SOCKET", path.to_str().unwrap())]);
        let running = started(build(service(env, &Log::default()))).await;
        let report = running.stop().await;
        assert!(report.is_clean(), "{report}");

        // READY=1 found no room and was dropped after waiting; once there is room, the
        // notices sent after it arrive.
        let mut buffer = [0; 4096];
        while manager.recv(&mut buffer).is_ok() {}
        let running = started(build(service(
            Env::from_pairs([("NOTIFY_SOCKET", path.to_str().unwrap())]),
            &Log::default(),
        )))
        .await;
        let len = manager.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..len], b"STATUS=starting");
        assert!(running.stop().await.is_clean());
    });
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_socket_is_reported_once_and_does_not_fail_the_system() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("nobody-listens");
    let env = Env::from_pairs([
        ("NOTIFY_SOCKET", nowhere.to_str().unwrap()),
        ("WATCHDOG_USEC", "2000000"),
    ]);
    let captured = Captured::default();
    let _guard = captured.install();

    let running = started(build(service(env, &Log::default()))).await;
    // Ten failed pings' worth of (paused) time.
    tokio::time::sleep(10 * 2 * SECOND).await;
    let report = running.stop().await;

    assert!(report.is_clean(), "{report}");
    let warnings = captured.messages("WARN");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("NOTIFY_SOCKET"), "{}", warnings[0]);
}

#[test]
fn invalid_variables_are_build_errors_that_name_them() {
    for (variable, value) in [
        ("WATCHDOG_USEC", "2s"),
        ("WATCHDOG_PID", "me"),
        ("NOTIFY_SOCKET", "relative/path"),
    ] {
        let env = Env::from_pairs([("NOTIFY_SOCKET", "/run/notify"), (variable, value)]);
        let error = builder("service", env).build().expect_err("invalid");
        assert!(
            matches!(error.problems(), [Problem::InvalidVariable { variable: v, .. }] if *v == variable),
            "{error}"
        );
        assert!(error.to_string().contains(value), "{error}");
        assert_eq!(error.exit_code(), 78);
    }
}
