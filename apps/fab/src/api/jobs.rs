//! The tool job queue's routes under `/v1/tools/{tool}/jobs` (served with the APC).
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /v1/tools/{tool}/jobs` | tool | submit a job: `{job: "expose", run, lot, reticle, sr, urgent}`, `{job: "check_in", reticle}` or `{job: "check_out", reticle}` → 201 |
//! | `GET /v1/tools/{tool}/jobs` | open | the running job, the waiting jobs, the planned order, the reticles in the tool |
//! | `POST /v1/tools/{tool}/jobs/next` | tool | the tool asks what to do: starts the next job (`started: null` while one runs or none waits) |
//! | `POST /v1/tools/{tool}/jobs/{id}/complete` | tool | the running job is done: its reticle effect applies |
//! | `DELETE /v1/tools/{tool}/jobs/{id}` | engineer | cancels a waiting job (not one another job depends on) |
//!
//! The order is the domain's ([`crate::domain::jobs`]): first in, first out; a reticle is checked
//! in before an exposure that needs it (a job the plan cannot satisfy is refused with a 409
//! naming `reticle`); an urgent (hot) lot jumps the waiting jobs, never the running one, and
//! takes its reticle's check-in with it. A tool that FDC holds inhibited starts no exposure
//! (409 naming the alarms); reticle moves still run.
//!
//! Each tool's queue is one stored document with a version: a change is committed only at the
//! version it was computed from, so replicas serialise the changes to one tool (a lost race is
//! recomputed). Every write is idempotent ([`super::idempotency`]).

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Caller, Role};
use super::error::ApiError;
use super::idempotency::{self, Failure, Key};
use super::write::{Write, WriteBody};
use super::{AppState, now};
use crate::domain::apc::context::LotPriority;
use crate::domain::jobs::{JobError, JobId, JobQueue, QueuedJob, ToolJob};
use crate::domain::name::Name;
use crate::store::QueueCommit;

/// The job-queue routes (state: [`AppState`]), each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit))
        .routes(routes!(list))
        .routes(routes!(next))
        .routes(routes!(cancel))
        .routes(routes!(complete))
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        let message = e.to_string();
        match e {
            JobError::ReticleNotIn { .. } | JobError::ReticleAlreadyIn { .. } => {
                Self::new(StatusCode::CONFLICT, message).field("reticle")
            }
            JobError::NonFiniteSr(_) => Self::unprocessable(message).field("sr"),
            JobError::NotWaiting(_) | JobError::NotRunning(_) => {
                Self::new(StatusCode::CONFLICT, message).field("id")
            }
        }
    }
}

fn path_error(e: &axum::extract::rejection::PathRejection) -> ApiError {
    ApiError::bad_request(e.body_text())
}

/// The tool named by the path `/v1/tools/{tool}/jobs…`.
#[derive(Debug)]
struct ToolAt(Name);

impl FromRequestParts<AppState> for ToolAt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(tool) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| path_error(&e))?;
        Ok(Self(Name::parse("tool", tool)?))
    }
}

/// The tool and job named by the path `/v1/tools/{tool}/jobs/{id}…`.
#[derive(Debug)]
struct JobAt(Name, JobId);

impl FromRequestParts<AppState> for JobAt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path((tool, id)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| path_error(&e))?;
        let tool = Name::parse("tool", tool)?;
        let id = id.parse::<u64>().map_err(|_| {
            ApiError::unprocessable(format!("job id must be a whole number, not {id:?}"))
                .field("id")
        })?;
        Ok(Self(tool, JobId(id)))
    }
}

/// What a submitted job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum JobKind {
    /// Expose a lot (a scanner job): needs `run`, `lot`, `reticle`, `sr`.
    Expose,
    /// Load a reticle: needs `reticle`.
    CheckIn,
    /// Unload a reticle: needs `reticle`.
    CheckOut,
}

/// `POST /v1/tools/{tool}/jobs`: a job for the tool. One flat shape (rather than one per kind)
/// so that every refusal names its field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Submit {
    job: JobKind,
    reticle: Name,
    /// The APC run whose SR the exposure uses.
    #[serde(default)]
    run: Option<Name>,
    #[serde(default)]
    lot: Option<Name>,
    /// The sub recipe (mJ/cm²).
    #[serde(default)]
    sr: Option<f64>,
    /// A hot lot: jumps the waiting jobs.
    #[serde(default)]
    urgent: Option<bool>,
}

impl WriteBody for Submit {
    const ROLE: Role = Role::Tool;
    const WHAT: &'static str = "submitting a tool job";

    fn check(&self, _caller: &Caller) -> Result<(), ApiError> {
        let expose = self.job == JobKind::Expose;
        let fields = [
            ("run", self.run.is_some()),
            ("lot", self.lot.is_some()),
            ("sr", self.sr.is_some()),
            ("urgent", self.urgent.is_some()),
        ];
        for (field, given) in fields {
            if expose && !given && field != "urgent" {
                return Err(
                    ApiError::unprocessable(format!("an expose job needs {field}")).field(field),
                );
            }
            if !expose && given {
                return Err(ApiError::unprocessable(format!(
                    "{field} belongs to expose jobs, not reticle moves"
                ))
                .field(field));
            }
        }
        match self.sr {
            Some(sr) if !sr.is_finite() || sr <= 0.0 => {
                Err(ApiError::unprocessable("sr must be a positive finite number").field("sr"))
            }
            _ => Ok(()),
        }
    }
}

impl Submit {
    /// The command; [`WriteBody::check`] made sure an exposure has what it needs.
    fn into_job(self) -> Result<ToolJob, ApiError> {
        let reticle = self.reticle;
        Ok(match self.job {
            JobKind::Expose => {
                let missing = |field: &str| {
                    ApiError::unprocessable(format!("an expose job needs {field}")).field(field)
                };
                ToolJob::Expose {
                    run: self.run.ok_or_else(|| missing("run"))?,
                    lot: self.lot.ok_or_else(|| missing("lot"))?,
                    reticle,
                    sr: self.sr.ok_or_else(|| missing("sr"))?,
                    priority: if self.urgent == Some(true) {
                        LotPriority::Hot
                    } else {
                        LotPriority::Normal
                    },
                }
            }
            JobKind::CheckIn => ToolJob::CheckIn { reticle },
            JobKind::CheckOut => ToolJob::CheckOut { reticle },
        })
    }
}

/// The writes without a body (start, complete): whatever is sent is ignored.
#[derive(Debug, Deserialize)]
struct ToolAction;

impl WriteBody for ToolAction {
    const ROLE: Role = Role::Tool;
    const WHAT: &'static str = "running the tool's jobs";

    fn from_body(_: &HeaderMap, _: &axum::body::Bytes) -> Result<Self, ApiError> {
        Ok(Self)
    }
}

/// Cancelling a waiting job: no body.
#[derive(Debug, Deserialize)]
struct Cancel;

impl WriteBody for Cancel {
    const ROLE: Role = Role::Engineer;
    const WHAT: &'static str = "cancelling a tool job";

    fn from_body(_: &HeaderMap, _: &axum::body::Bytes) -> Result<Self, ApiError> {
        Ok(Self)
    }
}

/// A queue as answered.
#[derive(Debug, Serialize, ToSchema)]
struct QueueView<'a> {
    tool: &'a Name,
    /// The stored version (0: never changed).
    version: u64,
    running: Option<&'a QueuedJob>,
    /// In submission order.
    waiting: Vec<&'a QueuedJob>,
    /// The order the running and waiting jobs would run in if nothing else arrived.
    planned_order: Vec<JobId>,
    reticles_in: Vec<&'a Name>,
}

impl<'a> QueueView<'a> {
    fn new(tool: &'a Name, queue: &'a JobQueue, version: u64) -> Self {
        Self {
            tool,
            version,
            running: queue.running(),
            waiting: queue.waiting().collect(),
            planned_order: queue.planned_order(),
            reticles_in: queue.loaded().collect(),
        }
    }
}

/// The answer to a queue write: the job it concerns (if any) and the queue after it.
#[derive(Debug, Serialize, ToSchema)]
struct Changed<'a> {
    job: Option<&'a QueuedJob>,
    queue: QueueView<'a>,
}

/// What a write does to a queue: the job it concerns, or `None` when it changes nothing.
type Outcome = Result<Option<QueuedJob>, Failure>;

/// Runs a queue write on `tool`: read the queue, `change` it (given the tool's inhibiting
/// alarms when `inhibit` is set), commit at the version read, answer with `status`.
async fn change_queue<F>(
    state: &AppState,
    write: &Key,
    tool: &Name,
    status: StatusCode,
    change: F,
) -> Response
where
    F: Fn(&mut JobQueue, &[u64]) -> Outcome,
{
    let change = &change;
    let (response, _) = idempotency::run(state, write, move || async move {
        let at = now();
        let (mut queue, expected) = match state.store.tool_queue(tool).await? {
            Some((queue, version)) => (queue, Some(version)),
            None => (JobQueue::new(), None),
        };
        let holding: Vec<u64> = state
            .store
            .inhibiting(tool)
            .await?
            .into_iter()
            .map(|id| id.0)
            .collect();
        let job = change(&mut queue, &holding)?;
        let changed = job.is_some();
        let version = match (changed, expected) {
            (true, v) => v.map_or(1, |v| v + 1),
            (false, v) => v.unwrap_or(0),
        };
        let reply = write.reply(
            status,
            &Changed {
                job: job.as_ref(),
                queue: QueueView::new(tool, &queue, version),
            },
        )?;
        if changed {
            let commit = QueueCommit {
                tool,
                queue: &queue,
                expected,
                reply: Some(&reply),
            };
            state
                .store
                .commit_tool_queue(&commit, at.as_millis())
                .await?;
        } else {
            state.store.put_reply(&reply, at.as_millis()).await?;
        }
        Ok((reply, ()))
    })
    .await;
    response
}

#[utoipa::path(
    post,
    path = "/v1/tools/{tool}/jobs",
    operation_id = "submit_tool_job",
    tag = "jobs",
    description = "Tool: queues a scanner job (expose, urgent for a hot lot) or a reticle check-in/out",
    params(("tool" = Name, Path), ("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    request_body = Submit,
    responses((status = 201, body = Changed<'static>), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn submit(State(state): State<AppState>, write: Write<Submit, ToolAt>) -> Response {
    let Write {
        key,
        path: ToolAt(tool),
        body,
    } = write;
    let job = match body.into_job() {
        Ok(job) => job,
        Err(e) => return e.into_response(),
    };
    change_queue(&state, &key, &tool, StatusCode::CREATED, |queue, _| {
        let id = queue.submit(job.clone()).map_err(ApiError::from)?;
        Ok(Some(QueuedJob {
            id,
            job: job.clone(),
        }))
    })
    .await
}

#[utoipa::path(
    post,
    path = "/v1/tools/{tool}/jobs/next",
    operation_id = "start_next_tool_job",
    tag = "jobs",
    description = "Tool: starts the next job (none while one runs); no exposure starts on an inhibited tool (409)",
    params(("tool" = Name, Path), ("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    responses((status = 200, body = Changed<'static>), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn next(State(state): State<AppState>, write: Write<ToolAction, ToolAt>) -> Response {
    let Write {
        key,
        path: ToolAt(tool),
        ..
    } = write;
    let tool_name = &tool;
    change_queue(&state, &key, &tool, StatusCode::OK, |queue, holding| {
        let Some(next) = queue.peek_next() else {
            return Ok(None);
        };
        if next.job.is_exposure() && !holding.is_empty() {
            let ids: Vec<String> = holding.iter().map(u64::to_string).collect();
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "tool {tool_name} is inhibited by unacknowledged alarm(s) {}: {} (an exposure) cannot start",
                    ids.join(", "),
                    next.id
                ),
            )
            .field("tool")
            .into());
        }
        Ok(queue.start_next().cloned())
    })
    .await
}

#[utoipa::path(
    post,
    path = "/v1/tools/{tool}/jobs/{id}/complete",
    operation_id = "complete_tool_job",
    tag = "jobs",
    description = "Tool: the running job is done; its reticle effect applies",
    params(("tool" = Name, Path), ("id" = u64, Path), ("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    responses((status = 200, body = Changed<'static>), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn complete(State(state): State<AppState>, write: Write<ToolAction, JobAt>) -> Response {
    let Write {
        key,
        path: JobAt(tool, id),
        ..
    } = write;
    change_queue(&state, &key, &tool, StatusCode::OK, |queue, _| {
        Ok(Some(queue.complete(id).map_err(ApiError::from)?))
    })
    .await
}

#[utoipa::path(
    delete,
    path = "/v1/tools/{tool}/jobs/{id}",
    operation_id = "cancel_tool_job",
    tag = "jobs",
    description = "Engineer: cancels a waiting job",
    params(("tool" = Name, Path), ("id" = u64, Path), ("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    responses((status = 200, body = Changed<'static>), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn cancel(State(state): State<AppState>, write: Write<Cancel, JobAt>) -> Response {
    let Write {
        key,
        path: JobAt(tool, id),
        ..
    } = write;
    change_queue(&state, &key, &tool, StatusCode::OK, |queue, _| {
        Ok(Some(queue.cancel(id).map_err(ApiError::from)?))
    })
    .await
}

#[utoipa::path(
    get,
    path = "/v1/tools/{tool}/jobs",
    operation_id = "tool_jobs",
    tag = "jobs",
    description = "The tool's running job, waiting jobs, planned order and loaded reticles",
    params(("tool" = Name, Path)),
    responses((status = 200, body = QueueView<'static>), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
)]
async fn list(State(state): State<AppState>, ToolAt(tool): ToolAt) -> Result<Response, ApiError> {
    let (queue, version) = state
        .store
        .tool_queue(&tool)
        .await
        .map_err(|e| ApiError::unavailable(&e))?
        .unwrap_or_default();
    Ok(Json(QueueView::new(&tool, &queue, version)).into_response())
}
