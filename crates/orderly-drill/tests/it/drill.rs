//! Short drills in real time (3 replicas, 1 rollout): they assert on counts, never on
//! durations. Each keeps well under 30 s; the timeouts in them only bound a hang.

use std::path::PathBuf;
use std::time::Duration;

use orderly_drill::{Connections, Drill, Expectation, HttpVersion, Load, Options, Report};

pub(crate) fn replica(example: &str) -> String {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // The example and the library it uses (not the binary's main.rs, which it does not).
    let mut sources = vec![crate_dir.join(format!("examples/{example}.rs"))];
    sources.extend(
        std::fs::read_dir(crate_dir.join("src"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| !path.ends_with("main.rs")),
    );
    crate::fixture::example("orderly-drill", example, &sources)
        .display()
        .to_string()
}

/// A short drill of `example` in a work directory of its own.
fn options(example: &str) -> (Options, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(replica(example));
    options.replicas = 3;
    options.rollouts = 1;
    options.load = Load::Clients(4);
    options.propagation_delay = Duration::from_millis(300);
    options.shutdown_delay = Duration::from_secs(1);
    options.steady = Duration::from_millis(500);
    options.work_dir = Some(dir.path().to_owned());
    (options, dir)
}

async fn run(options: Options) -> Report {
    let report = tokio::time::timeout(Duration::from_secs(60), Drill::new(options).unwrap().run())
        .await
        .expect("the drill ends")
        .expect("the drill runs");
    eprintln!("{report}");
    report
}

/// The replicas that became ready.
fn ready(report: &Report) -> impl Iterator<Item = &orderly_drill::ReplicaRecord> {
    report.replicas.iter().filter(|r| r.ready.is_some())
}

/// What every drill must show, whatever its outcome: the ledger joins (every success was
/// handled exactly once), every old replica got SIGTERM, and the books balance.
fn assert_consistent(report: &Report) {
    assert!(report.sent > 0);
    assert_eq!(report.ok + report.failed, report.sent);
    assert_eq!(report.failed_by_kind.values().sum::<usize>(), report.failed);
    assert_eq!(report.ok_not_in_ledger, 0, "every success is in a ledger");
    assert_eq!(report.handled_twice, 0, "nothing retried");
    assert_eq!(report.rollouts.len(), 1);
    // A replica that lost its port before binding it crashes and is replaced (rarely).
    assert_eq!(ready(report).count(), 6, "3 old and 3 new replicas");
    assert!(
        report.replicas.iter().all(|r| r.exit.is_some())
            && ready(report).all(|r| r.sigterm.is_some()),
        "every replica exited, every ready one got SIGTERM: {:?}",
        report.replicas
    );
    assert!(report.latency_steady.count > 0 && report.latency_rollout.count > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_orderly_replicas_loses_no_request() {
    let (options, _dir) = options("01_replica");
    let report = run(options).await;
    assert_consistent(&report);
    assert_eq!(report.failed, 0, "{:?}", report.failed_by_kind);
    assert!(report.passed());
    assert!(!report.any_sigkilled);
    assert!(
        ready(&report).all(|r| r.exit.unwrap().code == Some(0)),
        "every replica exited cleanly"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_http2_connections_through_an_http2_upstream_lose_no_request() {
    let (mut options, _dir) = options("01_replica");
    options.connections = Connections::Fresh;
    options.client_http = HttpVersion::Http2;
    options.upstream_http = HttpVersion::Http2;
    options.load = Load::Rate(200);
    let report = run(options).await;
    assert_consistent(&report);
    assert_eq!(report.failed, 0, "{:?}", report.failed_by_kind);
}

/// Negative control 1: a replica that exits at once on SIGTERM loses requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_without_drain_loses_requests() {
    let (mut options, _dir) = options("02_no_drain_replica");
    options.expectation = Expectation::Failures;
    let report = run(options).await;
    assert_consistent(&report);
    assert!(report.failed > 0);
    assert!(report.passed(), "the negative control sees its failures");
    // Routed to an exited replica during the propagation delay: refused.
    assert!(report.failed_by_kind.contains_key("upstream-refused"));
    assert!(report.sigterms.iter().any(|s| !s.buckets.is_empty()));
}

/// Negative control 2: a propagation delay longer than the shutdown delay loses requests,
/// even with a replica that drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_propagation_delay_longer_than_the_shutdown_delay_loses_requests() {
    let (mut options, _dir) = options("01_replica");
    options.propagation_delay = Duration::from_secs(1);
    options.shutdown_delay = Duration::from_millis(200);
    let report = run(options).await;
    assert_consistent(&report);
    assert!(report.failed > 0);
    assert!(!report.passed(), "expected no failures, so the drill fails");
    assert!(report.failed_by_kind.contains_key("upstream-refused"));
}

/// The Deployment strategy held during the rollout, read from the replicas' records: never
/// more than `replicas + max_surge` replicas not terminating; at each SIGTERM of the rollout,
/// at least `replicas - max_unavailable` other replicas ready.
fn assert_strategy(report: &Report, replicas: usize, max_surge: usize, max_unavailable: usize) {
    let records = &report.replicas;
    let alive_at = |t: Duration| {
        records
            .iter()
            .filter(|r| r.started <= t && r.sigterm.or(r.exited).is_none_or(|end| end > t))
            .count()
    };
    for record in records {
        assert!(
            alive_at(record.started) <= replicas + max_surge,
            "surge exceeded when {} started: {records:#?}",
            record.name
        );
    }
    let last_generation = records.iter().map(|r| r.generation).max().unwrap();
    for victim in records.iter().filter(|r| r.generation < last_generation) {
        // A replica that lost its port to another process between the drill picking it and
        // the replica binding it exits at once, is never ready, and is replaced (as the
        // kubelet restarts a crashed container); it was never a victim of the rollout.
        let Some(at) = victim.sigterm else {
            assert!(
                victim.ready.is_none(),
                "{} was ready and exited without a SIGTERM: {records:#?}",
                victim.name
            );
            continue;
        };
        let available = records
            .iter()
            .filter(|r| r.ready.is_some_and(|ready| ready <= at))
            .filter(|r| r.sigterm.is_none_or(|sigterm| sigterm > at))
            .count();
        assert!(
            available >= replicas - max_unavailable,
            "only {available} available after SIGTERM to {}: {records:#?}",
            victim.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_first_and_unavailable_first_rollouts_keep_their_bounds_and_lose_nothing() {
    for (max_surge, max_unavailable) in [(1, 0), (0, 1), (2, 1)] {
        let (mut options, _dir) = options("01_replica");
        options.max_surge = max_surge;
        options.max_unavailable = max_unavailable;
        options.steady = Duration::from_millis(200);
        let report = run(options).await;
        assert_consistent(&report);
        assert_strategy(&report, 3, max_surge, max_unavailable);
        assert_eq!(
            report.failed, 0,
            "surge {max_surge}, unavailable {max_unavailable}: {:?}",
            report.failed_by_kind
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_still_running_at_the_end_of_the_grace_period_is_sigkilled() {
    let (mut options, _dir) = options("01_replica");
    options.shutdown_delay = Duration::from_secs(30);
    options.grace_period = Duration::from_millis(300);
    options.propagation_delay = Duration::from_millis(100);
    let report = run(options).await;
    assert!(report.any_sigkilled);
    for replica in ready(&report) {
        let exit = replica.exit.unwrap();
        assert!(exit.sigkilled, "{}: {exit}", replica.name);
        assert_eq!(exit.signal, Some(9), "{}: {exit}", replica.name);
        assert_eq!(exit.code, None);
    }
}

/// The ledger join: a client that gives up on requests the replica has already committed
/// sees failures the report counts as handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_of_requests_a_replica_handled_are_reported_as_handled() {
    let (mut options, _dir) = options("01_replica");
    options.rollouts = 0;
    options.path = "/work?ms=1000&commit=first".to_owned();
    options.upstream_timeout = Duration::from_millis(200);
    options.load = Load::Clients(2);
    let report = run(options).await;
    assert!(report.failed > 0);
    assert_eq!(
        report.failed_by_kind.get("upstream-timeout"),
        Some(&report.failed)
    );
    // Most reached the replica before the timeout; on a loaded machine some may not have.
    assert!(
        report.failed_but_handled > 0 && report.failed_but_handled <= report.failed,
        "{} of {} failures handled",
        report.failed_but_handled,
        report.failed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_other_than_the_expected_ones_is_a_failure_the_replica_handled() {
    let (mut options, _dir) = options("01_replica");
    // The request template: `{id}` in the query (the replica ignores the extra field) and a
    // header; every answer is a 200, which this drill does not expect.
    options.path = "/work?ms=1&drill={id}".to_owned();
    options.headers = vec!["X-Drill-Template: request-{id}".parse().unwrap()];
    options.expect_status = "201,202".parse().unwrap();
    options.expectation = Expectation::Failures;
    let report = run(options).await;
    assert!(report.sent > 0 && report.passed());
    assert_eq!(report.ok, 0);
    assert_eq!(report.failed, report.sent);
    assert_eq!(
        report.failed_by_kind.get("status-200"),
        Some(&report.failed),
        "{:?}",
        report.failed_by_kind
    );
    // Each was handled, once: the path with its id reached the replica.
    assert_eq!(report.failed_but_handled, report.failed);
    assert_eq!(report.handled_twice, 0);
}
