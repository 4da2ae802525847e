//! The JetStream pull consumer component.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, stream};
use async_nats::{Client, StatusCode, Subscriber};
use futures_util::StreamExt;
use orderly::{BoxError, Component, Context};
use orderly_messaging::{ConsumerMetrics, Decode, Handler, RedeliveryPolicy};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connect::connect;
use crate::error::{Error, ErrorKind};
use crate::handle::{Settler, settle_one};
use crate::settings::ConsumerSettings;

/// How much longer than its expiry a pull may stay unanswered before it is given up (the
/// server forgot it: it restarted, say).
const PULL_GRACE: Duration = Duration::from_secs(2);
/// How long the stop waits for the server to confirm the acknowledgements sent.
pub(crate) const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// The wait before a pull is tried again after the server refused it.
const PULL_RETRY: Duration = Duration::from_millis(250);

/// A durable JetStream pull consumer as an orderly component: each message is decoded into
/// `M` and handed to a [`Handler`]; it is acknowledged only after the handler succeeded.
///
/// - **Start**: connects, checks the stream (or creates it when
///   [`subjects`](ConsumerSettings::subjects) are given), creates the dead-letter stream and the
///   durable consumer (explicit acks, `max_ack_pending` = [`prefetch`](ConsumerSettings::prefetch),
///   [`ack_wait`](ConsumerSettings::ack_wait)), then pulls.
/// - **Running**: at most `prefetch` handlers run at once, each message settled by
///   [`orderly_messaging::settle`]: acknowledged (per the [`ack_mode`](ConsumerSettings::ack_mode):
///   sent at once by default, or confirmed by the server before the slot is free), or
///   negatively acknowledged with [`retry_delay`](ConsumerSettings::retry_delay) to be delivered
///   again, or — rejected, undecodable, or after
///   [`max_deliveries`](ConsumerSettings::max_deliveries) — published to the dead-letter stream
///   with the reason in the `Orderly-Dead-Letter-Reason` header, and only once that publish is
///   acknowledged, terminated on this stream. A handler that outlives half the `AckWait` keeps
///   its message with progress acknowledgements. The message id the handler sees is the
///   publisher's `Nats-Msg-Id`, else the stream sequence.
/// - **Disconnected**: the component is unhealthy until the client reconnected (it retries
///   forever); pulls the server forgot are noticed by their silence and made again.
/// - **Stop**: no new pull is made; the pulls in flight end (answered, or expired after
///   [`pull_expiry`](ConsumerSettings::pull_expiry)) and what they still deliver is handled;
///   every running handler is awaited — never cancelled — and its message acknowledged per its
///   outcome; a request to the server then confirms it has every acknowledgement sent; then
///   the connection is drained. All within the component's stop timeout. (A
///   NATS 2.9 server cannot cancel a pull: unsubscribing its inbox instead would race a
///   delivery, leaving that message for redelivery after `AckWait`.)
pub struct JetStreamConsumer<M, H, D = ()> {
    make: Box<dyn FnMut(D) -> (ConsumerSettings, H) + Send>,
    _message: PhantomData<fn() -> M>,
}

impl<M, H, D> fmt::Debug for JetStreamConsumer<M, H, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JetStreamConsumer").finish_non_exhaustive()
    }
}

impl<M, H> JetStreamConsumer<M, H, ()>
where
    M: Decode,
    H: Handler<M> + Clone,
{
    /// A consumer that hands messages to `handler`.
    pub fn new(settings: ConsumerSettings, handler: H) -> Self {
        Self::configured(move |()| (settings.clone(), handler.clone()))
    }
}

impl<M, H, D> JetStreamConsumer<M, H, D>
where
    M: Decode,
    H: Handler<M>,
    D: Send + 'static,
{
    /// A consumer whose handler is made at each start from the component's dependencies
    /// (a database pool, say): add it with those dependencies.
    pub fn with_deps(
        settings: ConsumerSettings,
        mut make: impl FnMut(D) -> H + Send + 'static,
    ) -> Self {
        Self::configured(move |deps| (settings.clone(), make(deps)))
    }

    /// A consumer whose settings and handler are both made at each start from the component's
    /// dependencies: settings from an `orderly-config` component, so that a reload (an
    /// in-process restart) applies new ones.
    ///
    /// ```no_run
    /// # use orderly::System;
    /// # use orderly_messaging::{Delivery, HandlerError};
    /// # use orderly_nats::{ConsumerSettings, JetStreamConsumer};
    /// # async fn handle(_: bytes::Bytes, _: Delivery) -> Result<(), HandlerError> { Ok(()) }
    /// # #[derive(serde::Deserialize)] struct Settings { nats: ConsumerSettings }
    /// let mut system = System::builder("app");
    /// let config = system.add("config", (), orderly_config::Config::<Settings>::builder("APP").build());
    /// system.add(
    ///     "consumer",
    ///     config.map(|s| s.nats.clone()), // APP_NATS__STREAM, APP_NATS__CONSUMER, …
    ///     JetStreamConsumer::configured(|settings: ConsumerSettings| (settings, handle)),
    /// );
    /// ```
    pub fn configured(make: impl FnMut(D) -> (ConsumerSettings, H) + Send + 'static) -> Self {
        Self {
            make: Box::new(make),
            _message: PhantomData,
        }
    }
}

impl<M, H, D> Component for JetStreamConsumer<M, H, D>
where
    M: Decode,
    H: Handler<M>,
    D: Send + 'static,
{
    type Deps = D;
    type Resource = ();

    async fn start(&mut self, deps: D, ctx: Context) -> Result<(), BoxError> {
        let name: Arc<str> = ctx.name().into();
        let (settings, handler) = (self.make)(deps);
        let settings = &settings;
        check(&name, settings)?;
        tracing::debug!(component = &*name, ?settings, "starting");
        let (client, connected) = connect(&name, settings.url.expose(), &ctx).await?;
        let js = jetstream::new(client.clone());
        let consumer = declare(&name, &js, settings).await?;
        let settler = Arc::new(Settler {
            handler,
            policy: RedeliveryPolicy::new(settings.max_deliveries)
                .retry_delay(settings.retry_delay),
            metrics: ConsumerMetrics::new("nats", &name),
            source: format!("{}/{}", settings.stream, settings.consumer).into(),
            dead_letter_subject: settings.dead_letter_subject_name(),
            ack_wait: settings.ack_wait,
            ack_mode: settings.ack_mode,
            component: name.clone(),
            js: js.clone(),
            _message: PhantomData,
        });
        let pull = Pull {
            client,
            consumer,
            connected,
            stopping: ctx.stopping_token(),
            prefetch: usize::from(settings.prefetch.max(1)),
            expiry: settings.pull_expiry,
            component: name,
        };
        ctx.spawn("pull", pull.run(settler));
        Ok(())
    }
}

fn check(name: &Arc<str>, settings: &ConsumerSettings) -> Result<(), Error> {
    let missing = |field| {
        Error::new(
            name,
            ErrorKind::Settings {
                field,
                problem: "is required",
            },
        )
    };
    if settings.stream.is_empty() {
        return Err(missing("stream"));
    }
    if settings.consumer.is_empty() {
        return Err(missing("consumer"));
    }
    if settings.pull_expiry < Duration::from_millis(10) {
        return Err(Error::new(
            name,
            ErrorKind::Settings {
                field: "pull_expiry",
                problem: "must be at least 10ms",
            },
        ));
    }
    Ok(())
}

/// Checks or creates the stream, creates the dead-letter stream, creates or updates the
/// durable consumer.
async fn declare(
    name: &Arc<str>,
    js: &jetstream::Context,
    settings: &ConsumerSettings,
) -> Result<PullConsumer, Error> {
    let stream_error = |stream: &str, error: BoxError| {
        let stream = stream.to_owned();
        Error::new(name, ErrorKind::Stream { stream }).with(error)
    };
    let stream = if settings.subjects.is_empty() {
        js.get_stream(&settings.stream)
            .await
            .map_err(|e| stream_error(&settings.stream, e.into()))?
    } else {
        js.get_or_create_stream(stream::Config {
            name: settings.stream.clone(),
            subjects: settings.subjects.clone(),
            ..Default::default()
        })
        .await
        .map_err(|e| stream_error(&settings.stream, e.into()))?
    };
    let dead = settings.dead_letter_stream_name();
    js.get_or_create_stream(stream::Config {
        name: dead.clone(),
        subjects: vec![settings.dead_letter_subject_name()],
        ..Default::default()
    })
    .await
    .map_err(|e| stream_error(&dead, e.into()))?;
    stream
        .create_consumer(pull::Config {
            durable_name: Some(settings.consumer.clone()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: settings.ack_wait,
            // The redelivery limit is ours (the dead-letter path): a server-side limit would
            // drop a message that crashed its last delivery instead of dead-lettering it.
            max_deliver: -1,
            max_ack_pending: i64::from(settings.prefetch.max(1)),
            filter_subject: settings.filter_subject.clone(),
            ..Default::default()
        })
        .await
        .map_err(|error| {
            Error::new(
                name,
                ErrorKind::Consumer {
                    consumer: settings.consumer.clone(),
                },
            )
            .with(error)
        })
}

/// The pull loop: pull requests on one inbox, a new one whenever fewer than half the prefetch
/// are still asked for; each message settled holding one of `prefetch` slots, in the loop
/// while its handler is ready at the first poll, then in a task of its own.
/// The server's `max_ack_pending` (the prefetch too) bounds what is delivered and not yet
/// acknowledged, so asking ahead never holds more than `prefetch` messages.
struct Pull {
    client: Client,
    consumer: PullConsumer,
    connected: watch::Receiver<bool>,
    stopping: CancellationToken,
    prefetch: usize,
    expiry: Duration,
    component: Arc<str>,
}

impl Pull {
    async fn run<M: Decode, H: Handler<M>>(
        mut self,
        settler: Arc<Settler<M, H>>,
    ) -> Result<(), BoxError> {
        let slots = Arc::new(Semaphore::new(self.prefetch));
        let handlers = TaskTracker::new();
        let inbox = self.client.new_inbox();
        let subscribed = tokio::select! {
            biased;
            () = self.stopping.cancelled() => None,
            subscribed = self.client.subscribe(inbox.clone()) => Some(subscribed?),
        };
        if let Some(mut subscriber) = subscribed {
            self.pull(&mut subscriber, &inbox, &slots, &settler, &handlers)
                .await;
        }
        // Every handler runs to its end and settles its message.
        handlers.close();
        handlers.wait().await;
        tracing::debug!(
            component = &*self.component,
            "in-flight messages settled; draining"
        );
        // A flush only writes the acknowledgements to the socket; the server has them once
        // it answered a request sent after them (it reads a connection in order): ask it for
        // the consumer's state. Bounded: while disconnected, the request would wait for the
        // connection.
        let confirmed = if *self.connected.borrow() {
            tokio::time::timeout(FLUSH_TIMEOUT, self.consumer.get_info())
                .await
                .map(|answered| answered.map(drop))
        } else {
            Ok(Ok(()))
        };
        match confirmed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(component = &*self.component, %error, "confirming the acknowledgements failed; unconfirmed ones are delivered again");
            }
            Err(_) => {
                tracing::warn!(
                    component = &*self.component,
                    "confirming the acknowledgements timed out; unconfirmed ones are delivered again"
                );
            }
        }
        if let Err(error) = self.client.drain().await {
            tracing::warn!(component = &*self.component, %error, "draining the connection failed");
        }
        Ok(())
    }

    /// Pulls until the stop, then lets the pulls in flight end (each is answered in full or
    /// expires within [`ConsumerSettings::pull_expiry`]), handling what they still deliver.
    ///
    /// The pulls are not cancelled by unsubscribing: a server delivering at that moment would
    /// send messages to no one, left for redelivery after `AckWait`.
    async fn pull<M: Decode, H: Handler<M>>(
        &mut self,
        subscriber: &mut Subscriber,
        inbox: &str,
        slots: &Arc<Semaphore>,
        settler: &Arc<Settler<M, H>>,
        handlers: &TaskTracker,
    ) {
        // Messages asked for and not yet delivered or expired.
        let mut asked = 0usize;
        let mut heard = Instant::now();
        let mut stopping = false;
        // Pulls unanswered past their expiry were lost (the server restarted, say): a live
        // pull is answered, at the latest by its expiry.
        let silence = tokio::time::sleep_until(heard + self.expiry + PULL_GRACE);
        tokio::pin!(silence);
        loop {
            // Disconnected, nothing more can arrive: the server delivers what the pulls still
            // ask for to no one, for redelivery after AckWait.
            if stopping && (asked == 0 || !*self.connected.borrow()) {
                return;
            }
            if !stopping && asked <= self.prefetch / 2 && *self.connected.borrow() {
                let request = pull::BatchConfig {
                    batch: self.prefetch,
                    expires: Some(self.expiry),
                    ..Default::default()
                };
                match self
                    .consumer
                    .request_batch(request, inbox.to_owned().into())
                    .await
                {
                    Ok(()) => {
                        if asked == 0 {
                            silence
                                .as_mut()
                                .reset(Instant::now() + self.expiry + PULL_GRACE);
                        }
                        asked += self.prefetch;
                        heard = Instant::now();
                    }
                    Err(error) => {
                        tracing::warn!(component = &*self.component, %error, "pull request failed");
                        self.pause().await;
                        stopping = self.stopping.is_cancelled();
                        continue;
                    }
                }
            }
            let message = tokio::select! {
                biased;
                message = subscriber.next() => message,
                () = self.stopping.cancelled(), if !stopping => {
                    stopping = true;
                    continue;
                }
                changed = self.connected.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.connected.borrow_and_update();
                    continue;
                }
                () = &mut silence, if asked > 0 => {
                    // The timer is moved on lazily, not at every message.
                    let deadline = heard + self.expiry + PULL_GRACE;
                    if deadline > Instant::now() {
                        silence.as_mut().reset(deadline);
                    } else {
                        asked = 0;
                    }
                    continue;
                }
            };
            // The client is closed.
            let Some(message) = message else { return };
            heard = Instant::now();
            match message.status {
                None | Some(StatusCode::OK) => {
                    asked = asked.saturating_sub(1);
                    let Ok(slot) = slots.clone().acquire_owned().await else {
                        return;
                    };
                    let mut settling = Box::pin(settle_one(settler.clone(), message, slot));
                    // Most handlers finish, and their acknowledgement is sent, at the first
                    // poll: that one is made here, as a hand-written loop would, saving a task
                    // and a wake-up per message. A handler still running after it continues
                    // in a task of its own, so handlers run concurrently up to the prefetch
                    // and a slow one holds up no other. (A panic in the handler is caught by
                    // `settle` either way.)
                    let first = std::future::poll_fn(|cx| Poll::Ready(settling.as_mut().poll(cx)));
                    if first.await.is_pending() {
                        handlers.spawn(settling);
                    }
                }
                Some(StatusCode::IDLE_HEARTBEAT) => {}
                // A pull expired (408) or was cut short (409): what it still asked for.
                Some(
                    StatusCode::TIMEOUT | StatusCode::REQUEST_TERMINATED | StatusCode::NOT_FOUND,
                ) => {
                    let left = message
                        .headers
                        .as_ref()
                        .and_then(|headers| headers.get("Nats-Pending-Messages"))
                        .and_then(|left| left.as_str().parse().ok())
                        .unwrap_or(self.prefetch);
                    asked = asked.saturating_sub(left);
                    if message.status == Some(StatusCode::REQUEST_TERMINATED) {
                        tracing::debug!(
                            component = &*self.component,
                            description = message.description.as_deref().unwrap_or(""),
                            "pull cut short"
                        );
                    }
                }
                Some(status) => {
                    tracing::warn!(
                        component = &*self.component,
                        %status,
                        description = message.description.as_deref().unwrap_or(""),
                        "pull refused"
                    );
                    asked = 0;
                    if !stopping {
                        self.pause().await;
                    }
                }
            }
        }
    }

    /// Waits a little before pulling again, or until the stop.
    async fn pause(&self) {
        tokio::select! {
            () = self.stopping.cancelled() => {}
            () = tokio::time::sleep(PULL_RETRY) => {}
        }
    }
}
