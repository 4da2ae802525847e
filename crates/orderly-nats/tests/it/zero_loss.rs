//! The zero-loss proof with real processes: 10,000 numbered messages, a consumer process that
//! writes each effect to PostgreSQL keyed by the message id and acknowledges after the commit,
//! stopped mid-stream by SIGTERM (graceful) or SIGKILL (crash), then a second process; and a
//! poison message among good ones.

// The proof prints its figures (run with `--nocapture` to see them).
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use orderly_nats::{DEAD_LETTER_REASON, DELIVERIES};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::process::{Child, Command};

use crate::support::{
    DEADLINE, consumer_info, create_stream, delete_streams, eventually, jetstream, nats_url,
    stream_messages, unique,
};

const MESSAGES: i64 = 10_000;
const PREFETCH: u16 = 32;
const ACK_WAIT: &str = "2s";

fn postgres_url() -> String {
    std::env::var("POSTGRES_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of the test's own with the `effects` table; its URL.
struct Database {
    name: String,
    url: String,
    pool: PgPool,
}

impl Database {
    async fn create() -> Self {
        let name = unique("zl").to_lowercase();
        let admin = postgres_url();
        let mut conn = PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("POSTGRES_URL has no database: {admin}"),
        };
        let pool = PgPool::connect(&url).await.unwrap();
        sqlx::query(
            "CREATE TABLE effects (message_id text PRIMARY KEY, value bigint NOT NULL, \
             handled int NOT NULL, attempt int NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        Self { name, url, pool }
    }

    async fn count(&self, filter: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM effects {filter}"))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn drop(self) {
        self.pool.close().await;
        let mut conn = PgConnection::connect(&postgres_url()).await.unwrap();
        let _ = sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&mut conn)
            .await;
    }
}

/// The example binary, which `cargo test` builds with the tests (`cargo test --test it` does
/// not: then build it with `cargo build -p orderly-nats --example nats_zero_loss_consumer`).
fn consumer_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let binary = dir.join("examples").join("nats_zero_loss_consumer");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/nats_zero_loss_consumer.rs");
    let built = std::fs::metadata(&binary).and_then(|m| m.modified());
    let written = std::fs::metadata(&source)
        .and_then(|m| m.modified())
        .unwrap();
    match built {
        Ok(built) if built >= written => binary,
        _ => panic!(
            "{} is missing or older than its source: run `cargo build -p orderly-nats --example \
             nats_zero_loss_consumer` (plain `cargo test` builds it)",
            binary.display()
        ),
    }
}

struct Proof {
    stream: String,
    db: Database,
    logs: tempfile::TempDir,
    runs: u32,
    ack_mode: &'static str,
}

impl Proof {
    async fn new(name: &str) -> Self {
        let js = jetstream().await;
        let stream = unique(name);
        create_stream(&js, &stream).await;
        Self {
            stream,
            db: Database::create().await,
            logs: tempfile::tempdir().unwrap(),
            runs: 0,
            ack_mode: "confirmed",
        }
    }

    /// Publishes the numbered messages `range` with ids `m-<n>`, 500 acknowledgements at a time.
    async fn publish(&self, numbers: impl IntoIterator<Item = i64>) {
        let js = jetstream().await;
        let mut pending = Vec::new();
        for n in numbers {
            let message = async_nats::jetstream::message::PublishMessage::build()
                .payload(format!(r#"{{"n":{n}}}"#).into())
                .message_id(format!("m-{n}"));
            pending.push(
                js.send_publish(format!("{}.numbers", self.stream), message)
                    .await
                    .unwrap(),
            );
            if pending.len() == 500 {
                for ack in pending.drain(..) {
                    ack.await.unwrap();
                }
            }
        }
        for ack in pending {
            ack.await.unwrap();
        }
    }

    fn start(&mut self) -> Child {
        self.runs += 1;
        let log =
            std::fs::File::create(self.logs.path().join(format!("run-{}.log", self.runs))).unwrap();
        Command::new(consumer_binary())
            .env("ZERO_LOSS_DATABASE_URL", &self.db.url)
            .env("ZERO_LOSS_NATS__URL", nats_url())
            .env("ZERO_LOSS_NATS__STREAM", &self.stream)
            .env("ZERO_LOSS_NATS__CONSUMER", "effects")
            .env("ZERO_LOSS_NATS__PREFETCH", PREFETCH.to_string())
            .env("ZERO_LOSS_NATS__ACK_WAIT", ACK_WAIT)
            .env("ZERO_LOSS_NATS__MAX_DELIVERIES", "3")
            .env("ZERO_LOSS_NATS__RETRY_DELAY", "200ms")
            .env("ZERO_LOSS_NATS__ACK_MODE", self.ack_mode)
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    fn logs(&self) -> String {
        (1..=self.runs)
            .map(|run| {
                let path = self.logs.path().join(format!("run-{run}.log"));
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                format!(
                    "--- run {run} (last lines)\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    async fn wait_rows(&self, at_least: i64) {
        eventually(&format!("{at_least} effects"), || async {
            self.db.count("").await >= at_least
        })
        .await;
    }

    async fn finish(self) {
        let js = jetstream().await;
        delete_streams(&js, &self.stream).await;
        self.db.drop().await;
    }
}

fn signal(child: &Child, signal: Signal) {
    let pid = i32::try_from(child.id().unwrap()).unwrap();
    kill(Pid::from_raw(pid), signal).unwrap();
}

async fn exit(child: &mut Child, proof: &Proof) -> std::process::ExitStatus {
    match tokio::time::timeout(DEADLINE, child.wait()).await {
        Ok(status) => status.unwrap(),
        Err(_) => panic!("the consumer did not exit\n{}", proof.logs()),
    }
}

/// Runs the two processes, the first stopped by `stop` mid-stream; returns the rows handled
/// when the first process stopped.
async fn two_runs(proof: &mut Proof, stop: Signal) -> i64 {
    proof.publish(0..MESSAGES).await;
    let mut first = proof.start();
    proof.wait_rows(500).await;
    signal(&first, stop);
    let status = exit(&mut first, proof).await;
    if stop == Signal::SIGTERM {
        assert!(
            status.success(),
            "a graceful stop exits 0: {status}\n{}",
            proof.logs()
        );
    }
    let at_stop = proof.db.count("").await;
    assert!(at_stop < MESSAGES, "stopped mid-stream ({at_stop} handled)");

    let mut second = proof.start();
    tokio::time::timeout(Duration::from_secs(300), proof.wait_rows(MESSAGES))
        .await
        .unwrap_or_else(|_| panic!("the second run did not finish\n{}", proof.logs()));
    signal(&second, Signal::SIGTERM);
    let status = exit(&mut second, proof).await;
    assert!(status.success(), "{status}\n{}", proof.logs());

    // Every effect exists, exactly once per id.
    assert_eq!(proof.db.count("").await, MESSAGES);
    let ids: Vec<String> = (0..MESSAGES).map(|n| format!("m-{n}")).collect();
    let present: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM effects WHERE message_id = ANY($1) \
         AND value = 2 * substr(message_id, 3)::bigint",
    )
    .bind(&ids)
    .fetch_one(&proof.db.pool)
    .await
    .unwrap();
    assert_eq!(present, MESSAGES, "every id present with its effect");
    let js = jetstream().await;
    let info = consumer_info(&js, &proof.stream, "effects").await;
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.num_pending, 0);
    assert_eq!(
        info.ack_floor.stream_sequence,
        u64::try_from(MESSAGES).unwrap()
    );
    at_stop
}

async fn graceful(ack_mode: &'static str) {
    let mut proof = Proof::new("zl_graceful").await;
    proof.ack_mode = ack_mode;
    let at_stop = two_runs(&mut proof, Signal::SIGTERM).await;
    let twice = proof.db.count("WHERE handled > 1").await;
    let redelivered = proof.db.count("WHERE attempt > 1").await;
    println!(
        "graceful ({ack_mode} acks): {at_stop} of {MESSAGES} handled by the first process; \
         {redelivered} delivered again, {twice} handled twice"
    );
    assert_eq!(twice, 0, "no message handled twice on the graceful path");
    assert_eq!(
        redelivered, 0,
        "nothing in flight was left for the broker to deliver again"
    );
    proof.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_sigterm_mid_stream_loses_nothing_and_handles_nothing_twice() {
    graceful("confirmed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_sigterm_with_pipelined_acks_loses_nothing_and_handles_nothing_twice() {
    graceful("pipelined").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_sigkill_mid_stream_loses_nothing_and_redelivers_at_most_the_prefetch() {
    crash("confirmed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_with_pipelined_acks_loses_nothing_and_redelivers_at_most_the_prefetch() {
    crash("pipelined").await;
}

async fn crash(ack_mode: &'static str) {
    let mut proof = Proof::new("zl_crash").await;
    proof.ack_mode = ack_mode;
    let at_stop = two_runs(&mut proof, Signal::SIGKILL).await;
    let twice = proof.db.count("WHERE handled > 1").await;
    let extra: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(handled - 1), 0)::bigint FROM effects")
            .fetch_one(&proof.db.pool)
            .await
            .unwrap();
    let redelivered = proof.db.count("WHERE attempt > 1").await;
    println!(
        "crash ({ack_mode} acks): {at_stop} of {MESSAGES} handled by the first process; {redelivered} delivered \
         again by the broker, {twice} of them handled twice ({extra} extra handlings); bound: \
         prefetch {PREFETCH}"
    );
    assert!(
        extra <= i64::from(PREFETCH),
        "{extra} extra handlings > prefetch {PREFETCH}"
    );
    assert!(
        redelivered <= i64::from(PREFETCH),
        "{redelivered} redeliveries > prefetch {PREFETCH}"
    );
    proof.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_dead_lettered_and_does_not_block_the_others() {
    let mut proof = Proof::new("zl_poison").await;
    proof.publish(0..100).await;
    proof.publish([-1]).await;
    proof.publish(100..200).await;
    let mut child = proof.start();
    proof.wait_rows(200).await;
    let js = jetstream().await;
    let dead = format!("{}_DEAD", proof.stream);
    eventually("the poison message in the dead-letter stream", || async {
        stream_messages(&js, &dead).await == 1
    })
    .await;
    signal(&child, Signal::SIGTERM);
    let status = exit(&mut child, &proof).await;
    assert!(status.success(), "{status}\n{}", proof.logs());

    assert_eq!(proof.db.count("").await, 200);
    assert_eq!(proof.db.count("WHERE handled > 1").await, 0);
    let message = js
        .get_stream(&dead)
        .await
        .unwrap()
        .get_raw_message(1)
        .await
        .unwrap();
    assert_eq!(&message.payload[..], br#"{"n":-1}"#);
    let reason = message.headers.get(DEAD_LETTER_REASON).unwrap().as_str();
    assert!(reason.contains("failed 3 deliveries"), "{reason}");
    assert!(reason.contains("poison message -1"), "{reason}");
    assert_eq!(message.headers.get(DELIVERIES).unwrap().as_str(), "3");
    let info = consumer_info(&js, &proof.stream, "effects").await;
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.num_pending, 0);
    proof.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_process_exits_78_naming_every_invalid_variable() {
    let output = Command::new(consumer_binary())
        .env("ZERO_LOSS_NATS__PREFETCH", "many")
        .env("ZERO_LOSS_NATS__ACK_MODE", "sometimes")
        .env_remove("ZERO_LOSS_DATABASE_URL")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let logs = String::from_utf8_lossy(&output.stdout);
    for variable in ["ZERO_LOSS_NATS__PREFETCH", "ZERO_LOSS_NATS__ACK_MODE"] {
        assert!(logs.contains(variable), "{variable} not named:\n{logs}");
    }
}
