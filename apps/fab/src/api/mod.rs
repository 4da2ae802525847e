//! The HTTP API (axum), one router per service, under `/v1`.
//!
//! - [`error`]: the one error shape `{ "error", "field" }`;
//! - [`body`]: JSON bodies read so that any bad input is a 4xx naming the field;
//! - [`auth`]: bearer tokens and roles;
//! - [`idempotency`]: a retried write gets the original response, stored with the effect;
//! - [`write`](mod@write): the extractor [`write::Write`] that runs the prologue of every write (auth,
//!   role, path, idempotency key, body) — start there to add a write route;
//! - [`apc`]: the APC service's routes;
//! - [`jobs`]: the tool job queues' routes (served with the APC);
//! - [`spec`]: the central spec service's routes;
//! - [`fdc`]: the FDC service's routes;
//! - [`limits`]: where APC and FDC take their limits from (the spec in force, else the
//!   controller configuration).
//! - [`openapi`]: the OpenAPI 3.1 document (`GET /openapi.json`), generated from the same route
//!   registrations as the router, so the two cannot drift.

pub mod apc;
pub mod auth;
pub mod body;
pub mod error;
pub mod fdc;
pub mod idempotency;
pub mod jobs;
pub mod limits;
pub mod openapi;
pub mod spec;
pub mod write;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::response::IntoResponse;

use crate::bus::Bus;
use crate::domain::time::Timestamp;
use crate::service::SpecView;
use crate::store::Store;
use auth::Tokens;
use error::ApiError;

/// What every handler shares: the store, the tokens, the bus.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The accepted tokens.
    pub tokens: Tokens,
    /// Where events go after their effect is committed.
    pub bus: Arc<dyn Bus>,
    /// The spec in force: APC's SR limits and FDC's limits.
    pub specs: SpecView,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

/// The wall clock as a domain timestamp (the domain never reads a clock itself).
#[must_use]
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_millis(ms)
}

/// Which services' routes a process serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Services {
    /// APC only (`fab apc`).
    Apc,
    /// The central specs only (`fab spec`).
    Spec,
    /// FDC only (`fab fdc`).
    Fdc,
    /// Everything (`fab all`).
    All,
}

/// The routes of `services`, each registered with its OpenAPI operation.
fn routes(services: Services) -> utoipa_axum::router::OpenApiRouter<AppState> {
    match services {
        Services::Apc => apc::routes().merge(jobs::routes()),
        Services::Spec => spec::routes(),
        Services::Fdc => fdc::routes(),
        Services::All => apc::routes()
            .merge(jobs::routes())
            .merge(spec::routes())
            .merge(fdc::routes()),
    }
}

/// The OpenAPI document of a process serving `services` (what it serves on `/openapi.json`).
#[must_use]
pub fn openapi_document(services: Services) -> utoipa::openapi::OpenApi {
    openapi::document(routes(services))
}

/// The public router of a process serving `services`, with `GET /openapi.json` describing
/// exactly those routes; unknown routes get the JSON 404.
pub fn router(state: AppState, services: Services) -> Router {
    let (router, _) = openapi::split(routes(services));
    router
        .fallback(|| async { ApiError::not_found("no such route").into_response() })
        .with_state(state)
}
