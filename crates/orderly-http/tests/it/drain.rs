//! The drain of HTTP/1 connections: in-flight requests finish with `Connection: close`, idle
//! and silent connections are closed, long-lived responses end, what is stuck is cut and named.

use std::time::Duration;

use crate::support::{Raw, start, unhung};

#[tokio::test]
async fn a_request_in_flight_when_the_drain_begins_completes_with_connection_close() {
    let app = start(|s| s, |b| b).await;
    let mut client = Raw::connect(app.http.local_addr()).await;
    client.get("/slow").await;
    app.gate.entered.notified().await;

    let stop = tokio::spawn(app.running.stop());
    // The handler saw the server's drain signal: the drain has begun with the request in
    // flight.
    app.gate.saw_drain.notified().await;
    app.gate.release.notify_one();

    let reply = client.response().await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "done");
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(
        client.closed().await,
        "the connection is closed after the response"
    );
    let report = unhung(stop).await.unwrap();
    assert!(report.is_clean(), "{}", report.summary());
}

#[tokio::test]
async fn idle_keep_alive_and_silent_connections_are_closed_and_do_not_hold_the_drain() {
    // The header timeout cannot be what closes them.
    let app = start(|s| s.header_read_timeout(Duration::from_secs(3600)), |b| b).await;
    let mut idle = Raw::connect(app.http.local_addr()).await;
    idle.get("/fast").await;
    let reply = idle.response().await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("connection"),
        None,
        "kept alive before the drain"
    );

    let mut silent = Raw::connect(app.http.local_addr()).await;
    app.http.connections().wait_for(|&n| n == 2).await.unwrap();

    // Both connections are still open on our side while the stop completes.
    let report = unhung(app.running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
    assert!(
        idle.closed().await,
        "the idle keep-alive connection is closed"
    );
    assert!(
        silent.closed().await,
        "the connection that never sent a request is closed"
    );
}

#[tokio::test]
async fn an_sse_stream_ends_cleanly_when_the_drain_begins() {
    let app = start(|s| s, |b| b).await;
    let mut client = Raw::connect(app.http.local_addr()).await;
    client.get("/events").await;
    let head = client.read_until("\r\n\r\n").await;
    assert!(head.contains("text/event-stream"), "{head}");
    client.read_until("data: hello").await;

    let report = unhung(app.running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
    let rest = client.rest().await;
    assert!(rest.contains("event: bye\ndata: stopping"), "{rest:?}");
    assert!(
        rest.ends_with("0\r\n\r\n"),
        "the chunked body ends properly: {rest:?}"
    );
}

#[tokio::test]
async fn a_request_still_in_flight_at_the_drain_deadline_is_cut_and_named() {
    let app = start(|s| s.drain_timeout(Duration::from_millis(100)), |b| b).await;
    let mut client = Raw::connect(app.http.local_addr()).await;
    client.get("/stuck").await;
    app.gate.entered.notified().await;
    assert_eq!(app.http.in_flight(), 1);

    let report = unhung(app.running.stop()).await;
    assert!(!report.is_clean());
    let http = report.component("http").unwrap();
    let outcome = http.outcome.to_string();
    assert!(outcome.starts_with("stop failed"), "{outcome}");
    assert!(
        outcome.contains("cut 1 request in flight: GET /stuck (1)"),
        "{outcome}"
    );
    // The admin component still stopped after it, cleanly.
    assert_eq!(
        report.component("admin").unwrap().outcome.to_string(),
        "stopped"
    );
    assert!(client.closed().await, "the cut connection is closed");
}

#[tokio::test]
async fn the_server_serves_again_after_an_in_process_restart() {
    let app = start(|s| s, |b| b).await;
    let mut events = app.running.events();
    app.running.restart();
    events
        .wait_for(|e| matches!(e.kind, orderly::EventKind::SystemStarted { .. }))
        .await
        .unwrap();
    let http = app.running.resource(app.http_key).unwrap();
    let reply = crate::support::fetch(http.local_addr(), "/fast").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "fast"));
    let report = unhung(app.running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
}
