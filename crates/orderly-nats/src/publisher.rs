//! The JetStream publisher component and its handle.

use std::fmt;
use std::sync::Arc;

use async_nats::Client;
use async_nats::header::HeaderMap;
use async_nats::jetstream;
use orderly::{BoxError, Component, Context};
use orderly_messaging::Encode;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connect::connect;
use crate::consumer::FLUSH_TIMEOUT;
use crate::error::{Error, ErrorKind};
use crate::handle::MSG_ID;
use crate::settings::PublisherSettings;

/// A JetStream publisher as an orderly component; its resource is a [`Publisher`].
///
/// On stop (after every component that depends on it has stopped), new publishes fail with
/// [`ErrorKind::Stopping`], the publishes in flight are awaited until the server acknowledged
/// them (or their [`ack_timeout`](PublisherSettings::ack_timeout) passed), then the connection
/// is flushed and drained.
#[derive(Debug)]
pub struct JetStreamPublisher {
    settings: PublisherSettings,
    running: Option<Publisher>,
}

impl JetStreamPublisher {
    /// A publisher connecting with `settings`.
    pub fn new(settings: PublisherSettings) -> Self {
        Self {
            settings,
            running: None,
        }
    }
}

impl Component for JetStreamPublisher {
    type Deps = ();
    type Resource = Publisher;

    async fn start(&mut self, (): (), ctx: Context) -> Result<Publisher, BoxError> {
        let name: Arc<str> = ctx.name().into();
        let (client, _connected) = connect(&name, self.settings.url.expose(), &ctx).await?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(self.settings.ack_timeout);
        let publisher = Publisher {
            inner: Arc::new(Inner {
                component: name,
                client,
                js,
                in_flight: TaskTracker::new(),
                stopping: CancellationToken::new(),
            }),
        };
        self.running = Some(publisher.clone());
        Ok(publisher)
    }

    async fn stop(&mut self) -> Result<(), BoxError> {
        let Some(publisher) = self.running.take() else {
            return Ok(());
        };
        let inner = &publisher.inner;
        inner.stopping.cancel();
        inner.in_flight.close();
        inner.in_flight.wait().await;
        // Every publish was awaited to its acknowledgement (or failed): the flush only sends
        // what is left in the buffer, nothing a caller waits for. Disconnected, there is
        // nothing to send it to; and a connection lost a moment ago may still read as
        // connected, so a flush that times out is no failure of the stop.
        if inner.client.connection_state() == async_nats::connection::State::Connected {
            match tokio::time::timeout(FLUSH_TIMEOUT, inner.client.flush()).await {
                Ok(flushed) => flushed?,
                Err(_) => tracing::warn!(
                    component = &*inner.component,
                    "flushing the connection timed out (disconnected?)"
                ),
            }
        } else {
            tracing::warn!(component = &*inner.component, "stopping while disconnected");
        }
        inner.client.drain().await?;
        Ok(())
    }
}

/// Publishes to JetStream and waits for the stream's acknowledgement. Cheap to clone.
#[derive(Clone)]
#[must_use]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    component: Arc<str>,
    client: Client,
    js: jetstream::Context,
    /// Publishes waiting for their acknowledgement: the stop waits for them.
    in_flight: TaskTracker,
    stopping: CancellationToken,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("component", &self.inner.component)
            .field("stopping", &self.inner.stopping.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// The stream's acknowledgement of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// The stream that stored the message.
    pub stream: String,
    /// Its sequence in the stream.
    pub sequence: u64,
    /// Whether the stream had it already (same `Nats-Msg-Id` within the duplicate window): it
    /// was not stored twice.
    pub duplicate: bool,
}

impl Publisher {
    /// Publishes `message` on `subject` with a new unique message id and returns once the
    /// stream acknowledged it.
    ///
    /// Fails if no stream takes the subject, on a timeout, or if the connection is lost before
    /// the acknowledgement; the message may then be stored or not: publish it again with the
    /// same id ([`publish_with_id`](Self::publish_with_id)) to be sure it is stored once.
    /// Once the component is stopping, fails with [`ErrorKind::Stopping`] without publishing.
    pub async fn publish<M: Encode + ?Sized>(
        &self,
        subject: &str,
        message: &M,
    ) -> Result<Published, Error> {
        let id = self.inner.client.new_inbox();
        // The inbox's last token is a unique NUID.
        let id = id.rsplit('.').next().unwrap_or(&id).to_owned();
        self.publish_with_id(subject, &id, message).await
    }

    /// Publishes `message` on `subject` with the message id `id` (the `Nats-Msg-Id` header:
    /// the stream stores a message once per id within its duplicate window, and a consumer's
    /// handler sees it as [`Delivery::id`](orderly_messaging::Delivery::id)); returns once the
    /// stream acknowledged it. Fails like [`publish`](Self::publish).
    pub async fn publish_with_id<M: Encode + ?Sized>(
        &self,
        subject: &str,
        id: &str,
        message: &M,
    ) -> Result<Published, Error> {
        let inner = &self.inner;
        // Counted until acknowledged: the stop waits for it. Taken before the check, so a
        // publish that passes it is one the stop waits for.
        let _in_flight = inner.in_flight.token();
        if inner.stopping.is_cancelled() {
            return Err(Error::new(&inner.component, ErrorKind::Stopping));
        }
        let payload = message
            .encode()
            .map_err(|error| Error::new(&inner.component, ErrorKind::Encode).with(error))?;
        let mut headers = HeaderMap::new();
        headers.insert(MSG_ID, id);
        headers.insert("Content-Type", M::CONTENT_TYPE);
        let failed = |error: BoxError| {
            Error::new(
                &inner.component,
                ErrorKind::Publish {
                    subject: subject.to_owned(),
                },
            )
            .with(error)
        };
        let ack = inner
            .js
            .publish_with_headers(subject.to_owned(), headers, payload.into())
            .await
            .map_err(|error| failed(error.into()))?
            .await
            .map_err(|error| failed(error.into()))?;
        Ok(Published {
            stream: ack.stream,
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// The jetstream context, for what this handle does not cover (stream management, say).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.inner.js
    }
}
