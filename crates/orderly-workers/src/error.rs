//! The pool's errors: a job refused by `submit`, a drain that overran, invalid settings.

use std::fmt;
use std::sync::Arc;

/// A job [`Workers::submit`](crate::Workers::submit) or
/// [`Workers::try_submit`](crate::Workers::try_submit) did not accept.
#[derive(Debug, thiserror::Error)]
#[error("worker pool '{pool}' refused job '{job}': {kind}")]
pub struct SubmitError {
    pool: Arc<str>,
    job: Arc<str>,
    kind: SubmitErrorKind,
}

/// Why a job was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitErrorKind {
    /// The pool is stopping (or stopped): it takes no new job.
    Stopping,
    /// The queue is full (only [`WhenFull::Reject`](crate::WhenFull::Reject) and `try_submit`).
    QueueFull,
}

impl fmt::Display for SubmitErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitErrorKind::Stopping => f.write_str("the pool is stopping"),
            SubmitErrorKind::QueueFull => f.write_str("the queue is full"),
        }
    }
}

impl SubmitError {
    pub(crate) fn new(pool: Arc<str>, job: Arc<str>, kind: SubmitErrorKind) -> Self {
        Self { pool, job, kind }
    }

    /// The pool's name (its component's name).
    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// The refused job's name.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Why it was refused.
    pub fn kind(&self) -> SubmitErrorKind {
        self.kind
    }

    /// Whether the pool refused because it is stopping.
    pub fn is_stopping(&self) -> bool {
        self.kind == SubmitErrorKind::Stopping
    }

    /// Whether the pool refused because its queue is full.
    pub fn is_queue_full(&self) -> bool {
        self.kind == SubmitErrorKind::QueueFull
    }
}

/// A worker pool's stop that did not finish every job: returned by the component's `stop`, so
/// the system's [`Report`](orderly::Report) names the pool and the jobs.
#[derive(Debug, thiserror::Error)]
#[error("worker pool '{pool}': {kind}")]
pub struct PoolError {
    pool: Arc<str>,
    kind: PoolErrorKind,
}

/// What went wrong with a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolErrorKind {
    /// Jobs were still running at the drain deadline (aborted), and jobs accepted but never
    /// started; each list names the jobs.
    Overran {
        /// The jobs aborted at the deadline.
        running: Vec<Arc<str>>,
        /// The accepted jobs that never started.
        abandoned: Vec<Arc<str>>,
    },
}

impl fmt::Display for PoolErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolErrorKind::Overran { running, abandoned } => {
                f.write_str("drain timed out; jobs still running (aborted): ")?;
                names(f, running)?;
                if !abandoned.is_empty() {
                    f.write_str("; never started: ")?;
                    names(f, abandoned)?;
                }
                Ok(())
            }
        }
    }
}

fn names(f: &mut fmt::Formatter<'_>, names: &[Arc<str>]) -> fmt::Result {
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "'{name}'")?;
    }
    Ok(())
}

impl PoolError {
    pub(crate) fn new(pool: Arc<str>, kind: PoolErrorKind) -> Self {
        Self { pool, kind }
    }

    /// The pool's name.
    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// What went wrong.
    pub fn kind(&self) -> &PoolErrorKind {
        &self.kind
    }

    /// Whether the drain timed out with jobs still running.
    pub fn is_overrun(&self) -> bool {
        matches!(self.kind, PoolErrorKind::Overran { .. })
    }

    /// The accepted jobs that never started (empty unless [`is_overrun`](Self::is_overrun)).
    pub fn abandoned(&self) -> &[Arc<str>] {
        match &self.kind {
            PoolErrorKind::Overran { abandoned, .. } => abandoned,
        }
    }

    /// The jobs aborted at the drain deadline (empty unless [`is_overrun`](Self::is_overrun)).
    pub fn overran(&self) -> &[Arc<str>] {
        match &self.kind {
            PoolErrorKind::Overran { running, .. } => running,
        }
    }
}

/// Invalid [`WorkerPoolBuilder`](crate::WorkerPoolBuilder) settings: every problem at once.
#[derive(Debug, thiserror::Error)]
#[error("invalid worker pool settings: {}", .problems.join("; "))]
pub struct BuildError {
    problems: Vec<String>,
}

impl BuildError {
    pub(crate) fn new(problems: Vec<String>) -> Self {
        Self { problems }
    }

    /// Each problem, naming the setting.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}
