//! A router served on `PORT` (default 8080) with the admin endpoints on `ADMIN_PORT` (9090),
//! request metrics in Prometheus format and an access log.
//!
//! ```text
//! cargo run -p orderly-http --example 01_hello
//! curl -i localhost:8080/hello/ada    # hello, ada
//! curl -i -H 'X-Request-Id: a1' localhost:8080/hello/ada   # … and x-request-id: a1
//! curl localhost:9090/readyz          # ready
//! curl localhost:9090/status          # JSON
//! curl localhost:9090/metrics         # lifecycle and HTTP metrics
//! ```
//!
//! Ctrl-C: readiness turns 503, the server drains, the admin endpoints stop last.

use std::process::ExitCode;

use axum::extract::Path;
use axum::{Router, routing::get};
use orderly::{Env, System};
use orderly_http::{Admin, HttpServer};
use orderly_telemetry::Metrics;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().init();
    // The `metrics` recorder the server's request metrics go to (with latency buckets).
    let metrics = match Metrics::install() {
        Ok(metrics) => metrics,
        Err(error) => {
            tracing::error!(%error, "cannot install the metrics recorder");
            return ExitCode::FAILURE;
        }
    };

    let env = Env::process();
    let app = Router::new().route(
        "/hello/{name}",
        get(|Path(name): Path<String>| async move { format!("hello, {name}\n") }),
    );
    let mut system = System::builder("hello").env(env.clone()).log_all_events();
    system.add(
        "admin",
        (),
        Admin::new()
            .from_env(&env)
            .metrics(move || metrics.render()),
    );
    system.add("http", (), HttpServer::new(app).from_env(&env));
    system.run().await
}
