//! The spec release this fab applied (see [`crate::service::spec_sync`]).

use super::{Db, Store, StoreError, db, json, parse, to_i64};
use crate::domain::name::Name;
use crate::domain::spec::{Revision, SpecSet};

impl Store {
    /// The spec registry's snapshot version (`None`: nothing stored yet): it moves with every
    /// change, so a reader can tell whether its copy is current with one small query.
    ///
    /// # Errors
    /// The database failed.
    pub async fn spec_registry_version(&self) -> Result<Option<u64>, StoreError> {
        let sql = "SELECT version FROM spec_registry WHERE id = 1";
        let row: Option<(i64,)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        Ok(row.map(|(v,)| u64::try_from(v).unwrap_or(0)))
    }

    /// The release `fab` last applied and the central revision it had synced to, if any.
    ///
    /// # Errors
    /// The database failed or the stored set does not parse.
    pub async fn applied_spec(
        &self,
        fab: &Name,
    ) -> Result<Option<(SpecSet, Revision)>, StoreError> {
        let sql = "SELECT spec_set, revision FROM spec_applied WHERE fab = $1";
        let row: Option<(String, i64)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(fab.as_str())
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        row.map(|(set, revision)| {
            Ok((
                parse("applied spec set", &set)?,
                Revision(u64::try_from(revision).unwrap_or(0)),
            ))
        })
        .transpose()
    }

    /// Records durably that `fab` applied `set`, synced up to `revision`. A set older than
    /// (or the same as) the stored one changes nothing, so replicas of one fab sharing a
    /// database never move it back.
    ///
    /// # Errors
    /// The database failed.
    pub async fn save_applied_spec(
        &self,
        fab: &Name,
        set: &SpecSet,
        revision: Revision,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let body = json(set)?;
        let sql = "INSERT INTO spec_applied (fab, version, revision, spec_set, applied_at) VALUES ($1, $2, $3, $4, $5) \
                   ON CONFLICT (fab) DO UPDATE SET version = excluded.version, revision = excluded.revision, \
                   spec_set = excluded.spec_set, applied_at = excluded.applied_at \
                   WHERE spec_applied.version < excluded.version";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(fab.as_str())
            .bind(i64::from(set.version.0))
            .bind(to_i64(revision.0))
            .bind(&body)
            .bind(to_i64(now_ms))
            .execute(pool)
            .await
            .map(drop)
            .map_err(db))
    }
}
