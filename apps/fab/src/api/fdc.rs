//! The FDC service's routes under `/v1/fdc`.
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /v1/fdc/samples` | tool | a batch `{tool, parameter, samples: [{at, value}]}` evaluated against the released spec's limits; the alarms it raised |
//! | `GET /v1/fdc/alarms?tool=&unacknowledged=true` | | alarms, newest first |
//! | `POST /v1/fdc/alarms/{id}/ack` | engineer | `{note}`: acknowledges, releasing its hold on the tool |
//! | `GET /v1/fdc/tools/{tool}/inhibit` | | whether the tool is inhibited, and by which alarms |
//!
//! The APC refuses sub recipes for an inhibited tool (409).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::auth::{Caller, Role};
use super::body::parse;
use super::error::ApiError;
use super::idempotency::{self, Failure, Write};
use super::{AppState, now};
use crate::domain::fdc::Sample;
use crate::domain::fdc::alarm::{Alarm, AlarmError, AlarmId};
use crate::domain::fdc::limits::{LimitsVersion, ParameterLimits};
use crate::domain::fdc::monitor::ParameterMonitor;
use crate::domain::name::Name;
use crate::store::{BatchRecord, MonitorCommit, Reply};

/// The most samples in one batch.
pub const MAX_BATCH: usize = 10_000;

/// The FDC routes (state: [`AppState`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/fdc/samples", post(samples))
        .route("/v1/fdc/alarms", get(alarms))
        .route("/v1/fdc/alarms/{id}/ack", post(acknowledge))
        .route("/v1/fdc/tools/{tool}/inhibit", get(inhibit))
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// The tool.
    pub tool: Name,
    /// The parameter.
    pub parameter: Name,
    /// The readings, oldest first.
    pub samples: Vec<Sample>,
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
#[derive(Debug, Serialize)]
pub struct Evaluated<'a> {
    samples: usize,
    limits_version: LimitsVersion,
    alarms: &'a [Alarm],
}

/// The released limits of `parameter`, if the released spec set has them.
async fn released_limits(
    state: &AppState,
    parameter: &Name,
) -> Result<Option<ParameterLimits>, Failure> {
    let (registry, _) = state.store.spec_registry().await?;
    let Some(set) = registry.released() else {
        return Ok(None);
    };
    let Some(params) = set
        .content
        .fdc_limits
        .iter()
        .find(|p| p.parameter == *parameter)
    else {
        return Ok(None);
    };
    // Validated when the set was drafted; a failure here is a corrupt store, not the client's.
    let limits =
        ParameterLimits::new(LimitsVersion(set.version.0), params.clone()).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("released limits invalid: {e}"),
            )
        })?;
    Ok(Some(limits))
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

async fn samples(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let write = Write::new(caller, &headers, &method, &uri, &body)?;
        let batch: Batch = parse(&headers, &body)?;
        batch.check()?;
        Ok::<_, ApiError>((write, batch))
    };
    let (write, batch) = match result.await {
        Ok(ok) => ok,
        Err(e) => return e.into_response(),
    };
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

#[derive(Debug, Deserialize)]
struct AlarmQuery {
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    unacknowledged: bool,
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Note {
    note: String,
}

async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        caller.require(Role::Engineer, "acknowledging an alarm")?;
        let Path(id) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
        let id = id.parse().map(AlarmId).map_err(|_| {
            ApiError::unprocessable(format!("alarm id must be an integer, not {id:?}")).field("id")
        })?;
        let by = Name::parse("by", caller.principal.clone())?;
        let write = Write::new(caller, &headers, &method, &uri, &body)?;
        let note: Note = parse(&headers, &body)?;
        Ok::<_, ApiError>((write, id, by, note))
    };
    let (write, id, by, note) = match result.await {
        Ok(ok) => ok,
        Err(e) => return e.into_response(),
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

#[derive(Debug, Serialize)]
struct Inhibit {
    tool: Name,
    inhibited: bool,
    holding: Vec<AlarmId>,
}

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
