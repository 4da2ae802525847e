//! What can go wrong when telemetry is set up.

use std::io;

/// Telemetry could not be set up: an invalid variable (named), or a logger or metrics recorder
/// that is already installed.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: ErrorKind,
}

/// What went wrong; see [`Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An environment variable has an invalid value.
    #[error("{variable}: {reason}")]
    InvalidVariable {
        /// The variable, e.g. `LOG_FORMAT`.
        variable: &'static str,
        /// What was expected and what was found.
        reason: String,
    },
    /// A global `tracing` subscriber is already installed in this process.
    #[error("a global tracing subscriber is already installed")]
    LoggerInstalled,
    /// A global `metrics` recorder is already installed in this process.
    #[error("a global metrics recorder is already installed")]
    RecorderInstalled,
    /// The thread that writes log lines to stdout could not be started.
    #[error("cannot start the log writer thread")]
    WriterThread(#[source] io::Error),
}

impl Error {
    pub(crate) fn invalid(variable: &'static str, reason: impl Into<String>) -> Self {
        ErrorKind::InvalidVariable {
            variable,
            reason: reason.into(),
        }
        .into()
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The variable at fault, when a variable is.
    pub fn variable(&self) -> Option<&'static str> {
        match self.kind {
            ErrorKind::InvalidVariable { variable, .. } => Some(variable),
            _ => None,
        }
    }

    /// Whether the configuration is at fault (an invalid variable).
    pub fn is_invalid_config(&self) -> bool {
        self.variable().is_some()
    }

    /// The exit code for `main`: 78 (`EX_CONFIG`) for invalid configuration, as orderly's
    /// [`ExitCodes`](orderly::ExitCodes) use, and 70 (`EX_SOFTWARE`) otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.is_invalid_config() { 78 } else { 70 }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self { kind }
    }
}
