//! The HTTP server's request metrics, recorded through the `metrics` facade: free of cost
//! beyond building the labels when no recorder is installed.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use metrics::{Label, Unit};

/// Requests served, by `method`, `route` and `status`.
pub(crate) const REQUESTS: &str = "http_server_requests_total";
/// Requests in flight.
pub(crate) const IN_FLIGHT: &str = "http_server_requests_in_flight";
/// Request durations, by `method`, `route` and `status`.
pub(crate) const DURATION: &str = "http_server_request_duration_seconds";

/// The `route` label of a request that matched no axum route (never the raw path: clients
/// choose paths, and every distinct label value is a new series).
pub(crate) const UNMATCHED: &str = "unmatched";

/// Describes the metrics to the recorder installed now.
pub(crate) fn describe() {
    metrics::describe_counter!(
        REQUESTS,
        Unit::Count,
        "HTTP requests served, by method, matched route and status."
    );
    metrics::describe_gauge!(
        IN_FLIGHT,
        Unit::Count,
        "HTTP requests in flight, until their response body has been sent."
    );
    metrics::describe_histogram!(
        DURATION,
        Unit::Seconds,
        "HTTP request durations from the request head to the end of the response body."
    );
}

/// A request entered.
pub(crate) fn entered() {
    metrics::gauge!(IN_FLIGHT).increment(1.0);
}

/// A request ended: it is counted, its duration recorded, and it leaves the in-flight gauge.
pub(crate) fn ended(method: &Method, route: Option<&Arc<str>>, status: u16, duration: Duration) {
    metrics::gauge!(IN_FLIGHT).decrement(1.0);
    let labels = || {
        vec![
            Label::from_static_parts("method", method_label(method)),
            match route {
                Some(route) => Label::new("route", route.clone()),
                None => Label::from_static_parts("route", UNMATCHED),
            },
            Label::from_static_parts("status", status_label(status)),
        ]
    };
    metrics::counter!(REQUESTS, labels()).increment(1);
    metrics::histogram!(DURATION, labels()).record(duration.as_secs_f64());
}

/// The method as a label: one of the standard methods, `_OTHER` for the rest (clients choose
/// methods too; the name follows OpenTelemetry's HTTP conventions).
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "PATCH" => "PATCH",
        _ => "_OTHER",
    }
}

/// Every status code's three digits, 100 to 999, so a status label needs no allocation.
static STATUS_DIGITS: [u8; 2700] = {
    let mut digits = [0u8; 2700];
    let mut i = 0;
    while i < 900 {
        let code = i + 100;
        digits[i * 3] = b'0' + (code / 100) as u8;
        digits[i * 3 + 1] = b'0' + (code / 10 % 10) as u8;
        digits[i * 3 + 2] = b'0' + (code % 10) as u8;
        i += 1;
    }
    digits
};

/// The status as a label, e.g. `200` (`000` outside 100..=999, which a `StatusCode` never is).
fn status_label(status: u16) -> &'static str {
    if !(100..=999).contains(&status) {
        return "000";
    }
    let at = usize::from(status - 100) * 3;
    STATUS_DIGITS
        .get(at..at + 3)
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .unwrap_or("000")
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    #[test]
    fn status_labels_are_the_three_digits() {
        for code in 100..=999u16 {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(status_label(code), status.as_str());
        }
        assert_eq!((status_label(99), status_label(1000)), ("000", "000"));
    }

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(
            method_label(&Method::from_bytes(b"PURGE").unwrap()),
            "_OTHER"
        );
    }
}
