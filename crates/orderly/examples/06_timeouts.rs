//! Timeouts: a stop that hangs is abandoned and named, the components below it still stop, and
//! one global deadline bounds the whole shutdown.
//!
//! `db → cache → http` and `db → worker`. `http`'s stop hangs, but it has its own
//! `stop_timeout` (300 ms): it is abandoned, then `cache` stops normally. `worker`'s stop hangs
//! too and has no timeout of its own, so the global `shutdown_timeout` (1 s) ends the shutdown:
//! the report names `worker` as still stopping, `db` (below it) is not stopped, and the exit
//! code is 124. It ends by itself, in about a second:
//!
//! ```text
//! cargo run -p orderly --example 06_timeouts; echo "exit code $?"
//! ```

use std::process::ExitCode;
use std::time::Duration;

use orderly::{BoxError, Component, Context, Spec, System};

/// A component whose stop never returns (a drain that waits on a peer that went away).
struct Stuck;

impl Component for Stuck {
    type Deps = ();
    type Resource = ();

    async fn start(&mut self, (): (), _ctx: Context) -> Result<(), BoxError> {
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), BoxError> {
        std::future::pending().await
    }
}

#[tokio::main]
#[allow(clippy::print_stdout, reason = "printing the report is the point")]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt().with_target(false).init();

    let mut system = System::builder("timeouts")
        .shutdown_timeout(Duration::from_secs(1))
        .log_all_events();
    let db = system.add_fn("db", (), |(), _ctx| async { Ok::<_, BoxError>(()) });
    let cache = system.add_fn("cache", db, |(), _ctx| async { Ok::<_, BoxError>(()) });
    let http = Spec::new("http").stop_timeout(Duration::from_millis(300));
    system.add(http, cache, Stuck);
    system.add("worker", db, Stuck);

    let running = system.build()?.start().await?;
    // In `main`, `run()` would exit the process at the deadline; in-process we get the report.
    let report = running.stop().await;
    println!("{report}");
    Ok(ExitCode::from(report.exit_code))
}
