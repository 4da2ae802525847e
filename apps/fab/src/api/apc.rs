//! The APC service's routes under `/v1/apc`.
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /v1/apc/configs` | engineer | a new controller configuration version of a scope (stability checked) |
//! | `GET /v1/apc/configs/{product}/{technology}/{layer}` | open | the scope's latest configuration |
//! | `POST /v1/apc/subrecipe` | tool (recommend: engineer) | the SR of a run, logged before it is answered; a new thread may be seeded from a parent |
//! | `POST /v1/apc/subrecipe/preview` | any token | what `subrecipe` would answer, changing nothing |
//! | `POST /v1/apc/runs/{run}/applied` | tool | the SR the tool really applied |
//! | `POST /v1/apc/metrology` | tool | a measurement (idempotent by its id) |
//! | `POST /v1/apc/metrology/{measurement}/invalidate` | engineer | the thread replayed without it |
//! | `GET /v1/apc/threads/{fab}/{tool}/{product}/{technology}/{layer}/{reticle}` | open | a thread's state |
//! | `POST /v1/apc/threads/{…}/reset`, `/freeze`, `/unfreeze` | engineer | thread control |
//!
//! Every write is idempotent ([`super::idempotency`]) and commits its effect before answering;
//! its prologue (auth, role, path, key, body) is the [`Write`] extractor.

mod invalidate;
mod seed;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Caller, Role};
use super::error::ApiError;
use super::idempotency::{self, Failure, Key};
use super::limits::LimitsFrom;
use super::write::{Write, WriteBody};
use super::{AppState, now};
use crate::bus::FabEvent;
use crate::domain::apc::context::{Technology, ThreadKey};
use crate::domain::apc::controller::{
    ConfigVersion, ControllerConfig, ControllerParams, ControllerState,
};
use crate::domain::apc::facade::{Apc, SrLimits};
use crate::domain::apc::generator::{ModeRequest, SubRecipeRequest};
use crate::domain::apc::thread::{
    Disposition, Freeze, Measurement, PilotReason, RunRecord, StateVersion, Thread, ThreadEvent,
    Transition,
};
use crate::domain::name::Name;
use crate::domain::time::Timestamp;
use crate::store::{StoredConfig, ThreadCommit};

/// The APC routes (state: [`AppState`]), each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_config))
        .routes(routes!(latest_config))
        .routes(routes!(subrecipe))
        .routes(routes!(preview))
        .routes(routes!(applied))
        .routes(routes!(metrology))
        .routes(routes!(invalidate::invalidate))
        .routes(routes!(inspect))
        .routes(routes!(reset))
        .routes(routes!(freeze))
        .routes(routes!(unfreeze))
}

/// The scope a configuration applies to: every thread of a product, node and layer.
fn scope(product: &Name, technology: Technology, layer: &Name) -> String {
    format!("{product}/{technology}/{layer}")
}

fn thread_scope(key: &ThreadKey) -> String {
    scope(&key.product, key.technology, &key.layer)
}

fn technology(text: &str) -> Result<Technology, ApiError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
        ApiError::unprocessable(format!("technology must be N7, N5 or N3, not {text:?}"))
            .field("technology")
    })
}

fn path_error(e: &PathRejection) -> ApiError {
    ApiError::bad_request(e.body_text())
}

/// `POST /v1/apc/configs`: the body of a new configuration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewConfig {
    product: Name,
    technology: Technology,
    layer: Name,
    params: ControllerParams,
    sr_limits: Limits,
}

impl WriteBody for NewConfig {
    const ROLE: Role = Role::Engineer;
    const WHAT: &'static str = "creating a controller configuration";
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Limits {
    min: f64,
    max: f64,
}

#[derive(Debug, Serialize, ToSchema)]
struct ConfigView<'a> {
    scope: &'a str,
    version: ConfigVersion,
    config: &'a ControllerConfig,
    sr_limits: Limits,
}

#[utoipa::path(
    post,
    path = "/v1/apc/configs",
    tag = "apc",
    description = "Engineer: a new controller configuration version of a scope (stability checked)",
    params(("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    request_body = NewConfig,
    responses((status = 201, body = ConfigView<'static>), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn create_config(State(state): State<AppState>, write: Write<NewConfig>) -> Response {
    let Write {
        key: write,
        body: request,
        ..
    } = write;
    let scope = scope(&request.product, request.technology, &request.layer);
    let (state, write, request, scope) = (&state, &write, &request, &scope);
    let (response, _) = idempotency::run(state, write, move || async move {
        let latest = state.store.latest_config(scope).await?;
        let version = ConfigVersion(latest.map_or(1, |c| c.config.version().0.saturating_add(1)));
        let config = ControllerConfig::new(version, request.params.clone())?;
        SrLimits::new(request.sr_limits.min, request.sr_limits.max, version.0)
            .map_err(|e| ApiError::from(e).field("sr_limits"))?;
        let stored = StoredConfig {
            config,
            sr_min: request.sr_limits.min,
            sr_max: request.sr_limits.max,
        };
        let view = ConfigView {
            scope,
            version,
            config: &stored.config,
            sr_limits: request.sr_limits,
        };
        let reply = write.reply(StatusCode::CREATED, &view)?;
        state
            .store
            .insert_config(
                scope,
                &stored,
                &write.caller.principal,
                Some(&reply),
                now().as_millis(),
            )
            .await?;
        tracing::info!(
            scope,
            version = version.0,
            "controller configuration created"
        );
        Ok((reply, ()))
    })
    .await;
    response
}

#[utoipa::path(
    get,
    path = "/v1/apc/configs/{product}/{technology}/{layer}",
    tag = "apc",
    description = "The scope's latest configuration",
    params(("product" = Name, Path), ("technology" = Technology, Path), ("layer" = Name, Path)),
    responses((status = 200, body = ConfigView<'static>), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
)]
async fn latest_config(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path((product, tech, layer)) = path.map_err(|e| path_error(&e))?;
    let scope = scope(
        &Name::parse("product", product)?,
        technology(&tech)?,
        &Name::parse("layer", layer)?,
    );
    let stored = state
        .store
        .latest_config(&scope)
        .await
        .map_err(|e| ApiError::unavailable(&e))?
        .ok_or_else(|| ApiError::not_found(format!("no controller configuration for {scope}")))?;
    Ok(Json(ConfigView {
        scope: &scope,
        version: stored.config.version(),
        config: &stored.config,
        sr_limits: Limits {
            min: stored.sr_min,
            max: stored.sr_max,
        },
    })
    .into_response())
}

/// A thread read from the store, or created from its scope's latest configuration, brought
/// to that configuration, with the transitions doing so (to commit with the change).
struct Loaded {
    thread: Thread,
    expected: Option<u64>,
    transitions: Vec<Transition>,
    limits: SrLimits,
    limits_from: LimitsFrom,
}

async fn load_for_run(
    state: &AppState,
    key: &ThreadKey,
    seed_from: Option<&ThreadKey>,
    at: Timestamp,
) -> Result<Loaded, Failure> {
    // No lot is dispatched to a tool that FDC holds inhibited.
    let holding = state.store.inhibiting(&key.tool).await?;
    if !holding.is_empty() {
        let ids: Vec<String> = holding.iter().map(|id| id.0.to_string()).collect();
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "tool {} is inhibited by unacknowledged alarm(s) {}",
                key.tool,
                ids.join(", ")
            ),
        )
        .field("lot.thread.tool")
        .into());
    }
    let scope = thread_scope(key);
    let config = state.store.latest_config(&scope).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!("no controller configuration for {scope}: an engineer must create one"),
        )
        .field("lot.thread")
    })?;
    let (limits, limits_from) = super::limits::sr_limits(state, key, &config).await?;
    let (mut thread, expected, mut transitions) = match state.store.thread(key).await? {
        Some(thread) => {
            let version = thread.version().0;
            (thread, Some(version), Vec::new())
        }
        None => {
            let (mut thread, created) = Thread::create(key.clone(), config.config.clone(), at);
            let mut transitions = vec![created];
            if let Some(parent) = seed_from {
                transitions.push(seed::seed(state, &mut thread, parent, at).await?);
            }
            (thread, None, transitions)
        }
    };
    if config.config.version() > thread.config().version() {
        let event = ThreadEvent::Reconfigured {
            config: config.config,
            at,
        };
        transitions.extend(thread.apply(event)?);
    }
    Ok(Loaded {
        thread,
        expected,
        transitions,
        limits,
        limits_from,
    })
}

fn new_run_id() -> Result<Name, ApiError> {
    let n: u64 = rand::random();
    Name::parse("run", format!("R-{}-{n:016x}", now().as_millis())).map_err(ApiError::from)
}

/// The answer to a sub-recipe request.
#[derive(Debug, Serialize, ToSchema)]
struct SubRecipe<'a> {
    run: &'a Name,
    sr: f64,
    pilot: Option<PilotReason>,
    thread_version: StateVersion,
    record: &'a RunRecord,
    limits_from: LimitsFrom,
}

impl WriteBody for SubRecipeRequest {
    const ROLE: Role = Role::Tool;
    const WHAT: &'static str = "requesting a sub recipe";

    /// Recommend mode (an SR by hand) needs an engineer.
    fn check(&self, caller: &Caller) -> Result<(), ApiError> {
        match self.mode {
            ModeRequest::Recommend { .. } => caller.require(Role::Engineer, "this mode"),
            _ => Ok(()),
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/apc/subrecipe",
    tag = "apc",
    description = "Tool (recommend mode: engineer): the SR of a run, logged before it is answered",
    params(("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    request_body = SubRecipeRequest,
    responses((status = 200, body = SubRecipe<'static>), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn subrecipe(State(state): State<AppState>, write: Write<SubRecipeRequest>) -> Response {
    let Write {
        key: write,
        body: request,
        ..
    } = write;
    let (state, write, request) = (&state, &write, &request);
    let (response, published) = idempotency::run(state, write, move || async move {
        let at = now();
        let mut loaded =
            load_for_run(state, &request.lot.thread, request.seed_from.as_ref(), at).await?;
        let run = new_run_id()?;
        let (record, transition) =
            Apc.dispatch(&mut loaded.thread, request, &loaded.limits, run, at)?;
        loaded.transitions.push(transition);
        let reply = write.reply(
            StatusCode::OK,
            &SubRecipe {
                run: &record.run,
                sr: record.applied_sr,
                pilot: record.pilot,
                thread_version: loaded.thread.version(),
                record: &record,
                limits_from: loaded.limits_from,
            },
        )?;
        let commit = ThreadCommit {
            thread: &loaded.thread,
            expected: loaded.expected,
            transitions: &loaded.transitions,
            run: Some(&record),
            measurement: None,
            reply: Some(&reply),
        };
        state.store.commit_thread(&commit, at.as_millis()).await?;
        Ok((reply, record))
    })
    .await;
    if let Some(record) = published {
        state.bus.publish(FabEvent::RunLogged {
            record: Box::new(record),
        });
    }
    response
}

/// The answer to a preview.
#[derive(Debug, Serialize, ToSchema)]
struct Preview {
    sr: f64,
    computed_sr: f64,
    pilot: Option<PilotReason>,
    thread_version: StateVersion,
    spec_version: u32,
    limits_from: LimitsFrom,
}

#[utoipa::path(
    post,
    path = "/v1/apc/subrecipe/preview",
    tag = "apc",
    description = "Any token: what subrecipe would answer, changing nothing (not idempotent-keyed: it writes nothing)",
    request_body = SubRecipeRequest,
    responses((status = 200, body = Preview), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: SubRecipeRequest = super::body::parse(&headers, &body)?;
    if matches!(request.mode, ModeRequest::Recommend { .. }) {
        caller.require(Role::Engineer, "recommend mode")?;
    }
    let at = now();
    let seed_from = request.seed_from.as_ref();
    let loaded = match load_for_run(&state, &request.lot.thread, seed_from, at).await {
        Ok(loaded) => loaded,
        Err(Failure::Api(e)) => return Err(e),
        Err(Failure::Store(e)) => return Err(ApiError::unavailable(&e)),
    };
    let checked = Apc.preview(&loaded.thread, &request, &loaded.limits, at)?;
    Ok(Json(Preview {
        sr: checked.applied_sr(),
        computed_sr: checked.proposal().sr,
        pilot: checked.proposal().pilot,
        thread_version: checked.state_version(),
        spec_version: checked.limits().spec_version(),
        limits_from: loaded.limits_from,
    })
    .into_response())
}

/// A thread change made by `event` on the thread of `key`, answered by `view`.
async fn change_thread(
    state: &AppState,
    write: &Key,
    key: Option<&ThreadKey>,
    run: Option<&Name>,
    event: impl Fn(Timestamp) -> ThreadEvent,
    measurement: Option<&Measurement>,
) -> Response {
    let event = &event;
    let (response, published) = idempotency::run(state, write, move || async move {
        let at = now();
        let key = match (key, run) {
            (Some(key), _) => key.clone(),
            (None, Some(run)) => {
                let record = state.store.run(run).await?.ok_or_else(|| {
                    ApiError::unprocessable(format!("unknown run {run}")).field("run")
                })?;
                record.lot.thread
            }
            (None, None) => return Err(ApiError::bad_request("no thread named").into()),
        };
        let mut thread = state
            .store
            .thread(&key)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no thread {key}")))?;
        let expected = thread.version().0;
        let transition = thread.apply(event(at))?;
        let disposition = transition.as_ref().and_then(|t| t.disposition);
        let view = ThreadChanged {
            thread: key.to_string(),
            thread_version: thread.version(),
            changed: transition.is_some(),
            disposition,
        };
        let reply = write.reply(StatusCode::OK, &view)?;
        match &transition {
            Some(transition) => {
                let commit = ThreadCommit {
                    thread: &thread,
                    expected: Some(expected),
                    transitions: std::slice::from_ref(transition),
                    run: None,
                    measurement: measurement.map(|m| (m, disposition)),
                    reply: Some(&reply),
                };
                state.store.commit_thread(&commit, at.as_millis()).await?;
            }
            // A repeat (same measurement id, same report): nothing to change, the answer is kept.
            None => state.store.put_reply(&reply, at.as_millis()).await?,
        }
        let published = measurement.map(|m| FabEvent::Measured {
            measurement: m.id.clone(),
            run: m.run.clone(),
            disposition,
        });
        Ok((reply, published))
    })
    .await;
    if let Some(event) = published.flatten() {
        state.bus.publish(event);
    }
    response
}

/// The answer to a thread change.
#[derive(Debug, Serialize, ToSchema)]
struct ThreadChanged {
    thread: String,
    thread_version: StateVersion,
    /// False for a repeat that changed nothing (a measurement id seen before).
    changed: bool,
    disposition: Option<Disposition>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Applied {
    sr: f64,
    #[serde(default)]
    at: Option<Timestamp>,
}

impl WriteBody for Applied {
    const ROLE: Role = Role::Tool;
    const WHAT: &'static str = "reporting the applied SR";

    fn check(&self, _caller: &Caller) -> Result<(), ApiError> {
        if self.sr.is_finite() {
            Ok(())
        } else {
            Err(ApiError::unprocessable("sr must be a finite number").field("sr"))
        }
    }
}

/// The run named by the path `/v1/apc/runs/{run}/…`.
#[derive(Debug)]
struct RunAt(Name);

impl FromRequestParts<AppState> for RunAt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(run) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| path_error(&e))?;
        Ok(Self(Name::parse("run", run)?))
    }
}

#[utoipa::path(
    post,
    path = "/v1/apc/runs/{run}/applied",
    tag = "apc",
    description = "Tool: the SR the tool really applied",
    params(("run" = Name, Path), ("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    request_body = Applied,
    responses((status = 200, body = ThreadChanged), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn applied(State(state): State<AppState>, write: Write<Applied, RunAt>) -> Response {
    let Write {
        key: write,
        path: RunAt(run),
        body: request,
    } = write;
    let event = |at: Timestamp| ThreadEvent::SrReported {
        run: run.clone(),
        sr: request.sr,
        at: request.at.unwrap_or(at),
    };
    change_thread(&state, &write, None, Some(&run), event, None).await
}

impl WriteBody for Measurement {
    const ROLE: Role = Role::Tool;
    const WHAT: &'static str = "reporting a measurement";

    fn check(&self, _caller: &Caller) -> Result<(), ApiError> {
        if self.value.is_finite() {
            Ok(())
        } else {
            Err(ApiError::unprocessable("value must be a finite number").field("value"))
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/apc/metrology",
    tag = "apc",
    description = "Tool: a measurement (idempotent by its id too)",
    params(("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    request_body = Measurement,
    responses((status = 200, body = ThreadChanged), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn metrology(State(state): State<AppState>, write: Write<Measurement>) -> Response {
    let Write {
        key: write,
        body: measurement,
        ..
    } = write;
    let event = |_| ThreadEvent::Measured(measurement.clone());
    change_thread(
        &state,
        &write,
        None,
        Some(&measurement.run),
        event,
        Some(&measurement),
    )
    .await
}

type ThreadPath = Path<(String, String, String, String, String, String)>;

/// The thread named by the path `/v1/apc/threads/{fab}/{tool}/{product}/{technology}/{layer}/{reticle}`.
#[derive(Debug)]
struct ThreadAt(ThreadKey);

impl FromRequestParts<AppState> for ThreadAt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path((fab, tool, product, tech, layer, reticle)) =
            ThreadPath::from_request_parts(parts, state)
                .await
                .map_err(|e| path_error(&e))?;
        Ok(Self(ThreadKey {
            fab: Name::parse("fab", fab)?,
            tool: Name::parse("tool", tool)?,
            product: Name::parse("product", product)?,
            technology: technology(&tech)?,
            layer: Name::parse("layer", layer)?,
            reticle: Name::parse("reticle", reticle)?,
        }))
    }
}

/// A thread as inspected.
#[derive(Debug, Serialize, ToSchema)]
struct ThreadView<'a> {
    thread: String,
    version: StateVersion,
    config_version: ConfigVersion,
    epoch: u32,
    controller: &'a ControllerState,
    frozen: Option<&'a Freeze>,
    pilot_required: Option<PilotReason>,
    last_run: Option<&'a RunRecord>,
    measurements: usize,
}

#[utoipa::path(
    get,
    path = "/v1/apc/threads/{fab}/{tool}/{product}/{technology}/{layer}/{reticle}",
    tag = "apc",
    description = "A thread's state",
    params(("fab" = Name, Path), ("tool" = Name, Path), ("product" = Name, Path), ("technology" = Technology, Path), ("layer" = Name, Path), ("reticle" = Name, Path)),
    responses((status = 200, body = ThreadView<'static>), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
)]
async fn inspect(
    State(state): State<AppState>,
    ThreadAt(key): ThreadAt,
) -> Result<Response, ApiError> {
    let thread = state
        .store
        .thread(&key)
        .await
        .map_err(|e| ApiError::unavailable(&e))?
        .ok_or_else(|| ApiError::not_found(format!("no thread {key}")))?;
    Ok(Json(ThreadView {
        thread: key.to_string(),
        version: thread.version(),
        config_version: thread.config().version(),
        epoch: thread.epoch(),
        controller: thread.controller(),
        frozen: thread.frozen(),
        pilot_required: thread.pilot_requirement(now()),
        last_run: thread.last_run(),
        measurements: thread.measurements().len(),
    })
    .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Because {
    /// Why: 1 to 500 characters, not only spaces, no control characters.
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

/// Reset and freeze: the reason is 1–500 characters, no control characters.
impl WriteBody for Because {
    const ROLE: Role = Role::Engineer;
    const WHAT: &'static str = "thread control";

    fn check(&self, _caller: &Caller) -> Result<(), ApiError> {
        check_reason(&self.reason)
    }
}

/// An engineer's reason (reset, freeze, invalidation): 1–500 characters, not only spaces, no
/// control characters; else 422 naming `reason`.
pub(super) fn check_reason(reason: &str) -> Result<(), ApiError> {
    let ok = !reason.trim().is_empty()
        && reason.chars().count() <= 500
        && !reason.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "reason must be 1 to 500 characters without control characters",
        )
        .field("reason"))
    }
}

/// Unfreeze: no body (whatever is sent is ignored).
#[derive(Debug, Deserialize, ToSchema)]
struct Unfreeze;

impl WriteBody for Unfreeze {
    const ROLE: Role = Role::Engineer;
    const WHAT: &'static str = "thread control";

    fn from_body(_: &axum::http::HeaderMap, _: &axum::body::Bytes) -> Result<Self, ApiError> {
        Ok(Self)
    }
}

/// The thread-control requests: reset, freeze, unfreeze.
#[derive(Clone, Copy, Debug)]
enum Control {
    Reset,
    Freeze,
    Unfreeze,
}

async fn control(
    state: AppState,
    control: Control,
    write: Key,
    key: ThreadKey,
    why: String,
) -> Response {
    let by = match Name::parse("by", write.caller.principal.clone()) {
        Ok(by) => by,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let event = |at| match control {
        Control::Reset => ThreadEvent::Reset {
            by: by.clone(),
            reason: why.clone(),
            at,
        },
        Control::Freeze => ThreadEvent::Frozen(Freeze {
            by: by.clone(),
            reason: why.clone(),
            at,
        }),
        Control::Unfreeze => ThreadEvent::Unfrozen { by: by.clone(), at },
    };
    change_thread(&state, &write, Some(&key), None, event, None).await
}

#[utoipa::path(
    post,
    path = "/v1/apc/threads/{fab}/{tool}/{product}/{technology}/{layer}/{reticle}/reset",
    tag = "apc",
    description = "Engineer: reset the thread (its next run is a pilot)",
    params(("fab" = Name, Path), ("tool" = Name, Path), ("product" = Name, Path), ("technology" = Technology, Path), ("layer" = Name, Path), ("reticle" = Name, Path), ("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    request_body = Because,
    responses((status = 200, body = ThreadChanged), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn reset(State(state): State<AppState>, write: Write<Because, ThreadAt>) -> Response {
    let Write {
        key,
        path: ThreadAt(thread),
        body,
    } = write;
    control(state, Control::Reset, key, thread, body.reason).await
}

#[utoipa::path(
    post,
    path = "/v1/apc/threads/{fab}/{tool}/{product}/{technology}/{layer}/{reticle}/freeze",
    tag = "apc",
    description = "Engineer: freeze the thread at its current SR",
    params(("fab" = Name, Path), ("tool" = Name, Path), ("product" = Name, Path), ("technology" = Technology, Path), ("layer" = Name, Path), ("reticle" = Name, Path), ("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    request_body = Because,
    responses((status = 200, body = ThreadChanged), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn freeze(State(state): State<AppState>, write: Write<Because, ThreadAt>) -> Response {
    let Write {
        key,
        path: ThreadAt(thread),
        body,
    } = write;
    control(state, Control::Freeze, key, thread, body.reason).await
}

#[utoipa::path(
    post,
    path = "/v1/apc/threads/{fab}/{tool}/{product}/{technology}/{layer}/{reticle}/unfreeze",
    tag = "apc",
    description = "Engineer: unfreeze the thread (no body)",
    params(("fab" = Name, Path), ("tool" = Name, Path), ("product" = Name, Path), ("technology" = Technology, Path), ("layer" = Name, Path), ("reticle" = Name, Path), ("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "The request id: a retry with the same key gets the original answer")),
    responses((status = 200, body = ThreadChanged), (status = "4XX", description = "Refused: the message names the field at fault", body = ApiError), (status = 503, description = "The database is unavailable: retry with the same key", body = ApiError)),
    security(("bearer" = [])),
)]
async fn unfreeze(State(state): State<AppState>, write: Write<Unfreeze, ThreadAt>) -> Response {
    let Write {
        key,
        path: ThreadAt(thread),
        ..
    } = write;
    control(state, Control::Unfreeze, key, thread, String::new()).await
}
