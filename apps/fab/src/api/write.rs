//! The prologue of every write, as one extractor: [`Write<T, P>`].
//!
//! A write handler takes `Write<T>` (or `Write<T, P>` when the route has path parameters) as
//! its last argument. By the time the handler runs, the extractor has, in this order:
//!
//! 1. authenticated the caller (`Authorization: Bearer <token>`, else 401);
//! 2. checked the caller's role against [`WriteBody::ROLE`] (else 403 naming the role);
//! 3. parsed the path into `P` (any extractor whose rejection is an [`ApiError`]);
//! 4. read the idempotency key (`Idempotency-Key` or `X-Request-Id`, else 400) and fingerprinted
//!    the request;
//! 5. parsed the JSON body into `T` (400 for bad JSON, 422 naming the field);
//! 6. run [`WriteBody::check`]: range checks and roles that depend on the body.
//!
//! Any failure is answered at once as the API's error shape; nothing is stored (the answer
//! depends on the request only, so a retry gets the same one anyway).
//!
//! A new write handler:
//!
//! ```ignore
//! #[derive(Deserialize, ToSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Rename { name: Name }
//!
//! impl WriteBody for Rename {
//!     const ROLE: Role = Role::Engineer;
//!     const WHAT: &'static str = "renaming a tool";
//! }
//!
//! async fn rename(State(state): State<AppState>, write: Write<Rename, ToolAt>) -> Response {
//!     let Write { key, path: ToolAt(tool), body } = write;
//!     let (response, _) = idempotency::run(&state, &key, || async {
//!         // read, decide, then store the effect and `key.reply(..)` in one transaction
//!     })
//!     .await;
//!     response
//! }
//! ```

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;

use super::AppState;
use super::auth::{Caller, Role};
use super::body::parse;
use super::error::ApiError;
use super::idempotency::Key;

/// The body of one kind of write: who may make it and what else it must satisfy.
pub trait WriteBody: DeserializeOwned + Send + Sized + 'static {
    /// The least role that may make this write.
    const ROLE: Role;
    /// What the write does, for the 403 message (`"{WHAT} needs the engineer role"`).
    const WHAT: &'static str;

    /// Reads the body. The default parses JSON ([`parse`]); a write without a body overrides
    /// this to ignore it.
    ///
    /// # Errors
    /// 400 for malformed JSON, 415 without a JSON content type, 422 naming the field.
    fn from_body(headers: &HeaderMap, body: &Bytes) -> Result<Self, ApiError> {
        parse(headers, body)
    }

    /// Checks what the types do not: ranges, or a role that depends on the body.
    ///
    /// # Errors
    /// A 4xx naming the field (or 403 naming the role).
    fn check(&self, caller: &Caller) -> Result<(), ApiError> {
        let _ = caller;
        Ok(())
    }
}

/// An authenticated, authorised write with its idempotency key, path `P` and body `T`.
#[derive(Debug)]
pub struct Write<T, P = ()> {
    /// Who writes, under which idempotency key, of which request: pass it to
    /// [`super::idempotency::run`] and build the stored answer with [`Key::reply`].
    pub key: Key,
    /// The parsed path parameters.
    pub path: P,
    /// The parsed, checked body.
    pub body: T,
}

impl<T, P> Write<T, P> {
    /// The caller.
    #[must_use]
    pub fn caller(&self) -> &Caller {
        &self.key.caller
    }
}

impl From<Infallible> for ApiError {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}

impl<T, P> FromRequest<AppState> for Write<T, P>
where
    T: WriteBody,
    P: FromRequestParts<AppState> + Send,
    P::Rejection: Into<ApiError>,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let caller = Caller::from_request_parts(&mut parts, state).await?;
        caller.require(T::ROLE, T::WHAT)?;
        let path = P::from_request_parts(&mut parts, state)
            .await
            .map_err(Into::into)?;
        let (method, uri, headers) = (
            parts.method.clone(),
            parts.uri.clone(),
            parts.headers.clone(),
        );
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        let key = Key::new(caller, &headers, &method, &uri, &bytes)?;
        let body = T::from_body(&headers, &bytes)?;
        body.check(&key.caller)?;
        Ok(Self { key, path, body })
    }
}
