//! Prometheus metrics behind the `metrics` facade.

use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use orderly::{BoxError, Component, Context};

use crate::error::{Error, ErrorKind};

/// How often the recorder's histograms are folded into their summaries, as the exporter's own
/// server would do it: keeps memory bounded between scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// Prometheus' default latency buckets, in seconds.
const SECONDS_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's Prometheus recorder: every `metrics::counter!`, `gauge!` and `histogram!` in
/// the process (the service's, its libraries') lands here, and [`render`](Metrics::render)
/// writes them in the Prometheus text format for the admin endpoint's `/metrics`.
///
/// It is also a component, best added as a foundation so it outlives the rest: while it runs,
/// it keeps the recorder's memory bounded (histogram upkeep every 5 s), and its resource is a
/// clone of itself.
///
/// ```
/// use orderly::{Spec, System};
/// use orderly_telemetry::Metrics;
///
/// # fn main() -> Result<(), orderly_telemetry::Error> {
/// let metrics = Metrics::install()?;
/// let mut system = System::builder("service");
/// system.add(Spec::new("metrics").foundation(), (), metrics.clone());
///
/// metrics::counter!("orders_total", "outcome" => "accepted").increment(1);
/// assert!(metrics.render().contains(r#"orders_total{outcome="accepted"} 1"#));
/// # Ok(())
/// # }
/// ```
///
/// Serve it on the admin listener:
///
/// ```text
/// let render = metrics.clone();
/// system.add(Spec::new("admin").foundation(), (), Admin::new().metrics(move || render.render()));
/// ```
#[derive(Clone, Debug)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Installs a Prometheus recorder as the process's `metrics` recorder, with histogram
    /// buckets for every metric named `…_seconds` (Prometheus' default latency buckets, 5 ms to
    /// 10 s; without buckets the exporter renders histograms as summaries). Fails if a recorder
    /// is already installed.
    pub fn install() -> Result<Self, Error> {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
            .expect("the buckets are a non-empty constant");
        Self::install_with(builder)
    }

    /// Installs the recorder `builder` describes (histogram buckets, global labels, quantiles)
    /// as the process's `metrics` recorder. Fails if one is already installed.
    pub fn install_with(builder: PrometheusBuilder) -> Result<Self, Error> {
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).map_err(|_| ErrorKind::RecorderInstalled)?;
        Ok(Self { handle })
    }

    /// Every metric recorded so far, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// The exporter's handle, for what `render` does not cover.
    pub fn handle(&self) -> &PrometheusHandle {
        &self.handle
    }
}

impl Component for Metrics {
    type Deps = ();
    type Resource = Metrics;

    async fn start(&mut self, (): (), ctx: Context) -> Result<Metrics, BoxError> {
        let handle = self.handle.clone();
        let stopping = ctx.clone();
        ctx.spawn("upkeep", async move {
            let mut every = tokio::time::interval(UPKEEP);
            loop {
                tokio::select! {
                    _ = every.tick() => handle.run_upkeep(),
                    () = stopping.stopping() => return Ok::<_, BoxError>(()),
                }
            }
        });
        Ok(self.clone())
    }
}
