//! The run-to-run controller: EWMA and double EWMA, the outlier gate, the stability check and the
//! immutable, versioned configuration.
//!
//! # The math
//! Process model (per thread): `y = α + β·u + noise`, where `u` is the recipe input (the exposure
//! dose, mJ/cm²) and `y` the measured output (the CD, nm). The controller assumes gain `b`
//! (nm per mJ/cm²; the true `β` is unknown) and estimates the offset:
//!
//! - EWMA: `a_n = λ·(y_n − b·u_n) + (1 − λ)·a_(n−1)`;
//! - double EWMA adds a drift term with a slower weight λ2:
//!   `d_n = λ2·(y_n − b·u_n − a_(n−1)) + (1 − λ2)·d_(n−1)` (for EWMA `d ≡ 0`);
//! - forecast of the next output for input `u`: `ŷ = a + d + b·u`;
//! - input that puts the forecast on target `T`: `u* = (T − a − d)/b`.
//!
//! The measurement's `u_n` is always the sub recipe *applied* to that run.
//!
//! **Outlier gate.** The forecast error `e = y − ŷ` is compared with `K·σ`, where σ is a running
//! estimate `σ² ← λσ·e² + (1 − λσ)·σ²` over accepted errors, floored at a tenth of the configured
//! initial σ so a noiseless stretch cannot close the gate (and capped at 1000 times it, so no
//! input sequence can make it overflow). An outlier is recorded and does not
//! change `a`, `d` or `σ`.
//!
//! **Stability.** Feeding `u = nominal + w·(u* − nominal)` back (w = the formula's feedback
//! weight) gives a loop whose effective gain ratio is `η = 1 + (β/b − 1)·w` (η = β/b for w = 1).
//! EWMA is stable iff `0 < λ·η < 2`. Double EWMA's closed loop on `(a, d)` has the matrix
//! `[[1 − λη, −λ(η−1)], [−λ2·η, 1 − λ2·η]]`, characteristic polynomial `z² − tr·z + det` with
//! `tr = 2 − η(λ + λ2)` and `det = 1 − η(λ + λ2) + λ·λ2·η`; by Jury's test it is stable iff
//! `|det| < 1`, `λ·λ2·η > 0` and `4 − 2η(λ + λ2) + λ·λ2·η > 0`. Configs are checked when created
//! against the engineer's estimate of β, so an unstable one never exists.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::time::millis;

/// The version of a controller configuration; configurations are never edited in place, a
/// change is a new version.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct ConfigVersion(pub u32);

impl fmt::Display for ConfigVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// The controller algorithm and its weights.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControllerKind {
    /// Single EWMA on the offset; λ typically 0.1–0.4 (0.3 by default).
    Ewma {
        /// Offset weight λ, in (0, 1].
        lambda: f64,
    },
    /// Double EWMA: offset and drift (tool wear); λ2 typically 0.05–0.2.
    DoubleEwma {
        /// Offset weight λ, in (0, 1].
        lambda: f64,
        /// Drift weight λ2, in (0, 1].
        lambda2: f64,
    },
}

impl ControllerKind {
    /// The offset weight λ.
    #[must_use]
    pub fn lambda(&self) -> f64 {
        match *self {
            Self::Ewma { lambda } | Self::DoubleEwma { lambda, .. } => lambda,
        }
    }

    /// The drift weight λ2, for double EWMA.
    #[must_use]
    pub fn lambda2(&self) -> Option<f64> {
        match *self {
            Self::Ewma { .. } => None,
            Self::DoubleEwma { lambda2, .. } => Some(lambda2),
        }
    }
}

/// What an engineer sets for a thread's controller; [`ControllerConfig::new`] validates it.
///
/// Units follow lithography: the input (and the sub recipe) is a dose in mJ/cm², the output a CD
/// in nm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ControllerParams {
    /// The algorithm and its weights.
    pub kind: ControllerKind,
    /// Target output `T` (nm).
    pub target: f64,
    /// The model gain `b` the controller assumes (nm per mJ/cm²; nonzero, may be negative).
    pub model_gain: f64,
    /// The engineer's estimate of the true process gain β, used only for the stability check.
    pub process_gain: f64,
    /// Nominal recipe `a` of the formula `SR = a + b·F(n) + c·F2(n)` (mJ/cm²).
    pub nominal: f64,
    /// Weight `b` of the feedback term F(n) in the formula (0 < b ≤ 2).
    pub feedback_weight: f64,
    /// Weight `c` of the technology offset F2(n) in the formula (finite).
    pub technology_weight: f64,
    /// Outlier gate `K`: errors beyond `K·σ` are outliers (3–4 in practice; accepted 1–10).
    pub outlier_k: f64,
    /// Initial σ of the forecast error (nm, > 0); also sets the σ floor (a tenth of it).
    pub initial_sigma: f64,
    /// Weight of the running σ estimate, in (0, 1].
    pub sigma_lambda: f64,
    /// Largest change of the sub recipe from one run to the next, as a fraction of the previous
    /// one (0.01–0.02 in practice; accepted (0, 0.2]).
    pub max_step: f64,
    /// Deadband of the PC strategy: feedback changes smaller than this (mJ/cm²) are held (≥ 0).
    pub deadband: f64,
    /// After this many outliers in a row the thread needs a pilot run (≥ 1).
    pub max_consecutive_outliers: u32,
    /// A thread without runs for this long needs a pilot run (> 0).
    #[serde(with = "millis")]
    #[schema(value_type = u64)]
    pub idle_limit: Duration,
    /// Feedforward reuses the previous run's SR only if it is at most this old (> 0).
    #[serde(with = "millis")]
    #[schema(value_type = u64)]
    pub feedforward_window: Duration,
}

impl ControllerParams {
    /// Typical lithography defaults around a nominal dose and a CD target, with single EWMA
    /// λ = 0.3 (the caller still validates through [`ControllerConfig::new`]).
    #[must_use]
    pub fn typical(target: f64, model_gain: f64, nominal: f64) -> Self {
        Self {
            kind: ControllerKind::Ewma { lambda: 0.3 },
            target,
            model_gain,
            process_gain: model_gain,
            nominal,
            feedback_weight: 1.0,
            technology_weight: 0.0,
            outlier_k: 3.5,
            initial_sigma: 1.0,
            sigma_lambda: 0.05,
            max_step: 0.02,
            deadband: 0.05,
            max_consecutive_outliers: 3,
            idle_limit: Duration::from_secs(7 * 24 * 3600),
            feedforward_window: Duration::from_secs(8 * 3600),
        }
    }

    /// The effective loop gain ratio `η = 1 + (β/b − 1)·w` (see the module docs).
    #[must_use]
    pub fn loop_gain_ratio(&self) -> f64 {
        1.0 + (self.process_gain / self.model_gain - 1.0) * self.feedback_weight
    }
}

/// A validated, immutable controller configuration with its version.
///
/// It can only be built by [`ControllerConfig::new`] (deserialising validates too), so an unstable
/// or nonsensical configuration never exists. A change is a new version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "ConfigRecord", into = "ConfigRecord")]
pub struct ControllerConfig {
    version: ConfigVersion,
    params: ControllerParams,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
struct ConfigRecord {
    version: ConfigVersion,
    params: ControllerParams,
}

impl TryFrom<ConfigRecord> for ControllerConfig {
    type Error = ConfigError;

    fn try_from(r: ConfigRecord) -> Result<Self, Self::Error> {
        Self::new(r.version, r.params)
    }
}

impl From<ControllerConfig> for ConfigRecord {
    fn from(c: ControllerConfig) -> Self {
        Self {
            version: c.version,
            params: c.params,
        }
    }
}

impl ControllerConfig {
    /// Validates `params` as configuration `version`, reporting every problem at once.
    ///
    /// # Errors
    /// [`ConfigError`] listing each field at fault: non-finite numbers, weights out of range,
    /// a zero model gain, and an unstable loop (`λ·β/b` outside (0, 2), or the double-EWMA
    /// conditions in the module docs).
    pub fn new(version: ConfigVersion, params: ControllerParams) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut bad = |field: &'static str, reason: String| {
            problems.push(ConfigProblem { field, reason });
        };
        let p = &params;
        for (field, v) in [
            ("target", p.target),
            ("model_gain", p.model_gain),
            ("process_gain", p.process_gain),
            ("nominal", p.nominal),
            ("feedback_weight", p.feedback_weight),
            ("technology_weight", p.technology_weight),
            ("outlier_k", p.outlier_k),
            ("initial_sigma", p.initial_sigma),
            ("sigma_lambda", p.sigma_lambda),
            ("max_step", p.max_step),
            ("deadband", p.deadband),
        ] {
            if !v.is_finite() {
                bad(field, format!("must be a finite number, got {v}"));
            }
        }
        let unit = |v: f64| v > 0.0 && v <= 1.0;
        if !unit(p.kind.lambda()) {
            bad(
                "kind.lambda",
                format!("must be in (0, 1], got {}", p.kind.lambda()),
            );
        }
        if let Some(l2) = p.kind.lambda2()
            && !unit(l2)
        {
            bad("kind.lambda2", format!("must be in (0, 1], got {l2}"));
        }
        if p.model_gain == 0.0 {
            bad("model_gain", "must not be zero".to_owned());
        }
        if p.process_gain == 0.0 {
            bad("process_gain", "must not be zero".to_owned());
        }
        if p.model_gain.is_finite()
            && p.process_gain.is_finite()
            && p.model_gain * p.process_gain < 0.0
        {
            bad(
                "process_gain",
                format!(
                    "has the opposite sign of model_gain ({} vs {}): the loop would diverge",
                    p.process_gain, p.model_gain
                ),
            );
        }
        if p.nominal.is_finite() && p.nominal <= 0.0 {
            bad("nominal", format!("must be positive, got {}", p.nominal));
        }
        if !(p.feedback_weight > 0.0 && p.feedback_weight <= 2.0) {
            bad(
                "feedback_weight",
                format!("must be in (0, 2], got {}", p.feedback_weight),
            );
        }
        if !(1.0..=10.0).contains(&p.outlier_k) {
            bad(
                "outlier_k",
                format!("must be in [1, 10], got {}", p.outlier_k),
            );
        }
        if p.initial_sigma.is_nan() || p.initial_sigma <= 0.0 {
            bad(
                "initial_sigma",
                format!("must be positive, got {}", p.initial_sigma),
            );
        }
        if !unit(p.sigma_lambda) {
            bad(
                "sigma_lambda",
                format!("must be in (0, 1], got {}", p.sigma_lambda),
            );
        }
        if !(p.max_step > 0.0 && p.max_step <= 0.2) {
            bad(
                "max_step",
                format!("must be in (0, 0.2], got {}", p.max_step),
            );
        }
        if p.deadband.is_nan() || p.deadband < 0.0 {
            bad(
                "deadband",
                format!("must not be negative, got {}", p.deadband),
            );
        }
        if p.max_consecutive_outliers == 0 {
            bad("max_consecutive_outliers", "must be at least 1".to_owned());
        }
        if p.idle_limit.is_zero() {
            bad("idle_limit", "must be positive".to_owned());
        }
        if p.feedforward_window.is_zero() {
            bad("feedforward_window", "must be positive".to_owned());
        }
        if problems.is_empty()
            && let Err(reason) = stability(p.kind, p.loop_gain_ratio())
        {
            problems.push(ConfigProblem {
                field: "kind.lambda",
                reason,
            });
        }
        if problems.is_empty() {
            Ok(Self { version, params })
        } else {
            Err(ConfigError { version, problems })
        }
    }

    /// The version.
    #[must_use]
    pub fn version(&self) -> ConfigVersion {
        self.version
    }

    /// The validated parameters (read-only: a change is a new version).
    #[must_use]
    pub fn params(&self) -> &ControllerParams {
        &self.params
    }

    /// A new configuration `version` built from this one's parameters changed by `edit`; this
    /// one is left as it is.
    ///
    /// # Errors
    /// As [`ControllerConfig::new`]; also when `version` is not above this one's.
    pub fn revise(
        &self,
        version: ConfigVersion,
        edit: impl FnOnce(&mut ControllerParams),
    ) -> Result<Self, ConfigError> {
        if version <= self.version {
            return Err(ConfigError {
                version,
                problems: vec![ConfigProblem {
                    field: "version",
                    reason: format!("must be above {}", self.version),
                }],
            });
        }
        let mut params = self.params.clone();
        edit(&mut params);
        Self::new(version, params)
    }
}

/// Checks the closed loop of `kind` with effective gain ratio `eta` (see the module docs).
fn stability(kind: ControllerKind, eta: f64) -> Result<(), String> {
    let l1 = kind.lambda();
    let single = l1 * eta;
    if !(single > 0.0 && single < 2.0) {
        return Err(format!(
            "the loop is unstable: λ·β/b = {single:.3} must be in (0, 2)"
        ));
    }
    if let Some(l2) = kind.lambda2() {
        let det = 1.0 - eta * (l1 + l2) + l1 * l2 * eta;
        let at_minus_one = 4.0 - 2.0 * eta * (l1 + l2) + l1 * l2 * eta;
        if !(det.abs() < 1.0 && l1 * l2 * eta > 0.0 && at_minus_one > 0.0) {
            return Err(format!(
                "the double-EWMA loop is unstable for λ = {l1}, λ2 = {l2}, β/b = {eta:.3} \
                 (det = {det:.3}, P(-1) = {at_minus_one:.3})"
            ));
        }
    }
    Ok(())
}

/// One field of a [`ControllerParams`] at fault, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The field (`kind.lambda`, `model_gain`…).
    pub field: &'static str,
    /// Why it was rejected.
    pub reason: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.reason)
    }
}

/// A controller configuration was rejected: every field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    version: ConfigVersion,
    problems: Vec<ConfigProblem>,
}

impl ConfigError {
    /// Every problem found, in field order.
    #[must_use]
    pub fn problems(&self) -> &[ConfigProblem] {
        &self.problems
    }

    /// Whether `field` is among the fields at fault.
    #[must_use]
    pub fn names(&self, field: &str) -> bool {
        self.problems.iter().any(|p| p.field == field)
    }

    /// Whether the configuration was rejected because its loop would be unstable.
    #[must_use]
    pub fn is_unstable(&self) -> bool {
        self.problems.iter().any(|p| p.reason.contains("unstable"))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "controller config {} rejected:", self.version)?;
        for p in &self.problems {
            write!(f, " {p};")?;
        }
        Ok(())
    }
}

/// The controller's estimate for one thread.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ControllerState {
    /// Offset estimate `a_n` (nm).
    pub offset: f64,
    /// Drift estimate `d_n` (nm) per *update*: per run with full metrology, per measurement
    /// interval when metrology samples one lot in N; zero for single EWMA.
    pub drift: f64,
    /// Running σ of the forecast error (nm).
    pub sigma: f64,
    /// Accepted measurements folded in since the state was (re)initialised.
    pub updates: u64,
    /// Outliers in a row (reset by an accepted measurement).
    pub consecutive_outliers: u32,
}

/// What the outlier gate decided about a measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Inside `K·σ`: folded into the state.
    Accepted,
    /// Beyond `K·σ`: recorded, state unchanged.
    Outlier,
}

/// The result of [`ControllerState::update`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Update {
    /// The gate's decision.
    pub gate: Gate,
    /// Forecast error `y − ŷ` (nm).
    pub forecast_error: f64,
    /// The state after the measurement.
    pub state: ControllerState,
}

/// A measurement or an input the controller cannot use.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError {
    /// The measured value is NaN or infinite.
    #[error("measurement value must be a finite number, got {0}")]
    NonFiniteMeasurement(f64),
    /// The applied input is NaN or infinite.
    #[error("applied sub recipe must be a finite number, got {0}")]
    NonFiniteInput(f64),
}

impl ControllerState {
    /// The state of a fresh thread: the offset that puts the nominal recipe on target
    /// (`a = T − b·nominal`), no drift, σ at its initial value.
    #[must_use]
    pub fn initial(cfg: &ControllerConfig) -> Self {
        let p = cfg.params();
        Self {
            offset: p.target - p.model_gain * p.nominal,
            drift: 0.0,
            sigma: p.initial_sigma,
            updates: 0,
            consecutive_outliers: 0,
        }
    }

    /// Forecast output for input `u`: `ŷ = a + d + b·u`.
    #[must_use]
    pub fn forecast(&self, cfg: &ControllerConfig, u: f64) -> f64 {
        self.offset + self.drift + cfg.params().model_gain * u
    }

    /// The input that puts the forecast on target: `u* = (T − a − d)/b`, or `(T − a)/b` when
    /// `with_drift` is [`DriftTerm::Ignore`].
    #[must_use]
    pub fn recommended_input(&self, cfg: &ControllerConfig, with_drift: DriftTerm) -> f64 {
        let p = cfg.params();
        let drift = match with_drift {
            DriftTerm::Include => self.drift,
            DriftTerm::Ignore => 0.0,
        };
        (p.target - self.offset - drift) / p.model_gain
    }

    /// Folds measurement `y` of a run that applied input `u` into the state, through the
    /// outlier gate.
    ///
    /// # Errors
    /// [`ControllerError`] when `y` or `u` is not finite; the state is unchanged.
    pub fn update(
        &self,
        cfg: &ControllerConfig,
        u: f64,
        y: f64,
    ) -> Result<Update, ControllerError> {
        check_finite(u, y)?;
        let p = cfg.params();
        let forecast_error = y - self.forecast(cfg, u);
        if forecast_error.abs() > p.outlier_k * self.sigma {
            let mut state = *self;
            state.consecutive_outliers = state.consecutive_outliers.saturating_add(1);
            return Ok(Update {
                gate: Gate::Outlier,
                forecast_error,
                state,
            });
        }
        let e = y - p.model_gain * u;
        let lambda = p.kind.lambda();
        let offset = lambda * e + (1.0 - lambda) * self.offset;
        let drift = match p.kind.lambda2() {
            Some(l2) => l2 * (e - self.offset) + (1.0 - l2) * self.drift,
            None => 0.0,
        };
        let var = p.sigma_lambda * forecast_error * forecast_error
            + (1.0 - p.sigma_lambda) * self.sigma * self.sigma;
        let sigma = var
            .sqrt()
            .clamp(p.initial_sigma / 10.0, p.initial_sigma * 1000.0);
        Ok(Update {
            gate: Gate::Accepted,
            forecast_error,
            state: Self {
                offset,
                drift,
                sigma,
                updates: self.updates.saturating_add(1),
                consecutive_outliers: 0,
            },
        })
    }

    /// Re-initialises the state from a pilot run (no gate): `a = y − b·u`, no drift, σ kept.
    ///
    /// # Errors
    /// [`ControllerError`] when `y` or `u` is not finite; the state is unchanged.
    pub fn from_pilot(
        &self,
        cfg: &ControllerConfig,
        u: f64,
        y: f64,
    ) -> Result<Self, ControllerError> {
        check_finite(u, y)?;
        Ok(Self {
            offset: y - cfg.params().model_gain * u,
            drift: 0.0,
            sigma: self.sigma,
            updates: 1,
            consecutive_outliers: 0,
        })
    }
}

fn check_finite(u: f64, y: f64) -> Result<(), ControllerError> {
    if !y.is_finite() {
        return Err(ControllerError::NonFiniteMeasurement(y));
    }
    if !u.is_finite() {
        return Err(ControllerError::NonFiniteInput(u));
    }
    Ok(())
}

/// Whether the drift estimate is part of the recommended input (a product strategy's choice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriftTerm {
    /// `u* = (T − a − d)/b`.
    Include,
    /// `u* = (T − a)/b`.
    Ignore,
}

#[cfg(test)]
mod tests;
