//! An ignorable component: a cache that fails to start is reported and left out, and the
//! dependent that declared it optional receives `None` and carries on without it.
//!
//! The system starts (the cache is *skipped*, not fatal), `http` logs that it serves without a
//! cache, then the system is stopped and the report printed (exit code 0). It ends by itself:
//!
//! ```text
//! cargo run -p orderly --example 04_ignorable
//! ```

use orderly::{BoxError, Spec, System};

/// A stand-in for a cache client.
#[derive(Clone, Debug)]
struct Cache;

#[tokio::main]
#[allow(clippy::print_stdout, reason = "printing the report is the point")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_target(false).init();

    let mut system = System::builder("ignorable").log_all_events();
    // Ignorable: its failure to start does not stop the system.
    let cache = system.add_fn(Spec::new("cache").ignorable(), (), |(), _ctx| async {
        Err::<Cache, BoxError>("redis://localhost:6379: connection refused".into())
    });
    // Optional: `start` receives `Option<Cache>`. A dependent that *required* the cache would
    // fail to start, naming both components.
    let http = system.add_fn("http", cache.optional(), |cache, _ctx| async move {
        let mode = match cache {
            Some(Cache) => "with a cache",
            None => "without a cache: every read goes to the database",
        };
        tracing::info!("http: serving {mode}");
        Ok::<_, BoxError>(mode)
    });

    let running = system.build()?.start().await?;
    anyhow::ensure!(
        running.resource(cache).is_none(),
        "the cache was meant to fail"
    );
    anyhow::ensure!(running.resource(http).is_some(), "http carries on");
    let report = running.stop().await;
    println!("{report}");
    Ok(())
}
