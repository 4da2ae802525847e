//! The typed event stream: what happened, when, and how long it took.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::error::Failure;
use crate::health::Health;
use crate::report::ExitReason;
use crate::signal::Signal;

/// Something that happened in a system.
#[derive(Clone, Debug)]
pub struct Event {
    /// The system's name.
    pub system: Arc<str>,
    /// Wall-clock time of the event.
    pub at: SystemTime,
    /// Time since the system was built, on tokio's clock (so it is exact on a paused clock).
    pub elapsed: Duration,
    /// What happened.
    pub kind: EventKind,
}

/// Which lifecycle step a failure or timeout belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// While `start` ran.
    Start,
    /// While running (a spawned task, or [`Context::fail`](crate::Context::fail)).
    Run,
    /// While `stop` ran, or the tasks it waited for.
    Stop,
}

/// What happened.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum EventKind {
    /// The system begins to start its components (`generation` counts in-process restarts).
    SystemStarting {
        /// 0 for the first start, then 1, 2… after each restart.
        generation: u64,
    },
    /// Every mandatory component is started.
    SystemStarted {
        /// From `SystemStarting` to now.
        took: Duration,
    },
    /// Shutdown begins: readiness is already false.
    SystemStopping {
        /// Why the system stops, in words.
        reason: Arc<str>,
    },
    /// The shutdown delay begins: traffic is still served while load balancers catch up.
    ShutdownDelay {
        /// How long.
        delay: Duration,
    },
    /// The system stopped; nothing is left running.
    SystemStopped {
        /// From the start of the stop phase to now.
        took: Duration,
        /// The exit code the process will end with.
        exit_code: u8,
        /// Why it stopped.
        reason: ExitReason,
    },
    /// An in-process restart: every component is stopped, then started again.
    Restarting {
        /// Who asked: a component's name, or `None` for a signal or the handle.
        requested_by: Option<Arc<str>>,
    },
    /// A signal was received.
    SignalReceived {
        /// Which.
        signal: Signal,
    },
    /// Readiness changed.
    ReadinessChanged {
        /// Ready now?
        ready: bool,
        /// Why, in words.
        reason: Arc<str>,
    },
    /// A component reported its health.
    HealthChanged {
        /// The component.
        component: Arc<str>,
        /// Its health now.
        health: Health,
    },
    /// A component's `start` begins: all its dependencies are started.
    ComponentStarting {
        /// The component.
        component: Arc<str>,
    },
    /// A component's `start` returned its resource.
    ComponentStarted {
        /// The component.
        component: Arc<str>,
        /// How long `start` took.
        took: Duration,
    },
    /// A component failed.
    ComponentFailed {
        /// The component.
        component: Arc<str>,
        /// In which step.
        step: Step,
        /// Why.
        failure: Failure,
    },
    /// An ignorable component failed to start and is left out; its dependents receive `None`.
    ComponentSkipped {
        /// The component.
        component: Arc<str>,
        /// Why it failed.
        failure: Failure,
    },
    /// A start in flight was cancelled because the system began shutting down.
    ComponentCancelled {
        /// The component.
        component: Arc<str>,
    },
    /// A component's stop begins: every component that depends on it has stopped.
    ComponentStopping {
        /// The component.
        component: Arc<str>,
    },
    /// A component stopped (its `stop` returned and its tasks ended).
    ComponentStopped {
        /// The component.
        component: Arc<str>,
        /// How long the stop took.
        took: Duration,
    },
    /// A component's start or stop outlived its timeout and was abandoned.
    ComponentTimedOut {
        /// The component.
        component: Arc<str>,
        /// In which step.
        step: Step,
        /// The timeout.
        after: Duration,
    },
    /// An ignorable component asked to stop or restart the system; ignorable components are
    /// not obeyed.
    RequestIgnored {
        /// The component.
        component: Arc<str>,
        /// What it asked, in words.
        request: &'static str,
    },
}

impl EventKind {
    /// A short stable name, e.g. `component_started`, used as the `event` field in logs.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::SystemStarting { .. } => "system_starting",
            EventKind::SystemStarted { .. } => "system_started",
            EventKind::SystemStopping { .. } => "system_stopping",
            EventKind::ShutdownDelay { .. } => "shutdown_delay",
            EventKind::SystemStopped { .. } => "system_stopped",
            EventKind::Restarting { .. } => "restarting",
            EventKind::SignalReceived { .. } => "signal_received",
            EventKind::ReadinessChanged { .. } => "readiness_changed",
            EventKind::HealthChanged { .. } => "health_changed",
            EventKind::ComponentStarting { .. } => "component_starting",
            EventKind::ComponentStarted { .. } => "component_started",
            EventKind::ComponentFailed { .. } => "component_failed",
            EventKind::ComponentSkipped { .. } => "component_skipped",
            EventKind::ComponentCancelled { .. } => "component_cancelled",
            EventKind::ComponentStopping { .. } => "component_stopping",
            EventKind::ComponentStopped { .. } => "component_stopped",
            EventKind::ComponentTimedOut { .. } => "component_timed_out",
            EventKind::RequestIgnored { .. } => "request_ignored",
        }
    }

    /// The component the event is about, if any.
    pub fn component(&self) -> Option<&str> {
        match self {
            EventKind::HealthChanged { component, .. }
            | EventKind::ComponentStarting { component }
            | EventKind::ComponentStarted { component, .. }
            | EventKind::ComponentFailed { component, .. }
            | EventKind::ComponentSkipped { component, .. }
            | EventKind::ComponentCancelled { component }
            | EventKind::ComponentStopping { component }
            | EventKind::ComponentStopped { component, .. }
            | EventKind::ComponentTimedOut { component, .. }
            | EventKind::RequestIgnored { component, .. } => Some(component),
            _ => None,
        }
    }
}

/// A subscription to a system's events; see [`System::events`](crate::System::events).
///
/// It receives every event emitted after it was created. A subscriber that falls more than
/// 4096 events behind misses the oldest ones; [`missed`](EventStream::missed) counts them.
#[derive(Debug)]
pub struct EventStream {
    rx: broadcast::Receiver<Event>,
    missed: u64,
}

impl EventStream {
    /// The next event, or `None` once the system is dropped and every event was read.
    ///
    /// # Cancel safety
    /// Cancel safe: an event is not lost if the future is dropped before it completes.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            match self.rx.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(n)) => self.missed += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Waits for the first event for which `f` is true and returns it; `None` if the stream
    /// ends first. Handy in tests: `events.wait_for(|e| matches!(e.kind, …)).await`.
    pub async fn wait_for(&mut self, mut f: impl FnMut(&Event) -> bool) -> Option<Event> {
        while let Some(event) = self.recv().await {
            if f(&event) {
                return Some(event);
            }
        }
        None
    }

    /// How many events this subscriber missed by falling behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

/// Emits events to subscribers and, when enabled, to `tracing`.
#[derive(Debug)]
pub(crate) struct Bus {
    /// Made at the first subscription: a system nobody subscribes to allocates no buffer.
    tx: std::sync::OnceLock<broadcast::Sender<Event>>,
    system: Arc<str>,
    origin: Instant,
    log: bool,
}

impl Bus {
    pub(crate) fn new(system: Arc<str>, log: bool) -> Self {
        Self {
            tx: std::sync::OnceLock::new(),
            system,
            origin: Instant::now(),
            log,
        }
    }

    pub(crate) fn subscribe(&self) -> EventStream {
        EventStream {
            rx: self
                .tx
                .get_or_init(|| broadcast::Sender::new(4096))
                .subscribe(),
            missed: 0,
        }
    }

    pub(crate) fn emit(&self, kind: EventKind) {
        let event = Event {
            system: self.system.clone(),
            at: SystemTime::now(),
            elapsed: self.origin.elapsed(),
            kind,
        };
        if self.log {
            log(&event);
        }
        if let Some(tx) = self.tx.get() {
            // No subscriber left is not an error.
            let _ = tx.send(event);
        }
    }
}

fn millis(d: &Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Sends one event through `tracing`, with structured fields.
fn log(event: &Event) {
    use tracing::{error, info, warn};
    let system = &*event.system;
    let name = event.kind.name();
    match &event.kind {
        EventKind::SystemStarting { generation } => {
            info!(system, event = name, generation, "system starting")
        }
        EventKind::SystemStarted { took } => {
            info!(
                system,
                event = name,
                took_ms = millis(took),
                "system started"
            )
        }
        EventKind::SystemStopping { reason } => {
            info!(system, event = name, reason = &**reason, "system stopping")
        }
        EventKind::ShutdownDelay { delay } => {
            info!(
                system,
                event = name,
                delay_ms = millis(delay),
                "shutdown delay: still serving"
            )
        }
        EventKind::SystemStopped {
            took,
            exit_code,
            reason,
        } => info!(
            system,
            event = name,
            took_ms = millis(took),
            exit_code,
            reason = %reason,
            "system stopped"
        ),
        EventKind::Restarting { requested_by } => info!(
            system,
            event = name,
            requested_by = requested_by.as_deref(),
            "system restarting"
        ),
        EventKind::SignalReceived { signal } => {
            info!(
                system,
                event = name,
                signal = signal.name(),
                "signal received"
            )
        }
        EventKind::ReadinessChanged { ready, reason } => {
            info!(
                system,
                event = name,
                ready,
                reason = &**reason,
                "readiness changed"
            )
        }
        EventKind::HealthChanged { component, health } => {
            info!(system, event = name, component = &**component, health = %health, "health changed")
        }
        EventKind::ComponentStarting { component } => {
            info!(
                system,
                event = name,
                component = &**component,
                "component starting"
            )
        }
        EventKind::ComponentStarted { component, took } => info!(
            system,
            event = name,
            component = &**component,
            took_ms = millis(took),
            "component started"
        ),
        EventKind::ComponentFailed {
            component,
            step,
            failure,
        } => error!(
            system,
            event = name,
            component = &**component,
            step = ?step,
            error = %failure,
            "component failed"
        ),
        EventKind::ComponentSkipped { component, failure } => warn!(
            system,
            event = name,
            component = &**component,
            error = %failure,
            "ignorable component skipped"
        ),
        EventKind::ComponentCancelled { component } => {
            info!(
                system,
                event = name,
                component = &**component,
                "component start cancelled"
            )
        }
        EventKind::ComponentStopping { component } => {
            info!(
                system,
                event = name,
                component = &**component,
                "component stopping"
            )
        }
        EventKind::ComponentStopped { component, took } => info!(
            system,
            event = name,
            component = &**component,
            took_ms = millis(took),
            "component stopped"
        ),
        EventKind::ComponentTimedOut {
            component,
            step,
            after,
        } => error!(
            system,
            event = name,
            component = &**component,
            step = ?step,
            after_ms = millis(after),
            "component timed out and was abandoned"
        ),
        EventKind::RequestIgnored { component, request } => warn!(
            system,
            event = name,
            component = &**component,
            request,
            "ignorable component's request ignored"
        ),
    }
}
