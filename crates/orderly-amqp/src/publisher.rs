//! The publisher component: publisher confirms, and a stop that waits for them.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use lapin::BasicProperties;
use lapin::types::ShortString;
use orderly::{BoxError, Component, Context, Health, InvalidConfig};
use orderly_messaging::Encode;
use tokio::sync::Mutex;
use tokio_util::task::TaskTracker;

use crate::connection::{Backoff, Link};
use crate::error::{Error, ErrorKind, redact};
use crate::publish::{PERSISTENT, publish_confirmed};
use crate::settings::PublisherSettings;

/// A RabbitMQ publisher with publisher confirms; its resource is a [`PublisherHandle`].
///
/// - **Start**: connects (retrying with backoff within the start timeout; `connection_name`
///   is the component's name) and turns confirms on.
/// - **Publish**: [`PublisherHandle::publish`] returns once the broker confirmed the message.
/// - **Stop** (after every component that depends on it stopped): refuses new messages with
///   [`ErrorKind::Stopping`], waits for every publish still waiting for its confirm, then
///   closes the channel and the connection.
///
/// It has its own connection, apart from any consumer's: RabbitMQ blocks publishing
/// connections under a resource alarm, and a consumer sharing one could then not
/// acknowledge (RabbitMQ's own advice).
pub struct Publisher {
    settings: PublisherSettings,
    inner: Option<Arc<Inner>>,
}

impl Publisher {
    /// A publisher configured by `settings`.
    pub fn new(settings: PublisherSettings) -> Self {
        Self {
            settings,
            inner: None,
        }
    }
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("exchange", &self.settings.exchange)
            .field("routing_key", &self.settings.routing_key)
            .finish_non_exhaustive()
    }
}

impl Component for Publisher {
    type Deps = ();
    type Resource = PublisherHandle;

    /// Connects, retrying with backoff until the start timeout.
    async fn start(&mut self, (): (), ctx: Context) -> Result<PublisherHandle, BoxError> {
        let name = ctx.name().to_owned();
        if let Some(problem) = self.settings.problems().into_iter().next() {
            return Err(InvalidConfig::new(Error::new(name, problem)).into());
        }
        let mut backoff = Backoff::new(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(10),
        );
        let link = loop {
            match Link::open(&self.settings.url, &name).await {
                Ok(link) => break link,
                Err(error) => {
                    let delay = backoff.next_delay();
                    let error = Error::new(&*name, error);
                    tracing::warn!(%error, retry_in = ?delay, "cannot connect; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        };
        tracing::info!(
            component = name,
            url = redact(self.settings.url.expose()),
            exchange = self.settings.exchange,
            routing_key = self.settings.routing_key,
            "publisher connected"
        );
        ctx.set_health(Health::Healthy);
        let inner = Arc::new(Inner {
            id_prefix: id_prefix(),
            name,
            settings: self.settings.clone(),
            link: Mutex::new(Some(link)),
            stopping: AtomicBool::new(false),
            in_flight: TaskTracker::new(),
            next_id: AtomicU64::new(0),
            ctx,
        });
        self.inner = Some(Arc::clone(&inner));
        Ok(PublisherHandle { inner })
    }

    /// Refuses new messages, waits for the pending confirms, then closes.
    async fn stop(&mut self) -> Result<(), BoxError> {
        let Some(inner) = self.inner.take() else {
            return Ok(());
        };
        inner.stopping.store(true, Ordering::SeqCst);
        inner.in_flight.close();
        inner.in_flight.wait().await;
        if let Some(link) = inner.link.lock().await.take() {
            link.close(&inner.name).await;
        }
        Ok(())
    }
}

/// Publishes messages through a [`Publisher`]; cheap to clone.
#[derive(Clone)]
#[must_use]
pub struct PublisherHandle {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    settings: PublisherSettings,
    /// The connection; `None` after it failed, until the next publish reconnects.
    link: Mutex<Option<Link>>,
    stopping: AtomicBool,
    /// One token per publish waiting for its confirm.
    in_flight: TaskTracker,
    id_prefix: String,
    next_id: AtomicU64,
    ctx: Context,
}

impl PublisherHandle {
    /// Publishes `message` to the configured exchange and routing key and returns once the
    /// broker confirmed it.
    ///
    /// The message is encoded with [`Encode`] and sent persistent (delivery mode 2), with its
    /// content type and a new unique message id (which consumers see as
    /// [`Delivery::id`](orderly_messaging::Delivery::id)); it is *mandatory*, so a message no
    /// queue would receive is an error ([`ErrorKind::Unroutable`]), not a silent loss.
    ///
    /// Once the publisher's stop has begun, returns [`ErrorKind::Stopping`] at once; a publish
    /// already waiting for its confirm is waited for by the stop. If the connection was lost,
    /// this reconnects first (one attempt; the error is [`ErrorKind::Connect`]).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future after the message was sent does not unsend it: its fate is then
    /// unknown, as after [`Error::is_unconfirmed`].
    pub async fn publish<M: Encode>(&self, message: &M) -> Result<(), Error> {
        let id = self.next_id();
        self.publish_with_id(message, &id).await
    }

    /// Publishes `message` with message id `id` (at most 255 bytes), as
    /// [`publish`](Self::publish) does: consumers deduplicate by this id, so publishing the
    /// same logical message again (after an unconfirmed publish) should reuse it.
    pub async fn publish_with_id<M: Encode>(&self, message: &M, id: &str) -> Result<(), Error> {
        let inner = &*self.inner;
        // Take the token before looking at the flag: a stop that set the flag after this
        // check still waits for this publish.
        let _token = inner.in_flight.token();
        if inner.stopping.load(Ordering::SeqCst) {
            return Err(self.error(ErrorKind::Stopping));
        }
        let id = ShortString::try_new(id).map_err(|_| {
            self.error(ErrorKind::Encode {
                reason: format!("a message id has at most 255 bytes, found {}", id.len()),
            })
        })?;
        let payload = message.encode().map_err(|error| {
            self.error(ErrorKind::Encode {
                reason: error.to_string(),
            })
        })?;
        let properties = BasicProperties::default()
            .with_content_type(M::CONTENT_TYPE.into())
            .with_message_id(id)
            .with_delivery_mode(PERSISTENT);
        let channel = self.channel().await?;
        let published = publish_confirmed(
            &channel,
            &inner.settings.exchange,
            &inner.settings.routing_key,
            &payload,
            properties,
        )
        .await;
        if let Err(error) = published {
            if !channel.status().connected() {
                self.lost(&error);
            }
            return Err(self.error(error));
        }
        Ok(())
    }

    /// A new message id: unique across processes and restarts (time, process, counter).
    fn next_id(&self) -> String {
        let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.inner.id_prefix)
    }

    /// The open channel, reconnecting once if the connection was lost.
    async fn channel(&self) -> Result<lapin::Channel, Error> {
        let inner = &*self.inner;
        let mut link = inner.link.lock().await;
        if let Some(open) = link.as_ref()
            && open.channel.status().connected()
        {
            return Ok(open.channel.clone());
        }
        if let Some(old) = link.take() {
            old.close(&inner.name).await;
        }
        match Link::open(&inner.settings.url, &inner.name).await {
            Ok(new) => {
                let channel = new.channel.clone();
                *link = Some(new);
                inner.ctx.set_health(Health::Healthy);
                tracing::info!(component = inner.name, "publisher reconnected");
                Ok(channel)
            }
            Err(error) => {
                self.lost(&error);
                Err(self.error(error))
            }
        }
    }

    fn lost(&self, error: &ErrorKind) {
        let error = self.error(error.clone());
        tracing::warn!(%error, "publisher disconnected");
        self.inner.ctx.set_health(Health::unhealthy(format!(
            "disconnected from RabbitMQ: {error}"
        )));
    }

    fn error(&self, kind: ErrorKind) -> Error {
        Error::new(&*self.inner.name, kind)
    }
}

impl fmt::Debug for PublisherHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublisherHandle")
            .field("component", &self.inner.name)
            .field("stopping", &self.inner.stopping.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn id_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!("{nanos:x}-{:x}", std::process::id())
}
