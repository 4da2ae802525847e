//! What reaches stdout, as the environment asks: the format on a pipe, on a terminal and by
//! `LOG_FORMAT`; the level by `LOG_LEVEL` and `RUST_LOG`; errors before and after the logger.

use nix::sys::signal::Signal;

use crate::flush::json_lines;
use crate::process::{Logging, Stdout};

/// Runs the example with `env` and `LINES=3` until it logged them, then stops it with SIGTERM;
/// returns what it wrote to stdout (it must exit 0).
async fn three_lines(stdout: Stdout, env: &[(&str, &str)]) -> String {
    let mut env = env.to_vec();
    env.push(("LINES", "3"));
    let mut logging = Logging::spawn_on(stdout, &env);
    logging.cue("logged 3 lines").await;
    logging.signal(Signal::SIGTERM);
    let (code, stdout) = logging.exit().await;
    assert_eq!(code, 0, "{stdout}");
    stdout
}

#[tokio::test]
async fn log_format_pretty_writes_plain_readable_lines_without_colours_in_a_pipe() {
    let stdout = three_lines(Stdout::SlowPipe, &[("LOG_FORMAT", "pretty")]).await;

    assert!(
        !stdout.contains('\x1b'),
        "no colour codes in a pipe:\n{stdout}"
    );
    assert!(
        stdout.lines().all(|line| !line.starts_with('{')),
        "no JSON:\n{stdout}"
    );
    assert!(stdout.contains(" INFO 01_logs: line n=3\n"), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.contains("shutdown report"), "the last line: {last}");
}

#[tokio::test]
async fn an_invalid_log_format_exits_78_and_names_the_variable_before_anything_starts() {
    let mut logging = Logging::spawn(&[("LOG_FORMAT", "xml")]);
    let message = logging.stderr_line().await;
    let (code, stdout) = logging.exit().await;

    assert_eq!(code, 78);
    assert_eq!(
        message.as_deref(),
        Some("LOG_FORMAT: expected json or pretty, found 'xml'")
    );
    assert_eq!(stdout, "", "nothing started, nothing logged");
}

#[tokio::test]
async fn a_configuration_error_after_telemetry_is_a_log_line() {
    let logging = Logging::spawn(&[("LINES", "many")]);
    let (code, stdout) = logging.exit().await;

    assert_eq!(code, 78);
    let log = json_lines(&stdout);
    assert_eq!(log.len(), 1, "{stdout}");
    assert_eq!(log[0]["level"], "ERROR");
    assert_eq!(log[0]["variable"], "LINES");
}

#[tokio::test]
async fn on_a_terminal_the_default_is_pretty_and_coloured() {
    let screen = three_lines(Stdout::Terminal, &[]).await;

    assert!(
        screen.contains("\x1b["),
        "coloured on a terminal:\n{screen}"
    );
    assert!(
        screen.lines().all(|line| !line.starts_with('{')),
        "no JSON on a terminal:\n{screen}"
    );
    let last = screen.lines().last().unwrap_or_default();
    assert!(last.contains("shutdown report"), "the last line: {last}");
}

#[tokio::test]
async fn log_level_drops_what_is_below_it() {
    // Every line of the example is info: lifecycle events, the numbered lines, the report.
    let stdout = three_lines(Stdout::SlowPipe, &[("LOG_LEVEL", "warn")]).await;

    assert_eq!(stdout, "", "nothing at warn or above");
}

#[tokio::test]
async fn rust_log_directives_choose_by_target_and_win_over_log_level() {
    let env = [("RUST_LOG", "warn,01_logs=info"), ("LOG_LEVEL", "debug")];
    let stdout = three_lines(Stdout::SlowPipe, &env).await;

    let log = json_lines(&stdout);
    assert_eq!(log[0]["level"], "WARN", "{stdout}");
    assert_eq!(
        log[0]["message"], "LOG_LEVEL is ignored: RUST_LOG is set and wins",
        "{stdout}"
    );
    let targets: Vec<&str> = log[1..]
        .iter()
        .filter_map(|l| l["target"].as_str())
        .collect();
    assert_eq!(
        targets, ["01_logs"; 4],
        "only the example's own lines: {stdout}"
    );
}

#[tokio::test]
async fn a_json_line_is_flat_and_carries_its_span() {
    let stdout = three_lines(Stdout::SlowPipe, &[("LOG_FORMAT", "json")]).await;

    let log = json_lines(&stdout);
    let producing = log
        .iter()
        .find(|line| line["message"] == "producing")
        .unwrap_or_else(|| panic!("no `producing` line: {stdout}"));
    for field in ["timestamp", "level", "target", "message"] {
        assert!(producing[field].is_string(), "no {field}: {producing}");
    }
    assert_eq!(producing["span"]["name"], "produce", "{producing}");
    assert_eq!(producing["span"]["lines"], 3, "{producing}");
    let started = log
        .iter()
        .find(|line| line["event"] == "component_started")
        .unwrap_or_else(|| panic!("no lifecycle line: {stdout}"));
    assert_eq!(
        started["component"], "logs",
        "fields at the top level: {started}"
    );
}
