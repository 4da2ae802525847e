//! `fab simulate` from code: an in-process `fab all` on a temporary SQLite file, a seeded
//! scenario with a sensor shift and tool wear, and its summary.
//!
//! ```text
//! cargo run -p fab --example 05_simulate
//! ```

#![allow(clippy::print_stdout, reason = "printing the summary is the point")]

use std::error::Error;
use std::net::SocketAddr;

use fab::service::{self, Options, ProcessKind};
use fab::simulate::{self, InjectedFault, Scenario, SimTokens};
use orderly::Env;

const TOKENS: &str = "tool:tool-token-01,engineer:engineer-token-01,admin:admin-token-01";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let env = Env::from_pairs([
        ("FAB_DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("FAB_TOKENS".to_owned(), TOKENS.to_owned()),
        ("LOG_LEVEL".to_owned(), "warn".to_owned()),
    ]);
    let options = Options {
        bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        admin_bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Options::default()
    };
    let built = service::build(ProcessKind::All, &env, options);
    let running = built.system.build()?.start().await?;
    let addr = running
        .resource(built.http)
        .ok_or("the HTTP server is not running")?
        .local_addr();

    let mut scenario = Scenario::new(format!("http://{addr}"), SimTokens::parse(TOKENS)?);
    scenario.lots = 20;
    scenario.drift = 0.02;
    scenario.speed = 2_000.0;
    scenario.faults = vec![InjectedFault::parse("shift@1/1:300=0.15")?];
    let summary = simulate::run(scenario, std::future::pending()).await?;
    print!("{summary}");

    let report = running.stop().await;
    println!("fab stopped cleanly: {}", report.is_clean());
    Ok(())
}
