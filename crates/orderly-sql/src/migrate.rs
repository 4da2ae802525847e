//! Migrations as an admin one-off task (twelve-factor XII).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use orderly::Context;
use sqlx::Pool;
use sqlx::migrate::{Migrate, Migrator};

use crate::backend::Backend;
use crate::error::{Error, ErrorKind};

/// A migration that one run applied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// Its version (the number its file name starts with).
    pub version: i64,
    /// Its description (the rest of its file name).
    pub description: String,
}

/// The future of one run of the task [`migrate`] returns.
pub type MigrateFuture = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// The work of an admin task that applies `migrator`'s pending migrations, for
/// [`SystemBuilder::add_task`](orderly::SystemBuilder::add_task) with the pool as dependency.
///
/// Each applied migration is logged (`version`, `description`), then how many were applied; a
/// database already up to date applies nothing. A failure ends the task with an [`Error`]
/// naming the database and the migration, and the process with the component-failure exit code
/// (1). A stop signal does not interrupt a migration: it runs to its end (each runs in a
/// transaction) within the stop timeouts.
///
/// The migrations come from `sqlx::migrate!("./migrations")` (embedded at compile time, sqlx's
/// `macros` feature) or from [`Migrator::new`] (read at run time).
///
/// ```no_run
/// use orderly::System;
/// use orderly_sql::{PoolSettings, SqlPool};
///
/// # async fn run() -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
/// let migrator = sqlx::migrate::Migrator::new(std::path::Path::new("./migrations")).await?;
/// let settings = PoolSettings::new("postgres://postgres@127.0.0.1:5432/orders".parse()?);
/// let mut system = System::builder("migrate");
/// let settings = system.add_fn("settings", (), move |(), _ctx| {
///     let settings = settings.clone();
///     async move { Ok::<_, std::convert::Infallible>(settings) }
/// });
/// let db = system.add("db", settings, SqlPool::postgres());
/// system.add_task("migrate", db, orderly_sql::migrate(migrator));
/// Ok(system.run().await) // 0 when migrated, 1 when a migration failed
/// # }
/// ```
pub fn migrate<DB>(
    migrator: Migrator,
) -> impl FnMut(Pool<DB>, Context) -> MigrateFuture + Send + 'static
where
    DB: Backend,
    DB::Connection: Migrate,
{
    let migrator = Arc::new(migrator);
    move |pool: Pool<DB>, _ctx: Context| {
        let migrator = Arc::clone(&migrator);
        Box::pin(async move {
            let target = DB::target(&pool.connect_options());
            let applied = apply(&migrator, &pool).await?;
            for migration in &applied {
                tracing::info!(
                    database = target,
                    version = migration.version,
                    description = migration.description,
                    "migration applied"
                );
            }
            tracing::info!(
                database = target,
                applied = applied.len(),
                known = migrator.iter().count(),
                "database is up to date"
            );
            Ok(())
        })
    }
}

/// Applies `migrator`'s pending migrations to the database of `pool` and returns those newly
/// applied while it ran, in order; empty when the database was up to date. The task of [`migrate`] runs it.
///
/// It knows nothing of shutdown: once called, it runs to its end (or its error). sqlx applies
/// each migration in a transaction and, on PostgreSQL, holds an advisory lock meanwhile, so two
/// processes migrating at once apply each migration once.
pub async fn apply<DB>(migrator: &Migrator, pool: &Pool<DB>) -> Result<Vec<Applied>, Error>
where
    DB: Backend,
    DB::Connection: Migrate,
{
    let failed = |reason: String| {
        Error::new(ErrorKind::Migration {
            target: DB::target(&pool.connect_options()),
            reason,
        })
    };
    let before = applied_versions(pool).await.map_err(&failed)?;
    migrator
        .run(pool)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let after = applied_versions(pool).await.map_err(&failed)?;
    Ok(migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .filter(|m| after.contains(&m.version) && !before.contains(&m.version))
        .map(|m| Applied {
            version: m.version,
            description: m.description.to_string(),
        })
        .collect())
}

/// The versions the database has applied (creating sqlx's bookkeeping table if missing).
async fn applied_versions<DB>(pool: &Pool<DB>) -> Result<HashSet<i64>, String>
where
    DB: Backend,
    DB::Connection: Migrate,
{
    let mut connection = pool.acquire().await.map_err(|e| e.to_string())?;
    connection
        .ensure_migrations_table()
        .await
        .map_err(|e| e.to_string())?;
    let applied = connection
        .list_applied_migrations()
        .await
        .map_err(|e| e.to_string())?;
    Ok(applied.into_iter().map(|m| m.version).collect())
}
