//! The binary: its exit status and its JSON report.

use std::process::Command;

use crate::drill::replica;

const DRILL: &str = env!("CARGO_BIN_EXE_orderly-drill");

#[test]
fn invalid_options_exit_2_naming_each_option() {
    let output = Command::new(DRILL)
        .args([
            "--replica-cmd",
            "x",
            "--replicas",
            "0",
            "--listen",
            "10.1.2.3:0",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--replicas") && stderr.contains("--listen"),
        "{stderr}"
    );
}

/// A negative control run without `--expect-failures` fails the drill (exit 1) and the JSON
/// report says why; with it, the same run passes. Both runs share the work directory: the
/// ledgers of the first must not count in the second (they did, as ids handled twice).
#[test]
fn lost_requests_make_the_drill_exit_1_unless_failures_are_expected() {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let run = |expect_failures: bool| {
        let mut command = Command::new(DRILL);
        command
            .args(["--replica-cmd", &replica("02_no_drain_replica")])
            .args(["--replicas", "2", "--clients", "4", "--steady", "300ms"])
            .args(["--propagation-delay", "300ms"])
            .arg("--work-dir")
            .arg(dir.path())
            .arg("--report")
            .arg(&report_path);
        if expect_failures {
            command.arg("--expect-failures");
        }
        command.output().unwrap()
    };

    let output = run(false);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("drill FAILED"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert!(report["failed"].as_u64().unwrap() > 0, "{report:#}");
    assert_eq!(report["expectation"], "no-failures");
    // 2 old, 2 new (and a replacement, should one crash before it was ready).
    assert!(
        report["replicas"].as_array().unwrap().len() >= 4,
        "{report:#}"
    );
    assert!(report["options"]["probe"]["period_ms"].as_f64().is_some());

    let output = run(true);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn an_invalid_request_template_exits_2_naming_each_option() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(DRILL)
        .args([
            "--replica-cmd",
            "x",
            "--method",
            "GE T",
            "--path",
            "work/{id}",
        ])
        .args([
            "--header",
            "Bad Name: x",
            "--header",
            "Authorization: Bearer hunter2",
        ])
        .arg("--body-file")
        .arg(dir.path().join("missing.json"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // An unreadable body file stops the binary before the other options are checked.
    assert!(stderr.contains("--body-file"), "{stderr}");

    let output = Command::new(DRILL)
        .args([
            "--replica-cmd",
            "x",
            "--method",
            "GE T",
            "--path",
            "work/{id}",
        ])
        .args([
            "--header",
            "Bad Name: x",
            "--header",
            "Authorization: Bearer hunter2",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for option in ["--method", "--path 'work/1'", "--header 'Bad Name'"] {
        assert!(stderr.contains(option), "{option} missing from {stderr}");
    }
    assert!(!stderr.contains("hunter2"), "{stderr}");
    // Not "Name: value" at all: clap refuses it.
    let output = Command::new(DRILL)
        .args(["--replica-cmd", "x", "--header", "no colon"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
