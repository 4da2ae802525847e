//! Logs as an event stream on stdout, flushed last, and Prometheus metrics, for [`orderly`]
//! services (twelve-factor XI).
//!
//! `main` is phases: telemetry first (so configuration and build errors are logged too),
//! then configuration, build, run. This one runs a one-off task and ends:
//!
//! ```
//! use std::process::ExitCode;
//!
//! use orderly::{BoxError, Env, Spec, System};
//! use orderly_telemetry::{Logs, Metrics};
//!
//! #[tokio::main]
//! async fn main() -> ExitCode {
//!     let env = Env::from_pairs([("LOG_FORMAT", "json")]); // `Env::process()` in a service
//!
//!     // 1. Telemetry: JSON lines on stdout (human-readable on a terminal), Prometheus metrics.
//!     let logs = match Logs::init(&env) {
//!         Ok(logs) => logs,
//!         Err(error) => {
//!             eprintln!("{error}"); // e.g. "LOG_FORMAT: expected json or pretty, found 'xml'"
//!             return ExitCode::from(error.exit_code()); // 78: invalid configuration
//!         }
//!     };
//!     let metrics = match Metrics::install() {
//!         Ok(metrics) => metrics,
//!         Err(error) => {
//!             tracing::error!(%error, "cannot install the metrics recorder");
//!             return ExitCode::from(error.exit_code());
//!         }
//!     };
//!
//!     // 2. Configuration (read from `env`, errors logged) and 3. build: the logger stops
//!     // last and flushes; every lifecycle event is a log line.
//!     let mut system = logs.attach(System::builder("hello").env(env));
//!     system.add(Spec::new("metrics").foundation(), (), metrics);
//!     system.add_task("greet", (), |(), _ctx| async {
//!         tracing::info!(greeting = "hello", "greeted");
//!         metrics::counter!("greetings_total").increment(1);
//!         Ok::<_, BoxError>(())
//!     });
//!
//!     // 4. Run until SIGTERM (here: until the task ends). The shutdown report is the last
//!     // line, written out before `run` returns; `logs` flushes again when `main` returns.
//!     system.run().await
//! }
//! ```
//!
//! # Logs
//!
//! [`Logs::init`] installs the global `tracing` subscriber; [`LogSettings`] lists the
//! variables (`LOG_FORMAT=json|pretty`, `LOG_LEVEL`, `RUST_LOG`). A JSON line is one flat
//! object:
//!
//! ```text
//! {"timestamp":"2026-11-21T06:09:41.327817Z","level":"INFO","message":"component started","system":"hello","event":"component_started","component":"metrics","took_ms":0.07,"target":"orderly::event"}
//! ```
//!
//! The object is the one `tracing-subscriber`'s JSON formatter writes (with `flatten_event`),
//! but written without `serde_json`, straight into a reused buffer, the date and time
//! formatted once a second: about a tenth of the instructions per line.
//!
//! Log calls never write to stdout themselves: a bounded queue and one writer thread do, and
//! no line is dropped; [`Logs`] explains the trade-off (a full queue makes log calls wait) and
//! how the last lines get out.
//!
//! # Metrics
//!
//! [`Metrics::install`] installs a Prometheus recorder behind the [`metrics`] facade;
//! [`Metrics::render`] is the `/metrics` body.

mod error;
mod json_lines;
mod logs;
mod pipe;
mod prometheus;
mod settings;

pub use error::{Error, ErrorKind};
pub use logs::{LOGS, Logs};
pub use prometheus::Metrics;
pub use settings::{LOG_FORMAT, LOG_LEVEL, LogFormat, LogSettings, RUST_LOG};
