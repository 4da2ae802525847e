//! Shared fakes and helpers: a recording [`Log`], a configurable [`Probe`] component, a
//! component that hands out its own [`Context`], readers of the event stream, and a stand-in
//! for systemd's notify socket ([`Manager`]).

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use orderly::{
    BoxError, Component, Context, Env, Event, EventStream, Key, Report, Running, Spec, System,
    SystemBuilder,
};
use serde_json::Value;
use tokio::sync::{Barrier, Notify};

/// A builder that ignores the process environment, so a `SHUTDOWN_*` variable set where the
/// tests run cannot change them.
pub(crate) fn builder(name: &str) -> SystemBuilder {
    orderly::System::builder(name).env(Env::empty())
}

/// Builds `b`, which must be valid.
pub(crate) fn build(b: SystemBuilder) -> System {
    b.build().expect("a valid system")
}

/// Builds `b` and subscribes to its events before anything happens.
pub(crate) fn observed(b: SystemBuilder) -> (System, EventStream) {
    let system = build(b);
    let events = system.events();
    (system, events)
}

/// Starts `system`, which must start.
pub(crate) async fn started(system: System) -> Running {
    system.start().await.expect("the system starts")
}

/// Starts `system`, which must fail to start, and returns the report.
pub(crate) async fn failed(system: System) -> Report {
    system
        .start()
        .await
        .expect_err("the start fails")
        .into_report()
}

/// Fails the test instead of hanging it when `future` can never complete. On the paused clock
/// the hour passes at once when nothing else can run (a deadlock, a lost wake-up).
pub(crate) async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(3600), future)
        .await
        .expect("stuck: nothing left to run")
}

/// An ordered record of what the components did, shared between them and the test.
#[derive(Clone, Debug, Default)]
pub(crate) struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub(crate) fn push(&self, line: impl Into<String>) {
        self.lines().push(line.into());
    }

    /// Everything recorded so far, emptying the log.
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines())
    }

    /// How many times `line` was recorded.
    pub(crate) fn count(&self, line: &str) -> usize {
        self.lines().iter().filter(|l| *l == line).count()
    }

    fn lines(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a probe does at the end of its `start` or `stop`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Act {
    #[default]
    Succeed,
    /// Returns an error: "`name` refused to start" / "`name` refused to stop".
    Fail,
    /// Panics: "`name` start exploded" / "`name` stop exploded".
    Panic,
    /// Never returns.
    Hang,
}

/// What a probe does in one step (`start` or `stop`): wait for a barrier, then for a gate,
/// then sleep, then act. Made from an [`Act`] or one of the constructors.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    act: Act,
    barrier: Option<Arc<Barrier>>,
    gate: Option<Arc<Notify>>,
    sleep: Duration,
}

impl Plan {
    /// Sleeps `duration` on tokio's clock first.
    pub(crate) fn sleep(duration: Duration) -> Self {
        Self::default().then_sleep(duration)
    }

    /// Waits first until every party of `barrier` arrived.
    pub(crate) fn barrier(barrier: &Arc<Barrier>) -> Self {
        Self {
            barrier: Some(barrier.clone()),
            ..Self::default()
        }
    }

    /// Waits first until the test notifies `gate`.
    pub(crate) fn gate(gate: &Arc<Notify>) -> Self {
        Self {
            gate: Some(gate.clone()),
            ..Self::default()
        }
    }

    pub(crate) fn then_sleep(mut self, duration: Duration) -> Self {
        self.sleep = duration;
        self
    }

    pub(crate) fn then(mut self, act: Act) -> Self {
        self.act = act;
        self
    }

    async fn run(&self) {
        if let Some(barrier) = &self.barrier {
            barrier.wait().await;
        }
        if let Some(gate) = &self.gate {
            gate.notified().await;
        }
        if !self.sleep.is_zero() {
            tokio::time::sleep(self.sleep).await;
        }
    }
}

impl From<Act> for Plan {
    fn from(act: Act) -> Self {
        Self::default().then(act)
    }
}

/// A component that records "start `name`" when its start succeeds and "stop `name`" when its
/// stop is called, and can be made slow, failing, panicking or hanging in either step. Its
/// resource is its name; it accepts any dependencies.
#[derive(Debug)]
pub(crate) struct Probe<D = ()> {
    name: &'static str,
    log: Log,
    start: Plan,
    stop: Plan,
    _deps: PhantomData<fn(D)>,
}

impl<D> Probe<D> {
    pub(crate) fn new(name: &'static str, log: &Log) -> Self {
        Self {
            name,
            log: log.clone(),
            start: Plan::default(),
            stop: Plan::default(),
            _deps: PhantomData,
        }
    }

    pub(crate) fn on_start(mut self, plan: impl Into<Plan>) -> Self {
        self.start = plan.into();
        self
    }

    pub(crate) fn on_stop(mut self, plan: impl Into<Plan>) -> Self {
        self.stop = plan.into();
        self
    }
}

impl<D: Send + 'static> Component for Probe<D> {
    type Deps = D;
    type Resource = &'static str;

    async fn start(&mut self, _deps: D, _ctx: Context) -> Result<&'static str, BoxError> {
        self.start.run().await;
        let name = self.name;
        match self.start.act {
            Act::Succeed => {
                self.log.push(format!("start {name}"));
                Ok(name)
            }
            Act::Fail => Err(format!("{name} refused to start").into()),
            Act::Panic => panic!("{name} start exploded"),
            Act::Hang => std::future::pending().await,
        }
    }

    async fn stop(&mut self) -> Result<(), BoxError> {
        let name = self.name;
        self.log.push(format!("stop {name}"));
        self.stop.run().await;
        match self.stop.act {
            Act::Succeed => Ok(()),
            Act::Fail => Err(format!("{name} refused to stop").into()),
            Act::Panic => panic!("{name} stop exploded"),
            Act::Hang => std::future::pending().await,
        }
    }
}

/// Adds a component whose resource is its own [`Context`], so the test can act as the
/// component: report health, request a stop or a restart.
pub(crate) fn add_handle(b: &mut SystemBuilder, spec: impl Into<Spec>) -> Key<Context> {
    b.add_fn(spec, (), |(), ctx: Context| async move {
        Ok::<_, BoxError>(ctx)
    })
}

/// Reads events up to and including the next one named `name` (see `EventKind::name`).
pub(crate) async fn until(events: &mut EventStream, name: &str) -> Vec<Event> {
    let mut seen = Vec::new();
    while let Some(event) = within(events.recv()).await {
        let last = event.kind.name() == name;
        seen.push(event);
        if last {
            break;
        }
    }
    seen
}

/// Reads events up to and including `SystemStopped`.
pub(crate) async fn until_stopped(events: &mut EventStream) -> Vec<Event> {
    until(events, "system_stopped").await
}

/// Waits for the next event whose [`trace`] line is `wanted`, e.g. `component_stopping db`.
pub(crate) async fn next(events: &mut EventStream, wanted: &str) -> Event {
    within(events.wait_for(|e| line(e) == wanted))
        .await
        .unwrap_or_else(|| panic!("the stream ended before `{wanted}`"))
}

/// One line per event, e.g. `component_stopping db` or `system_started`.
pub(crate) fn trace(events: &[Event]) -> Vec<String> {
    events.iter().map(line).collect()
}

/// The components of the events named `name`, in order.
pub(crate) fn components(events: &[Event], name: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind.name() == name)
        .filter_map(|e| e.kind.component().map(str::to_owned))
        .collect()
}

/// When (on the paused clock, since the system was built) the first event `name [component]`
/// of [`trace`] happened.
pub(crate) fn at(events: &[Event], wanted: &str) -> Duration {
    events
        .iter()
        .find(|e| line(e) == wanted)
        .unwrap_or_else(|| panic!("no event `{wanted}` in {:#?}", trace(events)))
        .elapsed
}

/// The position of the first event `name [component]` of [`trace`].
pub(crate) fn position(events: &[Event], wanted: &str) -> usize {
    let lines = trace(events);
    lines
        .iter()
        .position(|l| l == wanted)
        .unwrap_or_else(|| panic!("no event `{wanted}` in {lines:#?}"))
}

fn line(event: &Event) -> String {
    match event.kind.component() {
        Some(component) => format!("{} {component}", event.kind.name()),
        None => event.kind.name().to_owned(),
    }
}

/// A `tracing` writer into memory, one JSON object a line.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut buffer = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Makes this the `tracing` subscriber of the current thread (JSON lines) until the guard
    /// drops. On a current-thread runtime the supervisor and the components log here too.
    pub(crate) fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// The message of every captured line at `level` (e.g. `WARN`).
    pub(crate) fn messages(&self, level: &str) -> Vec<String> {
        let buffer = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buffer)
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line"))
            .filter(|line| line["level"] == level)
            .map(|line| line["fields"]["message"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// The `fields` of every captured line that has an `event` field.
    pub(crate) fn events(&self) -> Vec<Value> {
        let buffer = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buffer)
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line"))
            .filter_map(|line| line.get("fields").cloned())
            .filter(|fields| fields.get("event").is_some())
            .collect()
    }
}

/// A stand-in for systemd's notify socket: a datagram socket bound in a temporary folder (or in
/// Linux's abstract namespace) whose messages the tests read, each as one string of
/// `KEY=VALUE` lines.
#[derive(Debug)]
pub(crate) struct Manager {
    /// What `NOTIFY_SOCKET` says: the path, or `@name`.
    address: String,
    socket: tokio::net::UnixDatagram,
    queue: Queue,
    _dir: Option<tempfile::TempDir>,
}

/// A guard against a hung test, never an expectation of speed: on the paused clock it passes at
/// once when nothing else can happen.
const GUARD: Duration = Duration::from_secs(30);

impl Manager {
    /// Binds a socket file in a new temporary folder.
    pub(crate) fn bind() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("notify");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind the socket");
        let address = path.to_str().expect("a UTF-8 path").to_owned();
        Self::new(socket, address, Some(dir))
    }

    /// Binds a socket in the abstract namespace, under a name no other test uses.
    #[cfg(target_os = "linux")]
    pub(crate) fn bind_abstract() -> Self {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("orderly-test-{}-{n}", std::process::id());
        let address = SocketAddr::from_abstract_name(&name).expect("an abstract name");
        let socket = UnixDatagram::bind_addr(&address).expect("bind the abstract socket");
        Self::new(socket, format!("@{name}"), None)
    }

    fn new(
        socket: std::os::unix::net::UnixDatagram,
        address: String,
        dir: Option<tempfile::TempDir>,
    ) -> Self {
        socket.set_nonblocking(true).expect("a non-blocking socket");
        let queue = Queue(Arc::new(socket.try_clone().expect("clone the socket")));
        Self {
            address,
            socket: tokio::net::UnixDatagram::from_std(socket).expect("a tokio socket"),
            queue,
            _dir: dir,
        }
    }

    /// What `NOTIFY_SOCKET` must say to reach this socket.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// An environment with `NOTIFY_SOCKET` set to this socket, and `more`.
    pub(crate) fn env(&self, more: &[(&str, &str)]) -> Env {
        let mut pairs = vec![("NOTIFY_SOCKET", self.address())];
        pairs.extend_from_slice(more);
        Env::from_pairs(pairs)
    }

    /// The next message.
    pub(crate) async fn next(&self) -> String {
        let mut buffer = vec![0; 4096];
        let len = tokio::time::timeout(GUARD, self.socket.recv(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("no notification within {GUARD:?}"))
            .expect("receive a notification");
        String::from_utf8(buffer[..len].to_vec()).expect("a UTF-8 notification")
    }

    /// The messages up to and including the first that has the line `line`.
    pub(crate) async fn until(&self, line: &str) -> Vec<String> {
        let mut messages = Vec::new();
        loop {
            let message = self.next().await;
            let last = message.lines().any(|l| l == line);
            messages.push(message);
            if last {
                return messages;
            }
        }
    }

    /// A reader of the messages already received, for a component to look at.
    pub(crate) fn queue(&self) -> Queue {
        self.queue.clone()
    }
}

/// The receiving end of a [`Manager`]'s socket, read without waiting.
#[derive(Clone, Debug)]
pub(crate) struct Queue(Arc<std::os::unix::net::UnixDatagram>);

impl Queue {
    /// Every message received and not read yet.
    pub(crate) fn drain(&self) -> Vec<String> {
        let mut messages = Vec::new();
        let mut buffer = vec![0; 4096];
        loop {
            match self.0.recv(&mut buffer) {
                Ok(len) => messages.push(String::from_utf8_lossy(&buffer[..len]).into_owned()),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return messages,
                Err(error) => panic!("read the notify socket: {error}"),
            }
        }
    }
}

/// The state changes among `messages`, in order: their `READY=1`, `RELOADING=1` and
/// `STOPPING=1` lines (`STATUS=` and `WATCHDOG=1` left out).
pub(crate) fn states(messages: &[String]) -> Vec<&str> {
    messages
        .iter()
        .flat_map(|m| m.lines())
        .filter(|line| ["READY=1", "RELOADING=1", "STOPPING=1"].contains(line))
        .collect()
}

/// How many of `messages` have the line `line`.
pub(crate) fn count(messages: &[String], line: &str) -> usize {
    messages
        .iter()
        .filter(|m| m.lines().any(|l| l == line))
        .count()
}
