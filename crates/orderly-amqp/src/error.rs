//! The errors of the consumer and the publisher.

use std::fmt;

/// Something a RabbitMQ component could not do; the message names the component, and
/// [`kind`](Error::kind) says what went wrong.
#[derive(Debug)]
pub struct Error {
    component: String,
    kind: ErrorKind,
}

/// What went wrong; see [`Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A setting is invalid.
    InvalidSetting {
        /// The setting, as its field name (`prefetch`, `queue`…) under the component's
        /// configuration prefix.
        setting: &'static str,
        /// Why.
        reason: String,
    },
    /// The broker could not be reached or refused the connection.
    Connect {
        /// The URL, its password redacted.
        url: String,
        /// Why, as the client library said it.
        reason: String,
    },
    /// A queue could not be declared, or (with [`Declare::Check`](crate::Declare::Check)) does
    /// not exist or differs from what was asked.
    Queue {
        /// The queue.
        queue: String,
        /// Why, as the broker said it.
        reason: String,
    },
    /// The message could not be encoded.
    Encode {
        /// The encoder's error.
        reason: String,
    },
    /// The message could not be sent, or the connection was lost before the broker confirmed
    /// it: it may or may not have been stored, so publish it again (consumers deduplicate by
    /// message id).
    Publish {
        /// Why.
        reason: String,
    },
    /// The broker refused the message (a negative acknowledgement).
    Nacked,
    /// No queue is bound to the exchange and routing key: the broker returned the message.
    Unroutable {
        /// The exchange (`""` is the default exchange).
        exchange: String,
        /// The routing key.
        routing_key: String,
    },
    /// The publisher is stopping and takes no new messages.
    Stopping,
}

impl Error {
    pub(crate) fn new(component: impl Into<String>, kind: ErrorKind) -> Self {
        Self {
            component: component.into(),
            kind,
        }
    }

    /// The component (as named in the system) that failed.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Whether the broker could not be reached.
    pub fn is_connect(&self) -> bool {
        matches!(self.kind, ErrorKind::Connect { .. })
    }

    /// Whether the publisher was stopping and refused the message.
    pub fn is_stopping(&self) -> bool {
        matches!(self.kind, ErrorKind::Stopping)
    }

    /// Whether the broker refused or returned the message (nack, or unroutable).
    pub fn is_rejected_by_broker(&self) -> bool {
        matches!(self.kind, ErrorKind::Nacked | ErrorKind::Unroutable { .. })
    }

    /// Whether the message's fate is unknown (the connection failed before the confirm):
    /// publishing it again is safe when consumers deduplicate by message id.
    pub fn is_unconfirmed(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Publish { .. } | ErrorKind::Connect { .. }
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.component)?;
        match &self.kind {
            ErrorKind::InvalidSetting { setting, reason } => {
                write!(f, "invalid setting `{setting}`: {reason}")
            }
            ErrorKind::Connect { url, reason } => {
                write!(f, "cannot connect to RabbitMQ at {url}: {reason}")
            }
            ErrorKind::Queue { queue, reason } => write!(f, "queue '{queue}': {reason}"),
            ErrorKind::Encode { reason } => write!(f, "cannot encode the message: {reason}"),
            ErrorKind::Publish { reason } => write!(f, "publish not confirmed: {reason}"),
            ErrorKind::Nacked => f.write_str("the broker refused the message (nack)"),
            ErrorKind::Unroutable {
                exchange,
                routing_key,
            } => write!(
                f,
                "unroutable message: no queue bound to exchange '{exchange}' with routing key '{routing_key}'"
            ),
            ErrorKind::Stopping => {
                f.write_str("the publisher is stopping and takes no new messages")
            }
        }
    }
}

impl std::error::Error for Error {}

pub(crate) use orderly_config::redact_url as redact;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_component() {
        let error = Error::new("orders", ErrorKind::Stopping);
        assert!(error.is_stopping());
        assert_eq!(
            error.to_string(),
            "orders: the publisher is stopping and takes no new messages"
        );
    }
}
