//! Idempotency completeness: which refusals are stored under the key, a reused key, pruning.
//! Each scenario on SQLite and on PostgreSQL (its own database).

use std::time::Duration;

use axum::http::{Method, StatusCode};
use fab::api::idempotency::prune;
use fab::api::now;

use crate::support::{Backend, ENGINEER, Fab, TOOL, config_body, formula, key, lot};

on_both!(
    a_refusal_by_the_write_is_replayed_not_recomputed,
    a_refusal_of_the_prologue_does_not_take_the_key,
    stored_replies_past_the_retention_are_pruned,
);

fn replayed(headers: &axum::http::HeaderMap) -> bool {
    headers.get("idempotent-replayed").is_some()
}

async fn a_refusal_by_the_write_is_replayed_not_recomputed(backend: Backend) {
    let fab = Fab::start(backend).await;
    let k = key();
    let request = lot("LOT-1", formula());

    // No configuration yet: the write itself refuses (409), and that answer is kept.
    let (status, first, headers) = fab.post("/v1/apc/subrecipe", TOOL, &k, &request).await;
    assert_eq!(status, StatusCode::CONFLICT, "{first}");
    assert!(!replayed(&headers));
    fab.configure().await;

    // The state moved on, but a retry under the same key gets the same outcome.
    let (status, retry, headers) = fab.post("/v1/apc/subrecipe", TOOL, &k, &request).await;
    assert_eq!(status, StatusCode::CONFLICT, "{retry}");
    assert_eq!(retry, first);
    assert!(replayed(&headers));
    assert_eq!(fab.store.run_count().await.unwrap(), 0);

    // Another request under that key is refused, naming the key.
    let (status, other, _) = fab
        .post("/v1/apc/subrecipe", TOOL, &k, &lot("LOT-2", formula()))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{other}");
    assert_eq!(other["field"], "Idempotency-Key");
    assert!(other["error"].as_str().unwrap().contains(&k), "{other}");

    // A new key is a new attempt.
    let (status, run, _) = fab.post("/v1/apc/subrecipe", TOOL, &key(), &request).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(fab.store.run_count().await.unwrap(), 1);
    fab.stop().await;
}

async fn a_refusal_of_the_prologue_does_not_take_the_key(backend: Backend) {
    let fab = Fab::start(backend).await;
    fab.configure().await;
    let k = key();
    let auth = format!("Bearer {TOOL}");
    let headers = [
        ("authorization", auth.as_str()),
        ("idempotency-key", k.as_str()),
    ];

    // Malformed JSON, then a field out of range: refused before anything ran, nothing stored.
    let (status, error, _) = fab
        .send(
            Method::POST,
            "/v1/apc/subrecipe",
            &headers,
            Some("{\"lot\": ".into()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, error, _) = fab
        .post("/v1/apc/subrecipe", TOOL, &k, &lot("LOT 1", formula()))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["field"], "lot.lot");

    // The corrected request under the same key is answered, not refused as another request.
    let (status, run, headers) = fab
        .post("/v1/apc/subrecipe", TOOL, &k, &lot("LOT-1", formula()))
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert!(!replayed(&headers));
    assert_eq!(fab.store.run_count().await.unwrap(), 1);
    fab.stop().await;
}

async fn stored_replies_past_the_retention_are_pruned(backend: Backend) {
    let fab = Fab::start(backend).await;
    let retention = Duration::from_secs(24 * 3600);
    let k = key();
    let (status, first, _) = fab
        .post("/v1/apc/configs", ENGINEER, &k, &config_body(0.3))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["version"], 1);

    // Within the retention: kept, a retry is replayed.
    let at = now().as_millis();
    assert_eq!(prune(&fab.store, at, retention).await.unwrap(), 0);
    let (_, retry, headers) = fab
        .post("/v1/apc/configs", ENGINEER, &k, &config_body(0.3))
        .await;
    assert!(replayed(&headers));
    assert_eq!(retry, first);

    // A day and a minute later: pruned, and the same key is a new request (a new version).
    let later = at + 24 * 3600 * 1000 + 60_000;
    assert_eq!(prune(&fab.store, later, retention).await.unwrap(), 1);
    let (status, again, headers) = fab
        .post("/v1/apc/configs", ENGINEER, &k, &config_body(0.3))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert!(!replayed(&headers));
    assert_eq!(again["version"], 2);
    fab.stop().await;
}
