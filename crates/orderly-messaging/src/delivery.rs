//! What a handler knows about the delivery of a message.

use std::fmt;
use std::sync::Arc;

/// Where a message came from and how many times it was delivered.
///
/// Make a handler's effect idempotent by keying it on [`id`](Self::id): a message is delivered
/// again after a crash or a lost acknowledgement, and the second delivery must change nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Delivery {
    id: Arc<str>,
    source: Arc<str>,
    attempt: u32,
}

impl Delivery {
    /// A delivery of message `id` from `source` (a queue, or a stream's consumer); `attempt`
    /// is 1 the first time the message is delivered.
    pub fn new(id: impl Into<Arc<str>>, source: impl Into<Arc<str>>, attempt: u32) -> Self {
        Self {
            id: id.into(),
            source: source.into(),
            attempt: attempt.max(1),
        }
    }

    /// The message's id: the publisher's message id where it set one, else the broker's
    /// (a JetStream sequence, for example).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The queue or stream consumer the message was delivered from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// How many times the message has been delivered, this time included (1 the first time).
    ///
    /// Brokers that only say *whether* a message was delivered before (RabbitMQ's classic
    /// queues) give at least 2 for a redelivery.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether the message was delivered before.
    pub fn is_redelivery(&self) -> bool {
        self.attempt > 1
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("id", &&*self.id)
            .field("source", &&*self.source)
            .field("attempt", &self.attempt)
            .finish()
    }
}
