//! Seeding a new thread from a parent context instead of a pilot run.
//!
//! A new thread has no controller state: its first run is a pilot run whose measurement sets
//! the offset. When a *parent* thread runs the same process — the same product, technology and
//! layer (so the same controller configuration scope and process model), on another reticle or
//! another tool — its current state is a better start than the configuration's initial one, and
//! the new thread may start from it ([`ThreadEvent::Seeded`](super::thread::ThreadEvent::Seeded),
//! recorded as a transition that names the parent). [`seed_state`] decides whether a thread may
//! serve as the parent of another and returns the state to seed with.

use crate::domain::apc::context::ThreadKey;
use crate::domain::apc::controller::ControllerState;
use crate::domain::apc::thread::{PilotReason, Thread};
use crate::domain::time::Timestamp;

/// Why a thread cannot seed another.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParentError {
    /// A thread cannot be its own parent.
    #[error("a thread cannot be seeded from itself")]
    Itself,
    /// The parent runs another process (its product, technology or layer differs).
    #[error(
        "parent {parent} runs another process than {child}: product, technology and layer must match"
    )]
    OtherProcess {
        /// The parent.
        parent: Box<ThreadKey>,
        /// The thread to seed.
        child: Box<ThreadKey>,
    },
    /// The parent's own state is not trustworthy: it waits for a pilot run itself.
    #[error("parent {parent} has no settled state: it needs a pilot run ({reason:?})")]
    Unsettled {
        /// The parent.
        parent: Box<ThreadKey>,
        /// Why it needs a pilot run.
        reason: PilotReason,
    },
}

/// The state `parent` would seed `child` with at `now`.
///
/// # Errors
/// [`ParentError`] when `parent` is `child`, runs another process (product, technology or layer
/// differ), or itself needs a pilot run (new, idle, reset, after maintenance, …).
pub fn seed_state(
    child: &ThreadKey,
    parent: &Thread,
    now: Timestamp,
) -> Result<ControllerState, ParentError> {
    let key = parent.key();
    if key == child {
        return Err(ParentError::Itself);
    }
    if key.product != child.product
        || key.technology != child.technology
        || key.layer != child.layer
    {
        return Err(ParentError::OtherProcess {
            parent: Box::new(key.clone()),
            child: Box::new(child.clone()),
        });
    }
    if let Some(reason) = parent.pilot_requirement(now) {
        return Err(ParentError::Unsettled {
            parent: Box::new(key.clone()),
            reason,
        });
    }
    Ok(*parent.controller())
}

#[cfg(test)]
mod tests;
