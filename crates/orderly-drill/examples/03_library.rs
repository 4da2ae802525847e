//! A drill from code: two rolling updates of the `01_replica` example (built next to this
//! one) with fresh HTTP/2 connections, the report as JSON on stdout and its summary on stderr.
//!
//! ```text
//! cargo build -p orderly-drill --examples
//! target/debug/examples/03_library > report.json
//! ```

use std::process::ExitCode;
use std::time::Duration;

use orderly_drill::{Connections, Drill, HttpVersion, Load, Options};

#[tokio::main]
async fn main() -> ExitCode {
    let replica = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("01_replica")));
    let Some(replica) = replica else {
        eprintln!("cannot locate the 01_replica example");
        return ExitCode::FAILURE;
    };
    let mut options = Options::new(replica.display().to_string());
    options.rollouts = 2;
    options.load = Load::Rate(300);
    options.connections = Connections::Fresh;
    options.client_http = HttpVersion::Http2;
    options.upstream_http = HttpVersion::Http2;
    options.propagation_delay = Duration::from_millis(300);

    let drill = match Drill::new(options) {
        Ok(drill) => drill,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    match drill.run().await {
        Ok(report) => {
            eprint!("{report}");
            // The JSON report is this example's output.
            #[allow(clippy::print_stdout)]
            {
                println!("{}", report.to_json());
            }
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
