//! An HTTP server and admin endpoints that start and stop with an [`orderly`] system and drain
//! without losing requests.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use orderly::{Env, System};
//! use orderly_http::{Admin, HttpServer};
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     let env = Env::process();
//!     let app = Router::new().route("/", get(|| async { "hello\n" }));
//!     // Where the request metrics go (histograms need buckets: see the builder).
//!     let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
//!         .install_recorder()
//!         .expect("no other recorder is installed");
//!
//!     let mut system = System::builder("hello").env(env.clone());
//!     // First, without dependencies: it answers probes until everything else has stopped.
//!     let admin = Admin::new().from_env(&env).metrics(move || metrics.render());
//!     system.add("admin", (), admin);
//!     system.add("http", (), HttpServer::new(app).from_env(&env));
//!     system.run().await // SIGTERM: readiness 503, shutdown delay, drain, exit
//! }
//! ```
//!
//! # What happens at shutdown
//!
//! 1. Readiness (`/readyz` on the admin port) turns 503; during the system's shutdown delay
//!    the [`HttpServer`] keeps serving normally so load balancers can stop sending traffic.
//! 2. The server stops accepting. HTTP/1.1 responses in flight carry `Connection: close`;
//!    idle keep-alive connections and connections that never sent a request are closed; HTTP/2
//!    connections get GOAWAY and their streams in flight finish.
//! 3. Long-lived responses end through their [`Shutdown`] signal (examples `02_sse` and
//!    `03_websocket`). A WebSocket session (any connection upgraded by a `101` response) counts as
//!    its request in flight until it ends, so the drain waits for it and names it if it is still
//!    open at the deadline. WebSockets over HTTP/2 (RFC 8441's extended CONNECT, which
//!    `axum::serve` enables) are not offered: such a session would outlive its request unseen by
//!    the drain, so clients use HTTP/1.1.
//! 4. At the drain deadline, whatever is left is cut and the stop fails naming the routes.
//! 5. The [`Admin`] component stops last, once every other component has stopped.
//!
//! Environment: `PORT` (default 8080) and `ADMIN_PORT` (default 9090), bound on loopback, or
//! on every interface in a Kubernetes container, unless `HOST` names the interface (`0.0.0.0`
//! in a container image); see [`PORT`], [`ADMIN_PORT`] and [`HOST`].
//!
//! # Observability
//!
//! - **`/metrics`** on the admin port, in the Prometheus text format: the lifecycle metrics
//!   (phase, readiness, each component's state, health and start/stop durations; see
//!   [`Admin`]), followed by whatever [`Admin::metrics`] renders, e.g. a
//!   `metrics-exporter-prometheus` handle.
//! - **Request metrics**, recorded through the [`metrics`](https://docs.rs/metrics) facade, so
//!   they cost next to nothing until a recorder is installed:
//!   `http_server_requests_total{method,route,status}` (counter),
//!   `http_server_requests_in_flight` (gauge) and
//!   `http_server_request_duration_seconds{method,route,status}` (histogram: give the recorder
//!   buckets for it, or `metrics-exporter-prometheus` renders a summary). `route` is the axum
//!   route that matched (`/orders/{id}`), never the raw path, and `unmatched` when none did
//!   (or the service is not an axum `Router`); methods outside the standard ones are `_OTHER`.
//!   Install the recorder before the system starts: the server describes its metrics (the
//!   `HELP` lines) to the recorder installed at its start and registers them with it once
//!   (a route's series the first time it sees a method and status), so that a request only
//!   updates the handles: a few atomic operations.
//! - **Request ids**: the client's `x-request-id` if sensible, a fresh one otherwise, made when
//!   something records it: the handler (the [`RequestId`] extractor, or
//!   [`RequestId::current`] in a middleware or any tower service) or the access log. The response
//!   carries the id when the request has one, or on every response with
//!   [`HttpServer::request_id_on_every_response`].
//! - **An access log** through `tracing`: one event per request, target
//!   `orderly_http::access`, at DEBUG by default (so no line per request under the usual INFO
//!   filter); see [`AccessLog`].
//!
//! The admin listener's own requests (probes, scrapes) are neither counted nor logged.
//!
//! # Measured
//!
//! `crates/orderly-http/benches/http.sh` on a 2-core machine (every run and the method in
//! `benches/README.md`), with keep-alive (`wrk -t1 -c32`), the same router behind bare hyper and
//! behind [`HttpServer`] at its defaults (the access log at DEBUG, so no line per request under an
//! INFO filter), with `orderly-telemetry`'s `Logs` and `Metrics` (request metrics into
//! Prometheus). User-space instructions per request: about 12,230 for bare hyper, 13,800 for
//! `HttpServer` (13,700 without a metrics recorder); an access-log line at INFO adds about 5,000
//! through `Logs`. By requests/s, with the servers up at once and the load alternating between
//! them, `HttpServer` served a median of 94.8–98.3 % of bare hyper's requests/s per round over six
//! runs on a quiet machine (95.4–98.2 % without a recorder): the SPEC target (≥ 95 %) is met there
//! in all runs but one, by a margin smaller than the spread between runs; on a busier machine,
//! whose host took 10–40 % of the CPU away, the same method gave about 92 %. With one request in
//! flight for 500 ms at SIGTERM and no shutdown delay, the process exited about 2.1 ms after the
//! request's 500 ms (median of 20 runs; max 2.4 ms; target ≤ 20 ms), the response a 200 with
//! `Connection: close`.

mod access_log;
mod admin;
mod config;
mod error;
mod exposition;
mod head_timer;
mod http_metrics;
mod in_flight;
mod request_id;
mod route;
mod serve;
mod server;
mod service;
mod shutdown;
mod status_metrics;
mod upgrade;

pub use access_log::AccessLog;
pub use admin::{Admin, AdminHandle};
pub use config::{ADMIN_PORT, HOST, PORT};
pub use error::{Error, ErrorKind};
pub use request_id::{REQUEST_ID, RequestId};
pub use server::{HttpServer, ServerHandle};
pub use service::HttpService;
pub use shutdown::Shutdown;
