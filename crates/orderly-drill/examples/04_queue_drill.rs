//! The message-queue drill from the library: 3 consumer replicas on the local RabbitMQ, 3
//! SIGKILLs while 5,000 messages are published; every confirmed message must have its effect,
//! and messages handled twice stay within the in-flight bound.
//!
//! ```text
//! cargo build -p orderly-amqp --example amqp_zero_loss_consumer
//! cargo run -p orderly-drill --example 04_queue_drill
//! ```

use std::process::ExitCode;

use orderly_drill::{QueueDrill, QueueOptions, Scenario};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let mut options = QueueOptions::new(format!("{target}/debug/examples/amqp_zero_loss_consumer"));
    options.scenario = Scenario::Sigkills(3);
    let report = match QueueDrill::new(options) {
        Ok(drill) => drill.run().await,
        Err(error) => Err(error),
    };
    match report {
        Ok(report) => {
            eprint!("{report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(3)
        }
    }
}
