//! Building a system: named components, their dependencies, options; validated all at once.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::component::{Component, Erased, Value, Wrapped, from_fn};
use crate::context::Context;
use crate::deps::{Dependencies, Edge, Key, Missing, Table};
use crate::error::BoxError;
use crate::notify::Target;
use crate::report::ExitCodes;
use crate::settings::{Env, SHUTDOWN_DELAY, SHUTDOWN_TIMEOUT, Settings, parse_duration};
use crate::signal::SighupPolicy;
use crate::system::{ExitHook, Node, System, SystemId};
use crate::task::Task;

/// Whether a component's failure to start fails the system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Necessity {
    /// Its failure to start stops the system (the default).
    #[default]
    Required,
    /// Its failure to start is reported and it is left out: dependents that declared it
    /// [`optional`](Key::optional) receive `None`, dependents that require it fail. Its requests
    /// to stop or restart the system are logged and not obeyed.
    Ignorable,
}

/// A component's name and how the system treats it. A plain `&str` converts into a `Spec` with
/// the defaults.
///
/// ```
/// # use orderly::Spec;
/// # use std::time::Duration;
/// let spec = Spec::new("cache").ignorable().stop_timeout(Duration::from_secs(2));
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Spec {
    pub(crate) name: Arc<str>,
    pub(crate) necessity: Necessity,
    pub(crate) layer: Layer,
    pub(crate) role: Role,
    pub(crate) start_timeout: Option<Duration>,
    pub(crate) stop_timeout: Option<Duration>,
}

/// What a component is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Role {
    /// Part of a service: runs until the system stops.
    #[default]
    Service,
    /// A one-off task: its end stops the system, without the shutdown delay (no traffic is
    /// routed to a task, so there is nothing to wait for).
    Task,
}

/// Where a component sits in the start and stop order, beyond its own dependencies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Layer {
    #[default]
    Regular,
    /// Starts before and stops after every regular component.
    Foundation,
}

impl Spec {
    /// A required component named `name`, with the system's default timeouts.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            necessity: Necessity::Required,
            layer: Layer::Regular,
            role: Role::Service,
            start_timeout: None,
            stop_timeout: None,
        }
    }

    /// Marks the component ignorable; see [`Necessity::Ignorable`].
    pub fn ignorable(mut self) -> Self {
        self.necessity = Necessity::Ignorable;
        self
    }

    /// Makes the component a *foundation*: it starts before every other component and stops
    /// after all of them, as if each depended on it. For what must outlive the rest: the
    /// logger that flushes last, the admin listener whose probes answer through the whole drain.
    /// A foundation may depend only on other foundations.
    pub fn foundation(mut self) -> Self {
        self.layer = Layer::Foundation;
        self
    }

    /// Fails the start (and so the system, unless ignorable) when `start` takes longer.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = Some(timeout);
        self
    }

    /// Abandons the stop (its task and the component's tasks are aborted, the component is
    /// named in the report) when it takes longer; the components it depends on still stop.
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = Some(timeout);
        self
    }
}

impl From<&str> for Spec {
    fn from(name: &str) -> Self {
        Spec::new(name)
    }
}

impl From<String> for Spec {
    fn from(name: String) -> Self {
        Spec::new(name)
    }
}

impl From<Arc<str>> for Spec {
    fn from(name: Arc<str>) -> Self {
        Spec::new(name)
    }
}

type Resolver =
    Box<dyn Fn(&Table<'_>) -> Result<Box<dyn Any + Send>, Missing> + Send + Sync + 'static>;

struct Entry {
    spec: Spec,
    resource: TypeId,
    edges: Vec<Edge>,
    resolve: Resolver,
    component: Box<dyn Erased>,
}

/// Builds a [`System`]: add components with their dependencies, then [`build`](Self::build).
#[must_use]
pub struct SystemBuilder {
    id: SystemId,
    name: Arc<str>,
    entries: Vec<Option<Entry>>,
    settings: Settings,
    env: Env,
    log_events: bool,
    exit_hooks: Vec<ExitHook>,
}

impl fmt::Debug for SystemBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .entries
            .iter()
            .flatten()
            .map(|e| &*e.spec.name)
            .collect();
        f.debug_struct("SystemBuilder")
            .field("name", &self.name)
            .field("components", &names)
            .finish_non_exhaustive()
    }
}

fn entry<C, D>(spec: Spec, deps: D, component: C) -> Entry
where
    C: Component,
    D: Dependencies<Output = C::Deps>,
{
    let mut edges = Vec::new();
    deps.edges(&mut edges);
    Entry {
        spec,
        resource: TypeId::of::<C::Resource>(),
        edges,
        resolve: Box::new(move |table| {
            deps.resolve(table)
                .map(|value| Box::new(value) as Box<dyn Any + Send>)
        }),
        component: Box::new(Wrapped(component)),
    }
}

impl SystemBuilder {
    pub(crate) fn new(name: Arc<str>) -> Self {
        Self {
            id: SystemId::next(),
            name,
            entries: Vec::new(),
            settings: Settings::default(),
            env: Env::process(),
            log_events: false,
            exit_hooks: Vec::new(),
        }
    }

    /// Adds a component that starts once everything in `deps` has started, and returns the key
    /// dependents use to receive its resource. `spec` is its name, or a [`Spec`] with options.
    pub fn add<C, D>(&mut self, spec: impl Into<Spec>, deps: D, component: C) -> Key<C::Resource>
    where
        C: Component,
        D: Dependencies<Output = C::Deps>,
    {
        let node = self.entries.len();
        self.entries.push(Some(entry(spec.into(), deps, component)));
        Key::new(node, self.id)
    }

    /// Adds a component made of a closure `|deps, ctx| async move { … }` that returns its
    /// resource; see [`from_fn`](crate::from_fn).
    pub fn add_fn<D, R, E, F, Fut>(&mut self, spec: impl Into<Spec>, deps: D, f: F) -> Key<R>
    where
        D: Dependencies,
        R: Clone + Send + Sync + 'static,
        E: Into<BoxError>,
        F: FnMut(D::Output, Context) -> Fut + Send + 'static,
        Fut: Future<Output = Result<R, E>> + Send,
    {
        self.add(spec, deps, from_fn(f))
    }

    /// Adds a one-off task (twelve-factor XII: a migration, a repair, a report): a component
    /// whose work, `|deps, ctx| async move { … }`, begins once the whole system has started and
    /// whose end stops the system. Run as the process's main job, its result becomes the exit
    /// code:
    ///
    /// | the work | the system | exit code |
    /// |---|---|---|
    /// | returns `Ok(())` | stops cleanly ("stop requested by" the task) | 0 |
    /// | returns an error or panics | stops; the report names the task and the error | 1 |
    /// | returns an [`ExitWith`](crate::ExitWith) error | stops; the report names the error | its code |
    ///
    /// The shutdown delay is skipped when a task ends (nothing routes traffic to a task). A stop
    /// signal while the work runs makes [`Context::stopping`] fire: the work may end early or
    /// run to its end, within the stop timeouts; an error it returns then still fails the stop.
    ///
    /// Build the process from the same components as the service and add the task instead of
    /// the servers, so it reads the same configuration:
    ///
    /// ```
    /// use orderly::{BoxError, System};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut system = System::builder("migrate");
    /// let db = system.add_fn("db", (), |(), _ctx| async { Ok::<_, BoxError>(vec!["v1", "v2"]) });
    /// system.add_task("migrate", db, |pending: Vec<&str>, _ctx| async move {
    ///     for migration in pending {
    ///         tracing::info!(migration, "applied");
    ///     }
    ///     Ok::<_, BoxError>(())
    /// });
    /// // In `main`: `system.run().await` is the exit code. Here: wait for the report.
    /// let report = system.build()?.start().await?.wait().await;
    /// assert!(report.is_clean());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Nothing may depend on a task (it delegates no resource and others would not wait for its
    /// end): work that must finish before others start belongs in a component's `start`.
    pub fn add_task<D, E, F, Fut>(&mut self, spec: impl Into<Spec>, deps: D, work: F)
    where
        D: Dependencies,
        E: Into<BoxError>,
        F: FnMut(D::Output, Context) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let mut spec = spec.into();
        spec.role = Role::Task;
        self.add(spec, deps, Task::new(work));
    }

    /// Replaces the component `key` names, keeping its name and options (for tests: a fake in
    /// place of the real thing). The new component delegates the same resource type.
    pub fn replace<C, D>(&mut self, key: Key<C::Resource>, deps: D, component: C)
    where
        C: Component,
        D: Dependencies<Output = C::Deps>,
    {
        if let Some(slot) = self.slot(key) {
            let spec = slot.spec.clone();
            *slot = entry(spec, deps, component);
        }
    }

    /// Replaces the component `key` names with one that delegates `value` and has no
    /// dependencies.
    pub fn provide<R: Clone + Send + Sync + 'static>(&mut self, key: Key<R>, value: R) {
        self.replace(key, (), Value(value));
    }

    /// Removes the component `key` names. Dependents that declared it optional receive `None`;
    /// `build()` reports dependents that require it.
    pub fn remove<R>(&mut self, key: Key<R>) {
        if key.system == self.id
            && let Some(entry) = self.entries.get_mut(key.node)
        {
            *entry = None;
        }
    }

    fn slot<R>(&mut self, key: Key<R>) -> Option<&mut Entry> {
        if key.system != self.id {
            return None;
        }
        self.entries.get_mut(key.node).and_then(Option::as_mut)
    }

    /// The key of the component named `name`, if there is one and its resource is an `R`.
    /// For tests that receive a builder from application code.
    pub fn key<R: 'static>(&self, name: &str) -> Option<Key<R>> {
        self.entries.iter().enumerate().find_map(|(node, e)| {
            let e = e.as_ref()?;
            (&*e.spec.name == name && e.resource == TypeId::of::<R>())
                .then(|| Key::new(node, self.id))
        })
    }

    /// Traffic is still served this long after shutdown begins (readiness is already false), so
    /// load balancers stop sending it before anything stops. Default 0; `SHUTDOWN_DELAY` in the
    /// environment overrides it.
    pub fn shutdown_delay(mut self, delay: Duration) -> Self {
        self.settings.shutdown_delay = delay;
        self
    }

    /// The global deadline for stopping every component, counted after the shutdown delay. When
    /// it passes, the remaining stops are abandoned and the exit code says so. Default 25 s (to
    /// fit Kubernetes' 30 s grace period); `SHUTDOWN_TIMEOUT` in the environment overrides it.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.shutdown_timeout = timeout;
        self
    }

    /// The start timeout of every component that does not set its own. Default: none.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.settings.start_timeout = Some(timeout);
        self
    }

    /// The stop timeout of every component that does not set its own. Default: none (the
    /// global deadline still applies).
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.settings.stop_timeout = Some(timeout);
        self
    }

    /// What SIGHUP does; default [`SighupPolicy::Ignore`].
    pub fn sighup(mut self, policy: SighupPolicy) -> Self {
        self.settings.sighup = policy;
        self
    }

    /// The exit-code table.
    pub fn exit_codes(mut self, codes: ExitCodes) -> Self {
        self.settings.exit_codes = codes;
        self
    }

    /// Where `SHUTDOWN_DELAY`, `SHUTDOWN_TIMEOUT` and systemd's `NOTIFY_SOCKET`, `WATCHDOG_USEC`
    /// and `WATCHDOG_PID` are read from; default the process environment.
    pub fn env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// Sends every lifecycle event through `tracing` (info for progress, warn and error for
    /// failures), with structured fields `system`, `event`, `component`, `took_ms`…
    pub fn log_all_events(mut self) -> Self {
        self.log_events = true;
        self
    }

    /// Runs `hook` when [`run`](Self::run) ends, after its last log line (the report), just
    /// before it returns the exit code or exits the process: also on the forced exits (a
    /// second signal, the deadline), which call `std::process::exit` and so run no destructor.
    /// For what must happen before the process ends, e.g. flushing a log writer. Hooks run in
    /// the order they were added, on the runtime's thread, so keep them short. Only `run`
    /// calls them: not [`start`](System::start), nor a system nested in another.
    pub fn before_exit(mut self, hook: impl FnOnce() + Send + 'static) -> Self {
        self.exit_hooks.push(Box::new(hook));
        self
    }

    /// Validates the system and builds it. Every problem is reported at once: duplicate or
    /// empty names, a dependency on a removed component or on another system's component, a
    /// cycle (only `replace` can make one), an invalid `SHUTDOWN_*`, `NOTIFY_SOCKET` or
    /// `WATCHDOG_*` variable.
    pub fn build(self) -> Result<System, BuildError> {
        let mut problems = Vec::new();
        let mut settings = self.settings.clone();
        for (variable, target) in [
            (SHUTDOWN_DELAY, &mut settings.shutdown_delay),
            (SHUTDOWN_TIMEOUT, &mut settings.shutdown_timeout),
        ] {
            if let Some(value) = self.env.get(variable) {
                match parse_duration(&value) {
                    Ok(duration) => *target = duration,
                    Err(reason) => problems.push(Problem::InvalidVariable {
                        variable,
                        reason: format!("expected a duration like 500ms or 5s, found {reason}"),
                    }),
                }
            }
        }
        settings.notify = Target::from_env(&self.env, &mut problems);

        let name_of = |node: usize| -> Option<Arc<str>> {
            self.entries
                .get(node)
                .and_then(Option::as_ref)
                .map(|e| e.spec.name.clone())
        };
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for entry in self.entries.iter().flatten() {
            let name = &*entry.spec.name;
            if name.trim().is_empty() {
                problems.push(Problem::EmptyName);
            } else if seen.insert(name, 0).is_some() {
                problems.push(Problem::DuplicateName(entry.spec.name.clone()));
            }
            for edge in &entry.edges {
                let dependency = self.entries.get(edge.node).and_then(Option::as_ref);
                if entry.spec.layer == Layer::Foundation
                    && edge.system == self.id
                    && let Some(dependency) = dependency.filter(|d| d.spec.layer == Layer::Regular)
                {
                    problems.push(Problem::FoundationDependency {
                        component: entry.spec.name.clone(),
                        dependency: dependency.spec.name.clone(),
                    });
                }
                if edge.system != self.id {
                    problems.push(Problem::ForeignDependency {
                        component: entry.spec.name.clone(),
                    });
                } else if name_of(edge.node).is_none() && !edge.optional {
                    problems.push(Problem::UnknownDependency {
                        component: entry.spec.name.clone(),
                    });
                }
            }
        }
        if let Some(cycle) = find_cycle(&self.entries, self.id) {
            problems.push(Problem::Cycle(
                cycle.into_iter().filter_map(name_of).collect(),
            ));
        }
        if !problems.is_empty() {
            return Err(BuildError {
                system: self.name,
                problems,
                codes: settings.exit_codes,
            });
        }

        // An optional dependency on a removed component is no edge: nothing to wait for.
        let present: Vec<bool> = self.entries.iter().map(Option::is_some).collect();
        // Every regular component waits for the foundations, and so stops before them.
        let foundations: Vec<usize> = (0..self.entries.len())
            .filter(|&node| {
                self.entries[node]
                    .as_ref()
                    .is_some_and(|e| e.spec.layer == Layer::Foundation)
            })
            .collect();
        let nodes = self
            .entries
            .into_iter()
            .map(|entry| {
                entry.map(|e| {
                    let mut deps: Vec<usize> = e
                        .edges
                        .iter()
                        .map(|edge| edge.node)
                        .filter(|&node| present.get(node).copied().unwrap_or(false))
                        .collect();
                    if e.spec.layer == Layer::Regular {
                        deps.extend(&foundations);
                    }
                    deps.sort_unstable();
                    deps.dedup();
                    Node {
                        start_timeout: e.spec.start_timeout.or(settings.start_timeout),
                        stop_timeout: e.spec.stop_timeout.or(settings.stop_timeout),
                        spec: e.spec,
                        deps,
                        resolve: e.resolve,
                        component: Arc::new(tokio::sync::Mutex::new(e.component)),
                        index: 0,
                    }
                })
            })
            .collect();
        Ok(System::new(
            self.id,
            self.name,
            nodes,
            settings,
            self.log_events,
            self.exit_hooks,
        ))
    }

    /// Builds and runs the system as the process's main job; see [`System::run`]. An invalid
    /// system is logged and ends with its exit code (78 for invalid configuration, 70 otherwise)
    /// before anything starts.
    pub async fn run(mut self) -> ExitCode {
        let hooks = std::mem::take(&mut self.exit_hooks);
        match self.build() {
            Ok(mut system) => {
                system.exit_hooks = hooks;
                system.run().await
            }
            Err(error) => {
                tracing::error!(system = &*error.system, error = %error, "invalid system");
                for hook in hooks {
                    hook();
                }
                ExitCode::from(error.exit_code())
            }
        }
    }
}

/// Finds one cycle among the present nodes (depth-first search), as a list of nodes.
fn find_cycle(entries: &[Option<Entry>], id: SystemId) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let deps = |node: usize| -> Vec<usize> {
        entries[node]
            .as_ref()
            .map(|e| {
                e.edges
                    .iter()
                    .filter(|edge| {
                        edge.system == id && entries.get(edge.node).is_some_and(Option::is_some)
                    })
                    .map(|edge| edge.node)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut marks = vec![Mark::New; entries.len()];
    for root in 0..entries.len() {
        if marks[root] != Mark::New || entries[root].is_none() {
            continue;
        }
        // Iterative DFS: the stack holds (node, its dependencies, next index).
        let mut stack = vec![(root, deps(root), 0usize)];
        marks[root] = Mark::Open;
        while let Some((node, children, next)) = stack.last_mut() {
            if let Some(&child) = children.get(*next) {
                *next += 1;
                match marks[child] {
                    Mark::New => {
                        marks[child] = Mark::Open;
                        let grandchildren = deps(child);
                        stack.push((child, grandchildren, 0));
                    }
                    Mark::Open => {
                        let from = stack.iter().position(|(n, _, _)| *n == child).unwrap_or(0);
                        let mut cycle: Vec<usize> =
                            stack[from..].iter().map(|(n, _, _)| *n).collect();
                        cycle.push(child);
                        return Some(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                marks[*node] = Mark::Done;
                stack.pop();
            }
        }
    }
    None
}

/// Something wrong with a system's definition; see [`BuildError`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Two components have this name.
    DuplicateName(Arc<str>),
    /// A component has an empty name.
    EmptyName,
    /// The component requires a component that was removed.
    UnknownDependency {
        /// The dependent.
        component: Arc<str>,
    },
    /// The component depends on a key from another system's builder.
    ForeignDependency {
        /// The dependent.
        component: Arc<str>,
    },
    /// A foundation component depends on a regular one (foundations start first).
    FoundationDependency {
        /// The foundation.
        component: Arc<str>,
        /// The regular component it depends on.
        dependency: Arc<str>,
    },
    /// These components depend on each other in a cycle (the first is repeated at the end).
    Cycle(Vec<Arc<str>>),
    /// An environment variable has an invalid value.
    InvalidVariable {
        /// The variable.
        variable: &'static str,
        /// What was expected and what was found.
        reason: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::DuplicateName(name) => write!(f, "two components are named '{name}'"),
            Problem::EmptyName => f.write_str("a component has an empty name"),
            Problem::UnknownDependency { component } => write!(
                f,
                "component '{component}' requires a component that was removed"
            ),
            Problem::ForeignDependency { component } => write!(
                f,
                "component '{component}' depends on a component of another system"
            ),
            Problem::FoundationDependency {
                component,
                dependency,
            } => write!(
                f,
                "foundation '{component}' depends on '{dependency}', which is not a foundation"
            ),
            Problem::Cycle(names) => {
                f.write_str("dependency cycle: ")?;
                for (i, name) in names.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" -> ")?;
                    }
                    write!(f, "'{name}'")?;
                }
                Ok(())
            }
            Problem::InvalidVariable { variable, reason } => write!(f, "{variable}: {reason}"),
        }
    }
}

/// The system's definition is invalid; lists every [`Problem`].
#[derive(Debug)]
pub struct BuildError {
    system: Arc<str>,
    problems: Vec<Problem>,
    codes: ExitCodes,
}

impl BuildError {
    /// Every problem found.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Whether every problem is invalid configuration (an environment variable).
    pub fn is_config(&self) -> bool {
        self.problems
            .iter()
            .all(|p| matches!(p, Problem::InvalidVariable { .. }))
    }

    /// The exit code: invalid configuration (78) or invalid system (70).
    pub fn exit_code(&self) -> u8 {
        if self.is_config() {
            self.codes.invalid_config
        } else {
            self.codes.invalid_system
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "system '{}' is invalid:", self.system)?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BuildError {}
