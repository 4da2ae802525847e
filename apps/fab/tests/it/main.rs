//! Service tests: the API of an in-process `fab all` on SQLite (a temp dir) and on PostgreSQL
//! (a database per test), through a real HTTP client; and the `fab` binary as a process.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod api;
mod bus;
mod fdc;
mod idempotency;
mod jobs;
mod openapi;
mod process;
mod replay;
mod shutdown;
mod simulate;
mod spec;
mod specsync;
mod support;
