//! The builder validates every setting at once.

use std::time::Duration;

use orderly_workers::WorkerPool;

#[test]
fn build_reports_every_invalid_setting_at_once() {
    let error = WorkerPool::builder()
        .concurrency(0)
        .queue_capacity(0)
        .drain_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(error.problems().len(), 3, "{error}");
    let message = error.to_string();
    for setting in ["concurrency", "queue_capacity", "drain_timeout"] {
        assert!(message.contains(setting), "{message} should name {setting}");
    }
}

#[test]
fn the_defaults_build() {
    assert!(WorkerPool::builder().build().is_ok());
}
