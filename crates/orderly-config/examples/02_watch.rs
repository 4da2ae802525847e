//! Editing a watched file restarts the system with the new settings; an invalid edit is
//! rejected, logged, and the system keeps running on the settings it has. A file of endpoints
//! (where peer services live) is watched the same way.
//!
//! The example runs by itself: it writes its two files into a temporary folder, starts the
//! system, edits the files three times (a valid edit, an invalid one, a peer that moved), and
//! stops. In a service, `SighupPolicy::Notify` lets `kill -HUP` ask for the same reload.
//!
//! ```text
//! cargo run -p orderly-config --example 02_watch
//! ```

use std::path::Path;
use std::time::Duration;

use orderly::{BoxError, EventKind, EventStream, Health, SighupPolicy, System};
use orderly_config::{Config, Reload};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Settings {
    greeting: String,
}

#[derive(Debug, Deserialize)]
struct Endpoints {
    spec: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt().with_ansi(false).init();
    let dir = tempfile::tempdir()?;
    let settings = dir.path().join("settings.toml");
    let endpoints = dir.path().join("endpoints.yaml");
    std::fs::write(&settings, "greeting = \"hello\"\n")?;
    std::fs::write(&endpoints, "spec: http://127.0.0.1:8081\n")?;

    // `.watch()` reads the files once a second; faster here, so the example is quick.
    let watch = Reload::Watch {
        interval: Duration::from_millis(100),
    };
    let mut system = System::builder("watch").sighup(SighupPolicy::Notify);
    let config = system.add(
        "config",
        (),
        Config::<Settings>::builder("FAB")
            .file(&settings)
            .reload(watch)
            .build(),
    );
    let peers = system.add(
        "endpoints",
        (),
        Config::<Endpoints>::builder("PEERS")
            .file(&endpoints)
            .reload(watch)
            .build(),
    );
    system.add_fn(
        "greeter",
        (
            config.map(|c| c.greeting.clone()),
            peers.map(|p| p.spec.clone()),
        ),
        |(greeting, spec): (String, String), _ctx| async move {
            tracing::info!("{greeting}; the spec service is at {spec}");
            Ok::<_, BoxError>(())
        },
    );
    let system = system.build()?;
    let mut events = system.events();
    let running = system.start().await?;

    edit(&settings, "greeting = \"bonjour\"\n")?;
    restarted(&mut events).await;

    edit(&settings, "greeting = 42\n")?;
    until(&mut events, |kind| {
        matches!(
            kind,
            EventKind::HealthChanged {
                health: Health::Degraded(_),
                ..
            }
        )
    })
    .await;
    tracing::info!(greeting = %running.resource(config).map_or_else(String::new, |c| c.greeting.clone()), "still running on");

    edit(&endpoints, "spec: http://127.0.0.1:9091\n")?;
    restarted(&mut events).await;

    let report = running.stop().await;
    tracing::info!("{report}");
    Ok(())
}

fn edit(path: &Path, text: &str) -> std::io::Result<()> {
    tracing::info!("editing {}: {}", path.display(), text.trim());
    std::fs::write(path, text)
}

async fn restarted(events: &mut EventStream) {
    until(events, |kind| matches!(kind, EventKind::Restarting { .. })).await;
    until(events, |kind| {
        matches!(kind, EventKind::SystemStarted { .. })
    })
    .await;
}

async fn until(events: &mut EventStream, wanted: impl Fn(&EventKind) -> bool) {
    while let Some(event) = events.recv().await {
        if wanted(&event.kind) {
            return;
        }
    }
}
