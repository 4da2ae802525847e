//! Facade: the APC steps behind one interface.
//!
//! `gen_subrecipe` → `check_spec` → `log` → (later, with metrology) `update_apc_fn`.
//! [`Apc::preview`] is `gen_subrecipe` + `check_spec` on a shared borrow of the thread: the type
//! system guarantees it changes nothing. [`Apc::dispatch`] is preview + log.
//!
//! The facade does no I/O: `log` returns the [`RunRecord`] and the thread [`Transition`]; making
//! them durable (before answering the tool) is the caller's job.

use serde::{Deserialize, Serialize};

use crate::domain::apc::context::LotContext;
use crate::domain::apc::controller::ConfigVersion;
use crate::domain::apc::generator::{GenerateError, Proposal, SubRecipeRequest, generator_for};
use crate::domain::apc::thread::{
    Measurement, ModeRecord, RunRecord, StateVersion, StepCheck, Thread, ThreadError, ThreadEvent,
    Transition,
};
use crate::domain::name::Name;
use crate::domain::time::Timestamp;

/// The spec limits of a sub recipe (from the released spec set); deserialising validates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "SrLimitsRecord", into = "SrLimitsRecord")]
pub struct SrLimits {
    min: f64,
    max: f64,
    spec_version: u32,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
struct SrLimitsRecord {
    min: f64,
    max: f64,
    spec_version: u32,
}

impl TryFrom<SrLimitsRecord> for SrLimits {
    type Error = ApcError;

    fn try_from(r: SrLimitsRecord) -> Result<Self, Self::Error> {
        Self::new(r.min, r.max, r.spec_version)
    }
}

impl From<SrLimits> for SrLimitsRecord {
    fn from(l: SrLimits) -> Self {
        Self {
            min: l.min,
            max: l.max,
            spec_version: l.spec_version,
        }
    }
}

impl SrLimits {
    /// Limits `[min, max]` (mJ/cm²) from spec version `spec_version`.
    ///
    /// # Errors
    /// [`ApcError::InvalidLimits`] unless both are finite and `min < max`.
    pub fn new(min: f64, max: f64, spec_version: u32) -> Result<Self, ApcError> {
        if min.is_finite() && max.is_finite() && min < max {
            Ok(Self {
                min,
                max,
                spec_version,
            })
        } else {
            Err(ApcError::InvalidLimits { min, max })
        }
    }

    /// The lower limit.
    #[must_use]
    pub fn min(&self) -> f64 {
        self.min
    }

    /// The upper limit.
    #[must_use]
    pub fn max(&self) -> f64 {
        self.max
    }

    /// The spec version they come from.
    #[must_use]
    pub fn spec_version(&self) -> u32 {
        self.spec_version
    }
}

/// A sub recipe that passed `check_spec`: what the tool would get.
///
/// Only [`Apc::check_spec`] makes one (its fields are private and it cannot be deserialised),
/// so [`Apc::log`] can only record an SR that was generated and checked here — a preview sent
/// to a client cannot come back altered. It serialises, for a preview's answer.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Checked {
    lot: LotContext,
    proposal: Proposal,
    applied_sr: f64,
    step: StepCheck,
    limits: SrLimits,
    state_version: StateVersion,
    config_version: ConfigVersion,
    epoch: u32,
}

impl Checked {
    /// The lot.
    #[must_use]
    pub fn lot(&self) -> &LotContext {
        &self.lot
    }

    /// The generator's proposal (its SR before the clamp, its mode, pilot or not).
    #[must_use]
    pub fn proposal(&self) -> &Proposal {
        &self.proposal
    }

    /// The SR to apply, after the step clamp (mJ/cm²).
    #[must_use]
    pub fn applied_sr(&self) -> f64 {
        self.applied_sr
    }

    /// What the clamp did.
    #[must_use]
    pub fn step(&self) -> StepCheck {
        self.step
    }

    /// The limits it was checked against.
    #[must_use]
    pub fn limits(&self) -> &SrLimits {
        &self.limits
    }

    /// The thread version it was computed from.
    #[must_use]
    pub fn state_version(&self) -> StateVersion {
        self.state_version
    }
}

/// An APC step failed; nothing was changed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApcError {
    /// The request is for another thread.
    #[error("request is for thread {got}, not {expected}")]
    WrongThread {
        /// The thread given.
        expected: String,
        /// The request's.
        got: String,
    },
    /// The generator could not produce an SR.
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// The SR is outside the spec limits.
    #[error("sr {sr} is outside the spec limits [{min}, {max}] of spec version {spec_version}")]
    OutOfSpec {
        /// The SR after the clamp.
        sr: f64,
        /// Lower limit.
        min: f64,
        /// Upper limit.
        max: f64,
        /// Spec version.
        spec_version: u32,
    },
    /// An engineer's SR steps further from the previous run's than the clamp allows (an
    /// override is never silently changed).
    #[error("sr {sr} differs from the previous run's {previous} by more than {max_step_percent}%")]
    StepTooLarge {
        /// The requested SR.
        sr: f64,
        /// The previous run's applied SR.
        previous: f64,
        /// The allowed step, in percent.
        max_step_percent: f64,
    },
    /// Spec limits that are not a finite, non-empty range.
    #[error("spec limits must be finite with min < max, got [{min}, {max}]")]
    InvalidLimits {
        /// Lower limit.
        min: f64,
        /// Upper limit.
        max: f64,
    },
    /// The thread refused the event.
    #[error(transparent)]
    Thread(#[from] ThreadError),
}

/// The APC facade (stateless: the thread, the limits and the time are arguments).
#[derive(Clone, Copy, Debug, Default)]
pub struct Apc;

impl Apc {
    /// Step 1: generates the SR with the generator the request's mode selects.
    ///
    /// # Errors
    /// [`ApcError::WrongThread`], [`ApcError::Generate`].
    pub fn gen_subrecipe(
        &self,
        thread: &Thread,
        request: &SubRecipeRequest,
        now: Timestamp,
    ) -> Result<Proposal, ApcError> {
        if &request.lot.thread != thread.key() {
            return Err(ApcError::WrongThread {
                expected: thread.key().to_string(),
                got: request.lot.thread.to_string(),
            });
        }
        Ok(generator_for(&request.mode).generate(thread, &request.lot, now)?)
    }

    /// Step 2: applies the per-run step clamp (an engineer's SR is refused instead of clamped)
    /// and checks the spec limits.
    ///
    /// # Errors
    /// [`ApcError::StepTooLarge`], [`ApcError::OutOfSpec`].
    pub fn check_spec(
        &self,
        thread: &Thread,
        lot: &LotContext,
        proposal: Proposal,
        limits: &SrLimits,
        now: Timestamp,
    ) -> Result<Checked, ApcError> {
        let epoch = thread.epoch_for_run(now);
        let previous = thread
            .last_run()
            .filter(|_| epoch == thread.epoch())
            .map(RunRecord::effective_sr);
        let max_step = thread.config().params().max_step;
        let (applied_sr, step) = match previous {
            None => (proposal.sr, StepCheck::First),
            Some(prev) => {
                let limit = max_step * prev.abs();
                let delta = proposal.sr - prev;
                if delta.abs() <= limit {
                    (proposal.sr, StepCheck::Within)
                } else if matches!(proposal.mode, ModeRecord::Recommend { .. }) {
                    return Err(ApcError::StepTooLarge {
                        sr: proposal.sr,
                        previous: prev,
                        max_step_percent: max_step * 100.0,
                    });
                } else {
                    (
                        prev + limit.copysign(delta),
                        StepCheck::Clamped {
                            requested: proposal.sr,
                        },
                    )
                }
            }
        };
        if !(limits.min..=limits.max).contains(&applied_sr) {
            return Err(ApcError::OutOfSpec {
                sr: applied_sr,
                min: limits.min,
                max: limits.max,
                spec_version: limits.spec_version,
            });
        }
        Ok(Checked {
            lot: lot.clone(),
            proposal,
            applied_sr,
            step,
            limits: *limits,
            state_version: thread.version(),
            config_version: thread.config().version(),
            epoch,
        })
    }

    /// Steps 1 and 2 on a shared borrow: what the tool would get, changing nothing. The fab asks
    /// it before dispatching a lot, so a lot never waits at a tool that cannot get an SR.
    ///
    /// # Errors
    /// As [`Apc::gen_subrecipe`] and [`Apc::check_spec`].
    pub fn preview(
        &self,
        thread: &Thread,
        request: &SubRecipeRequest,
        limits: &SrLimits,
        now: Timestamp,
    ) -> Result<Checked, ApcError> {
        let proposal = self.gen_subrecipe(thread, request, now)?;
        self.check_spec(thread, &request.lot, proposal, limits, now)
    }

    /// Step 3: records the run on the thread as run `run`, returning the durable run record
    /// and the transition to persist (before the SR is sent to the tool).
    ///
    /// # Errors
    /// [`ApcError::Thread`] when the thread moved on since `checked` was computed
    /// (version conflict) or the run id is taken.
    pub fn log(
        &self,
        thread: &mut Thread,
        checked: Checked,
        run: Name,
        now: Timestamp,
    ) -> Result<(RunRecord, Transition), ApcError> {
        let record = RunRecord {
            run,
            lot: checked.lot,
            mode: checked.proposal.mode,
            computed_sr: checked.proposal.sr,
            applied_sr: checked.applied_sr,
            reported_sr: None,
            step: checked.step,
            pilot: checked.proposal.pilot,
            config_version: checked.config_version,
            state_version: checked.state_version,
            spec_version: checked.limits.spec_version,
            epoch: checked.epoch,
            at: now,
        };
        let transition = thread
            .apply_expecting(
                checked.state_version,
                ThreadEvent::RunLogged(record.clone()),
            )?
            .ok_or_else(|| ApcError::Thread(ThreadError::DuplicateRun(record.run.clone())))?;
        Ok((record, transition))
    }

    /// Preview, then log: the whole dispatch of one lot.
    ///
    /// # Errors
    /// As [`Apc::preview`] and [`Apc::log`].
    pub fn dispatch(
        &self,
        thread: &mut Thread,
        request: &SubRecipeRequest,
        limits: &SrLimits,
        run: Name,
        now: Timestamp,
    ) -> Result<(RunRecord, Transition), ApcError> {
        let checked = self.preview(thread, request, limits, now)?;
        self.log(thread, checked, run, now)
    }

    /// Step 4: folds a metrology result into the thread (gated, with the run's applied SR).
    /// `Ok(None)` for a measurement already received.
    ///
    /// # Errors
    /// [`ApcError::Thread`]: unknown run, a reused id with other contents, a non-finite value.
    pub fn update_apc_fn(
        &self,
        thread: &mut Thread,
        measurement: Measurement,
    ) -> Result<Option<Transition>, ApcError> {
        Ok(thread.apply(ThreadEvent::Measured(measurement))?)
    }
}

#[cfg(test)]
mod tests;
