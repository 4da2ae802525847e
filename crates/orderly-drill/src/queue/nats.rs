//! NATS JetStream for the queue drill: the stream (created by the drill), the publisher
//! awaiting each PubAck, the durable consumer's pending counts, and the streams' deletion.

use async_nats::jetstream::{self, Context, context::PublishAckFuture, stream};

use crate::error::{Error, redact};
use crate::queue::publish::Settled;

/// The durable consumer the replicas share.
pub(crate) const CONSUMER: &str = "effects";

/// The drill's own client of the server.
#[derive(Debug)]
pub(crate) struct Nats {
    url: String,
    pub(crate) stream: String,
    client: async_nats::Client,
    js: Context,
}

/// What the server says about the durable consumer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConsumerState {
    /// Messages not yet delivered.
    pub(crate) pending: u64,
    /// Messages delivered and not yet acknowledged (a killed replica's, until `AckWait`).
    pub(crate) ack_pending: u64,
}

impl Nats {
    /// Connects and creates the stream `stream` on the subjects `<stream>.>`.
    pub(crate) async fn connect(url: &str, stream: &str) -> Result<Self, Error> {
        let client = async_nats::connect(url)
            .await
            .map_err(|e| Error::broker(format!("connect to {}", redact(url)), e))?;
        let js = jetstream::new(client.clone());
        js.create_stream(stream::Config {
            name: stream.to_owned(),
            subjects: vec![format!("{stream}.>")],
            ..stream::Config::default()
        })
        .await
        .map_err(|e| Error::broker(format!("create stream {stream} at {}", redact(url)), e))?;
        Ok(Self {
            url: url.to_owned(),
            stream: stream.to_owned(),
            client,
            js,
        })
    }

    fn failed(
        &self,
        action: &str,
        error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::broker(format!("{action} (at {})", redact(&self.url)), error)
    }

    /// The replica's environment: `NATS_URL`, `STREAM`, `CONSUMER`, and the same under the
    /// names orderly-nats' zero-loss example reads (`ZERO_LOSS_…`).
    pub(crate) fn replica_env(
        &self,
        prefetch: u16,
        database_connections: u32,
        database_url: &str,
    ) -> Vec<(&'static str, String)> {
        vec![
            ("NATS_URL", self.url.clone()),
            ("STREAM", self.stream.clone()),
            ("CONSUMER", CONSUMER.to_owned()),
            ("ZERO_LOSS_DATABASE_URL", database_url.to_owned()),
            (
                "ZERO_LOSS_DATABASE_MAX_CONNECTIONS",
                database_connections.to_string(),
            ),
            ("ZERO_LOSS_NATS__URL", self.url.clone()),
            ("ZERO_LOSS_NATS__STREAM", self.stream.clone()),
            ("ZERO_LOSS_NATS__CONSUMER", CONSUMER.to_owned()),
            ("ZERO_LOSS_NATS__PREFETCH", prefetch.to_string()),
            // A killed replica's messages come back after this.
            ("ZERO_LOSS_NATS__ACK_WAIT", "2s".to_owned()),
        ]
    }

    /// The durable consumer's state, `None` while it does not exist (the replicas create it).
    pub(crate) async fn inspect(&self) -> Result<Option<ConsumerState>, Error> {
        let stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| self.failed(&format!("look up stream {}", self.stream), e))?;
        match stream.consumer_info(CONSUMER).await {
            Ok(info) => Ok(Some(ConsumerState {
                pending: info.num_pending,
                ack_pending: info.num_ack_pending as u64,
            })),
            Err(error)
                if self.client.connection_state() == async_nats::connection::State::Connected =>
            {
                tracing::debug!(%error, "the durable consumer does not exist yet");
                Ok(None)
            }
            Err(error) => Err(self.failed("read the durable consumer", error)),
        }
    }

    /// Messages in the dead-letter stream (`<stream>_DEAD`), 0 if it does not exist.
    pub(crate) async fn dead_lettered(&self) -> Result<u64, Error> {
        match self.js.get_stream(format!("{}_DEAD", self.stream)).await {
            Ok(stream) => Ok(stream
                .get_info()
                .await
                .map_err(|e| self.failed("read the dead-letter stream", e))?
                .state
                .messages),
            Err(_) => Ok(0),
        }
    }

    /// Deletes the stream and its dead-letter stream.
    pub(crate) async fn delete(&self) -> Result<(), Error> {
        self.js
            .delete_stream(&self.stream)
            .await
            .map_err(|e| self.failed(&format!("delete stream {}", self.stream), e))?;
        let _ = self.js.delete_stream(format!("{}_DEAD", self.stream)).await;
        Ok(())
    }

    /// A publisher on `<stream>.numbers`.
    pub(crate) fn publisher(&self) -> NatsPublisher {
        NatsPublisher {
            js: self.js.clone(),
            subject: format!("{}.numbers", self.stream),
        }
    }

    pub(crate) async fn close(self) {
        let _ = self.client.flush().await;
    }
}

/// Publishes with a message id (`Nats-Msg-Id`); the PubAck is awaited separately.
#[derive(Debug)]
pub(crate) struct NatsPublisher {
    js: Context,
    subject: String,
}

impl NatsPublisher {
    pub(crate) async fn send(&self, id: &str, body: &[u8]) -> Result<PublishAckFuture, String> {
        let message = jetstream::message::PublishMessage::build()
            .payload(body.to_vec().into())
            .message_id(id);
        self.js
            .send_publish(self.subject.clone(), message)
            .await
            .map_err(|e| e.to_string())
    }
}

/// What the server said about one published message.
pub(crate) async fn settle(ack: PublishAckFuture) -> Settled {
    match ack.await {
        Ok(ack) if !ack.duplicate => Settled::Confirmed,
        // A duplicate id: the server kept the first copy only (the drill never resends).
        Ok(_) => Settled::Returned,
        Err(_) => Settled::Unknown,
    }
}
