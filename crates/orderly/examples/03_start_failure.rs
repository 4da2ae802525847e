//! A start failure after others started: exactly the started components are stopped, in
//! reverse order, and the report names the culprit.
//!
//! `config → db → cache → http → worker`: `http` fails to start (its port is taken), so `cache`,
//! `db` and `config` (started) are stopped in that order and `worker` never starts. The report
//! is printed and the process exits with its exit code (1, a component failure):
//!
//! ```text
//! cargo run -p orderly --example 03_start_failure; echo "exit code $?"
//! ```

use std::process::ExitCode;

use orderly::{BoxError, Component, Context, System};

/// A component that says when it starts and stops; `fail` makes its start fail.
struct Part {
    name: &'static str,
    fail: bool,
}

impl Part {
    fn new(name: &'static str) -> Self {
        Self { name, fail: false }
    }
}

impl Component for Part {
    // A `Key<()>` delivers `()`, so a `Part` can depend on another `Part`, or on nothing.
    type Deps = ();
    type Resource = ();

    async fn start(&mut self, (): (), _ctx: Context) -> Result<(), BoxError> {
        if self.fail {
            return Err("cannot bind 127.0.0.1:8080: address already in use".into());
        }
        tracing::info!("{}: started", self.name);
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), BoxError> {
        tracing::info!("{}: stopped", self.name);
        Ok(())
    }
}

#[tokio::main]
#[allow(clippy::print_stdout, reason = "printing the report is the point")]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt().with_target(false).init();

    let mut system = System::builder("start-failure");
    let config = system.add("config", (), Part::new("config"));
    let db = system.add("db", config, Part::new("db"));
    let cache = system.add("cache", db, Part::new("cache"));
    let http = system.add(
        "http",
        cache,
        Part {
            fail: true,
            ..Part::new("http")
        },
    );
    system.add("worker", http, Part::new("worker"));

    match system.build()?.start().await {
        Ok(running) => {
            let report = running.stop().await;
            anyhow::bail!("http was meant to fail, yet the system started: {report}")
        }
        Err(error) => {
            let report = error.into_report();
            println!("{report}");
            Ok(ExitCode::from(report.exit_code))
        }
    }
}
