//! Seeding a new thread from the parent thread a sub-recipe request names (`seed_from`).
//!
//! Only a thread created by this very request is seeded; for a thread that exists already,
//! `seed_from` is ignored (so a client may send it with every request of a context). The
//! parent must run the same process (product, technology, layer) and have a settled state
//! ([`crate::domain::apc::parent`]); the seeding is a transition of the new thread that names
//! the parent, committed with the run.

use axum::http::StatusCode;

use crate::api::AppState;
use crate::api::error::ApiError;
use crate::api::idempotency::Failure;
use crate::domain::apc::context::ThreadKey;
use crate::domain::apc::parent::{ParentError, seed_state};
use crate::domain::apc::thread::{Thread, ThreadEvent, Transition};
use crate::domain::time::Timestamp;

impl From<ParentError> for ApiError {
    fn from(e: ParentError) -> Self {
        let message = e.to_string();
        match e {
            ParentError::Unsettled { .. } => {
                Self::new(StatusCode::CONFLICT, message).field("seed_from")
            }
            _ => Self::unprocessable(message).field("seed_from"),
        }
    }
}

/// Seeds the just-created `thread` from the stored thread `parent`: the transition to commit.
///
/// # Errors
/// 422 naming `seed_from` for an unknown parent or one of another process, 409 for a parent
/// that needs a pilot run itself; the store failed.
pub(super) async fn seed(
    state: &AppState,
    thread: &mut Thread,
    parent: &ThreadKey,
    at: Timestamp,
) -> Result<Transition, Failure> {
    let stored = state.store.thread(parent).await?.ok_or_else(|| {
        ApiError::unprocessable(format!("no thread {parent} to seed from")).field("seed_from")
    })?;
    let seed = seed_state(thread.key(), &stored, at).map_err(ApiError::from)?;
    let event = ThreadEvent::Seeded {
        parent: parent.clone(),
        state: seed,
        at,
    };
    let transition = thread.apply(event)?.ok_or_else(|| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "seeding changed nothing")
    })?;
    Ok(transition)
}
