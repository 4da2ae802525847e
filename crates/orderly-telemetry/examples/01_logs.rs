//! Logs as an event stream on stdout, flushed last: a service whose `producer` component logs
//! numbered lines as fast as it can. The fixture of the flush tests (`tests/it/flush.rs`).
//!
//! `main` is phases: telemetry (before anything else, so every later error is logged), then
//! configuration, build, run. Every lifecycle event and the shutdown report are log lines;
//! stdout carries nothing else.
//!
//! ```text
//! cargo run -p orderly-telemetry --example 01_logs                # pretty on a terminal; Ctrl-C
//! cargo run -p orderly-telemetry --example 01_logs | cat          # JSON lines in a pipe
//! LINES=100000 cargo run -p orderly-telemetry --example 01_logs | (sleep 2; wc -l)
//! ```
//!
//! | variable | effect |
//! |---|---|
//! | `LINES=N` | `producer` logs `producing` in a span, N lines `line` with `n` = 1..=N, then writes `logged N lines` on stderr |
//! | `STOP_HANG=1` | `producer`'s stop writes `stopping` on stderr and never returns (forced exits) |
//! | `LOG_FORMAT`, `LOG_LEVEL`, `RUST_LOG` | read by [`Logs`]; an invalid value exits 78 |
//! | `SHUTDOWN_DELAY`, `SHUTDOWN_TIMEOUT` | read by orderly |
//!
//! The messages on stderr are cues for the tests, which read stdout slowly on purpose.

use std::process::ExitCode;

use orderly::{BoxError, Component, Context, Env, System};
use orderly_telemetry::Logs;

/// Logs `lines` numbered lines, then serves until asked to stop.
struct Producer {
    lines: u64,
    hang_on_stop: bool,
}

impl Component for Producer {
    type Deps = ();
    type Resource = ();

    async fn start(&mut self, (): (), ctx: Context) -> Result<(), BoxError> {
        let (lines, stopping) = (self.lines, ctx.clone());
        ctx.spawn("produce", async move {
            if lines > 0 {
                tracing::info_span!("produce", lines).in_scope(|| tracing::info!("producing"));
                for n in 1..=lines {
                    tracing::info!(n, "line");
                }
                eprintln!("logged {lines} lines");
            }
            stopping.stopping().await;
            Ok::<_, BoxError>(())
        });
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), BoxError> {
        if self.hang_on_stop {
            eprintln!("stopping");
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let env = Env::process();

    // 1. Telemetry. Without a logger, stderr is the only place left to say why.
    let logs = match Logs::init(&env) {
        Ok(logs) => logs,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(error.exit_code());
        }
    };

    // 2. Configuration: from here on, errors are log lines.
    let lines = match env.get("LINES").map(|text| text.parse::<u64>()) {
        None => 0,
        Some(Ok(lines)) => lines,
        Some(Err(error)) => {
            tracing::error!(variable = "LINES", %error, "invalid configuration");
            return ExitCode::from(78);
        }
    };
    let hang_on_stop = env.get("STOP_HANG").is_some_and(|value| value == "1");

    // 3. Build: `attach` adds the `logs` foundation and logs every lifecycle event.
    let mut system = logs.attach(System::builder("logs").env(env));
    system.add(
        "producer",
        (),
        Producer {
            lines,
            hang_on_stop,
        },
    );

    // 4. Run until SIGTERM; the report is the last line. `logs` flushes once more on return.
    system.run().await
}
