//! FDC monitors and alarms.

use super::{Db, Reply, Store, StoreError, StoreErrorKind, db, json, next_version, parse, to_i64};
use crate::domain::fdc::Sample;
use crate::domain::fdc::alarm::{Alarm, AlarmId};
use crate::domain::fdc::monitor::ParameterMonitor;
use crate::domain::name::Name;

/// One batch of samples to commit: the monitor after it and the alarms it raised.
#[derive(Debug)]
pub struct MonitorCommit<'a> {
    /// The tool.
    pub tool: &'a Name,
    /// The parameter.
    pub parameter: &'a Name,
    /// The monitor after the batch.
    pub monitor: &'a ParameterMonitor,
    /// The version the batch was computed from; `None` for a new monitor.
    pub expected: Option<u64>,
    /// The alarms raised.
    pub alarms: &'a [Alarm],
    /// The response to store for the request.
    pub reply: Option<&'a Reply>,
    /// The batch as received, stored under its id (a taken id is a conflict).
    pub batch: BatchRecord<'a>,
}

/// A sample batch as stored in `fdc_batches`.
#[derive(Clone, Copy, Debug)]
pub struct BatchRecord<'a> {
    /// The batch's id: the broker's message id, or the HTTP request's idempotency key
    /// qualified by its principal.
    pub id: &'a str,
    /// The samples.
    pub samples: &'a [Sample],
}

/// A stored batch, as [`Store::batch`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBatch {
    /// The tool.
    pub tool: String,
    /// The parameter.
    pub parameter: String,
    /// Samples in the batch.
    pub samples: u64,
    /// Alarms the batch raised.
    pub alarms: u64,
    /// How many times the batch was delivered and handled (1 unless delivered again).
    pub deliveries: u64,
}

fn alarm_id(id: AlarmId) -> i64 {
    to_i64(id.0)
}

impl Store {
    /// The monitor of `parameter` on `tool` and its version, if it exists.
    ///
    /// # Errors
    /// The database failed or the state does not parse.
    pub async fn monitor(
        &self,
        tool: &Name,
        parameter: &Name,
    ) -> Result<Option<(ParameterMonitor, u64)>, StoreError> {
        let sql = "SELECT state, version FROM fdc_monitors WHERE tool = $1 AND parameter = $2";
        let row: Option<(String, i64)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(tool.as_str())
            .bind(parameter.as_str())
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        row.map(|(state, version)| {
            Ok((
                parse("fdc monitor", &state)?,
                u64::try_from(version).unwrap_or(0),
            ))
        })
        .transpose()
    }

    /// Commits a batch: the monitor (only if still at `expected`), its alarms, the reply.
    ///
    /// # Errors
    /// [`StoreError::is_conflict`] when another writer moved the monitor first. The database
    /// failed.
    pub async fn commit_monitor(
        &self,
        c: &MonitorCommit<'_>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let state = json(c.monitor)?;
        let samples = json(&c.batch.samples)?;
        let alarms = c
            .alarms
            .iter()
            .map(|a| Ok((a, json(a)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db)?;
            write_version!(
                tx,
                c.expected,
                insert: "INSERT INTO fdc_monitors (tool, parameter, version, state, updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tool, parameter) DO NOTHING",
                update: "UPDATE fdc_monitors SET version = $1, state = $2, updated_at = $3 WHERE tool = $4 AND parameter = $5 AND version = $6",
                keys: [c.tool.as_str(), c.parameter.as_str()],
                version: next_version(c.expected),
                state: &state,
                now_ms: now_ms
            );
            for (alarm, body) in &alarms {
                sqlx::query(
                    "INSERT INTO fdc_alarms (id, tool, parameter, alarm, inhibits, acked, raised_at) VALUES ($1, $2, $3, $4, $5, 0, $6)",
                )
                .bind(alarm_id(alarm.id))
                .bind(c.tool.as_str())
                .bind(c.parameter.as_str())
                .bind(body)
                .bind(i64::from(alarm.inhibits()))
                .bind(to_i64(alarm.detection.at.as_millis()))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            sqlx::query(
                "INSERT INTO fdc_batches (id, tool, parameter, samples, sample_count, alarms, deliveries, received_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7)",
            )
            .bind(c.batch.id)
            .bind(c.tool.as_str())
            .bind(c.parameter.as_str())
            .bind(&samples)
            .bind(to_i64(c.batch.samples.len() as u64))
            .bind(to_i64(c.alarms.len() as u64))
            .bind(to_i64(now_ms))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            if let Some(reply) = c.reply {
                insert_reply!(tx, reply, now_ms);
            }
            tx.commit().await.map_err(db)
        })
    }

    /// Counts one more delivery of batch `id` if it is stored: `true` then (the batch was
    /// handled before and must not be evaluated again), `false` for a batch not seen yet.
    ///
    /// # Errors
    /// The database failed.
    pub async fn redelivered_batch(&self, id: &str) -> Result<bool, StoreError> {
        let updated = on_pool!(self, |pool| sqlx::query(
            "UPDATE fdc_batches SET deliveries = deliveries + 1 WHERE id = $1"
        )
        .bind(id)
        .execute(pool)
        .await
        .map_err(db)?
        .rows_affected());
        Ok(updated == 1)
    }

    /// Batch `id`, if stored.
    ///
    /// # Errors
    /// The database failed.
    pub async fn batch(&self, id: &str) -> Result<Option<StoredBatch>, StoreError> {
        let sql = "SELECT tool, parameter, sample_count, alarms, deliveries FROM fdc_batches WHERE id = $1";
        let row: Option<(String, String, i64, i64, i64)> =
            on_pool!(self, |pool| sqlx::query_as(sql)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db)?);
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(row.map(
            |(tool, parameter, samples, alarms, deliveries)| StoredBatch {
                tool,
                parameter,
                samples: count(samples),
                alarms: count(alarms),
                deliveries: count(deliveries),
            },
        ))
    }

    /// The alarms of `tool` (every tool: `None`), newest first, at most `limit`;
    /// `unacknowledged` keeps only those not yet acknowledged.
    ///
    /// # Errors
    /// The database failed or an alarm does not parse.
    pub async fn alarms(
        &self,
        tool: Option<&Name>,
        unacknowledged: bool,
        limit: u32,
    ) -> Result<Vec<Alarm>, StoreError> {
        let sql = "SELECT alarm FROM fdc_alarms WHERE ($1 = '' OR tool = $1) AND ($2 = 0 OR acked = 0) ORDER BY raised_at DESC, id LIMIT $3";
        let rows: Vec<(String,)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(tool.map_or("", Name::as_str))
            .bind(i64::from(unacknowledged))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(db)?);
        rows.iter().map(|(a,)| parse("alarm", a)).collect()
    }

    /// Alarm `id`, if raised.
    ///
    /// # Errors
    /// The database failed or the alarm does not parse.
    pub async fn alarm(&self, id: AlarmId) -> Result<Option<Alarm>, StoreError> {
        let row: Option<(String,)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT alarm FROM fdc_alarms WHERE id = $1"
        )
        .bind(alarm_id(id))
        .fetch_optional(pool)
        .await
        .map_err(db)?);
        row.map(|(a,)| parse("alarm", a.as_str())).transpose()
    }

    /// Stores the acknowledgement of `alarm` (only if it was not acknowledged meanwhile).
    ///
    /// # Errors
    /// [`StoreError::is_conflict`] when someone acknowledged it first. The database failed.
    pub async fn acknowledge_alarm(
        &self,
        alarm: &Alarm,
        reply: Option<&Reply>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let body = json(alarm)?;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db)?;
            let updated = sqlx::query("UPDATE fdc_alarms SET alarm = $1, acked = 1, inhibits = 0 WHERE id = $2 AND acked = 0")
                .bind(&body)
                .bind(alarm_id(alarm.id))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            if updated.rows_affected() != 1 {
                return Err(StoreError::new(StoreErrorKind::Conflict));
            }
            if let Some(reply) = reply {
                insert_reply!(tx, reply, now_ms);
            }
            tx.commit().await.map_err(db)
        })
    }

    /// The alarms holding `tool` inhibited (critical, not yet acknowledged).
    ///
    /// # Errors
    /// The database failed.
    pub async fn inhibiting(&self, tool: &Name) -> Result<Vec<AlarmId>, StoreError> {
        let sql =
            "SELECT id FROM fdc_alarms WHERE tool = $1 AND inhibits = 1 AND acked = 0 ORDER BY id";
        let rows: Vec<(i64,)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(tool.as_str())
            .fetch_all(pool)
            .await
            .map_err(db)?);
        Ok(rows
            .into_iter()
            .map(|(id,)| AlarmId(u64::try_from(id).unwrap_or(0)))
            .collect())
    }
}
