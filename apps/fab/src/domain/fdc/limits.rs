//! Limits per parameter: spec limits from engineering, control limits μ ± 3σ from statistics,
//! a deadband against chattering alarms, and the physically possible range. Versioned and
//! immutable: a change is a new version, and an alarm names the version it was raised under.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::fdc::rules::RuleSet;
use crate::domain::name::Name;
use crate::domain::time::millis;

/// The version of a parameter's limits.
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
pub struct LimitsVersion(pub u32);

impl fmt::Display for LimitsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// A closed interval `[lo, hi]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Band {
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
}

impl Band {
    fn valid(self) -> bool {
        self.lo.is_finite() && self.hi.is_finite() && self.lo < self.hi
    }
}

/// What an engineer sets for one parameter; [`ParameterLimits::new`] validates it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LimitsParams {
    /// The parameter (e.g. `chuck-temp`).
    pub parameter: Name,
    /// Spec limits (engineering).
    pub spec: Band,
    /// In-control mean μ.
    pub mean: f64,
    /// In-control σ (> 0); control limits are μ ± 3σ.
    pub sigma: f64,
    /// Hysteresis: a value that crossed a limit must come back inside by this much to clear
    /// (≥ 0, below half the spec width and below 3σ).
    pub deadband: f64,
    /// Values outside this band are impossible: a sensor failure (must contain the spec band).
    pub physical: Band,
    /// The run rules for this parameter.
    pub rules: RuleSet,
    /// No sample for longer than this is a data-gap fault (3–5 missed samples at 1 Hz).
    #[serde(with = "millis")]
    #[schema(value_type = u64)]
    pub max_gap: Duration,
    /// This many identical readings in a row is a stuck sensor (≥ 3).
    pub stuck_samples: u32,
}

/// Validated, immutable limits of one parameter, with their version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "LimitsRecord", into = "LimitsRecord")]
pub struct ParameterLimits {
    version: LimitsVersion,
    params: LimitsParams,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
struct LimitsRecord {
    version: LimitsVersion,
    params: LimitsParams,
}

impl TryFrom<LimitsRecord> for ParameterLimits {
    type Error = LimitsError;

    fn try_from(r: LimitsRecord) -> Result<Self, Self::Error> {
        Self::new(r.version, r.params)
    }
}

impl From<ParameterLimits> for LimitsRecord {
    fn from(l: ParameterLimits) -> Self {
        Self {
            version: l.version,
            params: l.params,
        }
    }
}

/// Limits were rejected: every field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("limits {version} of {parameter} rejected: {}", .problems.join("; "))]
pub struct LimitsError {
    parameter: String,
    version: LimitsVersion,
    problems: Vec<String>,
}

impl LimitsError {
    /// Whether the field `field` is among those at fault.
    #[must_use]
    pub fn names(&self, field: &str) -> bool {
        self.problems.iter().any(|p| p.starts_with(field))
    }
}

impl ParameterLimits {
    /// Validates `params` as version `version`, reporting every problem at once.
    ///
    /// # Errors
    /// [`LimitsError`] naming each field at fault.
    pub fn new(version: LimitsVersion, params: LimitsParams) -> Result<Self, LimitsError> {
        let mut problems = Vec::new();
        let p = &params;
        if !p.spec.valid() {
            problems.push(format!(
                "spec must be finite with lo < hi, got [{}, {}]",
                p.spec.lo, p.spec.hi
            ));
        }
        if !p.mean.is_finite() {
            problems.push(format!("mean must be a finite number, got {}", p.mean));
        }
        if !(p.sigma.is_finite() && p.sigma > 0.0) {
            problems.push(format!("sigma must be a positive number, got {}", p.sigma));
        }
        let half = (p.spec.hi - p.spec.lo) / 2.0;
        if !(p.deadband.is_finite()
            && p.deadband >= 0.0
            && p.deadband < half
            && p.deadband < 3.0 * p.sigma)
        {
            problems.push(format!(
                "deadband must be ≥ 0 and below half the spec width and 3σ, got {}",
                p.deadband
            ));
        }
        if !(p.physical.valid() && p.physical.lo <= p.spec.lo && p.physical.hi >= p.spec.hi) {
            problems.push(format!(
                "physical must be finite, lo < hi, and contain the spec band, got [{}, {}]",
                p.physical.lo, p.physical.hi
            ));
        }
        if p.max_gap.is_zero() {
            problems.push("max_gap must be positive".to_owned());
        }
        if p.stuck_samples < 3 {
            problems.push(format!(
                "stuck_samples must be at least 3, got {}",
                p.stuck_samples
            ));
        }
        if problems.is_empty() {
            Ok(Self { version, params })
        } else {
            Err(LimitsError {
                parameter: p.parameter.to_string(),
                version,
                problems,
            })
        }
    }

    /// The version.
    #[must_use]
    pub fn version(&self) -> LimitsVersion {
        self.version
    }

    /// The parameters.
    #[must_use]
    pub fn params(&self) -> &LimitsParams {
        &self.params
    }

    /// The control limits μ ± 3σ.
    #[must_use]
    pub fn control(&self) -> Band {
        Band {
            lo: self.params.mean - 3.0 * self.params.sigma,
            hi: self.params.mean + 3.0 * self.params.sigma,
        }
    }

    /// The standardised value `z = (x − μ)/σ`.
    #[must_use]
    pub fn z(&self, x: f64) -> f64 {
        (x - self.params.mean) / self.params.sigma
    }

    /// Whether `x` is a possible reading (finite and inside the physical band).
    #[must_use]
    pub fn is_possible(&self, x: f64) -> bool {
        x.is_finite() && x >= self.params.physical.lo && x <= self.params.physical.hi
    }
}

/// Which side of a band a value is on.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Below `lo`.
    Low,
    /// Above `hi`.
    High,
}

/// A band's state with hysteresis: entering *out* happens at the limit, coming back *in* only
/// `deadband` inside it, so a value hovering at a limit raises one alarm, not many.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BandState {
    out: Option<Side>,
}

/// What changed in a [`BandState`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crossing {
    /// The value left the band on this side.
    Left(Side),
    /// The value came back inside (past the deadband).
    Returned,
}

impl BandState {
    /// Updates the state with `x` and reports a change, if any.
    pub fn observe(&mut self, band: Band, deadband: f64, x: f64) -> Option<Crossing> {
        let now = match self.out {
            None if x > band.hi => Some(Side::High),
            None if x < band.lo => Some(Side::Low),
            None => None,
            Some(Side::High) if x < band.lo => Some(Side::Low),
            Some(Side::Low) if x > band.hi => Some(Side::High),
            Some(Side::High) if x <= band.hi - deadband => None,
            Some(Side::Low) if x >= band.lo + deadband => None,
            keep => keep,
        };
        let change = match (self.out, now) {
            (a, b) if a == b => None,
            (_, Some(side)) => Some(Crossing::Left(side)),
            (_, None) => Some(Crossing::Returned),
        };
        self.out = now;
        change
    }

    /// The side the value is out on, if out.
    #[must_use]
    pub fn out(&self) -> Option<Side> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_hovering_at_a_limit_crosses_once() {
        let band = Band { lo: 20.0, hi: 25.0 };
        let mut s = BandState::default();
        let xs = [24.0, 25.1, 24.9, 25.2, 24.8, 25.05, 24.6, 24.4, 25.3];
        let changes: Vec<_> = xs.iter().map(|&x| s.observe(band, 0.5, x)).collect();
        assert_eq!(
            changes,
            vec![
                None,
                Some(Crossing::Left(Side::High)),
                None,
                None,
                None,
                None,
                None,
                Some(Crossing::Returned),
                Some(Crossing::Left(Side::High)),
            ]
        );
        // Without a deadband the same trace chatters.
        let mut s = BandState::default();
        let n = xs
            .iter()
            .filter(|&&x| s.observe(band, 0.0, x).is_some())
            .count();
        assert_eq!(n, 7);
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let p = LimitsParams {
            parameter: Name::parse("parameter", "chuck-temp").unwrap(),
            spec: Band { lo: 25.0, hi: 20.0 },
            mean: f64::NAN,
            sigma: 0.0,
            deadband: -1.0,
            physical: Band { lo: 0.0, hi: 10.0 },
            rules: RuleSet::western_electric(),
            max_gap: Duration::ZERO,
            stuck_samples: 1,
        };
        let e = ParameterLimits::new(LimitsVersion(2), p).unwrap_err();
        for f in [
            "spec",
            "mean",
            "sigma",
            "deadband",
            "physical",
            "max_gap",
            "stuck_samples",
        ] {
            assert!(e.names(f), "{f} missing: {e}");
        }
        assert!(e.to_string().contains("chuck-temp"));
    }
}
