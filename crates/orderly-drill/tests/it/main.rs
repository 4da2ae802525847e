//! Integration tests of orderly-drill: real drills of real replica processes (the crate's
//! examples) through the real load balancer, and queue drills of real consumer processes on
//! the local RabbitMQ and PostgreSQL.
//!
//! `cargo test -p orderly-drill` builds the examples first; `cargo test --test it` alone does
//! not (the fixture check says so).

// Test helpers outside `#[test]` functions fail loudly on purpose.
#![allow(clippy::unwrap_used)]

#[path = "../../../orderly/tests/it/fixture.rs"]
mod fixture;

mod cli;
mod drill;
mod options;
mod queue;
