//! The FDC API, on SQLite and on PostgreSQL: samples against the released limits, alarms,
//! acknowledgement, and the tool inhibit the APC obeys.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Backend, ENGINEER, ENGINEER_2, Fab, TOOL, formula, key, lot};

on_both!(a_spec_limit_alarm_inhibits_the_tool_until_acknowledged);

/// Releases a spec with limits for `chuck-temp` (μ 23.0 °C, σ 0.1, spec 22.5–23.5).
pub(crate) async fn release_limits(fab: &Fab) {
    let body = json!({ "content": {
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
    }});
    let (status, set, _) = fab.post("/v1/spec/sets", ENGINEER, &key(), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{set}");
    let v = set["version"].as_u64().unwrap();
    for (action, token) in [("approve", ENGINEER_2), ("release", ENGINEER)] {
        let (status, body, _) = fab
            .post(
                &format!("/v1/spec/sets/{v}/{action}"),
                token,
                &key(),
                &json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

pub(crate) fn batch(start_s: u64, values: &[f64]) -> Value {
    let samples: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({ "at": (start_s + i as u64) * 1000, "value": v }))
        .collect();
    json!({ "tool": "scanner-07", "parameter": "chuck-temp", "samples": samples })
}

async fn a_spec_limit_alarm_inhibits_the_tool_until_acknowledged(backend: Backend) {
    let fab = Fab::start(backend).await;
    // Without released limits for the parameter, samples are refused, naming it.
    let (status, error, _) = fab
        .post("/v1/fdc/samples", TOOL, &key(), &batch(0, &[23.0]))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["field"], "parameter");
    release_limits(&fab).await;
    fab.configure().await;

    let quiet = [23.01, 22.98, 23.02, 22.99, 23.0, 23.01, 22.985, 23.015];
    let (status, evaluated, _) = fab
        .post("/v1/fdc/samples", TOOL, &key(), &batch(0, &quiet))
        .await;
    assert_eq!(status, StatusCode::OK, "{evaluated}");
    assert_eq!(
        evaluated["alarms"],
        json!([]),
        "in-control data raises nothing"
    );

    // 25 °C is beyond the spec limit: a critical alarm, the tool inhibited.
    let k = key();
    let hot = batch(8, &[25.0]);
    let (status, evaluated, _) = fab.post("/v1/fdc/samples", TOOL, &k, &hot).await;
    assert_eq!(status, StatusCode::OK, "{evaluated}");
    let alarms = evaluated["alarms"].as_array().unwrap().clone();
    assert!(!alarms.is_empty(), "{evaluated}");
    assert!(
        alarms
            .iter()
            .any(|a| a["detection"]["severity"] == "critical"),
        "{evaluated}"
    );
    assert_eq!(alarms[0]["detection"]["limits_version"], 1);
    // A retried batch is not evaluated twice.
    let (_, again, _) = fab.post("/v1/fdc/samples", TOOL, &k, &hot).await;
    assert_eq!(again, evaluated);
    let (_, listed) = fab
        .get("/v1/fdc/alarms?tool=scanner-07&unacknowledged=true")
        .await;
    assert_eq!(listed.as_array().unwrap().len(), alarms.len(), "{listed}");

    let (_, inhibit) = fab.get("/v1/fdc/tools/scanner-07/inhibit").await;
    assert_eq!(inhibit["inhibited"], true, "{inhibit}");
    // The APC dispatches nothing to an inhibited tool.
    let (status, error, _) = fab
        .post("/v1/apc/subrecipe", TOOL, &key(), &lot("LOT-1", formula()))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["field"], "lot.thread.tool");

    // Acknowledging (an engineer, with a note) releases the hold.
    for alarm in inhibit["holding"].as_array().unwrap() {
        let path = format!("/v1/fdc/alarms/{alarm}/ack");
        assert_eq!(
            fab.post(&path, TOOL, &key(), &json!({ "note": "seen" }))
                .await
                .0,
            StatusCode::FORBIDDEN
        );
        let (status, error, _) = fab
            .post(&path, ENGINEER, &key(), &json!({ "note": "" }))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert_eq!(error["field"], "note");
        let (status, acked, _) = fab
            .post(&path, ENGINEER, &key(), &json!({ "note": "chiller reset" }))
            .await;
        assert_eq!(status, StatusCode::OK, "{acked}");
        assert_eq!(acked["ack"]["note"], "chiller reset");
        assert_eq!(
            fab.post(&path, ENGINEER, &key(), &json!({ "note": "again" }))
                .await
                .0,
            StatusCode::CONFLICT
        );
    }
    let (_, inhibit) = fab.get("/v1/fdc/tools/scanner-07/inhibit").await;
    assert_eq!(inhibit["inhibited"], false, "{inhibit}");
    let (status, run, _) = fab
        .post("/v1/apc/subrecipe", TOOL, &key(), &lot("LOT-1", formula()))
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    fab.stop().await;
}
