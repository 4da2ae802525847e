//! Drain exactness (SPEC §6): with one request in flight for T when SIGTERM arrives, the process
//! exits within T + 20 ms.
//!
//! Run by `benches/http.sh`, or alone:
//!
//! ```text
//! cargo build --release -p orderly-http-bench-server
//! cargo bench -p orderly-http --bench drain
//! ```
//!
//! Each run starts `orderly-http-bench-server orderly` (`benches/server`; found in
//! `target/release`, next to this executable's folder) with `PORT=0 ADMIN_PORT=0
//! SHUTDOWN_DELAY=0s`, reads the port from its JSON log, connects, and notes the time just before
//! writing `GET /sleep/500` (the request start). When the handler logs `sleep began`, it sends
//! SIGTERM with `kill(2)` (through `nix`) and notes the time when `wait()` returns (the exit). The
//! response must be a 200 with `Connection: close` and the body `slept 500 ms`, and the exit
//! status 0. The figure is exit − request start − T: what the drain and the rest of the shutdown
//! add to the request. 20 runs after one warm-up. Times come from `tokio::time::Instant`, which
//! reads the real clock when no runtime has paused it.

// Printing the table is the point.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{ChildStdout, Command};
use tokio::time::Instant;

/// How long the request is in flight, in milliseconds: `GET /sleep/500` answers `slept 500 ms`.
const T_MS: u64 = 500;
const T: Duration = Duration::from_millis(T_MS);
const RUNS: usize = 20;
/// The most any run may take, from spawning the server to its exit.
const RUN_LIMIT: Duration = Duration::from_secs(10);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // Like divan: measure only under `cargo bench` (which passes `--bench`), not when `cargo
    // test --benches` runs this as a test.
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|arg| arg == flag);
    if !has("--bench") || has("--test") || has("--list") {
        return ExitCode::SUCCESS;
    }
    let Some(server) = server_path().filter(|path| path.is_file()) else {
        // Like the lifecycle benchmark: `cargo bench --workspace` need not build it first.
        println!(
            "drain: skipped: orderly-http-bench-server not found; run \
             `cargo build --release -p orderly-http-bench-server` first"
        );
        return ExitCode::SUCCESS;
    };
    match measure(&server).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            println!("drain: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `target/release/orderly-http-bench-server`, next to the folder of this benchmark's
/// executable (`target/release/deps/drain-…`).
fn server_path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.join("orderly-http-bench-server"))
}

async fn measure(server: &Path) -> anyhow::Result<()> {
    run_once(server).await.context("warm-up run")?;
    let mut runs = Vec::with_capacity(RUNS);
    for i in 1..=RUNS {
        runs.push(run_once(server).await.with_context(|| format!("run {i}"))?);
    }
    println!("Drain exactness: one request in flight for T = {T:?} at SIGTERM, SHUTDOWN_DELAY=0s");
    println!("  {RUNS} runs (+1 warm-up) of {} orderly", server.display());
    println!("  every response: 200, Connection: close, the whole body; every exit status 0");
    println!(
        "  {:<40} {:>9} {:>9} {:>9} {:>9}",
        "", "min", "median", "p90", "max"
    );
    let row = |label: &str, figure: fn(&Run) -> Duration| {
        let mut sorted: Vec<Duration> = runs.iter().map(figure).collect();
        sorted.sort_unstable();
        // Nearest-rank percentiles.
        let rank = |p: usize| ms(sorted[(sorted.len() * p).div_ceil(100).saturating_sub(1)]);
        println!(
            "  {label:<40} {:>9} {:>9} {:>9} {:>9}",
            rank(0),
            rank(50),
            rank(90),
            rank(100)
        );
    };
    row("request start → SIGTERM sent", |r| {
        r.signalled - r.started
    });
    row("SIGTERM sent → exit", |r| r.exited - r.signalled);
    row("response read → exit", |r| r.exited - r.answered);
    row("exit − request start − T (target 20 ms)", |r| {
        r.exited - r.started - T
    });
    Ok(())
}

fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}

/// The instants of one run.
struct Run {
    /// Just before the request was written.
    started: Instant,
    /// When the handler's `sleep began` line had been read, just before SIGTERM was sent.
    signalled: Instant,
    /// When the whole response had been read.
    answered: Instant,
    /// When `wait()` returned.
    exited: Instant,
}

async fn run_once(server: &Path) -> anyhow::Result<Run> {
    let mut child = Command::new(server)
        .arg("orderly")
        .env("PORT", "0")
        .env("ADMIN_PORT", "0")
        .env("SHUTDOWN_DELAY", "0s")
        .env_remove("SHUTDOWN_TIMEOUT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot spawn {}", server.display()))?;
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw)
        .context("the server has no pid")?;
    let mut log = BufReader::new(child.stdout.take().context("no stdout")?).lines();

    let run = async {
        let addr = wait_for(&mut log, |line| {
            (line["component"] == "http")
                .then(|| line["addr"].as_str().map(str::to_owned))
                .flatten()
        })
        .await
        .context("no address logged by the http component")?;
        let mut stream = TcpStream::connect(&addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;

        let request = format!("GET /sleep/{T_MS} HTTP/1.1\r\nHost: bench\r\n\r\n");
        let started = Instant::now();
        stream.write_all(request.as_bytes()).await?;
        let response = async {
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await?;
            anyhow::Ok((response, Instant::now()))
        };
        let shutdown = async {
            wait_for(&mut log, |line| {
                (line["message"] == "sleep began").then_some(())
            })
            .await
            .context("the handler did not log `sleep began`")?;
            let signalled = Instant::now();
            kill(pid, Signal::SIGTERM).context("kill -TERM")?;
            // Read the log to its end, so the server never blocks on a full pipe.
            let (read, status) = tokio::join!(
                async {
                    while log.next_line().await?.is_some() {}
                    anyhow::Ok(())
                },
                async { (child.wait().await, Instant::now()) },
            );
            read?;
            let (status, exited) = status;
            anyhow::Ok((signalled, status?, exited))
        };
        let (response, shutdown) = tokio::join!(response, shutdown);
        let ((response, answered), (signalled, status, exited)) = (response?, shutdown?);
        check(&response)?;
        ensure!(status.success(), "the server exited with {status}");
        anyhow::Ok(Run {
            started,
            signalled,
            answered,
            exited,
        })
    };
    tokio::time::timeout(RUN_LIMIT, run)
        .await
        .with_context(|| format!("not done within {RUN_LIMIT:?}"))?
}

/// Reads JSON log lines until `found` picks something out of one.
async fn wait_for<T>(
    log: &mut Lines<BufReader<ChildStdout>>,
    found: impl Fn(&serde_json::Value) -> Option<T>,
) -> anyhow::Result<T> {
    while let Some(line) = log.next_line().await? {
        if let Some(value) = serde_json::from_str(&line).ok().as_ref().and_then(&found) {
            return Ok(value);
        }
    }
    bail!("the log ended")
}

/// A 200 with `Connection: close` (the drain had begun) and the whole body.
fn check(response: &[u8]) -> anyhow::Result<()> {
    let response = String::from_utf8_lossy(response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .with_context(|| format!("not an HTTP response: {response:?}"))?;
    let head = head.to_ascii_lowercase();
    ensure!(
        head.starts_with("http/1.1 200 ") && head.contains("\r\nconnection: close"),
        "expected 200 with `Connection: close`, got {head:?}"
    );
    let expected = format!("slept {T_MS} ms\n");
    ensure!(
        body == expected,
        "expected the body {expected:?}, got {body:?}"
    );
    Ok(())
}
