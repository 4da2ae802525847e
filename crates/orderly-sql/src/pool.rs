//! The pool component, one for every [`Backend`].

use std::fmt;

use orderly::{BoxError, Component, Context, InvalidConfig};
use sqlx::Pool;

use crate::backend::Backend;
use crate::connect::connect;
use crate::error::{Error, ErrorKind};
use crate::health::Checker;
use crate::settings::PoolSettings;

/// A connection pool as an orderly component: its dependencies are the [`PoolSettings`], its
/// resource the [`sqlx::Pool`] (a [`sqlx::PgPool`] or [`sqlx::SqlitePool`]).
///
/// - **Start**: connects with exponential backoff until
///   [`connect_timeout`](PoolSettings::connect_timeout), logging each failed attempt. An
///   unreachable database fails the start naming the host, the number of attempts and the
///   last cause; a refusal (wrong password, no such database) fails it at once; settings that
///   cannot work fail it as invalid configuration (exit code 78).
/// - **Running**: a tracked task runs `SELECT 1` every
///   [`health_interval`](PoolSettings::health_interval) and reports the component unhealthy
///   while the database is unreachable (so the system is not ready), healthy again when it
///   returns, and degraded when the database answers but the pool has no free connection.
///   The process keeps running; liveness is not affected.
/// - **Stop**: closes the pool, after every component that depends on it has stopped (the
///   graph guarantees it), so a dependent's connection is back before the close waits for it.
///
/// ```no_run
/// use orderly::System;
/// use orderly_sql::{PoolSettings, SqlPool};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let settings = PoolSettings::new("postgres://postgres@127.0.0.1:5432/orders".parse()?);
/// let mut system = System::builder("orders");
/// let settings = system.add_fn("settings", (), move |(), _ctx| {
///     let settings = settings.clone();
///     async move { Ok::<_, std::convert::Infallible>(settings) }
/// });
/// let db = system.add("db", settings, SqlPool::postgres());
/// let running = system.build()?.start().await?;
/// let pool: sqlx::PgPool = running.resource(db).ok_or("no pool")?;
/// sqlx::query("SELECT 1").execute(&pool).await?;
/// running.stop().await;
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct SqlPool<DB: Backend> {
    /// The pool of the current run, closed at stop.
    pool: Option<Pool<DB>>,
}

impl<DB: Backend> SqlPool<DB> {
    /// A pool component for the backend `DB`; see also [`SqlPool::postgres`] and
    /// [`SqlPool::sqlite`].
    pub fn new() -> Self {
        Self { pool: None }
    }
}

impl<DB: Backend> Default for SqlPool<DB> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "postgres")]
impl SqlPool<sqlx::Postgres> {
    /// A PostgreSQL pool component (resource: [`sqlx::PgPool`]).
    pub fn postgres() -> Self {
        Self::new()
    }
}

#[cfg(feature = "sqlite")]
impl SqlPool<sqlx::Sqlite> {
    /// A SQLite pool component (resource: [`sqlx::SqlitePool`]): the file is created if
    /// missing and opened in WAL mode, with the settings'
    /// [`busy_timeout`](PoolSettings::busy_timeout).
    pub fn sqlite() -> Self {
        Self::new()
    }
}

impl<DB: Backend> fmt::Debug for SqlPool<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlPool")
            .field("backend", &DB::LABEL)
            .field("open", &self.pool.as_ref().is_some_and(|p| !p.is_closed()))
            .finish()
    }
}

impl<DB: Backend> Component for SqlPool<DB> {
    type Deps = PoolSettings;
    type Resource = Pool<DB>;

    /// Connects; see [`SqlPool`]. When the system begins shutting down meanwhile, the start is
    /// cancelled and no pool is left behind.
    async fn start(&mut self, settings: PoolSettings, ctx: Context) -> Result<Pool<DB>, BoxError> {
        let mut problems = settings.problems();
        let options = DB::connect_options(&settings).map_err(|problem| problems.push(problem));
        let options = match options {
            Ok(options) if problems.is_empty() => options,
            _ => {
                return Err(InvalidConfig::new(Error::new(ErrorKind::InvalidSettings {
                    backend: DB::LABEL,
                    problems,
                }))
                .into());
            }
        };
        let target = DB::target(&options);
        let pool = connect::<DB>(&settings, &options, &target).await?;
        let checker = Checker {
            pool: pool.clone(),
            options,
            target,
            interval: settings.health_interval,
            timeout: settings.health_timeout,
        };
        let health = ctx.clone();
        ctx.spawn("health", checker.run(health));
        self.pool = Some(pool.clone());
        Ok(pool)
    }

    /// Closes the pool: waits until every connection is back (the dependents have stopped, so
    /// theirs are), then closes them.
    async fn stop(&mut self) -> Result<(), BoxError> {
        if let Some(pool) = self.pool.take() {
            pool.close().await;
        }
        Ok(())
    }
}
