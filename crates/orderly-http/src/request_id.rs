//! Request ids: the client's `x-request-id` when it is sensible, a fresh one otherwise.

use std::convert::Infallible;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::FromRequestParts;
use bytes::Bytes;
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
/// one the server made (`<process>-<counter>`, e.g. `3f9ac01d22e4-17`; unique within the
/// process, and across processes but for a 1 in 2⁴⁸ chance).
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
        value
            .filter(|value| acceptable(value.as_bytes()))
            .map_or_else(Self::generate, |value| Self(value.clone()))
    }

    /// A fresh id.
    pub fn generate() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let mut id = Generated {
            buf: [0; 12 + 1 + 20],
            len: 0,
        };
        id.buf[..12].copy_from_slice(&*PROCESS);
        id.buf[12] = b'-';
        id.len = 13 + decimal(NEXT.fetch_add(1, Ordering::Relaxed), &mut id.buf[13..]);
        // One allocation, whose clones (the response header's) only count references;
        // `HeaderValue::from_bytes` would copy into a buffer that its first clone reallocates.
        // Hex digits, a dash and decimal digits: always a valid header value.
        Self(
            HeaderValue::from_maybe_shared(Bytes::from_owner(id))
                .unwrap_or(HeaderValue::from_static("-")),
        )
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
    pub fn from_extensions(extensions: &Extensions) -> Option<&RequestId> {
        Served::of(extensions)?
            .observed
            .as_ref()
            .map(|observed| &observed.request_id)
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

/// A generated id's bytes: the first `len` of `buf`.
struct Generated {
    buf: [u8; 12 + 1 + 20],
    len: usize,
}

impl AsRef<[u8]> for Generated {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The process's part of generated ids: 48 random bits in hex (`RandomState` is seeded from
/// the operating system).
static PROCESS: LazyLock<[u8; 12]> = LazyLock::new(|| {
    let random = RandomState::new().hash_one("orderly-http request id");
    let mut hex = [0u8; 12];
    for (i, digit) in hex.iter_mut().enumerate() {
        *digit = b"0123456789abcdef"[((random >> (44 - 4 * i)) & 0xf) as usize];
    }
    hex
});

/// Writes `n` in decimal at the start of `out` (20 bytes hold any u64); returns the length.
fn decimal(mut n: u64, out: &mut [u8]) -> usize {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = digits.len() - start;
    out[..len].copy_from_slice(&digits[start..]);
    len
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
        Ok(RequestId::from_extensions(&parts.extensions)
            .cloned()
            .unwrap_or_else(RequestId::generate))
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

    #[test]
    fn keeps_an_acceptable_client_id() {
        let id = "0af7651916cd43dd8448eb211c80319c";
        assert_eq!(RequestId::from_headers(&with(id.as_bytes())).as_str(), id);
        let longest = "x".repeat(MAX_LEN);
        assert_eq!(
            RequestId::from_headers(&with(longest.as_bytes())).as_str(),
            longest
        );
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
            assert_eq!(
                RequestId::from_headers(&headers).as_str(),
                "first",
                "{others}"
            );
        }
    }

    #[test]
    fn replaces_a_missing_empty_long_or_unprintable_id() {
        let generated = |headers: &HeaderMap| {
            let id = RequestId::from_headers(headers);
            assert!(is_generated(id.as_str()), "{id}");
        };
        generated(&HeaderMap::new());
        generated(&with(b""));
        generated(&with("x".repeat(MAX_LEN + 1).as_bytes()));
        generated(&with(b"two words"));
        generated(&with(b"tab\there"));
        generated(&with("caf\u{e9}".as_bytes()));
    }

    #[test]
    fn generated_ids_differ_and_share_the_process_part() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert_ne!(a, b);
        assert!(is_generated(a.as_str()) && is_generated(b.as_str()));
        assert_eq!(a.as_str().split('-').next(), b.as_str().split('-').next());
    }

    #[test]
    fn decimal_writes_every_digit() {
        let mut out = [0u8; 20];
        for n in [0, 7, 10, 1234567890, u64::MAX] {
            let len = decimal(n, &mut out);
            assert_eq!(std::str::from_utf8(&out[..len]).unwrap(), n.to_string());
        }
    }

    fn is_generated(id: &str) -> bool {
        let Some((process, n)) = id.split_once('-') else {
            return false;
        };
        process.len() == 12
            && process.bytes().all(|b| b.is_ascii_hexdigit())
            && n.parse::<u64>().is_ok()
    }
}
