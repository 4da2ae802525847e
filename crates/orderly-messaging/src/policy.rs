//! What happens to a message after its handler ran.

use std::time::Duration;

/// How often a failing message is delivered before it goes to the dead-letter path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeliveryPolicy {
    max_deliveries: u32,
    retry_delay: Duration,
}

impl Default for RedeliveryPolicy {
    /// Five deliveries, one second apart where the broker can delay a redelivery.
    fn default() -> Self {
        Self {
            max_deliveries: 5,
            retry_delay: Duration::from_secs(1),
        }
    }
}

impl RedeliveryPolicy {
    /// At most `max_deliveries` deliveries of a message whose handler keeps failing (at least
    /// 1: the first delivery), then the dead-letter path.
    pub fn new(max_deliveries: u32) -> Self {
        Self {
            max_deliveries: max_deliveries.max(1),
            ..Self::default()
        }
    }

    /// How long the broker should wait before delivering a failed message again, where it can
    /// (NATS JetStream's delayed negative acknowledgement); RabbitMQ requeues at once.
    #[must_use]
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// The most deliveries of one message, the first included.
    pub fn max_deliveries(&self) -> u32 {
        self.max_deliveries
    }

    /// The delay before a redelivery, where the broker supports one.
    pub fn delay(&self) -> Duration {
        self.retry_delay
    }
}

/// What the consumer does with a message once its handler ran.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disposition {
    /// The handler succeeded: acknowledge.
    Ack,
    /// The handler failed and the message has deliveries left: deliver it again, after `delay`
    /// where the broker supports one.
    Retry {
        /// How long to wait before the next delivery.
        delay: Duration,
    },
    /// The message cannot succeed, or has used its deliveries: send it to the dead-letter path
    /// (and acknowledge it on the original queue).
    DeadLetter {
        /// Why, for a header on the dead-lettered message and the logs.
        reason: String,
    },
}

impl Disposition {
    /// The outcome's name, as used in metrics labels: `acked`, `retried` or `dead_lettered`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ack => "acked",
            Self::Retry { .. } => "retried",
            Self::DeadLetter { .. } => "dead_lettered",
        }
    }
}
