//! Consumer throughput: a hand-written lapin loop against the `Consumer` component, with the
//! same prefetch and acknowledge-after-handle, on the same broker, alternated.
//!
//! ```text
//! cargo bench -p orderly-amqp --bench throughput
//! ```
//!
//! Each round publishes `BENCH_MESSAGES` (default 100,000) small JSON messages to a fresh
//! quorum queue, then consumes them all: (a) a loop over lapin's consumer stream that decodes,
//! transforms and acknowledges each message in turn, awaiting each acknowledgement's write;
//! (a') the same loop handing each message to its own task (so up to `prefetch` are handled at
//! once); (a'') the sequential loop awaiting the acknowledgements' writes together (what the
//! component does for a handler that finishes at once); (b) the orderly `Consumer` with a
//! handler doing the same transform. Rounds alternate a, a', a'', b, a, a', a'', b…
//! (`BENCH_ROUNDS` rounds, default 3); each line is messages per second and the client's CPU
//! time per message, then the medians and the ratios of the component to the best hand-written
//! loop. `BENCH_PREFETCH` (default 100) is the prefetch of all. Needs the broker at `AMQP_URL`
//! (default vhost).
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use orderly::{Env, System};
use orderly_amqp::{Consumer, ConsumerSettings, DEFAULT_URL};
use orderly_messaging::{Delivery, HandlerError, Json};
use serde::Deserialize;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Deserialize)]
struct Reading {
    tool: String,
    value: f64,
}

/// The "trivial transform" both sides do.
fn transform(reading: &Reading) -> f64 {
    reading.value * 2.0 + reading.tool.len() as f64
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn declare_and_fill(url: &str, queue: &str, messages: u64) {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
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
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut pending = Vec::with_capacity(1000);
    for n in 0..messages {
        let body = format!(r#"{{"tool":"scanner-{}","value":{n}.5}}"#, n % 7);
        let properties = BasicProperties::default()
            .with_message_id(format!("m-{n}").into())
            .with_delivery_mode(2);
        pending.push(
            channel
                .basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    properties,
                )
                .await
                .unwrap(),
        );
        if pending.len() == 1000 {
            for confirm in pending.drain(..) {
                assert!(confirm.await.unwrap().is_ack());
            }
        }
    }
    for confirm in pending {
        assert!(confirm.await.unwrap().is_ack());
    }
    connection.close(200, "filled".into()).await.unwrap();
}

async fn delete(url: &str, queue: &str) {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    connection.close(200, "done".into()).await.unwrap();
}

/// (a) The hand-written loop: messages per second.
async fn hand_written(url: &str, queue: &str, messages: u64, prefetch: u16) -> f64 {
    let began = Instant::now();
    let (connection, mut consumer) = subscribe(url, queue, prefetch).await;
    let mut sink = 0.0;
    let mut seen = 0;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery.unwrap();
        let reading: Reading = serde_json::from_slice(&delivery.data).unwrap();
        sink += transform(&reading);
        delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .unwrap();
        seen += 1;
        if seen == messages {
            break;
        }
    }
    let rate = messages as f64 / began.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    connection.close(200, "done".into()).await.unwrap();
    rate
}

/// A connection and a consumer of `queue` with `prefetch`, as each hand-written loop starts.
async fn subscribe(url: &str, queue: &str, prefetch: u16) -> (Connection, lapin::Consumer) {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .unwrap();
    let consumer = channel
        .basic_consume(
            queue.into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    (connection, consumer)
}

/// (a') The hand-written loop, handling and acknowledging each message in its own task (as
/// the component does), so up to `prefetch` at once: messages per second.
async fn hand_written_tasks(url: &str, queue: &str, messages: u64, prefetch: u16) -> f64 {
    let began = Instant::now();
    let (connection, mut consumer) = subscribe(url, queue, prefetch).await;
    let seen = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Notify::new());
    let mut tasks = tokio::task::JoinSet::new();
    let mut received = 0;
    while received < messages {
        let Some(delivery) = consumer.next().await else {
            break;
        };
        let delivery = delivery.unwrap();
        received += 1;
        let (seen, done) = (seen.clone(), done.clone());
        tasks.spawn(async move {
            let reading: Reading = serde_json::from_slice(&delivery.data).unwrap();
            std::hint::black_box(transform(&reading));
            delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .unwrap();
            if seen.fetch_add(1, Ordering::Relaxed) + 1 == messages {
                done.notify_one();
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    done.notified().await;
    let rate = messages as f64 / began.elapsed().as_secs_f64();
    connection.close(200, "done".into()).await.unwrap();
    rate
}

/// (a'') The hand-written loop handling each message in turn but not waiting for each
/// acknowledgement's write before taking the next: the writes are awaited together (a
/// `FuturesUnordered`), as the component does for a handler that finishes at once.
async fn hand_written_pipelined(url: &str, queue: &str, messages: u64, prefetch: u16) -> f64 {
    let began = Instant::now();
    let (connection, mut consumer) = subscribe(url, queue, prefetch).await;
    let mut writes = FuturesUnordered::new();
    let mut sink = 0.0;
    let mut seen = 0;
    while seen < messages {
        tokio::select! {
            Some(written) = writes.next(), if !writes.is_empty() => {
                let written: lapin::Result<bool> = written;
                assert!(written.unwrap());
            }
            delivery = consumer.next() => {
                let delivery = delivery.unwrap().unwrap();
                let reading: Reading = serde_json::from_slice(&delivery.data).unwrap();
                sink += transform(&reading);
                writes.push(async move { delivery.acker.ack(BasicAckOptions::default()).await });
                seen += 1;
            }
        }
    }
    while let Some(written) = writes.next().await {
        assert!(written.unwrap());
    }
    let rate = messages as f64 / began.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    connection.close(200, "done".into()).await.unwrap();
    rate
}

/// (b) The orderly consumer: messages per second.
async fn component(url: &str, queue: &str, messages: u64, prefetch: u16) -> f64 {
    let seen = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Notify::new());
    let handler = {
        let (seen, done) = (seen.clone(), done.clone());
        move |Json(reading): Json<Reading>, _delivery: Delivery| {
            let (seen, done) = (seen.clone(), done.clone());
            async move {
                std::hint::black_box(transform(&reading));
                if seen.fetch_add(1, Ordering::Relaxed) + 1 == messages {
                    done.notify_one();
                }
                Ok::<_, HandlerError>(())
            }
        }
    };
    let mut settings = ConsumerSettings::new(url, queue);
    settings.prefetch = prefetch;
    let mut system = System::builder("bench").env(Env::empty());
    system.add("consumer", (), Consumer::new(settings, handler));
    let began = Instant::now();
    let running = system.build().unwrap().start().await.unwrap();
    done.notified().await;
    let rate = messages as f64 / began.elapsed().as_secs_f64();
    assert!(running.stop().await.is_clean());
    rate
}

/// The CPU time this process (the client side: the broker runs apart) has used so far.
fn cpu() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let time = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().unsigned_abs())
            + Duration::from_micros(t.tv_usec().unsigned_abs())
    };
    time(usage.user_time()) + time(usage.system_time())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

const SIDES: [&str; 4] = [
    "lapin loop, sequential",
    "lapin loop, task/message",
    "lapin loop, pipelined acks",
    "orderly Consumer",
];

#[tokio::main]
async fn main() {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let messages = env_number("BENCH_MESSAGES", 100_000);
    let rounds = env_number("BENCH_ROUNDS", 3);
    let prefetch = u16::try_from(env_number("BENCH_PREFETCH", 100)).unwrap();
    println!("consumer throughput: {messages} messages per run, prefetch {prefetch}, quorum queue");
    let mut rates: [Vec<f64>; 4] = Default::default();
    let mut cpus: [Vec<f64>; 4] = Default::default();
    for round in 0..rounds {
        for (side, name) in SIDES.iter().enumerate() {
            let queue = format!("orderly-amqp-bench-{}-{round}-{side}", std::process::id());
            declare_and_fill(&url, &queue, messages).await;
            let since = cpu();
            let rate = match side {
                0 => hand_written(&url, &queue, messages, prefetch).await,
                1 => hand_written_tasks(&url, &queue, messages, prefetch).await,
                2 => hand_written_pipelined(&url, &queue, messages, prefetch).await,
                _ => component(&url, &queue, messages, prefetch).await,
            };
            let used = (cpu() - since).as_secs_f64() * 1e6 / messages as f64;
            rates[side].push(rate);
            cpus[side].push(used);
            println!(
                "round {}: {name:<26} {rate:>10.0} msg/s ({used:.1} µs CPU/msg)",
                round + 1
            );
            delete(&url, &queue).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let medians: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
    let cpus: Vec<f64> = cpus.iter_mut().map(|c| median(c)).collect();
    for ((name, m), c) in SIDES.iter().zip(&medians).zip(&cpus) {
        println!("median: {name:<26} {m:>10.0} msg/s ({c:.1} µs CPU/msg)");
    }
    let best = medians[0].max(medians[1]).max(medians[2]);
    println!(
        "ratio: orderly Consumer / best hand-written loop = {:.1} %",
        medians[3] / best * 100.0
    );
    let best_cpu = cpus[0].min(cpus[1]).min(cpus[2]);
    println!(
        "client CPU per message: orderly Consumer / leanest hand-written loop = {:.1} %",
        cpus[3] / best_cpu * 100.0
    );
}
