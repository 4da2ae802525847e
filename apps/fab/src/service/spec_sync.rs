//! The fab side of central specs: which released spec set a process's APC and FDC use, and
//! (for `fab apc` / `fab fdc` with `SPEC_URL`) how it gets there.
//!
//! Two ways, chosen when the process starts:
//!
//! - **From the database** ([`SpecView::from_store`]): `fab all`, `fab spec`, and `fab apc` /
//!   `fab fdc` without `SPEC_URL`. Each request reads the released set from the registry in the
//!   process's own database (re-read only when the registry changed); a release is in force the
//!   moment it commits (one transaction, so never half). This is the embedded default's way: the process *is* the spec service, so
//!   there is nothing to sync and no acknowledgement to send.
//! - **Synced over HTTP** ([`SpecView::is_synced`]): `fab apc` / `fab fdc` with `SPEC_URL` set to
//!   the central spec service's base URL. The `spec-sync` component polls
//!   `GET /v1/spec/changes?since=<revision>` every `SPEC_SYNC_INTERVAL` (each poll bounded by
//!   `SPEC_TIMEOUT`); a newly released set is validated whole and swapped in whole
//!   ([`FabSpecs::apply`]), written to the fab's own database (`spec_applied`), and only then
//!   published to the handlers and acknowledged (`POST /v1/spec/acks` with `FAB_ID`, using
//!   `SPEC_TOKEN`). A set that fails validation changes nothing and is not acknowledged.
//!
//! When the spec service cannot be reached, the fab keeps running on the release it last
//! applied (also after a restart: it is loaded from the database at start) and the component
//! reports `Degraded` — "spec service unreachable since 10:47:02 UTC (…); running on spec v7"
//! — never unhealthy, so the process stays ready. It is healthy again after the next
//! successful poll. A release withdrawn centrally without a successor leaves the fab on its
//! last applied release (a fab never runs without limits it had).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use orderly::{BoxError, Component, Context, Health};
use orderly_config::Secret;
use serde::Deserialize;
use tokio::sync::watch;

use super::{FabSettings, ProcessKind, invalid};
use crate::api::now;
use crate::domain::name::Name;
use crate::domain::spec::{Delta, FabSpecs, Revision, SpecError, SpecSet, SpecVersion};
use crate::domain::time::Timestamp;
use crate::store::{Store, StoreError};

/// The largest delta accepted from the spec service.
const MAX_DELTA_BYTES: usize = 16 * 1024 * 1024;

/// Settings read from `SPEC_*` variables (the central spec service, seen from a fab).
#[derive(Debug, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SpecSyncSettings {
    /// `SPEC_URL`: the central spec service's base URL (`http://spec:8080`). Unset: the
    /// released set is read from the process's own database.
    pub url: Option<String>,
    /// `SPEC_SYNC_INTERVAL`: the time between two polls (default `3s`).
    #[serde(with = "orderly_config::duration")]
    pub sync_interval: Duration,
    /// `SPEC_TIMEOUT`: the longest one poll or acknowledgement may take (default `2s`).
    #[serde(with = "orderly_config::duration")]
    pub timeout: Duration,
    /// `SPEC_TOKEN`: the bearer token the fab acknowledges with (required with `SPEC_URL`).
    pub token: Option<Secret<String>>,
}

impl Default for SpecSyncSettings {
    fn default() -> Self {
        Self {
            url: None,
            sync_interval: Duration::from_secs(3),
            timeout: Duration::from_secs(2),
            token: None,
        }
    }
}

/// Where the handlers get the spec in force (the resource of the `spec-sync` component).
#[derive(Clone, Debug)]
pub struct SpecView(View);

/// The spec in force as read from the database, with the registry snapshot version it was
/// read at.
type Cached = Option<(u64, Option<Arc<FabSpecs>>)>;

#[derive(Clone, Debug)]
enum View {
    /// Read from the process's own database: the registry's snapshot version at each request
    /// (one small query), the registry itself only when that version moved.
    Store {
        fab: Name,
        cache: Arc<Mutex<Cached>>,
    },
    /// The release the sync applied (`None` until one is).
    Synced(watch::Receiver<Option<Arc<FabSpecs>>>),
}

impl SpecView {
    /// The released set in the database of the process is in force (for `fab`).
    #[must_use]
    pub fn from_store(fab: Name) -> Self {
        Self(View::Store {
            fab,
            cache: Arc::default(),
        })
    }

    /// Whether the spec in force is synced from the central spec service over HTTP.
    #[must_use]
    pub fn is_synced(&self) -> bool {
        matches!(self.0, View::Synced(_))
    }

    /// The spec in force, if any.
    ///
    /// # Errors
    /// The database failed, or the released set in it does not validate (a corrupt store).
    pub async fn current(&self, store: &Store) -> Result<Option<Arc<FabSpecs>>, CurrentError> {
        let (fab, cache) = match &self.0 {
            View::Synced(rx) => return Ok(rx.borrow().clone()),
            View::Store { fab, cache } => (fab, cache),
        };
        let Some(version) = store.spec_registry_version().await? else {
            return Ok(None);
        };
        let lock = || cache.lock().unwrap_or_else(PoisonError::into_inner);
        let hit = lock()
            .as_ref()
            .filter(|(cached, _)| *cached == version)
            .map(|(_, specs)| specs.clone());
        if let Some(specs) = hit {
            return Ok(specs);
        }
        let (registry, read) = store.spec_registry().await?;
        let specs = match registry.released() {
            Some(set) => {
                let mut specs = FabSpecs::new(fab.clone());
                specs.apply(set, now())?;
                Some(Arc::new(specs))
            }
            None => None,
        };
        if let Some(read) = read {
            *lock() = Some((read, specs.clone()));
        }
        Ok(specs)
    }
}

/// Why [`SpecView::current`] has no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CurrentError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The released set in the database does not validate.
    #[error("the released spec in the database is invalid: {0}")]
    Invalid(#[from] SpecError),
}

/// The `spec-sync` component (see the module docs). Its dependencies are the fab's settings,
/// the `SPEC_*` settings and the store.
#[derive(Debug)]
pub struct SpecSync {
    kind: ProcessKind,
}

impl SpecSync {
    /// The component of a process of `kind`: only `fab apc` and `fab fdc` sync over HTTP.
    #[must_use]
    pub fn new(kind: ProcessKind) -> Self {
        Self { kind }
    }
}

impl Component for SpecSync {
    type Deps = (Arc<FabSettings>, Arc<SpecSyncSettings>, Store);
    type Resource = SpecView;

    async fn start(
        &mut self,
        (fab, settings, store): Self::Deps,
        ctx: Context,
    ) -> Result<SpecView, BoxError> {
        let fab =
            Name::parse("FAB_ID", fab.id.clone()).map_err(|e| invalid(format!("FAB_ID: {e}")))?;
        let syncs = matches!(self.kind, ProcessKind::Apc | ProcessKind::Fdc);
        let Some(url) = settings.url.as_deref().filter(|_| syncs) else {
            if settings.url.is_some() {
                tracing::warn!(
                    "SPEC_URL is ignored by this process: it reads the released spec from its own database"
                );
            }
            return Ok(SpecView::from_store(fab));
        };
        let remote = Remote::new(url, &settings)?;
        if settings.sync_interval.is_zero() || settings.timeout.is_zero() {
            return Err(invalid(
                "SPEC_SYNC_INTERVAL and SPEC_TIMEOUT must be more than 0".into(),
            ));
        }
        let mut specs = FabSpecs::new(fab.clone());
        let mut since = Revision(0);
        if let Some((set, revision)) = store.applied_spec(&fab).await? {
            // Validated when it was applied; a failure now means the rules changed.
            match specs.apply(&set, now()) {
                Ok(_) => {
                    since = revision;
                    tracing::info!(fab = %fab, version = set.version.0, "running on the spec applied before the restart");
                }
                Err(error) => {
                    tracing::error!(fab = %fab, %error, "the stored applied spec no longer validates; syncing from scratch");
                }
            }
        }
        let (tx, rx) = watch::channel(specs.version().is_some().then(|| Arc::new(specs.clone())));
        let sync = Sync {
            fab,
            store,
            remote,
            specs,
            since,
            tx,
            acked: None,
            failing_since: None,
            interval: settings.sync_interval,
            timeout: settings.timeout,
        };
        let task_ctx = ctx.clone();
        ctx.spawn("poll", sync.run(task_ctx));
        Ok(SpecView(View::Synced(rx)))
    }
}

/// The central spec service, over HTTP.
struct Remote {
    base: String,
    token: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Remote {
    fn new(url: &str, settings: &SpecSyncSettings) -> Result<Self, BoxError> {
        let base = url.trim_end_matches('/').to_owned();
        let uri: Uri = base
            .parse()
            .map_err(|e| invalid(format!("SPEC_URL: {base:?} is not a URL: {e}")))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(invalid(format!(
                "SPEC_URL must be http://host[:port] (the spec service inside the cluster), not {base:?}"
            )));
        }
        let token = settings
            .token
            .as_ref()
            .map(|t| t.expose().trim().to_owned())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                invalid(
                    "SPEC_TOKEN is required with SPEC_URL (the fab acknowledges releases with it)"
                        .into(),
                )
            })?;
        Ok(Self {
            base,
            token,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| format!("{e} ({})", source_chain(&e)))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_DELTA_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok((status, body))
    }

    async fn changes(&self, since: Revision) -> Result<Delta, String> {
        let uri = format!("{}/v1/spec/changes?since={}", self.base, since.0);
        let request = Request::get(uri)
            .body(Full::default())
            .map_err(|e| e.to_string())?;
        let (status, body) = self.send(request).await?;
        if status != StatusCode::OK {
            return Err(format!(
                "GET /v1/spec/changes answered {status}: {}",
                text(&body)
            ));
        }
        serde_json::from_slice(&body).map_err(|e| format!("the delta does not parse: {e}"))
    }

    async fn acknowledge(&self, fab: &Name, version: SpecVersion) -> Result<(), String> {
        let body = serde_json::json!({ "fab": fab, "version": version }).to_string();
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/v1/spec/acks", self.base))
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            // One key per (fab, version): a retried or repeated acknowledgement is one effect.
            .header("idempotency-key", format!("spec-ack-{fab}-{}", version.0))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let (status, body) = self.send(request).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "POST /v1/spec/acks answered {status}: {}",
                text(&body)
            ))
        }
    }
}

fn text(body: &Bytes) -> String {
    String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned()
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut cause = e.source();
    while let Some(c) = cause {
        parts.push(c.to_string());
        cause = c.source();
    }
    if parts.is_empty() {
        "no further cause".into()
    } else {
        parts.join(": ")
    }
}

/// The polling task's state.
struct Sync {
    fab: Name,
    store: Store,
    remote: Remote,
    /// The applied spec (what `tx` publishes).
    specs: FabSpecs,
    /// The central revision synced to.
    since: Revision,
    tx: watch::Sender<Option<Arc<FabSpecs>>>,
    /// The version the central service confirmed this fab runs.
    acked: Option<SpecVersion>,
    /// When polls started failing.
    failing_since: Option<Timestamp>,
    interval: Duration,
    timeout: Duration,
}

/// What went wrong in one round.
enum Problem {
    /// The spec service could not be reached or answered an error.
    Unreachable(String),
    /// A released set was refused; nothing changed.
    Refused(SpecVersion, SpecError),
    /// The applied set could not be stored: not applied, retried next round.
    Store(StoreError),
    /// Applied and stored, but the acknowledgement failed (retried next round).
    NotAcknowledged(SpecVersion, String),
}

impl Problem {
    fn kind(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "unreachable",
            Self::Refused(..) => "refused",
            Self::Store(_) => "store",
            Self::NotAcknowledged(..) => "not acknowledged",
        }
    }
}

impl Sync {
    async fn run(mut self, ctx: Context) -> Result<(), BoxError> {
        let mut last_problem: Option<&'static str> = None;
        loop {
            let outcome = tokio::select! {
                () = ctx.stopping() => return Ok(()),
                outcome = self.round() => outcome,
            };
            match outcome {
                Ok(()) => {
                    if self.failing_since.take().is_some() || last_problem.is_some() {
                        tracing::info!(fab = %self.fab, running = %self.running(), "spec sync healthy again");
                    }
                    last_problem = None;
                    ctx.set_health(Health::Healthy);
                }
                Err(problem) => {
                    let message = self.describe(&problem);
                    // One log line per distinct problem, not one per poll.
                    let kind = problem.kind();
                    if last_problem != Some(kind) {
                        tracing::warn!(fab = %self.fab, "{message}");
                        last_problem = Some(kind);
                    }
                    ctx.set_health(Health::degraded(message));
                }
            }
            tokio::select! {
                () = ctx.stopping() => return Ok(()),
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    fn running(&self) -> String {
        match self.specs.version() {
            Some(v) => format!("running on {v}"),
            None => "no spec applied yet: running on the controller configurations' limits".into(),
        }
    }

    fn describe(&mut self, problem: &Problem) -> String {
        let running = self.running();
        match problem {
            Problem::Unreachable(error) => {
                let since = *self.failing_since.get_or_insert_with(now);
                format!(
                    "spec service unreachable since {} ({error}); {running}",
                    clock(since)
                )
            }
            Problem::Refused(version, error) => {
                self.failing_since = None;
                format!("{version} refused, nothing applied: {error}; {running}")
            }
            Problem::Store(error) => {
                self.failing_since = None;
                format!("cannot store the applied spec: {error}; {running}")
            }
            Problem::NotAcknowledged(version, error) => {
                let since = *self.failing_since.get_or_insert_with(now);
                format!(
                    "{version} applied but not acknowledged since {} ({error}); {running}",
                    clock(since)
                )
            }
        }
    }

    /// One poll: fetch the changes, apply a newer release, acknowledge what runs.
    async fn round(&mut self) -> Result<(), Problem> {
        let delta = tokio::time::timeout(self.timeout, self.remote.changes(self.since))
            .await
            .map_err(|_| Problem::Unreachable(format!("no answer within {:?}", self.timeout)))?
            .map_err(Problem::Unreachable)?;
        if let Some(set) = &delta.released {
            self.apply(set, delta.head).await?;
        }
        self.since = self.since.max(delta.head);
        if let Some(version) = self.specs.version().filter(|v| self.acked != Some(*v)) {
            tokio::time::timeout(self.timeout, self.remote.acknowledge(&self.fab, version))
                .await
                .map_err(|_| format!("no answer within {:?}", self.timeout))
                .and_then(|r| r)
                .map_err(|e| Problem::NotAcknowledged(version, e))?;
            self.acked = Some(version);
            tracing::info!(fab = %self.fab, version = version.0, "spec acknowledged");
        }
        Ok(())
    }

    /// Validates `set` whole, stores it, then publishes it; on any failure nothing changes.
    async fn apply(&mut self, set: &SpecSet, head: Revision) -> Result<(), Problem> {
        if self.specs.version().is_some_and(|v| v >= set.version) {
            return Ok(());
        }
        let mut next = self.specs.clone();
        let applied = next
            .apply(set, now())
            .map_err(|e| Problem::Refused(set.version, e))?;
        if applied.is_none() {
            return Ok(());
        }
        self.store
            .save_applied_spec(&self.fab, set, head, now().as_millis())
            .await
            .map_err(Problem::Store)?;
        self.specs = next;
        self.tx.send_replace(Some(Arc::new(self.specs.clone())));
        tracing::info!(fab = %self.fab, version = set.version.0, "spec applied");
        Ok(())
    }
}

/// `hh:mm:ss UTC` of a timestamp (the health message says since when).
fn clock(at: Timestamp) -> impl fmt::Display {
    let secs = at.as_millis() / 1000 % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}
