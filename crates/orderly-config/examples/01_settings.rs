//! Typed settings from `FAB_*` variables layered over files, logged with the secret redacted.
//!
//! Reads `examples/config/settings.toml`, then `examples/config/local.toml` if it exists, then
//! the `FAB_*` variables (`FAB_DB__POOL_SIZE` sets `db.pool_size`); a later layer overrides an
//! earlier one key by key. A `show` component that depends on the config logs the settings
//! and stops the system (exit code 0).
//!
//! ```text
//! FAB_DB__PASSWORD=hunter2 FAB_DB__POOL_SIZE=20 cargo run -p orderly-config --example 01_settings
//! ```
//!
//! With invalid settings every problem is logged at once and the process exits 78 before
//! anything else starts:
//!
//! ```text
//! FAB_DB__POOL_SIZE=ten FAB_HTTP__TIMEOUT=soon FAB_HTTP__PROT=1 cargo run -p orderly-config --example 01_settings
//! ```

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use orderly::{BoxError, Context, System};
use orderly_config::{Config, Secret};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "only logged")]
struct Settings {
    name: String,
    http: Http,
    db: Db,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "only logged")]
struct Http {
    port: u16,
    #[serde(with = "orderly_config::duration")]
    timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "only logged")]
struct Db {
    url: String,
    #[serde(default)]
    password: Secret<String>,
    pool_size: u16,
    #[serde(with = "orderly_config::size")]
    max_payload: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_ansi(false).init();

    let files = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/config");
    let mut system = System::builder("settings").log_all_events();
    let config = system.add(
        "config",
        (),
        Config::<Settings>::builder("FAB")
            .file(files.join("settings.toml"))
            .file_optional(files.join("local.toml"))
            .strict()
            .build(),
    );
    system.add_fn(
        "show",
        config,
        |settings: Arc<Settings>, ctx: Context| async move {
            tracing::info!("settings: {settings:#?}");
            // Done: stop the system once it has started.
            let done = ctx.clone();
            ctx.spawn("done", async move {
                let _ = done.status().wait_for(|status| status.started).await;
                done.shutdown();
                Ok::<_, BoxError>(())
            });
            Ok::<_, BoxError>(())
        },
    );
    system.run().await
}
