//! The supervisor: one task per running system that starts the components along the graph,
//! handles requests and signals while running, and stops the components in reverse.
//!
//! Every request (a component's `shutdown`/`fail`/`restart`, a signal, the handle) arrives on
//! one channel, so there is exactly one place that decides what happens next.

mod flight;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::builder::Role;
use crate::context::Context;
use crate::deps::{Missing, Resources, Slot, Table};
use crate::error::{Failure, FailureKind};
use crate::event::{EventKind, Step};
use crate::health::{Health, Phase, State};
use crate::notify::{Notice, Notifier};
use crate::report::{ComponentReport, ExitReason, Outcome, Report};
use crate::signal::{SighupPolicy, Signal};
use crate::system::Inner;

use self::flight::{Flight, Landed};

/// Who asked.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Origin {
    /// The `Running` handle (tests, embedding).
    Handle,
    /// The parent system stopping a nested one: no shutdown delay.
    Parent,
    /// A component (or one of its tasks), in one generation of the system.
    Component { node: usize, generation: u64 },
}

#[derive(Debug)]
pub(crate) enum Request {
    Shutdown { from: Origin },
    Fail { from: Origin, failure: Failure },
    Restart { from: Origin },
    Signal(Signal),
}

/// What to do after the running phase (or an interrupted start).
enum Next {
    Stop { reason: ExitReason, delay: bool },
    Restart { by: Option<Arc<str>> },
}

/// How the stop phase ended.
enum Stopped {
    Done,
    Deadline(Vec<Arc<str>>),
    Forced(Signal),
}

pub(crate) struct Supervisor {
    inner: Arc<Inner>,
    rx: mpsc::UnboundedReceiver<Request>,
    tx: mpsc::UnboundedSender<Request>,
    published: watch::Sender<Option<Resources>>,
    generation: u64,
    table: Vec<Option<Slot>>,
    contexts: Vec<Option<Context>>,
    reports: Vec<ComponentReport>,
    /// A task failure that arrived while the component was stopping.
    late: Vec<Option<Failure>>,
    pending_restart: Option<Option<Arc<str>>>,
    /// Why the components are being stopped; `None` while a restart stops them.
    stopping_for: Option<ExitReason>,
    restarts: u32,
    /// Tells systemd about the phases (the outermost system only).
    notifier: Option<Arc<Notifier>>,
}

/// Marks the system inactive when the supervisor ends (or is dropped).
struct Active(Arc<Inner>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0
            .active
            .store(false, std::sync::atomic::Ordering::Release);
        self.0.ended.notify_waiters();
    }
}

impl Drop for Supervisor {
    /// Dropped before it finished (a nested system abandoned by its parent): the tasks of the
    /// components it still holds go with it. After a normal end it holds none.
    fn drop(&mut self) {
        for ctx in self.contexts.iter().flatten() {
            ctx.begin_stop();
            ctx.abort_tasks();
        }
    }
}

impl Supervisor {
    pub(crate) fn new(
        inner: Arc<Inner>,
        rx: mpsc::UnboundedReceiver<Request>,
        tx: mpsc::UnboundedSender<Request>,
        published: watch::Sender<Option<Resources>>,
    ) -> Self {
        let n = inner.nodes.len();
        Self {
            inner,
            rx,
            tx,
            published,
            generation: 0,
            table: vec![None; n],
            contexts: vec![None; n],
            reports: Vec::new(),
            late: vec![None; n],
            pending_restart: None,
            stopping_for: None,
            restarts: 0,
            notifier: None,
        }
    }

    /// Tells the service manager about the phases through `notifier`, and pings its watchdog.
    pub(crate) fn notifying(mut self, notifier: Notifier) -> Self {
        self.notifier = Some(Arc::new(notifier));
        self
    }

    /// Sends `notice` to the service manager, if there is one; see `notify.rs`.
    async fn notify(&self, notice: Notice<'_>) {
        if let Some(notifier) = &self.notifier {
            notifier.send(notice).await;
        }
    }

    fn name(&self, node: usize) -> Arc<str> {
        self.inner
            .node(node)
            .map_or_else(|| Arc::from("?"), |n| n.name().clone())
    }

    fn emit(&self, kind: EventKind) {
        self.inner.bus().emit(kind);
    }

    fn set_state(&self, node: usize, f: impl FnOnce(&mut crate::health::ComponentStatus)) {
        if let Some(n) = self.inner.node(node) {
            self.inner.status.component(n.index, f);
        }
    }

    fn report(&mut self, node: usize) -> &mut ComponentReport {
        let index = self.inner.node(node).map_or(0, |n| n.index);
        &mut self.reports[index]
    }

    fn reset_generation(&mut self) {
        self.table.iter_mut().for_each(|slot| *slot = None);
        self.contexts.iter_mut().for_each(|ctx| *ctx = None);
        self.late.iter_mut().for_each(|late| *late = None);
        self.reports = self
            .inner
            .present()
            .map(|(_, node)| ComponentReport {
                name: node.name().clone(),
                started_in: None,
                stopped_in: None,
                outcome: Outcome::NotStarted,
            })
            .collect();
        self.inner.status.update(|status| {
            status.phase = Phase::Starting;
            for c in &mut status.components {
                c.state = State::Pending;
                c.health = Health::Healthy;
                c.started_in = None;
                c.stopped_in = None;
                c.failure = None;
            }
        });
    }

    pub(crate) async fn run(self) -> Report {
        match self.notifier.clone() {
            Some(notifier) => notifier.keep_alive(self.supervise()).await,
            None => self.supervise().await,
        }
    }

    async fn supervise(mut self) -> Report {
        let _active = Active(self.inner.clone());
        loop {
            self.reset_generation();
            let began = Instant::now();
            self.emit(EventKind::SystemStarting {
                generation: self.generation,
            });
            self.notify(Notice::Starting).await;
            let started = self.start_all().await;
            // The start ends here, whether it succeeded or not; the running time is not part of it.
            let start_took = began.elapsed();
            let next = match started {
                Ok(()) => {
                    let took = start_took;
                    self.emit(EventKind::SystemStarted { took });
                    self.published.send_replace(Some(Resources {
                        system: self.inner.id,
                        table: Arc::from(self.table.clone()),
                    }));
                    self.inner.status.update(|status| {
                        status.phase = Phase::Running;
                        status.started = true;
                    });
                    self.notify(Notice::Ready).await;
                    match self.pending_restart.take() {
                        Some(by) => Next::Restart { by },
                        None => self.wait_running().await,
                    }
                }
                Err(next) => next,
            };

            let stop_began = Instant::now();
            let (reason, delay) = match next {
                Next::Stop { reason, delay } => (Some(reason), delay),
                Next::Restart { by } => {
                    self.emit(EventKind::Restarting { requested_by: by });
                    (None, false)
                }
            };
            self.stopping_for = reason.clone();
            let was_running = self.inner.status.subscribe().borrow().phase == Phase::Running;
            self.inner
                .status
                .update(|status| status.phase = Phase::Stopping);
            self.emit(EventKind::SystemStopping {
                reason: reason
                    .as_ref()
                    .map_or_else(|| Arc::from("restart"), |r| Arc::from(r.to_string())),
            });
            // Before the delay and the first stop, so the manager knows at once.
            self.notify(reason.as_ref().map_or(Notice::Reloading, Notice::Stopping))
                .await;

            let mut stopped = Stopped::Done;
            let shutdown_delay = self.inner.settings.shutdown_delay;
            if delay && was_running && !shutdown_delay.is_zero() {
                self.emit(EventKind::ShutdownDelay {
                    delay: shutdown_delay,
                });
                if let Some(signal) = self.delay(shutdown_delay).await {
                    stopped = Stopped::Forced(signal);
                    self.abandon_all(&mut Flight::<()>::new());
                }
            }
            if matches!(stopped, Stopped::Done) {
                let deadline = Instant::now() + self.inner.settings.shutdown_timeout;
                stopped = self.stop_all(deadline).await;
            }
            let stop_took = stop_began.elapsed();

            // A stop requested while a restart was stopping the components ends the restart.
            let reason = match (stopped, self.stopping_for.take()) {
                (Stopped::Forced(signal), _) => ExitReason::Forced(signal),
                (Stopped::Deadline(still_stopping), _) => {
                    ExitReason::DeadlineExceeded { still_stopping }
                }
                (Stopped::Done, Some(reason)) => reason,
                (Stopped::Done, None) => {
                    self.restarts += 1;
                    self.generation += 1;
                    continue;
                }
            };
            return self.finish(reason, start_took, stop_took);
        }
    }

    fn finish(&mut self, reason: ExitReason, start_took: Duration, stop_took: Duration) -> Report {
        let stop_failed = self
            .reports
            .iter()
            .any(|r| matches!(r.outcome, Outcome::StopFailed(_)));
        let exit_code = self.inner.settings.exit_codes.code(&reason, stop_failed);
        // Nothing runs any more: release the resources (pools, connections) the handle holds.
        self.published.send_replace(None);
        self.inner
            .status
            .update(|status| status.phase = Phase::Stopped);
        self.emit(EventKind::SystemStopped {
            took: stop_took,
            exit_code,
            reason: reason.clone(),
        });
        Report {
            system: self.inner.name.clone(),
            reason,
            exit_code,
            components: std::mem::take(&mut self.reports),
            start_took,
            stop_took,
            restarts: self.restarts,
        }
    }

    /// The requesting component, if the request is current; `None` for a stale one (from a
    /// previous generation). An ignorable component's stop/restart request is logged here.
    fn requester(&self, from: Origin, what: &'static str) -> Result<Option<Arc<str>>, ()> {
        match from {
            Origin::Handle | Origin::Parent => Ok(None),
            Origin::Component { generation, .. } if generation != self.generation => Err(()),
            Origin::Component { node, .. } => {
                let name = self.name(node);
                if self.inner.node(node).is_some_and(|n| n.ignorable()) {
                    self.emit(EventKind::RequestIgnored {
                        component: name,
                        request: what,
                    });
                    return Err(());
                }
                Ok(Some(name))
            }
        }
    }

    /// Whether a stop `from` asked waits out the shutdown delay: not when the parent stops a
    /// nested system (it had its own), nor when a one-off task ended (it receives no traffic).
    fn delays(&self, from: Origin) -> bool {
        match from {
            Origin::Handle => true,
            Origin::Parent => false,
            Origin::Component { node, .. } => self
                .inner
                .node(node)
                .is_none_or(|n| n.spec.role != Role::Task),
        }
    }

    /// Handles a request while starting or running; `Some` when it ends that phase.
    fn on_request(&mut self, request: Request) -> Option<Next> {
        match request {
            Request::Signal(signal) => {
                self.emit(EventKind::SignalReceived { signal });
                if signal.stops() {
                    return Some(Next::Stop {
                        reason: ExitReason::Signal(signal),
                        delay: true,
                    });
                }
                match self.inner.settings.sighup {
                    SighupPolicy::Restart => return Some(Next::Restart { by: None }),
                    SighupPolicy::Notify => {}
                    SighupPolicy::Ignore => tracing::info!(
                        system = &*self.inner.name,
                        "SIGHUP ignored (restart on SIGHUP is not enabled)"
                    ),
                }
                None
            }
            Request::Shutdown { from } => {
                let by = self.requester(from, "shutdown").ok()?;
                Some(Next::Stop {
                    reason: ExitReason::Requested { by },
                    delay: self.delays(from),
                })
            }
            Request::Restart { from } => {
                let by = self.requester(from, "restart").ok()?;
                Some(Next::Restart { by })
            }
            Request::Fail { from, failure } => {
                let Origin::Component { node, generation } = from else {
                    return None;
                };
                if generation != self.generation {
                    return None;
                }
                let component = self.name(node);
                self.emit(EventKind::ComponentFailed {
                    component: component.clone(),
                    step: Step::Run,
                    failure: failure.clone(),
                });
                if self.inner.node(node).is_some_and(|n| n.ignorable()) {
                    if let Some(ctx) = &self.contexts[node] {
                        ctx.set_health(Health::unhealthy(failure.to_string()));
                    }
                    return None;
                }
                let fail = failure.clone();
                self.set_state(node, |c| {
                    c.state = State::Failed;
                    c.failure = Some(fail);
                });
                Some(Next::Stop {
                    reason: ExitReason::Failed { component, failure },
                    delay: self.delays(from),
                })
            }
        }
    }

    async fn wait_running(&mut self) -> Next {
        loop {
            let Some(request) = self.rx.recv().await else {
                // Unreachable: the supervisor holds a sender.
                return Next::Stop {
                    reason: ExitReason::Requested { by: None },
                    delay: false,
                };
            };
            if let Some(next) = self.on_request(request) {
                return next;
            }
        }
    }

    /// Waits out the shutdown delay; a stop signal during it forces the exit.
    async fn delay(&mut self, delay: Duration) -> Option<Signal> {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return None,
                Some(request) = self.rx.recv() => {
                    if let Some(signal) = self.while_stopping(request) {
                        return Some(signal);
                    }
                }
            }
        }
    }

    /// Handles a request while stopping; returns the signal that forces the exit, if it is one.
    ///
    /// While a restart stops the components, the first stop signal or stop request is not a
    /// second one: it turns the restart into a graceful shutdown.
    fn while_stopping(&mut self, request: Request) -> Option<Signal> {
        let restarting = self.stopping_for.is_none();
        match request {
            Request::Signal(signal) => {
                self.emit(EventKind::SignalReceived { signal });
                if restarting && signal.stops() {
                    self.stopping_for = Some(ExitReason::Signal(signal));
                    return None;
                }
                signal.stops().then_some(signal)
            }
            Request::Shutdown { from } if restarting => {
                if let Ok(by) = self.requester(from, "shutdown") {
                    self.stopping_for = Some(ExitReason::Requested { by });
                }
                None
            }
            Request::Fail {
                from: Origin::Component { node, generation },
                failure,
            } if generation == self.generation => {
                self.emit(EventKind::ComponentFailed {
                    component: self.name(node),
                    step: Step::Stop,
                    failure: failure.clone(),
                });
                self.late[node].get_or_insert(failure);
                None
            }
            _ => None,
        }
    }

    // ----- start -----

    async fn start_all(&mut self) -> Result<(), Next> {
        let mut waiting: Vec<usize> = self
            .inner
            .nodes
            .iter()
            .map(|n| n.as_ref().map_or(usize::MAX, |n| n.deps.len()))
            .collect();
        let mut ready: Vec<usize> = (0..waiting.len())
            .filter(|&i| waiting[i] == 0)
            .rev()
            .collect();
        let mut remaining = self.inner.present().count();
        let mut flight = Flight::new();
        loop {
            while let Some(node) = ready.pop() {
                if let Err(failure) = self.launch_start(node, &mut flight) {
                    remaining -= 1;
                    self.start_failed(node, failure, &mut waiting, &mut ready, &mut flight)?;
                }
            }
            if remaining == 0 {
                return Ok(());
            }
            if flight.is_empty() {
                // Unreachable: `build()` rejects cycles, so something is always ready or flying.
                return Err(Next::Stop {
                    reason: ExitReason::StartFailed {
                        component: self.inner.name.clone(),
                        failure: Failure::error("orderly bug: start stalled".into()),
                    },
                    delay: false,
                });
            }
            tokio::select! {
                biased;
                Some(request) = self.rx.recv() => {
                    match self.on_request(request) {
                        Some(Next::Restart { by }) => { self.pending_restart = Some(by); }
                        Some(Next::Stop { reason, .. }) => {
                            self.cancel_starts(&mut flight);
                            return Err(Next::Stop { reason, delay: false });
                        }
                        None => {}
                    }
                }
                Some(Landed { node, result, took }) = flight.next() => {
                    remaining -= 1;
                    match result {
                        Ok(slot) => {
                            self.started(node, slot, took);
                            self.release_dependents(node, &mut waiting, &mut ready);
                        }
                        Err(failure) => {
                            self.report(node).started_in = Some(took);
                            self.start_failed(node, failure, &mut waiting, &mut ready, &mut flight)?;
                        }
                    }
                }
            }
        }
    }

    fn started(&mut self, node: usize, slot: Slot, took: Duration) {
        self.table[node] = Some(slot);
        self.report(node).started_in = Some(took);
        self.set_state(node, |c| {
            c.state = State::Running;
            c.started_in = Some(took);
        });
        self.emit(EventKind::ComponentStarted {
            component: self.name(node),
            took,
        });
    }

    fn release_dependents(&self, node: usize, waiting: &mut [usize], ready: &mut Vec<usize>) {
        for &dependent in &self.inner.dependents[node] {
            waiting[dependent] -= 1;
            if waiting[dependent] == 0 {
                ready.push(dependent);
            }
        }
    }

    fn launch_start(&mut self, node: usize, flight: &mut Flight<Slot>) -> Result<(), Failure> {
        let inner = self.inner.clone();
        let Some(n) = inner.node(node) else {
            return Ok(());
        };
        let deps = (n.resolve)(&Table(&self.table)).map_err(|Missing(missing)| {
            Failure::new(FailureKind::DependencyUnavailable(self.name(missing)))
        })?;
        let ctx = Context::new(
            n.name().clone(),
            Origin::Component {
                node,
                generation: self.generation,
            },
            n.index,
            self.tx.clone(),
            inner.status.clone(),
        );
        self.contexts[node] = Some(ctx.clone());
        self.set_state(node, |c| c.state = State::Starting);
        self.emit(EventKind::ComponentStarting {
            component: n.name().clone(),
        });
        let component = n.component.clone();
        flight.spawn(node, n.start_timeout, async move {
            let mut component = component.lock_owned().await;
            component.start(deps, ctx).await
        });
        Ok(())
    }

    /// A start failed: skip an ignorable component, or end the start phase.
    fn start_failed(
        &mut self,
        node: usize,
        failure: Failure,
        waiting: &mut [usize],
        ready: &mut Vec<usize>,
        flight: &mut Flight<Slot>,
    ) -> Result<(), Next> {
        if self.note_start_failure(node, &failure) {
            self.release_dependents(node, waiting, ready);
            return Ok(());
        }
        self.cancel_starts(flight);
        Err(Next::Stop {
            reason: ExitReason::StartFailed {
                component: self.name(node),
                failure,
            },
            delay: false,
        })
    }

    /// Records a failed start: its tasks aborted, its state, report and events. Returns whether
    /// the component is ignorable (skipped) rather than failed.
    fn note_start_failure(&mut self, node: usize, failure: &Failure) -> bool {
        let component = self.name(node);
        if let Some(ctx) = self.contexts[node].take() {
            ctx.begin_stop();
            ctx.abort_tasks();
        }
        if let FailureKind::Timeout(after) = failure.kind() {
            self.emit(EventKind::ComponentTimedOut {
                component: component.clone(),
                step: Step::Start,
                after: *after,
            });
        }
        let ignorable = self.inner.node(node).is_some_and(|n| n.ignorable());
        let state = if ignorable {
            State::Skipped
        } else {
            State::Failed
        };
        let fail = failure.clone();
        self.set_state(node, |c| {
            c.state = state;
            c.failure = Some(fail);
        });
        let failure = failure.clone();
        if ignorable {
            self.report(node).outcome = Outcome::Skipped(failure.clone());
            self.emit(EventKind::ComponentSkipped { component, failure });
        } else {
            self.report(node).outcome = Outcome::StartFailed(failure.clone());
            self.emit(EventKind::ComponentFailed {
                component,
                step: Step::Start,
                failure,
            });
        }
        ignorable
    }

    /// Cancels the starts in flight: their tasks are aborted, they will not be stopped. A start
    /// that has already finished is not cancelled: it started, so it will be stopped.
    fn cancel_starts(&mut self, flight: &mut Flight<Slot>) {
        while let Some(Landed { node, result, took }) = flight.try_next() {
            self.report(node).started_in = Some(took);
            match result {
                Ok(slot) => self.started(node, slot, took),
                Err(failure) => {
                    self.note_start_failure(node, &failure);
                }
            }
        }
        for (node, took) in flight.abort_all() {
            if let Some(ctx) = self.contexts[node].take() {
                ctx.begin_stop();
                ctx.abort_tasks();
            }
            let report = self.report(node);
            report.outcome = Outcome::Cancelled;
            report.started_in = Some(took);
            self.set_state(node, |c| c.state = State::Stopped);
            self.emit(EventKind::ComponentCancelled {
                component: self.name(node),
            });
        }
    }

    // ----- stop -----

    /// Stops the started components in reverse dependency order: each once every started
    /// component that depends on it has stopped.
    async fn stop_all(&mut self, deadline: Instant) -> Stopped {
        let started: Vec<bool> = self.table.iter().map(Option::is_some).collect();
        let mut blocking: Vec<usize> = (0..started.len())
            .map(|i| {
                self.inner.dependents[i]
                    .iter()
                    .filter(|&&d| started[d])
                    .count()
            })
            .collect();
        let mut ready: Vec<usize> = (0..started.len())
            .filter(|&i| started[i] && blocking[i] == 0)
            .collect();
        let mut remaining = started.iter().filter(|&&s| s).count();
        let mut flight = Flight::new();
        let deadline = tokio::time::sleep_until(deadline);
        tokio::pin!(deadline);
        loop {
            while let Some(node) = ready.pop() {
                self.launch_stop(node, &mut flight);
            }
            if remaining == 0 {
                return Stopped::Done;
            }
            tokio::select! {
                biased;
                Some(request) = self.rx.recv() => {
                    let restarting = self.stopping_for.is_none();
                    if let Some(signal) = self.while_stopping(request) {
                        self.abandon_all(&mut flight);
                        return Stopped::Forced(signal);
                    }
                    // A stop during a restart: the manager saw RELOADING=1, now it is a stop.
                    if restarting && let Some(reason) = &self.stopping_for {
                        self.notify(Notice::Stopping(reason)).await;
                    }
                }
                () = &mut deadline => {
                    let still: Vec<Arc<str>> = self.abandon_all(&mut flight);
                    return Stopped::Deadline(still);
                }
                Some(Landed { node, result, took }) = flight.next() => {
                    remaining -= 1;
                    self.table[node] = None;
                    let ctx = self.contexts[node].take();
                    let outcome = match (result, self.late[node].take()) {
                        (Ok(()), None) => Outcome::Stopped,
                        (Ok(()), Some(failure)) => Outcome::StopFailed(failure),
                        (Err(failure), _) => {
                            if let Some(ctx) = &ctx {
                                ctx.abort_tasks();
                            }
                            let component = self.name(node);
                            if let FailureKind::Timeout(after) = failure.kind() {
                                self.emit(EventKind::ComponentTimedOut { component, step: Step::Stop, after: *after });
                            } else {
                                self.emit(EventKind::ComponentFailed { component, step: Step::Stop, failure: failure.clone() });
                            }
                            Outcome::StopFailed(failure)
                        }
                    };
                    let (state, failure) = match &outcome {
                        Outcome::StopFailed(failure) => (State::Failed, Some(failure.clone())),
                        _ => (State::Stopped, None),
                    };
                    if matches!(outcome, Outcome::Stopped) {
                        self.emit(EventKind::ComponentStopped { component: self.name(node), took });
                    }
                    let report = self.report(node);
                    report.outcome = outcome;
                    report.stopped_in = Some(took);
                    self.set_state(node, |c| {
                        c.state = state;
                        c.stopped_in = Some(took);
                        if failure.is_some() {
                            c.failure = failure;
                        }
                    });
                    let deps = self.inner.node(node).map(|n| n.deps.clone()).unwrap_or_default();
                    for dep in deps {
                        if started[dep] {
                            blocking[dep] -= 1;
                            if blocking[dep] == 0 {
                                ready.push(dep);
                            }
                        }
                    }
                }
            }
        }
    }

    fn launch_stop(&mut self, node: usize, flight: &mut Flight<()>) {
        let inner = self.inner.clone();
        let Some(n) = inner.node(node) else { return };
        let Some(ctx) = self.contexts[node].clone() else {
            return;
        };
        self.set_state(node, |c| c.state = State::Stopping);
        self.emit(EventKind::ComponentStopping {
            component: n.name().clone(),
        });
        ctx.begin_stop();
        let component = n.component.clone();
        flight.spawn(node, n.stop_timeout, async move {
            let mut component = component.lock_owned().await;
            let stopped = component.stop().await;
            ctx.wait_tasks().await;
            stopped
        });
    }

    /// Abandons every stop in flight and every component not yet stopped (deadline or forced
    /// exit); returns the names of those that were stopping.
    fn abandon_all(&mut self, flight: &mut Flight<()>) -> Vec<Arc<str>> {
        let mut stopping = Vec::new();
        for (node, took) in flight.abort_all() {
            let failure = Failure::new(FailureKind::Abandoned);
            self.emit(EventKind::ComponentFailed {
                component: self.name(node),
                step: Step::Stop,
                failure: failure.clone(),
            });
            let report = self.report(node);
            report.outcome = Outcome::StopFailed(failure.clone());
            report.stopped_in = Some(took);
            self.set_state(node, |c| {
                c.state = State::Failed;
                c.failure = Some(failure);
            });
            stopping.push(self.name(node));
        }
        for node in 0..self.table.len() {
            if self.table[node].take().is_some() {
                if let Some(ctx) = self.contexts[node].take() {
                    ctx.begin_stop();
                    ctx.abort_tasks();
                }
                let report = self.report(node);
                if matches!(report.outcome, Outcome::NotStarted) {
                    report.outcome = Outcome::NotStopped;
                }
            }
        }
        stopping
    }
}
