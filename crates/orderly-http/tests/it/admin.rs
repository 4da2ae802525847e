//! The admin endpoints: probes from the system's real state, answering through the shutdown
//! delay and the whole drain; `/status` as JSON; the admin component stops last.

use std::time::Duration;

use orderly::{EventKind, Phase, Signal, State};

use crate::support::{Raw, fetch, start, unhung};

#[tokio::test]
async fn probes_pass_while_running() {
    let app = start(|s| s, |b| b).await;
    for path in ["/livez", "/readyz", "/startupz"] {
        let reply = fetch(app.admin, path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }
    assert_eq!(fetch(app.admin, "/readyz").await.body, "ready\n");
    let report = unhung(app.running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
}

#[tokio::test]
async fn during_the_shutdown_delay_readyz_fails_while_the_public_port_still_serves() {
    // A delay far longer than the test: the test ends it with a second signal.
    let app = start(|s| s, |b| b.shutdown_delay(Duration::from_secs(3600))).await;
    let mut status = app.running.status();
    app.running.signal(Signal::Terminate);
    status
        .wait_for(|s| s.phase == Phase::Stopping)
        .await
        .unwrap();

    let ready = fetch(app.admin, "/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body, "system is stopping\n");
    assert_eq!(fetch(app.admin, "/livez").await.status, 200);
    let public = fetch(app.http.local_addr(), "/fast").await;
    assert_eq!((public.status, public.body.as_str()), (200, "fast"));
    assert_eq!(
        app.running
            .status()
            .borrow()
            .component("http")
            .unwrap()
            .state,
        State::Running
    );

    app.running.signal(Signal::Terminate);
    let report = app.running.wait().await;
    assert_eq!(report.exit_code, 128 + 15, "{}", report.summary());
}

#[tokio::test]
async fn probes_and_status_answer_through_the_whole_drain_and_admin_stops_last() {
    let app = start(|s| s, |b| b).await;
    let mut events = app.running.events();
    let mut client = Raw::connect(app.http.local_addr()).await;
    client.get("/slow").await;
    app.gate.entered.notified().await;
    let stop = tokio::spawn(app.running.stop());
    app.gate.saw_drain.notified().await;

    // The HTTP server is draining with a request in flight; the admin port answers.
    assert_eq!(fetch(app.admin, "/livez").await.status, 200);
    let ready = fetch(app.admin, "/readyz").await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (503, "system is stopping\n")
    );
    assert_eq!(fetch(app.admin, "/startupz").await.status, 200);
    let status = fetch(app.admin, "/status").await;
    assert_eq!(status.status, 200);
    assert_eq!(status.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(json["system"], "test");
    assert_eq!(json["phase"], "stopping");
    assert_eq!(json["readiness"]["ok"], false);
    let components = json["components"].as_array().unwrap();
    let http = components.iter().find(|c| c["name"] == "http").unwrap();
    assert_eq!(http["state"], "stopping");
    assert_eq!(http["health"], "healthy");
    assert!(http["started_in_ms"].as_f64().is_some());
    assert!(http["stopped_in_ms"].is_null());
    let admin = components.iter().find(|c| c["name"] == "admin").unwrap();
    assert_eq!(admin["state"], "stopping", "admin waits for the others");

    app.gate.release.notify_one();
    assert_eq!(client.response().await.body, "done");
    let report = unhung(stop).await.unwrap();
    assert!(report.is_clean(), "{}", report.summary());

    let mut stopped = Vec::new();
    while let Some(event) = events.recv().await {
        match event.kind {
            EventKind::ComponentStopped { component, .. } => stopped.push(component.to_string()),
            EventKind::SystemStopped { .. } => break,
            _ => {}
        }
    }
    assert_eq!(stopped, ["http", "admin"]);
}

/// The admin's stop waited for every other component, foundations too; but a foundation (the
/// logger) stops only after every regular component, the admin included: neither ever stopped.
#[tokio::test]
async fn the_admin_does_not_wait_for_foundations_that_stop_after_it() {
    let app = start(
        |s| s,
        |mut b| {
            b.add_fn(
                orderly::Spec::new("logs").foundation(),
                (),
                |(), _ctx| async { Ok::<_, orderly::BoxError>(()) },
            );
            b
        },
    )
    .await;
    let report = unhung(app.running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
    let components: Vec<&str> = report.components.iter().map(|c| &*c.name).collect();
    assert_eq!(components, ["logs", "admin", "http"]);
}
