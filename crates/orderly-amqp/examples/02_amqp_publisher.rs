//! A publisher: sends 20 measurements to queue `measurements` (declare it by running
//! `01_amqp_consumer` first), each `publish` returning once the broker confirmed it, then stops;
//! the stop waits for confirms still pending.
//!
//! ```text
//! AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f cargo run -p orderly-amqp --example 02_amqp_publisher
//! ```

use std::process::ExitCode;

use orderly::{BoxError, System};
use orderly_amqp::{DEFAULT_URL, Publisher, PublisherSettings};
use orderly_messaging::Json;
use serde::Serialize;

#[derive(Serialize)]
struct Measurement {
    tool: String,
    value: f64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());

    let mut system = System::builder("sender");
    let publisher = system.add(
        "publisher",
        (),
        Publisher::new(PublisherSettings::new(url, "measurements")),
    );
    // A one-off task: its result is the exit code.
    system.add_task("send", publisher, |publisher, _ctx| async move {
        for n in 0..20 {
            let value = if n == 13 { -1.0 } else { f64::from(n) * 1.5 };
            let tool = format!("scanner-{}", n % 3);
            publisher
                .publish(&Json(Measurement { tool, value }))
                .await?;
        }
        tracing::info!("20 measurements confirmed by the broker");
        Ok::<_, BoxError>(())
    });
    system.run().await
}
