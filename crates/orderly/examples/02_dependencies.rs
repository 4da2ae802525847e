//! Typed dependencies: config → db pool → repository → http, each receiving only what it
//! declared.
//!
//! Shows the [`Key`](orderly::Key) that `add` returns, a mapped dependency
//! (`config.map(|c| c.db.clone())`: the pool receives only its part of the config), a tuple of
//! dependencies, and an optional one. The system is started in-process with `start()` (as a
//! test or an embedding program would), the last component's resource is printed, and the stop
//! returns the [`Report`](orderly::Report). It ends by itself:
//!
//! ```text
//! cargo run -p orderly --example 02_dependencies
//! ```

use std::sync::Arc;

use orderly::{BoxError, Context, System};

#[derive(Clone, Debug)]
struct Config {
    db: DbConfig,
    http_addr: String,
}

#[derive(Clone, Debug)]
struct DbConfig {
    url: String,
}

/// What the pool delegates; cheap to clone, like a real pool.
#[derive(Clone, Debug)]
struct Pool(Arc<str>);

#[derive(Clone, Debug)]
struct Repository(Pool);

#[derive(Clone, Debug)]
struct Metrics;

/// `http`'s start: the dependencies arrive in the shape of the tuple of keys.
async fn serve(
    (addr, repository, metrics): (String, Repository, Option<Metrics>),
    _ctx: Context,
) -> Result<String, BoxError> {
    let metrics = if metrics.is_some() { "on" } else { "off" };
    let db = repository.0.0;
    Ok(format!("listening on {addr}, db {db}, metrics {metrics}"))
}

#[tokio::main]
#[allow(clippy::print_stdout, reason = "printing is the point")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_target(false).init();

    let mut system = System::builder("dependencies");
    let config = system.add_fn("config", (), |(), _ctx| async {
        Ok::<_, BoxError>(Config {
            db: DbConfig {
                url: "postgres://localhost/shop".into(),
            },
            http_addr: "127.0.0.1:8080".into(),
        })
    });
    // Mapped: `db` receives only its part of the config.
    let pool = system.add_fn(
        "db",
        config.map(|c| c.db.clone()),
        |db: DbConfig, _ctx| async { Ok::<_, BoxError>(Pool(db.url.into())) },
    );
    let repository = system.add_fn("repository", pool, |pool, _ctx| async {
        Ok::<_, BoxError>(Repository(pool))
    });
    let metrics = system.add_fn("metrics", (), |(), _ctx| async {
        Ok::<_, BoxError>(Metrics)
    });
    // A tuple of dependencies; the optional one is `None` when that component is ignorable and
    // failed, or was removed (see 04_ignorable).
    let deps = (
        config.map(|c| c.http_addr.clone()),
        repository,
        metrics.optional(),
    );
    let http = system.add_fn("http", deps, serve);

    let running = system.build()?.start().await?;
    println!("http: {}", running.resource(http).unwrap_or_default());
    let report = running.stop().await;
    println!("{report}");
    Ok(())
}
