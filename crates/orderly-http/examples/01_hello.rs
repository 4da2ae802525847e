//! A router served on `PORT` (default 8080) with the admin endpoints on `ADMIN_PORT` (9090).
//!
//! ```text
//! cargo run -p orderly-http --example 01_hello
//! curl localhost:8080/            # hello
//! curl localhost:9090/readyz      # ready
//! curl localhost:9090/status      # JSON
//! ```
//!
//! Ctrl-C: readiness turns 503, the server drains, the admin endpoints stop last.

use std::process::ExitCode;

use axum::{Router, routing::get};
use orderly::{Env, System};
use orderly_http::{Admin, HttpServer};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().init();
    let env = Env::process();
    let app = Router::new().route("/", get(|| async { "hello\n" }));

    let mut system = System::builder("hello").env(env.clone()).log_all_events();
    system.add("admin", (), Admin::new().from_env(&env));
    system.add("http", (), HttpServer::new(app).from_env(&env));
    system.run().await
}
