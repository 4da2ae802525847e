//! The consumer component: a queue, bounded prefetch, a typed handler, acknowledge after
//! success, retry up to a limit, a dead-letter queue, reconnect, and a drain on stop.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel};
use orderly::{BoxError, Component, Context, Health, InvalidConfig};
use orderly_messaging::{
    ConsumerMetrics, Decode, Delivery, Disposition, Handler, RedeliveryPolicy, settle,
};
use tokio_util::task::TaskTracker;

use crate::connection::{Backoff, Link, declare_queue};
use crate::error::{Error, ErrorKind, redact};
use crate::publish::publish_confirmed;
use crate::settings::{ConsumerSettings, QueueType};

/// The header that carries the attempt of a message published again by a classic queue's
/// retry.
pub const ATTEMPT_HEADER: &str = "x-orderly-attempt";
/// The header that carries, on a dead-lettered message, why it was dead-lettered.
pub const REASON_HEADER: &str = "x-orderly-dead-letter-reason";
/// The header that carries, on a dead-lettered message, the queue it came from.
pub const SOURCE_HEADER: &str = "x-orderly-source-queue";
/// The header quorum queues set on a redelivery: how many deliveries failed before.
const DELIVERY_COUNT_HEADER: &str = "x-delivery-count";

/// A RabbitMQ consumer: hands each message of its queue to a typed [`Handler`] and
/// acknowledges it only after the handler succeeded.
///
/// - **Start**: connects (retrying with backoff within the start timeout; the connection's
///   `connection_name` is the component's name), declares or checks the queue and its
///   dead-letter queue, sets the prefetch and subscribes. A queue that cannot be declared
///   fails the start.
/// - **Each message** is settled through [`orderly_messaging::settle`], at most `prefetch` at
///   once: in the consume task while its handler is ready at the first poll (no task, as a
///   hand-written loop), else in a tracked task of its own, so a slow handler holds up no
///   other. [`Disposition::Ack`] acknowledges; `Retry` rejects with
///   requeue (quorum queues) or publishes a copy with its next attempt number and then
///   acknowledges (classic queues, see [`QueueType`]); `DeadLetter` publishes the message to
///   the dead-letter queue with the reason in the [`REASON_HEADER`] header, waits for the
///   broker's confirm, and only then acknowledges the original, so it is never lost between
///   the two.
/// - **Connection lost**: the component reports [`Health::Unhealthy`], waits for the handlers
///   still running (their messages are redelivered by the broker, so make the effect
///   idempotent, keyed by [`Delivery::id`]), reconnects with exponential backoff, declares
///   and subscribes again, and reports healthy.
/// - **Stop**: cancels the subscription (`basic.cancel`), handles the messages the broker had
///   already sent, awaits every handler (none is cancelled) and settles each message, then
///   closes the channel and the connection — all within the component's stop timeout.
///
/// The message id a handler sees is the AMQP `message-id` property, which
/// [`Publisher`](crate::Publisher) always sets; a message without one gets
/// `<queue>#<delivery tag>`, which is not stable across redeliveries.
pub struct Consumer<M, D, F> {
    make: F,
    _types: PhantomData<fn(D) -> M>,
}

impl<M: Decode> Consumer<M, (), ()> {
    /// A consumer of the queue `settings` name, calling `handler` for each message.
    ///
    /// Added with no dependencies (`()`); see [`with_deps`](Consumer::with_deps) for a
    /// handler that needs other components' resources, and [`configured`](Consumer::configured)
    /// for settings read from the environment.
    pub fn new<H>(
        settings: ConsumerSettings,
        handler: H,
    ) -> Consumer<M, (), impl FnMut(()) -> (ConsumerSettings, H) + Send + 'static>
    where
        H: Handler<M> + Clone,
    {
        Consumer::configured(move |()| (settings.clone(), handler.clone()))
    }

    /// A consumer whose handler is made, at each start, from the component's dependencies
    /// (a database pool, say): add it with those dependencies.
    ///
    /// ```no_run
    /// # use orderly_amqp::{Consumer, ConsumerSettings};
    /// # use orderly_messaging::{Delivery, HandlerError, Json};
    /// # #[derive(Clone)] struct Pool;
    /// # fn f(system: &mut orderly::SystemBuilder, pool: orderly::Key<Pool>, settings: ConsumerSettings) {
    /// system.add("orders", pool, Consumer::with_deps(settings, |pool: Pool| {
    ///     move |Json(order): Json<u64>, delivery: Delivery| {
    ///         let _pool = pool.clone();
    ///         async move { Ok::<_, HandlerError>(()) }
    ///     }
    /// }));
    /// # }
    /// ```
    pub fn with_deps<D, H>(
        settings: ConsumerSettings,
        mut make_handler: impl FnMut(D) -> H + Send + 'static,
    ) -> Consumer<M, D, impl FnMut(D) -> (ConsumerSettings, H) + Send + 'static>
    where
        D: Send + 'static,
        H: Handler<M>,
    {
        Consumer::configured(move |deps| (settings.clone(), make_handler(deps)))
    }
}

impl<M, D, F, H> Consumer<M, D, F>
where
    M: Decode,
    D: Send + 'static,
    F: FnMut(D) -> (ConsumerSettings, H) + Send + 'static,
    H: Handler<M>,
{
    /// A consumer whose settings and handler are both made, at each start, from the
    /// component's dependencies: the settings from an `orderly-config` component (read from
    /// the environment under a prefix of your choice), so that nothing starts before they are
    /// valid and an in-process restart applies new ones.
    ///
    /// A variable that does not parse fails the config component's start, and a value the
    /// consumer refuses (a `prefetch` of 0, an empty `queue`…) fails the consumer's: either
    /// way with [`orderly::InvalidConfig`], so the process exits 78, and the message names
    /// the variable or setting at fault, never the URL's password.
    ///
    /// ```no_run
    /// # use orderly::System;
    /// # use orderly_amqp::{Consumer, ConsumerSettings};
    /// # use orderly_messaging::{Delivery, HandlerError};
    /// # async fn handle(_: bytes::Bytes, _: Delivery) -> Result<(), HandlerError> { Ok(()) }
    /// # #[derive(serde::Deserialize)] struct Settings { amqp: ConsumerSettings }
    /// let mut system = System::builder("app");
    /// let config = system.add("config", (), orderly_config::Config::<Settings>::builder("APP").build());
    /// system.add(
    ///     "consumer",
    ///     config.map(|s| s.amqp.clone()), // APP_AMQP__URL, APP_AMQP__QUEUE, APP_AMQP__PREFETCH, …
    ///     Consumer::configured(|settings: ConsumerSettings| (settings, handle)),
    /// );
    /// ```
    pub fn configured(make: F) -> Self {
        Self {
            make,
            _types: PhantomData,
        }
    }
}

impl<M, D, F> fmt::Debug for Consumer<M, D, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer").finish_non_exhaustive()
    }
}

impl<M, D, F, H> Component for Consumer<M, D, F>
where
    M: Decode,
    D: Send + 'static,
    F: FnMut(D) -> (ConsumerSettings, H) + Send + 'static,
    H: Handler<M>,
{
    type Deps = D;
    type Resource = ();

    /// Connects, declares and subscribes; retries the connection with backoff until the start
    /// timeout. Cancelled (nothing left open) when shutdown begins during the start.
    async fn start(&mut self, deps: D, ctx: Context) -> Result<(), BoxError> {
        let name: Arc<str> = ctx.name().into();
        let (settings, handler) = (self.make)(deps);
        if let Some(problem) = settings.problems().into_iter().next() {
            return Err(InvalidConfig::new(Error::new(&*name, problem)).into());
        }
        let shared = Arc::new(Shared {
            policy: RedeliveryPolicy::new(settings.max_deliveries),
            metrics: ConsumerMetrics::new("amqp", &name),
            dead_letter_queue: settings.dead_letter_queue(),
            source: settings.queue.as_str().into(),
            settings,
            handler,
            task_name: "message".into(),
            name,
            _message: PhantomData,
        });
        let mut backoff = shared.backoff();
        let session = loop {
            match Session::open(&shared).await {
                Ok(session) => break session,
                Err(error @ ErrorKind::Connect { .. }) => {
                    let delay = backoff.next_delay();
                    let error = Error::new(&*shared.name, error);
                    tracing::warn!(%error, retry_in = ?delay, "cannot connect; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(error) => return Err(Error::new(&*shared.name, error).into()),
            }
        };
        tracing::info!(
            component = &*shared.name,
            queue = shared.settings.queue,
            url = redact(shared.settings.url.expose()),
            prefetch = shared.settings.prefetch,
            "consuming"
        );
        ctx.set_health(Health::Healthy);
        ctx.spawn("consume", run(shared, session, ctx.clone()));
        Ok(())
    }
}

/// What every task of one consumer shares.
struct Shared<M, H> {
    name: Arc<str>,
    /// The queue's name, shared by every [`Delivery`].
    source: Arc<str>,
    /// The name of every message task.
    task_name: Arc<str>,
    settings: ConsumerSettings,
    dead_letter_queue: String,
    handler: H,
    policy: RedeliveryPolicy,
    metrics: ConsumerMetrics,
    _message: PhantomData<fn(M)>,
}

impl<M, H> Shared<M, H> {
    fn backoff(&self) -> Backoff {
        Backoff::new(
            self.settings.reconnect_delay,
            self.settings.reconnect_max_delay,
        )
    }
}

/// One connection's subscription and the handlers running on its deliveries.
struct Session {
    link: Link,
    consumer: lapin::Consumer,
    handlers: TaskTracker,
    /// Acknowledgements sent by the consume task itself, until lapin has written them.
    acks: FuturesUnordered<Settling>,
}

/// A message being settled: its handler, or its acknowledgement being written. It logs a
/// failure to settle the message.
type Settling = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Why a session ended.
enum End {
    /// The component is stopping: the subscription is cancelled and drained.
    Stopped,
    /// The connection or the subscription was lost.
    Lost(String),
}

impl Session {
    async fn open<M, H>(shared: &Shared<M, H>) -> Result<Self, ErrorKind> {
        let link = Link::open(&shared.settings.url, &shared.name).await?;
        match Self::subscribe(&link.channel, shared).await {
            Ok(consumer) => Ok(Self {
                link,
                consumer,
                handlers: TaskTracker::new(),
                acks: FuturesUnordered::new(),
            }),
            Err(error) => {
                link.close(&shared.name).await;
                Err(error)
            }
        }
    }

    async fn subscribe<M, H>(
        channel: &Channel,
        shared: &Shared<M, H>,
    ) -> Result<lapin::Consumer, ErrorKind> {
        let settings = &shared.settings;
        declare_queue(
            channel,
            &settings.queue,
            settings.queue_type,
            settings.declare,
        )
        .await?;
        declare_queue(
            channel,
            &shared.dead_letter_queue,
            settings.queue_type,
            settings.declare,
        )
        .await?;
        let queue_error = |error: lapin::Error| ErrorKind::Queue {
            queue: settings.queue.clone(),
            reason: error.to_string(),
        };
        channel
            .basic_qos(settings.prefetch, BasicQosOptions::default())
            .await
            .map_err(queue_error)?;
        // The tag is the component's name where it fits; otherwise the broker makes one.
        let tag = ShortString::try_new(&*shared.name).unwrap_or_else(|_| "".into());
        channel
            .basic_consume(
                settings.queue.as_str().into(),
                tag,
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(queue_error)
    }

    /// Receives and dispatches deliveries until the component stops or the connection is
    /// lost; does not wait for the handlers.
    async fn consume<M, H>(&mut self, shared: &Arc<Shared<M, H>>, ctx: &Context) -> End
    where
        M: Decode,
        H: Handler<M>,
    {
        let mut stopping = pin!(ctx.stopping());
        let mut cancelled = false;
        loop {
            tokio::select! {
                biased;
                () = &mut stopping, if !cancelled => {
                    cancelled = true;
                    tracing::debug!(component = &*shared.name, "cancelling the subscription");
                    // The broker sends nothing more after the cancel-ok; what it sent before
                    // is still in the stream, and is handled below until the stream ends.
                    let tag = self.consumer.tag();
                    if let Err(error) = self
                        .link
                        .channel
                        .basic_cancel(tag, BasicCancelOptions::default())
                        .await
                    {
                        tracing::warn!(component = &*shared.name, %error, "cannot cancel the subscription");
                        return End::Stopped;
                    }
                }
                Some(()) = self.acks.next(), if !self.acks.is_empty() => {}
                next = self.consumer.next() => match next {
                    Some(Ok(delivery)) => self.dispatch(shared, delivery, ctx).await,
                    Some(Err(error)) if cancelled => {
                        tracing::warn!(component = &*shared.name, %error, "connection lost while stopping");
                        return End::Stopped;
                    }
                    Some(Err(error)) => return End::Lost(error.to_string()),
                    None if cancelled => return End::Stopped,
                    None => return End::Lost("the broker cancelled the subscription (queue deleted?)".into()),
                },
            }
        }
    }

    /// Handles a delivery. Most handlers finish at their first poll: that poll is made here,
    /// and a success is acknowledged from here too, as a hand-written loop would, with no task
    /// and no wake-up of another thread per message. A handler still running after its first
    /// poll, or a message to retry or dead-letter, continues in a task of its own, so that
    /// handlers run concurrently up to the prefetch and a slow one holds up no other. (A panic
    /// in the handler is caught by `settle` either way.)
    async fn dispatch<M, H>(
        &mut self,
        shared: &Arc<Shared<M, H>>,
        delivery: lapin::message::Delivery,
        ctx: &Context,
    ) where
        M: Decode,
        H: Handler<M>,
    {
        let mut handling = Box::pin(handle(Arc::clone(shared), delivery));
        let first = std::future::poll_fn(|cx| Poll::Ready(handling.as_mut().poll(cx))).await;
        let task: Settling = match first {
            Poll::Ready(handled) if matches!(handled.disposition, Disposition::Ack) => {
                let mut ack = Box::pin(acknowledge(Arc::clone(shared), handled));
                // The first poll hands the ack to lapin; what is left is its write.
                let first = std::future::poll_fn(|cx| Poll::Ready(ack.as_mut().poll(cx))).await;
                if first.is_pending() {
                    self.acks.push(ack);
                }
                return;
            }
            Poll::Ready(handled) => {
                let (shared, channel) = (Arc::clone(shared), self.link.channel.clone());
                Box::pin(async move { apply(&shared, &channel, handled).await })
            }
            Poll::Pending => {
                let (shared, channel) = (Arc::clone(shared), self.link.channel.clone());
                Box::pin(async move {
                    let handled = handling.await;
                    apply(&shared, &channel, handled).await;
                })
            }
        };
        ctx.spawn(
            Arc::clone(&shared.task_name),
            self.handlers.track_future(task.map(Ok::<(), Infallible>)),
        );
    }

    /// Waits for every handler, and for every acknowledgement to be written.
    async fn wait_handlers(&mut self) {
        self.handlers.close();
        while self.acks.next().await.is_some() {}
        self.handlers.wait().await;
    }
}

/// The consumer's task: consume, and on a lost connection reconnect, until stopped.
async fn run<M, H>(
    shared: Arc<Shared<M, H>>,
    mut session: Session,
    ctx: Context,
) -> Result<(), Infallible>
where
    M: Decode,
    H: Handler<M>,
{
    let mut backoff = shared.backoff();
    loop {
        let end = session.consume(&shared, &ctx).await;
        // Never cancel a handler: wait for every one, on a lost connection too (their
        // messages come back from the broker; the effects are idempotent).
        session.wait_handlers().await;
        session.link.close(&shared.name).await;
        let reason = match end {
            End::Stopped => {
                tracing::info!(component = &*shared.name, "stopped consuming");
                return Ok(());
            }
            End::Lost(reason) => reason,
        };
        tracing::warn!(component = &*shared.name, %reason, "lost the connection to RabbitMQ; reconnecting");
        ctx.set_health(Health::unhealthy(format!(
            "disconnected from RabbitMQ: {reason}"
        )));
        session = loop {
            let delay = backoff.next_delay();
            let opened = tokio::select! {
                () = ctx.stopping() => return Ok(()),
                opened = async {
                    tokio::time::sleep(delay).await;
                    Session::open(&shared).await
                } => opened,
            };
            match opened {
                Ok(session) => break session,
                Err(error) => {
                    let error = Error::new(&*shared.name, error);
                    tracing::warn!(%error, "cannot reconnect; trying again");
                }
            }
        };
        backoff.reset();
        ctx.set_health(Health::Healthy);
        tracing::info!(component = &*shared.name, "reconnected; consuming again");
    }
}

/// A message its handler is done with, and what becomes of it.
struct Handled {
    id: Arc<str>,
    attempt: u32,
    payload: Bytes,
    properties: BasicProperties,
    acker: lapin::Acker,
    disposition: Disposition,
}

/// Runs the handler on a delivery: [`settle`] decides the disposition.
async fn handle<M, H>(shared: Arc<Shared<M, H>>, delivery: lapin::message::Delivery) -> Handled
where
    M: Decode,
    H: Handler<M>,
{
    let attempt = attempt_of(&delivery);
    let id: Arc<str> = match delivery.properties.message_id() {
        Some(id) => id.as_str().into(),
        None => format!("{}#{}", shared.settings.queue, delivery.delivery_tag).into(),
    };
    let lapin::message::Delivery {
        data,
        properties,
        acker,
        ..
    } = delivery;
    let payload = Bytes::from(data);
    let disposition = settle(
        &shared.handler,
        payload.clone(),
        Delivery::new(Arc::clone(&id), Arc::clone(&shared.source), attempt),
        &shared.policy,
        Some(&shared.metrics),
    )
    .await;
    Handled {
        id,
        attempt,
        payload,
        properties,
        acker,
        disposition,
    }
}

/// Acknowledges a message whose handler succeeded.
async fn acknowledge<M, H>(shared: Arc<Shared<M, H>>, handled: Handled) {
    let acked = handled.acker.ack(BasicAckOptions::default()).await;
    if let Err(error) = acked {
        not_settled(&shared.name, &handled.id, &error.to_string());
    }
}

/// Acknowledges, requeues or moves the message per its disposition.
async fn apply<M, H>(shared: &Shared<M, H>, channel: &Channel, handled: Handled) {
    let Handled {
        id,
        attempt,
        payload,
        properties,
        acker,
        disposition,
    } = handled;
    let queue = &shared.settings.queue;
    let requeue = BasicRejectOptions { requeue: true };
    let settled: Result<(), String> = match disposition {
        Disposition::Ack => acker
            .ack(BasicAckOptions::default())
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Disposition::Retry { .. } if shared.settings.queue_type == QueueType::Quorum => acker
            .reject(requeue)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Disposition::Retry { .. } => {
            let properties =
                with_headers(properties, [(ATTEMPT_HEADER, attempt_value(attempt + 1))]);
            move_then_ack(channel, &acker, queue, &payload, properties).await
        }
        Disposition::DeadLetter { reason } => {
            let properties = with_headers(
                properties,
                [
                    (
                        REASON_HEADER,
                        AMQPValue::LongString(LongString::from(reason)),
                    ),
                    (SOURCE_HEADER, AMQPValue::LongString(queue.as_str().into())),
                    (ATTEMPT_HEADER, attempt_value(attempt)),
                ],
            );
            let dead = &shared.dead_letter_queue;
            move_then_ack(channel, &acker, dead, &payload, properties).await
        }
        // A disposition this version does not know: leave the message to the broker.
        _ => acker
            .reject(requeue)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
    };
    if let Err(error) = settled {
        not_settled(&shared.name, &id, &error);
    }
}

fn not_settled(component: &str, id: &str, error: &str) {
    tracing::warn!(
        component,
        message_id = id,
        error,
        "cannot settle the message; the broker will deliver it again"
    );
}

async fn move_then_ack(
    channel: &Channel,
    acker: &lapin::Acker,
    queue: &str,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<(), String> {
    match publish_confirmed(channel, "", queue, payload, properties).await {
        Ok(()) => acker
            .ack(BasicAckOptions::default())
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Err(error) => {
            let _ = acker.reject(BasicRejectOptions { requeue: true }).await;
            Err(format!("cannot move the message to '{queue}': {error:?}"))
        }
    }
}

fn with_headers<const N: usize>(
    properties: BasicProperties,
    headers: [(&str, AMQPValue); N],
) -> BasicProperties {
    let mut table = properties.headers().clone().unwrap_or_default();
    for (key, value) in headers {
        table.insert(key.into(), value);
    }
    properties.with_headers(table)
}

fn attempt_value(attempt: u32) -> AMQPValue {
    AMQPValue::LongLongInt(i64::from(attempt))
}

/// The delivery's attempt (1 the first time): a quorum queue's `x-delivery-count` + 1, a
/// classic queue's retry header, or at least 2 for a redelivery.
fn attempt_of(delivery: &lapin::message::Delivery) -> u32 {
    let header = |name: &str| {
        delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|headers| headers.inner().get(name))
            .and_then(integer)
    };
    let counted = header(DELIVERY_COUNT_HEADER).map_or(0, |n| n.saturating_add(1));
    let retried = header(ATTEMPT_HEADER).unwrap_or(0);
    let redelivered = if delivery.redelivered { 2 } else { 1 };
    let attempt = counted.max(retried).max(redelivered);
    u32::try_from(attempt).unwrap_or(u32::MAX)
}

fn integer(value: &AMQPValue) -> Option<i64> {
    match *value {
        AMQPValue::ShortShortInt(n) => Some(n.into()),
        AMQPValue::ShortShortUInt(n) => Some(n.into()),
        AMQPValue::ShortInt(n) => Some(n.into()),
        AMQPValue::ShortUInt(n) => Some(n.into()),
        AMQPValue::LongInt(n) => Some(n.into()),
        AMQPValue::LongUInt(n) => Some(n.into()),
        AMQPValue::LongLongInt(n) => Some(n),
        _ => None,
    }
    .map(|n: i64| n.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_integers_of_every_width_and_clamps_negatives() {
        assert_eq!(integer(&AMQPValue::LongLongInt(3)), Some(3));
        assert_eq!(integer(&AMQPValue::ShortShortUInt(7)), Some(7));
        assert_eq!(integer(&AMQPValue::LongInt(-4)), Some(0));
        assert_eq!(integer(&AMQPValue::Boolean(true)), None);
    }
}
