//! How a message's payload becomes the handler's typed value, and back.

use bytes::Bytes;
use orderly::BoxError;
use serde::{Serialize, de::DeserializeOwned};

/// A message type a consumer can decode from a payload.
///
/// A payload that does not decode is dead-lettered at once, with the decoder's error as the
/// reason: delivering it again would not change it.
pub trait Decode: Sized + Send + 'static {
    /// Decodes `payload`.
    fn decode(payload: Bytes) -> Result<Self, BoxError>;
}

/// A message type a publisher can encode into a payload.
pub trait Encode {
    /// The payload's MIME type, sent as the message's content type where the broker has one.
    const CONTENT_TYPE: &'static str;

    /// Encodes the message.
    fn encode(&self) -> Result<Vec<u8>, BoxError>;
}

/// A message encoded as JSON: the consumer decodes `T` with serde; the publisher encodes it.
///
/// ```
/// use orderly_messaging::{Decode, Json};
///
/// #[derive(serde::Deserialize)]
/// struct Order { id: u64 }
///
/// let Json(order) = Json::<Order>::decode(br#"{"id":7}"#[..].into()).unwrap();
/// assert_eq!(order.id, 7);
/// let error = Json::<Order>::decode(br#"{"id":"seven"}"#[..].into()).err().unwrap();
/// assert!(error.to_string().contains("invalid type"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + Send + 'static> Decode for Json<T> {
    fn decode(payload: Bytes) -> Result<Self, BoxError> {
        serde_json::from_slice(&payload)
            .map(Json)
            .map_err(|error| format!("invalid JSON message: {error}").into())
    }
}

impl<T: Serialize> Encode for Json<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn encode(&self) -> Result<Vec<u8>, BoxError> {
        Ok(serde_json::to_vec(&self.0)?)
    }
}

/// The payload as it arrived, for handlers that decode it themselves.
impl Decode for Bytes {
    fn decode(payload: Bytes) -> Result<Self, BoxError> {
        Ok(payload)
    }
}

impl Encode for Bytes {
    const CONTENT_TYPE: &'static str = "application/octet-stream";

    fn encode(&self) -> Result<Vec<u8>, BoxError> {
        Ok(self.to_vec())
    }
}
