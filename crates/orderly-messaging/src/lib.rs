//! The consumer contract shared by orderly's broker components (`orderly-amqp` for RabbitMQ,
//! `orderly-nats` for NATS JetStream).
//!
//! A consumer hands each message to a typed [`Handler`]. The message is acknowledged only after
//! the handler succeeded; a handler that fails asks for the message again
//! ([`HandlerError::retry`], the default for `?`) or sends it to the dead-letter path at once
//! ([`HandlerError::reject`]); after [`RedeliveryPolicy::max_deliveries`] attempts a message
//! that keeps failing is dead-lettered too, so a poison message never blocks the others. A
//! message that cannot be decoded is dead-lettered at once: retrying would not change it.
//!
//! [`settle`] is that decision, made the same way for every broker; each broker component maps
//! the resulting [`Disposition`] onto its own acknowledgements.
//!
//! ```
//! use orderly_messaging::{Delivery, Disposition, HandlerError, Json, RedeliveryPolicy, settle};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Measurement { tool: String, value: f64 }
//!
//! /// The handler: make the effect durable (idempotently, keyed by the message id), then return.
//! async fn record(Json(m): Json<Measurement>, delivery: Delivery) -> Result<(), HandlerError> {
//!     if !m.value.is_finite() {
//!         return Err(HandlerError::reject(format!("{}: value is not a number", m.tool)));
//!     }
//!     // insert … on conflict (message_id) do nothing, keyed by delivery.id()
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let policy = RedeliveryPolicy::default(); // 5 deliveries, then the dead-letter path
//! let delivery = Delivery::new("m-1", "measurements", 1);
//! let payload = &br#"{"tool":"scanner-1","value":42.0}"#[..];
//! let disposition = settle(&record, payload, delivery, &policy, None).await;
//! assert_eq!(disposition, Disposition::Ack);
//! # }
//! ```

mod delivery;
mod handler;
mod message;
mod metrics;
mod policy;
mod settle;

pub use delivery::Delivery;
pub use handler::{Handler, HandlerError, HandlerErrorKind};
pub use message::{Decode, Encode, Json};
pub use metrics::ConsumerMetrics;
pub use policy::{Disposition, RedeliveryPolicy};
pub use settle::settle;
