//! FDC sample batches from the broker: `fab fdc` (and `fab all`) consume them from RabbitMQ
//! (`AMQP_URL`) and/or NATS JetStream (`NATS_URL`) through orderly's consumers, and ingest each
//! one through the very code path of `POST /v1/fdc/samples` ([`ingest`]).
//!
//! The message is the HTTP body, `{"tool", "parameter", "samples": [{"at", "value"}]}`, and its
//! broker message id (AMQP `message-id`, JetStream `Nats-Msg-Id`) is the batch's id. The handler
//! returns once the batch's effect (monitor, alarms, the batch row) is committed, so the
//! consumer acknowledges after the commit: a crash before it means a redelivery, never a loss.
//! A batch delivered again is not evaluated again; its `fdc_batches.deliveries` count goes up
//! instead, in the database, so that duplicates are visible.
//!
//! | outcome | what happens to the message |
//! |---|---|
//! | committed, or already stored | acknowledged |
//! | not JSON, or not a batch (unknown field, bad name…) | dead-lettered at once by the consumer, with the decoding error as the reason |
//! | refused (no sample, over [`MAX_BATCH`](crate::api::fdc::MAX_BATCH), no released limits for the parameter) | dead-lettered at once, the reason naming the field |
//! | the database failed, or too many writers raced on the monitor | delivered again, up to the consumer's redelivery limit |

use std::time::Duration;

use orderly::Env;
use orderly_messaging::{Delivery, HandlerError};

use crate::api::AppState;
use crate::api::fdc::{Batch, ingest};
use crate::api::idempotency::Failure;

/// The default RabbitMQ queue of sample batches.
pub const DEFAULT_QUEUE: &str = "fab.fdc.samples";
/// The default JetStream stream of sample batches.
pub const DEFAULT_STREAM: &str = "FAB_FDC";
/// The default subject the stream is created with (if it does not exist) and batches are
/// published on.
pub const DEFAULT_SUBJECT: &str = "fab.fdc.samples";
/// The default durable JetStream consumer the `fab fdc` replicas share.
pub const DEFAULT_CONSUMER: &str = "fab-fdc";
/// The default prefetch: unacknowledged batches per replica, hence batches handled at once.
pub const DEFAULT_PREFETCH: u16 = 32;

/// How often a batch is recomputed after losing a race on its monitor before it is left to
/// the broker's redelivery.
const MAX_ATTEMPTS: u32 = 32;

/// Handles one batch delivered by the broker: ingested and committed before this returns
/// (so the acknowledgement follows the commit); a batch already stored only counts one more
/// delivery.
///
/// # Errors
/// [`HandlerError::reject`] for a batch that can never be ingested (the reason names the
/// field); [`HandlerError::retry`] when the database failed.
pub async fn handle_batch(
    state: &AppState,
    batch: Batch,
    delivery: &Delivery,
) -> Result<(), HandlerError> {
    let id = delivery.id();
    let store = &state.store;
    batch
        .check()
        .map_err(|e| HandlerError::reject(format!("batch {id}: {e}")))?;
    for _ in 0..MAX_ATTEMPTS {
        if store
            .redelivered_batch(id)
            .await
            .map_err(HandlerError::retry)?
        {
            tracing::info!(
                batch = id,
                attempt = delivery.attempt(),
                "FDC batch delivered again; already ingested"
            );
            return Ok(());
        }
        match ingest(state, id, &batch, |_| Ok(None)).await {
            Ok(_) => return Ok(()),
            Err(Failure::Store(e)) if e.is_conflict() => {}
            Err(Failure::Store(e)) => return Err(HandlerError::retry(e)),
            Err(Failure::Api(e)) if e.status().is_server_error() => {
                return Err(HandlerError::retry(format!("batch {id}: {e}")));
            }
            Err(Failure::Api(e)) => {
                return Err(HandlerError::reject(format!("batch {id}: {e}")));
            }
        }
    }
    Err(HandlerError::retry(format!(
        "batch {id}: too many concurrent writers on the monitor of {} on {}",
        batch.parameter, batch.tool
    )))
}

/// Where FDC consumes sample batches from, read from the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerSettings {
    /// RabbitMQ, when `AMQP_URL` is set.
    pub amqp: Option<AmqpSource>,
    /// NATS JetStream, when `NATS_URL` is set.
    pub nats: Option<NatsSource>,
}

/// A RabbitMQ queue of batches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmqpSource {
    /// `AMQP_URL`.
    pub url: String,
    /// `FDC_QUEUE` (a quorum queue, declared if missing, with its dead-letter queue
    /// `<queue>.dead`).
    pub queue: String,
    /// `PREFETCH`.
    pub prefetch: u16,
    /// `FDC_MAX_DELIVERIES`: deliveries of a failing batch before it is dead-lettered.
    pub max_deliveries: u32,
}

/// A JetStream stream of batches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsSource {
    /// `NATS_URL`.
    pub url: String,
    /// `FDC_STREAM` (created with subject `FDC_SUBJECT` if missing).
    pub stream: String,
    /// `FDC_SUBJECT`.
    pub subject: String,
    /// `FDC_CONSUMER`: the durable consumer the replicas share.
    pub consumer: String,
    /// `PREFETCH`.
    pub prefetch: u16,
    /// `FDC_MAX_DELIVERIES`.
    pub max_deliveries: u32,
    /// `FDC_ACK_WAIT`: how long the server waits for an acknowledgement before delivering a
    /// batch again (`30s`, `500ms`).
    pub ack_wait: Duration,
}

impl BrokerSettings {
    /// The settings in `env`; with neither `AMQP_URL` nor `NATS_URL`, no broker.
    ///
    /// # Errors
    /// Every malformed variable, each named.
    pub fn from_env(env: &Env) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let text = |name: &str, default: &str| {
            env.get(name)
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let mut number = |name: &str, default: u32, max: u32| match env.get(name) {
            None => default,
            Some(value) => match value.trim().parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    problems.push(format!("{name}: expected 1 to {max}, found '{value}'"));
                    default
                }
            },
        };
        let prefetch = number("PREFETCH", u32::from(DEFAULT_PREFETCH), u32::from(u16::MAX));
        let prefetch = u16::try_from(prefetch).unwrap_or(DEFAULT_PREFETCH);
        let max_deliveries = number("FDC_MAX_DELIVERIES", 5, 1000);
        let ack_wait = match env.get("FDC_ACK_WAIT") {
            None => Duration::from_secs(30),
            Some(value) => {
                let de = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(&value);
                match orderly_config::duration::deserialize(de) {
                    Ok(d) if !d.is_zero() => d,
                    _ => {
                        problems.push(format!(
                            "FDC_ACK_WAIT: expected a duration such as 30s or 500ms, found '{value}'"
                        ));
                        Duration::from_secs(30)
                    }
                }
            }
        };
        let settings = Self {
            amqp: env.get("AMQP_URL").map(|url| AmqpSource {
                url,
                queue: text("FDC_QUEUE", DEFAULT_QUEUE),
                prefetch,
                max_deliveries,
            }),
            nats: env.get("NATS_URL").map(|url| NatsSource {
                url,
                stream: text("FDC_STREAM", DEFAULT_STREAM),
                subject: text("FDC_SUBJECT", DEFAULT_SUBJECT),
                consumer: text("FDC_CONSUMER", DEFAULT_CONSUMER),
                prefetch,
                max_deliveries,
                ack_wait,
            }),
        };
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn no_broker_url_means_no_broker() {
        let env = Env::from_pairs([("PREFETCH", "8")]);
        assert_eq!(
            BrokerSettings::from_env(&env).unwrap(),
            BrokerSettings::default()
        );
    }

    #[test]
    fn defaults_and_overrides_are_read() {
        let env = Env::from_pairs([
            ("AMQP_URL", "amqp://x"),
            ("NATS_URL", "nats://y"),
            ("FDC_QUEUE", "q1"),
            ("PREFETCH", "7"),
            ("FDC_ACK_WAIT", "2s"),
        ]);
        let settings = BrokerSettings::from_env(&env).unwrap();
        let amqp = settings.amqp.unwrap();
        assert_eq!((amqp.queue.as_str(), amqp.prefetch), ("q1", 7));
        let nats = settings.nats.unwrap();
        assert_eq!(nats.stream, DEFAULT_STREAM);
        assert_eq!(nats.consumer, DEFAULT_CONSUMER);
        assert_eq!(nats.ack_wait, Duration::from_secs(2));
    }

    #[test]
    fn every_malformed_variable_is_named() {
        let env = Env::from_pairs([
            ("AMQP_URL", "amqp://x"),
            ("PREFETCH", "0"),
            ("FDC_MAX_DELIVERIES", "many"),
            ("FDC_ACK_WAIT", "soon"),
        ]);
        let problems = BrokerSettings::from_env(&env).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        for name in ["PREFETCH", "FDC_MAX_DELIVERIES", "FDC_ACK_WAIT"] {
            assert!(problems.iter().any(|p| p.starts_with(name)), "{problems:?}");
        }
    }
}
