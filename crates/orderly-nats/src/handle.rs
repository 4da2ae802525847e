//! One message: settle it with the shared contract, then acknowledge it per its disposition.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use orderly_messaging::{
    ConsumerMetrics, Decode, Delivery, Disposition, Handler, RedeliveryPolicy, settle,
};
use tokio::sync::OwnedSemaphorePermit;

use crate::settings::AckMode;

/// The header a publisher sets with the message's id (also JetStream's duplicate detection).
pub(crate) const MSG_ID: &str = "Nats-Msg-Id";
/// Why a message was dead-lettered.
pub const DEAD_LETTER_REASON: &str = "Orderly-Dead-Letter-Reason";
/// The stream a dead-lettered message came from.
pub const ORIGINAL_STREAM: &str = "Orderly-Original-Stream";
/// The subject a dead-lettered message was published on.
pub const ORIGINAL_SUBJECT: &str = "Orderly-Original-Subject";
/// The sequence of a dead-lettered message in its original stream.
pub const ORIGINAL_SEQUENCE: &str = "Orderly-Original-Sequence";
/// How many times a dead-lettered message was delivered.
pub const DELIVERIES: &str = "Orderly-Deliveries";

/// Everything a handler task needs, shared by all of them.
pub(crate) struct Settler<M, H> {
    pub(crate) handler: H,
    pub(crate) policy: RedeliveryPolicy,
    pub(crate) metrics: ConsumerMetrics,
    pub(crate) source: Arc<str>,
    pub(crate) dead_letter_subject: String,
    pub(crate) ack_wait: Duration,
    pub(crate) ack_mode: AckMode,
    pub(crate) component: Arc<str>,
    pub(crate) js: jetstream::Context,
    pub(crate) _message: PhantomData<fn() -> M>,
}

/// Settles one message and acknowledges it; `_slot` frees a handler slot when dropped.
pub(crate) async fn settle_one<M: Decode, H: Handler<M>>(
    settler: Arc<Settler<M, H>>,
    message: async_nats::Message,
    _slot: OwnedSemaphorePermit,
) {
    let component = &*settler.component;
    let message = jetstream::Message {
        message,
        context: settler.js.clone(),
    };
    // The stream's name is read again only to dead-letter: no allocation per message.
    let (sequence, attempt) = match message.info() {
        Ok(info) => (
            info.stream_sequence,
            u32::try_from(info.delivered).unwrap_or(u32::MAX),
        ),
        Err(error) => {
            // Not a JetStream delivery: nothing to acknowledge.
            tracing::warn!(component, %error, subject = %message.subject, "not a JetStream message: ignored");
            return;
        }
    };
    let id: Arc<str> = match message.headers.as_ref().and_then(|h| h.get(MSG_ID)) {
        Some(id) => id.as_str().into(),
        None => decimal(sequence),
    };
    let delivery = Delivery::new(id.clone(), settler.source.clone(), attempt);
    let settled = settle(
        &settler.handler,
        message.payload.clone(),
        delivery,
        &settler.policy,
        Some(&settler.metrics),
    );
    tokio::pin!(settled);
    // A handler that finishes at its first poll needs no timer.
    let first = std::future::poll_fn(|cx| Poll::Ready(settled.as_mut().poll(cx))).await;
    let disposition = match first {
        Poll::Ready(disposition) => disposition,
        Poll::Pending => {
            // A handler that runs long keeps its message: the server would deliver it again
            // after AckWait otherwise.
            let period = (settler.ack_wait / 2).max(Duration::from_millis(100));
            let mut progress =
                tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tokio::select! {
                    disposition = &mut settled => break disposition,
                    _ = progress.tick() => {
                        if let Err(error) = message.ack_with(AckKind::Progress).await {
                            tracing::debug!(component, message_id = %id, %error, "progress ack failed");
                        }
                    }
                }
            }
        }
    };
    let acked = match disposition {
        Disposition::Ack => match settler.ack_mode {
            AckMode::Confirmed => message.double_ack().await,
            _ => message.ack().await,
        },
        Disposition::Retry { delay } => message.double_ack_with(AckKind::Nak(Some(delay))).await,
        Disposition::DeadLetter { reason } => {
            let stream = message
                .info()
                .map(|info| info.stream.to_owned())
                .unwrap_or_default();
            let dead = DeadLetter {
                stream: &stream,
                sequence,
                attempt,
                id: &id,
                reason: &reason,
            };
            match dead
                .publish(&settler.js, &settler.dead_letter_subject, &message)
                .await
            {
                Ok(()) => message.double_ack_with(AckKind::Term).await,
                Err(error) => {
                    // Not terminated: it is delivered again and dead-lettered then.
                    tracing::warn!(component, message_id = %id, %error, "dead-lettering failed; the message will be delivered again");
                    message
                        .double_ack_with(AckKind::Nak(Some(settler.policy.delay())))
                        .await
                }
            }
        }
        _ => {
            message
                .double_ack_with(AckKind::Nak(Some(settler.policy.delay())))
                .await
        }
    };
    if let Err(error) = acked {
        // The server delivers the message again after AckWait; the effect is idempotent.
        tracing::warn!(component, message_id = %id, %error, "acknowledgement not confirmed");
    }
}

/// `n` in decimal, in one allocation (the `Arc` itself).
fn decimal(mut n: u64) -> Arc<str> {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        // `n % 10` is below 10: the cast keeps it.
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // ASCII digits are UTF-8.
    std::str::from_utf8(&digits[start..]).map_or_else(|_| Arc::from(""), Arc::from)
}

/// A message on its way to the dead-letter stream.
struct DeadLetter<'a> {
    stream: &'a str,
    sequence: u64,
    attempt: u32,
    id: &'a str,
    reason: &'a str,
}

impl DeadLetter<'_> {
    /// Publishes the message, with its headers and why, and waits for the stream's
    /// acknowledgement. Its `Nats-Msg-Id` is the original's: dead-lettering it twice (a crash
    /// between the publish and the terminate) stores it once.
    async fn publish(
        &self,
        js: &jetstream::Context,
        subject: &str,
        message: &jetstream::Message,
    ) -> Result<(), async_nats::Error> {
        let mut headers = message.headers.clone().unwrap_or_default();
        headers.insert(MSG_ID, self.id);
        headers.insert(DEAD_LETTER_REASON, header_value(self.reason).as_str());
        headers.insert(ORIGINAL_STREAM, self.stream);
        headers.insert(ORIGINAL_SUBJECT, message.subject.as_str());
        headers.insert(ORIGINAL_SEQUENCE, self.sequence.to_string().as_str());
        headers.insert(DELIVERIES, self.attempt.to_string().as_str());
        js.publish_with_headers(subject.to_owned(), headers, message.payload.clone())
            .await?
            .await?;
        Ok(())
    }
}

/// `text` as a header value: one line, at most 1024 bytes.
fn header_value(text: &str) -> String {
    let mut value: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if value.len() > 1024 {
        let mut end = 1024;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::{decimal, header_value};

    #[test]
    fn a_sequence_is_its_decimal_digits() {
        assert_eq!(&*decimal(0), "0");
        assert_eq!(&*decimal(7), "7");
        assert_eq!(&*decimal(1_234_567_890), "1234567890");
        assert_eq!(&*decimal(u64::MAX), "18446744073709551615");
    }

    #[test]
    fn a_reason_becomes_one_bounded_header_line() {
        assert_eq!(header_value("bad\r\nvalue"), "bad  value");
        assert_eq!(header_value(&"é".repeat(600)).len(), 1024);
    }
}
