//! The admin listener: health probes and status from the system's real state, on a port of its
//! own that keeps answering until the very end of the shutdown.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use orderly::{BoxError, Component, ComponentStatus, Context, Env, Probe, Status};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{ADMIN_PORT, addr_from_env, local};
use crate::error::ErrorKind;
use crate::exposition::CONTENT_TYPE;
use crate::route::Routed;
use crate::serve::{self, Serving};
use crate::service::{Limits, Observe, plain};
use crate::status_metrics;

/// How long the admin listener's own drain may take once everything else has stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// The admin endpoints, as an orderly [`Component`] with a listener of its own (`ADMIN_PORT`,
/// default 9090):
///
/// | path | answer |
/// |---|---|
/// | `/livez` | 200 while the process can answer, draining included |
/// | `/readyz` | 200 when running and healthy; 503 from the instant shutdown begins |
/// | `/startupz` | 200 once every mandatory component has started |
/// | `/metrics` | Prometheus text format: the lifecycle metrics, then what [`metrics`](Admin::metrics) renders |
/// | `/status` | JSON: the phase and every component's state, timings, health and failure |
///
/// The probes answer `text/plain` with a few words saying why. Requests to the admin listener
/// are not counted in the HTTP metrics and not written to the access log: probes and scrapes
/// every few seconds are not traffic.
///
/// # Metrics
///
/// `/metrics` renders the system's [`Status`] at each scrape, every series labelled with the
/// `system` name. States, phases and health are *one-hot*, as kube-state-metrics does it: one
/// series per possible value, 1 for the current one, so a query names the value
/// (`orderly_component_state{state="failed"} == 1`) and every transition is visible.
///
/// | metric (all gauges) | labels | value |
/// |---|---|---|
/// | `orderly_system_phase` | `system`, `phase` | 1 for the current phase (`created` `starting` `running` `stopping` `stopped`) |
/// | `orderly_started` | `system` | 1 once every mandatory component has started (`/startupz`) |
/// | `orderly_ready` | `system` | 1 while ready for traffic (`/readyz`) |
/// | `orderly_component_state` | `system`, `component`, `state` | 1 for the current state (`pending` `starting` `running` `stopping` `stopped` `failed` `skipped`) |
/// | `orderly_component_health` | `system`, `component`, `health` | 1 for the current health (`healthy` `degraded` `unhealthy`) |
/// | `orderly_component_start_seconds` | `system`, `component` | how long the last start took; absent before |
/// | `orderly_component_stop_seconds` | `system`, `component` | how long the last stop took; absent before |
///
/// What other components record through the [`metrics`](https://docs.rs/metrics) facade (the
/// [`HttpServer`](crate::HttpServer)'s request metrics among them) needs a recorder that can
/// render it, such as `metrics-exporter-prometheus`; pass its `render` to
/// [`Admin::metrics`] and its text follows the lifecycle metrics.
///
/// # It stops last
///
/// Add it without dependencies (first, by convention). Components unrelated in the graph stop
/// concurrently, so the admin component does not rely on the graph: its stop waits until every
/// *other* regular component of the system has stopped (or failed, or never started) and only
/// then closes its listener. Foundations ([`Spec::foundation`](orderly::Spec::foundation): the
/// logger, the metrics recorder) are not waited for, since they stop after every regular
/// component; the admin component may be a foundation itself. Probes therefore answer through the shutdown delay and the whole drain
/// of the HTTP server, and `/status` shows the drain as it happens. Nothing should depend on
/// the admin component: a dependent would stop before it anyway, so waiting is safe, but there
/// is no reason to.
#[must_use]
pub struct Admin {
    addr: Result<SocketAddr, ErrorKind>,
    render: Option<Render>,
    serving: Option<Running>,
}

/// Renders more metrics in the text format, appended to the lifecycle metrics.
type Render = Arc<dyn Fn() -> String + Send + Sync>;

struct Running {
    serving: Serving,
    close: CancellationToken,
    status: watch::Receiver<Status>,
    name: String,
}

impl Admin {
    /// The admin endpoints on 127.0.0.1:9090 unless told otherwise.
    pub fn new() -> Self {
        Self {
            addr: Ok(local(9090)),
            render: None,
            serving: None,
        }
    }

    /// Listens on `addr` (port 0 picks a free port; see [`AdminHandle::local_addr`]).
    pub fn bind(mut self, addr: impl Into<SocketAddr>) -> Self {
        self.addr = Ok(addr.into());
        self
    }

    /// Listens on the port in `ADMIN_PORT` (default 9090): on every interface in a Kubernetes
    /// container, on 127.0.0.1 otherwise. An invalid value fails the start with
    /// [`InvalidConfig`](orderly::InvalidConfig) naming `ADMIN_PORT` (exit code 78).
    pub fn from_env(mut self, env: &Env) -> Self {
        self.addr = addr_from_env(env, ADMIN_PORT, 9090);
        self
    }

    /// Appends what `render` returns, in the Prometheus text format, to each `/metrics` answer;
    /// called once per scrape. With `metrics-exporter-prometheus` installed as the `metrics`
    /// recorder, that is its handle's `render`:
    ///
    /// ```
    /// # fn doc(handle: metrics_exporter_prometheus::PrometheusHandle) {
    /// let admin = orderly_http::Admin::new().metrics(move || handle.render());
    /// # }
    /// ```
    ///
    /// The names the lifecycle metrics use (`orderly_*`) must not appear in its text.
    pub fn metrics(mut self, render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.render = Some(Arc::new(render));
        self
    }
}

impl Default for Admin {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("addr", &self.addr)
            .field("metrics", &self.render.is_some())
            .field("serving", &self.serving.is_some())
            .finish()
    }
}

impl Component for Admin {
    type Deps = ();
    type Resource = AdminHandle;

    /// Binds the admin address and serves until this component's stop (see [`Admin`]).
    async fn start(&mut self, (): (), ctx: Context) -> Result<AdminHandle, BoxError> {
        let (listener, local_addr) = serve::bind(&self.addr).await?;
        let status = ctx.status();
        let render = self.render.clone();
        let router = Router::new()
            .route("/livez", get(|s| probe(s, Status::liveness)))
            .route("/readyz", get(|s| probe(s, Status::readiness)))
            .route("/startupz", get(|s| probe(s, Status::startup)))
            .route("/metrics", get(|s| metrics(s, render)))
            .route("/status", get(status_json))
            .with_state(status.clone());
        let close = CancellationToken::new();
        let limits = Limits {
            header_read_timeout: Duration::from_secs(5),
            body_limit: 1024,
            request_timeout: Some(Duration::from_secs(5)),
        };
        let (serving, _gauges) = serve::spawn(
            &ctx,
            "admin accept loop",
            listener,
            Routed::plain(router),
            limits,
            Observe::Off,
            close.clone(),
        );
        self.serving = Some(Running {
            serving,
            close,
            status,
            name: ctx.name().to_owned(),
        });
        tracing::info!(component = ctx.name(), addr = %local_addr, "admin endpoints listening");
        Ok(AdminHandle { local_addr })
    }

    /// Waits until every other component has stopped, then closes the listener.
    async fn stop(&mut self) -> Result<(), BoxError> {
        let Some(mut running) = self.serving.take() else {
            return Ok(());
        };
        let name = running.name.clone();
        // An error means the system is gone: nothing is left to wait for.
        let _ = running
            .status
            .wait_for(|status| {
                status
                    .components
                    .iter()
                    // Foundations (the logger, the metrics recorder) stop after every regular
                    // component, this one included: waiting for them would never end.
                    .filter(|c| *c.name != *name && !c.foundation)
                    .all(is_done)
            })
            .await;
        running.close.cancel();
        Ok(running.serving.drain(DRAIN_TIMEOUT).await?)
    }
}

/// Whether a component is done for this stop: it stopped, failed to start or stop, was skipped,
/// or never started. A component that failed while running is not done until its stop ran.
fn is_done(component: &ComponentStatus) -> bool {
    use orderly::State;
    match component.state {
        State::Pending | State::Stopped | State::Skipped => true,
        State::Failed => component.started_in.is_none() || component.stopped_in.is_some(),
        _ => false,
    }
}

/// The resource of the [`Admin`] component.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct AdminHandle {
    local_addr: SocketAddr,
}

impl AdminHandle {
    /// The address the admin endpoints listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

async fn probe(
    State(status): State<watch::Receiver<Status>>,
    which: fn(&Status) -> Probe,
) -> Response {
    let probe = which(&status.borrow());
    let code = if probe.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    plain(code, format!("{}\n", probe.reason)).into_response()
}

async fn metrics(
    State(status): State<watch::Receiver<Status>>,
    render: Option<Render>,
) -> Response {
    // Rendered from a clone: the watch lock is not held while the text is written.
    let status = status.borrow().clone();
    let mut text = status_metrics::render(&status);
    if let Some(render) = render {
        let more = render();
        text.push_str(&more);
        if !more.is_empty() && !more.ends_with('\n') {
            text.push('\n');
        }
    }
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

#[derive(Serialize)]
struct StatusBody<'a> {
    system: &'a str,
    phase: &'static str,
    started: bool,
    startup: ProbeBody,
    readiness: ProbeBody,
    liveness: ProbeBody,
    components: Vec<ComponentBody<'a>>,
}

#[derive(Serialize)]
struct ProbeBody {
    ok: bool,
    reason: String,
}

impl From<Probe> for ProbeBody {
    fn from(probe: Probe) -> Self {
        Self {
            ok: probe.ok,
            reason: probe.reason,
        }
    }
}

#[derive(Serialize)]
struct ComponentBody<'a> {
    name: &'a str,
    state: &'static str,
    health: String,
    ignorable: bool,
    started_in_ms: Option<f64>,
    stopped_in_ms: Option<f64>,
    failure: Option<String>,
}

fn millis(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64() * 1000.0)
}

async fn status_json(State(status): State<watch::Receiver<Status>>) -> Response {
    let status = status.borrow().clone();
    let body = StatusBody {
        system: &status.system,
        phase: status.phase.as_str(),
        started: status.started,
        startup: status.startup().into(),
        readiness: status.readiness().into(),
        liveness: status.liveness().into(),
        components: status
            .components
            .iter()
            .map(|c| ComponentBody {
                name: &c.name,
                state: c.state.as_str(),
                health: c.health.to_string(),
                ignorable: c.ignorable,
                started_in_ms: millis(c.started_in),
                stopped_in_ms: millis(c.stopped_in),
                failure: c.failure.as_ref().map(ToString::to_string),
            })
            .collect(),
    };
    Json(body).into_response()
}
