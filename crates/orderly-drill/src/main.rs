//! `orderly-drill`: simulates a Kubernetes rolling update of a service on this machine and
//! counts every request. See the crate docs for the replica contract.
//!
//! Exit status: 0 when the expectation was met, 1 when it was not, 2 on invalid options,
//! 3 when the drill could not run.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use orderly_drill::{
    Connections, Drill, Expectation, ExpectedStatus, HeaderTemplate, HttpVersion, Load, Options,
    Probe, Report,
};

mod queue_cli;

/// Drills that count: a rolling update of an HTTP service (the default command), or a
/// message-queue drill (`queue`).
#[derive(Debug, Parser)]
#[command(
    name = "orderly-drill",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    http: Option<Args>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Rolling restarts or SIGKILLs of consumer replicas under sustained publishing; every
    /// confirmed message's effect exactly once.
    Queue(queue_cli::QueueArgs),
}

/// Simulates a Kubernetes rolling update of a service on this machine and counts every request.
#[derive(Debug, clap::Args)]
struct Args {
    /// The replica's command line (split on spaces, no shell); see the env contract in the docs.
    #[arg(long = "replica-cmd")]
    replica_cmd: String,
    /// Replicas of the Deployment.
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Rolling updates, one after the other.
    #[arg(long, default_value_t = 1)]
    rollouts: usize,
    /// maxSurge.
    #[arg(long, default_value_t = 1)]
    max_surge: usize,
    /// maxUnavailable.
    #[arg(long, default_value_t = 0)]
    max_unavailable: usize,
    /// How long a deleted replica's endpoint is still routed to.
    #[arg(long, default_value = "500ms", value_parser = orderly::parse_duration)]
    propagation_delay: Duration,
    /// SHUTDOWN_DELAY given to each replica.
    #[arg(long, default_value = "1s", value_parser = orderly::parse_duration)]
    shutdown_delay: Duration,
    /// SHUTDOWN_TIMEOUT given to each replica.
    #[arg(long, default_value = "5s", value_parser = orderly::parse_duration)]
    shutdown_timeout: Duration,
    /// SIGTERM to SIGKILL (terminationGracePeriodSeconds).
    #[arg(long, default_value = "10s", value_parser = orderly::parse_duration)]
    grace_period: Duration,
    /// Readiness probe: initialDelaySeconds.
    #[arg(long, default_value = "0", value_parser = orderly::parse_duration)]
    probe_initial_delay: Duration,
    /// Readiness probe: periodSeconds.
    #[arg(long, default_value = "100ms", value_parser = orderly::parse_duration)]
    probe_period: Duration,
    /// Readiness probe: timeoutSeconds.
    #[arg(long, default_value = "500ms", value_parser = orderly::parse_duration)]
    probe_timeout: Duration,
    /// Readiness probe: successThreshold.
    #[arg(long, default_value_t = 1)]
    probe_success_threshold: u32,
    /// Readiness probe: failureThreshold.
    #[arg(long, default_value_t = 3)]
    probe_failure_threshold: u32,
    /// How long a rollout may go without a replica becoming ready.
    #[arg(long, default_value = "30s", value_parser = orderly::parse_duration)]
    progress_deadline: Duration,
    /// Concurrent clients, each sending its next request when the previous one ended.
    #[arg(long, default_value_t = 8, conflicts_with = "rate")]
    clients: usize,
    /// Requests a second instead of clients (an open model).
    #[arg(long)]
    rate: Option<u32>,
    /// Pooled keep-alive or fresh connections from the load generator.
    #[arg(long, value_enum, default_value_t = Connections::Pooled)]
    connections: Connections,
    /// The load generator's HTTP version.
    #[arg(long, value_enum, default_value_t = HttpVersion::Http1)]
    http: HttpVersion,
    /// The load balancer's HTTP version to the replicas.
    #[arg(long, value_enum, default_value_t = HttpVersion::Http1)]
    upstream_http: HttpVersion,
    /// Each request's method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// The path and query each request asks for; `{id}` here, in `--header` values and in the
    /// body is replaced with the request's id.
    #[arg(long, default_value = "/work?ms=5")]
    path: String,
    /// A request header, `Name: value` (repeatable), e.g. `Idempotency-Key: drill-{id}`.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<HeaderTemplate>,
    /// Each request's body.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// Each request's body, read from this file.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// The statuses that count as a success: `2xx`, or codes separated by commas.
    #[arg(long, default_value = "2xx")]
    expect_status: ExpectedStatus,
    /// Client timeout for a whole request.
    #[arg(long, default_value = "10s", value_parser = orderly::parse_duration)]
    request_timeout: Duration,
    /// Load balancer timeout for a whole upstream exchange.
    #[arg(long, default_value = "10s", value_parser = orderly::parse_duration)]
    upstream_timeout: Duration,
    /// Load before the first and after the last rollout.
    #[arg(long, default_value = "1s", value_parser = orderly::parse_duration)]
    steady: Duration,
    /// Load between rollouts.
    #[arg(long, default_value = "500ms", value_parser = orderly::parse_duration)]
    pause: Duration,
    /// The load balancer's address (loopback).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where ledgers and replica logs go (default: a new temporary directory, kept).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write every request's record here (JSON lines: id, sent_ms, latency_ms, outcome, replica).
    #[arg(long)]
    records: Option<PathBuf>,
    /// A negative control: succeed only if some request failed.
    #[arg(long)]
    expect_failures: bool,
}

impl Args {
    fn into_options(self) -> Result<(Options, Option<PathBuf>), String> {
        let body = match &self.body_file {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|error| {
                format!("--body-file {}: cannot read it: {error}", path.display())
            })?),
            None => self.body.clone(),
        };
        let mut options = Options::new(self.replica_cmd);
        options.replicas = self.replicas;
        options.rollouts = self.rollouts;
        options.max_surge = self.max_surge;
        options.max_unavailable = self.max_unavailable;
        options.propagation_delay = self.propagation_delay;
        options.shutdown_delay = self.shutdown_delay;
        options.shutdown_timeout = self.shutdown_timeout;
        options.grace_period = self.grace_period;
        let mut probe = Probe::fast();
        probe.initial_delay = self.probe_initial_delay;
        probe.period = self.probe_period;
        probe.timeout = self.probe_timeout;
        probe.success_threshold = self.probe_success_threshold;
        probe.failure_threshold = self.probe_failure_threshold;
        options.probe = probe;
        options.progress_deadline = self.progress_deadline;
        options.load = match self.rate {
            Some(rate) => Load::Rate(rate),
            None => Load::Clients(self.clients),
        };
        options.connections = self.connections;
        options.client_http = self.http;
        options.upstream_http = self.upstream_http;
        options.method = self.method;
        options.path = self.path;
        options.headers = self.headers;
        options.body = body;
        options.expect_status = self.expect_status;
        options.request_timeout = self.request_timeout;
        options.upstream_timeout = self.upstream_timeout;
        options.steady = self.steady;
        options.pause = self.pause;
        options.listen = self.listen;
        options.work_dir = self.work_dir;
        options.records = self.records;
        options.expectation = if self.expect_failures {
            Expectation::Failures
        } else {
            Expectation::NoFailures
        };
        Ok((options, self.report))
    }
}

fn main() -> ExitCode {
    telemetry();
    let cli = Cli::parse();
    match (cli.command, cli.http) {
        (Some(Command::Queue(args)), _) => queue_cli::main(args),
        (None, Some(args)) => http(args),
        (None, None) => {
            tracing::error!("--replica-cmd is required (or a subcommand: queue)");
            ExitCode::from(2)
        }
    }
}

/// The HTTP rolling-update drill.
fn http(args: Args) -> ExitCode {
    let (options, report_path) = match args.into_options() {
        Ok(options) => options,
        Err(error) => {
            tracing::error!("{error}");
            return ExitCode::from(2);
        }
    };
    let drill = match Drill::new(options) {
        Ok(drill) => drill,
        Err(error) => {
            tracing::error!("{error}");
            return ExitCode::from(2);
        }
    };
    let report = match run(drill) {
        Ok(report) => report,
        Err(error) => {
            tracing::error!("{error}");
            return ExitCode::from(3);
        }
    };
    finish(
        &report.to_json(),
        &report.to_string(),
        report.passed(),
        report_path,
    )
}

/// Writes the JSON report, prints the summary, and gives the exit status.
fn finish(json: &str, summary: &str, passed: bool, report_path: Option<PathBuf>) -> ExitCode {
    if let Some(path) = report_path
        && let Err(error) = std::fs::write(&path, json)
    {
        tracing::error!(%error, path = %path.display(), "cannot write the report");
        return ExitCode::from(3);
    }
    // The summary is the program's output; a closed stdout is not a reason to fail the drill.
    let _ = write!(std::io::stdout().lock(), "{summary}");
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs the drill on a multi-threaded runtime; the error names its cause.
fn run(drill: Drill) -> Result<Report, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))?;
    runtime
        .block_on(drill.run())
        .map_err(|error| match std::error::Error::source(&error) {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_string(),
        })
}

/// Logs to stderr, level from `RUST_LOG` (default info).
fn telemetry() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
