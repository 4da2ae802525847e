//! Events: the typed stream of everything a system does, with timestamps and durations.
//!
//! A subscriber is taken with `system.events()` *before* the start, so it sees every event; it
//! collects them until `SystemStopped` and prints a timeline (time since the system was built,
//! the event, its component, how long the step took). `log_all_events()` additionally sends
//! each event through `tracing` as it happens, with structured fields, for any logger. `cache`
//! and `queue` both need only `db`, so they start at the same time. It ends by itself:
//!
//! ```text
//! cargo run -p orderly --example 08_events
//! ```

use std::time::Duration;

use orderly::{BoxError, EventKind, System};

/// A start that takes `ms` milliseconds.
async fn work(ms: u64) -> Result<(), BoxError> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(())
}

#[tokio::main]
#[allow(clippy::print_stdout, reason = "printing the timeline is the point")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_target(false).init();

    let mut system = System::builder("events").log_all_events();
    let db = system.add_fn("db", (), |(), _ctx| work(100));
    let cache = system.add_fn("cache", db, |(), _ctx| work(30));
    let queue = system.add_fn("queue", db, |(), _ctx| work(60));
    system.add_fn("http", (cache, queue), |_, _ctx| work(10));
    let system = system.build()?;

    let mut events = system.events();
    let timeline = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(event) = events.recv().await {
            let last = matches!(event.kind, EventKind::SystemStopped { .. });
            seen.push(event);
            if last {
                break;
            }
        }
        seen
    });

    let running = system.start().await?;
    running.stop().await;

    for event in timeline.await? {
        let took = match &event.kind {
            EventKind::SystemStarted { took }
            | EventKind::ComponentStarted { took, .. }
            | EventKind::ComponentStopped { took, .. }
            | EventKind::SystemStopped { took, .. } => format!("took {took:.1?}"),
            EventKind::ReadinessChanged { ready, .. } => format!("ready: {ready}"),
            _ => String::new(),
        };
        let component = event.kind.component().unwrap_or("");
        let (at, name) = (event.elapsed, event.kind.name());
        println!(
            "{}",
            format!("{at:>12.1?}  {name:<20} {component:<8} {took}").trim_end()
        );
    }
    Ok(())
}
