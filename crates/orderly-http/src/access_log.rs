//! The access log: one `tracing` event per request, when it ends.

use std::time::Duration;

use crate::request_id::RequestId;

/// Whether and at which level [`HttpServer`](crate::HttpServer) writes its access log: one
/// `tracing` event per request, target `orderly_http::access`, when the request ends (its
/// response body sent, or the request abandoned), with the fields
///
/// | field | |
/// |---|---|
/// | `method` | `GET`, `POST`… |
/// | `route` | the axum route that matched, e.g. `/orders/{id}`; `unmatched` otherwise |
/// | `path` | the path the client asked for, without the query (which may carry secrets) |
/// | `status` | the response status; 499 when the request ended without a response head (the client went away, or the drain deadline cut it: nginx's convention) |
/// | `duration_ms` | from the request head read to the end of the response body |
/// | `bytes` | response body bytes sent |
/// | `request_id` | the [`RequestId`](crate::RequestId) |
/// | `remote` | the client's address |
///
/// Every field is a string or a number, recorded as such (`record_str`, `record_u64`,
/// `record_f64`), which is what a subscriber formats fastest.
///
/// A line is the largest part of what the server adds to a request: about 5,000 instructions
/// as a JSON line through `orderly-telemetry`'s `Logs`, against about 12,000 for all of bare
/// hyper's work on a small request (`benches/README.md`). That is why the default is
/// [`AccessLog::Debug`], as tower-http's `TraceLayer` does (and Envoy, which has no access log
/// unless configured): it costs nothing while the subscriber's level is INFO, and one variable
/// turns it on (`RUST_LOG=info,orderly_http::access=debug`), or [`AccessLog::Info`] in code.
/// Request metrics are always recorded.
///
/// A subscriber can filter it by target, e.g. `RUST_LOG=info,orderly_http::access=off`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessLog {
    /// One event per request at INFO: a line per request under the usual INFO filter.
    Info,
    /// One event per request at DEBUG (the default): written when the subscriber's level
    /// includes DEBUG for the target `orderly_http::access` (`RUST_LOG=info,orderly_http::access=debug`),
    /// free otherwise.
    #[default]
    Debug,
    /// No access log.
    Off,
}

/// One finished request, as the access log writes it.
pub(crate) struct Entry<'a> {
    pub(crate) method: &'a str,
    pub(crate) route: &'a str,
    pub(crate) path: &'a str,
    pub(crate) status: u16,
    pub(crate) duration: Duration,
    pub(crate) bytes: u64,
    pub(crate) request_id: &'a RequestId,
    /// The client's address, formatted once per connection.
    pub(crate) remote: Option<&'a str>,
}

macro_rules! access_event {
    ($level:expr, $entry:expr) => {{
        let entry = $entry;
        tracing::event!(
            target: "orderly_http::access",
            $level,
            method = entry.method,
            route = entry.route,
            path = entry.path,
            status = entry.status,
            duration_ms = entry.duration.as_secs_f64() * 1000.0,
            bytes = entry.bytes,
            request_id = %entry.request_id,
            remote = entry.remote,
            "request"
        )
    }};
}

impl AccessLog {
    /// Whether a line written now would be recorded: the log is on, and the subscriber takes
    /// events of its level for its target.
    pub(crate) fn enabled(self) -> bool {
        match self {
            AccessLog::Info => {
                tracing::enabled!(target: "orderly_http::access", tracing::Level::INFO)
            }
            AccessLog::Debug => {
                tracing::enabled!(target: "orderly_http::access", tracing::Level::DEBUG)
            }
            AccessLog::Off => false,
        }
    }

    /// Writes `entry` at this level.
    pub(crate) fn write(self, entry: &Entry<'_>) {
        match self {
            AccessLog::Info => access_event!(tracing::Level::INFO, entry),
            AccessLog::Debug => access_event!(tracing::Level::DEBUG, entry),
            AccessLog::Off => {}
        }
    }
}
