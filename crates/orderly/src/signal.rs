//! Process signals: which ones orderly understands, and the one-owner rule.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

/// A stop or reload signal delivered to the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// SIGTERM: the platform asks the process to stop (Kubernetes, systemd, Docker).
    Terminate,
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGHUP: reload; see [`SighupPolicy`].
    Hangup,
}

impl Signal {
    /// The signal's number on Linux (15, 2, 1); a forced exit uses `128 + number`.
    pub fn number(self) -> u8 {
        match self {
            Signal::Terminate => 15,
            Signal::Interrupt => 2,
            Signal::Hangup => 1,
        }
    }

    /// The signal's conventional name, e.g. `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
            Signal::Hangup => "SIGHUP",
        }
    }

    pub(crate) fn stops(self) -> bool {
        matches!(self, Signal::Terminate | Signal::Interrupt)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What SIGHUP does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SighupPolicy {
    /// Log it and carry on (the default).
    #[default]
    Ignore,
    /// Restart the whole system in-process: stop every component in order, start them again.
    Restart,
    /// Only announce it ([`EventKind::SignalReceived`](crate::EventKind::SignalReceived)): the
    /// components that reload on demand act on it. A configuration component, for one, reads
    /// its files again and restarts the system only if the new settings are valid, where
    /// `Restart` would restart it in any case.
    Notify,
}

static OWNED: AtomicBool = AtomicBool::new(false);

/// Proof that this system owns the process's signals; at most one exists per process.
#[derive(Debug)]
pub(crate) struct Ownership(());

impl Ownership {
    pub(crate) fn acquire() -> Option<Self> {
        OWNED
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Self(()))
    }
}

impl Drop for Ownership {
    fn drop(&mut self) {
        OWNED.store(false, Ordering::Release);
    }
}

/// Turns the process's signals into a stream, installed before the system starts so that a
/// signal during startup is seen.
#[derive(Debug)]
pub(crate) struct Listener {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Listener {
    #[cfg(unix)]
    pub(crate) fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    #[cfg(not(unix))]
    pub(crate) fn install() -> std::io::Result<Self> {
        Ok(Self {})
    }

    /// Waits for the next signal.
    ///
    /// # Cancel safety
    /// Cancel safe: a signal that arrives while nobody waits is kept for the next call.
    #[cfg(unix)]
    pub(crate) async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Terminate,
            _ = self.int.recv() => Signal::Interrupt,
            _ = self.hup.recv() => Signal::Hangup,
        }
    }

    #[cfg(not(unix))]
    pub(crate) async fn recv(&mut self) -> Signal {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Signal::Interrupt,
            Err(_) => std::future::pending().await,
        }
    }
}
