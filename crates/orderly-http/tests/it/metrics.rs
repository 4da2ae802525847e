//! `/metrics` on the admin port: the lifecycle metrics from the system's real state, through
//! the shutdown; the text of a `metrics` recorder after them; the HTTP server's request metrics.

use std::sync::Arc;

use axum::Router;
use orderly::{BoxError, Env, System};
use orderly_http::{Admin, HttpServer};
use tokio::sync::Notify;

use crate::prom::Scrape;
use crate::support::{Gate, Raw, fetch, idle, local, recorded, router, start, start_with, unhung};

const STATES: [&str; 7] = [
    "pending", "starting", "running", "stopping", "stopped", "failed", "skipped",
];

/// Scrapes `/metrics`, checking the content type and the format.
async fn scrape(admin: std::net::SocketAddr) -> Scrape {
    let reply = fetch(admin, "/metrics").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    Scrape::parse(&reply.body)
}

/// Asserts that `component` is in `state` and in no other (one-hot).
#[track_caller]
fn assert_state(scrape: &Scrape, component: &str, state: &str) {
    for s in STATES {
        let labels = [("system", "test"), ("component", component), ("state", s)];
        let expected = if s == state { 1.0 } else { 0.0 };
        assert_eq!(
            scrape.value("orderly_component_state", &labels),
            Some(expected),
            "{component} {s}"
        );
    }
}

#[track_caller]
fn assert_phase(scrape: &Scrape, phase: &str) {
    for p in ["created", "starting", "running", "stopping", "stopped"] {
        let expected = if p == phase { 1.0 } else { 0.0 };
        assert_eq!(
            scrape.value("orderly_system_phase", &[("system", "test"), ("phase", p)]),
            Some(expected),
            "{p}"
        );
    }
}

/// `orderly_started` and `orderly_ready`.
fn probes(scrape: &Scrape) -> (Option<f64>, Option<f64>) {
    let system = [("system", "test")];
    (
        scrape.value("orderly_started", &system),
        scrape.value("orderly_ready", &system),
    )
}

fn seconds(scrape: &Scrape, name: &str, component: &str) -> Option<f64> {
    scrape.value(name, &[("system", "test"), ("component", component)])
}

#[tokio::test]
async fn metrics_show_every_component_state_timings_and_the_phase_while_running() {
    let app = start(|s| s, |b| b).await;
    let scrape = scrape(app.admin).await;

    assert_phase(&scrape, "running");
    assert_eq!(probes(&scrape), (Some(1.0), Some(1.0)));
    for component in ["admin", "http"] {
        assert_state(&scrape, component, "running");
        for (health, expected) in [("healthy", 1.0), ("degraded", 0.0), ("unhealthy", 0.0)] {
            let labels = [
                ("system", "test"),
                ("component", component),
                ("health", health),
            ];
            assert_eq!(
                scrape.value("orderly_component_health", &labels),
                Some(expected)
            );
        }
        let started = seconds(&scrape, "orderly_component_start_seconds", component);
        assert!(
            started.is_some_and(|s| s >= 0.0),
            "{component}: {started:?}"
        );
        assert_eq!(
            seconds(&scrape, "orderly_component_stop_seconds", component),
            None
        );
    }
    for family in [
        "orderly_system_phase",
        "orderly_ready",
        "orderly_started",
        "orderly_component_state",
        "orderly_component_health",
        "orderly_component_start_seconds",
        "orderly_component_stop_seconds",
    ] {
        assert_eq!(scrape.types[family], "gauge", "{family}");
        assert!(!scrape.help[family].is_empty(), "{family}");
    }
    let report = unhung(app.running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
}

/// A component whose stop holds until the test releases it, and says when it began.
#[derive(Clone, Default)]
struct Held {
    stopping: Arc<Notify>,
    release: Arc<Notify>,
}

#[tokio::test]
async fn metrics_follow_the_system_as_it_stops() {
    // admin; db, whose stop holds; http, which depends on db so it drains before db stops.
    let gate = Gate::default();
    let held = Held::default();
    let mut builder = System::builder("test").env(Env::empty());
    let admin = builder.add("admin", (), Admin::new().bind(local()));
    let hold = held.clone();
    let db = builder.add_fn("db", (), move |(), ctx| {
        let hold = hold.clone();
        async move {
            let stopping = ctx.clone();
            ctx.spawn("hold the stop", async move {
                stopping.stopping().await;
                hold.stopping.notify_one();
                hold.release.notified().await;
                Ok::<_, BoxError>(())
            });
            Ok::<_, BoxError>(())
        }
    });
    let app: Router = router(&gate);
    let http = builder.add(
        "http",
        db,
        HttpServer::from_fn(move |()| app.clone()).bind(local()),
    );
    let running = builder.build().unwrap().start().await.unwrap();
    let admin = running.resource(admin).unwrap().local_addr();
    let http = running.resource(http).unwrap();

    let mut client = Raw::connect(http.local_addr()).await;
    client.get("/slow").await;
    gate.entered.notified().await;
    let stop = tokio::spawn(running.stop());
    gate.saw_drain.notified().await;

    // Draining, a request in flight: stopping, not ready; db waits for http.
    let draining = scrape(admin).await;
    assert_phase(&draining, "stopping");
    assert_eq!(
        probes(&draining),
        (Some(1.0), Some(0.0)),
        "started, not ready"
    );
    assert_state(&draining, "http", "stopping");
    assert_state(&draining, "db", "running");
    assert_state(&draining, "admin", "stopping");
    assert_eq!(
        seconds(&draining, "orderly_component_stop_seconds", "http"),
        None
    );

    // The request finishes, http stops, db's stop begins and holds.
    gate.release.notify_one();
    assert_eq!(client.response().await.body, "done");
    held.stopping.notified().await;
    let holding = scrape(admin).await;
    assert_phase(&holding, "stopping");
    assert_state(&holding, "http", "stopped");
    assert_state(&holding, "db", "stopping");
    let stopped_in = seconds(&holding, "orderly_component_stop_seconds", "http");
    assert!(stopped_in.is_some_and(|s| s >= 0.0), "{stopped_in:?}");
    assert_eq!(
        seconds(&holding, "orderly_component_stop_seconds", "db"),
        None
    );

    held.release.notify_one();
    let report = unhung(stop).await.unwrap();
    assert!(report.is_clean(), "{}", report.summary());
}

#[tokio::test]
async fn the_text_of_the_metrics_hook_follows_the_lifecycle_metrics() {
    let admin = Admin::new().metrics(|| {
        // No final newline: the admin adds it.
        "# HELP app_jobs_total Jobs done.\n# TYPE app_jobs_total counter\napp_jobs_total 3"
            .to_owned()
    });
    let app = start_with(admin, |s| s, |b| b).await;
    let reply = fetch(app.admin, "/metrics").await;
    let lifecycle = reply.body.find("# HELP orderly_system_phase").unwrap();
    let hook = reply.body.find("# HELP app_jobs_total").unwrap();
    assert!(lifecycle < hook, "{}", reply.body);
    assert!(reply.body.ends_with("app_jobs_total 3\n"), "{}", reply.body);
    let scrape = Scrape::parse(&reply.body);
    assert_eq!(scrape.value("app_jobs_total", &[]), Some(3.0));
    let report = unhung(app.running.stop()).await;
    assert!(report.is_clean(), "{}", report.summary());
}

#[test]
fn http_requests_are_counted_by_method_matched_route_and_status() {
    recorded(|recorded| async move {
        let metrics = recorded.metrics.clone();
        let admin = Admin::new().metrics(move || metrics.render());
        let app = start_with(admin, |s| s, |b| b).await;
        let addr = app.http.local_addr();

        assert_eq!(fetch(addr, "/items/1").await.status, 200);
        assert_eq!(fetch(addr, "/items/2").await.status, 200);
        assert_eq!(fetch(addr, "/nowhere/12345").await.status, 404);
        let mut post = Raw::connect(addr).await;
        post.send("POST /items/3 HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .await;
        assert_eq!(post.response().await.status, 405);
        assert_eq!(fetch(addr, "/items/4").await.status, 200);
        // A static route: after its first request, its path is known and the route layer is
        // skipped; the requests are labelled the same.
        for _ in 0..3 {
            assert_eq!(fetch(addr, "/fast").await.status, 200);
        }
        let mut post = Raw::connect(addr).await;
        post.send(
            "POST /fast HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert_eq!(post.response().await.status, 405);
        idle(&app.http).await;

        // A request in flight is in the gauge until its response has been sent.
        let mut slow = Raw::connect(addr).await;
        slow.get("/slow").await;
        app.gate.entered.notified().await;
        let during = scrape(app.admin).await;
        assert_eq!(
            during.value("http_server_requests_in_flight", &[]),
            Some(1.0)
        );

        let stop = tokio::spawn(app.running.stop());
        app.gate.saw_drain.notified().await;
        app.gate.release.notify_one();
        assert_eq!(slow.response().await.body, "done");
        let report = unhung(stop).await.unwrap();
        assert!(report.is_clean(), "{}", report.summary());

        // The admin has stopped; the recorder still renders what the server recorded.
        let after = Scrape::parse(&recorded.metrics.render());
        let requests = |method, route, status| {
            let labels = [("method", method), ("route", route), ("status", status)];
            after.value("http_server_requests_total", &labels)
        };
        assert_eq!(requests("GET", "/items/{id}", "200"), Some(3.0));
        assert_eq!(requests("POST", "/items/{id}", "405"), Some(1.0));
        assert_eq!(requests("GET", "unmatched", "404"), Some(1.0));
        assert_eq!(requests("GET", "/slow", "200"), Some(1.0));
        assert_eq!(requests("GET", "/fast", "200"), Some(3.0));
        assert_eq!(requests("POST", "/fast", "405"), Some(1.0));
        let total: f64 = after
            .named("http_server_requests_total")
            .map(|s| s.value)
            .sum();
        assert_eq!(total, 10.0, "the scrapes of the admin port are not counted");
        for sample in &after.samples {
            for value in sample.labels.values() {
                assert!(
                    !value.contains("nowhere") && !value.contains("/items/1"),
                    "a raw path became a label: {sample:?}"
                );
            }
        }
        assert_eq!(after.types["http_server_requests_total"], "counter");
        assert_eq!(
            after.types["http_server_request_duration_seconds"],
            "histogram"
        );
        let items = [
            ("method", "GET"),
            ("route", "/items/{id}"),
            ("status", "200"),
        ];
        assert_eq!(
            after.value("http_server_request_duration_seconds_count", &items),
            Some(3.0)
        );
        let mut inf = items.to_vec();
        inf.push(("le", "+Inf"));
        assert_eq!(
            after.value("http_server_request_duration_seconds_bucket", &inf),
            Some(3.0)
        );
        assert_eq!(
            after.value("http_server_requests_in_flight", &[]),
            Some(0.0)
        );
    });
}
