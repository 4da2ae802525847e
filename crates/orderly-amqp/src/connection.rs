//! Connecting, with a name operators can see, and the backoff between attempts.

use std::time::Duration;

use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use orderly_config::Secret;

use crate::error::{ErrorKind, redact};
use crate::settings::{Declare, QueueType};

/// A connection and the one channel a component uses on it, in confirm mode.
pub(crate) struct Link {
    pub(crate) connection: Connection,
    pub(crate) channel: Channel,
}

impl Link {
    /// Connects to `url` with `name` as the connection's `connection_name` (what
    /// `rabbitmqctl list_connections client_properties` and the management UI show), opens a
    /// channel and turns publisher confirms on.
    pub(crate) async fn open(url: &Secret<String>, name: &str) -> Result<Self, ErrorKind> {
        let connect_error = |error: lapin::Error| ErrorKind::Connect {
            url: redact(url.expose()),
            reason: error.to_string(),
        };
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let connection = Connection::connect(url.expose(), properties)
            .await
            .map_err(connect_error)?;
        let channel = connection.create_channel().await.map_err(connect_error)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(connect_error)?;
        Ok(Self {
            connection,
            channel,
        })
    }

    /// Closes the channel, then the connection; errors are logged (the broker requeues what
    /// was not acknowledged anyway).
    pub(crate) async fn close(&self, component: &str) {
        if self.channel.status().connected()
            && let Err(error) = self.channel.close(200, "stopping".into()).await
        {
            tracing::debug!(component, %error, "closing the channel");
        }
        if self.connection.status().connected()
            && let Err(error) = self.connection.close(200, "stopping".into()).await
        {
            tracing::debug!(component, %error, "closing the connection");
        }
    }
}

/// Declares (or checks) durable queue `name` of type `queue_type`; returns its message count.
pub(crate) async fn declare_queue(
    channel: &Channel,
    name: &str,
    queue_type: QueueType,
    declare: Declare,
) -> Result<u32, ErrorKind> {
    let options = QueueDeclareOptions {
        durable: true,
        passive: declare == Declare::Check,
        ..QueueDeclareOptions::default()
    };
    let mut arguments = FieldTable::default();
    if declare == Declare::Declare {
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(queue_type.as_str().into()),
        );
    }
    channel
        .queue_declare(name.into(), options, arguments)
        .await
        .map(|queue| queue.message_count())
        .map_err(|error| ErrorKind::Queue {
            queue: name.to_owned(),
            reason: error.to_string(),
        })
}

/// Exponential backoff between reconnection attempts: `first`, doubled each time, at most
/// `max`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
        }
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<_> = (0..4).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }
}
