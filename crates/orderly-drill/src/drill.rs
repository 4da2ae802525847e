//! The drill's options and its run: load balancer, replicas, load, rollouts, report.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::balancer;
use crate::cluster::{Cluster, Strategy};
use crate::endpoints::Endpoints;
use crate::error::{Error, ErrorKind};
use crate::load::{self, Connections, HttpVersion, Load};
use crate::probe::Probe;
use crate::replica::Launcher;
use crate::report::{Expectation, Inputs, Report, Rollout, as_ms};
use crate::template::{ExpectedStatus, HeaderTemplate, Template};

/// What to drill and how. [`Options::new`] gives a short drill suited to CI; every field can be
/// changed before [`Drill::new`] validates them.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Options {
    /// The replica's command line: a program and its arguments separated by spaces (no shell
    /// quoting; wrap anything more complex in a script). It runs once per replica with the
    /// environment described in the crate docs.
    pub replica_command: String,
    /// Replicas of the Deployment.
    pub replicas: usize,
    /// Rolling updates to run, one after the other.
    pub rollouts: usize,
    /// Replicas above `replicas` during a rollout (`maxSurge`).
    pub max_surge: usize,
    /// Replicas below `replicas` that may be unavailable during a rollout (`maxUnavailable`).
    pub max_unavailable: usize,
    /// How long a deleted replica's endpoint is still routed to.
    #[serde(serialize_with = "as_ms", rename = "propagation_delay_ms")]
    pub propagation_delay: Duration,
    /// Given to each replica as `SHUTDOWN_DELAY`.
    #[serde(serialize_with = "as_ms", rename = "shutdown_delay_ms")]
    pub shutdown_delay: Duration,
    /// Given to each replica as `SHUTDOWN_TIMEOUT`.
    #[serde(serialize_with = "as_ms", rename = "shutdown_timeout_ms")]
    pub shutdown_timeout: Duration,
    /// SIGTERM to SIGKILL (`terminationGracePeriodSeconds`).
    #[serde(serialize_with = "as_ms", rename = "grace_period_ms")]
    pub grace_period: Duration,
    /// The readiness probe on the replica's admin `/readyz`.
    pub probe: Probe,
    /// How long a rollout may go without a replica becoming ready.
    #[serde(serialize_with = "as_ms", rename = "progress_deadline_ms")]
    pub progress_deadline: Duration,
    /// How much load.
    pub load: Load,
    /// Pooled keep-alive or fresh connections from the load generator.
    pub connections: Connections,
    /// The load generator's HTTP version.
    pub client_http: HttpVersion,
    /// The load balancer's HTTP version to the replicas.
    pub upstream_http: HttpVersion,
    /// Each request's method.
    pub method: String,
    /// The path and query each request asks for; `{id}` stands for the request's id (as in
    /// `headers` and `body`).
    pub path: String,
    /// Headers each request carries besides the drill's own `x-drill-id`.
    pub headers: Vec<HeaderTemplate>,
    /// Each request's body; none when `None`.
    pub body: Option<String>,
    /// The statuses that count as a success; any other is a failure of kind `status`.
    pub expect_status: ExpectedStatus,
    /// A request without a complete response by then is a client timeout.
    #[serde(serialize_with = "as_ms", rename = "request_timeout_ms")]
    pub request_timeout: Duration,
    /// An upstream exchange without a complete response by then is an upstream timeout.
    #[serde(serialize_with = "as_ms", rename = "upstream_timeout_ms")]
    pub upstream_timeout: Duration,
    /// Load before the first and after the last rollout.
    #[serde(serialize_with = "as_ms", rename = "steady_ms")]
    pub steady: Duration,
    /// Load between two rollouts.
    #[serde(serialize_with = "as_ms", rename = "pause_ms")]
    pub pause: Duration,
    /// Where the load balancer listens (loopback only; port 0 picks one).
    pub listen: SocketAddr,
    /// Where ledgers and replica logs go; a new temporary directory, kept, when `None`.
    pub work_dir: Option<PathBuf>,
    /// Where to write every request's record (JSON lines, by id: `id`, `sent_ms`,
    /// `latency_ms`, `outcome`, `replica`); none when `None`.
    pub records: Option<PathBuf>,
    /// What the drill expects.
    pub expectation: Expectation,
}

impl Options {
    /// A short drill of `replica_command`: 3 replicas, 1 rollout (`maxSurge` 1,
    /// `maxUnavailable` 0), propagation delay 500 ms, shutdown delay 1 s, shutdown timeout 5 s,
    /// grace period 10 s, [`Probe::fast`], 8 pooled HTTP/1.1 clients on `/work?ms=5`, 1 s of
    /// steady load before and after.
    #[must_use]
    pub fn new(replica_command: impl Into<String>) -> Self {
        Self {
            replica_command: replica_command.into(),
            replicas: 3,
            rollouts: 1,
            max_surge: 1,
            max_unavailable: 0,
            propagation_delay: Duration::from_millis(500),
            shutdown_delay: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(5),
            grace_period: Duration::from_secs(10),
            probe: Probe::fast(),
            progress_deadline: Duration::from_secs(30),
            load: Load::Clients(8),
            connections: Connections::Pooled,
            client_http: HttpVersion::Http1,
            upstream_http: HttpVersion::Http1,
            method: "GET".to_owned(),
            path: "/work?ms=5".to_owned(),
            headers: Vec::new(),
            body: None,
            expect_status: ExpectedStatus::Success,
            request_timeout: Duration::from_secs(10),
            upstream_timeout: Duration::from_secs(10),
            steady: Duration::from_secs(1),
            pause: Duration::from_millis(500),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            work_dir: None,
            records: None,
            expectation: Expectation::NoFailures,
        }
    }

    /// The request template, or every problem with it.
    fn template(&self) -> Result<Template, Vec<String>> {
        Template::new(
            &self.method,
            &self.path,
            &self.headers,
            self.body.as_deref(),
        )
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = self.probe.problems();
        if self.replica_command.split_whitespace().next().is_none() {
            problems.push("--replica-cmd is empty".to_owned());
        }
        if self.replicas == 0 {
            problems.push("--replicas must be at least 1".to_owned());
        }
        if self.max_surge == 0 && self.max_unavailable == 0 {
            problems.push(
                "--max-surge and --max-unavailable are both 0: a rollout could never progress"
                    .to_owned(),
            );
        }
        match self.load {
            Load::Clients(0) => problems.push("--clients must be at least 1".to_owned()),
            Load::Rate(0) => problems.push("--rate must be at least 1".to_owned()),
            Load::Clients(_) | Load::Rate(_) => {}
        }
        if let Err(template) = self.template() {
            problems.extend(template);
        }
        if !self.listen.ip().is_loopback() {
            problems.push(format!(
                "--listen {} is not a loopback address (the drill stays on this machine)",
                self.listen
            ));
        }
        if self.request_timeout.is_zero() || self.upstream_timeout.is_zero() {
            problems.push("--request-timeout and --upstream-timeout must be above 0".to_owned());
        }
        problems
    }
}

/// A validated drill, ready to [`run`](Drill::run).
#[derive(Debug)]
#[must_use = "a drill does nothing until it is run"]
pub struct Drill {
    options: Options,
    template: Template,
}

impl Drill {
    /// Validates `options`, reporting every problem at once.
    pub fn new(options: Options) -> Result<Self, Error> {
        let problems = options.problems();
        match options.template() {
            Ok(template) if problems.is_empty() => Ok(Self { options, template }),
            _ => Err(Error::new(ErrorKind::InvalidOptions(problems))),
        }
    }

    /// Runs the drill: starts the load balancer and the first replicas, waits until they are
    /// ready, sends load for the steady period, runs the rollouts, sends load for the steady
    /// period again, stops the load and every replica, and reads the ledgers.
    ///
    /// An error means the drill could not run (a replica never became ready…); lost requests
    /// are not errors but the report's findings. Replicas still running when the future ends or
    /// is dropped are killed.
    pub async fn run(self) -> Result<Report, Error> {
        let Self { options, template } = self;
        let epoch = Instant::now();
        let work_dir = match &options.work_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
                dir.clone()
            }
            None => tempfile::Builder::new()
                .prefix("orderly-drill-")
                .tempdir()
                .map_err(|e| Error::file(std::env::temp_dir(), e))?
                .keep(),
        };
        let tracker = TaskTracker::new();
        // If this future ends early (an error, or dropped), the balancer and the load stop and
        // the replicas are killed.
        let stop = CancellationToken::new();
        let _stop_on_exit = stop.clone().drop_guard();
        let abort = CancellationToken::new();
        let _kill_on_exit = abort.clone().drop_guard();

        let endpoints = Arc::new(Endpoints::default());
        let listener = balancer::bind(options.listen).await?;
        let target = listener.local_addr().map_err(|source| {
            Error::new(ErrorKind::Bind {
                addr: options.listen,
                source,
            })
        })?;
        tracing::info!(%target, work_dir = %work_dir.display(), "load balancer listening");
        balancer::serve(
            listener,
            endpoints.clone(),
            options.upstream_http,
            options.upstream_timeout,
            &tracker,
            stop.clone(),
        );

        let mut words = options
            .replica_command
            .split_whitespace()
            .map(str::to_owned);
        let (changes_tx, changes) = mpsc::unbounded_channel();
        let launcher = Launcher {
            program: words.next().unwrap_or_default(),
            args: words.collect(),
            shutdown_delay: options.shutdown_delay,
            shutdown_timeout: options.shutdown_timeout,
            work_dir: work_dir.clone(),
            probe: options.probe,
            epoch,
            tracker: tracker.clone(),
            abort: abort.clone(),
            changes: changes_tx,
        };
        let mut cluster = Cluster::new(
            launcher,
            changes,
            endpoints,
            Strategy {
                replicas: options.replicas,
                max_surge: options.max_surge,
                max_unavailable: options.max_unavailable,
                propagation_delay: options.propagation_delay,
                grace_period: options.grace_period,
                progress_deadline: options.progress_deadline,
            },
        );
        cluster.start().await?;
        tracing::info!("first replicas ready; load starts");

        // The load stops first, its requests in flight ending normally; the balancer after.
        let stop_load = stop.child_token();
        let load = tracker.spawn(load::run(
            load::Settings {
                load: options.load,
                connections: options.connections,
                version: options.client_http,
                target,
                template,
                expect: options.expect_status.clone(),
                timeout: options.request_timeout,
            },
            epoch,
            tracker.clone(),
            stop_load.clone(),
        ));
        let mut rollouts = Vec::new();
        cluster.idle(options.steady).await;
        for n in 0..options.rollouts {
            if n > 0 {
                cluster.idle(options.pause).await;
            }
            let started = Instant::now();
            tracing::info!(rollout = n + 1, "rollout starts");
            cluster.roll().await?;
            rollouts.push(Rollout {
                started: started.duration_since(epoch),
                duration: started.elapsed(),
            });
            tracing::info!(rollout = n + 1, took = ?started.elapsed(), "rollout done");
        }
        cluster.idle(options.steady).await;

        stop_load.cancel();
        let records = load.await.unwrap_or_default();
        cluster.stop().await;
        stop.cancel();
        tracker.close();
        // Connection tasks end with `stop`; replicas have exited.
        if tokio::time::timeout(Duration::from_secs(5), tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connection tasks did not end");
        }

        if let Some(path) = &options.records {
            load::write_records(path, &records).map_err(|e| Error::file(path, e))?;
        }
        let report = Report::build(Inputs {
            expectation: options.expectation,
            records: &records,
            replicas: cluster.records(),
            rollouts,
            work_dir: &work_dir,
            duration: epoch.elapsed(),
            options: serde_json::to_value(&options).unwrap_or_default(),
        })?;
        Ok(report)
    }
}
