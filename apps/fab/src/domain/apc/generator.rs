//! Factory: the sub-recipe generator is chosen by the request's mode.
//!
//! - [`ModeRequest::Formula`]: `SR = a + b·F(n) + c·F2(n)` — `a` the nominal recipe, `b` and `c`
//!   the configuration's weights, F(n) from the product [strategy](super::strategy), F2(n) from the
//!   technology strategy.
//! - [`ModeRequest::Recommend`]: the engineer's SR for this lot, with who and why (audited).
//! - [`ModeRequest::Feedforward`]: the previous run's applied SR (as the tool reported it, if it
//!   did), if it is recent enough.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::apc::context::{LotContext, ThreadKey};
use crate::domain::apc::strategy::{product_strategy, technology_strategy};
use crate::domain::apc::thread::{ModeRecord, PilotReason, Thread};
use crate::domain::name::Name;
use crate::domain::time::Timestamp;

/// The longest reason accepted for an engineer's override.
pub const MAX_REASON_LEN: usize = 500;

/// How the caller wants the sub recipe produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ModeRequest {
    /// The formula.
    Formula,
    /// By hand.
    Recommend {
        /// The SR (mJ/cm²).
        sr: f64,
        /// Who sets it.
        engineer: Name,
        /// Why (1–500 characters, no control characters).
        reason: String,
    },
    /// The previous run's SR.
    Feedforward,
}

/// A request for a sub recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubRecipeRequest {
    /// The lot and its thread.
    pub lot: LotContext,
    /// The mode.
    pub mode: ModeRequest,
    /// For a thread that does not exist yet: the parent thread whose state seeds it (see
    /// [`super::parent`]) instead of a pilot run. Ignored once the thread exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_from: Option<ThreadKey>,
}

/// A generated (not yet checked) sub recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Proposal {
    /// The SR (mJ/cm²).
    pub sr: f64,
    /// How it was produced.
    pub mode: ModeRecord,
    /// Set when the run will be a pilot run.
    pub pilot: Option<PilotReason>,
}

/// No sub recipe can be generated.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// A number is NaN or infinite.
    #[error("{field} must be a finite number, got {value}")]
    NonFinite {
        /// The field.
        field: &'static str,
        /// The value.
        value: f64,
    },
    /// An override without a usable reason.
    #[error("reason must be 1 to 500 characters without control characters")]
    BadReason,
    /// Feedforward on a thread without a previous run in this epoch.
    #[error("feedforward needs a previous run of the thread, and there is none")]
    NoPreviousRun,
    /// Feedforward from a run that is too old.
    #[error("feedforward source run {run} is {age:?} old, beyond the {window:?} window")]
    Stale {
        /// The previous run.
        run: Name,
        /// Its age.
        age: Duration,
        /// The window.
        window: Duration,
    },
    /// Feedforward while the thread needs a pilot run.
    #[error("the thread needs a pilot run ({0:?}): feedforward cannot serve it")]
    PilotRequired(PilotReason),
}

/// Produces a sub recipe for one run of a thread.
pub trait SubRecipeGenerator: fmt::Debug {
    /// Generates the SR for `lot` on `thread` at `now`; changes nothing.
    ///
    /// # Errors
    /// [`GenerateError`] when this mode cannot produce an SR now.
    fn generate(
        &self,
        thread: &Thread,
        lot: &LotContext,
        now: Timestamp,
    ) -> Result<Proposal, GenerateError>;
}

/// The formula `SR = a + b·F(n) + c·F2(n)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FormulaGenerator;

impl SubRecipeGenerator for FormulaGenerator {
    fn generate(
        &self,
        thread: &Thread,
        lot: &LotContext,
        now: Timestamp,
    ) -> Result<Proposal, GenerateError> {
        let p = thread.config().params();
        let feedback = product_strategy(lot.product_kind).feedback(thread);
        let technology_offset = technology_strategy(thread.key().technology).offset(thread);
        let sr = p.nominal + p.feedback_weight * feedback + p.technology_weight * technology_offset;
        if !sr.is_finite() {
            return Err(GenerateError::NonFinite {
                field: "sr",
                value: sr,
            });
        }
        Ok(Proposal {
            sr,
            mode: ModeRecord::Formula {
                feedback,
                technology_offset,
            },
            pilot: thread.pilot_requirement(now),
        })
    }
}

/// The engineer's SR.
#[derive(Clone, Debug)]
pub struct RecommendGenerator<'a> {
    sr: f64,
    engineer: &'a Name,
    reason: &'a str,
}

impl SubRecipeGenerator for RecommendGenerator<'_> {
    fn generate(
        &self,
        thread: &Thread,
        _lot: &LotContext,
        now: Timestamp,
    ) -> Result<Proposal, GenerateError> {
        if !self.sr.is_finite() {
            return Err(GenerateError::NonFinite {
                field: "sr",
                value: self.sr,
            });
        }
        let reason = self.reason.trim();
        if reason.is_empty()
            || reason.chars().count() > MAX_REASON_LEN
            || reason.chars().any(char::is_control)
        {
            return Err(GenerateError::BadReason);
        }
        Ok(Proposal {
            sr: self.sr,
            mode: ModeRecord::Recommend {
                engineer: self.engineer.clone(),
                reason: reason.to_owned(),
            },
            pilot: thread.pilot_requirement(now),
        })
    }
}

/// The previous run's applied SR, within the configuration's staleness window.
#[derive(Clone, Copy, Debug, Default)]
pub struct FeedforwardGenerator;

impl SubRecipeGenerator for FeedforwardGenerator {
    fn generate(
        &self,
        thread: &Thread,
        _lot: &LotContext,
        now: Timestamp,
    ) -> Result<Proposal, GenerateError> {
        if let Some(reason) = thread.pilot_requirement(now) {
            return Err(GenerateError::PilotRequired(reason));
        }
        let prev = thread.last_run().ok_or(GenerateError::NoPreviousRun)?;
        let age = now.saturating_since(prev.at);
        let window = thread.config().params().feedforward_window;
        if age > window {
            return Err(GenerateError::Stale {
                run: prev.run.clone(),
                age,
                window,
            });
        }
        Ok(Proposal {
            sr: prev.effective_sr(),
            mode: ModeRecord::Feedforward {
                from_run: prev.run.clone(),
            },
            pilot: None,
        })
    }
}

/// The Factory: the generator for `mode`.
#[must_use]
pub fn generator_for(mode: &ModeRequest) -> Box<dyn SubRecipeGenerator + '_> {
    match mode {
        ModeRequest::Formula => Box::new(FormulaGenerator),
        ModeRequest::Recommend {
            sr,
            engineer,
            reason,
        } => Box::new(RecommendGenerator {
            sr: *sr,
            engineer,
            reason,
        }),
        ModeRequest::Feedforward => Box::new(FeedforwardGenerator),
    }
}
