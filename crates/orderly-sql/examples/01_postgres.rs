//! A service on PostgreSQL: configuration from the environment → the pool → a component that
//! uses it. Stop it with Ctrl-C: the recorder stops first, then the pool closes.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo run -p orderly-sql --example 01_postgres
//! ```
//!
//! Every lifecycle event is a JSON line on stdout. Try stopping the database while it runs:
//! the `db` component turns unhealthy (a `health_changed` event, readiness false) and healthy
//! again when the database is back. A wrong port fails the start after `DATABASE_CONNECT_TIMEOUT`
//! naming the host and the attempts; no `DATABASE_URL` exits 78.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use orderly::{BoxError, Component, Context, Env, System};
use orderly_config::Config;
use orderly_sql::{PoolSettings, SqlPool};
use sqlx::PgPool;

/// Records a heartbeat row every second; the kind of component that holds the pool.
struct Recorder;

impl Component for Recorder {
    type Deps = PgPool;
    type Resource = ();

    async fn start(&mut self, pool: PgPool, ctx: Context) -> Result<(), BoxError> {
        sqlx::query("CREATE TEMPORARY TABLE IF NOT EXISTS beats (at timestamptz NOT NULL)")
            .execute(&pool)
            .await?;
        let stopping = ctx.clone();
        ctx.spawn("beat", async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    () = stopping.stopping() => return Ok::<_, BoxError>(()),
                    _ = tick.tick() => {}
                }
                // An outage is the pool's to report (unhealthy); the recorder just skips a beat.
                match sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_stat_activity")
                    .fetch_one(&pool)
                    .await
                {
                    Ok(sessions) => tracing::info!(sessions, "beat"),
                    Err(error) => tracing::warn!(%error, "beat skipped"),
                }
            }
        });
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(std::io::stdout)
        .init();

    let env = Env::process();
    let mut system = System::builder("recorder")
        .env(env.clone())
        .log_all_events();
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
    system.add("recorder", db, Recorder);
    system.run().await
}
