//! A vhost per test, a database per test, raw publishing and queue inspection.

use std::collections::HashMap;
use std::future::Future;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use sqlx::Connection as _;

/// The broker without a vhost: `AMQP_URL` or the local default.
pub(crate) fn amqp_base() -> String {
    let url =
        std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672".into());
    // Drop a vhost path if one was given: tests add their own.
    match url
        .find("://")
        .and_then(|s| url[s + 3..].find('/').map(|p| s + 3 + p))
    {
        Some(path) => url[..path].to_owned(),
        None => url,
    }
}

/// A unique name for this test process and call: `<prefix>-<pid>-<n>`.
pub(crate) fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn rabbitmqctl(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("rabbitmqctl")
        .arg("--quiet")
        .args(args)
        .output()
        .context("running rabbitmqctl")?;
    if !output.status.success() {
        bail!(
            "rabbitmqctl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A vhost of its own, deleted (with its queues) when dropped.
pub(crate) struct Vhost {
    pub(crate) name: String,
}

impl Vhost {
    pub(crate) fn new(prefix: &str) -> Self {
        let name = unique(&format!("orderly-amqp-{prefix}"));
        rabbitmqctl(&["add_vhost", &name]).unwrap();
        rabbitmqctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"]).unwrap();
        Self { name }
    }

    /// The URL of this vhost.
    pub(crate) fn url(&self) -> String {
        format!("{}/{}", amqp_base(), self.name)
    }

    /// Closes every client connection to this vhost (and to no other).
    pub(crate) fn close_connections(&self) {
        rabbitmqctl(&[
            "close_all_connections",
            "--vhost",
            &self.name,
            "test: dropping connections",
        ])
        .unwrap();
    }

    pub(crate) async fn connect(&self) -> Connection {
        Connection::connect(
            &self.url(),
            ConnectionProperties::default().with_connection_name("test".into()),
        )
        .await
        .unwrap()
    }

    /// Publishes `messages` (id, JSON body) to `queue` through the default exchange, with
    /// confirms, pipelined.
    pub(crate) async fn publish(
        &self,
        queue: &str,
        messages: impl IntoIterator<Item = (String, String)>,
    ) {
        let connection = self.connect().await;
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let mut pending = Vec::new();
        for (id, body) in messages {
            let properties = BasicProperties::default()
                .with_message_id(id.into())
                .with_content_type("application/json".into())
                .with_delivery_mode(2);
            let confirm = channel
                .basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    properties,
                )
                .await
                .unwrap();
            pending.push(confirm);
            if pending.len() >= 500 {
                for confirm in pending.drain(..) {
                    assert!(confirm.await.unwrap().is_ack());
                }
            }
        }
        for confirm in pending {
            assert!(confirm.await.unwrap().is_ack());
        }
        connection.close(200, "done".into()).await.unwrap();
    }

    /// Declares `queue` as the consumer would (durable, of type `kind`).
    pub(crate) async fn declare(&self, queue: &str, kind: &str) {
        let connection = self.connect().await;
        let channel = connection.create_channel().await.unwrap();
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-queue-type".into(),
            lapin::types::AMQPValue::LongString(kind.into()),
        );
        channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                arguments,
            )
            .await
            .unwrap();
        connection.close(200, "done".into()).await.unwrap();
    }

    /// The type of `queue` as the broker reports it (`classic`, `quorum`).
    pub(crate) fn queue_type(&self, queue: &str) -> String {
        let listing = rabbitmqctl(&["list_queues", "-p", &self.name, "name", "type"]).unwrap();
        listing
            .lines()
            .find_map(|line| {
                let mut fields = line.split_whitespace();
                (fields.next() == Some(queue)).then(|| fields.next().unwrap_or("").to_owned())
            })
            .unwrap_or_default()
    }

    /// The number of ready messages in `queue` (a passive declare).
    pub(crate) async fn ready(&self, queue: &str) -> u32 {
        self.counts(queue).await.0
    }

    /// The numbers of ready messages and of consumers of `queue` (a passive declare).
    pub(crate) async fn counts(&self, queue: &str) -> (u32, u32) {
        let connection = self.connect().await;
        let channel = connection.create_channel().await.unwrap();
        let queue = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        connection.close(200, "done".into()).await.unwrap();
        (queue.message_count(), queue.consumer_count())
    }

    /// Takes every message of `queue`: (message id, headers as text, body).
    pub(crate) async fn take_all(
        &self,
        queue: &str,
    ) -> Vec<(String, HashMap<String, String>, String)> {
        let connection = self.connect().await;
        let channel = connection.create_channel().await.unwrap();
        let mut out = Vec::new();
        while let Some(message) = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            let delivery = message.delivery;
            let id = delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default();
            let headers = delivery
                .properties
                .headers()
                .as_ref()
                .map(|table| {
                    table
                        .inner()
                        .iter()
                        .map(|(k, v)| (k.to_string(), header_text(v)))
                        .collect()
                })
                .unwrap_or_default();
            out.push((
                id,
                headers,
                String::from_utf8_lossy(&delivery.data).into_owned(),
            ));
        }
        connection.close(200, "done".into()).await.unwrap();
        out
    }
}

fn header_text(value: &lapin::types::AMQPValue) -> String {
    use lapin::types::AMQPValue;
    match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        if let Err(error) = rabbitmqctl(&["delete_vhost", &self.name]) {
            eprintln!("cleaning up: {error}");
        }
    }
}

/// Polls `probe` every 20 ms until it returns `Some`, for at most `within`.
pub(crate) async fn eventually<T, F, Fut>(within: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A PostgreSQL database of its own, dropped (forcibly) when this is dropped, also when the
/// test failed.
pub(crate) struct Database {
    pub(crate) name: String,
    admin_url: String,
}

impl Database {
    pub(crate) async fn new(prefix: &str) -> Self {
        let admin_url = std::env::var("POSTGRES_URL")
            .or_else(|_| std::env::var("DATABASE_URL"))
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = unique(&format!("orderly_amqp_{prefix}")).replace('-', "_");
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        Self { name, admin_url }
    }

    pub(crate) fn url(&self) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(base, _)| base);
        format!("{base}/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // Drop is synchronous and may run inside the test's runtime: clean up from a thread
        // with a runtime of its own.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
                admin.close().await
            })
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("dropping database {}: {error}", self.name),
            Err(_) => eprintln!("dropping database {}: the cleanup panicked", self.name),
        }
    }
}

/// Logs to the test's output, filtered by `RUST_LOG`.
pub(crate) fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
