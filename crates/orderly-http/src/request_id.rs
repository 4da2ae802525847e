//! Request ids: the client's `x-request-id` when it is sensible, a fresh one otherwise.

use std::cell::RefCell;
use std::convert::Infallible;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::FromRequestParts;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::in_flight::Flight;

/// The header that carries a request's id, in both directions.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest id accepted from a client.
const MAX_LEN: usize = 128;

/// Up to this many request headers, the id is found by going through them rather than by a
/// hashed lookup.
const SCAN: usize = 16;

/// The id of one request, as the server saw it: the client's `x-request-id` if it has one of
/// at most 128 visible ASCII characters (no spaces, no control characters), otherwise a fresh
/// one the server made: a number of 20 digits, e.g. `13406172538291446102`, unique within the
/// process (which counts from a random start), and unique across processes but for a chance
/// of about one in 10¹⁸ per pair of requests.
///
/// [`HttpServer`](crate::HttpServer) keeps it with the request, where the request's handler
/// and any tower service on its way find it ([`RequestId::current`]), writes it to the access
/// log and
/// sends it back in the response's `x-request-id` header. A fresh id is made only when
/// something asks for it: a handler (before its response, for the response to carry it) or
/// the access log, when its level is enabled; a response whose request has no id carries none,
/// unless the server was told to put one on every response
/// ([`HttpServer::request_id_on_every_response`](crate::HttpServer::request_id_on_every_response)).
/// In axum it is an extractor, to pass on to the services a handler calls:
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
        Self(generated())
    }

    /// The id of the request an `HttpServer` is serving with the code that asks: the request's
    /// handler, its extractors, and any tower service on its way (a middleware, or a service
    /// served instead of a router), while the server calls or polls them. `None` elsewhere: a
    /// router called directly (in a unit test), or a task the request's code spawned (take the
    /// id along).
    ///
    /// ```
    /// use orderly_http::RequestId;
    ///
    /// fn log_line() -> String {
    ///     match RequestId::current() {
    ///         Some(id) => format!("request {id}"),
    ///         None => "no request".to_owned(),
    ///     }
    /// }
    /// assert_eq!(log_line(), "no request");
    /// ```
    pub fn current() -> Option<RequestId> {
        Flight::with_current(|flight| flight.request_id().cloned()).flatten()
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

    /// The client's id from `headers`, if it is acceptable.
    pub(crate) fn from_client(headers: &HeaderMap) -> Option<Self> {
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
        value
            .filter(|value| acceptable(value.as_bytes()))
            .and_then(|value| HeaderValue::from_bytes(value.as_bytes()).ok())
            .map(Self)
    }
}

/// The smallest number of 20 digits.
const LOWEST: u64 = 10_000_000_000_000_000_000;

/// The digits of a generated id.
const WIDTH: usize = 20;

/// How many ids a thread formats at once.
const BLOCK: u64 = 64;

thread_local! {
    /// The ids this thread has formatted and not handed out yet, one after the other.
    static FORMATTED: RefCell<Bytes> = const { RefCell::new(Bytes::new()) };
}

/// A fresh id. Ids are formatted in blocks of 64, in one buffer per block that each id of it
/// shares: an id then costs no allocation of its own and no formatting from scratch, where
/// `HeaderValue::from(u64)` allocates and divides twenty digits out for each. A block stays in
/// memory while one of its ids does (1,280 bytes).
fn generated() -> HeaderValue {
    FORMATTED.with_borrow_mut(|formatted| {
        if formatted.is_empty() {
            *formatted = block();
        }
        let id = formatted.split_to(WIDTH);
        // Digits only: always valid; the check costs a few instructions per digit.
        HeaderValue::from_maybe_shared(id).unwrap_or_else(|_| HeaderValue::from(next(1)))
    })
}

/// The next `BLOCK` ids, formatted: the process's random start plus a count (`RandomState` is
/// seeded from the operating system), each a number of 20 digits. The first is formatted, each
/// next one is the one before plus one (a digit or two changed, rather than twenty divided out).
fn block() -> Bytes {
    let first = next(BLOCK);
    let mut digits = vec![0; BLOCK as usize * WIDTH];
    digits[..WIDTH].copy_from_slice(itoa::Buffer::new().format(first).as_bytes());
    for at in (WIDTH..digits.len()).step_by(WIDTH) {
        digits.copy_within(at - WIDTH..at, at);
        increment(&mut digits[at..at + WIDTH]);
    }
    Bytes::from(digits)
}

/// Adds one to a number written in decimal digits (which `next` keeps below 20 nines).
fn increment(digits: &mut [u8]) {
    for digit in digits.iter_mut().rev() {
        if *digit == b'9' {
            *digit = b'0';
        } else {
            *digit += 1;
            return;
        }
    }
}

/// Reserves `count` consecutive ids and returns the first one.
fn next(count: u64) -> u64 {
    const SPAN: u64 = u64::MAX - LOWEST + 1;
    static START: LazyLock<u64> =
        LazyLock::new(|| RandomState::new().hash_one("orderly-http request id") % SPAN);
    static COUNT: AtomicU64 = AtomicU64::new(0);
    // Leaves room for `count` ids below `u64::MAX`: a block never wraps around.
    LOWEST + START.wrapping_add(COUNT.fetch_add(count, Ordering::Relaxed)) % (SPAN - BLOCK)
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

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(RequestId::current().unwrap_or_else(RequestId::generate))
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
        RequestId::from_client(headers).unwrap().to_string()
    }

    fn is_generated(id: &str) -> bool {
        id.len() == WIDTH && id.bytes().all(|b| b.is_ascii_digit()) && id >= "10000000000000000000"
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
    fn refuses_a_missing_empty_long_or_unprintable_id() {
        for headers in [
            HeaderMap::new(),
            with(b""),
            with("x".repeat(MAX_LEN + 1).as_bytes()),
            with(b"two words"),
            with(b"tab\there"),
            with("caf\u{e9}".as_bytes()),
        ] {
            assert_eq!(RequestId::from_client(&headers), None, "{headers:?}");
        }
    }

    #[test]
    fn generated_ids_are_numbers_of_20_digits_consecutive_within_a_block() {
        let ids: Vec<u64> = (0..2 * BLOCK + 1)
            .map(|_| {
                let id = RequestId::generate();
                assert!(is_generated(id.as_str()), "{id}");
                id.as_str().parse().unwrap()
            })
            .collect();
        // This thread formatted at least two blocks: at least 2 * (BLOCK - 1) steps of one.
        let steps = ids.windows(2).filter(|w| w[1] == w[0] + 1).count();
        assert!(steps >= 2 * (BLOCK as usize - 1), "{ids:?}");
    }

    #[test]
    fn a_block_counts_up_by_one_carrying_across_digits() {
        let ids: Vec<u64> = block()
            .chunks(WIDTH)
            .map(|id| std::str::from_utf8(id).unwrap().parse().unwrap())
            .collect();
        assert_eq!(ids.len(), BLOCK as usize);
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
        let mut digits = *b"10000000000000001999";
        increment(&mut digits);
        assert_eq!(&digits, b"10000000000000002000");
    }

    #[test]
    fn generated_ids_are_unique_across_threads() {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..1000)
                        .map(|_| RequestId::generate().as_str().to_owned())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        for thread in threads {
            for id in thread.join().unwrap() {
                assert!(is_generated(&id), "{id}");
                assert!(all.insert(id.clone()), "{id} twice");
            }
        }
        assert_eq!(all.len(), 4000);
    }
}
