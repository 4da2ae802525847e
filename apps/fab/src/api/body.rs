//! Reading JSON bodies: every failure is a 4xx naming the field, never a panic.

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Parses `body` as JSON into `T`. A syntax error is a 400; a missing, unknown or mistyped
/// field (or an invalid value the type refuses) is a 422 naming the field's path
/// (`lot.thread.fab`).
///
/// # Errors
/// As above; also a 415 when the content type is not JSON.
pub fn parse<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json {
        return Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected a JSON body with content-type application/json",
        ));
    }
    // Syntax first: what serde reports while typing (an integer where an enum was expected
    // reads as "expected value") is about a field of valid JSON, a 422 naming it.
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // `missing field `x`` names the field by message, at its parent's path.
        let field = match message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            Some(missing) if path == "." => missing.to_owned(),
            Some(missing) => format!("{path}.{missing}"),
            None => path,
        };
        ApiError::unprocessable(message).field(field)
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// A fingerprint of a request (method, path and body), stable across processes and versions
/// (FNV-1a, 64 bits): an idempotency key reused for another request is refused by it.
#[must_use]
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in method
        .bytes()
        .chain([0])
        .chain(path.bytes())
        .chain([0])
        .chain(body.iter().copied())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}
