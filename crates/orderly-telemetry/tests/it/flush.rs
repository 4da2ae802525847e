//! No line is lost: the `01_logs` example logs 100,000 numbered lines into a slowly read pipe,
//! then stops — by SIGTERM, or forced by a second one; every line arrives whole and in order,
//! and the shutdown report comes last.

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::process::Logging;

const LINES: u64 = 100_000;

/// Every line of `stdout` as JSON (each must be a whole JSON object).
pub(crate) fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).unwrap_or_else(|error| {
                panic!("line {} is not whole JSON ({error}): {line}", i + 1)
            })
        })
        .collect()
}

/// Checks that the `line` messages are numbered 1..=LINES, each once, in order.
fn assert_every_line_in_order(log: &[Value]) {
    let numbers: Vec<u64> = log
        .iter()
        .filter(|line| line["message"] == "line")
        .map(|line| line["n"].as_u64().expect("a numbered line"))
        .collect();
    if let Some((at, (got, want))) = numbers
        .iter()
        .zip(1..=LINES)
        .enumerate()
        .find(|(_, (got, want))| **got != *want)
    {
        panic!("line number {at}: expected n = {want}, got {got}");
    }
    assert_eq!(numbers.len() as u64, LINES, "every numbered line arrives");
}

/// The last line is the shutdown report with `exit_code`.
fn assert_report_last(log: &[Value], exit_code: i32) {
    let last = log.last().expect("some output");
    assert_eq!(last["event"], "shutdown_report", "the last line: {last}");
    assert_eq!(last["exit_code"], exit_code, "the report: {last}");
}

/// Starts the flood and waits until every line was handed to the logger.
async fn flooded(env: &[(&str, &str)]) -> Logging {
    let lines = LINES.to_string();
    let mut env = env.to_vec();
    env.push(("LINES", &lines));
    let mut logging = Logging::spawn(&env);
    logging.cue(&format!("logged {LINES} lines")).await;
    logging
}

/// Asserts the signal came while many lines were still on their way: in the logger's queue or
/// in the pipe. Not a timing: the reader is far slower than the writer, so the queue is full.
fn assert_backlog(total: usize, read_before: usize) {
    let backlog = total - read_before;
    assert!(
        backlog >= 1000,
        "only {backlog} lines were still unread when the signal came"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn after_sigterm_every_line_arrives_whole_and_in_order_through_a_slow_pipe() {
    // No LOG_FORMAT: stdout is a pipe, so the lines are JSON.
    let logging = flooded(&[]).await;
    let read_before = logging.lines_read();
    logging.signal(Signal::SIGTERM);
    let (code, stdout) = logging.exit().await;

    assert_eq!(code, 0);
    let log = json_lines(&stdout);
    assert_every_line_in_order(&log);
    assert_report_last(&log, 0);
    assert_backlog(log.len(), read_before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forced_exit_by_a_second_sigterm_still_writes_every_line() {
    // `producer`'s stop hangs, so only the second signal ends the process: `run` calls
    // `process::exit`, which runs no destructor; the `before_exit` hook flushes.
    let mut logging = flooded(&[("STOP_HANG", "1")]).await;
    let read_before = logging.lines_read();
    logging.signal(Signal::SIGTERM);
    logging.cue("stopping").await;
    logging.signal(Signal::SIGTERM);
    let (code, stdout) = logging.exit().await;

    assert_eq!(code, 143);
    let log = json_lines(&stdout);
    assert_every_line_in_order(&log);
    assert_report_last(&log, 143);
    assert_backlog(log.len(), read_before);
}
