//! Integration tests of orderly-nats against a real NATS server with JetStream (`NATS_URL`,
//! default `nats://127.0.0.1:4222`) and, for the zero-loss proof, PostgreSQL (`POSTGRES_URL`).
//! Every test uses streams and databases of its own, so they run in parallel.

// Test helpers outside `#[test]` functions fail loudly on purpose.
#![allow(clippy::unwrap_used)]

mod consume;
mod publish;
mod reconnect;
mod redelivery;
mod stop;
mod support;
mod zero_loss;
