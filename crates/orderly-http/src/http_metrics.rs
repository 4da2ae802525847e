//! The HTTP server's request metrics, recorded through the `metrics` facade.
//!
//! A metric's key (name and labels) is made once per route, method and status and kept on the
//! route ([`RouteKeys`]): a request then records without allocating or hashing labels, which
//! keeps the cost next to nothing when no recorder is installed, and low when one is.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use http::Method;
use metrics::{Key, Label, Level, Metadata, Unit};

/// Requests served, by `method`, `route` and `status`.
pub(crate) const REQUESTS: &str = "http_server_requests_total";
/// Requests in flight.
pub(crate) const IN_FLIGHT: &str = "http_server_requests_in_flight";
/// Request durations, by `method`, `route` and `status`.
pub(crate) const DURATION: &str = "http_server_request_duration_seconds";

/// The `route` label of a request that matched no axum route (never the raw path: clients
/// choose paths, and every distinct label value is a new series).
pub(crate) const UNMATCHED: &str = "unmatched";

static IN_FLIGHT_KEY: Key = Key::from_static_name(IN_FLIGHT);
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

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
    metrics::with_recorder(|recorder| {
        recorder
            .register_gauge(&IN_FLIGHT_KEY, &METADATA)
            .increment(1.0);
    });
}

/// A request ended: it is counted, its duration recorded, and it leaves the in-flight gauge.
pub(crate) fn ended(keys: &Keys, duration: Duration) {
    metrics::with_recorder(|recorder| {
        recorder
            .register_gauge(&IN_FLIGHT_KEY, &METADATA)
            .decrement(1.0);
        recorder
            .register_counter(&keys.requests, &METADATA)
            .increment(1);
        recorder
            .register_histogram(&keys.duration, &METADATA)
            .record(duration.as_secs_f64());
    });
}

/// The keys of one route's metrics, one pair per method and status seen.
#[derive(Debug, Default)]
pub(crate) struct RouteKeys(RwLock<Vec<Arc<Keys>>>);

/// The keys of the metrics of one route, method and status.
#[derive(Debug)]
pub(crate) struct Keys {
    method: &'static str,
    status: u16,
    requests: Key,
    duration: Key,
}

impl RouteKeys {
    /// The keys for `method` and `status` on `route`, made the first time they are asked for.
    pub(crate) fn get(&self, route: &Arc<str>, method: &Method, status: u16) -> Arc<Keys> {
        let method = method_label(method);
        let find = |keys: &[Arc<Keys>]| {
            keys.iter()
                .find(|k| k.status == status && k.method == method)
                .cloned()
        };
        if let Some(keys) = find(&self.0.read().unwrap_or_else(PoisonError::into_inner)) {
            return keys;
        }
        let mut all = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(keys) = find(&all) {
            return keys;
        }
        let labels = vec![
            Label::from_static_parts("method", method),
            Label::new("route", route.clone()),
            Label::from_static_parts("status", status_label(status)),
        ];
        let keys = Arc::new(Keys {
            method,
            status,
            requests: Key::from_parts(REQUESTS, labels.clone()),
            duration: Key::from_parts(DURATION, labels),
        });
        all.push(keys.clone());
        keys
    }
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
    fn keys_are_made_once_per_method_and_status() {
        let keys = RouteKeys::default();
        let route: Arc<str> = "/orders/{id}".into();
        let a = keys.get(&route, &Method::GET, 200);
        assert!(Arc::ptr_eq(&a, &keys.get(&route, &Method::GET, 200)));
        let b = keys.get(&route, &Method::POST, 200);
        let c = keys.get(&route, &Method::GET, 404);
        assert!(!Arc::ptr_eq(&a, &b) && !Arc::ptr_eq(&a, &c));
        let labels: Vec<(&str, &str)> = c.requests.labels().map(|l| (l.key(), l.value())).collect();
        assert_eq!(
            labels,
            [
                ("method", "GET"),
                ("route", "/orders/{id}"),
                ("status", "404")
            ]
        );
        assert_eq!(c.requests.name(), REQUESTS);
        assert_eq!(c.duration.name(), DURATION);
    }

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
