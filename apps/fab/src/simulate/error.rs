//! What can stop a simulation.

use super::summary::Summary;

/// `fab simulate` could not run its scenario, or stopped because the fab went away.
#[derive(Debug, thiserror::Error)]
#[error("fab simulate: {kind}")]
pub struct SimulateError {
    kind: SimulateErrorKind,
    summary: Option<Box<Summary>>,
}

/// Why a simulation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimulateErrorKind {
    /// The scenario is invalid; every problem, each naming its option.
    #[error("invalid scenario: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The fab refused or dropped a connection (down, or stopping mid-run).
    #[error("cannot reach the fab at {url}: {reason}")]
    Unreachable {
        /// The base URL (it never holds a secret: tokens travel in headers).
        url: String,
        /// What the connection did.
        reason: String,
    },
    /// The fab refused a setup step (configuration, spec draft, approval or release).
    #[error("setting up the scenario failed at {step}: HTTP {status}: {body}")]
    Setup {
        /// The step.
        step: &'static str,
        /// The answer's status.
        status: u16,
        /// The answer's body (the fab's error never holds a token).
        body: String,
    },
}

impl SimulateError {
    pub(crate) fn new(kind: SimulateErrorKind) -> Self {
        Self {
            kind,
            summary: None,
        }
    }

    pub(crate) fn with_summary(mut self, summary: Summary) -> Self {
        self.summary = Some(Box::new(summary));
        self
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> &SimulateErrorKind {
        &self.kind
    }

    /// Whether the scenario was invalid (nothing was sent).
    #[must_use]
    pub fn is_invalid(&self) -> bool {
        matches!(self.kind, SimulateErrorKind::Invalid(_))
    }

    /// Whether the fab could not be reached (down, or stopped mid-run).
    #[must_use]
    pub fn is_unreachable(&self) -> bool {
        matches!(self.kind, SimulateErrorKind::Unreachable { .. })
    }

    /// Whether the fab refused a setup step.
    #[must_use]
    pub fn is_setup(&self) -> bool {
        matches!(self.kind, SimulateErrorKind::Setup { .. })
    }

    /// What had been done when the fab went away, if anything had started.
    #[must_use]
    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_deref()
    }

    /// The process exit code: 78 for an invalid scenario (like invalid configuration), else 1.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        if self.is_invalid() { 78 } else { 1 }
    }
}
