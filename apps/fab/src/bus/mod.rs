//! The event bus between the services: a small trait (publish an event, subscribe a handler)
//! with an in-process implementation for `fab all` (broker implementations of the trait are
//! still to come); and [`fdc`], FDC sample batches consumed from RabbitMQ or NATS.
//!
//! Events are published *after* the change they announce is committed, so a subscriber never
//! sees an event whose effect could still be rolled back; delivery is at least once in
//! spirit (handlers must be idempotent: every fab write is, by id).

pub mod fdc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::domain::apc::thread::{Disposition, RunRecord};
use crate::domain::name::Name;

/// Something that happened in a fab service, for the others.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FabEvent {
    /// APC logged a run (its SR was sent to the tool).
    RunLogged {
        /// The record.
        record: Box<RunRecord>,
    },
    /// APC received a measurement.
    Measured {
        /// The measurement id.
        measurement: Name,
        /// Its run.
        run: Name,
        /// What became of it.
        disposition: Option<Disposition>,
    },
}

impl FabEvent {
    /// The event's subject (routing key), e.g. `apc.run_logged`.
    #[must_use]
    pub fn subject(&self) -> &'static str {
        match self {
            Self::RunLogged { .. } => "apc.run_logged",
            Self::Measured { .. } => "apc.measured",
        }
    }
}

/// Where fab services publish events and subscribe to them.
pub trait Bus: Send + Sync + 'static {
    /// Publishes `event` (after its effect is committed). Never blocks on slow subscribers.
    fn publish(&self, event: FabEvent);

    /// A stream of every event published from now on, for a subscriber to drive (the caller
    /// runs it in a tracked task and stops it when its component stops).
    fn subscribe(&self) -> Subscription;
}

/// Events for one subscriber, in publication order.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<FabEvent>,
}

impl Subscription {
    /// The next event; `None` once the bus is gone. A subscriber that fell more than the
    /// bus's capacity behind skips the events it missed (logged with how many).
    pub async fn next(&mut self) -> Option<FabEvent> {
        loop {
            match self.rx.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "bus subscriber fell behind and skipped events");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// The in-process bus of `fab all`: a bounded broadcast channel.
#[derive(Clone, Debug)]
pub struct InProcessBus {
    tx: broadcast::Sender<FabEvent>,
}

impl InProcessBus {
    /// A bus keeping up to `capacity` events for slow subscribers.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self { tx }
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new(1024)
    }
}

impl Bus for InProcessBus {
    fn publish(&self, event: FabEvent) {
        // No subscriber is not an error: nobody needs the event in this process.
        let _ = self.tx.send(event);
    }

    fn subscribe(&self) -> Subscription {
        Subscription {
            rx: self.tx.subscribe(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn a_subscriber_gets_what_is_published_after_it_subscribed_in_order() {
        let bus = InProcessBus::new(8);
        bus.publish(FabEvent::Measured {
            measurement: Name::parse("m", "M-0").unwrap(),
            run: Name::parse("r", "R-0").unwrap(),
            disposition: None,
        });
        let mut sub = bus.subscribe();
        for i in 1..=2 {
            bus.publish(FabEvent::Measured {
                measurement: Name::parse("m", format!("M-{i}")).unwrap(),
                run: Name::parse("r", "R-0").unwrap(),
                disposition: None,
            });
        }
        for i in 1..=2 {
            match sub.next().await.unwrap() {
                FabEvent::Measured { measurement, .. } => {
                    assert_eq!(measurement.as_str(), format!("M-{i}"))
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
