//! Where APC and FDC take their limits from.
//!
//! - **APC** (`checkSpec`): the sub-recipe limits of the thread's product and layer in the
//!   spec in force ([`SpecView`](crate::service::SpecView)); their version is the spec set's.
//!   Only where no spec is in force, or it has no limits for that product and layer, the limits
//!   of the controller configuration are used, with the configuration's version. Answers say
//!   which in `limits_from` (`"spec"` or `"config"`); run records carry the version in
//!   `spec_version`.
//! - **FDC**: the limits of the parameter in the spec in force; without them a batch is
//!   refused (409 naming `parameter`): FDC has no other source of limits.

use axum::http::StatusCode;
use serde::Serialize;

use super::AppState;
use super::error::ApiError;
use super::idempotency::Failure;
use crate::domain::apc::context::ThreadKey;
use crate::domain::apc::facade::SrLimits;
use crate::domain::fdc::limits::ParameterLimits;
use crate::domain::name::Name;
use crate::domain::spec::FabSpecs;
use crate::service::spec_sync::CurrentError;
use crate::store::StoredConfig;

/// Where a run's SR limits came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitsFrom {
    /// The released spec set in force (its version is the limits' version).
    Spec,
    /// The controller configuration (no spec in force covers the product and layer).
    Config,
}

async fn current(state: &AppState) -> Result<Option<std::sync::Arc<FabSpecs>>, Failure> {
    state
        .specs
        .current(&state.store)
        .await
        .map_err(|e| match e {
            CurrentError::Store(e) => Failure::Store(e),
            CurrentError::Invalid(e) => Failure::Api(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                e.to_string(),
            )),
        })
}

/// The SR limits of the thread `key`: the spec's, else the configuration's.
///
/// # Errors
/// The store failed; the configuration's limits are invalid.
pub async fn sr_limits(
    state: &AppState,
    key: &ThreadKey,
    config: &StoredConfig,
) -> Result<(SrLimits, LimitsFrom), Failure> {
    let specs = current(state).await?;
    if let Some(limits) = specs.and_then(|s| s.sr_limits(&key.product, &key.layer)) {
        return Ok((limits, LimitsFrom::Spec));
    }
    let limits = SrLimits::new(config.sr_min, config.sr_max, config.config.version().0)
        .map_err(ApiError::from)?;
    Ok((limits, LimitsFrom::Config))
}

/// The FDC limits of `parameter` in the spec in force, if it has them.
///
/// # Errors
/// The store failed.
pub async fn fdc_limits(
    state: &AppState,
    parameter: &Name,
) -> Result<Option<ParameterLimits>, Failure> {
    let specs = current(state).await?;
    Ok(specs.and_then(|s| s.fdc_limits(parameter).cloned()))
}
