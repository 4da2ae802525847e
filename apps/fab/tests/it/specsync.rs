//! The fab side of central specs: a `fab apc` (in-process, its own SQLite database) syncing
//! from a central spec service (an in-process `fab all`) over real HTTP on loopback.

use std::future::Future;
use std::time::Duration;

use axum::http::StatusCode;
use fab::service::ProcessKind;
use orderly::Health;
use serde_json::{Value, json};

use crate::support::{
    Backend, ENGINEER, ENGINEER_2, Fab, TOKENS, TOOL, key, lot, postgres_database,
};

/// The longest any condition below may take to hold (polls run every 50 ms).
const DEADLINE: Duration = Duration::from_secs(20);
const FAB_ID: &str = "fab-7";

/// Waits for `check` to return `Some`, polling; panics naming `what` after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let poll = async {
        loop {
            if let Some(value) = check().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    match tokio::time::timeout(DEADLINE, poll).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// The database of a fab under test: a SQLite file in its directory, or a PostgreSQL
/// database (its URL, and its admin URL and name to drop it).
type Database = Option<(String, (String, String))>;

async fn database(backend: Backend) -> Database {
    match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(postgres_database().await),
    }
}

/// A `fab apc` on `database` (else a SQLite file in `dir`), syncing from `spec_url`.
async fn start_apc(spec_url: &str, dir: tempfile::TempDir, database: Database) -> Fab {
    start(ProcessKind::Apc, spec_url, dir, database).await
}

/// A process of `kind` on `database` (else a SQLite file in `dir`), syncing from `spec_url`
/// as `fab-7`.
async fn start(
    kind: ProcessKind,
    spec_url: &str,
    dir: tempfile::TempDir,
    database: Database,
) -> Fab {
    let (url, drop) = match database {
        Some((url, drop)) => (url, Some(drop)),
        None => (
            format!("sqlite://{}", dir.path().join("fab.db").display()),
            None,
        ),
    };
    let vars = [
        ("FAB_DATA_DIR", dir.path().display().to_string()),
        ("FAB_TOKENS", TOKENS.to_owned()),
        ("FAB_ID", FAB_ID.to_owned()),
        ("DATABASE_URL", url),
        ("SPEC_URL", spec_url.to_owned()),
        ("SPEC_TOKEN", TOOL.to_owned()),
        ("SPEC_SYNC_INTERVAL", "50ms".to_owned()),
        ("SPEC_TIMEOUT", "2s".to_owned()),
        ("LOG_LEVEL", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Fab::launch(kind, vars, dir, drop).await
}

fn sr_content(min: f64, max: f64) -> Value {
    json!({ "content": {
        "sr_limits": [{ "product": "soc-a", "layer": "M1", "min": min, "max": max }],
        "fdc_limits": []
    }})
}

async fn draft(central: &Fab, content: &Value) -> u64 {
    let (status, body, _) = central
        .post("/v1/spec/sets", ENGINEER, &key(), content)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["version"].as_u64().unwrap()
}

async fn act(central: &Fab, version: u64, action: &str, token: &str) {
    let (status, body, _) = central
        .post(
            &format!("/v1/spec/sets/{version}/{action}"),
            token,
            &key(),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{action} v{version}: {body}");
}

async fn approve_and_release(central: &Fab, version: u64) {
    act(central, version, "approve", ENGINEER_2).await;
    act(central, version, "release", ENGINEER).await;
}

/// The version the central service has `FAB_ID` acknowledged at.
async fn acknowledged(central: &Fab) -> Option<u64> {
    let (status, acks) = central.get("/v1/spec/acks").await;
    assert_eq!(status, StatusCode::OK, "{acks}");
    acks.as_array()
        .unwrap()
        .iter()
        .find(|a| a["fab"] == FAB_ID)
        .and_then(|a| a["version"].as_u64())
}

fn sync_health(fab: &Fab) -> Health {
    fab.status()
        .borrow()
        .component("spec-sync")
        .expect("a spec-sync component")
        .health
        .clone()
}

async fn preview(fab: &Fab) -> Value {
    let auth = format!("Bearer {TOOL}");
    let (status, body, _) = fab
        .send(
            axum::http::Method::POST,
            "/v1/apc/subrecipe/preview",
            &[("authorization", &auth)],
            Some(lot("LOT-P", json!({ "mode": "formula" })).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn subrecipe(fab: &Fab, name: &str) -> (StatusCode, Value) {
    let (status, body, _) = fab
        .post(
            "/v1/apc/subrecipe",
            TOOL,
            &key(),
            &lot(name, json!({ "mode": "formula" })),
        )
        .await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_reaches_a_running_apc_which_keeps_it_while_the_spec_service_is_down_sqlite() {
    a_release_reaches_a_running_apc_which_keeps_it_while_the_spec_service_is_down(Backend::Sqlite)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_reaches_a_running_apc_which_keeps_it_while_the_spec_service_is_down_postgres() {
    a_release_reaches_a_running_apc_which_keeps_it_while_the_spec_service_is_down(
        Backend::Postgres,
    )
    .await;
}

/// Spec v2 released centrally reaches a running `fab apc` (on `backend`), which uses its
/// limits and acknowledges it; with the spec service gone the apc keeps serving on v2,
/// degraded, also after a restart.
async fn a_release_reaches_a_running_apc_which_keeps_it_while_the_spec_service_is_down(
    backend: Backend,
) {
    let central = Fab::start(Backend::Sqlite).await;
    let spec_url = format!("http://{}", central.addr);
    let database = database(backend).await;
    let apc = start_apc(&spec_url, tempfile::tempdir().unwrap(), database.clone()).await;
    apc.configure().await; // SR limits [30, 50] in the controller configuration, version 1

    // Nothing released yet: the configuration's limits, said so.
    let before = preview(&apc).await;
    assert_eq!(before["limits_from"], "config", "{before}");
    assert_eq!(before["spec_version"], 1, "{before}");

    // v1 is drafted and abandoned so that the spec's version (2) differs from the config's.
    let v1 = draft(&central, &sr_content(30.0, 50.0)).await;
    act(&central, v1, "retire", ENGINEER).await;
    // Formula's first SR is the nominal 40 mJ/cm², inside [39, 41].
    let v2 = draft(&central, &sr_content(39.0, 41.0)).await;
    assert_eq!(v2, 2);
    approve_and_release(&central, v2).await;

    eventually("fab-7 to acknowledge v2", || async {
        (acknowledged(&central).await == Some(2)).then_some(())
    })
    .await;
    // Acknowledged only once applied: the very next request runs on it.
    let (status, run) = subrecipe(&apc, "LOT-1").await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["limits_from"], "spec", "{run}");
    assert_eq!(run["record"]["spec_version"], 2, "{run}");
    assert_eq!(sync_health(&apc), Health::Healthy);

    // The spec service goes away: degraded (still ready), still on v2.
    central.stop().await;
    let message = eventually("spec-sync to report the outage", || async {
        match sync_health(&apc) {
            Health::Degraded(m) => Some(m),
            _ => None,
        }
    })
    .await;
    assert!(
        message.contains("spec service unreachable since")
            && message.contains("running on spec v2"),
        "{message}"
    );
    assert!(apc.status().borrow().readiness().ok);
    let (status, run) = subrecipe(&apc, "LOT-2").await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["record"]["spec_version"], 2, "{run}");
    assert_eq!(run["limits_from"], "spec", "{run}");

    // Restarted while the spec service is still down: v2 from its own database.
    let (dir, _same_database) = apc.stop_keeping_data().await;
    let apc = start_apc(&spec_url, dir, database).await;
    let after = preview(&apc).await;
    assert_eq!(after["limits_from"], "spec", "{after}");
    assert_eq!(after["spec_version"], 2, "{after}");
    let message = eventually(
        "spec-sync to report the outage after the restart",
        || async {
            match sync_health(&apc) {
                Health::Degraded(m) => Some(m),
                _ => None,
            }
        },
    )
    .await;
    assert!(message.contains("running on spec v2"), "{message}");
    apc.stop().await;
}

/// A released set the fab cannot validate changes nothing and is not acknowledged; the next
/// good release is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_fails_validation_is_not_half_applied_nor_acknowledged() {
    let central = Fab::start(Backend::Sqlite).await;
    let apc = start_apc(
        &format!("http://{}", central.addr),
        tempfile::tempdir().unwrap(),
        None,
    )
    .await;
    apc.configure().await;
    let v1 = draft(&central, &sr_content(39.0, 41.0)).await;
    approve_and_release(&central, v1).await;
    eventually("fab-7 to acknowledge v1", || async {
        (acknowledged(&central).await == Some(1)).then_some(())
    })
    .await;

    // v2: a good item for soc-a/M1 and one the fab refuses. The central service validates
    // drafts with the same rules, so such a set only reaches a fab from a registry written by
    // other rules or damaged: made here by editing the stored snapshot before release.
    let v2 = draft(
        &central,
        &json!({ "content": {
            "sr_limits": [
                { "product": "soc-a", "layer": "M1", "min": 30.0, "max": 39.5 },
                { "product": "soc-b", "layer": "M1", "min": 30.0, "max": 50.0 }
            ],
            "fdc_limits": []
        }}),
    )
    .await;
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        central.dir().join("fab.db").display()
    ))
    .await
    .unwrap();
    let (state,): (String,) = sqlx::query_as("SELECT state FROM spec_registry WHERE id = 1")
        .fetch_one(&db)
        .await
        .unwrap();
    let mut registry: Value = serde_json::from_str(&state).unwrap();
    let sets = registry["sets"].as_object_mut().unwrap();
    let item = &mut sets[&v2.to_string()]["content"]["sr_limits"][1];
    item["min"] = json!(60.0); // min above max
    sqlx::query("UPDATE spec_registry SET state = $1 WHERE id = 1")
        .bind(registry.to_string())
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    approve_and_release(&central, v2).await;

    let message = eventually("spec-sync to refuse v2", || async {
        match sync_health(&apc) {
            Health::Degraded(m) if m.contains("spec v2 refused") => Some(m),
            _ => None,
        }
    })
    .await;
    assert!(message.contains("sr_limits[1]"), "{message}");
    assert!(message.contains("running on spec v1"), "{message}");
    // Nothing of v2 applied: soc-a/M1 still has v1's [39, 41] (v2's good item would refuse 40).
    let now = preview(&apc).await;
    assert_eq!(now["spec_version"], 1, "{now}");
    assert_eq!(now["limits_from"], "spec", "{now}");
    assert_eq!(acknowledged(&central).await, Some(1));

    // A good v3 is applied, acknowledged, and the sync is healthy again.
    let v3 = draft(&central, &sr_content(38.0, 42.0)).await;
    approve_and_release(&central, v3).await;
    eventually("fab-7 to acknowledge v3", || async {
        (acknowledged(&central).await == Some(3)).then_some(())
    })
    .await;
    let now = preview(&apc).await;
    assert_eq!(now["spec_version"], 3, "{now}");
    eventually("spec-sync to be healthy", || async {
        (sync_health(&apc) == Health::Healthy).then_some(())
    })
    .await;
    apc.stop().await;
    central.stop().await;
}

/// `fab fdc` evaluates samples against the FDC limits of the release it synced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_reaches_a_running_fdc_which_evaluates_with_its_limits() {
    let central = Fab::start(Backend::Sqlite).await;
    let fdc = start(
        ProcessKind::Fdc,
        &format!("http://{}", central.addr),
        tempfile::tempdir().unwrap(),
        None,
    )
    .await;
    let batch = |at: u64, value: f64| {
        json!({ "tool": "scanner-07", "parameter": "chuck-temp",
                "samples": [{ "at": at, "value": value }] })
    };
    // No spec in force: FDC has no limits for the parameter and says so.
    let (status, error, _) = fdc
        .post("/v1/fdc/samples", TOOL, &key(), &batch(0, 23.0))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["field"], "parameter", "{error}");

    let v1 = draft(&central, &sr_content(30.0, 50.0)).await;
    act(&central, v1, "retire", ENGINEER).await;
    let v2 = draft(
        &central,
        &json!({ "content": {
            "sr_limits": [],
            "fdc_limits": [{
                "parameter": "chuck-temp",
                "spec": { "lo": 22.5, "hi": 23.5 },
                "mean": 23.0,
                "sigma": 0.1,
                "deadband": 0.05,
                "physical": { "lo": 0.0, "hi": 100.0 },
                "rules": ["beyond3_sigma"],
                "max_gap": 5000,
                "stuck_samples": 10
            }]
        }}),
    )
    .await;
    approve_and_release(&central, v2).await;
    eventually("fab-7 (fdc) to acknowledge v2", || async {
        (acknowledged(&central).await == Some(2)).then_some(())
    })
    .await;
    let (status, evaluated, _) = fdc
        .post("/v1/fdc/samples", TOOL, &key(), &batch(1000, 25.0))
        .await;
    assert_eq!(status, StatusCode::OK, "{evaluated}");
    assert_eq!(evaluated["limits_version"], 2, "{evaluated}");
    let alarms = evaluated["alarms"].as_array().unwrap();
    assert!(
        !alarms.is_empty(),
        "25 °C is beyond the spec limit: {evaluated}"
    );
    assert_eq!(alarms[0]["detection"]["limits_version"], 2, "{evaluated}");
    fdc.stop().await;
    central.stop().await;
}

/// In `fab all` (its own spec service) a release is in force the moment it commits, and a
/// newer release replaces it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_fab_all_a_release_is_in_force_at_once() {
    let fab = Fab::start(Backend::Sqlite).await;
    fab.configure().await;
    let v1 = draft(&fab, &sr_content(30.0, 50.0)).await;
    act(&fab, v1, "retire", ENGINEER).await; // the registry exists, nothing released
    assert_eq!(preview(&fab).await["limits_from"], "config");
    for (min, max) in [(39.0, 41.0), (38.0, 42.0)] {
        let version = draft(&fab, &sr_content(min, max)).await;
        approve_and_release(&fab, version).await;
        let now = preview(&fab).await;
        assert_eq!(now["limits_from"], "spec", "{now}");
        assert_eq!(now["spec_version"], version, "{now}");
    }
    // Withdrawn without a successor: the configuration's limits again.
    act(&fab, 3, "retire", ENGINEER).await;
    assert_eq!(preview(&fab).await["limits_from"], "config");
    let (status, run) = subrecipe(&fab, "LOT-A").await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["record"]["spec_version"], 1, "config version: {run}");
    fab.stop().await;
}
