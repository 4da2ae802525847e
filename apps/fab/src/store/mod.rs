//! Persistence: one SQL schema (`migrations/`) on SQLite or PostgreSQL.
//!
//! Every write is one transaction holding the effect *and* the stored response of the request
//! (idempotency), so a write is durable before the caller hears of it and a retry gets the very
//! same answer. Thread updates are optimistic: the snapshot row is updated only at the version
//! the writer read (`UPDATE … WHERE thread_key = $1 AND version = $2`); a writer that lost the
//! race gets [`StoreError::is_conflict`] and starts over from the stored state, so replicas can
//! serve the same thread.
//!
//! The two backends run the same SQL text (`$n` placeholders, `ON CONFLICT`, `BIGINT` and
//! `TEXT` only); [`Store`] holds either pool and runs each statement on the one it has.

mod error;

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{PgPool, SqlitePool};

pub use error::{StoreError, StoreErrorKind};

use crate::domain::apc::context::ThreadKey;
use crate::domain::apc::controller::ControllerConfig;
use crate::domain::apc::thread::{
    Disposition, Measurement, RunRecord, Thread, ThreadEvent, Transition,
};
use crate::domain::name::Name;

/// The embedded migrations (`apps/fab/migrations/`), for `fab migrate` and the embedded default.
#[must_use]
pub fn migrator() -> Migrator {
    let migration = |version: i64, description: &'static str, sql: &'static str| {
        Migration::new(
            version,
            Cow::Borrowed(description),
            MigrationType::Simple,
            Cow::Borrowed(sql),
            false,
        )
    };
    Migrator {
        migrations: Cow::Owned(vec![
            migration(1, "apc", include_str!("../../migrations/0001_apc.sql")),
            migration(2, "spec", include_str!("../../migrations/0002_spec.sql")),
            migration(3, "fdc", include_str!("../../migrations/0003_fdc.sql")),
            migration(
                4,
                "spec applied",
                include_str!("../../migrations/0004_spec_applied.sql"),
            ),
            migration(
                5,
                "fdc batches",
                include_str!("../../migrations/0005_fdc_batches.sql"),
            ),
            migration(
                6,
                "idempotency created at",
                include_str!("../../migrations/0006_idempotency_created_at.sql"),
            ),
            migration(7, "jobs", include_str!("../../migrations/0007_jobs.sql")),
        ]),
        ..Migrator::DEFAULT
    }
}

/// The database of a fab service: SQLite (embedded default) or PostgreSQL (scaled out).
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

#[derive(Clone, Debug)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store has: the same SQL on both.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

/// Inserts `$reply` in transaction `$tx` (a taken key is a conflict, via the primary key).
macro_rules! insert_reply {
    ($tx:ident, $reply:expr, $now_ms:expr) => {
        sqlx::query(
            "INSERT INTO idempotency (principal, idem_key, request_hash, status, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&$reply.principal)
        .bind(&$reply.key)
        .bind(&$reply.request_hash)
        .bind(i64::from($reply.status))
        .bind(&$reply.body)
        .bind(to_i64($now_ms))
        .execute(&mut *$tx)
        .await
        .map_err(db)?;
    };
}

/// Writes `$state` as version `$version` of one row, in transaction `$tx`, if nobody wrote it
/// since it was read at `$expected` (optimistic versioning): `$insert` creates the row when
/// `$expected` is `None`, `$update` moves it on only if it is still at `$expected`. A writer that
/// lost the race (no row written) returns a conflict. The SQL binds the row's `$keys`, then the
/// version, the state and the time (`$insert`); or the version, the state, the time, the keys
/// and the expected version (`$update`).
macro_rules! write_version {
    (
        $tx:ident,
        $expected:expr,
        insert: $insert:literal,
        update: $update:literal,
        keys: [$($key:expr),*],
        version: $version:expr,
        state: $state:expr,
        now_ms: $now_ms:expr
    ) => {{
        let updated = match $expected {
            None => sqlx::query($insert)
                $(.bind($key))*
                .bind($version)
                .bind($state)
                .bind(to_i64($now_ms))
                .execute(&mut *$tx)
                .await
                .map_err(db)?,
            Some(expected) => sqlx::query($update)
                .bind($version)
                .bind($state)
                .bind(to_i64($now_ms))
                $(.bind($key))*
                .bind(to_i64(expected))
                .execute(&mut *$tx)
                .await
                .map_err(db)?,
        };
        if updated.rows_affected() != 1 {
            return Err(StoreError::new(StoreErrorKind::Conflict));
        }
    }};
}

/// The version a write makes of a row read at `expected` (`None`: no row yet).
fn next_version(expected: Option<u64>) -> i64 {
    to_i64(expected.map_or(1, |v| v.saturating_add(1)))
}

/// The stored answer to a write, replayed for a retry with the same idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Who made the request (a retry by someone else is another request).
    pub principal: String,
    /// The client's idempotency key.
    pub key: String,
    /// A fingerprint of the request (method, path, body): the same key with another request is
    /// refused rather than answered with the first one's response.
    pub request_hash: String,
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: String,
}

/// A controller configuration as stored, with the SR limits of its scope.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredConfig {
    /// The validated configuration (its version included).
    pub config: ControllerConfig,
    /// Lower SR limit (mJ/cm²).
    pub sr_min: f64,
    /// Upper SR limit (mJ/cm²).
    pub sr_max: f64,
}

/// One thread change to commit: the new snapshot, its transitions, and what they record.
#[derive(Debug)]
pub struct ThreadCommit<'a> {
    /// The thread after the change.
    pub thread: &'a Thread,
    /// The version the change was computed from; `None` for a thread created by it.
    pub expected: Option<u64>,
    /// The transitions, in order.
    pub transitions: &'a [Transition],
    /// A run record to index by run id.
    pub run: Option<&'a RunRecord>,
    /// A measurement as received, with its disposition (an invalidation in `transitions` marks
    /// its measurement's row `invalidated`).
    pub measurement: Option<(&'a Measurement, Option<Disposition>)>,
    /// The response to store for the request.
    pub reply: Option<&'a Reply>,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::new(StoreErrorKind::Encode(e)))
}

fn parse<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::new(StoreErrorKind::Corrupt { what, source: e }))
}

fn db(e: sqlx::Error) -> StoreError {
    StoreError::from_sqlx(e)
}

impl Store {
    /// A store on a SQLite pool.
    #[must_use]
    pub fn sqlite(pool: SqlitePool) -> Self {
        Self {
            db: Db::Sqlite(pool),
        }
    }

    /// A store on a PostgreSQL pool.
    #[must_use]
    pub fn postgres(pool: PgPool) -> Self {
        Self {
            db: Db::Postgres(pool),
        }
    }

    /// Applies the pending migrations (the embedded default does it at start; scaled out,
    /// `fab migrate` does).
    ///
    /// # Errors
    /// A failed migration, naming it.
    pub async fn migrate(&self) -> Result<(), orderly_sql::Error> {
        let migrator = migrator();
        on_pool!(self, |pool| orderly_sql::apply(&migrator, pool)
            .await
            .map(drop))
    }

    /// The stored response for `principal`'s idempotency key `key`, if that write was made.
    ///
    /// # Errors
    /// The database failed.
    pub async fn reply(&self, principal: &str, key: &str) -> Result<Option<Reply>, StoreError> {
        let sql = "SELECT request_hash, status, body FROM idempotency WHERE principal = $1 AND idem_key = $2";
        let row: Option<(String, i64, String)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(principal)
            .bind(key)
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        Ok(row.map(|(request_hash, status, body)| Reply {
            principal: principal.to_owned(),
            key: key.to_owned(),
            request_hash,
            status: u16::try_from(status).unwrap_or(500),
            body,
        }))
    }

    /// Stores a response with no other effect (a write that changed nothing).
    ///
    /// # Errors
    /// [`StoreError::is_conflict`] when the key was stored meanwhile; the database failed.
    pub async fn put_reply(&self, reply: &Reply, now_ms: u64) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db)?;
            insert_reply!(tx, reply, now_ms);
            tx.commit().await.map_err(db)
        })
    }

    /// Deletes the stored replies written before `before_ms` (milliseconds since the epoch);
    /// returns how many. A retry of such an old write is then treated as a new request.
    ///
    /// # Errors
    /// The database failed.
    pub async fn prune_replies(&self, before_ms: u64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM idempotency WHERE created_at < $1";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(to_i64(before_ms))
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(db))
    }

    /// The thread `key` as stored, if it exists.
    ///
    /// # Errors
    /// The database failed or the stored state does not parse.
    pub async fn thread(&self, key: &ThreadKey) -> Result<Option<Thread>, StoreError> {
        let sql = "SELECT state FROM apc_threads WHERE thread_key = $1";
        let row: Option<(String,)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(key.to_string())
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        row.map(|(state,)| parse("thread state", &state))
            .transpose()
    }

    /// The transitions of thread `key` with versions after `after`, oldest first.
    ///
    /// # Errors
    /// The database failed or a stored transition does not parse.
    pub async fn transitions(
        &self,
        key: &ThreadKey,
        after: u64,
    ) -> Result<Vec<Transition>, StoreError> {
        let sql = "SELECT transition FROM apc_transitions WHERE thread_key = $1 AND version > $2 ORDER BY version";
        let rows: Vec<(String,)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(key.to_string())
            .bind(to_i64(after))
            .fetch_all(pool)
            .await
            .map_err(db)?);
        rows.iter().map(|(t,)| parse("transition", t)).collect()
    }

    /// The record of run `run`, if logged.
    ///
    /// # Errors
    /// The database failed or the stored record does not parse.
    pub async fn run(&self, run: &Name) -> Result<Option<RunRecord>, StoreError> {
        let sql = "SELECT record FROM apc_runs WHERE run = $1";
        let row: Option<(String,)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(run.as_str())
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        row.map(|(r,)| parse("run record", &r)).transpose()
    }

    /// The run measurement `id` was of, if that measurement was received.
    ///
    /// # Errors
    /// The database failed or the stored run id does not parse.
    pub async fn measurement_run(&self, id: &Name) -> Result<Option<Name>, StoreError> {
        let sql = "SELECT run FROM apc_measurements WHERE id = $1";
        let row: Option<(String,)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(id.as_str())
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        row.map(|(run,)| {
            Name::parse("run", run.clone()).map_err(|_| {
                StoreError::new(StoreErrorKind::Corrupt {
                    what: "measurement's run id",
                    source: serde::de::Error::custom(format!("not a name: {run:?}")),
                })
            })
        })
        .transpose()
    }

    /// The disposition stored with measurement `id` (what became of it on arrival, or
    /// `invalidated`), if that measurement was received.
    ///
    /// # Errors
    /// The database failed or the stored disposition does not parse.
    pub async fn measurement_disposition(
        &self,
        id: &Name,
    ) -> Result<Option<Disposition>, StoreError> {
        let sql = "SELECT disposition FROM apc_measurements WHERE id = $1";
        let row: Option<(Option<String>,)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(id.as_str())
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        row.and_then(|(d,)| d)
            .map(|d| parse("disposition", &d))
            .transpose()
    }

    /// How many runs are stored (all threads).
    ///
    /// # Errors
    /// The database failed.
    pub async fn run_count(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = on_pool!(self, |pool| sqlx::query_as("SELECT count(*) FROM apc_runs")
            .fetch_one(pool)
            .await
            .map_err(db)?);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Commits a thread change in one transaction: the snapshot (inserted, or updated only if
    /// still at `expected`), the transitions, the run and measurement rows, the reply.
    ///
    /// # Errors
    /// [`StoreError::is_conflict`] when another writer got there first (the thread moved on,
    /// the thread was created, the run id or the idempotency key is taken): read again and
    /// retry. The database failed.
    pub async fn commit_thread(&self, c: &ThreadCommit<'_>, now_ms: u64) -> Result<(), StoreError> {
        let key = c.thread.key().to_string();
        let state = json(c.thread)?;
        let version = to_i64(c.thread.version().0);
        let transitions = c
            .transitions
            .iter()
            .map(|t| Ok((to_i64(t.to.0), json(t)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        // An invalidated measurement is marked so in its row too, in the same transaction.
        let invalidated_disposition = json(&Disposition::Invalidated)?;
        let invalidated: Vec<&str> = c
            .transitions
            .iter()
            .filter_map(|t| match &t.event {
                ThreadEvent::Invalidated { measurement, .. } => Some(measurement.as_str()),
                _ => None,
            })
            .collect();
        let run = c
            .run
            .map(|r| Ok::<_, StoreError>((r.run.as_str(), json(r)?, r.at.as_millis())))
            .transpose()?;
        let measurement = c
            .measurement
            .map(|(m, d)| Ok::<_, StoreError>((m, json(m)?, d.map(|d| json(&d)).transpose()?)))
            .transpose()?;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db)?;
            write_version!(
                tx,
                c.expected,
                insert: "INSERT INTO apc_threads (thread_key, version, state, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (thread_key) DO NOTHING",
                update: "UPDATE apc_threads SET version = $1, state = $2, updated_at = $3 WHERE thread_key = $4 AND version = $5",
                keys: [&key],
                version: version,
                state: &state,
                now_ms: now_ms
            );
            for (to, transition) in &transitions {
                sqlx::query("INSERT INTO apc_transitions (thread_key, version, transition, at) VALUES ($1, $2, $3, $4)")
                    .bind(&key)
                    .bind(*to)
                    .bind(transition)
                    .bind(to_i64(now_ms))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            for id in &invalidated {
                sqlx::query("UPDATE apc_measurements SET disposition = $1 WHERE id = $2")
                    .bind(&invalidated_disposition)
                    .bind(*id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            if let Some((run, record, at)) = &run {
                sqlx::query(
                    "INSERT INTO apc_runs (run, thread_key, record, at) VALUES ($1, $2, $3, $4)",
                )
                .bind(*run)
                .bind(&key)
                .bind(record)
                .bind(to_i64(*at))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            if let Some((m, body, disposition)) = &measurement {
                sqlx::query(
                    "INSERT INTO apc_measurements (id, run, thread_key, measurement, disposition, at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(m.id.as_str())
                .bind(m.run.as_str())
                .bind(&key)
                .bind(body)
                .bind(disposition.as_deref())
                .bind(to_i64(m.at.as_millis()))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            if let Some(reply) = c.reply {
                insert_reply!(tx, reply, now_ms);
            }
            tx.commit().await.map_err(db)
        })
    }

    /// The newest configuration of `scope` (`product/technology/layer`), if any.
    ///
    /// # Errors
    /// The database failed or the stored configuration does not parse.
    pub async fn latest_config(&self, scope: &str) -> Result<Option<StoredConfig>, StoreError> {
        let sql = "SELECT config, sr_min, sr_max FROM apc_configs WHERE scope = $1 ORDER BY version DESC LIMIT 1";
        let row: Option<(String, String, String)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(scope)
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        row.map(|(config, min, max)| {
            Ok(StoredConfig {
                config: parse("controller config", &config)?,
                sr_min: parse("sr_min", &min)?,
                sr_max: parse("sr_max", &max)?,
            })
        })
        .transpose()
    }

    /// Stores a new configuration version of `scope` with the request's reply.
    ///
    /// # Errors
    /// [`StoreError::is_conflict`] when that version (or the idempotency key) was taken
    /// meanwhile: read the latest again and retry. The database failed.
    pub async fn insert_config(
        &self,
        scope: &str,
        config: &StoredConfig,
        by: &str,
        reply: Option<&Reply>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let body = json(&config.config)?;
        let (min, max) = (json(&config.sr_min)?, json(&config.sr_max)?);
        let version = i64::from(config.config.version().0);
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db)?;
            sqlx::query(
                "INSERT INTO apc_configs (scope, version, config, sr_min, sr_max, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(scope)
            .bind(version)
            .bind(&body)
            .bind(&min)
            .bind(&max)
            .bind(by)
            .bind(to_i64(now_ms))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            if let Some(reply) = reply {
                insert_reply!(tx, reply, now_ms);
            }
            tx.commit().await.map_err(db)
        })
    }
}

mod applied;
mod fdc;
mod jobs;
mod spec;
pub use fdc::{BatchRecord, MonitorCommit, StoredBatch};
pub use jobs::QueueCommit;
pub use spec::SpecCommit;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// Every file in `migrations/` is in the migrator, numbered as its name says, once: a
    /// migration file that is not listed would never run.
    #[test]
    fn the_migrator_lists_every_migration_file_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<i64> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| {
                let name = entry.unwrap().file_name().into_string().unwrap();
                name.split('_').next().unwrap().parse().unwrap()
            })
            .collect();
        files.sort_unstable();
        let listed: Vec<i64> = super::migrator().iter().map(|m| m.version).collect();
        assert_eq!(listed, files);
    }
}
