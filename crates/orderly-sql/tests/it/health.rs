//! Running: unhealthy (and the system not ready) while the database is unreachable, healthy and
//! ready again when it returns, with no restart. The outage is real: a TCP proxy in front of
//! the real server is cut and reopened.

use std::time::Duration;

use orderly::{Health, Phase};

use crate::support::{Proxy, TestDb, settings, system, within};

#[tokio::test]
async fn readiness_follows_the_database_through_an_outage() {
    let db = TestDb::create().await;
    let proxy = Proxy::start(db.server()).await;
    let (system, key) = system::<sqlx::Postgres>(settings(db.url_via(proxy.addr)));
    let running = system.build().unwrap().start().await.unwrap();
    let pool = running.resource(key).unwrap();
    let mut status = running.status();
    assert!(status.borrow().readiness().ok);

    proxy.cut();
    let down = within("not ready", status.wait_for(|s| !s.readiness().ok))
        .await
        .unwrap()
        .clone();
    let health = &down.component("db").unwrap().health;
    assert!(health.is_unhealthy(), "{health}");
    let reason = down.readiness().reason;
    assert!(reason.contains("db is unhealthy"), "{reason}");
    assert!(
        reason.contains(&format!("PostgreSQL at {}/{}", proxy.addr, db.name)),
        "{reason}"
    );
    assert!(reason.contains("unreachable"), "{reason}");
    assert_eq!(down.phase, Phase::Running, "the system keeps running");
    assert!(
        down.liveness().ok,
        "liveness does not depend on the database"
    );

    proxy.reopen();
    let up = within("ready again", status.wait_for(|s| s.readiness().ok))
        .await
        .unwrap()
        .clone();
    assert_eq!(up.component("db").unwrap().health, Health::Healthy);
    // The same pool serves again: no restart happened.
    let (one,): (i32,) = sqlx::query_as("SELECT 1").fetch_one(&pool).await.unwrap();
    assert_eq!(one, 1);

    let report = running.stop().await;
    assert!(report.is_clean(), "{}", report.summary());
    assert_eq!(report.restarts, 0);
    proxy.close().await;
    db.drop().await;
}

#[tokio::test]
async fn the_health_task_ends_when_the_pool_stops() {
    let db = TestDb::create().await;
    let (system, key) = system::<sqlx::Postgres>(settings(db.url()));
    let running = system.build().unwrap().start().await.unwrap();
    let pool = running.resource(key).unwrap();

    // The stop waits for the component's tracked tasks: a health task that did not end would
    // hold it until the stop timeout and fail it.
    let report = within("stop", running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
    assert!(pool.is_closed());
    db.drop().await;
}

/// A database that answers while the pool has no free connection is a busy service, not a
/// broken one: degraded, still ready.
#[tokio::test]
async fn an_exhausted_pool_is_degraded_and_still_ready() {
    let db = TestDb::create().await;
    let settings = settings(db.url())
        .max_connections(1)
        .health_check(Duration::from_millis(50), Duration::from_millis(300));
    let (system, key) = system::<sqlx::Postgres>(settings);
    let running = system.build().unwrap().start().await.unwrap();
    let pool = running.resource(key).unwrap();
    let mut status = running.status();

    let held = within("the only connection", pool.acquire()).await.unwrap();
    let busy = within(
        "degraded",
        status.wait_for(|s| matches!(s.component("db").unwrap().health, Health::Degraded(_))),
    )
    .await
    .unwrap()
    .clone();
    let health = busy.component("db").unwrap().health.to_string();
    assert!(
        health.contains("answers, but the pool does not"),
        "{health}"
    );
    assert!(busy.readiness().ok, "{}", busy.readiness().reason);

    drop(held);
    within(
        "healthy again",
        status.wait_for(|s| s.component("db").unwrap().health == Health::Healthy),
    )
    .await
    .unwrap();
    assert!(running.stop().await.is_clean());
    db.drop().await;
}
