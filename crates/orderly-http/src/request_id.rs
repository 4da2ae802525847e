//! Request ids: the client's `x-request-id` when it is sensible, a fresh one otherwise.

use std::convert::Infallible;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{Extensions, HeaderMap, HeaderName, HeaderValue};

use crate::in_flight::Served;

/// The header that carries a request's id, in both directions.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest id accepted from a client.
const MAX_LEN: usize = 128;

/// Up to this many request headers, the id is found by going through them rather than by a
/// hashed lookup.
const SCAN: usize = 16;

/// The id of one request, as the server saw it: the client's `x-request-id` if it has one of
/// at most 128 visible ASCII characters (no spaces, no control characters), otherwise a fresh
/// one the server made: a number of 20 digits, e.g. `13406172538291446102`, consecutive
/// within the process (which counts from a random start), so unique within it, and unique
/// across processes but for a chance of about one in 10¹⁸ per pair of requests.
///
/// [`HttpServer`](crate::HttpServer) keeps it with the request, where any tower service finds
/// it ([`RequestId::from_extensions`]`(request.extensions())`), sends it back in the response's
/// `x-request-id` header and writes it to the access log. In axum it is an extractor, to pass
/// on to the services a handler calls:
///
/// ```
/// use orderly_http::RequestId;
///
/// async fn handler(id: RequestId) -> String {
///     format!("your request is {id}\n")
/// }
/// let app: axum::Router = axum::Router::new().route("/", axum::routing::get(handler));
/// ```
///
/// Outside an `HttpServer` (a router called directly in a unit test) the extractor makes a
/// fresh id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// A fresh id.
    pub fn generate() -> Self {
        Self(HeaderValue::from(next()))
    }

    /// The id of the request whose extensions these are; `None` if no `HttpServer` served it
    /// (the server keeps it, with the request's other details, in one extension of its own).
    ///
    /// ```
    /// use orderly_http::RequestId;
    ///
    /// fn log_line(request: &http::Request<axum::body::Body>) -> String {
    ///     match RequestId::from_extensions(request.extensions()) {
    ///         Some(id) => format!("request {id}"),
    ///         None => "a request from elsewhere".to_owned(),
    ///     }
    /// }
    /// assert_eq!(log_line(&http::Request::new(axum::body::Body::empty())), "a request from elsewhere");
    /// ```
    pub fn from_extensions(extensions: &Extensions) -> Option<RequestId> {
        let id = Served::of(extensions)?.request_id.as_ref()?;
        Some(RequestId(id.header_value()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        // Only visible ASCII gets in (checked or generated).
        self.0.to_str().unwrap_or_default()
    }

    /// The id as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

/// A request's id as the server keeps it while the request is in flight: a generated id is
/// only a number until it is needed as text (the response header, the access log, a handler
/// that asks), so most requests format it once and no copy of it is made.
#[derive(Clone, Debug)]
pub(crate) enum Id {
    /// The client's.
    Client(HeaderValue),
    /// Made by the server.
    Generated(u64),
}

impl Id {
    /// The client's id from `headers` if it is acceptable, otherwise a fresh one.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let value = if headers.len() <= SCAN {
            // A request has a few headers; comparing their names (most are standard ones, an
            // enum compared in one instruction) costs less than hashing ours to look it up.
            headers
                .iter()
                .find_map(|(name, value)| (*name == REQUEST_ID).then_some(value))
        } else {
            headers.get(REQUEST_ID)
        };
        // A copy: the request's value shares the buffer hyper reads the connection into (see
        // `Flight::path`).
        match value.filter(|value| acceptable(value.as_bytes())) {
            Some(value) => HeaderValue::from_bytes(value.as_bytes())
                .map_or_else(|_| Id::Generated(next()), Id::Client),
            None => Id::Generated(next()),
        }
    }

    /// The id as a header value. A generated one is formatted then, with no check (digits
    /// only) and in one allocation (20 digits fill the 20 bytes `HeaderValue::from` reserves,
    /// so the buffer becomes the value as it is).
    pub(crate) fn header_value(&self) -> HeaderValue {
        match self {
            Id::Client(value) => value.clone(),
            Id::Generated(n) => HeaderValue::from(*n),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Only visible ASCII gets in.
            Id::Client(value) => f.write_str(value.to_str().unwrap_or_default()),
            Id::Generated(n) => write!(f, "{n}"),
        }
    }
}

/// The smallest number of 20 digits.
const LOWEST: u64 = 10_000_000_000_000_000_000;

/// The next generated id: a number of 20 digits, the process's random start plus a count
/// (`RandomState` is seeded from the operating system).
fn next() -> u64 {
    const SPAN: u64 = u64::MAX - LOWEST + 1;
    static START: LazyLock<u64> =
        LazyLock::new(|| RandomState::new().hash_one("orderly-http request id") % SPAN);
    static COUNT: AtomicU64 = AtomicU64::new(0);
    LOWEST + START.wrapping_add(COUNT.fetch_add(1, Ordering::Relaxed)) % SPAN
}

/// 1 to 128 visible ASCII characters.
fn acceptable(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.iter().all(u8::is_ascii_graphic)
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(RequestId::from_extensions(&parts.extensions).unwrap_or_else(RequestId::generate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(id: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_bytes(id).unwrap());
        headers
    }

    fn id_of(headers: &HeaderMap) -> String {
        Id::from_headers(headers).to_string()
    }

    #[test]
    fn keeps_an_acceptable_client_id() {
        let id = "0af7651916cd43dd8448eb211c80319c";
        assert_eq!(id_of(&with(id.as_bytes())), id);
        let longest = "x".repeat(MAX_LEN);
        assert_eq!(id_of(&with(longest.as_bytes())), longest);
    }

    #[test]
    fn finds_the_id_among_few_or_many_headers_first_value_first() {
        for others in [0, 3, SCAN - 1, SCAN, SCAN + 5] {
            let mut headers = HeaderMap::new();
            for i in 0..others / 2 {
                headers.insert(http::header::ACCEPT, HeaderValue::from(i));
                headers.insert(
                    HeaderName::try_from(format!("x-other-{i}")).unwrap(),
                    HeaderValue::from_static("x"),
                );
            }
            headers.append(REQUEST_ID, HeaderValue::from_static("first"));
            headers.append(REQUEST_ID, HeaderValue::from_static("second"));
            for i in others / 2..others {
                headers.insert(
                    HeaderName::try_from(format!("x-later-{i}")).unwrap(),
                    HeaderValue::from_static("x"),
                );
            }
            assert_eq!(id_of(&headers), "first", "{others}");
        }
    }

    #[test]
    fn replaces_a_missing_empty_long_or_unprintable_id() {
        let generated = |headers: &HeaderMap| {
            let id = Id::from_headers(headers);
            assert!(matches!(id, Id::Generated(_)), "{id}");
            assert_eq!(id.header_value(), id.to_string().as_str());
        };
        generated(&HeaderMap::new());
        generated(&with(b""));
        generated(&with("x".repeat(MAX_LEN + 1).as_bytes()));
        generated(&with(b"two words"));
        generated(&with(b"tab\there"));
        generated(&with("caf\u{e9}".as_bytes()));
    }

    #[test]
    fn generated_ids_are_consecutive_numbers_of_20_digits() {
        let (a, b) = (RequestId::generate(), RequestId::generate());
        assert_eq!((a.as_str().len(), b.as_str().len()), (20, 20), "{a} {b}");
        let (a, b): (u64, u64) = (a.as_str().parse().unwrap(), b.as_str().parse().unwrap());
        // Other tests generate ids meanwhile: later, not necessarily next.
        assert!(b > a && b - a < 1 << 32, "{a} then {b}");
        assert!(a >= LOWEST);
    }
}
