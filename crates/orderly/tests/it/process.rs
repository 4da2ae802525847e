//! Real processes: the `09_service` example runs as a child process and receives real signals,
//! and the `10_admin_task` example runs a one-off task; their JSON log lines and exit codes are
//! the oracle.
//!
//! `cargo test` builds the examples; `cargo test --test it` alone does not, so after a change run
//! `cargo test -p orderly` (or `cargo build -p orderly --examples`) first: a missing or stale
//! fixture fails with a message that says so. These tests use the real clock: their timeouts
//! only stop a broken test from hanging, and nothing asserts how long anything took.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::support::{Manager, count, states};

/// A guard against a hung test, never an expectation of speed.
const GUARD: Duration = Duration::from_secs(30);

/// The service's components in start order.
const CHAIN: [&str; 4] = ["config", "db", "cache", "http"];

/// The example's binary, built from this crate's sources.
fn fixture(example: &str) -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = [
        crate_dir.join("src"),
        crate_dir.join(format!("examples/{example}.rs")),
    ];
    crate::fixture::example("orderly", example, &sources)
}

/// The service running as a child process, and every log line read from it so far.
struct Service {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    log: Vec<Value>,
}

impl Service {
    /// Starts the service with exactly these environment variables.
    fn spawn(env: &[(&str, &str)]) -> Self {
        Self::example("09_service", &[], env)
    }

    /// Starts `example` with these arguments and exactly these environment variables.
    fn example(example: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(fixture(example))
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("spawn the {example} example: {error}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        Self {
            child,
            lines: BufReader::new(stdout).lines(),
            log: Vec::new(),
        }
    }

    /// The next log line, parsed; `None` once the service closed its stdout.
    async fn next_line(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(GUARD, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no log line within {GUARD:?}; log: {:#?}", self.log))
            .expect("read the service's stdout")?;
        let value: Value = serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}"));
        self.log.push(value.clone());
        Some(value)
    }

    /// Reads the log until the line of `event` (about `component`, if given).
    async fn wait_for(&mut self, event: &str, component: Option<&str>) {
        while let Some(line) = self.next_line().await {
            if line["event"] == event
                && component.is_none_or(|component| line["component"] == component)
            {
                return;
            }
        }
        panic!(
            "the service exited before logging {event} {component:?}; log: {:#?}",
            self.log
        );
    }

    fn signal(&self, signal: Signal) {
        let pid = self.child.id().expect("the service is running");
        let pid = Pid::from_raw(i32::try_from(pid).expect("a pid fits in i32"));
        kill(pid, signal).unwrap_or_else(|error| panic!("send {signal} to the service: {error}"));
    }

    /// Reads the log to its end and waits for the exit; returns the exit code and the whole log.
    async fn exit(mut self) -> (i32, Vec<Value>) {
        while self.next_line().await.is_some() {}
        let status = tokio::time::timeout(GUARD, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the service did not exit within {GUARD:?}"))
            .expect("wait for the service");
        let code = status.code().unwrap_or_else(|| {
            panic!(
                "the service was killed ({status}) instead of exiting; log: {:#?}",
                self.log
            )
        });
        (code, self.log)
    }
}

/// The `event` field of every event line, in order.
fn events(log: &[Value]) -> Vec<&str> {
    log.iter()
        .filter_map(|line| line["event"].as_str())
        .collect()
}

/// The components of the `event` lines, in order.
fn components<'a>(log: &'a [Value], event: &str) -> Vec<&'a str> {
    log.iter()
        .filter(|line| line["event"] == event)
        .filter_map(|line| line["component"].as_str())
        .collect()
}

/// The `shutdown_report` line.
fn report(log: &[Value]) -> &Value {
    log.iter()
        .find(|line| line["event"] == "shutdown_report")
        .unwrap_or_else(|| panic!("no shutdown_report line; log: {log:#?}"))
}

fn reversed(names: &[&'static str]) -> Vec<&'static str> {
    names.iter().rev().copied().collect()
}

async fn stops_cleanly_on(signal: Signal) {
    let mut service = Service::spawn(&[]);
    service.wait_for("system_started", None).await;
    service.signal(signal);
    let (code, log) = service.exit().await;

    assert_eq!(code, 0, "log: {log:#?}");
    assert_eq!(components(&log, "component_started"), CHAIN);
    assert_eq!(components(&log, "component_stopped"), reversed(&CHAIN));
    assert_eq!(events(&log).last(), Some(&"shutdown_report"));
    assert_eq!(report(&log)["exit_code"], 0);
}

#[tokio::test]
async fn sigterm_stops_in_reverse_order_and_exits_0() {
    stops_cleanly_on(Signal::SIGTERM).await;
}

#[tokio::test]
async fn sigint_stops_in_reverse_order_and_exits_0() {
    stops_cleanly_on(Signal::SIGINT).await;
}

#[tokio::test]
async fn sighup_restarts_in_process_when_enabled() {
    let mut service = Service::spawn(&[("SIGHUP_RESTART", "1")]);
    service.wait_for("system_started", None).await;
    service.signal(Signal::SIGHUP);
    service.wait_for("restarting", None).await;
    service.wait_for("system_started", None).await;
    service.signal(Signal::SIGTERM);
    let (code, log) = service.exit().await;

    assert_eq!(code, 0, "log: {log:#?}");
    assert_eq!(
        events(&log)
            .iter()
            .filter(|e| **e == "system_started")
            .count(),
        2
    );
    // Stopped in reverse, started again in order, then stopped in reverse for good.
    let twice = |names: Vec<&'static str>| [names.clone(), names].concat();
    assert_eq!(components(&log, "component_started"), twice(CHAIN.into()));
    assert_eq!(
        components(&log, "component_stopped"),
        twice(reversed(&CHAIN))
    );
    assert_eq!(report(&log)["restarts"], 1);
}

#[tokio::test]
async fn sighup_is_ignored_by_default() {
    let mut service = Service::spawn(&[]);
    service.wait_for("system_started", None).await;
    service.signal(Signal::SIGHUP);
    service.wait_for("signal_received", None).await;
    service.signal(Signal::SIGTERM);
    let (code, log) = service.exit().await;

    assert_eq!(code, 0, "log: {log:#?}");
    let events = events(&log);
    assert_eq!(events.iter().filter(|e| **e == "system_started").count(), 1);
    assert!(!events.contains(&"restarting"), "log: {log:#?}");
    assert_eq!(report(&log)["restarts"], 0);
}

/// `http`'s stop hangs; a second signal while it does ends the process with 128 + N.
async fn second_signal_forces_exit(second: Signal, expected: i32) {
    let mut service = Service::spawn(&[("STOP_HANG", "1")]);
    service.wait_for("system_started", None).await;
    service.signal(Signal::SIGTERM);
    service.wait_for("component_stopping", Some("http")).await;
    service.signal(second);
    let (code, log) = service.exit().await;

    assert_eq!(code, expected, "log: {log:#?}");
    assert_eq!(components(&log, "component_stopped"), Vec::<&str>::new());
}

#[tokio::test]
async fn second_sigterm_while_stopping_exits_143() {
    second_signal_forces_exit(Signal::SIGTERM, 143).await;
}

#[tokio::test]
async fn sigint_after_sigterm_while_stopping_exits_130() {
    second_signal_forces_exit(Signal::SIGINT, 130).await;
}

#[tokio::test]
async fn invalid_shutdown_delay_exits_78_before_anything_starts() {
    let service = Service::spawn(&[("SHUTDOWN_DELAY", "abc")]);
    let (code, log) = service.exit().await;

    assert_eq!(code, 78, "log: {log:#?}");
    assert_eq!(events(&log), Vec::<&str>::new(), "nothing may start");
    assert!(
        log.iter().any(|line| line["error"]
            .as_str()
            .is_some_and(|error| error.contains("SHUTDOWN_DELAY"))),
        "the error names the variable; log: {log:#?}"
    );
}

#[tokio::test]
async fn shutdown_deadline_exits_124_and_names_what_was_stopping() {
    let mut service = Service::spawn(&[("STOP_HANG", "1"), ("SHUTDOWN_TIMEOUT", "200ms")]);
    service.wait_for("system_started", None).await;
    service.signal(Signal::SIGTERM);
    let (code, log) = service.exit().await;

    assert_eq!(code, 124, "log: {log:#?}");
    let report = report(&log);
    assert_eq!(report["exit_code"], 124);
    let reason = report["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("deadline") && reason.contains("'http'"),
        "the report names http: {reason}"
    );
    assert_eq!(components(&log, "component_stopped"), Vec::<&str>::new());
}

#[tokio::test]
async fn speaks_systemds_notify_protocol_ready_then_stopping_on_sigterm() {
    let manager = Manager::bind();
    let service = Service::spawn(&[
        ("NOTIFY_SOCKET", manager.address()),
        ("WATCHDOG_USEC", "60000000"),
    ]);
    let started = manager.until("READY=1").await;
    service.signal(Signal::SIGTERM);
    let stopping = manager.until("STOPPING=1").await;
    let (code, log) = service.exit().await;

    assert_eq!(code, 0, "log: {log:#?}");
    assert_eq!(count(&started, "STATUS=starting"), 1, "{started:#?}");
    assert_eq!(
        stopping.last().map(String::as_str),
        Some("STOPPING=1\nSTATUS=stopping: SIGTERM received")
    );
    // The first ping is due at once; the next one only after 30 s.
    let messages = [started, stopping].concat();
    assert_eq!(count(&messages, "WATCHDOG=1"), 1, "{messages:#?}");
    assert_eq!(states(&messages), ["READY=1", "STOPPING=1"]);
    assert_eq!(manager.queue().drain(), Vec::<String>::new());
}

#[tokio::test]
async fn a_one_off_task_runs_on_the_services_components_and_exits_0() {
    let task = Service::example("10_admin_task", &["late-orders"], &[]);
    let (code, log) = task.exit().await;

    assert_eq!(code, 0, "log: {log:#?}");
    assert_eq!(
        components(&log, "component_started"),
        ["config", "db", "late-orders"]
    );
    assert_eq!(
        components(&log, "component_stopped"),
        ["late-orders", "db", "config"]
    );
    assert_eq!(
        report(&log)["reason"],
        "stop requested by 'late-orders'",
        "log: {log:#?}"
    );
}

#[tokio::test]
async fn a_one_off_task_that_finds_problems_exits_with_its_own_code() {
    let task = Service::example("10_admin_task", &["late-orders"], &[("LATE_ORDERS", "3")]);
    let (code, log) = task.exit().await;

    assert_eq!(code, 2, "log: {log:#?}");
    assert_eq!(report(&log)["exit_code"], 2);
    assert_eq!(
        report(&log)["reason"],
        "component 'late-orders' failed: 3 late orders"
    );
    assert_eq!(
        components(&log, "component_stopped"),
        ["late-orders", "db", "config"]
    );
}
