//! FDC sample batches from a real broker: a RabbitMQ queue and a NATS JetStream stream of
//! their own, consumed by an in-process `fab all`; effects read back from the store.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream;
use fab::store::{Store, StoredBatch};
use lapin::options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::AMQPValue;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{Value, json};

use crate::fdc::release_limits;
use crate::support::{Backend, Fab};

fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{:012x}", rand::random::<u64>() >> 16)
}

/// A batch of `chuck-temp` samples on `tool`, one a second from `start_s`.
fn batch(tool: &str, start_s: u64, values: &[f64]) -> Value {
    let samples: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({ "at": (start_s + i as u64) * 1000, "value": v }))
        .collect();
    json!({ "tool": tool, "parameter": "chuck-temp", "samples": samples })
}

/// Waits (polling the store; the deadline only bounds a broken run) until batch `id` is
/// stored with `deliveries` deliveries.
async fn wait_batch(store: &Store, id: &str, deliveries: u64) -> StoredBatch {
    for _ in 0..600 {
        if let Some(batch) = store.batch(id).await.unwrap()
            && batch.deliveries >= deliveries
        {
            return batch;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("batch {id} never reached {deliveries} deliveries");
}

struct Amqp {
    connection: Connection,
}

impl Amqp {
    async fn connect() -> Self {
        let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
            .await
            .unwrap();
        Self { connection }
    }

    /// Publishes `body` to `queue` with message id `id`, confirmed by the broker.
    async fn publish(&self, queue: &str, id: &str, body: &[u8]) {
        let channel = self.connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                BasicProperties::default()
                    .with_message_id(id.into())
                    .with_content_type("application/json".into())
                    .with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack(), "{confirm:?}");
        channel.close(200, "published".into()).await.unwrap();
    }

    /// Waits for one message in `queue` and takes it: (message id, headers as text).
    async fn take_one(&self, queue: &str) -> (String, HashMap<String, String>) {
        let channel = self.connection.create_channel().await.unwrap();
        for _ in 0..600 {
            if let Some(message) = channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                let properties = &message.delivery.properties;
                let id = properties
                    .message_id()
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let headers = properties
                    .headers()
                    .as_ref()
                    .map(|table| {
                        table
                            .inner()
                            .iter()
                            .map(|(k, v)| {
                                let text = match v {
                                    AMQPValue::LongString(s) => {
                                        String::from_utf8_lossy(s.as_bytes()).into_owned()
                                    }
                                    other => format!("{other:?}"),
                                };
                                (k.to_string(), text)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                return (id, headers);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nothing arrived in {queue}");
    }

    async fn delete(&self, queues: &[&str]) {
        let channel = self.connection.create_channel().await.unwrap();
        for queue in queues {
            channel
                .queue_delete(
                    (*queue).into(),
                    lapin::options::QueueDeleteOptions::default(),
                )
                .await
                .unwrap();
        }
    }
}

/// RabbitMQ, fab on PostgreSQL (scaled out): a batch's alarm, a duplicate delivery counted
/// but not applied again, a malformed message and a batch fab refuses dead-lettered with
/// their reasons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_from_rabbitmq_are_ingested_once_and_bad_ones_dead_lettered() {
    let queue = unique("fab-it-fdc-");
    let dead = format!("{queue}.dead");
    let fab = Fab::start_with(
        Backend::Postgres,
        vec![
            ("AMQP_URL".into(), amqp_url()),
            ("FDC_QUEUE".into(), queue.clone()),
            ("PREFETCH".into(), "4".into()),
        ],
    )
    .await;
    release_limits(&fab).await;
    let amqp = Amqp::connect().await;

    // 25.0 is beyond the spec (22.5–23.5): alarms.
    let body = batch("scanner-07", 0, &[23.0, 23.0, 25.0]).to_string();
    amqp.publish(&queue, "b-1", body.as_bytes()).await;
    let first = wait_batch(&fab.store, "b-1", 1).await;
    assert_eq!((first.samples, first.deliveries), (3, 1), "{first:?}");
    assert!(first.alarms > 0, "{first:?}");
    let (_, alarms) = fab.get("/v1/fdc/alarms?tool=scanner-07").await;
    let raised = alarms.as_array().unwrap().len();
    assert_eq!(raised as u64, first.alarms, "{alarms}");

    // The same message again (a redelivery, as after a crash before the ack): counted, not
    // evaluated again.
    amqp.publish(&queue, "b-1", body.as_bytes()).await;
    let again = wait_batch(&fab.store, "b-1", 2).await;
    assert_eq!(
        (again.samples, again.alarms),
        (3, first.alarms),
        "{again:?}"
    );
    let (_, alarms) = fab.get("/v1/fdc/alarms?tool=scanner-07").await;
    let after = alarms.as_array().unwrap().len();
    assert_eq!(after, raised, "not raised twice: {alarms}");

    // Malformed: not JSON. Dead-lettered by the consumer with the decoding error.
    amqp.publish(&queue, "garbage", b"{\"tool\": ").await;
    let (id, headers) = amqp.take_one(&dead).await;
    assert_eq!(id, "garbage");
    let reason = &headers[orderly_amqp::REASON_HEADER];
    assert!(reason.contains("JSON"), "{headers:?}");

    // Well-formed, but fab refuses it: no samples. Dead-lettered at once, naming the field.
    let empty = batch("scanner-07", 10, &[]).to_string();
    amqp.publish(&queue, "empty", empty.as_bytes()).await;
    let (id, headers) = amqp.take_one(&dead).await;
    assert_eq!(id, "empty");
    let reason = &headers[orderly_amqp::REASON_HEADER];
    assert!(reason.contains("samples"), "{headers:?}");
    assert!(fab.store.batch("empty").await.unwrap().is_none());
    assert!(fab.store.batch("garbage").await.unwrap().is_none());

    fab.stop().await;
    amqp.delete(&[&queue, &dead]).await;
}

/// NATS JetStream, fab on SQLite (the embedded default): batches on the stream's subject
/// are ingested; a malformed one goes to the dead-letter stream with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_from_nats_are_ingested_and_malformed_ones_dead_lettered() {
    let stream = unique("FAB_IT_FDC_");
    let subject = format!("{}.samples", stream.to_lowercase());
    let fab = Fab::start_with(
        Backend::Sqlite,
        vec![
            ("NATS_URL".into(), nats_url()),
            ("FDC_STREAM".into(), stream.clone()),
            ("FDC_SUBJECT".into(), subject.clone()),
            ("FDC_CONSUMER".into(), "fab-fdc".into()),
        ],
    )
    .await;
    release_limits(&fab).await;
    let client = async_nats::connect(nats_url()).await.unwrap();
    let js = jetstream::new(client);
    let publish = |id: &'static str, body: Vec<u8>| {
        let js = js.clone();
        let subject = subject.clone();
        async move {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id);
            js.publish_with_headers(subject, headers, body.into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };

    publish(
        "n-1",
        batch("etcher-02", 0, &[23.0, 25.0])
            .to_string()
            .into_bytes(),
    )
    .await;
    publish(
        "n-2",
        batch("etcher-03", 0, &[23.1]).to_string().into_bytes(),
    )
    .await;
    let first = wait_batch(&fab.store, "n-1", 1).await;
    assert_eq!((first.tool.as_str(), first.samples), ("etcher-02", 2));
    assert!(first.alarms > 0, "25.0 is beyond the spec: {first:?}");
    let second = wait_batch(&fab.store, "n-2", 1).await;
    assert_eq!(
        (second.samples, second.alarms, second.deliveries),
        (1, 0, 1)
    );

    // An unknown field: the batch is refused by its decoder, dead-lettered with the reason.
    let mut bad = batch("etcher-02", 5, &[23.0]);
    bad["colour"] = json!("blue");
    publish("n-bad", bad.to_string().into_bytes()).await;
    let dead = js.get_stream(format!("{stream}_DEAD")).await.unwrap();
    let mut message = None;
    for _ in 0..600 {
        if let Ok(m) = dead.get_raw_message(1).await {
            message = Some(m);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let message = message.expect("nothing dead-lettered");
    let reason = message
        .headers
        .get(orderly_nats::DEAD_LETTER_REASON)
        .unwrap()
        .as_str()
        .to_owned();
    assert!(reason.contains("colour"), "{reason}");
    assert!(fab.store.batch("n-bad").await.unwrap().is_none());

    fab.stop().await;
    js.delete_stream(&stream).await.unwrap();
    js.delete_stream(format!("{stream}_DEAD")).await.unwrap();
}
