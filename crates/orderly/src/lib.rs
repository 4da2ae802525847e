//! Start and stop a service's components in dependency order, gracefully.
//!
//! A service is a [`System`] of named *components* (config, logger, database pool, broker
//! connection, HTTP server, workers). Each component declares, with typed [`Key`]s, the
//! resources it needs; orderly starts each one as soon as its dependencies are started
//! (independent ones concurrently) and stops them in reverse, each only after everything that
//! depends on it has stopped. A failure on the way stops exactly what had started. Signals,
//! timeouts, a shutdown delay for load balancers, health probes, events and exit codes are
//! built in.
//!
//! ```
//! use std::time::Duration;
//! use orderly::{BoxError, Component, Context, System};
//!
//! #[derive(Clone)]
//! struct Config { greeting: String }
//!
//! /// A worker that needs only the greeting, not the whole config.
//! struct Greeter;
//!
//! impl Component for Greeter {
//!     type Deps = String;
//!     type Resource = ();
//!
//!     async fn start(&mut self, greeting: String, ctx: Context) -> Result<(), BoxError> {
//!         let stopping = ctx.clone();
//!         ctx.spawn("greet", async move {
//!             let mut tick = tokio::time::interval(Duration::from_secs(1));
//!             loop {
//!                 tokio::select! {
//!                     _ = tick.tick() => tracing::info!("{greeting}"),
//!                     () = stopping.stopping() => return Ok::<_, BoxError>(()),
//!                 }
//!             }
//!         });
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut system = System::builder("hello").shutdown_timeout(Duration::from_secs(10));
//! let config = system.add_fn("config", (), |(), _ctx| async {
//!     Ok::<_, BoxError>(Config { greeting: "hello".into() })
//! });
//! system.add("greeter", config.map(|c| c.greeting.clone()), Greeter);
//!
//! // In `main`: `return system.run().await;` owns the signals and returns the exit code.
//! // In a test or when embedding: start in-process and stop with a report.
//! let running = system.build()?.start().await?;
//! let report = running.stop().await;
//! assert!(report.is_clean());
//! assert_eq!(report.component("greeter").map(|c| c.outcome.to_string()).as_deref(), Some("stopped"));
//! # Ok(())
//! # }
//! ```
//!
//! # Where things are
//!
//! - [`Component`] and [`from_fn`]: the contract; [`Context`]: what a component can do while
//!   it runs (request stop or restart, spawn tracked tasks, report health).
//! - [`SystemBuilder`]: add components with [`Dependencies`] and a [`Spec`]; replace or
//!   remove them for tests; `build()` validates everything at once.
//! - [`System::run`] for `main`, [`System::start`] for tests and embedding.
//! - [`Status`] (startup, readiness, liveness), [`EventStream`], [`Report`], [`ExitCodes`].
//!
//! # Shutdown, step by step
//!
//! On SIGTERM: readiness turns false at once ([`EventKind::ReadinessChanged`]); for the
//! *shutdown delay* (`SHUTDOWN_DELAY`, default 0, 5 s recommended on Kubernetes) nothing
//! stops, so load balancers can take the instance out; then components stop in reverse
//! dependency order, each within its own stop timeout, all within the global deadline
//! (`SHUTDOWN_TIMEOUT`, default 25 s, counted after the delay). A second SIGTERM or SIGINT
//! exits at once with 128 + the signal number. One structured [`Report`] is logged at exit.
//!
//! # Exit codes
//!
//! See [`ExitCodes`]: 0 clean, 1 component failure, 70 invalid system, 78 invalid
//! configuration, 124 deadline exceeded, 128 + N on a second signal.
//!
//! # Performance
//!
//! Measured with `cargo bench -p orderly --bench lifecycle` on a 2-core machine (medians):
//! starting 100 no-op components in a layered graph with fan-in takes 0.16 ms of framework time
//! (target: < 2 ms) and stopping them 0.14–0.17 ms; a 1,000-component chain starts in 1.7 ms and
//! stops in 1.5–2.0 ms; an idle process exits 0.6–0.8 ms after SIGTERM (target: < 10 ms).

mod builder;
mod component;
mod context;
mod deps;
mod error;
mod event;
mod health;
mod nested;
mod report;
mod settings;
mod signal;
mod supervisor;
mod system;

pub use builder::{BuildError, Necessity, Problem, Spec, SystemBuilder};
pub use component::{Component, FromFn, from_fn};
pub use context::Context;
pub use deps::{Dependencies, Key, Mapped, Optional, Resources, Within};
pub use error::{BoxError, Failure, FailureKind, InvalidConfig};
pub use event::{Event, EventKind, EventStream, Step};
pub use health::{ComponentStatus, Health, Phase, Probe, State, Status};
pub use nested::NestedError;
pub use report::{ComponentReport, ExitCodes, ExitReason, Outcome, Report};
pub use settings::{DurationError, Env, SHUTDOWN_DELAY, SHUTDOWN_TIMEOUT, parse_duration};
pub use signal::{SighupPolicy, Signal};
pub use system::{Running, StartError, System};

// The README's example is compiled with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
