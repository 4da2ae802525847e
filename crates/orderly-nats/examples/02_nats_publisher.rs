//! A JetStream publisher: each publish returns once the stream stored the order; the message
//! id makes a retried publish a duplicate the stream ignores. Run `01_nats_consumer` first (it
//! creates the `ORDERS` stream).

use std::process::ExitCode;

use orderly::{BoxError, System};
use orderly_messaging::Json;
use orderly_nats::{JetStreamPublisher, Publisher, PublisherSettings};
use serde::Serialize;

#[derive(Serialize)]
struct Order {
    item: &'static str,
    quantity: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stdout)
        .init();
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| orderly_nats::DEFAULT_URL.to_owned());
    let mut system = System::builder("shop");
    let publisher = system.add(
        "publisher",
        (),
        JetStreamPublisher::new(PublisherSettings::new(url)),
    );
    // A one-off task: publish three orders, then the system stops (the publisher last).
    system.add_task(
        "checkout",
        publisher,
        |publisher: Publisher, _ctx| async move {
            for (n, (item, quantity)) in [("wafer", 25), ("mask", 1), ("nothing", 0)]
                .into_iter()
                .enumerate()
            {
                let id = format!("order-{n}");
                let stored = publisher
                    .publish_with_id("orders.new", &id, &Json(Order { item, quantity }))
                    .await?;
                tracing::info!(
                    id,
                    sequence = stored.sequence,
                    duplicate = stored.duplicate,
                    "stored"
                );
            }
            Ok::<_, BoxError>(())
        },
    );
    system.run().await
}
