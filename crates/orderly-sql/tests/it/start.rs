//! Start: bounded retry with backoff, errors that name the host and never the password.

use std::time::Duration;

use orderly::{ExitReason, FailureKind, Report};
use orderly_sql::{DatabaseUrl, Error};

use crate::support::{Logs, Proxy, TestDb, settings, system, within};

const PASSWORD: &str = "pa55-w0rd-never-shown";

/// The pool's error in a report whose start failed.
fn start_error(report: &Report) -> &Error {
    let ExitReason::StartFailed { component, failure } = &report.reason else {
        panic!("not a start failure: {}", report.reason);
    };
    assert_eq!(&**component, "db");
    let FailureKind::Error(error) = failure.kind() else {
        panic!("not an error: {failure}");
    };
    error.downcast_ref::<Error>().unwrap_or_else(|| {
        panic!("not an orderly_sql::Error: {error}");
    })
}

/// A port nothing listens on: bound, then released.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn an_unreachable_database_fails_the_start_naming_the_host_and_attempts_never_the_password() {
    let port = closed_port().await;
    let url: DatabaseUrl = format!("postgres://app:{PASSWORD}@127.0.0.1:{port}/orders")
        .parse()
        .unwrap();
    let settings = settings(url)
        .connect_timeout(Duration::from_millis(400))
        .connect_backoff(Duration::from_millis(10), Duration::from_millis(40));
    let logs = Logs::default();
    let _guard = logs.record();
    let (system, _db) = system::<sqlx::Postgres>(settings);

    let report = within("start", system.build().unwrap().start())
        .await
        .err()
        .unwrap()
        .into_report();

    assert_eq!(report.exit_code, 1);
    let error = start_error(&report);
    assert!(error.is_unreachable(), "{error}");
    let attempts = error.attempts().unwrap();
    assert!(attempts >= 2, "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("PostgreSQL at 127.0.0.1:{port}/orders")),
        "{message}"
    );
    assert!(
        message.contains(&format!("{attempts} attempts")),
        "{message}"
    );
    assert!(message.contains("the last failed with:"), "{message}");
    // Nowhere: not the message, not Debug, not the report, not the logs.
    let everything = format!(
        "{message} {error:?} {report:?} {} {}",
        report.summary(),
        logs.text()
    );
    assert!(!everything.contains(PASSWORD), "{everything}");
    // Each failed attempt but the last was logged, naming the database.
    let retries = logs
        .text()
        .matches("cannot connect to the database; retrying")
        .count();
    assert_eq!(retries as u32, attempts - 1, "{}", logs.text());
    assert!(logs.text().contains(&format!("127.0.0.1:{port}/orders")));
}

#[tokio::test]
async fn a_refusal_is_not_retried() {
    let db = TestDb::create().await;
    let url: DatabaseUrl = format!("postgres://postgres@{}/{}_missing", db.server(), db.name)
        .parse()
        .unwrap();
    let (system, _db) = system::<sqlx::Postgres>(settings(url));

    let report = within("start", system.build().unwrap().start())
        .await
        .err()
        .unwrap()
        .into_report();

    let error = start_error(&report);
    assert!(error.is_refused(), "{error}");
    assert_eq!(error.attempts(), Some(1));
    assert!(error.to_string().contains(&db.name), "{error}");
    assert!(error.to_string().contains("does not exist"), "{error}");
    db.drop().await;
}

#[tokio::test]
async fn settings_that_cannot_work_are_invalid_configuration_every_problem_named() {
    let url: DatabaseUrl = "sqlite::memory:".parse().unwrap();
    let settings = settings(url).max_connections(0);
    let (system, _db) = system::<sqlx::Postgres>(settings);

    let report = within("start", system.build().unwrap().start())
        .await
        .err()
        .unwrap()
        .into_report();

    assert_eq!(report.exit_code, 78, "{}", report.reason);
    // The pool's error, wrapped in `orderly::InvalidConfig` for the exit code.
    let ExitReason::StartFailed { component, failure } = &report.reason else {
        panic!("not a start failure: {}", report.reason);
    };
    assert_eq!(&**component, "db");
    assert!(failure.is_invalid_config());
    let message = failure.to_string();
    assert!(
        message.contains("invalid PostgreSQL pool settings"),
        "{message}"
    );
    assert!(message.contains("max_connections"), "{message}");
    assert!(
        message.contains("url: a PostgreSQL pool needs a postgres:// URL"),
        "{message}"
    );
}

/// The database comes up while the start retries: the start succeeds, with no restart.
#[tokio::test]
async fn the_start_waits_for_a_database_that_comes_up() {
    let db = TestDb::create().await;
    let proxy = Proxy::start(db.server()).await;
    proxy.cut();
    let (system, key) = system::<sqlx::Postgres>(settings(db.url_via(proxy.addr)));
    let starting = tokio::spawn(system.build().unwrap().start());

    // Two attempts failed against the cut proxy; then the database "comes up".
    proxy.turned_away(2).await;
    proxy.reopen();
    let running = within("start", starting).await.unwrap().unwrap();

    let pool = running.resource(key).unwrap();
    let (one,): (i32,) = sqlx::query_as("SELECT 1").fetch_one(&pool).await.unwrap();
    assert_eq!(one, 1);
    assert!(running.stop().await.is_clean());
    proxy.close().await;
    db.drop().await;
}

/// A start timeout shorter than the connect timeout cancels the retries: the report says the
/// start timed out, and the attempts logged until then name the host, never the password.
#[tokio::test]
async fn the_start_timeout_cancels_the_retries() {
    let port = closed_port().await;
    let url: DatabaseUrl = format!("postgres://app:{PASSWORD}@127.0.0.1:{port}/orders")
        .parse()
        .unwrap();
    let settings = settings(url).connect_timeout(Duration::from_secs(60));
    let logs = Logs::default();
    let _guard = logs.record();
    let mut system = orderly::System::builder("test").env(orderly::Env::empty());
    let settings = system.add_fn("settings", (), move |(), _ctx| {
        let settings = settings.clone();
        async move { Ok::<_, std::convert::Infallible>(settings) }
    });
    system.add(
        orderly::Spec::new("db").start_timeout(Duration::from_millis(300)),
        settings,
        orderly_sql::SqlPool::postgres(),
    );

    let report = within("start", system.build().unwrap().start())
        .await
        .err()
        .unwrap()
        .into_report();

    let ExitReason::StartFailed { failure, .. } = &report.reason else {
        panic!("not a start failure: {}", report.reason);
    };
    assert!(failure.is_timeout(), "{failure}");
    let logs = logs.text();
    assert!(
        logs.contains("cannot connect to the database; retrying"),
        "{logs}"
    );
    assert!(logs.contains(&format!("127.0.0.1:{port}/orders")), "{logs}");
    assert!(!logs.contains(PASSWORD), "{logs}");
}
