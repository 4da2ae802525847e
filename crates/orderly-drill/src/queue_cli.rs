//! `orderly-drill queue`: the message-queue drill's command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use orderly_drill::{
    Broker, Cleanup, DEFAULT_BODY, QueueDrill, QueueExpectation, QueueOptions, QueueReport,
    Scenario, Target,
};

/// Rolling restarts or SIGKILLs of consumer replicas while messages are published; every
/// confirmed message must have its effect exactly once.
#[derive(Debug, Args)]
pub(crate) struct QueueArgs {
    /// The consumer replica's command line (split on spaces, no shell); see the env contract.
    /// `{queue}` is replaced by the RabbitMQ queue or the JetStream stream, `{consumer}` by
    /// the JetStream durable consumer (`env FDC_QUEUE={queue} fab fdc`).
    #[arg(long = "replica-cmd")]
    replica_cmd: String,
    /// The broker.
    #[arg(long, value_enum, default_value_t = BrokerKind::Amqp)]
    broker: BrokerKind,
    /// The broker's URL (default: `AMQP_URL` or the local RabbitMQ's default vhost; `NATS_URL`
    /// or the local NATS server).
    #[arg(long)]
    broker_url: Option<String>,
    /// Consumer replicas.
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Rolling restarts during the publishing (the graceful scenario).
    #[arg(long, default_value_t = 2, conflicts_with = "sigkills")]
    restarts: usize,
    /// SIGKILLs at random moments instead of rolling restarts (the crash scenario).
    #[arg(long)]
    sigkills: Option<usize>,
    /// Messages to publish.
    #[arg(long, default_value_t = 5_000)]
    messages: u64,
    /// Messages a second.
    #[arg(long, default_value_t = 1_000)]
    rate: u32,
    /// PREFETCH given to each replica.
    #[arg(long, default_value_t = 32)]
    prefetch: u16,
    /// DATABASE_MAX_CONNECTIONS given to each replica.
    #[arg(long, default_value_t = 4)]
    database_connections: u32,
    /// SIGTERM to SIGKILL.
    #[arg(long, default_value = "10s", value_parser = orderly::parse_duration)]
    grace_period: Duration,
    /// How long a new replica may take to be counted as a consumer.
    #[arg(long, default_value = "20s", value_parser = orderly::parse_duration)]
    ready_timeout: Duration,
    /// How long the replicas may take to drain the queue after publishing.
    #[arg(long, default_value = "60s", value_parser = orderly::parse_duration)]
    drain_timeout: Duration,
    /// Drained when no message is ready and the effects stopped growing this long.
    #[arg(long, default_value = "2s", value_parser = orderly::parse_duration)]
    settle: Duration,
    /// PostgreSQL as a user that may create databases (default: `POSTGRES_URL`,
    /// `DATABASE_URL`, or the local server).
    #[arg(long)]
    database_url: Option<String>,
    /// Keep the drill's database and queue.
    #[arg(long)]
    keep: bool,
    /// A negative control: succeed only if some confirmed message was lost.
    #[arg(long)]
    expect_loss: bool,
    /// The SIGKILL moments' seed.
    #[arg(long)]
    seed: Option<u64>,
    /// The queue's and database's name (default: unique).
    #[arg(long)]
    name: Option<String>,
    /// Where the replicas' logs go (default: a new temporary directory, kept).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Each message's body: `{n}` is replaced by its number, `{id}` by its id (`m-<n>`).
    /// Default: `{"n":{n}}`, the `effects` convention.
    #[arg(long, requires = "effects_query")]
    body: Option<String>,
    /// SQL giving one row per handled message: its id (text) and how many times it was
    /// handled (bigint). With it, the drill does not create its `effects` table: the
    /// application's own tables are read (e.g. `SELECT id, deliveries FROM fdc_batches`).
    #[arg(long)]
    effects_query: Option<String>,
    /// Run once before the first replica, with the replicas' environment (DATABASE_URL, …),
    /// e.g. the application's migrations; must exit 0. `{queue}` and `{consumer}` are
    /// replaced as in `--replica-cmd`.
    #[arg(long)]
    setup_cmd: Option<String>,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BrokerKind {
    /// RabbitMQ.
    Amqp,
    /// NATS JetStream.
    Nats,
}

impl QueueArgs {
    fn into_options(self) -> (QueueOptions, Option<PathBuf>) {
        let mut options = QueueOptions::new(self.replica_cmd);
        options.broker = match (self.broker, self.broker_url) {
            (BrokerKind::Amqp, Some(url)) => Broker::Amqp { url },
            (BrokerKind::Amqp, None) => Broker::amqp_from_env(),
            (BrokerKind::Nats, Some(url)) => Broker::Nats { url },
            (BrokerKind::Nats, None) => Broker::nats_from_env(),
        };
        options.replicas = self.replicas;
        options.scenario = match self.sigkills {
            Some(kills) => Scenario::Sigkills(kills),
            None => Scenario::RollingRestarts(self.restarts),
        };
        options.messages = self.messages;
        options.rate = self.rate;
        options.prefetch = self.prefetch;
        options.database_connections = self.database_connections;
        options.grace_period = self.grace_period;
        options.ready_timeout = self.ready_timeout;
        options.drain_timeout = self.drain_timeout;
        options.settle = self.settle;
        if let Some(url) = self.database_url {
            options.database_url = url;
        }
        options.cleanup = if self.keep {
            Cleanup::Keep
        } else {
            Cleanup::Drop
        };
        options.expectation = if self.expect_loss {
            QueueExpectation::Loss
        } else {
            QueueExpectation::ExactlyOnce
        };
        options.seed = self.seed;
        options.name = self.name;
        options.work_dir = self.work_dir;
        if let Some(query) = self.effects_query {
            options.target = Target::custom(
                self.body.unwrap_or_else(|| DEFAULT_BODY.to_owned()),
                query,
                self.setup_cmd,
            );
        } else {
            options.target.setup_command = self.setup_cmd;
        }
        (options, self.report)
    }
}

/// Runs the queue drill: 0 expectation met, 1 not met, 2 invalid options, 3 could not run.
pub(crate) fn main(args: QueueArgs) -> ExitCode {
    let (options, report_path) = args.into_options();
    let drill = match QueueDrill::new(options) {
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
    crate::finish(
        &report.to_json(),
        &report.to_string(),
        report.passed(),
        report_path,
    )
}

fn run(drill: QueueDrill) -> Result<QueueReport, String> {
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
