//! The one error shape of the API: `{ "error": "…", "field": "…" }` with a 4xx or 5xx status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::apc::controller::ConfigError;
use crate::domain::apc::facade::ApcError;
use crate::domain::apc::generator::GenerateError;
use crate::domain::apc::thread::ThreadError;
use crate::domain::name::NameError;
use crate::store::StoreError;

/// An error answer: a status, a message, and the request field at fault when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            error: message.into(),
            field: None,
        }
    }

    /// Names the request field at fault.
    #[must_use]
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400: the request cannot be read.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 422: the request is well-formed but its values are refused.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 404: the thing asked for does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 503: the store failed; the request may be retried (with the same idempotency key).
    pub fn unavailable(error: &StoreError) -> Self {
        tracing::error!(%error, "store failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable; retry with the same idempotency key",
        )
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{} ({field}): {}", self.status.as_u16(), self.error),
            None => write!(f, "{}: {}", self.status.as_u16(), self.error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        Self::unprocessable(e.to_string()).field(e.field())
    }
}

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> Self {
        let field = e.problems().first().map(|p| format!("params.{}", p.field));
        let error = Self::unprocessable(e.to_string());
        match field {
            Some(field) => error.field(field),
            None => error,
        }
    }
}

impl From<ApcError> for ApiError {
    fn from(e: ApcError) -> Self {
        let message = e.to_string();
        match e {
            ApcError::OutOfSpec { .. } | ApcError::StepTooLarge { .. } => {
                Self::unprocessable(message).field("mode.sr")
            }
            ApcError::InvalidLimits { .. } => Self::unprocessable(message).field("sr_limits"),
            ApcError::WrongThread { .. } => Self::unprocessable(message).field("lot.thread"),
            ApcError::Generate(e) => e.into(),
            ApcError::Thread(e) => e.into(),
        }
    }
}

impl From<GenerateError> for ApiError {
    fn from(e: GenerateError) -> Self {
        let message = e.to_string();
        match e {
            GenerateError::NonFinite { .. } => Self::unprocessable(message).field("mode.sr"),
            GenerateError::BadReason => Self::unprocessable(message).field("mode.reason"),
            // Feedforward cannot serve this thread now: the state, not the request, is at fault.
            _ => Self::new(StatusCode::CONFLICT, message).field("mode"),
        }
    }
}

impl From<ThreadError> for ApiError {
    fn from(e: ThreadError) -> Self {
        let message = e.to_string();
        match e {
            ThreadError::NonFinite { field, .. } => Self::unprocessable(message).field(field),
            ThreadError::UnknownRun(_) => Self::unprocessable(message).field("run"),
            ThreadError::ConflictingMeasurement(_) => {
                Self::new(StatusCode::CONFLICT, message).field("id")
            }
            ThreadError::ConflictingReport(_) => {
                Self::new(StatusCode::CONFLICT, message).field("sr")
            }
            ThreadError::UnknownMeasurement(_) => Self::unprocessable(message).field("measurement"),
            _ => Self::new(StatusCode::CONFLICT, message),
        }
    }
}
