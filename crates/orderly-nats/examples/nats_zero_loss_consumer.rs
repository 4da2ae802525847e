//! The consumer process of the zero-loss proof (`tests/it/zero_loss.rs`): each message's
//! effect is written to PostgreSQL, keyed by the message id, in one transaction; the message
//! is acknowledged after the commit. A second handling of a message is visible: its row's
//! `handled` count goes to 2. `attempt` keeps the highest delivery attempt that reached the
//! handler: above 1, the broker delivered the message again (after a crash, say).
//!
//! Settings, from the environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `ZERO_LOSS_DATABASE_URL` | PostgreSQL, with a table `effects(message_id text primary key, value bigint, handled int, attempt int)` |
//! | `ZERO_LOSS_NATS__URL` | the NATS server (default `nats://127.0.0.1:4222`) |
//! | `ZERO_LOSS_NATS__STREAM`, `ZERO_LOSS_NATS__CONSUMER` | the stream and the durable consumer |
//! | `ZERO_LOSS_NATS__PREFETCH`, `…__ACK_WAIT`, `…__MAX_DELIVERIES`, `…__RETRY_DELAY` | see `ConsumerSettings` |
//! | `ZERO_LOSS_DATABASE_MAX_CONNECTIONS` | the pool's size (default: the prefetch) |
//! | `ZERO_LOSS_ACKNOWLEDGE` | `after-effect` (default) or `before-effect`, a deliberately **wrong** consumer |
//!
//! `before-effect` is the negative control of `orderly-drill queue`: each message is
//! acknowledged at once and its effect written 50 ms later in a detached task (the bug of a
//! write-behind buffer), so a SIGKILL loses the effects of messages already acknowledged, and
//! the drill must see it.
//!
//! A message `{"n": <negative>}` is poison: its handler always fails.
//!
//! The pool is a small component here; it belongs in `orderly-sql` once that crate exists.

use std::process::ExitCode;
use std::time::Duration;

use orderly::{BoxError, Context, Spec, System};
use orderly_config::{Config, Secret};
use orderly_messaging::{Delivery, HandlerError, Json};
use orderly_nats::{ConsumerSettings, JetStreamConsumer};
use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

#[derive(Debug, Deserialize)]
struct Settings {
    database_url: Secret<String>,
    #[serde(default)]
    database_max_connections: Option<u32>,
    #[serde(default)]
    acknowledge: Acknowledge,
    nats: ConsumerSettings,
}

/// When the consumer acknowledges a message.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Acknowledge {
    /// After the effect's transaction committed (the correct consumer).
    #[default]
    AfterEffect,
    /// At once, the effect written later (the negative control's bug).
    BeforeEffect,
}

#[derive(Debug, Deserialize)]
struct Numbered {
    n: i64,
}

/// The effect: one row per message id, `handled` counting how many times it was handled.
async fn record(pool: PgPool, message: Numbered, delivery: Delivery) -> Result<(), HandlerError> {
    if message.n < 0 {
        return Err(HandlerError::retry(format!("poison message {}", message.n)));
    }
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO effects (message_id, value, handled, attempt) VALUES ($1, $2, 1, $3) \
         ON CONFLICT (message_id) DO UPDATE SET handled = effects.handled + 1, \
         attempt = greatest(effects.attempt, $3)",
    )
    .bind(delivery.id())
    .bind(message.n * 2)
    .bind(i32::try_from(delivery.attempt()).unwrap_or(i32::MAX))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The negative control's handler: acknowledged before the effect is durable.
async fn record_later(
    pool: PgPool,
    message: Numbered,
    delivery: Delivery,
) -> Result<(), HandlerError> {
    let id = delivery.id().to_owned();
    // Deliberately detached (the bug under test): nothing waits for this write.
    drop(tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let written = sqlx::query(
            "INSERT INTO effects (message_id, value, handled, attempt) VALUES ($1, $2, 1, 1) \
             ON CONFLICT (message_id) DO UPDATE SET handled = effects.handled + 1",
        )
        .bind(&id)
        .bind(message.n * 2)
        .execute(&pool)
        .await;
        if let Err(error) = written {
            tracing::error!(%id, %error, "the late effect failed");
        }
    }));
    Ok(())
}

/// A PostgreSQL pool, closed after the consumer stopped.
async fn pool(url: Secret<String>, size: u32, ctx: Context) -> Result<PgPool, BoxError> {
    let pool = PgPoolOptions::new()
        .max_connections(size)
        .connect(url.expose())
        .await?;
    let closing = pool.clone();
    let stopping = ctx.clone();
    ctx.spawn("close", async move {
        stopping.stopping().await;
        closing.close().await;
        Ok::<_, BoxError>(())
    });
    Ok(pool)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stdout)
        .init();
    let mut system = System::builder("zero-loss-consumer");
    // Invalid settings: every problem logged, exit 78 before anything starts.
    let config = system.add(
        "config",
        (),
        Config::<Settings>::builder("ZERO_LOSS").build(),
    );
    let db = system.add_fn(
        "db",
        config.map(|s| {
            let size = s
                .database_max_connections
                .unwrap_or_else(|| u32::from(s.nats.prefetch));
            (s.database_url.clone(), size)
        }),
        |(url, size), ctx| pool(url, size, ctx),
    );
    system.add(
        Spec::new("consumer").stop_timeout(Duration::from_secs(20)),
        (config.map(|s| (s.nats.clone(), s.acknowledge)), db),
        JetStreamConsumer::configured(
            |((settings, acknowledge), pool): ((ConsumerSettings, Acknowledge), PgPool)| {
                let handler = move |Json(message): Json<Numbered>, delivery: Delivery| {
                    let pool = pool.clone();
                    async move {
                        if acknowledge == Acknowledge::BeforeEffect && message.n >= 0 {
                            record_later(pool, message, delivery).await
                        } else {
                            record(pool, message, delivery).await
                        }
                    }
                };
                (settings, handler)
            },
        ),
    );
    system.run().await
}
