//! The central spec API, on SQLite and on PostgreSQL.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Backend, ENGINEER, ENGINEER_2, Fab, TOOL, key};

on_both!(
    a_set_goes_draft_approved_released_retired_with_delta_sync_and_acks,
    invalid_content_and_bad_transitions_are_refused,
    a_delta_sync_cursor_beyond_a_revision_is_refused_and_head_is_the_servers
);

fn content(max: f64) -> Value {
    json!({ "content": {
        "sr_limits": [{ "product": "soc-a", "layer": "M1", "min": 30.0, "max": max }],
        "fdc_limits": []
    }})
}

async fn act(fab: &Fab, version: u64, action: &str, token: &str) -> (StatusCode, Value) {
    let (status, body, _) = fab
        .post(
            &format!("/v1/spec/sets/{version}/{action}"),
            token,
            &key(),
            &json!({}),
        )
        .await;
    (status, body)
}

async fn a_set_goes_draft_approved_released_retired_with_delta_sync_and_acks(backend: Backend) {
    let fab = Fab::start(backend).await;
    let (status, v1, _) = fab
        .post("/v1/spec/sets", ENGINEER, &key(), &content(50.0))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["state"], "draft");

    // Four eyes: the author cannot approve.
    let (status, error) = act(&fab, 1, "approve", ENGINEER).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    // Released only once approved.
    assert_eq!(
        act(&fab, 1, "release", ENGINEER).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(act(&fab, 1, "approve", ENGINEER_2).await.0, StatusCode::OK);
    let (status, released) = act(&fab, 1, "release", ENGINEER).await;
    assert_eq!(status, StatusCode::OK, "{released}");
    assert_eq!(released["state"], "released");

    // A fab syncing from scratch gets every change and the released set.
    let (status, delta) = fab.get("/v1/spec/changes?since=0").await;
    assert_eq!(status, StatusCode::OK, "{delta}");
    assert_eq!(delta["changes"].as_array().unwrap().len(), 3);
    assert_eq!(delta["released"]["version"], 1);
    let head = delta["head"].as_u64().unwrap();
    let (status, ack, _) = fab
        .post(
            "/v1/spec/acks",
            TOOL,
            &key(),
            &json!({ "fab": "fab-1", "version": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ack}");

    // Version 2 supersedes 1 in one change; the delta since the fab's head says so.
    let (_, v2, _) = fab
        .post("/v1/spec/sets", ENGINEER_2, &key(), &content(48.0))
        .await;
    assert_eq!(v2["version"], 2);
    assert_eq!(act(&fab, 2, "approve", ENGINEER).await.0, StatusCode::OK);
    assert_eq!(act(&fab, 2, "release", ENGINEER).await.0, StatusCode::OK);
    let (_, delta) = fab.get(&format!("/v1/spec/changes?since={head}")).await;
    let changes = delta["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 3, "{delta}");
    assert_eq!(
        changes[2][1],
        json!({ "change": "released", "version": 2, "superseded": 1 })
    );
    assert_eq!(delta["released"]["content"]["sr_limits"][0]["max"], 48.0);
    let (_, old) = fab.get("/v1/spec/sets/1").await;
    assert_eq!(old["state"], "retired");

    fab.post(
        "/v1/spec/acks",
        TOOL,
        &key(),
        &json!({ "fab": "fab-1", "version": 2 }),
    )
    .await;
    // A fab never goes back to an older release.
    let (status, _, _) = fab
        .post(
            "/v1/spec/acks",
            TOOL,
            &key(),
            &json!({ "fab": "fab-1", "version": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, acks) = fab.get("/v1/spec/acks").await;
    assert_eq!(acks.as_array().unwrap().len(), 1);
    assert_eq!(acks[0]["version"], 2);
    fab.stop().await;
}

async fn invalid_content_and_bad_transitions_are_refused(backend: Backend) {
    let fab = Fab::start(backend).await;
    let (status, error, _) = fab
        .post("/v1/spec/sets", ENGINEER, &key(), &content(20.0))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["field"], "content");
    // A refused draft takes no number.
    let (_, v1, _) = fab
        .post("/v1/spec/sets", ENGINEER, &key(), &content(50.0))
        .await;
    assert_eq!(v1["version"], 1);
    assert_eq!(
        fab.post("/v1/spec/sets", TOOL, &key(), &content(50.0))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        act(&fab, 9, "approve", ENGINEER_2).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, error) = act(&fab, 0, "explode", ENGINEER_2).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    let (status, error) = fab.get("/v1/spec/sets/x").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["field"], "version");
    let (status, error) = fab.get("/v1/spec/changes?since=-1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["field"], "since");
    fab.stop().await;
}

async fn a_delta_sync_cursor_beyond_a_revision_is_refused_and_head_is_the_servers(
    backend: Backend,
) {
    let fab = Fab::start(backend).await;
    // Nothing happened yet: a cursor ahead of the head gets nothing and the real head, 0.
    let (status, delta) = fab.get("/v1/spec/changes?since=42").await;
    assert_eq!(status, StatusCode::OK, "{delta}");
    assert_eq!(delta["head"], 0, "{delta}");
    assert_eq!(delta["changes"], json!([]));

    // i64::MAX is still a revision; one more (and anything above u64) is not.
    let (status, delta) = fab.get("/v1/spec/changes?since=9223372036854775807").await;
    assert_eq!(status, StatusCode::OK, "{delta}");
    assert_eq!(delta["head"], 0, "{delta}");
    for since in ["9223372036854775808", "18446744073709551616", "abc"] {
        let (status, error) = fab.get(&format!("/v1/spec/changes?since={since}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{since}: {error}");
        assert_eq!(error["field"], "since", "{since}: {error}");
    }

    // With history, a cursor ahead answers nothing new and the server's head, not the cursor.
    let (status, v1, _) = fab
        .post("/v1/spec/sets", ENGINEER, &key(), &content(50.0))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    let real_head = v1["revision"].as_u64().unwrap();
    let (status, delta) = fab.get("/v1/spec/changes?since=1000").await;
    assert_eq!(status, StatusCode::OK, "{delta}");
    assert_eq!(delta["head"], real_head, "{delta}");
    assert_eq!(delta["changes"], json!([]));
    assert_eq!(delta["released"], Value::Null);
    fab.stop().await;
}
