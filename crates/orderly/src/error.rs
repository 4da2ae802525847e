//! Errors: what a component can fail with, and how a failure is reported.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The error a component's `start` or `stop` returns. Any error type converts into it with `?`.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Marks an error as invalid configuration.
///
/// A component whose `start` fails with this error (directly, not wrapped) ends the process with
/// the *invalid configuration* exit code (78 by default) instead of the component-failure code.
/// Configuration components wrap their errors in it so that operators can tell a bad
/// deployment from a crash.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct InvalidConfig(BoxError);

impl InvalidConfig {
    /// Wraps the error that explains what is wrong with the configuration.
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self(error.into())
    }
}

/// Gives a failure its own exit code.
///
/// A component whose `start`, spawned task or [`Context::fail`](crate::Context::fail) fails
/// with this error (directly, not wrapped) ends the process with `code` instead of the
/// component-failure code. Made for one-off tasks whose non-zero results mean something to the
/// caller, e.g. a consistency report that exits 2 when it found problems (see
/// [`SystemBuilder::add_task`](crate::SystemBuilder::add_task)):
///
/// ```
/// # use orderly::{BoxError, ExitWith};
/// # fn check(late_orders: usize) -> Result<(), BoxError> {
/// if late_orders > 0 {
///     return Err(ExitWith::new(2, format!("{late_orders} late orders")).into());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ExitWith {
    code: u8,
    error: BoxError,
}

impl ExitWith {
    /// A failure explained by `error` that ends the process with `code`.
    pub fn new(code: u8, error: impl Into<BoxError>) -> Self {
        Self {
            code,
            error: error.into(),
        }
    }

    /// The exit code.
    pub fn code(&self) -> u8 {
        self.code
    }
}

impl fmt::Display for ExitWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Transparent: the code is in the report's exit code, the reason is the error's.
        self.error.fmt(f)
    }
}

impl StdError for ExitWith {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.error.source()
    }
}

/// Why a component failed: the cause plus, for a failure in a spawned task, the task's name.
#[derive(Clone, Debug)]
pub struct Failure {
    kind: FailureKind,
    task: Option<Arc<str>>,
}

/// The cause of a [`Failure`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum FailureKind {
    /// `start`, `stop` or a task returned an error.
    Error(Arc<dyn StdError + Send + Sync + 'static>),
    /// `start`, `stop` or a task panicked; the panic message.
    Panic(String),
    /// `start` or `stop` did not finish within its timeout and was abandoned.
    Timeout(Duration),
    /// A required dependency is not available (an ignorable component that failed, or one that
    /// was removed); names the dependency.
    DependencyUnavailable(Arc<str>),
    /// Still stopping when the global shutdown deadline passed or a second signal forced the
    /// exit; the stop was abandoned.
    Abandoned,
    /// The start was cancelled because the system began shutting down.
    Cancelled,
}

impl Failure {
    pub(crate) fn new(kind: FailureKind) -> Self {
        Self { kind, task: None }
    }

    pub(crate) fn error(error: BoxError) -> Self {
        Self::new(FailureKind::Error(Arc::from(error)))
    }

    pub(crate) fn in_task(mut self, task: Arc<str>) -> Self {
        self.task = Some(task);
        self
    }

    /// The cause.
    pub fn kind(&self) -> &FailureKind {
        &self.kind
    }

    /// The spawned task that failed, when the failure came from one (see
    /// [`Context::spawn`](crate::Context::spawn)).
    pub fn task(&self) -> Option<&str> {
        self.task.as_deref()
    }

    /// Whether the start or stop outlived its timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, FailureKind::Timeout(_))
    }

    /// Whether the component panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, FailureKind::Panic(_))
    }

    /// Whether the failure is an [`InvalidConfig`] error.
    pub fn is_invalid_config(&self) -> bool {
        matches!(&self.kind, FailureKind::Error(e) if e.is::<InvalidConfig>())
    }

    /// The exit code the failure asks for: an [`ExitWith`] error's, or, for a nested system
    /// that failed, the code its own report ended with (so a child's `ExitWith` or invalid
    /// configuration reaches the process unchanged).
    pub fn exit_code(&self) -> Option<u8> {
        let FailureKind::Error(e) = &self.kind else {
            return None;
        };
        if let Some(exit) = e.downcast_ref::<ExitWith>() {
            Some(exit.code())
        } else if let Some(nested) = e.downcast_ref::<crate::nested::NestedError>() {
            Some(nested.report().exit_code)
        } else {
            e.downcast_ref::<crate::system::StartError>()
                .map(|start| start.report().exit_code)
        }
    }

    pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "non-string panic payload".to_owned()
        };
        Self::new(FailureKind::Panic(message))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(task) = &self.task {
            write!(f, "task '{task}' ")?;
        }
        match &self.kind {
            FailureKind::Error(e) if self.task.is_some() => write!(f, "failed: {e}"),
            FailureKind::Error(e) => write!(f, "{e}"),
            FailureKind::Panic(message) => write!(f, "panicked: {message}"),
            FailureKind::Timeout(after) => write!(f, "timed out after {after:?}"),
            FailureKind::DependencyUnavailable(dep) => {
                write!(f, "required dependency '{dep}' is unavailable")
            }
            FailureKind::Abandoned => f.write_str("abandoned while stopping"),
            FailureKind::Cancelled => f.write_str("start cancelled by shutdown"),
        }
    }
}

impl StdError for Failure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.kind {
            // Display already shows the error itself; expose what *it* wraps.
            FailureKind::Error(e) => e.source(),
            _ => None,
        }
    }
}
