//! Consumer throughput: a hand-written async-nats pull loop against `JetStreamConsumer` (both
//! acknowledgement modes), same
//! stream, same prefetch (`max_ack_pending`), same work per message (decode the JSON, a
//! trivial transform, acknowledge after it), runs alternated. Prints messages/s for each run
//! and the ratio of the medians.
//!
//! `cargo bench -p orderly-nats --bench throughput` against `NATS_URL` (default
//! `nats://127.0.0.1:4222`); `THROUGHPUT_MESSAGES` (default 100000), `THROUGHPUT_RUNS` (per
//! side, default 3), `THROUGHPUT_PREFETCH` (default 64).

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use orderly::System;
use orderly_messaging::{Delivery, HandlerError, Json};
use orderly_nats::{AckMode, ConsumerSettings, JetStreamConsumer};
use serde::Deserialize;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Deserialize)]
struct Reading {
    n: u64,
    tool: String,
}

/// The work: a trivial transform of the decoded message.
fn transform(reading: &Reading) -> u64 {
    reading.n.wrapping_mul(2) ^ reading.tool.len() as u64
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn publish(js: &jetstream::Context, subject: &str, messages: u64) {
    let mut pending = Vec::with_capacity(1000);
    for n in 0..messages {
        let payload = format!(r#"{{"n":{n},"tool":"etcher-{}"}}"#, n % 16);
        pending.push(
            js.publish(subject.to_owned(), payload.into())
                .await
                .unwrap(),
        );
        if pending.len() == 1000 {
            for ack in pending.drain(..) {
                ack.await.unwrap();
            }
        }
    }
    for ack in pending {
        ack.await.unwrap();
    }
}

/// (a) The loop one writes by hand with async-nats: a pull stream, decode, transform, ack.
async fn hand_written(
    js: &jetstream::Context,
    name: &str,
    durable: &str,
    messages: u64,
    prefetch: u16,
) -> f64 {
    let stream = js.get_stream(name).await.unwrap();
    let began = Instant::now();
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(durable.to_owned()),
            ack_policy: consumer::AckPolicy::Explicit,
            max_ack_pending: i64::from(prefetch),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut stream = consumer
        .stream()
        .max_messages_per_batch(usize::from(prefetch))
        .messages()
        .await
        .unwrap();
    let mut sum = 0u64;
    let mut handled = 0;
    while handled < messages {
        let message = stream.next().await.unwrap().unwrap();
        let reading: Reading = serde_json::from_slice(&message.payload).unwrap();
        sum = sum.wrapping_add(transform(&reading));
        message.ack().await.unwrap();
        handled += 1;
    }
    let elapsed = began.elapsed();
    std::hint::black_box(sum);
    messages as f64 / elapsed.as_secs_f64()
}

/// (b), (c) The component, in a system started for the run: messages/s from the start until
/// every message is handled, and how long the stop took then (pulls in flight end, the
/// acknowledgements are confirmed, the connection drained).
async fn component(
    url: &str,
    name: &str,
    durable: &str,
    messages: u64,
    prefetch: u16,
    mode: AckMode,
) -> (f64, Duration) {
    let handled = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Notify::new());
    let handler = {
        let handled = handled.clone();
        let done = done.clone();
        move |Json(reading): Json<Reading>, _delivery: Delivery| {
            std::hint::black_box(transform(&reading));
            if handled.fetch_add(1, Ordering::Relaxed) + 1 == messages {
                done.notify_one();
            }
            std::future::ready(Ok::<(), HandlerError>(()))
        }
    };
    let settings = ConsumerSettings::new(name, durable)
        .url(url)
        .prefetch(prefetch)
        .ack_mode(mode);
    let mut system = System::builder("throughput");
    system.add("consumer", (), JetStreamConsumer::new(settings, handler));
    let began = Instant::now();
    let running = system.build().unwrap().start().await.unwrap();
    done.notified().await;
    let handled_in = began.elapsed();
    let stopping = Instant::now();
    let report = running.stop().await;
    assert!(report.is_clean(), "{}", report.summary());
    (
        messages as f64 / handled_in.as_secs_f64(),
        stopping.elapsed(),
    )
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

/// Microseconds of client CPU per message since `since`.
fn cpu_per_message(since: Duration, messages: u64) -> f64 {
    (cpu() - since).as_secs_f64() * 1e6 / messages as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| orderly_nats::DEFAULT_URL.to_owned());
    let messages: u64 = env("THROUGHPUT_MESSAGES", 100_000);
    let runs: usize = env("THROUGHPUT_RUNS", 3);
    let prefetch: u16 = env("THROUGHPUT_PREFETCH", 64);
    let client = async_nats::connect(&url).await.unwrap();
    let js = jetstream::new(client);
    let name = format!("THROUGHPUT_{}", std::process::id());
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![format!("{name}.>")],
        ..Default::default()
    })
    .await
    .unwrap();
    let published = Instant::now();
    publish(&js, &format!("{name}.readings"), messages).await;
    println!(
        "published {messages} messages in {:.2?}; prefetch {prefetch}",
        published.elapsed()
    );

    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    let mut cpus: [Vec<f64>; 3] = Default::default();
    for run in 0..runs {
        // Each run reads the whole stream with a durable consumer of its own.
        let since = cpu();
        let rate = hand_written(&js, &name, &format!("a{run}"), messages, prefetch).await;
        let used = cpu_per_message(since, messages);
        println!(
            "run {run} (a) hand-written async-nats loop:                {rate:>9.0} msg/s ({used:.1} µs CPU/msg)"
        );
        a.push(rate);
        cpus[0].push(used);
        for (side, label, mode, rates) in [
            (
                1,
                "(b) JetStreamConsumer, AckMode::Confirmed",
                AckMode::Confirmed,
                &mut b,
            ),
            (
                2,
                "(c) JetStreamConsumer, AckMode::Pipelined",
                AckMode::Pipelined,
                &mut c,
            ),
        ] {
            let durable = format!("{}{run}", &label[1..2]);
            let since = cpu();
            let (rate, stop) = component(&url, &name, &durable, messages, prefetch, mode).await;
            let used = cpu_per_message(since, messages);
            println!(
                "run {run} {label}: {rate:>9.0} msg/s ({used:.1} µs CPU/msg; stop: {stop:.2?})"
            );
            rates.push(rate);
            cpus[side].push(used);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (a, b, c) = (median(&mut a), median(&mut b), median(&mut c));
    println!(
        "median: (a) {a:.0} msg/s, (b) {b:.0} msg/s = {:.1} % of (a), (c) {c:.0} msg/s = {:.1} % of (a)",
        100.0 * b / a,
        100.0 * c / a
    );
    let [ca, cb, cc] = cpus.map(|mut v| median(&mut v));
    println!("median client CPU per message: (a) {ca:.1} µs, (b) {cb:.1} µs, (c) {cc:.1} µs");
    js.delete_stream(&name).await.unwrap();
    let _ = js.delete_stream(format!("{name}_DEAD")).await;
}
