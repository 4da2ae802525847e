//! Service tests: the API of an in-process `fab all` on SQLite (a temp dir) and on PostgreSQL
//! (a database per test), through a real HTTP client; and the `fab` binary as a process.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

/// `on_both!(a, b)`: tests `sqlite::a`, `postgres::a`, … each running the module's
/// `async fn a(backend: Backend)` on that backend (`Backend` in scope in the module).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

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
