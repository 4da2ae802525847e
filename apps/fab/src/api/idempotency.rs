//! Idempotent writes: every write carries a key (`Idempotency-Key`, or else the client's
//! `X-Request-Id`); its response is stored in the same transaction as its effect, and a retry
//! with the same key gets that response again, byte for byte, without a second effect.
//!
//! Which answers are stored under the key:
//!
//! - every success (2xx), with its effect;
//! - every refusal decided by the write itself (4xx from [`run`]'s attempt: an unknown run, a
//!   thread frozen, a tool inhibited, a spec set in the wrong state…): these depend on the
//!   state at the time, so a retry must not get another outcome because the state moved on —
//!   a client that wants a new attempt sends a new key. Except 401, 407, 408, 425 and 429,
//!   which say "try again" rather than answer the request;
//! - not the refusals of the prologue ([`super::write::Write`]: no or unknown token, a role too
//!   low, a bad path, no key, malformed JSON, a field out of range): nothing started, and they
//!   depend on the request alone, so a retry gets the same answer anyway;
//! - never a 5xx: the write did not happen, a retry with the same key tries again.
//!
//! The same key with another request (method, path or body) is a 422 naming the key.
//! Stored replies are kept for `FAB_IDEMPOTENCY_RETENTION` (default 24 h), then pruned by
//! [`prune`]'s task; a retry after that is a new request.

use std::future::Future;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use super::auth::Caller;
use super::body::fingerprint;
use super::error::ApiError;
use crate::store::{Reply, StoreError};

/// The longest idempotency key accepted.
pub const MAX_KEY_LEN: usize = 200;

/// How often a write is recomputed after losing a race (another writer moved the thread on)
/// before the client is told to retry.
const MAX_ATTEMPTS: u32 = 32;

/// The idempotency key of one write request, with who sent it and the request's fingerprint.
/// [`super::write::Write`] builds it; handlers pass it to [`run`] and build answers with
/// [`Key::reply`].
#[derive(Clone, Debug)]
pub struct Key {
    /// The caller.
    pub caller: Caller,
    key: String,
    hash: String,
}

impl Key {
    /// The write's key from the headers, and the fingerprint of the request.
    ///
    /// # Errors
    /// 400 naming `Idempotency-Key` when there is no usable key.
    pub fn new(
        caller: Caller,
        headers: &HeaderMap,
        method: &Method,
        uri: &Uri,
        body: &Bytes,
    ) -> Result<Self, ApiError> {
        let key = headers
            .get("idempotency-key")
            .or_else(|| headers.get("x-request-id"))
            .ok_or_else(|| {
                ApiError::bad_request("a write needs an Idempotency-Key (or X-Request-Id) header")
                    .field("Idempotency-Key")
            })?
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
                ))
                .field("Idempotency-Key")
            })?
            .to_owned();
        let hash = fingerprint(method.as_str(), uri.path(), body);
        Ok(Self { caller, key, hash })
    }

    /// The idempotency key.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The stored form of the response `status` with `body`.
    ///
    /// # Errors
    /// 500 if the body cannot be encoded (a bug).
    pub fn reply(&self, status: StatusCode, body: &impl Serialize) -> Result<Reply, Failure> {
        let body = serde_json::to_string(body).map_err(|e| {
            Failure::Api(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode the response: {e}"),
            ))
        })?;
        Ok(Reply {
            principal: self.caller.principal.clone(),
            key: self.key.clone(),
            request_hash: self.hash.clone(),
            status: status.as_u16(),
            body,
        })
    }
}

/// Why an attempt at a write did not commit.
#[derive(Debug)]
pub enum Failure {
    /// The request is refused: answered as is, and stored under its key if [`is_stored`] (a
    /// retry gets the same refusal).
    Api(ApiError),
    /// The store failed, or another writer got there first ([`StoreError::is_conflict`]: the
    /// write is recomputed from a fresh read).
    Store(StoreError),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

macro_rules! impl_failure_from_domain {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Self::Api(e.into())
            }
        }
    )*};
}
impl_failure_from_domain!(
    crate::domain::apc::facade::ApcError,
    crate::domain::apc::thread::ThreadError,
    crate::domain::apc::controller::ConfigError,
    crate::domain::name::NameError
);

/// Runs a write: the stored response if this key was answered before (a different request
/// under the same key is a 422), else `attempt` until it commits; a lost race recomputes it.
/// `attempt` must store its [`Reply`] in the transaction of its effect; what else it returns
/// (an event to publish once committed) comes back with the response, `None` for a replay.
pub async fn run<F, Fut, E>(state: &AppState, write: &Key, mut attempt: F) -> (Response, Option<E>)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(Reply, E), Failure>>,
{
    for _ in 0..MAX_ATTEMPTS {
        match state.store.reply(&write.caller.principal, &write.key).await {
            Ok(Some(stored)) if stored.request_hash == write.hash => {
                return (respond(&stored, true), None);
            }
            Ok(Some(_)) => {
                let e = ApiError::unprocessable(format!(
                    "Idempotency-Key {:?} was used for another request (method, path or body); \
                     a new request needs a new key",
                    write.key
                ))
                .field("Idempotency-Key");
                return (e.into_response(), None);
            }
            Ok(None) => {}
            Err(e) => return (ApiError::unavailable(&e).into_response(), None),
        }
        match attempt().await {
            Ok((reply, extra)) => return (respond(&reply, false), Some(extra)),
            Err(Failure::Api(e)) if !is_stored(e.status()) => return (e.into_response(), None),
            Err(Failure::Api(e)) => {
                let reply = match write.reply(e.status(), &e) {
                    Ok(reply) => reply,
                    Err(_) => return (e.into_response(), None),
                };
                match state
                    .store
                    .put_reply(&reply, super::now().as_millis())
                    .await
                {
                    Ok(()) => return (respond(&reply, false), None),
                    // Another attempt under this key committed first: replay (or refuse) it.
                    Err(e) if e.is_conflict() => {}
                    Err(e) => return (ApiError::unavailable(&e).into_response(), None),
                }
            }
            Err(Failure::Store(e)) if e.is_conflict() => {}
            Err(Failure::Store(e)) => return (ApiError::unavailable(&e).into_response(), None),
        }
    }
    let e = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many concurrent writers on this thread; retry with the same idempotency key",
    );
    (e.into_response(), None)
}

/// Whether a refusal decided by a write's attempt is stored under its key (see the module doc).
#[must_use]
pub fn is_stored(status: StatusCode) -> bool {
    status.is_client_error() && !matches!(status.as_u16(), 401 | 407 | 408 | 425 | 429)
}

/// Deletes the replies older than `retention` at `now` (milliseconds since the epoch); returns
/// how many.
///
/// # Errors
/// The database failed.
pub async fn prune(
    store: &crate::store::Store,
    now_ms: u64,
    retention: std::time::Duration,
) -> Result<u64, StoreError> {
    let retention = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
    store.prune_replies(now_ms.saturating_sub(retention)).await
}

fn respond(reply: &Reply, replayed: bool) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut response = (status, Body::from(reply.body.clone())).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}
