//! Restart in-process: a component asks for it (here: its configuration "changed"), the whole
//! system stops in reverse order and starts again in order, in the same process.
//!
//! `config` watches its (simulated) file: half a second after the first start it sees a change
//! and calls `ctx.restart()`; every component stops and starts again, and `server` receives
//! version 2. Half a second later `config` calls `ctx.shutdown()`. The events (`restarting`,
//! then stops and starts) and the final report (`restarts=1`) are logged. It ends by itself:
//!
//! ```text
//! cargo run -p orderly --example 05_restart
//! ```

use std::process::ExitCode;
use std::time::Duration;

use orderly::{BoxError, Component, Context, System};

#[derive(Clone, Debug)]
struct Config {
    version: u32,
}

/// Loads the configuration and watches it; the same value is started again after a restart,
/// so it remembers which version it loaded last.
struct ConfigFile {
    version: u32,
}

impl Component for ConfigFile {
    type Deps = ();
    type Resource = Config;

    async fn start(&mut self, (): (), ctx: Context) -> Result<Config, BoxError> {
        self.version += 1;
        let first = self.version == 1;
        let watcher = ctx.clone();
        ctx.spawn("watch", async move {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                () = watcher.stopping() => return Ok::<_, BoxError>(()),
            }
            if first {
                tracing::info!("config: the file changed, restarting");
                watcher.restart();
            } else {
                tracing::info!("config: done, shutting down");
                watcher.shutdown();
            }
            Ok(())
        });
        Ok(Config {
            version: self.version,
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_target(false).init();

    let mut system = System::builder("restart").log_all_events();
    let config = system.add("config", (), ConfigFile { version: 0 });
    system.add_fn(
        "server",
        config.map(|c| c.version),
        |version, _ctx| async move {
            tracing::info!("server: serving with config v{version}");
            Ok::<_, BoxError>(())
        },
    );
    system.run().await
}
