//! A consumer service: handles each measurement of queue `measurements` and acknowledges it
//! after the handler succeeded; a failing one is retried, then dead-lettered to
//! `measurements.dead` with the reason. SIGTERM (or Ctrl-C) cancels the subscription, finishes
//! the messages in flight, acknowledges them, and exits 0.
//!
//! ```text
//! AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f cargo run -p orderly-amqp --example 01_amqp_consumer
//! ```
//!
//! Publish to it with `02_amqp_publisher`.

use std::process::ExitCode;
use std::time::Duration;

use orderly::{Spec, System};
use orderly_amqp::{Consumer, ConsumerSettings, DEFAULT_URL};
use orderly_messaging::{Delivery, HandlerError, Json};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Measurement {
    tool: String,
    value: f64,
}

async fn record(Json(m): Json<Measurement>, delivery: Delivery) -> Result<(), HandlerError> {
    if !m.value.is_finite() || m.value < 0.0 {
        // Retrying would not change it: straight to the dead-letter queue.
        return Err(HandlerError::reject(format!(
            "{}: impossible value {}",
            m.tool, m.value
        )));
    }
    // A real handler writes the effect here, idempotently, keyed by `delivery.id()`.
    tokio::time::sleep(Duration::from_millis(50)).await;
    tracing::info!(
        id = delivery.id(),
        attempt = delivery.attempt(),
        tool = m.tool,
        value = m.value,
        "recorded"
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let mut settings = ConsumerSettings::new(url, "measurements");
    settings.prefetch = 16; // at most 16 handlers at once

    let mut system = System::builder("recorder").log_all_events();
    system.add(
        Spec::new("measurements").stop_timeout(Duration::from_secs(20)),
        (),
        Consumer::new(settings, record),
    );
    system.run().await
}
