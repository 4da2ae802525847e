//! Options are validated before anything starts, every problem at once.

use orderly_drill::{Drill, ErrorKind, Load, Options};

#[test]
fn every_invalid_option_is_reported_at_once() {
    let mut options = Options::new("  ");
    options.replicas = 0;
    options.max_surge = 0;
    options.max_unavailable = 0;
    options.load = Load::Clients(0);
    options.path = "work".to_owned();
    options.listen = "10.0.0.1:80".parse().unwrap();
    let error = Drill::new(options).unwrap_err();
    assert!(error.is_invalid_options());
    let ErrorKind::InvalidOptions(problems) = error.kind() else {
        panic!("{error}");
    };
    let text = problems.join("\n");
    for option in [
        "--replica-cmd",
        "--replicas",
        "--max-surge",
        "--clients",
        "--path",
        "--listen",
    ] {
        assert!(text.contains(option), "{option} missing from {text}");
    }
    assert_eq!(problems.len(), 6);
}

#[tokio::test]
async fn a_replica_that_cannot_start_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new("/nonexistent/replica --flag");
    options.work_dir = Some(dir.path().to_owned());
    let error = Drill::new(options).unwrap().run().await.unwrap_err();
    assert!(error.is_replica());
    assert!(error.to_string().contains("r0-0"), "{error}");
    assert!(
        error.to_string().contains("/nonexistent/replica --flag"),
        "{error}"
    );
}

#[tokio::test]
async fn a_replica_that_exits_before_it_is_ready_fails_the_drill() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new("/bin/false");
    options.work_dir = Some(dir.path().to_owned());
    let error = Drill::new(options).unwrap().run().await.unwrap_err();
    assert!(error.is_replica());
    assert!(error.to_string().contains("exit code 1"), "{error}");
    // Replaced twice (the kubelet restarts a crashed container), then given up on.
    let logs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().extension() == Some("log".as_ref()))
        .count();
    assert_eq!(logs, 3 + 2, "3 replicas, 2 replacements");
}
