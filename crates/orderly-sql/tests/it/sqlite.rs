//! The SQLite pool: the file is created, WAL mode, a busy timeout, closed at stop.

use std::time::Duration;

use crate::support::{settings, system, within};

#[tokio::test]
async fn the_file_is_created_in_wal_mode_with_a_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fab.db");
    assert!(!file.exists());
    let url = format!("sqlite://{}", file.display()).parse().unwrap();
    let settings = settings(url).busy_timeout(Duration::from_millis(2500));
    let (system, key) = system::<sqlx::Sqlite>(settings);

    let running = within("start", system.build().unwrap().start())
        .await
        .unwrap();
    let pool = running.resource(key).unwrap();

    assert!(file.exists());
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let (busy,): (i64,) = sqlx::query_as("PRAGMA busy_timeout")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(busy, 2500);
    sqlx::query("CREATE TABLE t (x int)")
        .execute(&pool)
        .await
        .unwrap();

    let report = within("stop", running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
    assert!(pool.is_closed());
}

#[tokio::test]
async fn an_in_memory_database_outlives_idle_connections() {
    let url = "sqlite::memory:".parse().unwrap();
    let (system, key) = system::<sqlx::Sqlite>(settings(url));
    let running = within("start", system.build().unwrap().start())
        .await
        .unwrap();
    let pool = running.resource(key).unwrap();

    sqlx::query("CREATE TABLE t (x int)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&pool)
        .await
        .unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM t")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(pool.size() >= 1);

    assert!(within("stop", running.stop()).await.is_clean());
}

#[tokio::test]
async fn a_file_that_cannot_be_created_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("no-such-dir").join("fab.db");
    let url = format!("sqlite://{}", file.display()).parse().unwrap();
    let (system, _key) = system::<sqlx::Sqlite>(settings(url));

    let report = within("start", system.build().unwrap().start())
        .await
        .err()
        .unwrap()
        .into_report();

    assert_eq!(report.exit_code, 1);
    let reason = report.reason.to_string();
    assert!(reason.contains(&file.display().to_string()), "{reason}");
    assert!(reason.contains("not retried"), "{reason}");
}
