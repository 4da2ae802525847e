//! Classification: what kind of fault a detection is.
//!
//! spike → [`FaultClass::Excursion`], shift → [`FaultClass::StepChange`], trend →
//! [`FaultClass::Drift`] (wear), zero variance → [`FaultClass::StuckSensor`], NaN or an
//! impossible value → [`FaultClass::SensorFailure`], no samples → [`FaultClass::DataGap`].
//! Two rules have classes of their own: alternation ([`FaultClass::Oscillation`], usually
//! over-control) and stratification ([`FaultClass::ReducedVariance`], often a changed sensor or
//! wrong σ).
//!
//! A shift rule (2 of 3, 4 of 5, 8 on one side…) fires a second or two after a step, and long
//! before a slow ramp has shown it is one: at that moment the two cannot be told apart, so a shift
//! rule means a step change. A drift is found by its own test, [`trend`], over a longer history.

use serde::{Deserialize, Serialize};

use crate::domain::fdc::rules::Rule;

/// The class of a fault.
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
pub enum FaultClass {
    /// A short spike.
    Excursion,
    /// The level moved and stays.
    StepChange,
    /// A ramp: drift or wear.
    Drift,
    /// The sensor repeats one value.
    StuckSensor,
    /// NaN, infinite or physically impossible readings.
    SensorFailure,
    /// No samples.
    DataGap,
    /// Alternating up and down.
    Oscillation,
    /// Too little variation for the configured σ.
    ReducedVariance,
}

/// The class of a rule's detection.
#[must_use]
pub fn classify_rule(rule: Rule) -> FaultClass {
    match rule {
        Rule::Beyond3Sigma => FaultClass::Excursion,
        Rule::SixTrending => FaultClass::Drift,
        Rule::FourteenAlternating => FaultClass::Oscillation,
        Rule::FifteenWithin1Sigma => FaultClass::ReducedVariance,
        Rule::TwoOfThreeBeyond2Sigma
        | Rule::FourOfFiveBeyond1Sigma
        | Rule::EightOnOneSide
        | Rule::EightBeyond1SigmaBothSides => FaultClass::StepChange,
    }
}

/// The fewest points [`trend`] looks at.
pub const TREND_MIN_POINTS: usize = 30;
/// The |t| a slope must exceed to be a trend.
pub const TREND_T: f64 = 4.0;

/// How much better (in squared residuals, σ = 1) the line must fit than the best step: noise
/// that wanders before a step can make a line fit about as well.
pub const TREND_MARGIN: f64 = 8.0;

/// A significant ramp in a standardised history.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Trend {
    /// Least-squares slope, in σ per sample.
    pub slope: f64,
    /// Its t statistic (σ = 1 in z units, so `t = slope·√Sxx`).
    pub t: f64,
}

/// Whether `history` (standardised, oldest first, at least [`TREND_MIN_POINTS`]) is a ramp: the
/// least-squares slope is significant (`|t| >` [`TREND_T`]) *and* a line fits better than the best
/// two-level step by [`TREND_MARGIN`] — a step also tilts a fitted line, but a step model then
/// fits better.
#[must_use]
pub fn trend(history: &[f64]) -> Option<Trend> {
    let n = history.len();
    if n < TREND_MIN_POINTS {
        return None;
    }
    let (slope, sxx, line) = fit_line(history);
    let t = slope * sxx.sqrt();
    if t.abs() <= TREND_T {
        return None;
    }
    let step = (2..=n - 2)
        .map(|k| sse_flat(&history[..k]) + sse_flat(&history[k..]))
        .fold(f64::INFINITY, f64::min);
    (line + TREND_MARGIN < step).then_some(Trend { slope, t })
}

#[allow(clippy::cast_precision_loss)] // histories are short
fn sse_flat(w: &[f64]) -> f64 {
    let m = w.iter().sum::<f64>() / w.len() as f64;
    w.iter().map(|y| (y - m) * (y - m)).sum()
}

/// (slope, Sxx, residual sum of squares) of the least-squares line.
#[allow(clippy::cast_precision_loss)] // histories are short
fn fit_line(w: &[f64]) -> (f64, f64, f64) {
    let nf = w.len() as f64;
    let mx = (nf - 1.0) / 2.0;
    let my = w.iter().sum::<f64>() / nf;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, &y) in w.iter().enumerate() {
        let dx = i as f64 - mx;
        sxy += dx * (y - my);
        sxx += dx * dx;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let sse = w
        .iter()
        .enumerate()
        .map(|(i, &y)| {
            let r = y - (my + slope * (i as f64 - mx));
            r * r
        })
        .sum();
    (slope, sxx, sse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ramp_is_a_trend_and_a_step_is_not() {
        let ramp: Vec<f64> = (0..40)
            .map(|i| f64::from(i) * 0.1 + if i % 2 == 0 { 0.3 } else { -0.3 })
            .collect();
        let step: Vec<f64> = (0..40)
            .map(|i| if i < 25 { 0.0 } else { 2.5 } + if i % 2 == 0 { 0.3 } else { -0.3 })
            .collect();
        let flat: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 0.3 } else { -0.3 })
            .collect();
        let t = trend(&ramp).unwrap();
        assert!((t.slope - 0.1).abs() < 0.01, "{t:?}");
        assert_eq!(
            trend(&step),
            None,
            "a step tilts the line but fits better as a step"
        );
        assert_eq!(trend(&flat), None);
        assert_eq!(trend(&ramp[..20]), None, "too short");
        assert_eq!(classify_rule(Rule::Beyond3Sigma), FaultClass::Excursion);
        assert_eq!(classify_rule(Rule::EightOnOneSide), FaultClass::StepChange);
        assert_eq!(classify_rule(Rule::SixTrending), FaultClass::Drift);
    }
}
