//! Integration tests of orderly-sql against the real PostgreSQL (`POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; each test creates its own database) and
//! SQLite files in temporary directories, one module per concern.

// Test helpers outside `#[test]` functions fail loudly on purpose.
#![allow(clippy::unwrap_used)]

mod health;
mod migrate;
mod settings;
mod sqlite;
mod start;
mod stop;
mod support;
