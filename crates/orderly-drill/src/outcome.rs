//! What happened to each request, and the headers that carry it.

use std::error::Error as StdError;
use std::io;

use serde::Serialize;

/// The request header carrying each request's id (a decimal number, unique in a drill). A
/// replica appends the ids it handled to its ledger file, one a line.
pub const DRILL_ID: &str = "x-drill-id";
/// The response header in which the load balancer names the replica it forwarded to.
pub const DRILL_REPLICA: &str = "x-drill-replica";
/// The response header in which the load balancer gives the [`FailureKind`] of an upstream
/// failure (with status 502, or 503 when no endpoint was routable).
pub const DRILL_ERROR: &str = "x-drill-error";

/// How a request failed at the transport level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FailureKind {
    /// The connection was refused (nothing listening).
    Refused,
    /// The connection was reset (or the stream was reset, HTTP/2).
    Reset,
    /// The connection closed before the whole response arrived (or, on a pooled connection,
    /// before the request could be written: the keep-alive race).
    Eof,
    /// No complete response within the timeout.
    Timeout,
    /// The load balancer had no routable endpoint.
    NoEndpoint,
    /// Anything else (the message is in the drill's log).
    Other,
}

impl FailureKind {
    /// The kind's name, as in the [`DRILL_ERROR`] header and the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Reset => "reset",
            Self::Eof => "eof",
            Self::Timeout => "timeout",
            Self::NoEndpoint => "no-endpoint",
            Self::Other => "other",
        }
    }

    pub(crate) fn from_name(name: &str) -> Self {
        [
            Self::Refused,
            Self::Reset,
            Self::Eof,
            Self::Timeout,
            Self::NoEndpoint,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
        .unwrap_or(Self::Other)
    }

    /// Classifies a client error by walking its chain of sources.
    pub(crate) fn of(error: &(dyn StdError + 'static)) -> Self {
        let mut found = None;
        let mut current = Some(error);
        while let Some(error) = current {
            if let Some(io) = error.downcast_ref::<io::Error>() {
                match io.kind() {
                    io::ErrorKind::ConnectionRefused => return Self::Refused,
                    io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe => return Self::Reset,
                    io::ErrorKind::UnexpectedEof => return Self::Eof,
                    io::ErrorKind::TimedOut => return Self::Timeout,
                    _ => {}
                }
            }
            if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
                if hyper.is_incomplete_message() || hyper.is_canceled() {
                    found = found.or(Some(Self::Eof));
                } else if hyper.is_timeout() {
                    found = found.or(Some(Self::Timeout));
                }
            }
            // HTTP/2 stream and connection errors (RST_STREAM, GOAWAY) are not io::Errors.
            let text = error.to_string();
            if text.contains("reset") || text.contains("GOAWAY") || text.contains("go away") {
                found = found.or(Some(Self::Reset));
            }
            current = error.source();
        }
        found.unwrap_or(Self::Other)
    }
}

/// What the load generator saw for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Outcome {
    /// A response with an expected status (any 2xx unless the drill expects others), read to
    /// its end.
    Ok,
    /// A response with another status, not from the load balancer's own error path.
    Status(u16),
    /// The load balancer could not get a response from the replica (no retry was made).
    Upstream(FailureKind),
    /// The load generator could not get a response from the load balancer.
    Client(FailureKind),
}

impl Outcome {
    /// A response with an expected status.
    pub fn is_ok(self) -> bool {
        self == Self::Ok
    }

    /// Its name in the report: `ok`, `status-500`, `upstream-refused`, `client-timeout`…
    pub fn label(self) -> String {
        match self {
            Self::Ok => "ok".to_owned(),
            Self::Status(code) => format!("status-{code}"),
            Self::Upstream(kind) => format!("upstream-{}", kind.as_str()),
            Self::Client(kind) => format!("client-{}", kind.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("request failed")]
    struct Wrapper(#[source] io::Error);

    #[test]
    fn classifies_by_the_first_io_error_in_the_chain() {
        let refused = Wrapper(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(FailureKind::of(&refused), FailureKind::Refused);
        let reset = Wrapper(io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(FailureKind::of(&reset), FailureKind::Reset);
        let other = Wrapper(io::Error::other("disk on fire"));
        assert_eq!(FailureKind::of(&other), FailureKind::Other);
    }

    #[test]
    fn kinds_round_trip_through_their_header_names() {
        for kind in [
            FailureKind::Refused,
            FailureKind::Reset,
            FailureKind::Eof,
            FailureKind::Timeout,
            FailureKind::NoEndpoint,
            FailureKind::Other,
        ] {
            assert_eq!(FailureKind::from_name(kind.as_str()), kind);
        }
        assert_eq!(FailureKind::from_name("nonsense"), FailureKind::Other);
        assert_eq!(Outcome::Upstream(FailureKind::Eof).label(), "upstream-eof");
        assert_eq!(Outcome::Status(503).label(), "status-503");
    }
}
