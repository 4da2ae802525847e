//! `fab`: one binary, one subcommand per process type. `main` is phases: arguments →
//! telemetry → configuration and build → run → exit code (orderly's: 0 clean, 1 a component
//! failed, 78 invalid configuration, 2 usage).

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fab::service::{self, Options, ProcessKind};
use fab::simulate::{self, Ending, SimulateArgs, Summary};
use orderly::Env;
use orderly_telemetry::{Logs, Metrics};

/// The fab reference application: APC, FDC and central specs on orderly.
#[derive(Debug, Parser)]
#[command(name = "fab", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every service in one process. With no DATABASE_URL: a SQLite file in FAB_DATA_DIR
    /// (default ./fab-data), migrated at start, and an in-process bus.
    All,
    /// The APC service alone (needs DATABASE_URL; run `fab migrate` first).
    Apc,
    /// The FDC service alone (needs DATABASE_URL; run `fab migrate` first).
    Fdc,
    /// The central spec service alone (needs DATABASE_URL; run `fab migrate` first).
    Spec,
    /// Applies the database migrations to DATABASE_URL and exits (an admin task).
    Migrate,
    /// Tools and sensors sending realistic traffic to a running fab, then a summary. Exit 0,
    /// 1 when a request failed or the fab went away, 78 on invalid options, 130 on Ctrl-C.
    Simulate(Box<SimulateArgs>),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let kind = match cli.command {
        Command::All => Some(ProcessKind::All),
        Command::Apc => Some(ProcessKind::Apc),
        Command::Spec => Some(ProcessKind::Spec),
        Command::Fdc => Some(ProcessKind::Fdc),
        Command::Migrate => None,
        Command::Simulate(args) => return run_simulation(*args).await,
    };

    // 1. Telemetry first, so that configuration and build problems are logged too.
    let env = Env::process();
    let logs = match Logs::init(&env) {
        Ok(logs) => logs,
        Err(error) => {
            eprintln!("fab: {error}");
            return ExitCode::from(error.exit_code());
        }
    };
    let metrics = match Metrics::install() {
        Ok(metrics) => metrics,
        Err(error) => {
            tracing::error!(%error, "cannot install the metrics recorder");
            return ExitCode::from(error.exit_code());
        }
    };

    // 2. Configuration and build: read when the system starts, every problem at once.
    let system = match kind {
        Some(kind) => {
            let options = Options {
                metrics: Some(metrics),
                ..Options::default()
            };
            service::build(kind, &env, options).system
        }
        None => service::migrate(&env),
    };

    // 3. Run until SIGTERM/SIGINT (or the task's end); the exit code is orderly's.
    logs.attach(system).run().await
}

/// `fab simulate`: options → scenario → traffic until done or Ctrl-C → summary → exit code.
async fn run_simulation(args: SimulateArgs) -> ExitCode {
    let scenario = match args.scenario().await {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(error.exit_code());
        }
    };
    let stop = async {
        // Without a signal handler, run to the end.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    match simulate::run(scenario, stop).await {
        Ok(summary) => {
            print_summary(&summary, args.json);
            match (summary.ending, summary.requests.failed) {
                (Ending::Interrupted, _) => ExitCode::from(130),
                (_, 0) => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            }
        }
        Err(error) => {
            if let Some(summary) = error.summary() {
                print_summary(summary, args.json);
            }
            eprintln!("{error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn print_summary(summary: &Summary, json: bool) {
    let mut out = std::io::stdout().lock();
    let written = if json {
        serde_json::to_string_pretty(summary)
            .map_err(std::io::Error::other)
            .and_then(|text| writeln!(out, "{text}"))
    } else {
        write!(out, "{summary}")
    };
    // A closed pipe (`fab simulate | head`) is the reader's choice, not an error.
    if let Err(error) = written.or_else(|e| match e.kind() {
        std::io::ErrorKind::BrokenPipe => Ok(()),
        _ => Err(e),
    }) {
        eprintln!("fab simulate: cannot print the summary: {error}");
    }
}
