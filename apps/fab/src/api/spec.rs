//! The central spec service's routes under `/v1/spec`.
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /v1/spec/sets` | engineer | a draft `{content: {sr_limits, fdc_limits}}`, validated whole; the next version |
//! | `POST /v1/spec/sets/{version}/approve` | engineer, not the author | draft → approved |
//! | `POST /v1/spec/sets/{version}/release` | engineer | approved → released, retiring the previous release in the same change |
//! | `POST /v1/spec/sets/{version}/retire` | engineer | withdraw or abandon |
//! | `GET /v1/spec/sets/{version}` | | a set |
//! | `GET /v1/spec/changes?since={revision}` | | a fab's delta sync: the changes after `since`, and the released set if one was released |
//! | `POST /v1/spec/acks` | tool | `{fab, version}`: the fab runs that release |
//! | `GET /v1/spec/acks` | | every fab's last acknowledgement |

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

use super::auth::Role;
use super::error::ApiError;
use super::idempotency::{self, Failure, Key};
use super::write::{Write, WriteBody};
use super::{AppState, now};
use crate::domain::name::Name;
use crate::domain::spec::{
    Acknowledgement, Delta as Changes, Revision, SpecContent, SpecError, SpecRegistry, SpecSet,
    SpecState, SpecVersion,
};
use crate::domain::time::Timestamp;
use crate::store::SpecCommit;

/// The spec routes (state: [`AppState`]), each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(set))
        .routes(routes!(transition))
        .routes(routes!(changes))
        .routes(routes!(acknowledge, acks))
}

impl From<SpecError> for ApiError {
    fn from(e: SpecError) -> Self {
        let message = e.to_string();
        match e {
            SpecError::Unknown(_) => Self::not_found(message).field("version"),
            SpecError::InvalidContent { .. } => Self::unprocessable(message).field("content"),
            SpecError::SelfApproval { .. } => {
                Self::new(StatusCode::FORBIDDEN, message).field("Authorization")
            }
            _ => Self::new(StatusCode::CONFLICT, message).field("version"),
        }
    }
}

impl From<SpecError> for Failure {
    fn from(e: SpecError) -> Self {
        Self::Api(e.into())
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewSet {
    content: SpecContent,
}

impl WriteBody for NewSet {
    const ROLE: Role = Role::Engineer;
    const WHAT: &'static str = "creating a spec set";
}

/// What a change to a set answers.
#[derive(Debug, Serialize, ToSchema)]
struct SetChanged {
    version: SpecVersion,
    state: SpecState,
    revision: Revision,
}

/// Applies `change` to the stored registry and commits it with the reply `answer` builds.
async fn change_registry<T>(
    state: &AppState,
    write: &Key,
    status: StatusCode,
    change: impl Fn(&mut SpecRegistry, Name, Timestamp) -> Result<T, SpecError>,
    answer: impl Fn(&SpecRegistry, &T) -> Option<SetChanged>,
    ack: impl Fn(&T) -> Option<Acknowledgement>,
) -> Response {
    let (change, answer, ack) = (&change, &answer, &ack);
    let (response, _) = idempotency::run(state, write, move || async move {
        let at = now();
        let by = Name::parse("by", write.caller.principal.clone())?;
        let (mut registry, expected) = state.store.spec_registry().await?;
        let head = registry.changes_since(Revision(0)).head;
        let done = change(&mut registry, by, at)?;
        let added = registry.changes_since(head);
        let reply = match answer(&registry, &done) {
            Some(view) => write.reply(status, &view)?,
            None => write.reply(status, &serde_json::json!({ "revision": added.head }))?,
        };
        let ack = ack(&done);
        let commit = SpecCommit {
            registry: &registry,
            expected,
            changes: &added.changes,
            ack: ack.as_ref(),
            principal: &write.caller.principal,
            reply: Some(&reply),
        };
        state.store.commit_spec(&commit, at.as_millis()).await?;
        Ok((reply, ()))
    })
    .await;
    response
}

fn view(registry: &SpecRegistry, version: SpecVersion) -> Option<SetChanged> {
    registry.get(version).map(|set| SetChanged {
        version,
        state: set.state,
        revision: registry.changes_since(Revision(0)).head,
    })
}

#[utoipa::path(
    post,
    path = "/v1/spec/sets",
    tag = "spec",
    description = "Engineer: a draft spec set, validated whole; the next version",
    params(("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    request_body = NewSet,
    responses((status = 201, body = SetChanged), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn create(State(state): State<AppState>, write: Write<NewSet>) -> Response {
    let Write {
        key: write,
        body: request,
        ..
    } = write;
    let content = &request.content;
    change_registry(
        &state,
        &write,
        StatusCode::CREATED,
        |registry, by, at| registry.create_draft(content.clone(), by, at),
        |registry, version| view(registry, *version),
        |_| None,
    )
    .await
}

fn version(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(SpecVersion, String), ApiError> {
    let Path((version, action)) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let version = version.parse().map(SpecVersion).map_err(|_| {
        ApiError::unprocessable(format!(
            "version must be a positive integer, not {version:?}"
        ))
        .field("version")
    })?;
    Ok((version, action))
}

/// A set's approval, release or retirement: no body (whatever is sent is ignored).
#[derive(Debug, Deserialize, ToSchema)]
struct Transition;

impl WriteBody for Transition {
    const ROLE: Role = Role::Engineer;
    const WHAT: &'static str = "changing a spec set";

    fn from_body(_: &axum::http::HeaderMap, _: &axum::body::Bytes) -> Result<Self, ApiError> {
        Ok(Self)
    }
}

/// The path `/v1/spec/sets/{version}/{action}`: an unknown action is a 404.
#[derive(Debug)]
struct SetAction {
    version: SpecVersion,
    action: String,
}

impl FromRequestParts<AppState> for SetAction {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let path = Path::<(String, String)>::from_request_parts(parts, state).await;
        let (version, action) = version(path)?;
        if !matches!(action.as_str(), "approve" | "release" | "retire") {
            return Err(ApiError::not_found(
                "no such route: the actions are approve, release and retire",
            ));
        }
        Ok(Self { version, action })
    }
}

#[utoipa::path(
    post,
    path = "/v1/spec/sets/{version}/{action}",
    tag = "spec",
    description = "Engineer: approve (not the author), release (retiring the previous release) or retire a set (no body)",
    params(("version" = u32, Path), ("action" = String, Path, description = "approve, release or retire"), ("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    responses((status = 200, body = SetChanged), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn transition(
    State(state): State<AppState>,
    write: Write<Transition, SetAction>,
) -> Response {
    let Write {
        key: write,
        path: SetAction { version, action },
        ..
    } = write;
    let action = action.as_str();
    change_registry(
        &state,
        &write,
        StatusCode::OK,
        |registry, by, at| match action {
            "approve" => registry.approve(version, by, at),
            "release" => registry.release(version, by, at),
            _ => registry.retire(version, by, at),
        },
        |registry, ()| view(registry, version),
        |()| None,
    )
    .await
}

#[utoipa::path(
    get,
    path = "/v1/spec/sets/{version}",
    tag = "spec",
    description = "A spec set",
    params(("version" = u32, Path)),
    responses((status = 200, body = SpecSet), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
)]
async fn set(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(text) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (version, _) = version(Ok(Path((text, String::new()))))?;
    let (registry, _) = state
        .store
        .spec_registry()
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let set = registry.get(version).ok_or(SpecError::Unknown(version))?;
    Ok(Json(set).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Since {
    /// The last revision the fab saw (0: from scratch); at most 2^63 - 1.
    #[serde(default)]
    since: u64,
}

#[utoipa::path(
    get,
    path = "/v1/spec/changes",
    tag = "spec",
    description = "A fab's delta sync: the changes after since, and the released set if one was released",
    params(Since),
    responses((status = 200, body = Changes), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
)]
async fn changes(
    State(state): State<AppState>,
    query: Result<Query<Since>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(since) = query.map_err(|e| ApiError::bad_request(e.body_text()).field("since"))?;
    // Revisions are stored as signed 64-bit integers: a larger cursor was never handed out.
    if i64::try_from(since.since).is_err() {
        return Err(ApiError::bad_request(format!(
            "since must be a revision between 0 and {}, not {}",
            i64::MAX,
            since.since
        ))
        .field("since"));
    }
    let (registry, _) = state
        .store
        .spec_registry()
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    Ok(Json(registry.changes_since(Revision(since.since))).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Ack {
    fab: Name,
    version: SpecVersion,
}

impl WriteBody for Ack {
    const ROLE: Role = Role::Tool;
    const WHAT: &'static str = "acknowledging a spec release";
}

#[utoipa::path(
    post,
    path = "/v1/spec/acks",
    operation_id = "acknowledge_spec",
    tag = "spec",
    description = "Tool: the fab runs that release",
    params(("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    request_body = Ack,
    responses((status = 200, body = SetChanged), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn acknowledge(State(state): State<AppState>, write: Write<Ack>) -> Response {
    let Write {
        key: write,
        body: request,
        ..
    } = write;
    let request = &request;
    change_registry(
        &state,
        &write,
        StatusCode::OK,
        |registry, _by, at| {
            let ack = Acknowledgement {
                fab: request.fab.clone(),
                version: request.version,
                at,
            };
            registry.acknowledge(ack.clone())?;
            Ok(ack)
        },
        |registry, ack| view(registry, ack.version),
        |ack| Some(ack.clone()),
    )
    .await
}

#[utoipa::path(
    get,
    path = "/v1/spec/acks",
    tag = "spec",
    description = "Every fab's last acknowledgement",
    responses((status = 200, body = Vec<Acknowledgement>), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
)]
async fn acks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (registry, _) = state
        .store
        .spec_registry()
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let acks: Vec<&Acknowledgement> = registry.acknowledgements().collect();
    Ok(Json(acks).into_response())
}
