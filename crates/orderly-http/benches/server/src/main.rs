//! The server of the HTTP benchmarks (`crates/orderly-http/benches/http.sh`): one router served
//! either by a bare hyper accept loop or by [`HttpServer`] with its defaults, so the two can be
//! compared. A package of its own, built without orderly-http's dev-dependencies (see its
//! `Cargo.toml`).
//!
//! ```text
//! cargo run --release -p orderly-http-bench-server -- orderly
//! curl localhost:8080/hello       # hello
//! curl localhost:8080/sleep/500   # slept 500 ms (after 500 ms)
//! ```
//!
//! Modes (the first argument):
//!
//! - `bare`: hyper 1 and hyper-util's auto (HTTP/1.1 + h2c) builder in a plain accept loop, a
//!   task per connection, no logs, no drain: the baseline. SIGTERM kills it.
//! - `orderly`: an orderly system of [`Admin`] and [`HttpServer`] at their defaults, logging JSON
//!   lines at INFO on stdout through `tracing-subscriber`'s JSON formatter (the benchmark sends
//!   them to /dev/null), no metrics recorder. SIGTERM drains it.
//! - `telemetry`: the same system set up as a production service is, with `orderly-telemetry`:
//!   [`Logs`] (JSON lines at INFO on stdout, through its queue and writer thread) and
//!   [`Metrics`] (the Prometheus recorder, rendered on the admin port's `/metrics`).
//!
//! `ACCESS_LOG=info|debug|off` sets the access log of the `orderly` and `telemetry` modes
//! (default: the server's default, INFO), to measure what each option costs.
//!
//! Both listen on 127.0.0.1 at `PORT` (default 8080; 0 picks a free port, logged by the
//! `orderly` mode with `"component":"http"` and `"addr"`); the admin endpoints on `ADMIN_PORT`
//! (default 9090). `/sleep/{ms}` logs `sleep began` when its handler begins: the drain
//! benchmark sends SIGTERM on that line.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use axum::extract::Path;
use axum::{Router, routing::get};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use orderly::{Env, Spec, System};
use orderly_http::{AccessLog, Admin, HttpServer, PORT};
use orderly_telemetry::{Logs, Metrics};
use tokio::net::TcpListener;
use tower::ServiceExt;

/// The routes both modes serve.
fn app() -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route("/sleep/{ms}", get(sleep))
}

/// Answers after `ms` milliseconds.
async fn sleep(Path(ms): Path<u64>) -> String {
    tracing::info!(ms, "sleep began");
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms} ms\n")
}

/// The HTTP server at its defaults, but for `ACCESS_LOG` (`info`, `debug`, `off`) if set.
fn server(env: &Env) -> Result<HttpServer<(), Router>, String> {
    let server = HttpServer::new(app()).from_env(env);
    Ok(match env.get("ACCESS_LOG").as_deref() {
        None => server,
        Some("info") => server.access_log(AccessLog::Info),
        Some("debug") => server.access_log(AccessLog::Debug),
        Some("off") => server.access_log(AccessLog::Off),
        Some(other) => {
            return Err(format!(
                "ACCESS_LOG: expected info, debug or off, found '{other}'"
            ));
        }
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let env = Env::process();
    match std::env::args().nth(1).as_deref() {
        Some("bare") => bare(&env).await,
        Some("orderly") => orderly(env).await,
        Some("telemetry") => telemetry(env).await,
        _ => {
            eprintln!("usage: orderly-http-bench-server bare|orderly|telemetry");
            ExitCode::from(64)
        }
    }
}

/// The baseline: what a hyper server is without orderly.
async fn bare(env: &Env) -> ExitCode {
    let port = match env.get(PORT).map(|value| value.parse::<u16>()) {
        None => 8080,
        Some(Ok(port)) => port,
        Some(Err(error)) => {
            eprintln!("invalid PORT: {error}");
            return ExitCode::from(78);
        }
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot bind {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let app = app();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        let builder = builder.clone();
        // Fire and forget, as in hyper's own examples: the baseline has no drain.
        tokio::spawn(async move {
            let service =
                service_fn(move |request: http::Request<Incoming>| app.clone().oneshot(request));
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The same routes as a production service would serve them.
async fn orderly(env: Env) -> ExitCode {
    let http = match server(&env) {
        Ok(http) => http,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(78);
        }
    };
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stdout)
        .init();
    let mut system = System::builder("bench").env(env.clone()).log_all_events();
    system.add("admin", (), Admin::new().from_env(&env));
    system.add("http", (), http);
    system.run().await
}

/// The same routes as a production service would serve them, with `orderly-telemetry`.
async fn telemetry(env: Env) -> ExitCode {
    let http = match server(&env) {
        Ok(http) => http,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(78);
        }
    };
    let logs = match Logs::init(&env) {
        Ok(logs) => logs,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(error.exit_code());
        }
    };
    let metrics = match Metrics::install() {
        Ok(metrics) => metrics,
        Err(error) => {
            tracing::error!(%error, "cannot install the metrics recorder");
            return ExitCode::from(error.exit_code());
        }
    };
    let mut system = logs.attach(System::builder("bench").env(env.clone()));
    system.add(Spec::new("metrics").foundation(), (), metrics.clone());
    let admin = Admin::new()
        .from_env(&env)
        .metrics(move || metrics.render());
    system.add(Spec::new("admin").foundation(), (), admin);
    system.add("http", (), http);
    system.run().await
}
