//! Health: what components report, and the startup / readiness / liveness the system derives.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::Failure;
use crate::event::{Bus, EventKind};

/// A component's own view of its health, reported with
/// [`Context::set_health`](crate::Context::set_health).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Health {
    /// Working normally (the default once started).
    #[default]
    Healthy,
    /// Working, with reduced service; still counts as ready.
    Degraded(Arc<str>),
    /// Not working (e.g. its database is unreachable). A required component that is unhealthy
    /// makes the system not ready; liveness is not affected.
    Unhealthy(Arc<str>),
}

impl Health {
    /// A degraded state with a reason.
    pub fn degraded(reason: impl Into<Arc<str>>) -> Self {
        Health::Degraded(reason.into())
    }

    /// An unhealthy state with a reason.
    pub fn unhealthy(reason: impl Into<Arc<str>>) -> Self {
        Health::Unhealthy(reason.into())
    }

    /// Whether this is [`Health::Unhealthy`].
    pub fn is_unhealthy(&self) -> bool {
        matches!(self, Health::Unhealthy(_))
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Health::Healthy => f.write_str("healthy"),
            Health::Degraded(why) => write!(f, "degraded: {why}"),
            Health::Unhealthy(why) => write!(f, "unhealthy: {why}"),
        }
    }
}

/// Where the system is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Built, not started.
    Created,
    /// Starting components.
    Starting,
    /// Every mandatory component started.
    Running,
    /// Shutting down (shutdown delay, then stopping components); also during a restart.
    Stopping,
    /// Everything stopped.
    Stopped,
}

impl Phase {
    /// Every phase, in lifecycle order (for a metric with one series per phase).
    pub const ALL: &'static [Phase] = &[
        Phase::Created,
        Phase::Starting,
        Phase::Running,
        Phase::Stopping,
        Phase::Stopped,
    ];

    /// The phase in lower case, e.g. `running`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Created => "created",
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
            Phase::Stopped => "stopped",
        }
    }
}

/// Where a component is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Waiting for its dependencies (or for the system to start).
    Pending,
    /// `start` is running.
    Starting,
    /// Started.
    Running,
    /// `stop` is running.
    Stopping,
    /// Stopped.
    Stopped,
    /// Failed (start, run or stop); see the status's `failure`.
    Failed,
    /// Ignorable, failed to start, left out.
    Skipped,
}

impl State {
    /// Every state, in lifecycle order (for a metric with one series per state).
    pub const ALL: &'static [State] = &[
        State::Pending,
        State::Starting,
        State::Running,
        State::Stopping,
        State::Stopped,
        State::Failed,
        State::Skipped,
    ];

    /// The state in lower case, e.g. `running`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Failed => "failed",
            State::Skipped => "skipped",
        }
    }
}

/// One component in a [`Status`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ComponentStatus {
    /// The component's name.
    pub name: Arc<str>,
    /// Where it is.
    pub state: State,
    /// What it last reported.
    pub health: Health,
    /// Whether it is ignorable.
    pub ignorable: bool,
    /// Whether it is a foundation ([`Spec::foundation`](crate::Spec::foundation)): it stops
    /// after every regular component.
    pub foundation: bool,
    /// How long its last start took.
    pub started_in: Option<Duration>,
    /// How long its last stop took.
    pub stopped_in: Option<Duration>,
    /// Its last failure.
    pub failure: Option<Failure>,
}

/// A snapshot of a system: its phase and every component's state and health.
///
/// Get one from [`Context::status`](crate::Context::status) or
/// [`Running::status`](crate::Running::status); it is a `watch` channel, so a probe endpoint
/// reads the latest value and a test can `changed().await` on it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Status {
    /// The system's name.
    pub system: Arc<str>,
    /// Where the system is.
    pub phase: Phase,
    /// Whether the system has reached `Running` at least once (the startup probe).
    pub started: bool,
    /// The components, in the order they were added.
    pub components: Vec<ComponentStatus>,
}

/// A probe's answer: pass or fail, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Whether the probe passes (HTTP 200) or fails (503).
    pub ok: bool,
    /// Why, in a few words.
    pub reason: String,
}

impl Status {
    /// Startup: passes once every mandatory component has started.
    pub fn startup(&self) -> Probe {
        if self.started {
            Probe {
                ok: true,
                reason: "started".into(),
            }
        } else {
            Probe {
                ok: false,
                reason: format!("system is {}", self.phase.as_str()),
            }
        }
    }

    fn is_ready(&self) -> bool {
        self.phase == Phase::Running
            && !self
                .components
                .iter()
                .any(|c| !c.ignorable && c.health.is_unhealthy())
    }

    /// Readiness: passes while running, not shutting down, with no required component
    /// unhealthy. False the instant shutdown begins, and never true again during the drain.
    pub fn readiness(&self) -> Probe {
        if self.phase != Phase::Running {
            return Probe {
                ok: false,
                reason: format!("system is {}", self.phase.as_str()),
            };
        }
        let unhealthy: Vec<String> = self
            .components
            .iter()
            .filter(|c| !c.ignorable && c.health.is_unhealthy())
            .map(|c| format!("{} is {}", c.name, c.health))
            .collect();
        if unhealthy.is_empty() {
            Probe {
                ok: true,
                reason: "ready".into(),
            }
        } else {
            Probe {
                ok: false,
                reason: unhealthy.join("; "),
            }
        }
    }

    /// Liveness: passes whenever the runtime can answer, including while draining. It never
    /// depends on a backing service, so an outage of the database restarts no process.
    pub fn liveness(&self) -> Probe {
        Probe {
            ok: true,
            reason: format!("alive ({})", self.phase.as_str()),
        }
    }

    /// The component named `name`.
    pub fn component(&self, name: &str) -> Option<&ComponentStatus> {
        self.components.iter().find(|c| &*c.name == name)
    }
}

/// The shared, watched status of one system; emits `ReadinessChanged` when readiness flips.
#[derive(Debug)]
pub(crate) struct StatusCell {
    tx: watch::Sender<Status>,
    bus: Arc<Bus>,
}

impl StatusCell {
    pub(crate) fn new(status: Status, bus: Arc<Bus>) -> Self {
        Self {
            tx: watch::Sender::new(status),
            bus,
        }
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Status> {
        self.tx.subscribe()
    }

    pub(crate) fn bus(&self) -> &Arc<Bus> {
        &self.bus
    }

    /// Changes the status; emits `ReadinessChanged` if readiness flipped.
    pub(crate) fn update(&self, f: impl FnOnce(&mut Status)) {
        self.update_then(f, None);
    }

    /// Changes the status; emits `first` (if any), then `ReadinessChanged` if readiness flipped.
    fn update_then(&self, f: impl FnOnce(&mut Status), first: Option<EventKind>) {
        let mut flipped = None;
        self.tx.send_modify(|status| {
            let before = status.is_ready();
            f(status);
            if status.is_ready() != before {
                flipped = Some(status.readiness());
            }
        });
        if let Some(kind) = first {
            self.bus.emit(kind);
        }
        if let Some(probe) = flipped {
            self.bus.emit(EventKind::ReadinessChanged {
                ready: probe.ok,
                reason: probe.reason.into(),
            });
        }
    }

    /// Changes one component's status (by its index in `Status::components`).
    pub(crate) fn component(&self, index: usize, f: impl FnOnce(&mut ComponentStatus)) {
        self.update(|status| {
            if let Some(c) = status.components.get_mut(index) {
                f(c);
            }
        });
    }

    pub(crate) fn set_health(&self, index: usize, health: Health) {
        let current = self
            .tx
            .borrow()
            .components
            .get(index)
            .map(|c| (c.name.clone(), c.health.clone()));
        let Some((component, before)) = current else {
            return;
        };
        if before == health {
            return;
        }
        let event = EventKind::HealthChanged {
            component,
            health: health.clone(),
        };
        self.update_then(
            |status| {
                if let Some(c) = status.components.get_mut(index) {
                    c.health = health;
                }
            },
            Some(event),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{Phase, State};

    /// Each variant's place in `ALL`; the match fails to compile when a variant is added, so
    /// `ALL` cannot silently fall behind the enum.
    fn state_index(state: State) -> usize {
        match state {
            State::Pending => 0,
            State::Starting => 1,
            State::Running => 2,
            State::Stopping => 3,
            State::Stopped => 4,
            State::Failed => 5,
            State::Skipped => 6,
        }
    }

    fn phase_index(phase: Phase) -> usize {
        match phase {
            Phase::Created => 0,
            Phase::Starting => 1,
            Phase::Running => 2,
            Phase::Stopping => 3,
            Phase::Stopped => 4,
        }
    }

    #[test]
    fn all_lists_every_variant_once_in_order() {
        assert_eq!(State::ALL.len(), 7);
        for (i, state) in State::ALL.iter().enumerate() {
            assert_eq!(state_index(*state), i, "{state:?}");
        }
        assert_eq!(Phase::ALL.len(), 5);
        for (i, phase) in Phase::ALL.iter().enumerate() {
            assert_eq!(phase_index(*phase), i, "{phase:?}");
        }
    }
}
