//! Decode, handle, decide: the part of consuming that is the same on every broker.

use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::time::Instant;

use crate::delivery::Delivery;
use crate::handler::{Handler, HandlerError, HandlerErrorKind};
use crate::message::Decode;
use crate::metrics::ConsumerMetrics;
use crate::policy::{Disposition, RedeliveryPolicy};

/// Decodes `payload`, runs `handler` on it and decides what becomes of the message.
///
/// - The handler succeeded: [`Disposition::Ack`].
/// - The payload does not decode, or the handler [rejected](HandlerError::reject) it:
///   [`Disposition::DeadLetter`] at once.
/// - The handler failed (or panicked) and the message has deliveries left under `policy`:
///   [`Disposition::Retry`]; on its last delivery, [`Disposition::DeadLetter`].
///
/// Failures are logged (`warn`) with the message id, its source and the attempt; the outcome
/// and the handler's duration are recorded in `metrics` when given.
///
/// The handler is awaited to the end: dropping this future is the only way to cancel it, and
/// the broker components never do so when they stop.
pub async fn settle<M, H>(
    handler: &H,
    payload: impl Into<Bytes>,
    delivery: Delivery,
    policy: &RedeliveryPolicy,
    metrics: Option<&ConsumerMetrics>,
) -> Disposition
where
    M: Decode,
    H: Handler<M> + ?Sized,
{
    if let Some(metrics) = metrics {
        metrics.in_flight.increment(1.0);
        if delivery.is_redelivery() {
            metrics.redelivered.increment(1);
        }
    }
    let began = Instant::now();
    let disposition = decide(handler, payload.into(), &delivery, policy).await;
    if let Some(metrics) = metrics {
        metrics.in_flight.decrement(1.0);
        metrics.settled(&disposition, began.elapsed());
    }
    disposition
}

async fn decide<M, H>(
    handler: &H,
    payload: Bytes,
    delivery: &Delivery,
    policy: &RedeliveryPolicy,
) -> Disposition
where
    M: Decode,
    H: Handler<M> + ?Sized,
{
    let message = match M::decode(payload) {
        Ok(message) => message,
        Err(error) => {
            tracing::warn!(
                message_id = delivery.id(),
                source = delivery.source(),
                attempt = delivery.attempt(),
                %error,
                "message does not decode: dead-lettered"
            );
            return Disposition::DeadLetter {
                reason: error.to_string(),
            };
        }
    };
    let outcome = AssertUnwindSafe(handler.handle(message, delivery.clone()))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string payload".to_owned());
            Err(HandlerError::retry(format!("handler panicked: {what}")))
        });
    let error = match outcome {
        Ok(()) => return Disposition::Ack,
        Err(error) => error,
    };
    let last = delivery.attempt() >= policy.max_deliveries();
    let disposition = match error.kind() {
        HandlerErrorKind::Retry if !last => Disposition::Retry {
            delay: policy.delay(),
        },
        HandlerErrorKind::Retry => Disposition::DeadLetter {
            reason: format!(
                "failed {} deliveries; last error: {error}",
                delivery.attempt()
            ),
        },
        HandlerErrorKind::Reject => Disposition::DeadLetter {
            reason: format!("rejected: {error}"),
        },
    };
    tracing::warn!(
        message_id = delivery.id(),
        source = delivery.source(),
        attempt = delivery.attempt(),
        max_deliveries = policy.max_deliveries(),
        outcome = disposition.as_str(),
        %error,
        "message handler failed"
    );
    disposition
}

#[cfg(test)]
mod tests;
