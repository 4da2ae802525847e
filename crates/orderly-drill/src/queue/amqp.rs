//! RabbitMQ for the queue drill: the confirmed publisher, the queue's depth and consumers, and
//! its deletion at the end.

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use lapin::{Confirmation, PublisherConfirm};

use crate::error::{Error, redact};
use crate::queue::publish::Settled;

/// A connection of the drill's own to the broker (the replicas have theirs).
#[derive(Debug)]
pub(crate) struct Amqp {
    url: String,
    pub(crate) queue: String,
    connection: Connection,
}

/// What a passive declare says about a queue.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueueState {
    /// Messages ready for delivery (not those delivered and unacknowledged).
    pub(crate) ready: u32,
    pub(crate) consumers: u32,
}

impl Amqp {
    pub(crate) async fn connect(url: &str, queue: &str) -> Result<Self, Error> {
        let connection = Connection::connect(
            url,
            ConnectionProperties::default().with_connection_name("orderly-drill".into()),
        )
        .await
        .map_err(|e| Error::broker(format!("connect to {}", redact(url)), e))?;
        Ok(Self {
            url: url.to_owned(),
            queue: queue.to_owned(),
            connection,
        })
    }

    fn failed(&self, action: &str, error: lapin::Error) -> Error {
        Error::broker(format!("{action} (at {})", redact(&self.url)), error)
    }

    /// The replica's environment: `AMQP_URL` and `QUEUE`.
    pub(crate) fn replica_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AMQP_URL", self.url.clone()),
            ("QUEUE", self.queue.clone()),
        ]
    }

    /// The queue's state, `None` while it does not exist (the consumers declare it).
    pub(crate) async fn inspect(&self) -> Result<Option<QueueState>, Error> {
        self.inspect_queue(&self.queue).await
    }

    /// Messages in the dead-letter queue (`<queue>.dead`), 0 if it does not exist.
    pub(crate) async fn dead_lettered(&self) -> Result<u32, Error> {
        Ok(self
            .inspect_queue(&format!("{}.dead", self.queue))
            .await?
            .map_or(0, |state| state.ready))
    }

    async fn inspect_queue(&self, queue: &str) -> Result<Option<QueueState>, Error> {
        // A passive declare of a missing queue closes its channel: one channel per look.
        let channel = self
            .connection
            .create_channel()
            .await
            .map_err(|e| self.failed("open a channel", e))?;
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await;
        match declared {
            Ok(state) => {
                let _ = channel.close(200, "inspected".into()).await;
                Ok(Some(QueueState {
                    ready: state.message_count(),
                    consumers: state.consumer_count(),
                }))
            }
            // The queue is missing (the channel is closed by the broker), unless the
            // connection itself is gone.
            Err(error) if self.connection.status().connected() => {
                tracing::debug!(queue, %error, "the queue does not exist yet");
                Ok(None)
            }
            Err(error) => Err(self.failed(&format!("inspect queue {queue}"), error)),
        }
    }

    /// Deletes the queue and its dead-letter queue.
    pub(crate) async fn delete(&self) -> Result<(), Error> {
        let channel = self
            .connection
            .create_channel()
            .await
            .map_err(|e| self.failed("open a channel", e))?;
        for queue in [self.queue.clone(), format!("{}.dead", self.queue)] {
            channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await
                .map_err(|e| self.failed(&format!("delete queue {queue}"), e))?;
        }
        let _ = channel.close(200, "deleted".into()).await;
        Ok(())
    }

    /// A channel in confirm mode publishing to the queue through the default exchange.
    pub(crate) async fn publisher(&self) -> Result<AmqpPublisher, Error> {
        let channel = self
            .connection
            .create_channel()
            .await
            .map_err(|e| self.failed("open a channel", e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| self.failed("enable publisher confirms", e))?;
        Ok(AmqpPublisher {
            channel,
            queue: self.queue.clone(),
        })
    }

    pub(crate) async fn close(self) {
        let _ = self.connection.close(200, "drill over".into()).await;
    }
}

/// Publishes persistent, mandatory messages; a confirm is awaited separately.
#[derive(Debug)]
pub(crate) struct AmqpPublisher {
    channel: Channel,
    pub(crate) queue: String,
}

impl AmqpPublisher {
    /// Sends message `id` with `body`; the returned confirm resolves when the broker settled it.
    pub(crate) async fn send(&self, id: &str, body: &[u8]) -> Result<PublisherConfirm, String> {
        let properties = BasicProperties::default()
            .with_message_id(id.into())
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        self.channel
            .basic_publish(
                "".into(),
                self.queue.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// Closes the channel (every confirm has been awaited).
    pub(crate) async fn close(self) {
        let _ = self.channel.close(200, "published".into()).await;
    }
}

/// What the broker said about one published message.
pub(crate) async fn settle(confirm: PublisherConfirm) -> Settled {
    match confirm.await {
        Ok(Confirmation::Ack(None)) => Settled::Confirmed,
        Ok(Confirmation::Ack(Some(_))) => Settled::Returned,
        Ok(Confirmation::Nack(_)) => Settled::Nacked,
        Ok(Confirmation::NotRequested) | Err(_) => Settled::Unknown,
    }
}
