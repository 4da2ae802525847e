//! The smallest service: a config and a "server" that ticks until it is asked to stop.
//!
//! `main` returns `system.run().await`: orderly owns the signals, starts `config` then
//! `server`, and on Ctrl-C (SIGINT) or SIGTERM stops them in reverse and returns the exit code.
//! This example runs until you send one of those signals:
//!
//! ```text
//! cargo run -p orderly --example 01_minimal
//! # … a tick a second; press Ctrl-C to see the graceful stop
//! ```

use std::process::ExitCode;
use std::time::Duration;

use orderly::{BoxError, Context, System};

#[derive(Clone, Debug)]
struct Config {
    tick: Duration,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_target(false).init();

    let mut system = System::builder("minimal").log_all_events();
    let config = system.add_fn("config", (), |(), _ctx| async {
        Ok::<_, BoxError>(Config {
            tick: Duration::from_secs(1),
        })
    });
    system.add_fn(
        "server",
        config,
        |config: Config, ctx: Context| async move {
            // The work runs in a task the component owns: its stop waits for the task to end.
            let stopping = ctx.clone();
            ctx.spawn("ticks", async move {
                let mut tick = tokio::time::interval(config.tick);
                for n in 1.. {
                    tokio::select! {
                        _ = tick.tick() => tracing::info!(n, "tick"),
                        () = stopping.stopping() => break,
                    }
                }
                tracing::info!("server: finished the work in hand");
                Ok::<_, BoxError>(())
            });
            Ok::<_, BoxError>(())
        },
    );

    system.run().await
}
