//! A built system: start it in-process, or run it as the process's main job.

use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::builder::{Spec, SystemBuilder};
use crate::component::Erased;
use crate::deps::{Key, Missing, Resources, Table};
use crate::event::{Bus, EventStream};
use crate::health::{ComponentStatus, Health, Phase, State, Status, StatusCell};
use crate::notify::Notifier;
use crate::report::{ExitReason, Report};
use crate::settings::Settings;
use crate::signal::{self, Signal};
use crate::supervisor::{Origin, Request, Supervisor};

/// Identifies a builder and the system built from it, so a key cannot be used with another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SystemId(u64);

impl SystemId {
    pub(crate) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Runs when [`System::run`] ends; see [`SystemBuilder::before_exit`].
pub(crate) type ExitHook = Box<dyn FnOnce() + Send + 'static>;

pub(crate) type ResolveFn = Box<
    dyn Fn(&Table<'_>) -> Result<Box<dyn std::any::Any + Send>, Missing> + Send + Sync + 'static,
>;

/// One component of a built system.
pub(crate) struct Node {
    pub(crate) spec: Spec,
    pub(crate) start_timeout: Option<Duration>,
    pub(crate) stop_timeout: Option<Duration>,
    /// The nodes it depends on (present ones, deduplicated).
    pub(crate) deps: Vec<usize>,
    pub(crate) resolve: ResolveFn,
    pub(crate) component: Arc<tokio::sync::Mutex<Box<dyn Erased>>>,
    /// Its index in `Status::components`.
    pub(crate) index: usize,
}

impl Node {
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.spec.name
    }

    pub(crate) fn ignorable(&self) -> bool {
        self.spec.necessity == crate::builder::Necessity::Ignorable
    }
}

pub(crate) struct Inner {
    pub(crate) id: SystemId,
    pub(crate) name: Arc<str>,
    /// Indexed by node; `None` for a removed component.
    pub(crate) nodes: Vec<Option<Node>>,
    /// For each node, the present nodes that depend on it.
    pub(crate) dependents: Vec<Vec<usize>>,
    pub(crate) settings: Settings,
    pub(crate) status: Arc<StatusCell>,
    /// Whether a supervisor is running this system now.
    pub(crate) active: AtomicBool,
    /// Notified when a supervisor of this system ends.
    pub(crate) ended: tokio::sync::Notify,
}

impl Inner {
    pub(crate) fn bus(&self) -> &Arc<Bus> {
        self.status.bus()
    }

    pub(crate) fn node(&self, node: usize) -> Option<&Node> {
        self.nodes.get(node).and_then(Option::as_ref)
    }

    pub(crate) fn present(&self) -> impl Iterator<Item = (usize, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i, n)))
    }
}

/// A validated system of components, ready to start.
///
/// ```
/// use orderly::System;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut builder = System::builder("hello");
/// let greeting = builder.add_fn("greeting", (), |(), _ctx| async {
///     Ok::<_, std::io::Error>(String::from("hello"))
/// });
/// let shout = builder.add_fn("shout", greeting, |greeting: String, _ctx| async move {
///     Ok::<_, std::io::Error>(greeting.to_uppercase())
/// });
///
/// let running = builder.build()?.start().await?;
/// assert_eq!(running.resource(shout).as_deref(), Some("HELLO"));
/// let report = running.stop().await;
/// assert!(report.is_clean());
/// # Ok(())
/// # }
/// ```
///
/// A system starts once: `start` and `run` consume it, so starting twice does not compile.
///
/// ```compile_fail
/// # async fn twice(system: orderly::System) {
/// let first = system.start().await;
/// let second = system.start().await; // error: use of moved value
/// # }
/// ```
pub struct System {
    pub(crate) inner: Arc<Inner>,
    /// Set while this system runs nested in another (see `nested.rs`).
    pub(crate) child: Option<crate::nested::Child>,
    pub(crate) exit_hooks: Vec<ExitHook>,
}

impl fmt::Debug for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("System")
            .field("name", &self.inner.name)
            .field("components", &self.inner.present().count())
            .finish()
    }
}

impl System {
    /// Starts describing a system named `name`.
    pub fn builder(name: impl Into<Arc<str>>) -> SystemBuilder {
        SystemBuilder::new(name.into())
    }

    pub(crate) fn new(
        id: SystemId,
        name: Arc<str>,
        mut nodes: Vec<Option<Node>>,
        settings: Settings,
        log_events: bool,
        exit_hooks: Vec<ExitHook>,
    ) -> Self {
        let mut dependents = vec![Vec::new(); nodes.len()];
        let mut components = Vec::new();
        for (i, node) in nodes.iter_mut().enumerate() {
            let Some(node) = node else { continue };
            node.index = components.len();
            components.push(ComponentStatus {
                name: node.name().clone(),
                state: State::Pending,
                health: Health::Healthy,
                ignorable: node.ignorable(),
                foundation: node.spec.layer == crate::builder::Layer::Foundation,
                started_in: None,
                stopped_in: None,
                failure: None,
            });
            for &dep in &node.deps {
                dependents[dep].push(i);
            }
        }
        let bus = Arc::new(Bus::new(name.clone(), log_events));
        let status = Status {
            system: name.clone(),
            phase: Phase::Created,
            started: false,
            components,
        };
        Self {
            child: None,
            exit_hooks,
            inner: Arc::new(Inner {
                id,
                name,
                nodes,
                dependents,
                settings,
                status: Arc::new(StatusCell::new(status, bus)),
                active: AtomicBool::new(false),
                ended: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The system's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Subscribes to the system's events; subscribe before `start` to see them all.
    pub fn events(&self) -> EventStream {
        self.inner.bus().subscribe()
    }

    /// The system's status, updated as it changes.
    pub fn status(&self) -> watch::Receiver<Status> {
        self.inner.status.subscribe()
    }

    /// Spawns the supervisor, which tells the service manager about its progress through
    /// `notifier` (only the outermost system has one); `None` if a supervisor is already
    /// running this system.
    pub(crate) fn launch(&self, notifier: Option<Notifier>) -> Option<Launched> {
        if self.inner.active.swap(true, Ordering::AcqRel) {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (published, resources) = watch::channel(None);
        let mut supervisor = Supervisor::new(self.inner.clone(), rx, tx.clone(), published);
        if let Some(notifier) = notifier {
            supervisor = supervisor.notifying(notifier);
        }
        Some(Launched {
            requests: tx,
            resources,
            supervisor: tokio::spawn(supervisor.run()),
        })
    }

    /// The notifier of systemd's protocol, when `NOTIFY_SOCKET` asked for one at `build()`.
    fn notifier(&self) -> Option<Notifier> {
        let target = self.inner.settings.notify.clone()?;
        Some(Notifier::new(self.inner.name.clone(), target))
    }

    /// Starts every component in dependency order, concurrently where the graph allows, and
    /// returns once all mandatory components are started. Never touches signals and never exits
    /// the process: for tests and for embedding. Speaks systemd's notify protocol when
    /// `NOTIFY_SOCKET` is set, as [`run`](System::run) does.
    ///
    /// On failure, the components already started have been stopped in reverse order and the
    /// error carries the report.
    pub async fn start(self) -> Result<Running, StartError> {
        let Some(launched) = self.launch(self.notifier()) else {
            return Err(StartError::already_running(&self.inner));
        };
        launched.started(self.inner).await
    }

    /// Runs the system as the process's main job: owns the process's signals, starts every
    /// component, runs until a stop signal, a stop request or a failure, stops everything in
    /// reverse order within the deadline, logs the [`Report`], and returns the exit code.
    ///
    /// SIGTERM and SIGINT start the graceful shutdown; a second one while stopping exits at once
    /// with 128 + the signal's number. SIGHUP restarts in-process when
    /// [`SighupPolicy::Restart`](crate::SighupPolicy::Restart) is set. A forced exit (second
    /// signal, or the global deadline passed) calls `std::process::exit` after logging the
    /// report, so that no abandoned task can hold the process open.
    ///
    /// Only one system per process owns the signals: a system nested in another never does,
    /// and a second concurrent `run` fails with the invalid-system exit code.
    ///
    /// With `NOTIFY_SOCKET` set, it tells systemd when it is ready, reloading and stopping, and
    /// pings its watchdog; see the crate docs' *systemd* section.
    ///
    /// The hooks added with [`SystemBuilder::before_exit`] run last, on every path.
    pub async fn run(mut self) -> ExitCode {
        let hooks = std::mem::take(&mut self.exit_hooks);
        let end = self.run_to_end().await;
        for hook in hooks {
            hook();
        }
        match end {
            End::Return(code) => ExitCode::from(code),
            End::Exit(code) => std::process::exit(i32::from(code)),
        }
    }

    /// Everything `run` does but the exit hooks and the forced exit.
    async fn run_to_end(self) -> End {
        let codes = self.inner.settings.exit_codes;
        let Some(_owner) = signal::Ownership::acquire() else {
            tracing::error!(
                system = &*self.inner.name,
                "another system already owns this process's signals; nest this system instead"
            );
            return End::Return(codes.invalid_system);
        };
        let mut signals = match signal::Listener::install() {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(system = &*self.inner.name, %error, "cannot install signal handlers");
                return End::Return(codes.failure);
            }
        };
        let Some(mut launched) = self.launch(self.notifier()) else {
            tracing::error!(system = &*self.inner.name, "system is already running");
            return End::Return(codes.invalid_system);
        };
        let mut stop_signals = 0;
        let report = loop {
            tokio::select! {
                joined = &mut launched.supervisor => break report_of(&self.inner, joined),
                signal = signals.recv() => {
                    let _ = launched.requests.send(Request::Signal(signal));
                    if signal.stops() {
                        stop_signals += 1;
                    }
                    if stop_signals >= 2 {
                        // The supervisor abandons everything at once; give it a moment to
                        // say so, but never wait on it.
                        let joined = tokio::time::timeout(Duration::from_millis(200), &mut launched.supervisor).await;
                        if let Ok(joined) = joined {
                            report_of(&self.inner, joined).log();
                        }
                        return End::Exit(codes.code(&ExitReason::Forced(signal), false));
                    }
                }
            }
        };
        report.log();
        if matches!(
            report.reason,
            ExitReason::Forced(_) | ExitReason::DeadlineExceeded { .. }
        ) {
            return End::Exit(report.exit_code);
        }
        End::Return(report.exit_code)
    }
}

/// How [`System::run`] ends the process.
enum End {
    /// Return the exit code from `main`.
    Return(u8),
    /// Exit at once: abandoned tasks must not hold the process open.
    Exit(u8),
}

pub(crate) struct Launched {
    pub(crate) requests: mpsc::UnboundedSender<Request>,
    pub(crate) resources: watch::Receiver<Option<Resources>>,
    pub(crate) supervisor: JoinHandle<Report>,
}

impl Launched {
    /// Waits until the system is running (or has stopped).
    pub(crate) async fn started(mut self, inner: Arc<Inner>) -> Result<Running, StartError> {
        // A system that reached `Running` and already stopped again (a component asked at once)
        // did start: hand out the handle, whose `wait` returns the report.
        let running = self.resources.wait_for(Option::is_some).await.is_ok()
            || inner.status.subscribe().borrow().started;
        if running {
            Ok(Running {
                inner,
                requests: self.requests,
                resources: self.resources,
                supervisor: Some(self.supervisor),
            })
        } else {
            let report = report_of(&inner, (&mut self.supervisor).await);
            Err(StartError(Box::new(report)))
        }
    }
}

/// Turns the supervisor's end into a report, also if it panicked (a bug in orderly).
pub(crate) fn report_of(inner: &Inner, joined: Result<Report, tokio::task::JoinError>) -> Report {
    joined.unwrap_or_else(|error| {
        let failure = if error.is_panic() {
            crate::error::Failure::from_panic(&*error.into_panic())
        } else {
            crate::error::Failure::new(crate::error::FailureKind::Cancelled)
        };
        failed_before_start(inner, Arc::from("orderly supervisor"), failure)
    })
}

/// A report for a system that failed before any component ran.
fn failed_before_start(
    inner: &Inner,
    component: Arc<str>,
    failure: crate::error::Failure,
) -> Report {
    let reason = ExitReason::Failed { component, failure };
    Report {
        system: inner.name.clone(),
        exit_code: inner.settings.exit_codes.code(&reason, false),
        reason,
        components: Vec::new(),
        start_took: Duration::ZERO,
        stop_took: Duration::ZERO,
        restarts: 0,
    }
}

/// A system that started and runs in this process; see [`System::start`].
///
/// Dropping it asks the system to stop (in the background); call [`stop`](Running::stop) to
/// wait for the stop and get the report.
#[must_use = "dropping a Running system stops it"]
pub struct Running {
    inner: Arc<Inner>,
    requests: mpsc::UnboundedSender<Request>,
    resources: watch::Receiver<Option<Resources>>,
    supervisor: Option<JoinHandle<Report>>,
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("system", &self.inner.name)
            .field("phase", &self.inner.status.subscribe().borrow().phase)
            .finish()
    }
}

impl Running {
    /// The resources of the running components (of the latest start, after a restart).
    pub fn resources(&self) -> Resources {
        self.resources
            .borrow()
            .clone()
            .unwrap_or_else(|| Resources {
                system: self.inner.id,
                table: Arc::from(Vec::new()),
            })
    }

    /// The resource of the component `key` names; `None` if it is not running.
    pub fn resource<R: Clone + Send + Sync + 'static>(&self, key: Key<R>) -> Option<R> {
        self.resources().get(key)
    }

    /// The system's events from now on.
    pub fn events(&self) -> EventStream {
        self.inner.bus().subscribe()
    }

    /// The system's status, updated as it changes.
    pub fn status(&self) -> watch::Receiver<Status> {
        self.inner.status.subscribe()
    }

    /// Asks the system to stop, as SIGTERM would (readiness false, shutdown delay, stop).
    pub fn shutdown(&self) {
        let _ = self.requests.send(Request::Shutdown {
            from: Origin::Handle,
        });
    }

    /// Asks the system to restart in-process.
    pub fn restart(&self) {
        let _ = self.requests.send(Request::Restart {
            from: Origin::Handle,
        });
    }

    /// Delivers `signal` as if the process had received it: for tests of signal handling that
    /// must not send real signals. A second stop signal forces the stop, and the report says so.
    pub fn signal(&self, signal: Signal) {
        let _ = self.requests.send(Request::Signal(signal));
    }

    /// Stops the system gracefully and returns the report.
    pub async fn stop(mut self) -> Report {
        self.shutdown();
        self.join().await
    }

    /// Waits until the system stops by itself (a component's request, a failure, a signal
    /// delivered with [`signal`](Running::signal)) and returns the report.
    pub async fn wait(mut self) -> Report {
        self.join().await
    }

    async fn join(&mut self) -> Report {
        // Only `stop` and `wait` call this, and both consume the handle.
        let handle = self
            .supervisor
            .take()
            .expect("the supervisor is joined once");
        report_of(&self.inner, handle.await)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.supervisor.is_some() {
            let _ = self.requests.send(Request::Shutdown {
                from: Origin::Handle,
            });
        }
    }
}

/// A system failed to start; the report says which component and why, and what was stopped.
#[derive(Debug)]
pub struct StartError(Box<Report>);

impl StartError {
    pub(crate) fn from_report(report: Report) -> Self {
        Self(Box::new(report))
    }

    fn already_running(inner: &Inner) -> Self {
        let failure = crate::error::Failure::error("the system is already running".into());
        Self::from_report(failed_before_start(inner, inner.name.clone(), failure))
    }

    /// The report.
    pub fn report(&self) -> &Report {
        &self.0
    }

    /// The report, by value.
    pub fn into_report(self) -> Report {
        *self.0
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "system '{}' did not start: {}",
            self.0.system, self.0.reason
        )
    }
}

impl std::error::Error for StartError {}
