//! Server URLs, unique names, a JetStream client for the test's own checks, and waiting on
//! real server state with a bounded deadline.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use orderly_messaging::{Delivery, Handler, HandlerError, Json};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// How long a test waits for a server state before it fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

pub(crate) fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A name no other test (in this run or a concurrent one) uses: upper-case, for streams.
pub(crate) fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
    .to_uppercase()
}

pub(crate) async fn jetstream() -> jetstream::Context {
    let client = async_nats::connect(nats_url()).await.unwrap();
    jetstream::new(client)
}

/// Creates stream `name` on `<name>.>` and returns its subject prefix.
pub(crate) async fn create_stream(js: &jetstream::Context, name: &str) -> String {
    js.create_stream(stream::Config {
        name: name.to_owned(),
        subjects: vec![format!("{name}.>")],
        ..Default::default()
    })
    .await
    .unwrap();
    name.to_owned()
}

/// Deletes the streams a test made (the dead-letter one too); missing ones are fine.
pub(crate) async fn delete_streams(js: &jetstream::Context, stream: &str) {
    let _ = js.delete_stream(stream).await;
    let _ = js.delete_stream(format!("{stream}_DEAD")).await;
}

pub(crate) async fn consumer_info(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
) -> consumer::Info {
    let stream = js.get_stream(stream).await.unwrap();
    let consumer: consumer::PullConsumer = stream.get_consumer(name).await.unwrap();
    consumer.get_info().await.unwrap()
}

pub(crate) async fn stream_messages(js: &jetstream::Context, stream: &str) -> u64 {
    js.get_stream(stream)
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap()
        .state
        .messages
}

/// Polls `check` until it returns true, failing the test after [`DEADLINE`].
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let polled = async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    if tokio::time::timeout(DEADLINE, polled).await.is_err() {
        panic!("timed out waiting for: {what}");
    }
}

/// The message the tests publish.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Numbered {
    pub(crate) n: i64,
}

/// What [`recorder`] reports of each delivery: the message id, `n`, the attempt.
pub(crate) type Deliveries = mpsc::UnboundedReceiver<(String, i64, u32)>;

/// A handler that reports every delivery on a channel and succeeds.
#[derive(Clone)]
pub(crate) struct Recorder(mpsc::UnboundedSender<(String, i64, u32)>);

impl Handler<Json<Numbered>> for Recorder {
    async fn handle(&self, Json(m): Json<Numbered>, d: Delivery) -> Result<(), HandlerError> {
        let _ = self.0.send((d.id().to_owned(), m.n, d.attempt()));
        Ok(())
    }
}

pub(crate) fn recorder() -> (Recorder, Deliveries) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Recorder(tx), rx)
}

/// Receives `count` deliveries, failing after [`DEADLINE`].
pub(crate) async fn receive<T>(rx: &mut mpsc::UnboundedReceiver<T>, count: usize) -> Vec<T> {
    let mut got = Vec::with_capacity(count);
    let receiving = async {
        while got.len() < count {
            match rx.recv().await {
                Some(item) => got.push(item),
                None => break,
            }
        }
    };
    let done = tokio::time::timeout(DEADLINE, receiving).await;
    assert!(done.is_ok(), "received {} of {count} deliveries", got.len());
    got
}
