//! The drill's error: what could not be set up or run (a lost request is not an error, it is
//! the drill's result).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a drill could not run to its end. Its [`kind`](Error::kind) says what went wrong; the
/// cause, if any, is the [`source`](std::error::Error::source).
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
}

/// What went wrong in a drill.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The options are inconsistent; every problem is listed, each naming its option.
    InvalidOptions(Vec<String>),
    /// The load balancer could not listen.
    Bind {
        /// The address it tried.
        addr: std::net::SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// A replica process could not be started.
    Spawn {
        /// The replica.
        replica: String,
        /// Its command line.
        command: String,
        /// Why.
        source: io::Error,
    },
    /// A replica did not pass its readiness probe in time.
    NotReady {
        /// The replica.
        replica: String,
        /// How long the drill waited (the rollout's progress deadline).
        waited: Duration,
    },
    /// A replica exited before it was ready (its log is in the work directory).
    ExitedEarly {
        /// The replica.
        replica: String,
        /// How it exited.
        exit: String,
    },
    /// The message broker could not be used (connect, publish, inspect or delete a queue).
    Broker {
        /// What the drill was doing, with the broker's URL (its password redacted).
        action: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The drill's PostgreSQL database could not be created, read or dropped.
    Database {
        /// What the drill was doing, naming the database (its URL's password redacted).
        action: String,
        /// Why.
        source: sqlx::Error,
    },
    /// A file of the drill (work directory, ledger, report) could not be read or written.
    File {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self { kind }
    }

    pub(crate) fn file(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::new(ErrorKind::File {
            path: path.into(),
            source,
        })
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The options were rejected before anything started.
    pub fn is_invalid_options(&self) -> bool {
        matches!(self.kind, ErrorKind::InvalidOptions(_))
    }

    /// The message broker or the database failed the drill itself (not a replica).
    pub fn is_backend(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Broker { .. } | ErrorKind::Database { .. }
        )
    }

    pub(crate) fn broker(
        action: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::new(ErrorKind::Broker {
            action: action.into(),
            source: source.into(),
        })
    }

    pub(crate) fn database(action: impl Into<String>, source: sqlx::Error) -> Self {
        Self::new(ErrorKind::Database {
            action: action.into(),
            source,
        })
    }

    /// A replica could not be started or never became ready.
    pub fn is_replica(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Spawn { .. } | ErrorKind::NotReady { .. } | ErrorKind::ExitedEarly { .. }
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("orderly-drill: ")?;
        match &self.kind {
            ErrorKind::InvalidOptions(problems) => {
                write!(f, "invalid options: {}", problems.join("; "))
            }
            ErrorKind::Bind { addr, .. } => write!(f, "the load balancer cannot listen on {addr}"),
            ErrorKind::Spawn {
                replica, command, ..
            } => write!(f, "cannot start replica {replica} (`{command}`)"),
            ErrorKind::NotReady { replica, waited } => {
                write!(f, "replica {replica} was not ready after {waited:?}")
            }
            ErrorKind::ExitedEarly { replica, exit } => {
                write!(f, "replica {replica} exited before it was ready ({exit})")
            }
            ErrorKind::Broker { action, .. } => write!(f, "broker: cannot {action}"),
            ErrorKind::Database { action, .. } => write!(f, "database: cannot {action}"),
            ErrorKind::File { path, .. } => write!(f, "cannot use {}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Bind { source, .. }
            | ErrorKind::Spawn { source, .. }
            | ErrorKind::File { source, .. } => Some(source),
            ErrorKind::Broker { source, .. } => Some(source.as_ref()),
            ErrorKind::Database { source, .. } => Some(source),
            ErrorKind::InvalidOptions(_)
            | ErrorKind::NotReady { .. }
            | ErrorKind::ExitedEarly { .. } => None,
        }
    }
}

pub(crate) use orderly_config::redact_url as redact;
