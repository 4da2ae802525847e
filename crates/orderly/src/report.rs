//! The shutdown report and the exit-code table.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Failure;
use crate::signal::Signal;

/// The process exit codes, one per way a system can end. Override them with
/// [`SystemBuilder::exit_codes`](crate::SystemBuilder::exit_codes).
///
/// | how it ended | code |
/// |---|---|
/// | clean stop (signal, [`Context::shutdown`](crate::Context::shutdown), handle) | 0 |
/// | a mandatory component failed (start, run or stop; timeouts included) | 1 |
/// | a mandatory component failed with an [`ExitWith`](crate::ExitWith) error | its code |
/// | a nested system failed (it is a component of this one) | the code of its own report |
/// | the system definition is invalid (`build()` found problems) | 70 (`EX_SOFTWARE`) |
/// | invalid configuration (an [`InvalidConfig`](crate::InvalidConfig) start failure, or a bad `SHUTDOWN_*` variable) | 78 (`EX_CONFIG`) |
/// | the global shutdown deadline passed with components still stopping | 124 |
/// | a second stop signal while stopping | 128 + signal number (143 for SIGTERM, 130 for SIGINT) |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExitCodes {
    /// A mandatory component failed.
    pub failure: u8,
    /// The system definition is invalid.
    pub invalid_system: u8,
    /// The configuration is invalid.
    pub invalid_config: u8,
    /// The global shutdown deadline passed.
    pub deadline: u8,
}

impl Default for ExitCodes {
    fn default() -> Self {
        Self {
            failure: 1,
            invalid_system: 70,
            invalid_config: 78,
            deadline: 124,
        }
    }
}

impl ExitCodes {
    /// The code for a report's outcome.
    pub(crate) fn code(&self, reason: &ExitReason, stop_failed: bool) -> u8 {
        match reason {
            ExitReason::Requested { .. } | ExitReason::Signal(_) if stop_failed => self.failure,
            ExitReason::Requested { .. } | ExitReason::Signal(_) => 0,
            ExitReason::StartFailed { failure, .. } => match failure.exit_code() {
                Some(code) => code,
                None if failure.is_invalid_config() => self.invalid_config,
                None => self.failure,
            },
            ExitReason::Failed { failure, .. } => failure.exit_code().unwrap_or(self.failure),
            ExitReason::DeadlineExceeded { .. } => self.deadline,
            ExitReason::Forced(signal) => 128 + signal.number(),
        }
    }
}

/// Why a system stopped.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ExitReason {
    /// Stop was requested: by a component ([`Context::shutdown`](crate::Context::shutdown)),
    /// or by the handle (`None`).
    Requested {
        /// The component that asked, if one did.
        by: Option<Arc<str>>,
    },
    /// A stop signal (SIGTERM, SIGINT).
    Signal(Signal),
    /// A mandatory component failed to start.
    StartFailed {
        /// The component.
        component: Arc<str>,
        /// Why.
        failure: Failure,
    },
    /// A mandatory component failed while running.
    Failed {
        /// The component.
        component: Arc<str>,
        /// Why.
        failure: Failure,
    },
    /// The global shutdown deadline passed; names what was still stopping.
    DeadlineExceeded {
        /// The components still stopping (abandoned).
        still_stopping: Vec<Arc<str>>,
    },
    /// A second stop signal forced the exit.
    Forced(Signal),
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Requested { by: Some(by) } => write!(f, "stop requested by '{by}'"),
            ExitReason::Requested { by: None } => f.write_str("stop requested"),
            ExitReason::Signal(signal) => write!(f, "{signal} received"),
            ExitReason::StartFailed { component, failure } => {
                write!(f, "component '{component}' failed to start: {failure}")
            }
            ExitReason::Failed { component, failure } => {
                write!(f, "component '{component}' failed: {failure}")
            }
            ExitReason::DeadlineExceeded { still_stopping } => {
                f.write_str("shutdown deadline exceeded; still stopping: ")?;
                write_names(f, still_stopping)
            }
            ExitReason::Forced(signal) => write!(f, "second {signal}: forced exit"),
        }
    }
}

fn write_names(f: &mut fmt::Formatter<'_>, names: &[Arc<str>]) -> fmt::Result {
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "'{name}'")?;
    }
    Ok(())
}

/// How one component ended.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// Never started (a dependency failed first, or the system stopped before its turn).
    NotStarted,
    /// Its start was cancelled by shutdown.
    Cancelled,
    /// Its start failed.
    StartFailed(Failure),
    /// Ignorable; its start failed and it was left out.
    Skipped(Failure),
    /// Started and stopped cleanly.
    Stopped,
    /// Its stop failed, timed out or was abandoned.
    StopFailed(Failure),
    /// Started but never stopped: the deadline passed or a second signal came first.
    NotStopped,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::NotStarted => f.write_str("not started"),
            Outcome::Cancelled => f.write_str("start cancelled"),
            Outcome::StartFailed(failure) => write!(f, "start failed: {failure}"),
            Outcome::Skipped(failure) => write!(f, "skipped: {failure}"),
            Outcome::Stopped => f.write_str("stopped"),
            Outcome::StopFailed(failure) => write!(f, "stop failed: {failure}"),
            Outcome::NotStopped => f.write_str("not stopped"),
        }
    }
}

/// One component in a [`Report`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ComponentReport {
    /// The component's name.
    pub name: Arc<str>,
    /// How long its start ran, if it ran: also a failed or cancelled attempt.
    pub started_in: Option<Duration>,
    /// How long its stop took, if it stopped (or until it was abandoned).
    pub stopped_in: Option<Duration>,
    /// How it ended.
    pub outcome: Outcome,
}

/// The one structured summary of a run: why the system stopped, the exit code, and each
/// component's start and stop. [`Running::stop`](crate::Running::stop) returns it and
/// [`System::run`](crate::System::run) logs it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Report {
    /// The system's name.
    pub system: Arc<str>,
    /// Why it stopped.
    pub reason: ExitReason,
    /// The exit code the process ends with.
    pub exit_code: u8,
    /// Each component, in the order they were added (of the last generation, after restarts).
    pub components: Vec<ComponentReport>,
    /// How long the last start took (until running, or until it failed).
    pub start_took: Duration,
    /// How long the stop took (from the decision to stop to the last component stopped,
    /// including the shutdown delay).
    pub stop_took: Duration,
    /// How many in-process restarts happened.
    pub restarts: u32,
}

impl Report {
    /// Whether the system ended cleanly: exit code 0.
    pub fn is_clean(&self) -> bool {
        self.exit_code == 0
    }

    /// The component named `name`.
    pub fn component(&self, name: &str) -> Option<&ComponentReport> {
        self.components.iter().find(|c| &*c.name == name)
    }

    /// The report on one line, for a structured log field.
    pub fn summary(&self) -> String {
        use fmt::Write;
        let mut out = String::new();
        for (i, c) in self.components.iter().enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            let _ = write!(out, "{}: {}", c.name, c.outcome);
            if let Some(d) = c.started_in {
                let _ = write!(out, ", start {d:?}");
            }
            if let Some(d) = c.stopped_in {
                let _ = write!(out, ", stop {d:?}");
            }
        }
        out
    }

    /// Logs the report through `tracing` as one event.
    pub fn log(&self) {
        let system = &*self.system;
        let exit_code = self.exit_code;
        let reason = self.reason.to_string();
        let components = self.summary();
        let start_ms = self.start_took.as_secs_f64() * 1000.0;
        let stop_ms = self.stop_took.as_secs_f64() * 1000.0;
        macro_rules! report {
            ($level:ident) => {
                tracing::$level!(
                    system,
                    event = "shutdown_report",
                    exit_code,
                    reason,
                    start_ms,
                    stop_ms,
                    restarts = self.restarts,
                    components,
                    "shutdown report"
                )
            };
        }
        if self.is_clean() {
            report!(info);
        } else {
            report!(error);
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "system '{}' stopped: {} (exit code {})",
            self.system, self.reason, self.exit_code
        )?;
        for c in &self.components {
            write!(f, "  {:<20} {}", c.name, c.outcome)?;
            if let Some(d) = c.started_in {
                write!(f, "; start {d:?}")?;
            }
            if let Some(d) = c.stopped_in {
                write!(f, "; stop {d:?}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
