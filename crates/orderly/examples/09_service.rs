//! A service as a process manager sees it: the fixture of the real-process tests
//! (`tests/it/process.rs`) and of the benchmarks.
//!
//! Four components in a chain, `config → db → cache → http`; `http` spawns a task that serves
//! until it is asked to stop. `main` returns `system.run().await`, so orderly owns the signals
//! and the exit code. Every lifecycle event is logged as one JSON line on stdout
//! (`log_all_events()`), ending with the `shutdown_report` line; nothing else is printed. The
//! `system_started` line is the readiness marker.
//!
//! Run it, then press Ctrl-C (or `kill -TERM <pid>`):
//!
//! ```text
//! cargo run -p orderly --example 09_service
//! ```
//!
//! Environment:
//!
//! | variable | effect |
//! |---|---|
//! | `STOP_HANG=1` | `http`'s stop never returns (for the second-signal and deadline tests) |
//! | `SIGHUP_RESTART=1` | SIGHUP restarts the system in-process ([`SighupPolicy::Restart`]) |
//! | `SHUTDOWN_DELAY`, `SHUTDOWN_TIMEOUT` | read by orderly itself, e.g. `500ms`, `5s`; an invalid value exits 78 |
//! | `NOTIFY_SOCKET`, `WATCHDOG_USEC` | read by orderly itself: systemd's notify protocol (READY=1, STOPPING=1, WATCHDOG=1) |

use std::process::ExitCode;

use orderly::{BoxError, Component, Context, SighupPolicy, System};

#[derive(Clone, Debug)]
struct Config {
    database_url: String,
}

/// Stand-ins for a connection pool and a cache in front of it: nothing reads them.
#[derive(Clone, Debug)]
#[allow(dead_code, reason = "a stand-in")]
struct Pool(String);

#[derive(Clone, Debug)]
#[allow(dead_code, reason = "a stand-in")]
struct Cache(Pool);

/// Serves until asked to stop; with `hang_on_stop`, its stop never returns.
struct Http {
    hang_on_stop: bool,
}

impl Component for Http {
    type Deps = Cache;
    type Resource = ();

    async fn start(&mut self, _cache: Cache, ctx: Context) -> Result<(), BoxError> {
        let stopping = ctx.clone();
        ctx.spawn("serve", async move {
            stopping.stopping().await;
            Ok::<_, BoxError>(())
        });
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), BoxError> {
        if self.hang_on_stop {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

fn enabled(variable: &str) -> bool {
    std::env::var(variable).is_ok_and(|value| value == "1")
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(std::io::stdout)
        .init();

    let sighup = if enabled("SIGHUP_RESTART") {
        SighupPolicy::Restart
    } else {
        SighupPolicy::Ignore
    };
    let mut system = System::builder("service").sighup(sighup).log_all_events();
    let config = system.add_fn("config", (), |(), _ctx| async {
        Ok::<_, BoxError>(Config {
            database_url: "postgres://localhost/service".into(),
        })
    });
    let db = system.add_fn(
        "db",
        config.map(|c| c.database_url.clone()),
        |url, _ctx| async { Ok::<_, BoxError>(Pool(url)) },
    );
    let cache = system.add_fn("cache", db, |pool, _ctx| async {
        Ok::<_, BoxError>(Cache(pool))
    });
    system.add(
        "http",
        cache,
        Http {
            hang_on_stop: enabled("STOP_HANG"),
        },
    );
    system.run().await
}
