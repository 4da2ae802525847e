//! What a queue drill does, and how it is checked.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, ErrorKind};

/// The broker the drill publishes to and the replicas consume from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Broker {
    /// RabbitMQ: a quorum queue the replicas declare, in the URL's vhost.
    Amqp {
        /// `amqp://user:password@host:port/vhost`.
        url: String,
    },
    /// NATS JetStream: the drill creates the stream (subjects `<stream>.>`, published on
    /// `<stream>.numbers`); the replicas share one durable pull consumer, `effects`.
    Nats {
        /// `nats://host:port`.
        url: String,
    },
}

impl Broker {
    /// The local NATS server, or `NATS_URL`.
    #[must_use]
    pub fn nats_from_env() -> Self {
        Self::Nats {
            url: std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned()),
        }
    }

    /// The local RabbitMQ's default vhost, or `AMQP_URL`.
    #[must_use]
    pub fn amqp_from_env() -> Self {
        Self::Amqp {
            url: std::env::var("AMQP_URL")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
        }
    }
}

/// What happens to the replicas while messages are published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "count")]
pub enum Scenario {
    /// Rolling restarts, evenly spread over the publishing: start a replacement, wait until
    /// the broker counts it as a consumer, SIGTERM the oldest replica, wait for its exit
    /// (which must be 0). Nothing may be lost and nothing handled twice.
    RollingRestarts(usize),
    /// SIGKILLs at random moments (seeded) of a random replica, each followed by a replacement.
    /// Nothing may be lost; messages handled twice are reported and must stay within the
    /// in-flight bound (kills × prefetch).
    Sigkills(usize),
}

/// What the drill must find.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueExpectation {
    /// Every confirmed message has exactly one effect (more than one is allowed after a
    /// SIGKILL, within the in-flight bound), and every SIGTERMed replica exited 0.
    #[default]
    ExactlyOnce,
    /// A negative control: some confirmed message must have no effect.
    Loss,
}

/// What to do with the drill's database and queue at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cleanup {
    /// Drop the database and delete the queue (and its dead-letter queue).
    #[default]
    Drop,
    /// Keep both, for a closer look.
    Keep,
}

/// What to drill and how. [`QueueOptions::new`] gives a short drill suited to CI; every field
/// can be changed before [`QueueDrill::new`](crate::QueueDrill::new) validates them.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct QueueOptions {
    /// The consumer replica's command line: a program and its arguments separated by spaces
    /// (no shell). It runs once per replica with the environment described in the crate docs.
    pub replica_command: String,
    /// The broker.
    pub broker: Broker,
    /// Consumer replicas running at once (one more during a rolling restart).
    pub replicas: usize,
    /// Rolling restarts or SIGKILLs.
    pub scenario: Scenario,
    /// Messages to publish.
    pub messages: u64,
    /// Messages a second.
    pub rate: u32,
    /// Given to each replica as `PREFETCH`.
    pub prefetch: u16,
    /// Given to each replica as `DATABASE_MAX_CONNECTIONS`. PostgreSQL's `max_connections`
    /// (100 by default) bounds replicas × this over every drill running at once.
    pub database_connections: u32,
    /// SIGTERM to SIGKILL.
    pub grace_period: Duration,
    /// How long a new replica may take until the broker counts it as a consumer.
    pub ready_timeout: Duration,
    /// How long the replicas may take to drain the queue once publishing stopped.
    pub drain_timeout: Duration,
    /// The queue counts as drained when it has no ready message and the effects stopped
    /// growing for this long (or every confirmed message has its effect).
    pub settle: Duration,
    /// PostgreSQL, as a user that may create databases; the drill's database is created
    /// beside the one named here.
    pub database_url: String,
    /// Drop or keep the database and queue at the end.
    pub cleanup: Cleanup,
    /// What the drill must find.
    pub expectation: QueueExpectation,
    /// Where the replicas' logs go (default: a new temporary directory, kept).
    pub work_dir: Option<PathBuf>,
    /// The seed of the SIGKILL moments and victims (default: from the clock; reported).
    pub seed: Option<u64>,
    /// The queue's and database's name (default: `qdrill-<pid>-<n>`, unique).
    pub name: Option<String>,
    /// What the replicas under drill consume and write: by default the `effects` table
    /// convention of the crate docs; [`Target::custom`] for an application with its own message
    /// format and its own tables (`fab fdc`, say).
    pub target: Target,
}

/// The message body template `{"n":{n}}` of the `effects` convention.
pub const DEFAULT_BODY: &str = r#"{"n":{n}}"#;

/// The effects query of the `effects` convention.
pub const DEFAULT_EFFECTS_QUERY: &str = "SELECT message_id, handled::bigint FROM effects";

/// The messages the drill publishes and where it finds their effects.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Target {
    /// The body of each message, with `{n}` replaced by the message's number and `{id}` by its
    /// id (`m-<n>`).
    pub body: String,
    /// A query on the drill's database giving one row per handled message id: the id (text)
    /// and how many times it was handled (bigint), e.g. `SELECT id, deliveries FROM
    /// fdc_batches`. The drill counts its rows while it waits for the drain and joins them
    /// with what it published at the end.
    pub effects_query: String,
    /// Whether the drill creates the `effects` table in its database (the convention's table;
    /// an application's tables come from its own migrations, in `setup_command`).
    pub create_effects_table: bool,
    /// Run once after the database was created and before the first replica starts, with the
    /// replicas' environment (`DATABASE_URL`, …); it must exit 0. The place for an
    /// application's migrations and reference data. Split on spaces like the replica command,
    /// with the same placeholders.
    pub setup_command: Option<String>,
}

impl Default for Target {
    fn default() -> Self {
        Self {
            body: DEFAULT_BODY.to_owned(),
            effects_query: DEFAULT_EFFECTS_QUERY.to_owned(),
            create_effects_table: true,
            setup_command: None,
        }
    }
}

impl Target {
    /// An application's own message `body` template and `effects_query`, its database
    /// prepared by `setup_command`; no `effects` table.
    #[must_use]
    pub fn custom(
        body: impl Into<String>,
        effects_query: impl Into<String>,
        setup_command: Option<String>,
    ) -> Self {
        Self {
            body: body.into(),
            effects_query: effects_query.into(),
            create_effects_table: false,
            setup_command,
        }
    }
}

impl QueueOptions {
    /// A short drill of `replica_command` on the local RabbitMQ (`AMQP_URL`) and PostgreSQL
    /// (`POSTGRES_URL` or `DATABASE_URL`): 3 replicas, 2 rolling restarts, 5,000 messages at
    /// 1,000 a second, prefetch 32, 4 database connections per replica.
    #[must_use]
    pub fn new(replica_command: impl Into<String>) -> Self {
        Self {
            replica_command: replica_command.into(),
            broker: Broker::amqp_from_env(),
            replicas: 3,
            scenario: Scenario::RollingRestarts(2),
            messages: 5_000,
            rate: 1_000,
            prefetch: 32,
            database_connections: 4,
            grace_period: Duration::from_secs(10),
            ready_timeout: Duration::from_secs(20),
            drain_timeout: Duration::from_secs(60),
            settle: Duration::from_secs(2),
            database_url: std::env::var("POSTGRES_URL")
                .or_else(|_| std::env::var("DATABASE_URL"))
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
            cleanup: Cleanup::Drop,
            expectation: QueueExpectation::ExactlyOnce,
            work_dir: None,
            seed: None,
            name: None,
            target: Target::default(),
        }
    }

    /// Every problem with the options, each naming its option.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if self.replica_command.split_whitespace().next().is_none() {
            problems.push("replica command: empty".to_owned());
        }
        if self.replicas == 0 {
            problems.push("replicas: at least 1".to_owned());
        }
        if self.messages == 0 {
            problems.push("messages: at least 1".to_owned());
        }
        if self.rate == 0 {
            problems.push("rate: at least 1 message a second".to_owned());
        }
        if self.prefetch == 0 {
            problems.push("prefetch: at least 1".to_owned());
        }
        if self.database_connections == 0 {
            problems.push("database connections: at least 1".to_owned());
        }
        if let Some(name) = &self.name
            && (name.is_empty()
                || name.len() > 60
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            problems.push(format!(
                "name: '{name}' must be 1 to 60 letters, digits, '-' or '_'"
            ));
        }
        if !self.target.body.contains("{n}") && !self.target.body.contains("{id}") {
            problems.push(
                "body: the template must contain {n} or {id}, or every message is the same"
                    .to_owned(),
            );
        }
        if self.target.effects_query.trim().is_empty() {
            problems.push("effects query: empty".to_owned());
        }
        if let Some(setup) = &self.target.setup_command
            && setup.split_whitespace().next().is_none()
        {
            problems.push("setup command: empty".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::InvalidOptions(problems)))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{QueueOptions, Target};
    use crate::error::ErrorKind;

    #[test]
    fn a_target_without_a_number_hole_or_a_query_is_refused_naming_each() {
        let mut options = QueueOptions::new("consumer");
        options.target = Target::custom(r#"{"same":1}"#, " ", Some(" ".to_owned()));
        let error = options.validate().unwrap_err();
        let ErrorKind::InvalidOptions(problems) = error.kind() else {
            panic!("{error}");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        for option in ["body", "effects query", "setup command"] {
            assert!(
                problems.iter().any(|p| p.starts_with(option)),
                "{problems:?}"
            );
        }
        options.target = Target::custom("{\"tool\":\"t-{n}\"}", "SELECT 1", None);
        assert!(options.validate().is_ok());
    }
}
