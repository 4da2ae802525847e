//! APC history: invalidating a measurement replays the thread without it; a new thread may be
//! seeded from a parent thread's state instead of a pilot run.

use axum::http::StatusCode;
use fab::{Disposition, Name, Technology, Thread, ThreadEvent, ThreadKey};
use serde_json::{Value, json};

use crate::support::{Backend, ENGINEER, Fab, THREAD_PATH, TOOL, formula, key, lot};

on_both!(
    invalidating_a_measurement_replays_the_thread_without_it,
    a_new_thread_is_seeded_from_a_settled_parent,
);

fn thread_key(reticle: &str) -> ThreadKey {
    let name = |v: &str| Name::parse("test", v).unwrap();
    ThreadKey {
        fab: name("fab-1"),
        tool: name("scanner-07"),
        product: name("soc-a"),
        technology: Technology::N5,
        layer: name("M1"),
        reticle: name(reticle),
    }
}

fn thread_json(reticle: &str) -> Value {
    json!({
        "fab": "fab-1", "tool": "scanner-07", "product": "soc-a",
        "technology": "N5", "layer": "M1", "reticle": reticle
    })
}

/// A sub recipe for `lot` on the thread of `reticle`, optionally seeded from `parent`.
fn lot_on(lot_id: &str, reticle: &str, parent: Option<&str>) -> Value {
    let mut body = lot(lot_id, formula());
    body["lot"]["thread"] = thread_json(reticle);
    if let Some(parent) = parent {
        body["seed_from"] = thread_json(parent);
    }
    body
}

async fn run(fab: &Fab, body: &Value) -> Value {
    let (status, answer, _) = fab.post("/v1/apc/subrecipe", TOOL, &key(), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

async fn measure(fab: &Fab, id: &str, run: &Value, value: f64) -> Value {
    let m = json!({ "id": id, "run": run["run"], "value": value, "at": 1_000 });
    let (status, answer, _) = fab.post("/v1/apc/metrology", TOOL, &key(), &m).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

async fn offset(fab: &Fab, path: &str) -> f64 {
    let (status, thread) = fab.get(path).await;
    assert_eq!(status, StatusCode::OK, "{thread}");
    thread["controller"]["offset"].as_f64().unwrap()
}

/// The stored thread equals the fold of its stored transitions.
async fn assert_fold(fab: &Fab, key: &ThreadKey) -> Vec<ThreadEvent> {
    let transitions = fab.store.transitions(key, 0).await.unwrap();
    let events: Vec<ThreadEvent> = transitions.into_iter().map(|t| t.event).collect();
    let folded = Thread::from_events(&events).unwrap();
    assert_eq!(Some(folded), fab.store.thread(key).await.unwrap());
    events
}

async fn invalidating_a_measurement_replays_the_thread_without_it(backend: Backend) {
    let fab = Fab::start(backend).await;
    fab.configure().await;
    let pilot = run(&fab, &lot("LOT-1", formula())).await;
    measure(&fab, "M-1", &pilot, 47.0).await;
    let after_pilot = offset(&fab, THREAD_PATH).await;
    let second = run(&fab, &lot("LOT-2", formula())).await;
    let measured = measure(&fab, "M-2", &second, 46.0).await;
    assert_eq!(measured["disposition"], "accepted", "{measured}");
    let after_m2 = offset(&fab, THREAD_PATH).await;
    assert!(
        (after_m2 - after_pilot).abs() > 1e-6,
        "M-2 moved the offset"
    );

    let path = "/v1/apc/metrology/M-2/invalidate";
    let because = json!({ "reason": "metrology tool out of calibration" });
    // Engineers only, with a reason.
    assert_eq!(
        fab.post(path, TOOL, &key(), &because).await.0,
        StatusCode::FORBIDDEN
    );
    for bad in [
        json!({}),
        json!({ "reason": "  " }),
        json!({ "reason": "x", "why": 1 }),
    ] {
        let (status, error, _) = fab.post(path, ENGINEER, &key(), &bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {error}");
        assert!(error["field"].is_string(), "{error}");
    }
    let (status, error, _) = fab
        .post(
            "/v1/apc/metrology/M-404/invalidate",
            ENGINEER,
            &key(),
            &because,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    assert_eq!(error["field"], "measurement");
    let (status, error, _) = fab
        .post(
            "/v1/apc/metrology/M%202/invalidate",
            ENGINEER,
            &key(),
            &because,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["field"], "measurement");

    let k = key();
    let (status, invalidated, _) = fab.post(path, ENGINEER, &k, &because).await;
    assert_eq!(status, StatusCode::OK, "{invalidated}");
    assert_eq!(invalidated["changed"], true);
    assert_eq!(invalidated["before"]["offset"].as_f64().unwrap(), after_m2);
    // The replay without M-2 is the state after the pilot alone.
    assert!(
        (invalidated["after"]["offset"].as_f64().unwrap() - after_pilot).abs() < 1e-9,
        "{invalidated}"
    );
    assert!((offset(&fab, THREAD_PATH).await - after_pilot).abs() < 1e-9);
    let version = invalidated["thread_version"].clone();

    // A retry gets the same answer; invalidating again (another key) changes nothing.
    let (_, again, headers) = fab.post(path, ENGINEER, &k, &because).await;
    assert_eq!(again, invalidated);
    assert_eq!(headers["idempotent-replayed"], "true");
    let (status, repeat, _) = fab.post(path, ENGINEER, &key(), &because).await;
    assert_eq!(status, StatusCode::OK, "{repeat}");
    assert_eq!(repeat["changed"], false);
    assert_eq!(repeat["thread_version"], version);
    // A redelivery of the invalidated measurement does not bring it back.
    let redelivered = measure(&fab, "M-2", &second, 46.0).await;
    assert_eq!(redelivered["changed"], false);
    assert!((offset(&fab, THREAD_PATH).await - after_pilot).abs() < 1e-9);

    // The invalidation is a stored transition, who and why included, and the state is the
    // fold of the history.
    let m2 = Name::parse("measurement", "M-2").unwrap();
    assert_eq!(
        fab.store.measurement_disposition(&m2).await.unwrap(),
        Some(Disposition::Invalidated)
    );
    let events = assert_fold(&fab, &thread_key("RT-42")).await;
    assert!(
        matches!(events.last(), Some(ThreadEvent::Invalidated { measurement, reason, .. })
            if measurement.as_str() == "M-2" && reason == "metrology tool out of calibration"),
        "{events:?}"
    );
    fab.stop().await;
}

async fn a_new_thread_is_seeded_from_a_settled_parent(backend: Backend) {
    let fab = Fab::start(backend).await;
    fab.configure().await;
    let parent = run(&fab, &lot_on("LOT-1", "RT-42", None)).await;
    assert!(parent["pilot"].is_string(), "{parent}");

    // A parent still waiting for its pilot measurement has nothing to give.
    let (status, error, _) = fab
        .post(
            "/v1/apc/subrecipe",
            TOOL,
            &key(),
            &lot_on("LOT-2", "RT-43", Some("RT-42")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["field"], "seed_from");
    measure(&fab, "M-1", &parent, 47.0).await;
    let parent_offset = offset(&fab, THREAD_PATH).await;

    // An unknown parent, or the thread itself, is refused naming seed_from; nothing is created.
    for bad in ["RT-99", "RT-43"] {
        let (status, error, _) = fab
            .post(
                "/v1/apc/subrecipe",
                TOOL,
                &key(),
                &lot_on("LOT-2", "RT-43", Some(bad)),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert_eq!(error["field"], "seed_from");
    }
    let child_path = "/v1/apc/threads/fab-1/scanner-07/soc-a/N5/M1/RT-43";
    assert_eq!(fab.get(child_path).await.0, StatusCode::NOT_FOUND);

    // The preview says what the run will get: no pilot.
    let seeded = lot_on("LOT-2", "RT-43", Some("RT-42"));
    let (status, preview, _) = fab
        .post("/v1/apc/subrecipe/preview", TOOL, &key(), &seeded)
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert!(preview["pilot"].is_null(), "{preview}");
    let child = run(&fab, &seeded).await;
    assert!(
        child["pilot"].is_null(),
        "a seeded thread needs no pilot: {child}"
    );
    assert_eq!(child["sr"], preview["sr"]);
    assert_eq!(offset(&fab, child_path).await, parent_offset);
    let events = assert_fold(&fab, &thread_key("RT-43")).await;
    assert!(
        matches!(&events[1], ThreadEvent::Seeded { parent, .. } if *parent == thread_key("RT-42")),
        "{events:?}"
    );
    // Once the thread exists, seed_from is ignored; without it a new thread still pilots.
    let later = run(&fab, &lot_on("LOT-3", "RT-43", Some("RT-42"))).await;
    assert!(later["pilot"].is_null(), "{later}");
    let fresh = run(&fab, &lot_on("LOT-4", "RT-44", None)).await;
    assert_eq!(fresh["pilot"], "new", "{fresh}");
    fab.stop().await;
}
