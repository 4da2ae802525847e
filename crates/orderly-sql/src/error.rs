//! The errors of the pool components and the migration task.

use std::fmt;
use std::time::Duration;

/// Something a pool or a migration could not do; [`kind`](Error::kind) says what. The message
/// names the database (backend, host, port and database, or the SQLite file) and never holds a
/// password.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
}

/// What went wrong; see [`Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The settings cannot work: the URL does not fit the backend, or a value is out of range.
    /// Each problem names its setting.
    InvalidSettings {
        /// The backend, e.g. `PostgreSQL`.
        backend: &'static str,
        /// The problems, each naming its setting.
        problems: Vec<String>,
    },
    /// The database could not be reached within the connect timeout.
    Unreachable {
        /// The backend, e.g. `PostgreSQL`.
        backend: &'static str,
        /// Where: `host:port/database`, or the SQLite file.
        target: String,
        /// How many attempts were made.
        attempts: u32,
        /// How long the attempts took.
        elapsed: Duration,
        /// The last attempt's error.
        last: String,
    },
    /// The database answered and refused (wrong password, no such database…): retrying would
    /// not help, so the start failed at once.
    Refused {
        /// The backend, e.g. `PostgreSQL`.
        backend: &'static str,
        /// Where: `host:port/database`, or the SQLite file.
        target: String,
        /// How many attempts were made.
        attempts: u32,
        /// The database's answer.
        reason: String,
    },
    /// A migration failed; nothing after it was applied.
    Migration {
        /// Where: `host:port/database`, or the SQLite file.
        target: String,
        /// Why, as sqlx said it (it names the migration's version).
        reason: String,
    },
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self { kind }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Whether the settings cannot work (a configuration error: exit code 78).
    pub fn is_invalid_settings(&self) -> bool {
        matches!(self.kind, ErrorKind::InvalidSettings { .. })
    }

    /// Whether the database could not be reached within the connect timeout.
    pub fn is_unreachable(&self) -> bool {
        matches!(self.kind, ErrorKind::Unreachable { .. })
    }

    /// Whether the database refused the connection.
    pub fn is_refused(&self) -> bool {
        matches!(self.kind, ErrorKind::Refused { .. })
    }

    /// Whether a migration failed.
    pub fn is_migration(&self) -> bool {
        matches!(self.kind, ErrorKind::Migration { .. })
    }

    /// How many connection attempts were made, for a start that failed to connect.
    pub fn attempts(&self) -> Option<u32> {
        match self.kind {
            ErrorKind::Unreachable { attempts, .. } | ErrorKind::Refused { attempts, .. } => {
                Some(attempts)
            }
            _ => None,
        }
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::InvalidSettings { backend, problems } => {
                write!(
                    f,
                    "invalid {backend} pool settings: {}",
                    problems.join("; ")
                )
            }
            ErrorKind::Unreachable {
                backend,
                target,
                attempts,
                elapsed,
                last,
            } => write!(
                f,
                "cannot connect to {backend} at {target}: {attempts} attempt{} in {elapsed:.1?}, \
                 the last failed with: {last}",
                plural(*attempts)
            ),
            ErrorKind::Refused {
                backend,
                target,
                attempts,
                reason,
            } => write!(
                f,
                "{backend} at {target} refused the connection (attempt {attempts}, not \
                 retried): {reason}"
            ),
            ErrorKind::Migration { target, reason } => {
                write!(f, "migrating the database at {target} failed: {reason}")
            }
        }
    }
}

impl std::error::Error for Error {}
