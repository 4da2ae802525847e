//! The configuration component: typed settings loaded at start, kept when a reload is invalid.

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use orderly::{BoxError, Component, Context, Env, Health, InvalidConfig};
use serde::de::DeserializeOwned;

use crate::error::ConfigError;
use crate::extract::{Hint, UnknownKeys, extract};
use crate::source::{File, Fingerprint, Presence, Sources};
use crate::watch;

/// When a [`Config`] loads its settings again while the system runs. It loads them at every
/// start in any case: the first, and each in-process restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reload {
    /// Only when the system restarts for another reason (the default).
    #[default]
    OnRestart,
    /// On SIGHUP too. The new settings are checked first: valid, the system restarts with them;
    /// invalid, the problems are logged, the component reports itself degraded, and nothing
    /// restarts. Give the system [`SighupPolicy::Notify`](orderly::SighupPolicy::Notify), so
    /// that it leaves SIGHUP to its components.
    OnSighup,
    /// On SIGHUP, and when a file changes: the files are read every `interval`, and a change is
    /// acted on (as for SIGHUP) once the files have stayed the same for one more interval, so a
    /// file that is being written is not read half-way.
    Watch {
        /// How often the files are read.
        interval: Duration,
    },
}

/// What a [`Config`] reads, and how.
#[derive(Debug)]
pub(crate) struct Spec {
    prefix: String,
    files: Vec<File>,
    env: Env,
    unknown_keys: UnknownKeys,
    pub(crate) reload: Reload,
}

/// A load's outcome, and what the files held when it read them.
pub(crate) type Loaded<T> = (Result<T, ConfigError>, Fingerprint);

impl Spec {
    fn load<T: DeserializeOwned>(&self) -> Loaded<T> {
        let sources = Sources::read(&self.prefix, &self.files, &self.env);
        let fingerprint = sources.fingerprint.clone();
        let hint = Hint {
            prefix: &self.prefix,
            files: self.files.iter().map(|f| f.path.clone()).collect(),
        };
        let loaded = extract::<T>(sources, &hint, self.unknown_keys)
            .map(|extracted| {
                for problem in &extracted.unknown {
                    tracing::warn!(prefix = %self.prefix, "ignored: {problem}");
                }
                extracted.value
            })
            .map_err(ConfigError::new);
        (loaded, fingerprint)
    }

    pub(crate) fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.files)
    }
}

/// Loads on a blocking thread (it reads files), logging to the caller's subscriber.
pub(crate) async fn load<T>(spec: &Arc<Spec>) -> Result<Loaded<T>, BoxError>
where
    T: DeserializeOwned + Send + 'static,
{
    let spec = spec.clone();
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let load = move || tracing::dispatcher::with_default(&dispatch, || spec.load::<T>());
    Ok(tokio::task::spawn_blocking(load).await?)
}

/// Typed settings from environment variables with a prefix, layered over files: an orderly
/// [`Component`] whose resource is `Arc<T>`.
///
/// Precedence, key by key (tables merge, so a nested key overrides only itself): the type's
/// serde defaults, then each file in the order added, then the environment. A variable
/// `{PREFIX}_{KEY}` sets a key, `__` nests: `FAB_DB__POOL_SIZE` sets `db.pool_size`. Keys are
/// lower snake case. A variable's value is text, read as a number or boolean where the
/// setting takes one, and as a list or table when it looks like one (`[a, b]`, `{k = v}`).
///
/// Every problem is reported at once, each naming its variable, or its file and key, with what
/// was expected and what was found (never a [`Secret`](crate::Secret)'s value). A failed first
/// start fails with [`InvalidConfig`], so the process exits 78. Make the other components
/// depend on the config (or a part of it, `config.map(|c| c.db.clone())`) so that nothing
/// starts before it is valid.
///
/// At each in-process restart the settings are loaded again; if they have become invalid, the
/// problems are logged, the component reports itself degraded, and the system runs on the
/// previous settings. See [`Reload`] for loading them again on SIGHUP or on a file change.
///
/// ```
/// use std::sync::Arc;
/// use orderly::{Env, System};
/// use orderly_config::{Config, Secret};
/// use serde::Deserialize;
///
/// #[derive(Debug, Deserialize)]
/// struct Settings {
///     #[serde(default)]
///     db: Db,
/// }
///
/// #[derive(Debug, Default, Deserialize)]
/// #[serde(default)]
/// struct Db {
///     url: String,
///     password: Secret<String>,
///     pool_size: u16,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let env = Env::from_pairs([("FAB_DB__POOL_SIZE", "10"), ("FAB_DB__PASSWORD", "hunter2")]);
/// let mut system = System::builder("fab");
/// let config = system.add(
///     "config",
///     (),
///     Config::<Settings>::builder("FAB").env(env).build(),
/// );
/// system.add_fn("db", config.map(|c| c.db.pool_size), |size: u16, _ctx| async move {
///     Ok::<_, std::io::Error>(size)
/// });
///
/// let running = system.build()?.start().await?;
/// let settings: Arc<Settings> = running.resource(config).unwrap();
/// assert_eq!(settings.db.pool_size, 10);
/// assert!(!format!("{settings:?}").contains("hunter2"));
/// running.stop().await;
/// # Ok(())
/// # }
/// ```
pub struct Config<T> {
    spec: Arc<Spec>,
    /// The settings of the last successful load, kept when a later one fails.
    current: Option<(Arc<T>, Fingerprint)>,
}

impl<T> Config<T> {
    /// Describes settings read from variables named `{prefix}_…` (every variable when the
    /// prefix is empty; a trailing `_` is optional).
    pub fn builder(prefix: impl Into<String>) -> ConfigBuilder<T> {
        let prefix: String = prefix.into();
        ConfigBuilder {
            spec: Spec {
                prefix: prefix.trim_end_matches('_').to_owned(),
                files: Vec::new(),
                env: Env::process(),
                unknown_keys: UnknownKeys::Warn,
                reload: Reload::OnRestart,
            },
            _settings: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> Config<T> {
    /// Loads the settings now, without starting anything: for `main` to check them before it
    /// builds the system, for tools and for tests. Reads the files and the environment.
    pub fn load(&self) -> Result<T, ConfigError> {
        self.spec.load().0
    }
}

impl<T> fmt::Debug for Config<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("prefix", &self.spec.prefix)
            .field("files", &self.spec.files)
            .field("strict", &(self.spec.unknown_keys == UnknownKeys::Reject))
            .field("reload", &self.spec.reload)
            .field("loaded", &self.current.is_some())
            .finish()
    }
}

/// Describes a [`Config`]; made by [`Config::builder`].
#[must_use]
pub struct ConfigBuilder<T> {
    spec: Spec,
    _settings: PhantomData<fn() -> T>,
}

impl<T> ConfigBuilder<T> {
    /// Adds a file that must exist: TOML, YAML or JSON, known by its extension (`.toml`,
    /// `.yaml`, `.yml`, `.json`). A later file overrides an earlier one, key by key.
    pub fn file(self, path: impl Into<PathBuf>) -> Self {
        self.with_file(path.into(), Presence::Required)
    }

    /// Adds a file that is read if it exists (a local override).
    pub fn file_optional(self, path: impl Into<PathBuf>) -> Self {
        self.with_file(path.into(), Presence::Optional)
    }

    fn with_file(mut self, path: PathBuf, presence: Presence) -> Self {
        self.spec.files.push(File { path, presence });
        self
    }

    /// Where the variables are read from; default the process environment. Tests pass
    /// [`Env::from_pairs`].
    pub fn env(mut self, env: Env) -> Self {
        self.spec.env = env;
        self
    }

    /// Reports keys that are no setting (a misspelt variable, a stale file entry) as problems.
    /// Without it they are logged as warnings and ignored. Every variable with the prefix is
    /// taken for a setting.
    pub fn strict(mut self) -> Self {
        self.spec.unknown_keys = UnknownKeys::Reject;
        self
    }

    /// When the settings are loaded again while the system runs; see [`Reload`].
    pub fn reload(mut self, reload: Reload) -> Self {
        self.spec.reload = reload;
        self
    }

    /// Watches the files, read once a second, and reloads on SIGHUP:
    /// [`Reload::Watch`] with a one-second interval.
    pub fn watch(self) -> Self {
        self.reload(Reload::Watch {
            interval: Duration::from_secs(1),
        })
    }

    /// The component.
    pub fn build(self) -> Config<T> {
        Config {
            spec: Arc::new(self.spec),
            current: None,
        }
    }
}

impl<T> fmt::Debug for ConfigBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("prefix", &self.spec.prefix)
            .field("files", &self.spec.files)
            .finish_non_exhaustive()
    }
}

/// The health a config reports while it runs on previous settings.
pub(crate) const STALE: &str =
    "the new settings are invalid (the log says why); running on the previous ones";

impl<T> Component for Config<T>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    type Deps = ();
    type Resource = Arc<T>;

    /// Loads the settings. The first time, invalid settings fail the start with
    /// [`InvalidConfig`]; after that (an in-process restart), they are logged and the previous
    /// ones are kept. Then, if reloading is on, spawns the task that watches the files and
    /// SIGHUP; it ends when the component stops.
    async fn start(&mut self, (): (), ctx: Context) -> Result<Arc<T>, BoxError> {
        // Subscribed before loading, so a SIGHUP during the load is not missed.
        let events = (self.spec.reload != Reload::OnRestart).then(|| ctx.events());
        let (loaded, seen) = load::<T>(&self.spec).await?;
        let (settings, running) = match (loaded, &self.current) {
            (Ok(settings), _) => {
                let current = (Arc::new(settings), seen.clone());
                self.current = Some(current.clone());
                current
            }
            (Err(error), None) => return Err(InvalidConfig::new(error).into()),
            (Err(error), Some(previous)) => {
                tracing::error!(
                    component = ctx.name(),
                    problems = %error,
                    "the new settings are invalid; keeping the previous ones"
                );
                ctx.set_health(Health::degraded(STALE));
                previous.clone()
            }
        };
        if let Some(events) = events {
            let watcher = watch::Watcher::<T>::new(self.spec.clone(), ctx.clone(), running, seen);
            ctx.spawn("watch", watcher.run(events));
        }
        Ok(settings)
    }
}
