//! The errors of the HTTP server and the admin listener.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Something the HTTP server or the admin listener could not do; [`kind`](Error::kind) says
/// what, and the message names the address, the variable or the requests at fault.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
}

/// What went wrong; see [`Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The listener could not be bound (the port is in use, the address is not local…).
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why, as the operating system said it.
        reason: String,
    },
    /// A variable such as `PORT` or `HOST` has an invalid value.
    InvalidVariable {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// The drain deadline passed with requests still in flight; they were cut.
    DrainDeadline {
        /// The drain timeout that passed.
        after: Duration,
        /// The requests that were cut, as `(route, how many)`, e.g. `("GET /events", 2)`.
        cut: Vec<(String, usize)>,
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

    /// Whether the listener could not be bound.
    pub fn is_bind(&self) -> bool {
        matches!(self.kind, ErrorKind::Bind { .. })
    }

    /// Whether the drain deadline cut requests that were still in flight.
    pub fn is_drain_deadline(&self) -> bool {
        matches!(self.kind, ErrorKind::DrainDeadline { .. })
    }

    /// The requests cut at the drain deadline, as `(route, how many)`; empty otherwise.
    pub fn cut_requests(&self) -> &[(String, usize)] {
        match &self.kind {
            ErrorKind::DrainDeadline { cut, .. } => cut,
            _ => &[],
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Bind { addr, reason } => write!(f, "cannot listen on {addr}: {reason}"),
            ErrorKind::InvalidVariable { variable, value } if *variable == crate::config::HOST => {
                write!(
                    f,
                    "{variable}: expected an IP address such as 0.0.0.0 or ::, found '{value}'"
                )
            }
            ErrorKind::InvalidVariable { variable, value } => write!(
                f,
                "{variable}: expected a port number (0-65535), found '{value}'"
            ),
            ErrorKind::DrainDeadline { after, cut } => {
                let total: usize = cut.iter().map(|(_, n)| n).sum();
                write!(
                    f,
                    "drain deadline of {after:?} passed; cut {total} request{} in flight: ",
                    if total == 1 { "" } else { "s" }
                )?;
                for (i, (route, n)) in cut.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{route} ({n})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}
