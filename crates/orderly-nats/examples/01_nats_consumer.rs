//! A JetStream consumer: orders are handled, acknowledged after the handler succeeded,
//! retried with a delay when it fails, dead-lettered after five deliveries. SIGTERM stops the
//! pull, waits for the handlers running and acknowledges their messages, then exits.
//!
//! Needs a NATS server with JetStream (`NATS_URL`, default `nats://127.0.0.1:4222`):
//! `cargo run -p orderly-nats --example 01_nats_consumer`, then publish with `02_nats_publisher`.

use std::process::ExitCode;
use std::time::Duration;

use orderly::System;
use orderly_messaging::{Delivery, HandlerError, Json};
use orderly_nats::{ConsumerSettings, JetStreamConsumer};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Order {
    item: String,
    quantity: u32,
}

async fn handle(Json(order): Json<Order>, delivery: Delivery) -> Result<(), HandlerError> {
    if order.quantity == 0 {
        // Never valid: to the dead-letter stream at once, with this reason.
        return Err(HandlerError::reject("an order of nothing"));
    }
    tracing::info!(
        id = delivery.id(),
        attempt = delivery.attempt(),
        item = order.item,
        quantity = order.quantity,
        "order handled"
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stdout)
        .init();
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| orderly_nats::DEFAULT_URL.to_owned());
    let settings = ConsumerSettings::new("ORDERS", "shipping")
        .url(url)
        .subjects(["orders.>"])
        .prefetch(16)
        .ack_wait(Duration::from_secs(30))
        .retry_delay(Duration::from_secs(2));
    let mut system = System::builder("shipping").log_all_events();
    system.add("orders", (), JetStreamConsumer::new(settings, handle));
    system.run().await
}
