//! The consumer *process* of the zero-loss proof (`tests/it/zero_loss.rs`): consumes a queue
//! and writes each message's effect to PostgreSQL, keyed by message id, acknowledging after
//! the commit.
//!
//! The effect is `INSERT … ON CONFLICT (message_id) DO UPDATE SET handled = handled + 1`, in
//! one transaction: a message handled twice is *visible* (`handled = 2`), which is how the
//! proof counts duplicates. A message `{"n": …, "poison": true}` always fails, so it ends in
//! the dead-letter queue after `MAX_DELIVERIES`.
//!
//! ```text
//! AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f QUEUE=numbers \
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/proof \
//! cargo run -p orderly-amqp --example amqp_zero_loss_consumer
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `AMQP_URL` | the broker, with its vhost | the local broker, vhost `/` |
//! | `QUEUE` | the queue (a quorum queue, declared if missing) | required |
//! | `DATABASE_URL` | the database holding `effects(message_id text primary key, value bigint, handled int)` | required |
//! | `DATABASE_MAX_CONNECTIONS`, … | the pool, read by `orderly-sql`'s `PoolSettings` | 10 |
//! | `PREFETCH` | the consumer's prefetch | 32 |
//! | `MAX_DELIVERIES` | deliveries of a failing message before the dead-letter queue | 3 |
//! | `ACK_BEFORE_EFFECT` | `1`: a deliberately **wrong** consumer for negative controls | unset |
//!
//! `ACK_BEFORE_EFFECT=1` acknowledges each message at once and writes its effect 50 ms later in
//! a detached task, the bug of a write-behind buffer: a SIGKILL loses the effects of messages
//! already acknowledged. `orderly-drill queue --expect-loss` must see that loss; otherwise its
//! zero proves nothing.
//!
//! SIGTERM stops it gracefully (exit 0): the consumer drains first, then the pool
//! (`orderly-sql`) closes.

use std::process::ExitCode;

use std::sync::Arc;

use orderly::System;
use orderly_amqp::{Consumer, ConsumerSettings, DEFAULT_URL};
use orderly_config::Config;
use orderly_messaging::{Delivery, HandlerError, Json};
use orderly_sql::{PoolSettings, SqlPool};
use serde::Deserialize;
use sqlx::PgPool;

#[derive(Debug, Deserialize)]
struct Numbered {
    n: i64,
    #[serde(default)]
    poison: bool,
}

/// Records the message's effect exactly as the proof reads it, then returns (and the consumer
/// acknowledges).
async fn record(pool: PgPool, number: Numbered, delivery: Delivery) -> Result<(), HandlerError> {
    if number.poison {
        return Err(HandlerError::retry(format!(
            "message {} is poison: its handler always fails",
            delivery.id()
        )));
    }
    let mut transaction = pool.begin().await?;
    sqlx::query(
        "INSERT INTO effects (message_id, value, handled) VALUES ($1, $2, 1) \
         ON CONFLICT (message_id) DO UPDATE SET handled = effects.handled + 1",
    )
    .bind(delivery.id())
    .bind(number.n)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(())
}

/// When the consumer acknowledges a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Acknowledge {
    /// After the effect's transaction committed (the correct consumer).
    AfterEffect,
    /// At once, the effect written later (the negative control's bug).
    BeforeEffect,
}

/// The negative control's handler: acknowledged before the effect is durable.
async fn record_later(
    pool: PgPool,
    number: Numbered,
    delivery: Delivery,
) -> Result<(), HandlerError> {
    let id = delivery.id().to_owned();
    // Deliberately detached (the bug under test): nothing waits for this write.
    drop(tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let written = sqlx::query(
            "INSERT INTO effects (message_id, value, handled) VALUES ($1, $2, 1) \
             ON CONFLICT (message_id) DO UPDATE SET handled = effects.handled + 1",
        )
        .bind(&id)
        .bind(number.n)
        .execute(&pool)
        .await;
        if let Err(error) = written {
            tracing::error!(%id, %error, "the late effect failed");
        }
    }));
    Ok(())
}

fn variable(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is required"))
}

fn number(name: &str, default: u32) -> Result<u32, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(value) => value
            .parse()
            .map_err(|_| format!("{name}: expected a number, found '{value}'")),
    }
}

fn build() -> Result<orderly::SystemBuilder, String> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let mut settings = ConsumerSettings::new(url, variable("QUEUE")?);
    let prefetch = number("PREFETCH", 32)?;
    settings.prefetch = u16::try_from(prefetch).map_err(|_| "PREFETCH: at most 65535")?;
    settings.max_deliveries = number("MAX_DELIVERIES", 3)?;
    let acknowledge = match std::env::var("ACK_BEFORE_EFFECT").as_deref() {
        Err(_) | Ok("" | "0") => Acknowledge::AfterEffect,
        Ok("1") => Acknowledge::BeforeEffect,
        Ok(other) => {
            return Err(format!(
                "ACK_BEFORE_EFFECT: expected 0 or 1, found '{other}'"
            ));
        }
    };

    let mut system = System::builder("zero-loss-consumer").log_all_events();
    let database = system.add(
        "database-settings",
        (),
        Config::<PoolSettings>::builder("DATABASE").build(),
    );
    let pool = system.add(
        "db",
        database.map(|s: &Arc<PoolSettings>| PoolSettings::clone(s)),
        SqlPool::postgres(),
    );
    system.add(
        "numbers",
        pool,
        Consumer::with_deps(settings, move |pool: PgPool| {
            move |Json(number): Json<Numbered>, delivery: Delivery| {
                let pool = pool.clone();
                async move {
                    if acknowledge == Acknowledge::BeforeEffect && !number.poison {
                        record_later(pool, number, delivery).await
                    } else {
                        record(pool, number, delivery).await
                    }
                }
            }
        }),
    );
    Ok(system)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match build() {
        Ok(system) => system.run().await,
        Err(problem) => {
            tracing::error!("{problem}");
            ExitCode::from(78)
        }
    }
}
