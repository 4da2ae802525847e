//! The running pool's health: a periodic `SELECT 1`, reported to the system.

use std::convert::Infallible;
use std::time::Duration;

use orderly::{Context, Health};
use sqlx::{ConnectOptions as _, Connection as _, Pool};
use tokio::time::MissedTickBehavior;

use crate::backend::{Backend, ConnectOptions};

/// What the health task needs; moved into it.
pub(crate) struct Checker<DB: Backend> {
    pub(crate) pool: Pool<DB>,
    pub(crate) options: ConnectOptions<DB>,
    pub(crate) target: String,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
}

impl<DB: Backend> Checker<DB> {
    /// Checks the database every interval and reports the result, until the component stops.
    pub(crate) async fn run(self, ctx: Context) -> Result<(), Infallible> {
        let stopping = ctx.stopping();
        tokio::pin!(stopping);
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is now, and the start has just connected
        let mut last = Health::Healthy;
        loop {
            tokio::select! {
                () = &mut stopping => return Ok(()),
                _ = tick.tick() => {}
            }
            let health = tokio::select! {
                () = &mut stopping => return Ok(()),
                health = self.check() => health,
            };
            if health != last {
                match &health {
                    Health::Healthy => {
                        tracing::info!(
                            backend = DB::LABEL,
                            database = self.target,
                            "database is reachable again"
                        );
                    }
                    other => {
                        tracing::warn!(backend = DB::LABEL, database = self.target, health = %other, "database check failed");
                    }
                }
                last = health.clone();
            }
            ctx.set_health(health);
        }
    }

    /// One check: `SELECT 1` on a pooled connection within the timeout. When it fails, one
    /// connection of its own tells why: the database is unreachable (unhealthy), or it answers
    /// and the pool is only exhausted (degraded).
    async fn check(&self) -> Health {
        let checked = tokio::time::timeout(self.timeout, async {
            let mut connection = self.pool.acquire().await?;
            DB::check(&mut connection).await
        })
        .await;
        let failure = match checked {
            Ok(Ok(())) => return Health::Healthy,
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no connection within {:?}", self.timeout),
        };
        match tokio::time::timeout(self.timeout, self.options.connect()).await {
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
                Health::degraded(format!(
                    "{} at {} answers, but the pool does not: {failure}",
                    DB::LABEL,
                    self.target
                ))
            }
            Ok(Err(error)) => Health::unhealthy(format!(
                "{} at {} is unreachable: {error}",
                DB::LABEL,
                self.target
            )),
            Err(_) => Health::unhealthy(format!(
                "{} at {} does not answer within {:?}",
                DB::LABEL,
                self.target,
                self.timeout
            )),
        }
    }
}
