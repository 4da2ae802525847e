//! Request ids (the client's when sensible, a fresh one otherwise) and the access log.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use http::{Request, Response};
use orderly::{Env, Running, System};
use orderly_http::{AccessLog, HttpServer, HttpService, RequestId, Shutdown};

use crate::prom::Scrape;
use crate::support::{Raw, fetch, fetch_with, idle, local, recorded, start, unhung};

/// A generated id: a number of 20 digits.
fn is_generated(id: &str) -> bool {
    id.len() == 20 && id.parse::<u64>().is_ok()
}

/// Serves `service` alone (no admin listener, no router of the other tests), on port 0.
async fn serve(service: impl HttpService) -> (Running, SocketAddr) {
    let mut builder = System::builder("test").env(Env::empty());
    let http = builder.add("http", (), HttpServer::new(service).bind(local()));
    let running = builder.build().unwrap().start().await.unwrap();
    let addr = running.resource(http).unwrap().local_addr();
    (running, addr)
}

#[tokio::test]
async fn a_sensible_client_request_id_is_kept_and_handed_to_the_handler() {
    let app = start(|s| s, |b| b).await;
    let reply = fetch_with(
        app.http.local_addr(),
        "/id",
        &["X-Request-Id: client-42/a.b"],
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-request-id"), Some("client-42/a.b"));
    assert_eq!(reply.body, "client-42/a.b");
    let report = unhung(app.running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
}

/// Not only axum handlers: any tower service the server serves finds the request's id and
/// shutdown signal, when called and when polled.
#[tokio::test]
async fn a_tower_service_finds_the_request_id_and_the_shutdown_signal() {
    let service = tower::service_fn(|_: Request<Body>| {
        let called = RequestId::current().map(|id| id.to_string());
        async move {
            let id = RequestId::current().map(|id| id.to_string());
            assert_eq!(id, called, "the same request, called and polled");
            let draining = Shutdown::current().map(|shutdown| shutdown.is_draining());
            Ok::<_, Infallible>(Response::new(Body::from(format!("{id:?} {draining:?}"))))
        }
    });
    let (running, addr) = serve(service).await;
    let reply = fetch_with(addr, "/anything", &["X-Request-Id: tower-7"]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-request-id"), Some("tower-7"));
    assert_eq!(reply.body, r#"Some("tower-7") Some(false)"#);
    let report = unhung(running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
}

/// A router's middleware finds them too, and the same id as the handler and the response.
#[tokio::test]
async fn a_router_middleware_finds_the_request_id_and_the_shutdown_signal() {
    async fn tag(request: Request<Body>, next: axum::middleware::Next) -> Response<Body> {
        let id = RequestId::current().map(|id| id.to_string());
        let draining = Shutdown::current().map(|shutdown| shutdown.is_draining());
        let mut response = next.run(request).await;
        let seen = format!("{id:?} {draining:?}");
        if let Ok(value) = http::HeaderValue::from_str(&seen) {
            response.headers_mut().insert("x-middleware-saw", value);
        }
        response
    }
    let router = axum::Router::new()
        .route(
            "/id",
            axum::routing::get(|id: RequestId| async move { id.to_string() }),
        )
        .layer(axum::middleware::from_fn(tag));
    let (running, addr) = serve(router).await;
    let reply = fetch(addr, "/id").await;
    assert_eq!(reply.status, 200);
    let id = reply
        .header("x-request-id")
        .expect("the handler asked for an id");
    assert!(is_generated(id), "{id}");
    assert_eq!(reply.body, id, "the handler's id is the response's");
    assert_eq!(
        reply.header("x-middleware-saw"),
        Some(format!(r#"Some("{id}") Some(false)"#).as_str())
    );
    let report = unhung(running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
}

/// A layer that calls the inner service in a task of its own, as tower's `Buffer` does (the
/// usual way to put a rate limit on an axum router), does not hide the request from its
/// handler: the server makes the request current while it polls the response, and the
/// handler's extractors run then.
#[tokio::test]
async fn a_handler_behind_a_buffer_layer_finds_the_request_id_and_the_shutdown_signal() {
    let handler = |id: RequestId| async move {
        let draining = Shutdown::current().map(|shutdown| shutdown.is_draining());
        format!("{id} {draining:?}")
    };
    let buffered = tower::ServiceBuilder::new()
        .layer(axum::error_handling::HandleErrorLayer::new(
            |_: tower::BoxError| async { http::StatusCode::SERVICE_UNAVAILABLE },
        ))
        .layer(tower::buffer::BufferLayer::new(16));
    let router = axum::Router::new()
        .route("/id", axum::routing::get(handler))
        .layer(buffered);
    let (running, addr) = serve(router).await;
    let reply = fetch_with(addr, "/id", &["X-Request-Id: buffered-3"]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-request-id"), Some("buffered-3"));
    assert_eq!(reply.body, "buffered-3 Some(false)");
    let report = unhung(running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
}

#[tokio::test]
async fn a_missing_or_unacceptable_request_id_is_replaced_by_a_fresh_one() {
    let app = start(|s| s, |b| b).await;
    let addr = app.http.local_addr();
    let too_long = format!("X-Request-Id: {}", "x".repeat(129));
    let mut seen = Vec::new();
    for headers in [
        &[][..],
        &["X-Request-Id: two words"],
        &[too_long.as_str()],
        &["X-Request-Id: "],
    ] {
        let reply = fetch_with(addr, "/id", headers).await;
        let id = reply.header("x-request-id").unwrap().to_owned();
        assert!(is_generated(&id), "{headers:?}: {id}");
        assert_eq!(reply.body, id, "the handler sees the id the client gets");
        seen.push(id);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "every request gets its own id: {seen:?}");
    // No handler asked and no access log writes it (no subscriber here): an id would lead
    // nowhere, so none is made.
    let fast = fetch(addr, "/fast").await;
    assert_eq!(fast.status, 200);
    assert_eq!(fast.header("x-request-id"), None);
    let report = unhung(app.running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
}

#[tokio::test]
async fn every_response_carries_an_id_when_the_server_is_told_to() {
    let app = start(|s| s.request_id_on_every_response(true), |b| b).await;
    let addr = app.http.local_addr();
    let (one, two) = (fetch(addr, "/fast").await, fetch(addr, "/fast").await);
    let ids = [one.header("x-request-id"), two.header("x-request-id")];
    assert!(ids.iter().all(|id| id.is_some_and(is_generated)), "{ids:?}");
    assert_ne!(ids[0], ids[1]);
    let kept = fetch_with(addr, "/fast", &["X-Request-Id: mine"]).await;
    assert_eq!(kept.header("x-request-id"), Some("mine"));
    let report = unhung(app.running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
}

#[test]
fn each_request_is_written_once_to_the_access_log_with_its_fields() {
    recorded(|recorded| async move {
        let app = start(|s| s, |b| b).await;
        let addr = app.http.local_addr();
        let reply = fetch_with(addr, "/items/7?token=secret", &["X-Request-Id: abc-1"]).await;
        assert_eq!(reply.body, "item 7");
        let nowhere_reply = fetch(addr, "/nowhere").await;
        assert_eq!(nowhere_reply.status, 404);
        // The admin listener's requests are not in the access log.
        assert_eq!(fetch(app.admin, "/readyz").await.status, 200);
        idle(&app.http).await;

        let log = recorded.access_log();
        assert_eq!(log.len(), 2, "{log:#?}");
        let item = &log[0];
        assert_eq!(item["level"], "DEBUG", "the default level");
        let fields = &item["fields"];
        assert_eq!(fields["message"], "request");
        assert_eq!(fields["method"], "GET");
        assert_eq!(fields["route"], "/items/{id}");
        assert_eq!(
            fields["path"], "/items/7",
            "no query string: it may carry secrets"
        );
        assert_eq!(fields["status"], 200);
        assert_eq!(fields["bytes"], "item 7".len());
        assert_eq!(fields["request_id"], "abc-1");
        assert!(fields["duration_ms"].as_f64().is_some_and(|d| d >= 0.0));
        let remote = fields["remote"].as_str().unwrap();
        assert!(remote.starts_with("127.0.0.1:"), "{remote}");
        let nowhere = &log[1]["fields"];
        assert_eq!(nowhere["route"], "unmatched");
        assert_eq!(nowhere["path"], "/nowhere");
        assert_eq!(nowhere["status"], 404);
        // The log writes it, so the response carries it: the client can quote the line.
        let logged_id = nowhere["request_id"].as_str().unwrap();
        assert!(is_generated(logged_id), "{logged_id}");
        assert_eq!(nowhere_reply.header("x-request-id"), Some(logged_id));

        let report = unhung(app.running.stop()).await;
        assert!(report.is_clean(), "{}", report.summary());
    });
}

/// A static route's later requests skip the route layer (the server knows their route by
/// their path); their lines are the same as the first one's.
#[test]
fn requests_to_a_static_route_seen_before_are_logged_alike() {
    recorded(|recorded| async move {
        let app = start(|s| s, |b| b).await;
        let addr = app.http.local_addr();
        for _ in 0..3 {
            assert_eq!(fetch(addr, "/fast").await.status, 200);
        }
        idle(&app.http).await;
        let log = recorded.access_log();
        assert_eq!(log.len(), 3, "{log:#?}");
        for line in &log {
            let fields = &line["fields"];
            assert_eq!(
                (&fields["route"], &fields["path"]),
                (&"/fast".into(), &"/fast".into())
            );
        }
        let report = unhung(app.running.stop()).await;
        assert!(report.is_clean(), "{}", report.summary());
    });
}

#[test]
fn a_request_cut_at_the_drain_deadline_is_logged_with_status_499() {
    recorded(|recorded| async move {
        let app = start(|s| s.drain_timeout(Duration::from_millis(100)), |b| b).await;
        let mut client = Raw::connect(app.http.local_addr()).await;
        client.get("/stuck").await;
        app.gate.entered.notified().await;
        let report = unhung(app.running.stop()).await;
        assert!(!report.is_clean());
        assert!(client.closed().await);

        let log = recorded.access_log();
        assert_eq!(log.len(), 1, "{log:#?}");
        assert_eq!(log[0]["fields"]["route"], "/stuck");
        assert_eq!(log[0]["fields"]["status"], 499);
        assert_eq!(log[0]["fields"]["bytes"], 0);
        let metrics = Scrape::parse(&recorded.metrics.render());
        let labels = [("method", "GET"), ("route", "/stuck"), ("status", "499")];
        assert_eq!(
            metrics.value("http_server_requests_total", &labels),
            Some(1.0)
        );
    });
}

#[test]
fn the_access_log_can_be_written_at_info() {
    recorded(|recorded| async move {
        let app = start(|s| s.access_log(AccessLog::Info), |b| b).await;
        assert_eq!(fetch(app.http.local_addr(), "/items/7").await.status, 200);
        idle(&app.http).await;
        let log = recorded.access_log();
        assert_eq!(log.len(), 1, "{log:#?}");
        assert_eq!(log[0]["level"], "INFO");
        let report = unhung(app.running.stop()).await;
        assert!(report.is_clean(), "{}", report.summary());
    });
}

#[test]
fn the_access_log_can_be_turned_off_while_metrics_still_count() {
    recorded(|recorded| async move {
        let app = start(|s| s.access_log(AccessLog::Off), |b| b).await;
        assert_eq!(fetch(app.http.local_addr(), "/fast").await.status, 200);
        idle(&app.http).await;
        assert!(recorded.access_log().is_empty());
        let metrics = Scrape::parse(&recorded.metrics.render());
        let labels = [("method", "GET"), ("route", "/fast"), ("status", "200")];
        assert_eq!(
            metrics.value("http_server_requests_total", &labels),
            Some(1.0)
        );
        let report = unhung(app.running.stop()).await;
        assert!(report.is_clean(), "{}", report.summary());
    });
}
