//! Short queue drills on the local RabbitMQ, NATS and PostgreSQL (`AMQP_URL`, `NATS_URL`,
//! `POSTGRES_URL` or `DATABASE_URL`): each has its own queue or stream and database (dropped at
//! the end), real consumer processes (orderly-amqp's `amqp_zero_loss_consumer` and orderly-nats'
//! `nats_zero_loss_consumer` examples) and real signals. They assert on counts, never on
//! durations; the timeouts only bound a hang.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use orderly_drill::{
    Broker, QueueDrill, QueueExpectation, QueueOptions, QueueReport, Scenario, Stop,
};

const DRILL: &str = env!("CARGO_BIN_EXE_orderly-drill");

/// orderly-amqp's zero-loss consumer process, built by `cargo test` of that crate (or of the
/// workspace).
fn consumer() -> String {
    let amqp = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../orderly-amqp");
    crate::fixture::example(
        "orderly-drill -p orderly-amqp",
        "amqp_zero_loss_consumer",
        &[
            amqp.join("examples/amqp_zero_loss_consumer.rs"),
            amqp.join("src"),
        ],
    )
    .display()
    .to_string()
}

/// orderly-nats' zero-loss consumer process.
fn nats_consumer() -> String {
    let nats = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../orderly-nats");
    crate::fixture::example(
        "orderly-drill -p orderly-nats",
        "nats_zero_loss_consumer",
        &[
            nats.join("examples/nats_zero_loss_consumer.rs"),
            nats.join("src"),
        ],
    )
    .display()
    .to_string()
}

/// A short NATS drill: 3,000 messages at 500 a second (the debug-built consumers handle a few
/// hundred a second on a loaded machine), prefetch 64 (the durable consumer's
/// `max_ack_pending`, shared by the replicas).
fn nats_options(command: String, scenario: Scenario) -> (QueueOptions, tempfile::TempDir) {
    let (mut options, dir) = options(command, scenario);
    options.broker = Broker::nats_from_env();
    options.messages = 3_000;
    options.rate = 500;
    options.prefetch = 64;
    (options, dir)
}

fn options(command: String, scenario: Scenario) -> (QueueOptions, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = QueueOptions::new(command);
    options.replicas = 3;
    options.scenario = scenario;
    options.messages = 5_000;
    options.rate = 1_000;
    options.prefetch = 32;
    options.settle = Duration::from_secs(1);
    options.work_dir = Some(dir.path().to_owned());
    (options, dir)
}

async fn run(options: QueueOptions) -> QueueReport {
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        QueueDrill::new(options).unwrap().run(),
    )
    .await
    .expect("the drill ends")
    .unwrap();
    eprintln!("{report}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restarts_under_publishing_lose_nothing_and_handle_nothing_twice() {
    let (options, _dir) = options(consumer(), Scenario::RollingRestarts(2));
    let report = run(options).await;
    assert_eq!(report.sent, 5_000);
    assert_eq!(report.confirmed, 5_000, "{report}");
    assert_eq!(report.effects, 5_000, "{report}");
    assert_eq!(report.lost, 0, "{report}");
    assert_eq!(
        (report.handled_twice, report.extra_handlings),
        (0, 0),
        "{report}"
    );
    assert_eq!(report.events.len(), 2);
    assert!(report.events.iter().all(|e| e.stop == Stop::Sigterm));
    // 3 first replicas, 2 replacements, every one stopped by SIGTERM and exited 0.
    assert_eq!(report.consumers.len(), 5);
    for consumer in &report.consumers {
        let exit = consumer.exit.unwrap();
        assert_eq!((exit.code, exit.sigkilled), (Some(0), false), "{report}");
    }
    assert!(report.drained);
    assert!(report.passed(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkills_lose_nothing_and_redeliver_at_most_the_in_flight() {
    let (mut options, _dir) = options(consumer(), Scenario::Sigkills(3));
    options.seed = Some(7);
    let report = run(options).await;
    assert_eq!(report.confirmed, 5_000, "{report}");
    assert_eq!(report.lost, 0, "{report}");
    assert_eq!(report.events.len(), 3);
    for event in &report.events {
        assert_eq!(event.stop, Stop::Sigkill);
        assert_eq!(event.exit.unwrap().signal, Some(9), "{report}");
    }
    assert_eq!(report.redelivery_bound, 3 * 32);
    assert!(
        report.extra_handlings <= report.redelivery_bound,
        "{report}"
    );
    // The replicas left at the end stopped gracefully.
    let graceful = report
        .consumers
        .iter()
        .filter(|c| c.stop == Some(Stop::End))
        .count();
    assert_eq!(graceful, 3);
    assert!(report.passed(), "{report}");
}

/// The negative control: a consumer that acknowledges before its effect is durable loses
/// messages when it is killed, and the drill must see it (else its zeros prove nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_before_the_effect_loses_messages_on_sigkill() {
    // `env` execs the consumer, so the SIGKILL reaches it.
    let command = format!("env ACK_BEFORE_EFFECT=1 {}", consumer());
    let (mut options, _dir) = options(command, Scenario::Sigkills(3));
    options.seed = Some(7);
    options.expectation = QueueExpectation::Loss;
    let report = run(options).await;
    assert_eq!(report.confirmed, 5_000, "{report}");
    assert!(report.lost > 0, "{report}");
    assert_eq!(report.lost_ids.len() as u64, report.lost.min(100));
    assert!(report.passed(), "the negative control saw its loss");
    assert!(!report.problems.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_rolling_restarts_under_publishing_lose_nothing_and_handle_nothing_twice() {
    let (options, _dir) = nats_options(nats_consumer(), Scenario::RollingRestarts(2));
    let report = run(options).await;
    assert_eq!(report.broker, "nats");
    assert_eq!(report.confirmed, 3_000, "{report}");
    assert_eq!(report.effects, 3_000, "{report}");
    assert_eq!(report.lost, 0, "{report}");
    assert_eq!(
        (report.handled_twice, report.extra_handlings),
        (0, 0),
        "{report}"
    );
    assert_eq!(report.events.len(), 2);
    assert_eq!(report.consumers.len(), 5);
    for consumer in &report.consumers {
        let exit = consumer.exit.unwrap();
        assert_eq!((exit.code, exit.sigkilled), (Some(0), false), "{report}");
    }
    assert!(report.passed(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_sigkills_lose_nothing_and_redeliver_at_most_the_in_flight() {
    let (mut options, _dir) = nats_options(nats_consumer(), Scenario::Sigkills(2));
    options.seed = Some(7);
    let report = run(options).await;
    assert_eq!(report.confirmed, 3_000, "{report}");
    assert_eq!(report.lost, 0, "{report}");
    assert_eq!(report.events.len(), 2);
    assert!(
        report
            .events
            .iter()
            .all(|e| e.exit.unwrap().signal == Some(9))
    );
    assert_eq!(report.redelivery_bound, 2 * 64);
    assert!(
        report.extra_handlings <= report.redelivery_bound,
        "{report}"
    );
    assert!(report.passed(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_acknowledging_before_the_effect_loses_messages_on_sigkill() {
    let command = format!(
        "env ZERO_LOSS_ACKNOWLEDGE=before-effect {}",
        nats_consumer()
    );
    let (mut options, _dir) = nats_options(command, Scenario::Sigkills(2));
    options.seed = Some(7);
    options.expectation = QueueExpectation::Loss;
    let report = run(options).await;
    assert_eq!(report.confirmed, 3_000, "{report}");
    assert!(report.lost > 0, "{report}");
    assert!(report.passed(), "the negative control saw its loss");
}

#[test]
fn invalid_queue_options_exit_2_naming_each_option() {
    let output = Command::new(DRILL)
        .args(["queue", "--replica-cmd", "x", "--replicas", "0"])
        .args(["--rate", "0", "--name", "no spaces"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for option in ["replicas", "rate", "name"] {
        assert!(stderr.contains(option), "{option}: {stderr}");
    }
}

/// The binary's report: a negative control without `--expect-loss` exits 1 and its JSON
/// names the lost ids.
#[test]
fn a_loss_makes_the_queue_drill_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let output = Command::new(DRILL)
        .arg("queue")
        .args([
            "--replica-cmd",
            &format!("env ACK_BEFORE_EFFECT=1 {}", consumer()),
        ])
        .args(["--sigkills", "2", "--messages", "3000", "--seed", "11"])
        .args(["--settle", "1s"])
        .arg("--work-dir")
        .arg(dir.path())
        .arg("--report")
        .arg(&report_path)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert!(report["lost"].as_u64().unwrap() > 0, "{report:#}");
    assert!(!report["lost_ids"].as_array().unwrap().is_empty());
    assert_eq!(report["expectation"], "exactly-once");
    assert_eq!(report["scenario"]["kind"], "sigkills");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("FAILED"), "{stdout}");
}
