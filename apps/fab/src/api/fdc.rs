//! The FDC service's routes under `/v1/fdc`.
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /v1/fdc/samples` | tool | a batch `{tool, parameter, samples: [{at, value}]}` evaluated against the limits of the spec in force (see [`super::limits`]); the alarms it raised |
//! | `GET /v1/fdc/alarms?tool=&unacknowledged=true` | | alarms, newest first |
//! | `POST /v1/fdc/alarms/{id}/ack` | engineer | `{note}`: acknowledges, releasing its hold on the tool |
//! | `GET /v1/fdc/tools/{tool}/inhibit` | | whether the tool is inhibited, and by which alarms |
//!
//! The APC refuses sub recipes for an inhibited tool (409).

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Caller, Role};
use super::error::ApiError;
use super::idempotency::{self, Failure};
use super::write::{Write, WriteBody};
use super::{AppState, now};
use crate::domain::fdc::Sample;
use crate::domain::fdc::alarm::{Alarm, AlarmError, AlarmId};
use crate::domain::fdc::limits::{LimitsVersion, ParameterLimits};
use crate::domain::fdc::monitor::ParameterMonitor;
use crate::domain::name::Name;
use crate::store::{BatchRecord, MonitorCommit, Reply};

/// The most samples in one batch.
pub const MAX_BATCH: usize = 10_000;

/// The FDC routes (state: [`AppState`]), each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(samples))
        .routes(routes!(alarms))
        .routes(routes!(acknowledge))
        .routes(routes!(inhibit))
}

impl From<AlarmError> for ApiError {
    fn from(e: AlarmError) -> Self {
        let message = e.to_string();
        match e {
            AlarmError::BadNote => Self::unprocessable(message).field("note"),
            _ => Self::new(StatusCode::CONFLICT, message),
        }
    }
}

/// A batch of samples of one parameter on one tool: the body of `POST /v1/fdc/samples`, and
/// the message FDC consumes from the broker (`{tool, parameter, samples: [{at, value}]}`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// The tool.
    pub tool: Name,
    /// The parameter.
    pub parameter: Name,
    /// The readings, oldest first.
    #[schema(min_items = 1, max_items = 10000)]
    pub samples: Vec<Sample>,
}

impl WriteBody for Batch {
    const ROLE: Role = Role::Tool;
    const WHAT: &'static str = "sending samples";

    fn check(&self, _caller: &Caller) -> Result<(), ApiError> {
        Batch::check(self)
    }
}

impl Batch {
    /// Refuses a batch with no sample or more than [`MAX_BATCH`], naming `samples`.
    ///
    /// # Errors
    /// 422 naming `samples`.
    pub fn check(&self) -> Result<(), ApiError> {
        if self.samples.is_empty() || self.samples.len() > MAX_BATCH {
            return Err(ApiError::unprocessable(format!(
                "samples must hold 1 to {MAX_BATCH} readings"
            ))
            .field("samples"));
        }
        Ok(())
    }
}

/// What a batch came to, as the HTTP response shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Evaluated<'a> {
    samples: usize,
    limits_version: LimitsVersion,
    alarms: &'a [Alarm],
}

/// The limits of `parameter` in the spec in force (see [`super::limits`]), if it has them.
async fn released_limits(
    state: &AppState,
    parameter: &Name,
) -> Result<Option<ParameterLimits>, Failure> {
    super::limits::fdc_limits(state, parameter).await
}

fn new_alarm_id() -> AlarmId {
    // Positive as a BIGINT; unique by the primary key (a collision is a conflict, retried).
    AlarmId(rand::random::<u64>() >> 1)
}

/// One attempt at ingesting batch `id`, the one code path of HTTP and the broker: evaluates
/// it against the released limits of its parameter on its monitor, then commits in one
/// transaction the monitor, the alarms it raised, the batch itself (`fdc_batches`, under `id`)
/// and the response `reply` makes (an HTTP request's, stored for idempotency; `None` from the
/// broker). Returns that response once committed.
///
/// # Errors
/// [`Failure::Api`] when the batch cannot be evaluated (409 naming `parameter` without
/// released limits for it); [`Failure::Store`] when the store failed, or is a conflict
/// (another writer moved the monitor, or batch `id` was stored meanwhile): the caller starts
/// over from a fresh read.
pub async fn ingest(
    state: &AppState,
    id: &str,
    batch: &Batch,
    reply: impl FnOnce(&Evaluated<'_>) -> Result<Option<Reply>, Failure>,
) -> Result<Option<Reply>, Failure> {
    let store = &state.store;
    let limits = released_limits(state, &batch.parameter)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "the released spec has no FDC limits for {}",
                    batch.parameter
                ),
            )
            .field("parameter")
        })?;
    let (mut monitor, expected) = match store.monitor(&batch.tool, &batch.parameter).await? {
        Some((monitor, version)) => (monitor, Some(version)),
        None => {
            let start = batch.samples.first().map_or_else(now, |s| s.at);
            (
                ParameterMonitor::new(batch.tool.clone(), limits.clone(), start),
                None,
            )
        }
    };
    if limits.version() > monitor.limits().version() {
        monitor
            .set_limits(limits)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    let alarms: Vec<Alarm> = batch
        .samples
        .iter()
        .flat_map(|sample| monitor.observe(*sample))
        .map(|detection| Alarm::raise(new_alarm_id(), detection))
        .collect();
    let reply = reply(&Evaluated {
        samples: batch.samples.len(),
        limits_version: monitor.limits().version(),
        alarms: &alarms,
    })?;
    let commit = MonitorCommit {
        tool: &batch.tool,
        parameter: &batch.parameter,
        monitor: &monitor,
        expected,
        alarms: &alarms,
        reply: reply.as_ref(),
        batch: BatchRecord {
            id,
            samples: &batch.samples,
        },
    };
    store.commit_monitor(&commit, now().as_millis()).await?;
    for alarm in &alarms {
        tracing::warn!(
            alarm = alarm.id.0,
            batch = id,
            tool = %batch.tool,
            parameter = %batch.parameter,
            class = ?alarm.detection.class,
            severity = ?alarm.detection.severity,
            "FDC alarm raised"
        );
    }
    Ok(reply)
}

#[utoipa::path(
    post,
    path = "/v1/fdc/samples",
    tag = "fdc",
    description = "Tool: a batch of samples evaluated against the released spec's limits; the alarms it raised",
    params(("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    request_body = Batch,
    responses((status = 200, body = Evaluated<'static>), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn samples(State(state): State<AppState>, write: Write<Batch>) -> Response {
    let Write {
        key: write,
        body: batch,
        ..
    } = write;
    // The batch's id: the request's key, of its principal (keys are per principal).
    let id = format!("http:{}:{}", write.caller.principal, write.key());
    let (state, write, batch, id) = (&state, &write, &batch, id.as_str());
    let (response, _) = idempotency::run(state, write, move || async move {
        let reply = ingest(state, id, batch, |evaluated| {
            write.reply(StatusCode::OK, evaluated).map(Some)
        })
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the batch was committed without its response",
            )
        })?;
        Ok((reply, ()))
    })
    .await;
    response
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AlarmQuery {
    /// Only this tool's alarms.
    #[serde(default)]
    #[param(value_type = Option<Name>)]
    tool: Option<String>,
    /// Only the alarms not acknowledged yet.
    #[serde(default)]
    unacknowledged: bool,
}

#[utoipa::path(
    get,
    path = "/v1/fdc/alarms",
    tag = "fdc",
    description = "Alarms, newest first",
    params(AlarmQuery),
    responses((status = 200, body = Vec<Alarm>), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
)]
async fn alarms(
    State(state): State<AppState>,
    query: Result<Query<AlarmQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::unprocessable(e.body_text()))?;
    let tool = query.tool.map(|t| Name::parse("tool", t)).transpose()?;
    let alarms = state
        .store
        .alarms(tool.as_ref(), query.unacknowledged, 1000)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    Ok(Json(alarms).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Note {
    note: String,
}

impl WriteBody for Note {
    const ROLE: Role = Role::Engineer;
    const WHAT: &'static str = "acknowledging an alarm";
}

/// The alarm named by the path `/v1/fdc/alarms/{id}/…`.
#[derive(Debug)]
struct AlarmAt(AlarmId);

impl FromRequestParts<AppState> for AlarmAt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e: PathRejection| ApiError::bad_request(e.body_text()))?;
        let id = id.parse().map(AlarmId).map_err(|_| {
            ApiError::unprocessable(format!("alarm id must be an integer, not {id:?}")).field("id")
        })?;
        Ok(Self(id))
    }
}

#[utoipa::path(
    post,
    path = "/v1/fdc/alarms/{id}/ack",
    operation_id = "acknowledge_alarm",
    tag = "fdc",
    description = "Engineer: acknowledges an alarm, releasing its hold on the tool",
    params(("id" = u64, Path), ("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    request_body = Note,
    responses((status = 200, body = Alarm), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn acknowledge(State(state): State<AppState>, write: Write<Note, AlarmAt>) -> Response {
    let Write {
        key: write,
        path: AlarmAt(id),
        body: note,
    } = write;
    let by = match Name::parse("by", write.caller.principal.clone()) {
        Ok(by) => by,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (state, write, by, note) = (&state, &write, &by, &note);
    let (response, _) = idempotency::run(state, write, move || async move {
        let mut alarm = state
            .store
            .alarm(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no alarm {}", id.0)).field("id"))?;
        let at = now();
        alarm
            .acknowledge(by.clone(), &note.note, at)
            .map_err(ApiError::from)?;
        let reply = write.reply(StatusCode::OK, &alarm)?;
        state
            .store
            .acknowledge_alarm(&alarm, Some(&reply), at.as_millis())
            .await?;
        Ok((reply, ()))
    })
    .await;
    response
}

#[derive(Debug, Serialize, ToSchema)]
struct Inhibit {
    tool: Name,
    inhibited: bool,
    holding: Vec<AlarmId>,
}

#[utoipa::path(
    get,
    path = "/v1/fdc/tools/{tool}/inhibit",
    tag = "fdc",
    description = "Whether the tool is inhibited, and by which alarms",
    params(("tool" = Name, Path)),
    responses((status = 200, body = Inhibit), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
)]
async fn inhibit(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(tool) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let tool = Name::parse("tool", tool)?;
    let holding = state
        .store
        .inhibiting(&tool)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    Ok(Json(Inhibit {
        inhibited: !holding.is_empty(),
        tool,
        holding,
    })
    .into_response())
}
