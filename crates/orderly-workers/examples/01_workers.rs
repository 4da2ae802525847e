//! A worker pool fed by a producer: the producer submits a named job every 500 ms; each job
//! "renders a report" for a few seconds, and ends early when the pool begins stopping.
//!
//! ```text
//! cargo run -p orderly-workers --example 01_workers
//! ```
//!
//! Press Ctrl-C: the producer stops first (it depends on the pool), then the pool refuses new
//! jobs, lets the running and queued ones finish (they see `stopping` and end at once) and the
//! report is logged. Set `SLOW_STOP=1` to make jobs ignore `stopping`: the drain timeout (3 s)
//! aborts them and the report names each one.

use std::process::ExitCode;
use std::time::Duration;

use orderly::{BoxError, System};
use orderly_workers::{Pending, WhenFull, WorkerPool, Workers};

async fn render(workers: Workers, n: u64, ignore_stop: bool) -> Result<(), BoxError> {
    let work = tokio::time::sleep(Duration::from_secs(2 + n % 4));
    if ignore_stop {
        work.await;
    } else {
        tokio::select! {
            () = work => {}
            () = workers.stopping() => {
                tracing::info!(report = n, "stopping: saving a partial report");
            }
        }
    }
    if n % 7 == 3 {
        return Err(format!("report {n}: template missing").into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<ExitCode, BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    // `SLOW_STOP` only chooses the example's behaviour; any value turns it on.
    let ignore_stop = std::env::var_os("SLOW_STOP").is_some();

    let mut system = System::builder("reports").log_all_events();
    let pool = WorkerPool::builder()
        .concurrency(3)
        .queue_capacity(8)
        .when_full(WhenFull::Reject)
        .pending(Pending::Finish)
        .drain_timeout(Duration::from_secs(3))
        .build()?;
    let workers = system.add("workers", (), pool);
    system.add_fn(
        "producer",
        workers,
        move |workers: Workers, ctx| async move {
            let stopping = ctx.clone();
            ctx.spawn("produce", async move {
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                for n in 0.. {
                    tokio::select! {
                        _ = tick.tick() => {}
                        () = stopping.stopping() => break,
                    }
                    let job = render(workers.clone(), n, ignore_stop);
                    if let Err(refused) = workers.try_submit(format!("report-{n}"), job) {
                        tracing::warn!(%refused, "job refused");
                    }
                }
                Ok::<(), BoxError>(())
            });
            Ok::<(), BoxError>(())
        },
    );
    Ok(system.run().await)
}
