//! Integration tests of orderly-http against real sockets, one module per concern.

// Test helpers outside `#[test]` functions fail loudly on purpose.
#![allow(clippy::unwrap_used)]

mod admin;
mod drain;
mod h2;
mod metrics;
mod observability;
mod prom;
mod protection;
mod support;
mod upgrade;
