//! The HTTP server's request metrics, recorded through the `metrics` facade.
//!
//! Each metric is registered with the recorder once — the in-flight gauge when the server
//! starts, a request counter and a duration histogram the first time a route sees a method and
//! status — and the handles are kept ([`Instruments`], [`RouteKeys`]). A request then records
//! with a few atomic operations: no label is allocated or hashed, and the recorder's registry
//! is not searched.

use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use http::Method;
use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Unit};

use crate::route::Route;

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

/// One server's instruments, registered with the recorder installed when it started.
#[derive(Debug)]
pub(crate) struct Instruments {
    in_flight: Gauge,
    /// The route of requests that matched none: the server's own, as its metrics' handles
    /// belong to the server's recorder.
    pub(crate) unmatched: Arc<Route>,
}

impl Instruments {
    /// Describes the metrics to the recorder installed now and registers the in-flight gauge.
    pub(crate) fn register() -> Self {
        describe();
        Self {
            in_flight: metrics::with_recorder(|recorder| {
                recorder.register_gauge(&IN_FLIGHT_KEY, &METADATA)
            }),
            unmatched: Arc::new(Route::new(UNMATCHED)),
        }
    }

    /// A request entered.
    pub(crate) fn entered(&self) {
        self.in_flight.increment(1.0);
    }

    /// A request on `route` ended with `status` after `duration`: it is counted, its duration
    /// recorded, and it leaves the in-flight gauge.
    pub(crate) fn ended(&self, route: &Route, method: &Method, status: u16, duration: Duration) {
        self.in_flight.decrement(1.0);
        route.keys.with(&route.name, method, status, |handles| {
            handles.record(duration)
        });
    }
}

/// The metrics of one route, one set of handles per method and status seen. The first set
/// registered (most often the route's usual answer, such as `GET` and `200`) is found without
/// a lock; the others behind a read lock.
#[derive(Debug, Default)]
pub(crate) struct RouteKeys {
    first: OnceLock<Arc<Handles>>,
    others: RwLock<Vec<Arc<Handles>>>,
}

/// The handles of the metrics of one route, method and status.
#[derive(Debug)]
pub(crate) struct Handles {
    method: MethodLabel,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

impl Handles {
    fn record(&self, duration: Duration) {
        self.requests.increment(1);
        self.duration.record(duration.as_secs_f64());
    }
}

impl RouteKeys {
    /// Calls `f` with the handles for `method` and `status` on `route`, registered (with the
    /// recorder installed now) the first time they are asked for.
    pub(crate) fn with<T>(
        &self,
        route: &Arc<str>,
        method: &Method,
        status: u16,
        f: impl FnOnce(&Handles) -> T,
    ) -> T {
        let method = method_label(method);
        let matches = |h: &&Arc<Handles>| h.status == status && h.method == method;
        if let Some(handles) = self.first.get().filter(matches) {
            return f(handles);
        }
        {
            let others = self.others.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(handles) = others.iter().find(matches) {
                return f(handles);
            }
        }
        let mut others = self.others.write().unwrap_or_else(PoisonError::into_inner);
        // Registered meanwhile by another request?
        if let Some(handles) = self.first.get().filter(matches) {
            return f(handles);
        }
        if let Some(handles) = others.iter().find(matches) {
            return f(handles);
        }
        let labels = vec![
            Label::from_static_parts("method", method.as_str()),
            Label::new("route", route.clone()),
            Label::from_static_parts("status", status_label(status)),
        ];
        let requests = Key::from_parts(REQUESTS, labels.clone());
        let duration = Key::from_parts(DURATION, labels);
        let handles = Arc::new(metrics::with_recorder(|recorder| Handles {
            method,
            status,
            requests: recorder.register_counter(&requests, &METADATA),
            duration: recorder.register_histogram(&duration, &METADATA),
        }));
        let result = f(&handles);
        // The first set goes in the slot (set only here, under the write lock).
        if let Err(handles) = self.first.set(handles) {
            others.push(handles);
        }
        result
    }

    /// How many sets of handles it holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        let others = self.others.read().unwrap_or_else(PoisonError::into_inner);
        usize::from(self.first.get().is_some()) + others.len()
    }
}

/// The method as a label: one of the standard methods, `_OTHER` for the rest (clients choose
/// methods too; the name follows OpenTelemetry's HTTP conventions).
fn method_label(method: &Method) -> MethodLabel {
    // The standard methods' constants: each compared by its tag, no string compared.
    MethodLabel(match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::CONNECT => 5,
        Method::OPTIONS => 6,
        Method::TRACE => 7,
        Method::PATCH => 8,
        _ => 9,
    })
}

/// A method's label, by its index in [`MethodLabel::NAMES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MethodLabel(u8);

impl MethodLabel {
    const NAMES: [&'static str; 10] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER",
    ];

    fn as_str(self) -> &'static str {
        Self::NAMES[usize::from(self.0)]
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
    fn handles_are_registered_once_per_method_and_status_and_count_each_request() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let instruments = Instruments::register();
            let route = Route::new("/orders/{id}");
            let took = Duration::from_millis(3);
            for (method, status, times) in [
                (Method::GET, 200, 3),
                (Method::POST, 200, 2),
                (Method::GET, 404, 1),
            ] {
                for _ in 0..times {
                    instruments.entered();
                    instruments.ended(&route, &method, status, took);
                }
            }
            instruments.entered();
            instruments.ended(&instruments.unmatched, &Method::GET, 404, took);
            assert_eq!(route.keys.len(), 3, "one set per method and status");
            assert_eq!(instruments.unmatched.keys.len(), 1);
        });
        let text = handle.render();
        for line in [
            r#"http_server_requests_total{method="GET",route="/orders/{id}",status="200"} 3"#,
            r#"http_server_requests_total{method="POST",route="/orders/{id}",status="200"} 2"#,
            r#"http_server_requests_total{method="GET",route="/orders/{id}",status="404"} 1"#,
            r#"http_server_requests_total{method="GET",route="unmatched",status="404"} 1"#,
            r#"http_server_request_duration_seconds_count{method="GET",route="/orders/{id}",status="200"} 3"#,
            "http_server_requests_in_flight 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
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
        assert_eq!(method_label(&Method::PATCH).as_str(), "PATCH");
        assert_eq!(method_label(&Method::GET).as_str(), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"PURGE").unwrap()).as_str(),
            "_OTHER"
        );
        assert_eq!(
            method_label(&Method::from_bytes(b"PURGE").unwrap()),
            method_label(&Method::from_bytes(b"BREW").unwrap())
        );
    }
}
