//! Settings types the tests share, temporary config files, captured logs, event helpers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use orderly::{Event, EventKind, EventStream};
use orderly_config::Secret;
use serde::Deserialize;

/// A guard against a hung test, never an expectation of speed.
pub(crate) const GUARD: Duration = Duration::from_secs(30);

/// The settings of a small service: a required name, a database table with defaults.
#[derive(Debug, Deserialize)]
pub(crate) struct Settings {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) db: Db,
    #[serde(default)]
    pub(crate) http: Http,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub(crate) struct Db {
    pub(crate) url: String,
    pub(crate) pool_size: u16,
    pub(crate) password: Secret<String>,
    #[serde(with = "orderly_config::duration")]
    pub(crate) timeout: Duration,
    #[serde(with = "orderly_config::size")]
    pub(crate) max_payload: u64,
}

impl Default for Db {
    fn default() -> Self {
        Self {
            url: "sqlite::memory:".into(),
            pool_size: 5,
            password: Secret::default(),
            timeout: Duration::from_secs(5),
            max_payload: 1 << 20,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub(crate) struct Http {
    pub(crate) port: u16,
    pub(crate) hosts: Vec<String>,
    pub(crate) debug: bool,
}

impl Default for Http {
    fn default() -> Self {
        Self {
            port: 8080,
            hosts: Vec::new(),
            debug: false,
        }
    }
}

/// A temporary folder of config files, removed when dropped.
pub(crate) struct Dir(tempfile::TempDir);

impl Dir {
    pub(crate) fn new() -> Self {
        Self(tempfile::tempdir().expect("a temporary folder"))
    }

    /// Writes `name` with `text` and returns its path.
    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("a config file written");
        path
    }

    /// Replaces `name` at once, as most editors save: a new file renamed over the old one.
    pub(crate) fn replace(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        let draft = self.path(&format!(".{name}.draft"));
        std::fs::write(&draft, text).expect("a draft written");
        std::fs::rename(&draft, &path).expect("the draft renamed over the file");
        path
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

/// Log lines captured into a temporary file (tracing-subscriber writes through `&File`).
pub(crate) struct Captured(tempfile::NamedTempFile);

impl Default for Captured {
    fn default() -> Self {
        Self(tempfile::NamedTempFile::new().expect("a temporary log file"))
    }
}

impl Captured {
    /// Makes this the `tracing` subscriber of the current thread until the guard drops; on a
    /// current-thread runtime the system and its components log here too.
    pub(crate) fn install(&self) -> tracing::subscriber::DefaultGuard {
        let file = Arc::new(self.0.reopen().expect("the log file, to write"));
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_writer(file)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub(crate) fn text(&self) -> String {
        std::fs::read_to_string(self.0.path()).expect("the log file, to read")
    }
}

/// Waits for the first event that `wanted` accepts, keeping every event seen in `seen`.
pub(crate) async fn until(
    events: &mut EventStream,
    seen: &mut Vec<Event>,
    wanted: impl Fn(&EventKind) -> bool,
) -> Event {
    let wait = async {
        loop {
            let event = events.recv().await.expect("the system is still there");
            seen.push(event.clone());
            if wanted(&event.kind) {
                return event;
            }
        }
    };
    tokio::time::timeout(GUARD, wait)
        .await
        .expect("the event came before the guard")
}

/// Every event until the system stopped.
pub(crate) async fn until_stopped(events: &mut EventStream) -> Vec<Event> {
    let mut seen = Vec::new();
    until(events, &mut seen, |kind| {
        matches!(kind, EventKind::SystemStopped { .. })
    })
    .await;
    seen
}

/// The names of `events`, with their component: `component_started config`.
pub(crate) fn trace(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|event| match event.kind.component() {
            Some(component) => format!("{} {component}", event.kind.name()),
            None => event.kind.name().to_owned(),
        })
        .collect()
}
