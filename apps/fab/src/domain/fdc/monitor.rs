//! One parameter of one tool: every sample through the checks, in this order — gap, possible
//! value, stuck sensor, run rules, trend (over the last [`HISTORY`] samples), control limits,
//! spec limits.
//!
//! A condition that persists raises one detection, not one per sample: spec limits by their
//! deadband (hysteresis); run rules, control limits and trends by episode — a rule (a
//! control-limit side, a trend) that signalled within the last [`QUIET`] samples raises nothing new, so a shifted
//! process that keeps tripping its rules gives one warning per rule. Spec limits are exempt:
//! leaving the spec always alarms.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::domain::fdc::Sample;
use crate::domain::fdc::alarm::{Cause, Detection};
use crate::domain::fdc::classify::{FaultClass, classify_rule, trend};
use crate::domain::fdc::gap::GapDetector;
use crate::domain::fdc::limits::{BandState, Crossing, LimitsVersion, ParameterLimits, Side};
use crate::domain::fdc::rules::{Rule, RuleWindow, WINDOW};
use crate::domain::name::Name;
use crate::domain::time::Timestamp;

/// New limits that do not apply to this monitor.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    /// Limits of another parameter.
    #[error("limits are for parameter {got}, this monitor watches {expected}")]
    WrongParameter {
        /// This monitor's parameter.
        expected: Name,
        /// The limits'.
        got: Name,
    },
    /// Limits not newer than the ones in force.
    #[error("limits {got} are not newer than {current}")]
    StaleLimits {
        /// In force.
        current: LimitsVersion,
        /// Offered.
        got: LimitsVersion,
    },
}

/// A run rule, a control-limit side or a trend that signalled within this many samples is still the same
/// episode and raises no new detection.
pub const QUIET: u64 = WINDOW as u64;

/// How many standardised values the classification looks back over (longer than the rules'
/// window: a slow drift shows as a ramp only over a minute or so at 1 Hz).
pub const HISTORY: usize = 60;

/// The FDC state of one parameter of one tool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParameterMonitor {
    tool: Name,
    limits: ParameterLimits,
    spec: BandState,
    control: BandState,
    window: RuleWindow,
    history: VecDeque<f64>,
    samples: u64,
    rule_seen: BTreeMap<Rule, u64>,
    control_seen: BTreeMap<Side, u64>,
    trend_seen: Option<u64>,
    gap: GapDetector,
    last_value: Option<f64>,
    repeats: u32,
    stuck: bool,
    failed: bool,
}

impl ParameterMonitor {
    /// Starts watching the parameter of `limits` on `tool` at `start`.
    #[must_use]
    pub fn new(tool: Name, limits: ParameterLimits, start: Timestamp) -> Self {
        Self {
            tool,
            limits,
            spec: BandState::default(),
            control: BandState::default(),
            window: RuleWindow::default(),
            history: VecDeque::with_capacity(HISTORY),
            samples: 0,
            rule_seen: BTreeMap::new(),
            control_seen: BTreeMap::new(),
            trend_seen: None,
            gap: GapDetector::new(start),
            last_value: None,
            repeats: 0,
            stuck: false,
            failed: false,
        }
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> &ParameterLimits {
        &self.limits
    }

    /// Applies a newer version of the limits; the statistical history starts over.
    ///
    /// # Errors
    /// [`MonitorError`] for another parameter's limits or a version not above the current one.
    pub fn set_limits(&mut self, limits: ParameterLimits) -> Result<(), MonitorError> {
        if limits.params().parameter != self.limits.params().parameter {
            return Err(MonitorError::WrongParameter {
                expected: self.limits.params().parameter.clone(),
                got: limits.params().parameter.clone(),
            });
        }
        if limits.version() <= self.limits.version() {
            return Err(MonitorError::StaleLimits {
                current: self.limits.version(),
                got: limits.version(),
            });
        }
        self.limits = limits;
        self.window.clear();
        self.history.clear();
        self.rule_seen.clear();
        self.control_seen.clear();
        self.trend_seen = None;
        Ok(())
    }

    fn detection(&self, cause: Cause, class: FaultClass, at: Timestamp, value: f64) -> Detection {
        Detection {
            tool: self.tool.clone(),
            parameter: self.limits.params().parameter.clone(),
            severity: cause.severity(),
            cause,
            class,
            limits_version: self.limits.version(),
            at,
            value: value.is_finite().then_some(value),
        }
    }

    /// Evaluates one sample; returns what it newly detected.
    pub fn observe(&mut self, sample: Sample) -> Vec<Detection> {
        let Sample { at, value } = sample;
        let p = self.limits.params().clone();
        let mut out = Vec::new();
        if let Some(gap) = self.gap.observe(at, p.max_gap) {
            out.push(self.detection(
                Cause::Gap { length: gap.length },
                FaultClass::DataGap,
                at,
                value,
            ));
        }
        if !self.limits.is_possible(value) {
            if !self.failed {
                self.failed = true;
                out.push(self.detection(
                    Cause::InvalidReading,
                    FaultClass::SensorFailure,
                    at,
                    value,
                ));
            }
            return out;
        }
        self.failed = false;
        self.repeats = match self.last_value {
            Some(last) if last.to_bits() == value.to_bits() => self.repeats.saturating_add(1),
            _ => 1,
        };
        self.last_value = Some(value);
        if self.repeats >= p.stuck_samples {
            if !self.stuck {
                self.stuck = true;
                let cause = Cause::Stuck {
                    samples: self.repeats,
                };
                out.push(self.detection(cause, FaultClass::StuckSensor, at, value));
            }
            return out;
        }
        self.stuck = false;

        let z = self.limits.z(value);
        let fired = self.window.push(z, &p.rules);
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(z);
        let control = self
            .control
            .observe(self.limits.control(), p.deadband, value);
        // The class of this sample's limit crossings: the most telling rule firing with it.
        let rule_class = fired
            .iter()
            .map(|&r| classify_rule(r))
            .filter(|c| *c != FaultClass::Excursion)
            .min_by_key(|c| match c {
                FaultClass::Drift => 0,
                FaultClass::StepChange => 1,
                _ => 2,
            });
        self.samples += 1;
        let n = self.samples;
        let new_episode = |seen: Option<&u64>| seen.is_none_or(|&last| n - last > QUIET);
        for &rule in &fired {
            let beyond_3_is_control = rule == Rule::Beyond3Sigma && self.control.out().is_some();
            if new_episode(self.rule_seen.get(&rule)) && !beyond_3_is_control {
                out.push(self.detection(Cause::Rule { rule }, classify_rule(rule), at, value));
            }
            self.rule_seen.insert(rule, n);
        }
        let history = self.history.make_contiguous();
        let trending = trend(history);
        if let Some(t) = trending {
            // A trend is judged over HISTORY samples, so its episode lasts as long.
            if self.trend_seen.is_none_or(|last| n - last > HISTORY as u64) {
                let cause = Cause::Trend {
                    per_sample: t.slope * p.sigma,
                };
                out.push(self.detection(cause, FaultClass::Drift, at, value));
            }
            self.trend_seen = Some(n);
        }
        // A limit crossed during a trend episode is drift; else what the rules say; else a spike.
        let in_trend = self
            .trend_seen
            .is_some_and(|last| n - last <= HISTORY as u64);
        let class = if in_trend {
            FaultClass::Drift
        } else {
            rule_class.unwrap_or(FaultClass::Excursion)
        };
        if let Some(Crossing::Left(side)) = control
            && new_episode(self.control_seen.get(&side))
        {
            out.push(self.detection(Cause::ControlLimit { side }, class, at, value));
        }
        if let Some(side) = self.control.out() {
            self.control_seen.insert(side, n);
        }
        if let Some(Crossing::Left(side)) = self.spec.observe(p.spec, p.deadband, value) {
            out.push(self.detection(Cause::SpecLimit { side }, class, at, value));
        }
        out
    }

    /// A periodic check at `now` (e.g. every second): reports a gap in the samples once.
    pub fn check(&mut self, now: Timestamp) -> Option<Detection> {
        let gap = self.gap.check(now, self.limits.params().max_gap)?;
        Some(self.detection(
            Cause::Gap { length: gap.length },
            FaultClass::DataGap,
            now,
            f64::NAN,
        ))
    }
}

#[cfg(test)]
mod tests;
