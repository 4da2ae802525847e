//! Nesting: a whole system added to another as one component (corpjs `group()`).
//!
//! A `storage` system (`db → cache`) is built on its own, then added to the `app` system as the
//! component `storage`. The parent's `http` depends on one resource inside it,
//! `storage.get(cache)`, typed by the child's key. The child starts as one step of the parent
//! and stops when the parent stops it, in order; only the outermost system would own the
//! signals. Started in-process, it prints `http`'s resource and the report, and ends by itself:
//!
//! ```text
//! cargo run -p orderly --example 07_nesting
//! ```

use orderly::{BoxError, System};

#[derive(Clone, Debug)]
struct Cache {
    backend: String,
}

#[tokio::main]
#[allow(
    clippy::print_stdout,
    reason = "printing the resource and report is the point"
)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_target(false).init();

    // The child system, as a storage library might ship it.
    let mut storage = System::builder("storage").log_all_events();
    let db = storage.add_fn("db", (), |(), _ctx| async {
        Ok::<_, BoxError>(String::from("postgres://localhost/app"))
    });
    let cache = storage.add_fn("cache", db, |url, _ctx| async move {
        Ok::<_, BoxError>(Cache {
            backend: format!("in-memory over {url}"),
        })
    });
    let storage = storage.build()?;

    // The parent: the child is one component; its resources are visible through its key.
    let mut app = System::builder("app").log_all_events();
    let storage = app.add("storage", (), storage);
    let http = app.add_fn(
        "http",
        storage.get(cache),
        |cache: Cache, _ctx| async move {
            Ok::<_, BoxError>(format!("serving from cache {}", cache.backend))
        },
    );

    let running = app.build()?.start().await?;
    println!("http: {}", running.resource(http).unwrap_or_default());
    // Reading the child's resources directly also works, through the child's keys.
    if let Some(resources) = running.resource(storage) {
        println!("storage's db: {}", resources.get(db).unwrap_or_default());
    }
    let report = running.stop().await;
    println!("{report}");
    Ok(())
}
