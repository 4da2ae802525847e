//! What the pool's drain did.

use std::sync::Arc;
use std::time::Duration;

/// How the pool's last stop went: which jobs overran the drain timeout (aborted) and which
/// accepted jobs never started. Returned by [`Workers::drained`](crate::Workers::drained).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DrainReport {
    /// Jobs still running at the drain deadline; they were aborted.
    pub overran: Vec<Arc<str>>,
    /// Jobs accepted but never started: dropped by [`Pending::Drop`](crate::Pending::Drop), or
    /// still queued at the drain deadline.
    pub abandoned: Vec<Arc<str>>,
    /// How many jobs ran to their end (successfully or not) during the drain.
    pub finished: u64,
    /// How long the drain took.
    pub took: Duration,
}

impl DrainReport {
    /// Whether every accepted job ran to its end.
    pub fn is_complete(&self) -> bool {
        self.overran.is_empty() && self.abandoned.is_empty()
    }
}
