//! Reloading while the system runs: the files, read at an interval, and SIGHUP.
//!
//! The files are polled rather than watched with inotify: polling sees every way a file can
//! change — written in place, replaced by a rename (most editors), or swapped behind a symlink
//! (a Kubernetes ConfigMap volume updates `..data`, not the file, so a watch on the file misses
//! it) — on every filesystem, including network and bind mounts where change notifications do
//! not arrive. Configuration files are small: reading and hashing them once a second costs next
//! to nothing, and needs no thread of its own.

use std::marker::PhantomData;
use std::sync::Arc;

use orderly::{BoxError, Context, EventKind, EventStream, Health, Signal};
use serde::de::DeserializeOwned;
use tokio::time::{Interval, MissedTickBehavior};

use crate::config::{Reload, STALE, Spec, load};
use crate::source::Fingerprint;

/// Why the settings are loaded again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    Changed,
    Hangup,
}

/// The task that reloads a config's settings while the system runs.
pub(crate) struct Watcher<T> {
    spec: Arc<Spec>,
    ctx: Context,
    /// What the files held when the running settings were loaded.
    running: Fingerprint,
    /// What the files held when they were last loaded (valid or not).
    seen: Fingerprint,
    _settings: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + Send + 'static> Watcher<T> {
    pub(crate) fn new(
        spec: Arc<Spec>,
        ctx: Context,
        running: Fingerprint,
        seen: Fingerprint,
    ) -> Self {
        Self {
            spec,
            ctx,
            running,
            seen,
            _settings: PhantomData,
        }
    }

    /// Runs until the component stops: on SIGHUP, or on a change of the files that has settled,
    /// loads the settings and restarts the system if they are valid; logs them and reports the
    /// component degraded if not.
    pub(crate) async fn run(mut self, mut events: EventStream) -> Result<(), BoxError> {
        let mut ticker = match self.spec.reload {
            Reload::Watch { interval } => {
                let mut ticker =
                    tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
                ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
                Some(ticker)
            }
            _ => None,
        };
        let mut events_open = true;
        // A change seen once; acted on when the next read finds the same.
        let mut changed: Option<Fingerprint> = None;
        loop {
            let trigger = tokio::select! {
                () = self.ctx.stopping() => return Ok(()),
                () = tick(&mut ticker) => {
                    let now = fingerprint(&self.spec).await?;
                    if now == self.seen {
                        changed = None;
                        continue;
                    }
                    if changed.as_ref() != Some(&now) {
                        changed = Some(now);
                        continue;
                    }
                    Trigger::Changed
                }
                event = events.recv(), if events_open => match event {
                    Some(event) if matches!(event.kind, EventKind::SignalReceived { signal: Signal::Hangup }) => Trigger::Hangup,
                    Some(_) => continue,
                    None => {
                        events_open = false;
                        continue;
                    }
                },
            };
            changed = None;
            self.reload(trigger).await?;
        }
    }

    async fn reload(&mut self, trigger: Trigger) -> Result<(), BoxError> {
        let (loaded, seen) = load::<T>(&self.spec).await?;
        let name = self.ctx.name();
        let why = match trigger {
            Trigger::Changed => "a file changed",
            Trigger::Hangup => "SIGHUP",
        };
        match loaded {
            Ok(_) if trigger == Trigger::Changed && seen == self.running => {
                tracing::info!(
                    component = name,
                    "the files are back to the running settings"
                );
                self.ctx.set_health(Health::Healthy);
            }
            Ok(_) => {
                tracing::info!(
                    component = name,
                    "{why}: the new settings are valid; restarting"
                );
                self.ctx.restart();
            }
            Err(error) => {
                tracing::error!(
                    component = name,
                    problems = %error,
                    "{why}: the new settings are invalid; the system keeps running on the \
                     previous ones"
                );
                self.ctx.set_health(Health::degraded(STALE));
            }
        }
        self.seen = seen;
        Ok(())
    }
}

/// The next tick, or never without a ticker.
async fn tick(ticker: &mut Option<Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Reads the files on a blocking thread.
async fn fingerprint(spec: &Arc<Spec>) -> Result<Fingerprint, BoxError> {
    let spec = spec.clone();
    Ok(tokio::task::spawn_blocking(move || spec.fingerprint()).await?)
}
