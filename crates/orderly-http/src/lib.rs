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
//!
//!     let mut system = System::builder("hello").env(env.clone());
//!     // First, without dependencies: it answers probes until everything else has stopped.
//!     system.add("admin", (), Admin::new().from_env(&env));
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
//! 3. Long-lived responses end through their [`Shutdown`] signal.
//! 4. At the drain deadline, whatever is left is cut and the stop fails naming the routes.
//! 5. The [`Admin`] component stops last, once every other component has stopped.
//!
//! Environment: `PORT` (default 8080) and `ADMIN_PORT` (default 9090); see [`PORT`] and
//! [`ADMIN_PORT`].
//!
//! Not yet here: `/metrics`, request ids and access logs.
//!
//! # Measured
//!
//! `crates/orderly-http/benches/http.sh` on a 2-core machine (every run and the method in
//! `benches/README.md`), before metrics and access logs: with keep-alive, [`HttpServer`] at its
//! defaults served 96.0 % of the requests/s of a bare hyper server on the same router (mean of
//! 4 alternating rounds, 90.7–109.8 % per round; target ≥ 95 %), with 46 % more user-space
//! instructions per request (17,140 against 11,726). With one request in flight for 500 ms at
//! SIGTERM and no shutdown delay, the process exited 2.1 ms after the request's 500 ms (median
//! of 20 runs; max 3.2 ms; target ≤ 20 ms), the response a 200 with `Connection: close`.

mod admin;
mod config;
mod error;
mod in_flight;
mod serve;
mod server;
mod service;
mod shutdown;

pub use admin::{Admin, AdminHandle};
pub use config::{ADMIN_PORT, PORT};
pub use error::{Error, ErrorKind};
pub use server::{HttpServer, ServerHandle};
pub use service::HttpService;
pub use shutdown::Shutdown;
