//! The broker, whichever it is: RabbitMQ or NATS JetStream, as the drill uses them.

use crate::error::{Error, redact};
use crate::queue::amqp::Amqp;
use crate::queue::nats::Nats;
use crate::queue::options::Broker;
use crate::queue::publish::Publisher;

/// The drill's client of the broker.
#[derive(Debug)]
pub(crate) enum Client {
    Amqp(Amqp),
    Nats(Nats),
}

/// What the broker says about the queue or the durable consumer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Depth {
    /// Messages not yet handled: ready (RabbitMQ: it does not say how many are delivered and
    /// unacknowledged), or pending plus acknowledgement-pending (JetStream).
    pub(crate) waiting: u64,
    /// Consumers the broker counts (RabbitMQ); `None` when it cannot say (JetStream's replicas
    /// share one durable pull consumer).
    pub(crate) consumers: Option<u32>,
}

impl Client {
    /// Connects; for NATS, creates the stream `name`. RabbitMQ's queue `name` is declared by
    /// the replicas.
    pub(crate) async fn connect(broker: &Broker, name: &str) -> Result<Self, Error> {
        match broker {
            Broker::Amqp { url } => Ok(Self::Amqp(Amqp::connect(url, name).await?)),
            Broker::Nats { url } => Ok(Self::Nats(Nats::connect(url, name).await?)),
        }
    }

    /// The RabbitMQ queue's or the JetStream stream's name.
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Amqp(amqp) => &amqp.queue,
            Self::Nats(nats) => &nats.stream,
        }
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Amqp(_) => "amqp",
            Self::Nats(_) => "nats",
        }
    }

    /// The environment every replica gets from the broker's side.
    pub(crate) fn replica_env(
        &self,
        prefetch: u16,
        database_connections: u32,
        database_url: &str,
    ) -> Vec<(&'static str, String)> {
        match self {
            Self::Amqp(amqp) => amqp.replica_env(),
            Self::Nats(nats) => nats.replica_env(prefetch, database_connections, database_url),
        }
    }

    pub(crate) async fn inspect(&self) -> Result<Option<Depth>, Error> {
        match self {
            Self::Amqp(amqp) => Ok(amqp.inspect().await?.map(|state| Depth {
                waiting: u64::from(state.ready),
                consumers: Some(state.consumers),
            })),
            Self::Nats(nats) => Ok(nats.inspect().await?.map(|state| Depth {
                waiting: state.pending + state.ack_pending,
                consumers: None,
            })),
        }
    }

    pub(crate) async fn dead_lettered(&self) -> Result<u64, Error> {
        match self {
            Self::Amqp(amqp) => Ok(u64::from(amqp.dead_lettered().await?)),
            Self::Nats(nats) => nats.dead_lettered().await,
        }
    }

    pub(crate) async fn delete(&self) -> Result<(), Error> {
        match self {
            Self::Amqp(amqp) => amqp.delete().await,
            Self::Nats(nats) => nats.delete().await,
        }
    }

    pub(crate) async fn publisher(&self) -> Result<Publisher, Error> {
        match self {
            Self::Amqp(amqp) => Ok(Publisher::Amqp(amqp.publisher().await?)),
            Self::Nats(nats) => Ok(Publisher::Nats(nats.publisher())),
        }
    }

    pub(crate) async fn close(self) {
        match self {
            Self::Amqp(amqp) => amqp.close().await,
            Self::Nats(nats) => nats.close().await,
        }
    }
}

impl Broker {
    /// The URL, its password redacted.
    pub(crate) fn redacted_url(&self) -> String {
        match self {
            Self::Amqp { url } | Self::Nats { url } => redact(url),
        }
    }
}
