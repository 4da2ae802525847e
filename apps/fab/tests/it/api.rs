//! The APC API, each scenario on SQLite and on PostgreSQL.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{Backend, ENGINEER, Fab, THREAD_PATH, TOOL, config_body, formula, key, lot};

on_both!(
    sub_recipe_then_metrology_moves_the_next_sub_recipe,
    preview_changes_nothing,
    a_retried_write_gets_the_original_response_and_has_one_effect,
    writes_need_a_valid_token_and_the_right_role,
    bad_input_is_a_4xx_naming_the_field,
    metrology_is_idempotent_by_measurement_id,
    reset_and_freeze_are_recorded_on_the_thread,
    concurrent_writers_on_one_thread_all_commit_in_turn,
);

async fn sub_recipe_then_metrology_moves_the_next_sub_recipe(backend: Backend) {
    let fab = Fab::start(backend).await;
    fab.configure().await;

    let (status, first, _) = fab
        .post("/v1/apc/subrecipe", TOOL, &key(), &lot("LOT-1", formula()))
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(
        first["pilot"].is_string(),
        "a new thread's first run is a pilot run: {first}"
    );
    let sr1 = first["sr"].as_f64().unwrap();
    let run = first["run"].as_str().unwrap();

    // The process prints 2 nm high: the pilot's measurement sets the offset, so the next dose
    // goes up (CD falls with dose: gain −5 nm per mJ/cm²), by at most the 2 % step clamp.
    let measurement = json!({ "id": "M-1", "run": run, "value": 47.0, "at": 1_000 });
    let (status, measured, _) = fab
        .post("/v1/apc/metrology", TOOL, &key(), &measurement)
        .await;
    assert_eq!(status, StatusCode::OK, "{measured}");
    assert_eq!(measured["changed"], true);

    let (status, second, _) = fab
        .post("/v1/apc/subrecipe", TOOL, &key(), &lot("LOT-2", formula()))
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let sr2 = second["sr"].as_f64().unwrap();
    assert!(sr2 > sr1, "the SR must rise after a high CD: {sr1} → {sr2}");
    assert!(
        sr2 <= sr1 * 1.02 + 1e-9,
        "the step clamp holds: {sr1} → {sr2}"
    );
    assert!(second["pilot"].is_null(), "{second}");

    // The durable state is the fold of the stored transitions.
    let (status, thread) = fab.get(THREAD_PATH).await;
    assert_eq!(status, StatusCode::OK, "{thread}");
    assert_eq!(thread["measurements"], 1);
    assert_eq!(thread["last_run"]["run"], second["run"]);
    assert_eq!(fab.store.run_count().await.unwrap(), 2);
    fab.stop().await;
}

async fn preview_changes_nothing(backend: Backend) {
    let fab = Fab::start(backend).await;
    fab.configure().await;

    let (status, preview, _) = fab
        .post(
            "/v1/apc/subrecipe/preview",
            TOOL,
            &key(),
            &lot("LOT-1", formula()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    // A preview of a thread that does not exist yet does not create it.
    assert_eq!(fab.get(THREAD_PATH).await.0, StatusCode::NOT_FOUND);

    let (_, first, _) = fab
        .post("/v1/apc/subrecipe", TOOL, &key(), &lot("LOT-1", formula()))
        .await;
    assert_eq!(
        preview["sr"], first["sr"],
        "the preview said what the run got"
    );
    let (_, before) = fab.get(THREAD_PATH).await;
    for _ in 0..3 {
        let (status, again, _) = fab
            .post(
                "/v1/apc/subrecipe/preview",
                TOOL,
                &key(),
                &lot("LOT-2", formula()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{again}");
    }
    let (_, after) = fab.get(THREAD_PATH).await;
    assert_eq!(before, after);
    assert_eq!(fab.store.run_count().await.unwrap(), 1);
    fab.stop().await;
}

async fn a_retried_write_gets_the_original_response_and_has_one_effect(backend: Backend) {
    let fab = Fab::start(backend).await;
    fab.configure().await;
    let k = key();
    let request = lot("LOT-1", formula());
    let (status, first, headers) = fab.post("/v1/apc/subrecipe", TOOL, &k, &request).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(headers.get("idempotent-replayed").is_none());
    let (status, retry, headers) = fab.post("/v1/apc/subrecipe", TOOL, &k, &request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retry, first, "the same run, the same SR");
    assert_eq!(
        headers
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(fab.store.run_count().await.unwrap(), 1);

    // The same key for another request is refused, not answered with the first response.
    let (status, other, _) = fab
        .post("/v1/apc/subrecipe", TOOL, &k, &lot("LOT-9", formula()))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{other}");
    assert_eq!(other["field"], "Idempotency-Key");

    // A write without a key is refused.
    let auth = format!("Bearer {TOOL}");
    let (status, body, _) = fab
        .send(
            Method::POST,
            "/v1/apc/subrecipe",
            &[("authorization", &auth)],
            Some(request.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "Idempotency-Key");
    assert_eq!(fab.store.run_count().await.unwrap(), 1);
    fab.stop().await;
}

async fn writes_need_a_valid_token_and_the_right_role(backend: Backend) {
    let fab = Fab::start(backend).await;
    let body = lot("LOT-1", formula()).to_string();

    let (status, error, _) = fab
        .send(
            Method::POST,
            "/v1/apc/subrecipe",
            &[("idempotency-key", "k1")],
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{error}");
    assert_eq!(error["field"], "Authorization");
    let (status, _, _) = fab
        .post(
            "/v1/apc/subrecipe",
            "not-a-token-at-all",
            &key(),
            &lot("LOT-1", formula()),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A tool cannot configure the controller; an engineer can.
    let (status, error, _) = fab
        .post("/v1/apc/configs", TOOL, &key(), &config_body(0.3))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("engineer"),
        "{error}"
    );
    fab.configure().await;

    // Recommend mode (an SR by hand) needs an engineer.
    let recommend =
        json!({ "mode": "recommend", "sr": 40.2, "engineer": "e.doe", "reason": "pilot by hand" });
    let (status, _, _) = fab
        .post(
            "/v1/apc/subrecipe",
            TOOL,
            &key(),
            &lot("LOT-1", recommend.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, run, _) = fab
        .post(
            "/v1/apc/subrecipe",
            ENGINEER,
            &key(),
            &lot("LOT-1", recommend),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["sr"], 40.2);
    assert_eq!(fab.store.run_count().await.unwrap(), 1);
    fab.stop().await;
}

async fn bad_input_is_a_4xx_naming_the_field(backend: Backend) {
    let fab = Fab::start(backend).await;
    fab.configure().await;
    let auth = format!("Bearer {TOOL}");
    let headers = [
        ("authorization", auth.as_str()),
        ("idempotency-key", "bad-1"),
    ];

    let (status, error, _) = fab
        .send(
            Method::POST,
            "/v1/apc/subrecipe",
            &headers,
            Some("{\"lot\": ".into()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("malformed JSON"),
        "{error}"
    );

    let cases = [
        (json!({ "mode": { "mode": "formula" } }), "lot"),
        (lot("LOT 1", formula()), "lot.lot"),
        (lot("LOT-1", json!({ "mode": "guess" })), "mode.mode"),
        (
            {
                let mut v = lot("LOT-1", formula());
                v["lot"]["thread"]["technology"] = json!("N2");
                v
            },
            "lot.thread.technology",
        ),
        (
            {
                let mut v = lot("LOT-1", formula());
                v["lot"]["product_kind"] = json!(3);
                v
            },
            "lot.product_kind",
        ),
    ];
    for (body, field) in cases {
        let (status, error, _) = fab.post("/v1/apc/subrecipe", TOOL, &key(), &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {error}");
        assert_eq!(error["field"], field, "{body} → {error}");
    }

    // An unstable controller (λ·β/b = 2.5) is refused when created, naming the field.
    let (status, error, _) = fab
        .post("/v1/apc/configs", ENGINEER, &key(), &config_body(2.5))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert!(
        error["field"].as_str().unwrap().starts_with("params."),
        "{error}"
    );

    // An SR by hand outside the spec limits.
    let recommend =
        json!({ "mode": "recommend", "sr": 55.0, "engineer": "e.doe", "reason": "try" });
    let (status, error, _) = fab
        .post(
            "/v1/apc/subrecipe",
            ENGINEER,
            &key(),
            &lot("LOT-1", recommend),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["field"], "mode.sr");

    // Metrology of a run nobody logged.
    let (status, error, _) = fab
        .post(
            "/v1/apc/metrology",
            TOOL,
            &key(),
            &json!({ "id": "M-1", "run": "R-nope", "value": 45.0, "at": 0 }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["field"], "run");

    // Unknown routes and path values.
    assert_eq!(fab.get("/v1/nope").await.0, StatusCode::NOT_FOUND);
    let (status, error) = fab
        .get("/v1/apc/threads/fab-1/scanner-07/soc-a/N9/M1/RT-42")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["field"], "technology");
    assert_eq!(fab.store.run_count().await.unwrap(), 0);
    fab.stop().await;
}

async fn metrology_is_idempotent_by_measurement_id(backend: Backend) {
    let fab = Fab::start(backend).await;
    fab.configure().await;
    let (_, run, _) = fab
        .post("/v1/apc/subrecipe", TOOL, &key(), &lot("LOT-1", formula()))
        .await;
    let measurement = json!({ "id": "M-7", "run": run["run"], "value": 46.0, "at": 5 });
    let (status, first, _) = fab
        .post("/v1/apc/metrology", TOOL, &key(), &measurement)
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["changed"], true);
    // A second delivery under another request key (a broker redelivery, say) changes nothing.
    let (status, second, _) = fab
        .post("/v1/apc/metrology", TOOL, &key(), &measurement)
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["changed"], false);
    assert_eq!(second["thread_version"], first["thread_version"]);
    // The same id with another value is a conflict.
    let changed = json!({ "id": "M-7", "run": run["run"], "value": 44.0, "at": 5 });
    let (status, error, _) = fab.post("/v1/apc/metrology", TOOL, &key(), &changed).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    let (_, thread) = fab.get(THREAD_PATH).await;
    assert_eq!(thread["measurements"], 1);
    fab.stop().await;
}

async fn reset_and_freeze_are_recorded_on_the_thread(backend: Backend) {
    let fab = Fab::start(backend).await;
    fab.configure().await;
    fab.post("/v1/apc/subrecipe", TOOL, &key(), &lot("LOT-1", formula()))
        .await;
    let why = json!({ "reason": "lens heating study" });
    let (status, _, _) = fab
        .post(&format!("{THREAD_PATH}/freeze"), TOOL, &key(), &why)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, frozen, _) = fab
        .post(&format!("{THREAD_PATH}/freeze"), ENGINEER, &key(), &why)
        .await;
    assert_eq!(status, StatusCode::OK, "{frozen}");
    let (_, thread) = fab.get(THREAD_PATH).await;
    assert_eq!(thread["frozen"]["reason"], "lens heating study");
    // Freezing twice is a conflict with the thread's state.
    let (status, _, _) = fab
        .post(&format!("{THREAD_PATH}/freeze"), ENGINEER, &key(), &why)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _, _) = fab
        .post(
            &format!("{THREAD_PATH}/unfreeze"),
            ENGINEER,
            &key(),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, reset, _) = fab
        .post(
            &format!("{THREAD_PATH}/reset"),
            ENGINEER,
            &key(),
            &json!({ "reason": "after PM" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    let (_, thread) = fab.get(THREAD_PATH).await;
    assert!(thread["frozen"].is_null(), "{thread}");
    assert!(
        thread["pilot_required"].is_string(),
        "a reset thread needs a pilot run: {thread}"
    );
    fab.stop().await;
}

async fn concurrent_writers_on_one_thread_all_commit_in_turn(backend: Backend) {
    let fab = Fab::start(backend).await;
    fab.configure().await;
    // Six lots on one thread at once (the thread is created by whichever commits first): the
    // losers of each race re-read and retry, so every request gets its own run.
    let keys: Vec<String> = (0..6).map(|_| key()).collect();
    let lots: Vec<_> = (1..=6)
        .map(|n| lot(&format!("LOT-{n}"), formula()))
        .collect();
    let post = |i: usize| fab.post("/v1/apc/subrecipe", TOOL, &keys[i], &lots[i]);
    let (a, b, c, d, e, f) = tokio::join!(post(0), post(1), post(2), post(3), post(4), post(5));
    let mut versions = Vec::new();
    let mut runs = std::collections::HashSet::new();
    for (status, body, _) in [a, b, c, d, e, f] {
        assert_eq!(status, StatusCode::OK, "{body}");
        versions.push(body["thread_version"].as_u64().unwrap());
        runs.insert(body["run"].as_str().unwrap().to_owned());
    }
    versions.sort_unstable();
    // Created (1) then one run each: versions 2..=7, each exactly once.
    assert_eq!(versions, (2..=7).collect::<Vec<u64>>());
    assert_eq!(runs.len(), 6);
    assert_eq!(fab.store.run_count().await.unwrap(), 6);
    let key = serde_json::from_value(lot("x", formula())["lot"]["thread"].clone()).unwrap();
    let transitions = fab.store.transitions(&key, 0).await.unwrap();
    let stored: Vec<u64> = transitions.iter().map(|t| t.to.0).collect();
    assert_eq!(
        stored,
        (1..=7).collect::<Vec<u64>>(),
        "the history has no gap and no duplicate"
    );
    // The stored snapshot is the fold of the stored history.
    let events: Vec<_> = transitions.into_iter().map(|t| t.event).collect();
    let folded = fab::Thread::from_events(&events).unwrap();
    assert_eq!(Some(folded), fab.store.thread(&key).await.unwrap());
    fab.stop().await;
}
