//! The pool's policies: what `submit` does when the queue is full, and what happens at stop to
//! jobs accepted but not started.

/// What [`Workers::submit`](crate::Workers::submit) does when the queue is full.
/// [`Workers::try_submit`](crate::Workers::try_submit) never waits, whatever the policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenFull {
    /// Wait until the queue has room (back-pressure on the submitter); the wait ends with an
    /// error as soon as the pool begins stopping.
    #[default]
    Wait,
    /// Fail at once with an error for which
    /// [`SubmitError::is_queue_full`](crate::SubmitError::is_queue_full) is true.
    Reject,
}

/// What happens, when the pool stops, to jobs it accepted but has not started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pending {
    /// Run them, at the pool's concurrency, within the drain timeout (the safe default: an
    /// accepted job is not lost by a graceful stop). Those still queued at the deadline are
    /// abandoned and named.
    #[default]
    Finish,
    /// Drop them without running them; their names are logged and listed in
    /// [`DrainReport::abandoned`](crate::DrainReport::abandoned). For jobs that are cheap to
    /// lose or that another process will redo.
    Drop,
}
