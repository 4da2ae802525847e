//! Protections: header-read timeout, body limit, request timeout, bind failures.

use std::time::Duration;

use axum::Router;
use orderly::{Env, System};
use orderly_http::HttpServer;

use crate::support::{Raw, local, start, unhung};

#[tokio::test]
async fn a_client_that_sends_headers_too_slowly_is_cut_off() {
    let app = start(|s| s.header_read_timeout(Duration::from_millis(100)), |b| b).await;
    let mut slow = Raw::connect(app.http.local_addr()).await;
    slow.send("GET /fast HTTP/1.1\r\nHost: te").await;
    let rest = slow.rest().await;
    assert!(
        rest.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{rest:?}"
    );
    let report = unhung(app.running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
}

/// Each head awaited on a keep-alive connection has the header-read timeout: after requests
/// answered at once, after an idle pause, and after a request that outlasted the timeout.
#[tokio::test]
async fn every_head_of_a_keep_alive_connection_has_the_header_timeout() {
    let app = start(
        |s| {
            s.header_read_timeout(Duration::from_millis(100))
                .request_timeout(Duration::from_millis(300))
        },
        |b| b,
    )
    .await;
    let addr = app.http.local_addr();

    // Requests answered at once, then a head that never ends.
    let mut busy = Raw::connect(addr).await;
    for _ in 0..3 {
        busy.get("/fast").await;
        assert_eq!(busy.response().await.status, 200);
    }
    busy.send("GET /fast HTTP/1.1\r\nHost: te").await;
    let rest = unhung(busy.rest()).await;
    assert!(rest.starts_with("HTTP/1.1 408 "), "{rest:?}");

    // A request, then silence: the wait for the next head is cut too, without a word (no
    // request was begun), as is a connection that never sent anything.
    let mut idle = Raw::connect(addr).await;
    idle.get("/fast").await;
    assert_eq!(idle.response().await.status, 200);
    assert!(unhung(idle.closed()).await, "the idle connection is closed");
    let mut silent = Raw::connect(addr).await;
    assert!(
        unhung(silent.closed()).await,
        "the silent connection is closed"
    );

    // A request slower than the header timeout, one more request on the same connection (it
    // was kept alive), then a head that never ends.
    let mut after = Raw::connect(addr).await;
    after.get("/stuck").await;
    assert_eq!(after.response().await.status, 503);
    after.get("/fast").await;
    assert_eq!(after.response().await.status, 200);
    after.send("GET /fast HTTP/1.1\r\nHost: te").await;
    let rest = unhung(after.rest()).await;
    assert!(rest.starts_with("HTTP/1.1 408 "), "{rest:?}");

    let report = unhung(app.running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
}

#[tokio::test]
async fn an_oversized_body_gets_413_whether_declared_or_streamed() {
    let app = start(|s| s.body_limit(16), |b| b).await;
    let mut client = Raw::connect(app.http.local_addr()).await;
    let body = "x".repeat(100);
    client
        .send(&format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{body}"
        ))
        .await;
    let reply = client.response().await;
    assert_eq!(reply.status, 413);
    assert!(reply.body.contains("limit of 16 bytes"), "{}", reply.body);

    let mut client = Raw::connect(app.http.local_addr()).await;
    client
        .send(&format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n64\r\n{body}\r\n0\r\n\r\n"
        ))
        .await;
    assert_eq!(client.response().await.status, 413);

    let mut client = Raw::connect(app.http.local_addr()).await;
    client
        .send(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        )
        .await;
    let reply = client.response().await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "5"));
    let report = unhung(app.running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
}

#[tokio::test]
async fn a_handler_slower_than_the_request_timeout_gets_503() {
    let app = start(|s| s.request_timeout(Duration::from_millis(50)), |b| b).await;
    let reply = crate::support::fetch(app.http.local_addr(), "/stuck").await;
    assert_eq!(reply.status, 503);
    assert!(reply.body.contains("request timeout"), "{}", reply.body);
    assert_eq!(app.http.in_flight(), 0);
    let report = unhung(app.running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
}

/// A service that is never ready (its `poll_ready` pending: an exhausted concurrency limit,
/// say) is bounded by the request timeout too, not only a slow handler.
#[derive(Clone)]
struct NeverReady;

impl tower::Service<http::Request<axum::body::Body>> for NeverReady {
    type Response = http::Response<axum::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Pending
    }

    fn call(&mut self, _request: http::Request<axum::body::Body>) -> Self::Future {
        std::future::ready(Ok(http::Response::new("called".into())))
    }
}

#[tokio::test]
async fn a_service_never_ready_within_the_request_timeout_gets_503() {
    let mut builder = System::builder("test").env(Env::empty());
    let http = builder.add(
        "http",
        (),
        HttpServer::new(NeverReady)
            .bind(local())
            .request_timeout(Duration::from_millis(50)),
    );
    let running = builder.build().unwrap().start().await.unwrap();
    let server = running.resource(http).unwrap();
    let reply =
        crate::support::fetch_with(server.local_addr(), "/", &["X-Request-Id: slow-1"]).await;
    assert_eq!(reply.status, 503);
    assert!(reply.body.contains("request timeout"), "{}", reply.body);
    assert_eq!(reply.header("x-request-id"), Some("slow-1"));
    assert_eq!(server.in_flight(), 0);
    let report = unhung(running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
}

#[tokio::test]
async fn a_port_in_use_fails_the_start_naming_the_address() {
    let taken = tokio::net::TcpListener::bind(local()).await.unwrap();
    let addr = taken.local_addr().unwrap();
    let mut builder = System::builder("test").env(Env::empty());
    builder.add("http", (), HttpServer::new(Router::new()).bind(addr));
    let error = builder.build().unwrap().start().await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!("cannot listen on {addr}")),
        "{message}"
    );
    assert!(message.contains("'http'"), "{message}");
    assert_eq!(error.report().exit_code, 1);
}

#[tokio::test]
async fn an_invalid_port_variable_is_invalid_configuration_naming_it() {
    let env = Env::from_pairs([("PORT", "eighty")]);
    let mut builder = System::builder("test").env(Env::empty());
    builder.add("http", (), HttpServer::new(Router::new()).from_env(&env));
    let error = builder.build().unwrap().start().await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("PORT: expected a port number"),
        "{message}"
    );
    assert!(message.contains("'eighty'"), "{message}");
    assert_eq!(error.report().exit_code, 78);
}
