//! The zero-loss proof: 10,000 numbered messages, a real consumer *process*
//! (`examples/amqp_zero_loss_consumer.rs`) writing each effect to PostgreSQL keyed by message id,
//! stopped mid-stream by SIGTERM or SIGKILL, then a second process finishing the queue.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use orderly_amqp::REASON_HEADER;
use sqlx::{PgPool, Row};
use tokio::process::{Child, Command};

use crate::support::{Database, Vhost, eventually, unique};

const MESSAGES: i64 = 10_000;
const PREFETCH: u32 = 32;
const WITHIN: Duration = Duration::from_secs(180);

/// The consumer process, built by `cargo test` with the other examples.
fn consumer_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/it-<hash> → target/<profile>/examples/amqp_zero_loss_consumer
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("amqp_zero_loss_consumer");
    assert!(
        path.exists(),
        "{} is missing: run `cargo test -p orderly-amqp` (which builds the examples) or \
         `cargo build -p orderly-amqp --example amqp_zero_loss_consumer` first",
        path.display()
    );
    path
}

struct Proof {
    vhost: Vhost,
    queue: String,
    database: Database,
    pool: PgPool,
}

impl Proof {
    async fn new(name: &str) -> Self {
        let vhost = Vhost::new(name);
        let queue = unique("numbers");
        vhost.declare(&queue, "quorum").await;
        let database = Database::new(name).await;
        let pool = PgPool::connect(&database.url()).await.unwrap();
        sqlx::query(
            "CREATE TABLE effects (message_id text PRIMARY KEY, value bigint NOT NULL, handled int NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        Self {
            vhost,
            queue,
            database,
            pool,
        }
    }

    fn spawn_consumer(&self) -> Child {
        Command::new(consumer_binary())
            .env("AMQP_URL", self.vhost.url())
            .env("QUEUE", &self.queue)
            .env("DATABASE_URL", self.database.url())
            .env("PREFETCH", PREFETCH.to_string())
            .env("DATABASE_MAX_CONNECTIONS", PREFETCH.to_string())
            .env("MAX_DELIVERIES", "3")
            .env("RUST_LOG", "warn")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    async fn rows(&self) -> i64 {
        sqlx::query("SELECT count(*) FROM effects")
            .fetch_one(&self.pool)
            .await
            .unwrap()
            .get(0)
    }

    async fn wait_rows(&self, at_least: i64) -> i64 {
        eventually(WITHIN, &format!("{at_least} effects"), || async {
            let rows = self.rows().await;
            (rows >= at_least).then_some(rows)
        })
        .await
    }

    /// (rows, rows handled more than once, extra handlings, every expected id present, sum of values)
    async fn effects(&self) -> (i64, i64, i64, bool, i64) {
        let rows = sqlx::query("SELECT message_id, value, handled FROM effects")
            .fetch_all(&self.pool)
            .await
            .unwrap();
        let ids: HashSet<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
        let every_id = (0..MESSAGES).all(|n| ids.contains(&format!("msg-{n}")));
        let twice = rows.iter().filter(|r| r.get::<i32, _>(2) > 1).count() as i64;
        let extra: i64 = rows.iter().map(|r| i64::from(r.get::<i32, _>(2) - 1)).sum();
        let sum: i64 = rows.iter().map(|r| r.get::<i64, _>(1)).sum();
        (rows.len() as i64, twice, extra, every_id, sum)
    }

    async fn finish(self) {
        self.pool.close().await;
        // `database` is dropped (with the vhost) here.
    }
}

fn numbered() -> impl Iterator<Item = (String, String)> {
    (0..MESSAGES).map(|n| (format!("msg-{n}"), format!(r#"{{"n":{n}}}"#)))
}

async fn signal_and_wait(child: &mut Child, signal: Signal) -> ExitStatus {
    let pid = Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap());
    kill(pid, signal).unwrap();
    tokio::time::timeout(WITHIN, child.wait())
        .await
        .unwrap()
        .unwrap()
}

async fn stopped_mid_stream(signal: Signal) -> (i64, i64, i64) {
    let proof = Proof::new(if signal == Signal::SIGKILL {
        "crash"
    } else {
        "graceful"
    })
    .await;
    proof.vhost.publish(&proof.queue, numbered()).await;

    let mut first = proof.spawn_consumer();
    proof.wait_rows(500).await;
    let status = signal_and_wait(&mut first, signal).await;
    let at_stop = proof.rows().await;
    assert!(
        at_stop < MESSAGES,
        "the first process was stopped mid-stream ({at_stop} effects)"
    );
    if signal == Signal::SIGTERM {
        assert!(status.success(), "a graceful stop exits 0: {status:?}");
    }

    let mut second = proof.spawn_consumer();
    proof.wait_rows(MESSAGES).await;
    eventually(WITHIN, "an empty queue", || async {
        (proof.vhost.ready(&proof.queue).await == 0).then_some(())
    })
    .await;
    let status = signal_and_wait(&mut second, Signal::SIGTERM).await;
    assert!(status.success(), "{status:?}");

    let (rows, twice, extra, every_id, sum) = proof.effects().await;
    assert_eq!(rows, MESSAGES);
    assert!(every_id, "every message id has its effect");
    assert_eq!(
        sum,
        MESSAGES * (MESSAGES - 1) / 2,
        "every effect has its message's value"
    );
    assert_eq!(
        proof.vhost.ready(&format!("{}.dead", proof.queue)).await,
        0,
        "nothing dead-lettered"
    );
    proof.finish().await;
    (at_stop, twice, extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_loses_nothing_and_handles_nothing_twice() {
    let (at_stop, twice, extra) = stopped_mid_stream(Signal::SIGTERM).await;
    println!(
        "graceful: SIGTERM after {at_stop} effects; {MESSAGES} effects at the end, \
         {twice} handled twice ({extra} extra handlings)"
    );
    assert_eq!((twice, extra), (0, 0), "no message was handled twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing_and_redelivers_at_most_the_in_flight() {
    let (at_stop, twice, extra) = stopped_mid_stream(Signal::SIGKILL).await;
    println!(
        "crash: SIGKILL after {at_stop} effects; {MESSAGES} effects at the end, \
         {twice} handled twice ({extra} extra handlings; in-flight bound = prefetch {PREFETCH})"
    );
    assert!(
        extra <= i64::from(PREFETCH),
        "redeliveries ({extra}) are at most the messages in flight at the kill ({PREFETCH})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_dead_lettered_and_does_not_block_the_others() {
    let proof = Proof::new("poison").await;
    let mut messages: Vec<_> = numbered().take(2_000).collect();
    messages.insert(100, ("poison".into(), r#"{"n":-1,"poison":true}"#.into()));
    proof.vhost.publish(&proof.queue, messages).await;

    let mut consumer = proof.spawn_consumer();
    let dead_letter_queue = format!("{}.dead", proof.queue);
    proof.wait_rows(2_000).await;
    eventually(WITHIN, "the dead letter", || async {
        (proof.vhost.ready(&dead_letter_queue).await == 1).then_some(())
    })
    .await;
    let status = signal_and_wait(&mut consumer, Signal::SIGTERM).await;
    assert!(status.success(), "{status:?}");

    assert_eq!(proof.vhost.ready(&proof.queue).await, 0);
    let dead = proof.vhost.take_all(&dead_letter_queue).await;
    assert_eq!(dead.len(), 1);
    let (id, headers, body) = &dead[0];
    assert_eq!(id, "poison");
    assert_eq!(body, r#"{"n":-1,"poison":true}"#);
    assert_eq!(
        headers[REASON_HEADER],
        "failed 3 deliveries; last error: message poison is poison: its handler always fails"
    );
    let rows: i64 = sqlx::query("SELECT count(*) FROM effects WHERE handled = 1")
        .fetch_one(&proof.pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 2_000, "every other message was handled, once");
    proof.finish().await;
}
