//! C18: the shutdown report: per component start and stop durations and outcome, timeouts,
//! the exit reason and code.

use std::time::Duration;

use orderly::{ExitReason, Outcome, Report, Signal, Spec};

use crate::support::{Act, Captured, Log, Plan, Probe, build, builder, started};

const SECOND: Duration = Duration::from_secs(1);

/// config (1 s, 0 s) <- db (2 s, 3 s) <- worker (0 s, hangs past its 4 s stop timeout);
/// cache is ignorable and fails to start. Stopped by SIGTERM.
async fn eventful() -> Report {
    let log = Log::default();
    let mut b = builder("report");
    let config = b.add(
        "config",
        (),
        Probe::new("config", &log).on_start(Plan::sleep(SECOND)),
    );
    let db = Probe::new("db", &log)
        .on_start(Plan::sleep(2 * SECOND))
        .on_stop(Plan::sleep(3 * SECOND));
    let db = b.add("db", config, db);
    let cache = Probe::new("cache", &log).on_start(Act::Fail);
    b.add(Spec::new("cache").ignorable(), (), cache);
    let worker = Probe::new("worker", &log).on_stop(Act::Hang);
    b.add(Spec::new("worker").stop_timeout(4 * SECOND), db, worker);
    let running = started(build(b)).await;

    running.signal(Signal::Terminate);
    running.wait().await
}

#[tokio::test(start_paused = true)]
async fn the_report_has_each_components_durations_and_outcome() {
    let report = eventful().await;

    let row = |name: &str| {
        let c = report.component(name).unwrap();
        (c.started_in, c.stopped_in, c.outcome.to_string())
    };
    assert_eq!(
        row("config"),
        (Some(SECOND), Some(Duration::ZERO), "stopped".into())
    );
    assert_eq!(
        row("db"),
        (Some(2 * SECOND), Some(3 * SECOND), "stopped".into())
    );
    assert_eq!(row("cache").2, "skipped: cache refused to start");
    assert_eq!(
        row("worker"),
        (
            Some(Duration::ZERO),
            Some(4 * SECOND),
            "stop failed: timed out after 4s".into()
        )
    );
    assert!(
        matches!(&report.component("worker").unwrap().outcome, Outcome::StopFailed(f) if f.is_timeout())
    );
    assert!(matches!(
        report.reason,
        ExitReason::Signal(Signal::Terminate)
    ));
    assert_eq!(report.exit_code, 1, "a stop timed out");
    assert_eq!(report.start_took, 3 * SECOND);
    assert_eq!(report.stop_took, 7 * SECOND);
    assert_eq!(report.restarts, 0);
    assert_eq!(&*report.system, "report");
}

#[tokio::test(start_paused = true)]
async fn the_report_reads_as_a_table_and_as_one_line() {
    let report = eventful().await;

    assert_eq!(
        report.to_string(),
        "system 'report' stopped: SIGTERM received (exit code 1)\n\
         \x20 config               stopped; start 1s; stop 0ns\n\
         \x20 db                   stopped; start 2s; stop 3s\n\
         \x20 cache                skipped: cache refused to start; start 0ns\n\
         \x20 worker               stop failed: timed out after 4s; start 0ns; stop 4s\n"
    );
    assert_eq!(
        report.summary(),
        "config: stopped, start 1s, stop 0ns; db: stopped, start 2s, stop 3s; \
         cache: skipped: cache refused to start, start 0ns; \
         worker: stop failed: timed out after 4s, start 0ns, stop 4s"
    );
}

#[tokio::test(start_paused = true)]
async fn the_report_is_logged_as_one_structured_event() {
    let report = eventful().await;
    let captured = Captured::default();

    let guard = captured.install();
    report.log();
    drop(guard);

    let lines = captured.events();
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line["event"], "shutdown_report");
    assert_eq!(line["system"], "report");
    assert_eq!(line["exit_code"], 1);
    assert_eq!(line["reason"], "SIGTERM received");
    assert_eq!(line["start_ms"], 3000.0);
    assert_eq!(line["stop_ms"], 7000.0);
    assert_eq!(line["components"], report.summary());
}
