//! `POST /v1/apc/metrology/{measurement}/invalidate` (engineer, `{reason}`): a measurement found
//! wrong is marked invalid and the thread's state is replayed from its history without it.
//!
//! The invalidation is a transition of the measurement's thread like any other (the controller
//! state before and after, who and why), committed at the version it was computed from
//! (optimistic concurrency: a lost race recomputes it). Invalidating a measurement again changes
//! nothing and answers `changed: false`.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::path_error;
use crate::api::auth::{Caller, Role};
use crate::api::error::ApiError;
use crate::api::idempotency;
use crate::api::write::{Write, WriteBody};
use crate::api::{AppState, now};
use crate::domain::apc::controller::ControllerState;
use crate::domain::apc::thread::{Disposition, StateVersion, ThreadEvent};
use crate::domain::name::Name;
use crate::store::ThreadCommit;

/// The measurement named by the path `/v1/apc/metrology/{measurement}/…`.
#[derive(Debug)]
pub(super) struct MeasurementAt(Name);

impl FromRequestParts<AppState> for MeasurementAt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| path_error(&e))?;
        Ok(Self(Name::parse("measurement", id)?))
    }
}

/// The body: why the measurement is invalid (1–500 characters, no control characters).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Invalidation {
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

impl WriteBody for Invalidation {
    const ROLE: Role = Role::Engineer;
    const WHAT: &'static str = "invalidating a measurement";

    fn check(&self, _caller: &Caller) -> Result<(), ApiError> {
        super::check_reason(&self.reason)
    }
}

/// The answer: the thread, its version, and its controller state before and after the replay.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Invalidated {
    measurement: Name,
    thread: String,
    thread_version: StateVersion,
    /// False when the measurement was invalid already.
    changed: bool,
    disposition: Disposition,
    before: ControllerState,
    after: ControllerState,
}

#[utoipa::path(
    post,
    path = "/v1/apc/metrology/{measurement}/invalidate",
    operation_id = "invalidate_measurement",
    tag = "apc",
    description = "Engineer: marks a measurement invalid and replays its thread without it",
    params(("measurement" = Name, Path), ("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    request_body = Invalidation,
    responses((status = 200, body = Invalidated), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
pub(super) async fn invalidate(
    State(state): State<AppState>,
    write: Write<Invalidation, MeasurementAt>,
) -> Response {
    let Write {
        key: write,
        path: MeasurementAt(id),
        body,
    } = write;
    let by = match Name::parse("by", write.caller.principal.clone()) {
        Ok(by) => by,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (state, write, id, by, reason) = (&state, &write, &id, &by, &body.reason);
    let (response, _) = idempotency::run(state, write, move || async move {
        let at = now();
        let unknown = || ApiError::not_found(format!("no measurement {id}")).field("measurement");
        let run = state.store.measurement_run(id).await?.ok_or_else(unknown)?;
        let record = state.store.run(&run).await?.ok_or_else(unknown)?;
        let key = record.lot.thread;
        let mut thread = state.store.thread(&key).await?.ok_or_else(unknown)?;
        let expected = thread.version().0;
        let before = *thread.controller();
        let transition = thread.apply(ThreadEvent::Invalidated {
            measurement: id.clone(),
            by: by.clone(),
            reason: reason.clone(),
            at,
        })?;
        let view = Invalidated {
            measurement: id.clone(),
            thread: key.to_string(),
            thread_version: thread.version(),
            changed: transition.is_some(),
            disposition: Disposition::Invalidated,
            before,
            after: *thread.controller(),
        };
        let reply = write.reply(StatusCode::OK, &view)?;
        match &transition {
            Some(transition) => {
                let commit = ThreadCommit {
                    thread: &thread,
                    expected: Some(expected),
                    transitions: std::slice::from_ref(transition),
                    run: None,
                    measurement: None,
                    reply: Some(&reply),
                };
                state.store.commit_thread(&commit, at.as_millis()).await?;
                tracing::info!(measurement = %id, thread = %key, by = %by, "measurement invalidated, thread replayed");
            }
            None => state.store.put_reply(&reply, at.as_millis()).await?,
        }
        Ok((reply, ()))
    })
    .await;
    response
}
