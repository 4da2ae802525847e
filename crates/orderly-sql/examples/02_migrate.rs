//! Migrations as an admin one-off task (twelve-factor XII): the same configuration and pool
//! as the service, the task instead of the service's components; exit code 0 when the
//! database is up to date, 1 when a migration failed.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo run -p orderly-sql --example 02_migrate     # applies 1 and 2
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo run -p orderly-sql --example 02_migrate     # applies nothing
//! ```
//!
//! The migrations are in `examples/migrations`, read at run time with `Migrator::new`; a
//! service would rather embed them with `sqlx::migrate!("./migrations")` (sqlx's `macros`
//! feature).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use orderly::{Env, System};
use orderly_config::Config;
use orderly_sql::{PoolSettings, SqlPool};
use sqlx::migrate::Migrator;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(std::io::stdout)
        .init();

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/migrations");
    let migrator = match Migrator::new(dir.as_path()).await {
        Ok(migrator) => migrator,
        Err(error) => {
            tracing::error!(%error, dir = %dir.display(), "cannot read the migrations");
            return ExitCode::FAILURE;
        }
    };

    let env = Env::process();
    let mut system = System::builder("migrate").env(env.clone()).log_all_events();
    let settings = system.add(
        "settings",
        (),
        Config::<PoolSettings>::builder("DATABASE").env(env).build(),
    );
    let db = system.add(
        "db",
        settings.map(|s: &Arc<PoolSettings>| PoolSettings::clone(s)),
        SqlPool::postgres(),
    );
    system.add_task("migrate", db, orderly_sql::migrate(migrator));
    system.run().await
}
