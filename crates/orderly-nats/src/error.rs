//! What can go wrong, naming the component.

use std::fmt;
use std::sync::Arc;

use orderly::BoxError;

/// An error of a NATS component: which component, what failed ([`ErrorKind`]), and the
/// client's error as [`source`](std::error::Error::source).
#[derive(Debug)]
pub struct Error {
    component: Arc<str>,
    kind: ErrorKind,
    source: Option<BoxError>,
}

/// What failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The connection to the server (URL shown without its password).
    Connect {
        /// The server's URL, redacted.
        url: String,
    },
    /// A setting is missing or invalid.
    Settings {
        /// The setting's field name (e.g. `stream`).
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The stream could not be found or created.
    Stream {
        /// The stream's name.
        stream: String,
    },
    /// The durable consumer could not be created or updated.
    Consumer {
        /// The consumer's name.
        consumer: String,
    },
    /// The message could not be encoded.
    Encode,
    /// The server did not acknowledge a publish (no stream on the subject, a timeout, a lost
    /// connection).
    Publish {
        /// The subject published to.
        subject: String,
    },
    /// The component is stopping and takes no new work.
    Stopping,
}

impl Error {
    pub(crate) fn new(component: &Arc<str>, kind: ErrorKind) -> Self {
        Self {
            component: component.clone(),
            kind,
            source: None,
        }
    }

    pub(crate) fn with(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The component's name.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// What failed.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Whether connecting to the server failed.
    pub fn is_connect(&self) -> bool {
        matches!(self.kind, ErrorKind::Connect { .. })
    }

    /// Whether a publish was not acknowledged.
    pub fn is_publish(&self) -> bool {
        matches!(self.kind, ErrorKind::Publish { .. })
    }

    /// Whether the component was stopping.
    pub fn is_stopping(&self) -> bool {
        matches!(self.kind, ErrorKind::Stopping)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.component)?;
        match &self.kind {
            ErrorKind::Connect { url } => write!(f, "cannot connect to {url}"),
            ErrorKind::Settings { field, problem } => write!(f, "setting `{field}` {problem}"),
            ErrorKind::Stream { stream } => write!(f, "stream {stream} is not available"),
            ErrorKind::Consumer { consumer } => {
                write!(f, "consumer {consumer} cannot be created")
            }
            ErrorKind::Encode => f.write_str("the message cannot be encoded"),
            ErrorKind::Publish { subject } => {
                write!(f, "publish on {subject} was not acknowledged")
            }
            ErrorKind::Stopping => f.write_str("stopping: no new publishes"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
