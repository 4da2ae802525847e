//! Command: a tool's job queue — exposures and reticle moves as queued commands.
//!
//! Each [`ToolJob`] is a command the tool executes; its effect on the tool (a reticle loaded or
//! unloaded) is applied when the tool reports it complete. The queue decides the order:
//!
//! - first in, first out;
//! - a reticle must be checked in before an exposure that needs it, and checked out only when
//!   it is in: [`JobQueue::submit`] refuses a job the plan cannot satisfy;
//! - a hot lot jumps ahead of the waiting jobs, but never pre-empts the running job and never
//!   skips its reticle dependency: when its reticle is not in, the check-in it depends on jumps
//!   with it (and runs first).
//!
//! The tool has no reticle-library capacity limit here (a check-in is never refused for space).

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::apc::context::LotPriority;
use crate::domain::name::Name;

/// A job's id, unique per queue, in submission order.
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
#[serde(transparent)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job {}", self.0)
    }
}

/// A command for the tool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum ToolJob {
    /// Expose a lot with a sub recipe.
    Expose {
        /// The APC run.
        run: Name,
        /// The lot.
        lot: Name,
        /// The reticle it needs.
        reticle: Name,
        /// The sub recipe (mJ/cm²).
        sr: f64,
        /// Hot lots jump the queue.
        priority: LotPriority,
    },
    /// Load a reticle into the tool.
    CheckIn {
        /// The reticle.
        reticle: Name,
    },
    /// Unload a reticle.
    CheckOut {
        /// The reticle.
        reticle: Name,
    },
}

impl ToolJob {
    fn reticle(&self) -> &Name {
        match self {
            Self::Expose { reticle, .. }
            | Self::CheckIn { reticle }
            | Self::CheckOut { reticle } => reticle,
        }
    }

    /// Whether this is an exposure (a scanner job), as opposed to a reticle move.
    #[must_use]
    pub fn is_exposure(&self) -> bool {
        matches!(self, Self::Expose { .. })
    }

    fn is_hot(&self) -> bool {
        matches!(
            self,
            Self::Expose {
                priority: LotPriority::Hot,
                ..
            }
        )
    }

    /// The command's effect on the tool's loaded reticles, applied on completion.
    fn apply(&self, loaded: &mut BTreeSet<Name>) {
        match self {
            Self::Expose { .. } => {}
            Self::CheckIn { reticle } => {
                loaded.insert(reticle.clone());
            }
            Self::CheckOut { reticle } => {
                loaded.remove(reticle);
            }
        }
    }
}

/// A job with its id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueuedJob {
    /// Its id.
    pub id: JobId,
    /// The command.
    pub job: ToolJob,
}

/// A job refused or an operation the queue's state does not allow; the queue is unchanged.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// An exposure or check-out of a reticle that will not be in the tool.
    #[error("reticle {reticle} will not be checked in when {job} needs it")]
    ReticleNotIn {
        /// The reticle.
        reticle: Name,
        /// The job that needs it (the submitted one, or one a cancel would strand).
        job: String,
    },
    /// A check-in of a reticle that will already be in the tool.
    #[error("reticle {reticle} will already be checked in")]
    ReticleAlreadyIn {
        /// The reticle.
        reticle: Name,
    },
    /// An exposure with a NaN or infinite sub recipe.
    #[error("sr must be a finite number, got {0}")]
    NonFiniteSr(f64),
    /// No such waiting job.
    #[error("{0} is not waiting")]
    NotWaiting(JobId),
    /// Completing a job that is not the running one.
    #[error("{0} is not running")]
    NotRunning(JobId),
}

/// One tool's queue: the waiting jobs, the running one, and the reticles in the tool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobQueue {
    next_id: u64,
    waiting: VecDeque<QueuedJob>,
    running: Option<QueuedJob>,
    loaded: BTreeSet<Name>,
}

impl JobQueue {
    /// An idle tool with no reticle in it.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `job` at the back (a hot exposure will still jump ahead when started).
    ///
    /// # Errors
    /// [`JobError`] when the plan cannot satisfy it: a reticle that will not be in for an
    /// exposure or check-out, a check-in of a reticle that will be in, a non-finite SR.
    pub fn submit(&mut self, job: ToolJob) -> Result<JobId, JobError> {
        if let ToolJob::Expose { sr, .. } = job
            && !sr.is_finite()
        {
            return Err(JobError::NonFiniteSr(sr));
        }
        let id = JobId(self.next_id);
        self.waiting.push_back(QueuedJob { id, job });
        if let Err(e) = self.check_plan() {
            self.waiting.pop_back();
            return Err(e);
        }
        self.next_id += 1;
        Ok(id)
    }

    /// Removes a waiting job.
    ///
    /// # Errors
    /// [`JobError::NotWaiting`]; [`JobError::ReticleNotIn`] when a waiting job depends on it.
    pub fn cancel(&mut self, id: JobId) -> Result<QueuedJob, JobError> {
        let idx = self
            .waiting
            .iter()
            .position(|j| j.id == id)
            .ok_or(JobError::NotWaiting(id))?;
        let removed = self.waiting.remove(idx).ok_or(JobError::NotWaiting(id))?;
        if let Err(e) = self.check_plan() {
            self.waiting.insert(idx, removed);
            return Err(e);
        }
        Ok(removed)
    }

    /// Starts the next job, if the tool is idle and a job waits: the first hot exposure whose
    /// reticle is in; else the check-in the first waiting hot exposure depends on; else the
    /// oldest job. Returns `None` while a job runs (never pre-empted) or nothing waits.
    pub fn start_next(&mut self) -> Option<&QueuedJob> {
        if self.running.is_some() {
            return None;
        }
        let idx = self.next_index()?;
        self.running = self.waiting.remove(idx);
        self.running.as_ref()
    }

    /// The job [`JobQueue::start_next`] would start now, without starting it (so a caller can
    /// refuse to start it, e.g. an exposure on an inhibited tool).
    #[must_use]
    pub fn peek_next(&self) -> Option<&QueuedJob> {
        if self.running.is_some() {
            return None;
        }
        self.waiting.get(self.next_index()?)
    }

    fn next_index(&self) -> Option<usize> {
        let hot = self
            .waiting
            .iter()
            .position(|j| j.job.is_hot() && self.loaded.contains(j.job.reticle()));
        if hot.is_some() {
            return hot;
        }
        for j in self.waiting.iter().filter(|j| j.job.is_hot()) {
            let check_in = self.waiting.iter().position(
                |c| matches!(&c.job, ToolJob::CheckIn { reticle } if reticle == j.job.reticle()),
            );
            if check_in.is_some() {
                return check_in;
            }
        }
        if self.waiting.is_empty() {
            None
        } else {
            Some(0)
        }
    }

    /// The tool reports job `id` done: its effect (reticle in or out) is applied.
    ///
    /// # Errors
    /// [`JobError::NotRunning`] when `id` is not the running job.
    pub fn complete(&mut self, id: JobId) -> Result<QueuedJob, JobError> {
        match self.running.take() {
            Some(j) if j.id == id => {
                j.job.apply(&mut self.loaded);
                Ok(j)
            }
            other => {
                self.running = other;
                Err(JobError::NotRunning(id))
            }
        }
    }

    /// The running job.
    #[must_use]
    pub fn running(&self) -> Option<&QueuedJob> {
        self.running.as_ref()
    }

    /// The waiting jobs, in submission order.
    pub fn waiting(&self) -> impl Iterator<Item = &QueuedJob> {
        self.waiting.iter()
    }

    /// The reticles in the tool now (checked in and not yet out), in name order.
    pub fn loaded(&self) -> impl Iterator<Item = &Name> {
        self.loaded.iter()
    }

    /// Whether `reticle` is in the tool.
    #[must_use]
    pub fn is_loaded(&self, reticle: &Name) -> bool {
        self.loaded.contains(reticle)
    }

    /// The order in which the waiting jobs would run if nothing else arrived (the running job
    /// first, if any).
    #[must_use]
    pub fn planned_order(&self) -> Vec<JobId> {
        let mut q = self.clone();
        let mut order = Vec::new();
        if let Some(r) = q.running.take() {
            r.job.apply(&mut q.loaded);
            order.push(r.id);
        }
        while let Some(j) = q.start_next().map(|j| j.id) {
            order.push(j);
            if q.complete(j).is_err() {
                break;
            }
        }
        order
    }

    /// Walks the waiting jobs in FIFO order from the state after the running job, checking every
    /// reticle dependency. A hot exposure also counts as satisfied by a reticle that is in now or
    /// by any waiting check-in (it runs before the jobs it jumps, or right after that check-in).
    fn check_plan(&self) -> Result<(), JobError> {
        let mut now = self.loaded.clone();
        if let Some(r) = &self.running {
            r.job.apply(&mut now);
        }
        let mut state = now.clone();
        for j in &self.waiting {
            let reticle = j.job.reticle();
            let missing = || JobError::ReticleNotIn {
                reticle: reticle.clone(),
                job: j.id.to_string(),
            };
            match &j.job {
                ToolJob::CheckIn { .. } => {
                    if state.contains(reticle) {
                        return Err(JobError::ReticleAlreadyIn {
                            reticle: reticle.clone(),
                        });
                    }
                }
                ToolJob::CheckOut { .. } => {
                    if !state.contains(reticle) {
                        return Err(missing());
                    }
                }
                ToolJob::Expose { .. } if j.job.is_hot() => {
                    let checked_in_later = self
                        .waiting
                        .iter()
                        .any(|c| matches!(&c.job, ToolJob::CheckIn { reticle: r } if r == reticle));
                    if !(now.contains(reticle) || state.contains(reticle) || checked_in_later) {
                        return Err(missing());
                    }
                }
                ToolJob::Expose { .. } => {
                    if !state.contains(reticle) {
                        return Err(missing());
                    }
                }
            }
            j.job.apply(&mut state);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
