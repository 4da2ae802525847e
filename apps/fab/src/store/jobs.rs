//! Tool job queues: one row per tool, the queue as a JSON document with a version.

use super::{Db, Reply, Store, StoreError, StoreErrorKind, db, json, next_version, parse, to_i64};
use crate::domain::jobs::JobQueue;
use crate::domain::name::Name;

/// One change of a tool's queue to commit.
#[derive(Debug)]
pub struct QueueCommit<'a> {
    /// The tool.
    pub tool: &'a Name,
    /// The queue after the change.
    pub queue: &'a JobQueue,
    /// The version the change was computed from; `None` for the tool's first queue row.
    pub expected: Option<u64>,
    /// The response to store for the request.
    pub reply: Option<&'a Reply>,
}

impl Store {
    /// The job queue of `tool` and its version, if one was ever stored.
    ///
    /// # Errors
    /// The database failed or the stored queue does not parse.
    pub async fn tool_queue(&self, tool: &Name) -> Result<Option<(JobQueue, u64)>, StoreError> {
        let sql = "SELECT queue, version FROM tool_queues WHERE tool = $1";
        let row: Option<(String, i64)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(tool.as_str())
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        row.map(|(queue, version)| {
            Ok((
                parse("tool queue", &queue)?,
                u64::try_from(version).unwrap_or(0),
            ))
        })
        .transpose()
    }

    /// Commits a queue change and its reply in one transaction: the row is inserted (first
    /// change) or updated only if still at `expected`, and its version moves on by one.
    ///
    /// # Errors
    /// [`StoreError::is_conflict`] when another writer changed the queue (or took the
    /// idempotency key) first: read again and retry. The database failed.
    pub async fn commit_tool_queue(
        &self,
        c: &QueueCommit<'_>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let queue = json(c.queue)?;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db)?;
            write_version!(
                tx,
                c.expected,
                insert: "INSERT INTO tool_queues (tool, version, queue, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (tool) DO NOTHING",
                update: "UPDATE tool_queues SET version = $1, queue = $2, updated_at = $3 WHERE tool = $4 AND version = $5",
                keys: [c.tool.as_str()],
                version: next_version(c.expected),
                state: &queue,
                now_ms: now_ms
            );
            if let Some(reply) = c.reply {
                insert_reply!(tx, reply, now_ms);
            }
            tx.commit().await.map_err(db)
        })
    }
}
