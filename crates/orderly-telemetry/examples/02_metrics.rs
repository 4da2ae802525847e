//! Metrics: a Prometheus recorder behind the `metrics` facade, and the text `/metrics` serves.
//!
//! The `metrics` foundation runs the recorder's upkeep; a one-off `jobs` task records what a
//! worker would (a counter with labels, a gauge, a histogram) and prints the rendered text,
//! then the system stops. It ends by itself:
//!
//! ```text
//! cargo run -p orderly-telemetry --example 02_metrics
//! ```
//!
//! In a service, the admin listener serves the same text on `/metrics`:
//!
//! ```text
//! let render = metrics.clone();
//! system.add(Spec::new("admin").foundation(), (), Admin::new().from_env(&env).metrics(move || render.render()));
//! ```

use std::process::ExitCode;
use std::time::Duration;

use orderly::{BoxError, Env, Spec, System};
use orderly_telemetry::Metrics;

#[tokio::main]
async fn main() -> ExitCode {
    let metrics = match Metrics::install() {
        Ok(metrics) => metrics,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(error.exit_code());
        }
    };

    let mut system = System::builder("metrics").env(Env::process());
    let recorder = system.add(Spec::new("metrics").foundation(), (), metrics);
    system.add_task("jobs", recorder, |metrics: Metrics, _ctx| async move {
        for (job, outcome) in [(1, "done"), (2, "done"), (3, "failed"), (4, "done")] {
            metrics::gauge!("jobs_in_flight").increment(1.0);
            let took = Duration::from_millis(20 * job);
            tokio::time::sleep(took).await;
            metrics::histogram!("job_seconds").record(took.as_secs_f64());
            metrics::counter!("jobs_total", "outcome" => outcome).increment(1);
            metrics::gauge!("jobs_in_flight").decrement(1.0);
        }
        #[allow(
            clippy::print_stdout,
            reason = "showing the /metrics body is the point"
        )]
        {
            print!("{}", metrics.render());
        }
        Ok::<_, BoxError>(())
    });
    system.run().await
}
