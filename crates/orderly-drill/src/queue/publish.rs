//! The drill's publisher: numbered messages at a steady rate, each counted as published only
//! once the broker confirmed it.

use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::task::TaskTracker;

use crate::queue::amqp::{self, AmqpPublisher};
use crate::queue::nats::{self, NatsPublisher};

/// The id of message `n` (the AMQP message id the consumer keys its effect by).
pub(crate) fn message_id(n: u64) -> String {
    format!("m-{n}")
}

/// The number in a message id, if it is one of the drill's.
pub(crate) fn message_number(id: &str) -> Option<u64> {
    id.strip_prefix("m-")?.parse().ok()
}

/// How the broker settled one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Settled {
    /// Confirmed: the broker has it; its effect must exist exactly once.
    Confirmed,
    /// Confirmed but returned as unroutable (the queue was missing).
    Returned,
    /// The broker refused it.
    Nacked,
    /// No answer (the connection or channel failed): it may or may not exist.
    Unknown,
}

/// The publishers the drill has.
#[derive(Debug)]
pub(crate) enum Publisher {
    Amqp(AmqpPublisher),
    Nats(NatsPublisher),
}

enum Pending {
    Amqp(lapin::PublisherConfirm),
    Nats(async_nats::jetstream::context::PublishAckFuture),
}

impl Publisher {
    /// Closes the publisher's channel.
    pub(crate) async fn close(self) {
        match self {
            Self::Amqp(publisher) => publisher.close().await,
            Self::Nats(_) => {}
        }
    }

    async fn send(&self, id: &str, body: &[u8]) -> Result<Pending, String> {
        match self {
            Self::Amqp(publisher) => publisher.send(id, body).await.map(Pending::Amqp),
            Self::Nats(publisher) => publisher.send(id, body).await.map(Pending::Nats),
        }
    }
}

impl Pending {
    async fn settle(self) -> Settled {
        match self {
            Self::Amqp(confirm) => amqp::settle(confirm).await,
            Self::Nats(ack) => nats::settle(ack).await,
        }
    }
}

/// What the publisher did.
#[derive(Debug)]
pub(crate) struct Published {
    /// How each message sent was settled, by number.
    pub(crate) settled: Vec<Settled>,
    /// From the first message sent to the last one settled.
    pub(crate) duration: Duration,
    /// Why publishing stopped early, if it did.
    pub(crate) error: Option<String>,
}

/// Unsettled messages at most: the publisher waits for confirms beyond this.
const IN_FLIGHT: usize = 10_000;

/// Message `n`'s body: `template` with `{n}` and `{id}` replaced.
pub(crate) fn body(template: &str, n: u64) -> String {
    template
        .replace("{n}", &n.to_string())
        .replace("{id}", &message_id(n))
}

/// Sends `messages` numbered messages (bodies from `template`) at `rate` a second (in bursts
/// every 5 ms) and awaits every confirm, in order, in a task of `tracker`.
pub(crate) async fn publish(
    publisher: &Publisher,
    template: &str,
    messages: u64,
    rate: u32,
    tracker: &TaskTracker,
) -> Published {
    let (pending_tx, mut pending_rx) = mpsc::channel::<Pending>(IN_FLIGHT);
    let settling = tracker.spawn(async move {
        let mut settled = Vec::new();
        while let Some(pending) = pending_rx.recv().await {
            settled.push(pending.settle().await);
        }
        settled
    });
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut next = 0_u64;
    let mut error = None;
    'publishing: while next < messages {
        tick.tick().await;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let due = ((start.elapsed().as_secs_f64() * f64::from(rate)) as u64 + 1).min(messages);
        while next < due {
            let body = body(template, next);
            match publisher.send(&message_id(next), body.as_bytes()).await {
                Ok(pending) => {
                    if pending_tx.send(pending).await.is_err() {
                        break 'publishing;
                    }
                }
                Err(cause) => {
                    tracing::error!(message = next, %cause, "cannot publish; publishing stops");
                    error = Some(format!("message {next}: {cause}"));
                    break 'publishing;
                }
            }
            next += 1;
        }
    }
    drop(pending_tx);
    let settled = settling.await.unwrap_or_default();
    Published {
        settled,
        duration: start.elapsed(),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::{body, message_id, message_number};

    #[test]
    fn bodies_are_made_from_the_template() {
        assert_eq!(body(crate::queue::options::DEFAULT_BODY, 7), r#"{"n":7}"#);
        assert_eq!(
            body(r#"{"tool":"t-{n}","id":"{id}"}"#, 3),
            r#"{"tool":"t-3","id":"m-3"}"#
        );
    }

    #[test]
    fn message_ids_round_trip() {
        assert_eq!(message_id(42), "m-42");
        assert_eq!(message_number("m-42"), Some(42));
        assert_eq!(message_number("x-42"), None);
        assert_eq!(message_number("m-"), None);
    }
}
