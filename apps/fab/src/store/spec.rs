//! The spec registry's rows.

use super::{Db, Reply, Store, StoreError, StoreErrorKind, db, json, next_version, parse, to_i64};
use crate::domain::spec::{Acknowledgement, Revision, SpecChange, SpecRegistry};

/// One registry change to commit.
#[derive(Debug)]
pub struct SpecCommit<'a> {
    /// The registry after the change.
    pub registry: &'a SpecRegistry,
    /// The snapshot version the change was computed from; `None` for the first change.
    pub expected: Option<u64>,
    /// The log entries the change added.
    pub changes: &'a [(Revision, SpecChange)],
    /// An acknowledgement the change recorded.
    pub ack: Option<&'a Acknowledgement>,
    /// Who made it.
    pub principal: &'a str,
    /// The response to store for the request.
    pub reply: Option<&'a Reply>,
}

impl Store {
    /// The spec registry and its snapshot version (`None`: nothing stored yet, an empty one).
    ///
    /// # Errors
    /// The database failed or the snapshot does not parse.
    pub async fn spec_registry(&self) -> Result<(SpecRegistry, Option<u64>), StoreError> {
        let sql = "SELECT state, version FROM spec_registry WHERE id = 1";
        let row: Option<(String, i64)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        match row {
            Some((state, version)) => Ok((
                parse("spec registry", &state)?,
                Some(u64::try_from(version).unwrap_or(0)),
            )),
            None => Ok((SpecRegistry::new(), None)),
        }
    }

    /// Commits a registry change in one transaction: the snapshot (only if still at
    /// `expected`), the log entries, the acknowledgement, the reply.
    ///
    /// # Errors
    /// [`StoreError::is_conflict`] when another writer changed the registry first. The
    /// database failed.
    pub async fn commit_spec(&self, c: &SpecCommit<'_>, now_ms: u64) -> Result<(), StoreError> {
        let state = json(c.registry)?;
        let changes = c
            .changes
            .iter()
            .map(|(rev, change)| Ok((to_i64(rev.0), json(change)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db)?;
            write_version!(
                tx,
                c.expected,
                insert: "INSERT INTO spec_registry (id, version, state, updated_at) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING",
                update: "UPDATE spec_registry SET version = $1, state = $2, updated_at = $3 WHERE id = 1 AND version = $4",
                keys: [],
                version: next_version(c.expected),
                state: &state,
                now_ms: now_ms
            );
            for (revision, change) in &changes {
                sqlx::query("INSERT INTO spec_log (revision, change, principal, at) VALUES ($1, $2, $3, $4)")
                    .bind(*revision)
                    .bind(change)
                    .bind(c.principal)
                    .bind(to_i64(now_ms))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            if let Some(ack) = c.ack {
                sqlx::query(
                    "INSERT INTO spec_acks (fab, version, principal, at) VALUES ($1, $2, $3, $4) ON CONFLICT (fab, version) DO NOTHING",
                )
                .bind(ack.fab.as_str())
                .bind(i64::from(ack.version.0))
                .bind(c.principal)
                .bind(to_i64(ack.at.as_millis()))
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
}
