//! PostgreSQL and SQLite connection pools ([sqlx](https://docs.rs/sqlx)) as [`orderly`]
//! components (twelve-factor IV: the database is an attached resource, found by URL).
//!
//! ```no_run
//! use std::sync::Arc;
//! use orderly::{BoxError, Env, System};
//! use orderly_config::Config;
//! use orderly_sql::{PoolSettings, SqlPool};
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     let mut system = System::builder("orders").env(Env::process());
//!     // DATABASE_URL (required), DATABASE_MAX_CONNECTIONS, DATABASE_HEALTH_INTERVAL, …
//!     let settings = system.add("settings", (), Config::<PoolSettings>::builder("DATABASE").build());
//!     let db = system.add("db", settings.map(|s: &Arc<PoolSettings>| PoolSettings::clone(s)), SqlPool::postgres());
//!     // A component using the pool: it stops before the pool closes.
//!     system.add_fn("report", db, |pool: sqlx::PgPool, _ctx| async move {
//!         let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM pg_stat_activity").fetch_one(&pool).await?;
//!         tracing::info!(connections = n, "database is up");
//!         Ok::<_, BoxError>(())
//!     });
//!     system.run().await
//! }
//! ```
//!
//! # Lifecycle
//!
//! - **Start**: [`SqlPool`] connects with exponential backoff
//!   ([`connect_backoff`](PoolSettings::connect_backoff) doubling up to
//!   [`connect_backoff_max`](PoolSettings::connect_backoff_max)) until
//!   [`connect_timeout`](PoolSettings::connect_timeout), logging every failed attempt with the
//!   host, port and database. An unreachable database fails the start with an [`Error`] that
//!   names the host, how many attempts were made and the last cause; a refusal (wrong
//!   password, no such database) fails it at once. Keep the connect timeout below the
//!   component's start timeout, which cancels the start outright.
//! - **Running**: a tracked task runs `SELECT 1` every
//!   [`health_interval`](PoolSettings::health_interval): while the database is unreachable the
//!   component is unhealthy and the system not ready (`/readyz` 503); when it returns, healthy
//!   and ready again, with no restart. Liveness never depends on the database.
//! - **Stop**: the pool closes only after every component that depends on it has stopped,
//!   so a listener or a transaction held by a dependent is released before the close waits
//!   for its connection.
//! - **Migrations**: [`migrate`] is the work of an admin one-off task
//!   ([`SystemBuilder::add_task`](orderly::SystemBuilder::add_task)), run as its own process
//!   with the service's configuration; its result is the exit code.
//!
//! # Settings and secrets
//!
//! [`PoolSettings`] is deserialized by the service's configuration; the variables it reads
//! with the prefix `DATABASE` are listed there. The URL is a [`DatabaseUrl`]: checked when
//! read, shown with its password masked in `Debug`, logs and errors.
//!
//! # Backends
//!
//! Cargo features `postgres` ([`sqlx::PgPool`]) and `sqlite` ([`sqlx::SqlitePool`]; the file
//! is created if missing, WAL mode, a busy timeout), both on by default; `tls-rustls` for TLS
//! to PostgreSQL (or sqlx's own `tls-native-tls`, enabled in the service's `Cargo.toml`). One
//! generic component serves both ([`Backend`]).

mod backend;
mod connect;
mod error;
mod health;
mod migrate;
mod pool;
mod settings;
mod url;

pub use backend::{Backend, ConnectOptions};
pub use error::{Error, ErrorKind};
pub use migrate::{Applied, MigrateFuture, apply, migrate};
pub use pool::SqlPool;
pub use settings::PoolSettings;
pub use url::{DatabaseUrl, InvalidUrl};
