//! The tool job queue API: order, hot lots, reticle dependencies, FDC inhibit, bad input,
//! idempotent retries and concurrent writers, on SQLite and on PostgreSQL.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fdc::{batch, release_limits};
use crate::support::{Backend, ENGINEER, Fab, TOOL, key};

on_both!(
    jobs_run_in_order_and_a_hot_lot_jumps_the_waiting_ones,
    concurrent_submits_to_one_tool_all_commit_in_turn,
);

const JOBS: &str = "/v1/tools/scanner-07/jobs";

fn check_in(reticle: &str) -> Value {
    json!({ "job": "check_in", "reticle": reticle })
}

fn expose(lot: &str, reticle: &str, urgent: bool) -> Value {
    json!({ "job": "expose", "run": format!("R-{lot}"), "lot": lot, "reticle": reticle, "sr": 40.0, "urgent": urgent })
}

/// Submits `body` as the tool; returns the new job's id.
async fn submit(fab: &Fab, body: &Value) -> u64 {
    let (status, answer, _) = fab.post(JOBS, TOOL, &key(), body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["job"]["id"].as_u64().unwrap()
}

/// The tool asks for its next job; returns the started job's id.
async fn next(fab: &Fab) -> Option<u64> {
    let (status, answer, _) = fab
        .post(&format!("{JOBS}/next"), TOOL, &key(), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["job"]["id"].as_u64()
}

async fn complete(fab: &Fab, id: u64) {
    let (status, answer, _) = fab
        .post(&format!("{JOBS}/{id}/complete"), TOOL, &key(), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["job"]["id"], id);
}

async fn delete(fab: &Fab, token: &str, path: &str) -> (StatusCode, Value) {
    let auth = format!("Bearer {token}");
    let k = key();
    let (status, body, _) = fab
        .send(
            Method::DELETE,
            path,
            &[("authorization", &auth), ("idempotency-key", &k)],
            None,
        )
        .await;
    (status, body)
}

async fn jobs_run_in_order_and_a_hot_lot_jumps_the_waiting_ones(backend: Backend) {
    let fab = Fab::start(backend).await;
    // A tool that never had a job has an empty queue.
    let (status, queue) = fab.get(JOBS).await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    assert_eq!(queue["version"], 0);
    assert_eq!(queue["waiting"], json!([]));

    let a = submit(&fab, &check_in("RT-A")).await;
    // A retried submit gets the first answer and queues nothing twice.
    let k = key();
    let (status, first, _) = fab.post(JOBS, TOOL, &k, &expose("L1", "RT-A", false)).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again, headers) = fab.post(JOBS, TOOL, &k, &expose("L1", "RT-A", false)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, first);
    assert_eq!(headers["idempotent-replayed"], "true");
    let b = first["job"]["id"].as_u64().unwrap();
    let c = submit(&fab, &expose("L2", "RT-A", false)).await;
    assert_eq!(
        fab.get(JOBS).await.1["waiting"].as_array().unwrap().len(),
        3
    );

    // The tool starts the check-in; then a hot lot arrives and is planned before L1 and L2,
    // after the running job.
    let k = key();
    let (status, started, _) = fab
        .post(&format!("{JOBS}/next"), TOOL, &k, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(started["job"]["id"], a);
    // A retried "next" does not start a second job.
    let (_, again, _) = fab
        .post(&format!("{JOBS}/next"), TOOL, &k, &json!({}))
        .await;
    assert_eq!(again, started);
    let hot = submit(&fab, &expose("HOT", "RT-A", true)).await;
    let (_, queue) = fab.get(JOBS).await;
    assert_eq!(queue["running"]["id"], a);
    assert_eq!(queue["planned_order"], json!([a, hot, b, c]), "{queue}");
    // Nothing pre-empts the running job.
    assert_eq!(next(&fab).await, None);

    complete(&fab, a).await;
    assert_eq!(fab.get(JOBS).await.1["reticles_in"], json!(["RT-A"]));
    for id in [hot, b, c] {
        assert_eq!(next(&fab).await, Some(id));
        complete(&fab, id).await;
    }
    assert_eq!(next(&fab).await, None, "nothing waits");
    let (_, queue) = fab.get(JOBS).await;
    assert!(queue["running"].is_null(), "{queue}");
    // Each tool has its own queue.
    let (_, other) = fab.get("/v1/tools/scanner-08/jobs").await;
    assert_eq!(other["version"], 0, "{other}");
    fab.stop().await;
}

async fn concurrent_submits_to_one_tool_all_commit_in_turn(backend: Backend) {
    let fab = std::sync::Arc::new(Fab::start(backend).await);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let fab = fab.clone();
        tasks.push(tokio::spawn(async move {
            let (status, answer, _) = fab
                .post(JOBS, TOOL, &key(), &check_in(&format!("RT-{i}")))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{answer}");
            answer["job"]["id"].as_u64().unwrap()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..12).collect::<Vec<_>>(), "every id once");
    let (_, queue) = fab.get(JOBS).await;
    assert_eq!(queue["version"], 12, "{queue}");
    assert_eq!(queue["waiting"].as_array().unwrap().len(), 12);
    let Ok(fab) = std::sync::Arc::try_unwrap(fab) else {
        panic!("a task still holds the fab");
    };
    fab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_job_requests_are_4xx_naming_the_field() {
    let fab = Fab::start(Backend::Sqlite).await;
    let cases = [
        (
            json!({ "job": "expose", "lot": "L1", "reticle": "RT-A", "sr": 40.0 }),
            "run",
        ),
        (
            json!({ "job": "expose", "run": "R-1", "lot": "L1", "reticle": "RT-A" }),
            "sr",
        ),
        (
            json!({ "job": "expose", "run": "R-1", "lot": "L1", "reticle": "RT-A", "sr": -3.0 }),
            "sr",
        ),
        (
            json!({ "job": "check_in", "reticle": "RT-A", "sr": 40.0 }),
            "sr",
        ),
        (json!({ "job": "polish", "reticle": "RT-A" }), "job"),
        (json!({ "job": "check_in" }), "reticle"),
        (json!({ "job": "check_in", "reticle": "RT A<" }), "reticle"),
        (
            json!({ "job": "check_in", "reticle": "RT-A", "color": "red" }),
            "color",
        ),
    ];
    for (body, field) in cases {
        let (status, error, _) = fab.post(JOBS, TOOL, &key(), &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {error}");
        assert!(
            error["field"].as_str().unwrap_or_default().contains(field),
            "{body}: {error}"
        );
    }
    // A bad tool name or job id in the path; no idempotency key; no token; wrong role.
    let (status, error, _) = fab
        .post("/v1/tools/scan%20ner/jobs", TOOL, &key(), &check_in("RT-A"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["field"], "tool");
    let (status, error, _) = fab
        .post(&format!("{JOBS}/first/complete"), TOOL, &key(), &json!({}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["field"], "id");
    let (status, error, _) = fab
        .send(
            Method::POST,
            JOBS,
            &[("authorization", &format!("Bearer {TOOL}"))],
            Some(check_in("RT-A").to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["field"], "Idempotency-Key");
    let (status, _, _) = fab
        .send(Method::POST, JOBS, &[], Some(check_in("RT-A").to_string()))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // What the plan cannot satisfy: an exposure or check-out of a reticle that will not be
    // in, a second check-in; completing a job that is not running.
    for body in [
        expose("L1", "RT-Z", false),
        expose("HOT", "RT-Z", true),
        json!({ "job": "check_out", "reticle": "RT-Z" }),
    ] {
        let (status, error, _) = fab.post(JOBS, TOOL, &key(), &body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}: {error}");
        assert_eq!(error["field"], "reticle");
    }
    let a = submit(&fab, &check_in("RT-A")).await;
    let (status, error, _) = fab.post(JOBS, TOOL, &key(), &check_in("RT-A")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["field"], "reticle");
    let l1 = submit(&fab, &expose("L1", "RT-A", false)).await;
    let (status, error, _) = fab
        .post(&format!("{JOBS}/{l1}/complete"), TOOL, &key(), &json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["field"], "id");

    // Cancelling needs an engineer, and a check-in a waiting exposure needs stays.
    let (status, _) = delete(&fab, TOOL, &format!("{JOBS}/{l1}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, error) = delete(&fab, ENGINEER, &format!("{JOBS}/{a}")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["field"], "reticle");
    let (status, cancelled) = delete(&fab, ENGINEER, &format!("{JOBS}/{l1}")).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["job"]["id"], l1);
    assert_eq!(cancelled["queue"]["planned_order"], json!([a]));
    let (status, error) = delete(&fab, ENGINEER, &format!("{JOBS}/{l1}")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["field"], "id");
    fab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inhibited_tool_starts_no_exposure_until_the_alarm_is_acknowledged() {
    let fab = Fab::start(Backend::Sqlite).await;
    release_limits(&fab).await;
    let a = submit(&fab, &check_in("RT-A")).await;
    let l1 = submit(&fab, &expose("L1", "RT-A", false)).await;

    // 25 °C on the chuck: a critical alarm holds scanner-07 inhibited.
    let (status, evaluated, _) = fab
        .post("/v1/fdc/samples", TOOL, &key(), &batch(0, &[23.0, 25.0]))
        .await;
    assert_eq!(status, StatusCode::OK, "{evaluated}");
    let (_, inhibit) = fab.get("/v1/fdc/tools/scanner-07/inhibit").await;
    assert_eq!(inhibit["inhibited"], true, "{inhibit}");
    let alarm = inhibit["holding"][0].as_u64().unwrap();

    // A reticle move still runs; the exposure does not start, and the answer names the alarm.
    assert_eq!(next(&fab).await, Some(a));
    complete(&fab, a).await;
    let (status, error, _) = fab
        .post(&format!("{JOBS}/next"), TOOL, &key(), &json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["field"], "tool");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains(&alarm.to_string()),
        "{error}"
    );
    assert!(fab.get(JOBS).await.1["running"].is_null());

    for alarm in inhibit["holding"].as_array().unwrap() {
        let (status, acked, _) = fab
            .post(
                &format!("/v1/fdc/alarms/{alarm}/ack"),
                ENGINEER,
                &key(),
                &json!({ "note": "chiller reset" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{acked}");
    }
    assert_eq!(next(&fab).await, Some(l1));
    fab.stop().await;
}
