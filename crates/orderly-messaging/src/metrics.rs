//! The consumer metrics every broker component records, through the `metrics` facade.

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

use crate::policy::Disposition;

/// A consumer's metrics, registered once and labelled with the broker and the consumer's
/// name:
///
/// | metric | kind | labels |
/// |---|---|---|
/// | `orderly_consumer_in_flight` | gauge: messages being handled | |
/// | `orderly_consumer_messages_total` | counter: messages settled | `outcome` = `acked`, `retried`, `dead_lettered` |
/// | `orderly_consumer_redelivered_total` | counter: deliveries that were redeliveries | |
/// | `orderly_consumer_handler_seconds` | histogram: handler duration | |
///
/// All carry `broker` (`amqp`, `nats`) and `consumer`. Without an installed recorder they cost
/// nothing.
#[derive(Debug, Clone)]
pub struct ConsumerMetrics {
    pub(crate) in_flight: Gauge,
    acked: Counter,
    retried: Counter,
    dead_lettered: Counter,
    pub(crate) redelivered: Counter,
    pub(crate) handler_seconds: Histogram,
}

impl ConsumerMetrics {
    /// Registers the metrics of consumer `consumer` on `broker`.
    pub fn new(broker: &'static str, consumer: &str) -> Self {
        let consumer = consumer.to_owned();
        let outcome = |outcome: &'static str| {
            metrics::counter!(
                "orderly_consumer_messages_total",
                "broker" => broker, "consumer" => consumer.clone(), "outcome" => outcome
            )
        };
        Self {
            in_flight: metrics::gauge!(
                "orderly_consumer_in_flight", "broker" => broker, "consumer" => consumer.clone()
            ),
            acked: outcome("acked"),
            retried: outcome("retried"),
            dead_lettered: outcome("dead_lettered"),
            redelivered: metrics::counter!(
                "orderly_consumer_redelivered_total", "broker" => broker, "consumer" => consumer.clone()
            ),
            handler_seconds: metrics::histogram!(
                "orderly_consumer_handler_seconds", "broker" => broker, "consumer" => consumer
            ),
        }
    }

    pub(crate) fn settled(&self, disposition: &Disposition, handler: Duration) {
        self.handler_seconds.record(handler.as_secs_f64());
        match disposition {
            Disposition::Ack => self.acked.increment(1),
            Disposition::Retry { .. } => self.retried.increment(1),
            Disposition::DeadLetter { .. } => self.dead_lettered.increment(1),
        }
    }
}
