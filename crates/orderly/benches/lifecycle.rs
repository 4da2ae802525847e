//! Lifecycle benchmarks: how much time orderly itself spends building, starting and stopping
//! a system, measured against the targets of SPEC §6.
//!
//! Run with:
//!
//! ```text
//! cargo build --release -p orderly --example 09_service   # for the SIGTERM-to-exit table
//! cargo bench -p orderly --bench lifecycle
//! ```
//!
//! Targets (SPEC §6):
//! - **Start overhead**: a system of 100 trivial components with a realistic graph reaches
//!   `started` in < 2 ms of framework time (`start` on `layered_100` below).
//! - **Stop latency**: idle system, shutdown delay 0: SIGTERM → process exit < 10 ms of framework
//!   time (`stop` below for the in-process part, the SIGTERM-to-exit table for the whole path).
//!
//! What is measured:
//! 1. `layered_100`: 100 no-op components in layers with fan-out and fan-in:
//!    1 config → 10 infrastructure components (each on config) → 40 services (each on 2–3
//!    infrastructure components) → 40 handlers (each on 1–3 services) → 9 edge components (each
//!    fanning in over 12 handlers). `build`, `start`, `stop` and `start_stop` are timed
//!    separately; the untimed work (describing the graph, starting a system to stop it, stopping
//!    a system started by the `start` bench) happens outside the timed region.
//! 2. `chain_1000`: 1,000 components, each depending on the previous one (no concurrency at
//!    all: the worst case for per-component latency).
//! 3. SIGTERM to exit of the idle `09_service` example, spawned 20 times (plus one warm-up):
//!    not a divan benchmark (divan is not made for spawning processes), a table printed after
//!    divan's. Skipped with a note when the example is not built. SIGTERM is sent with
//!    `kill(2)` (through `nix`) and the time runs until `wait()` returns. Times come from
//!    `tokio::time::Instant`, which reads the real clock when no runtime has paused it.
//!
//! Every divan benchmark runs on a current-thread tokio runtime built once per benchmark;
//! `block_on` is inside the timed closure, so the figures include tokio's task scheduling,
//! which is part of the framework's cost. Allocations are counted too (divan's
//! `AllocProfiler`): unlike times, they do not depend on how busy the machine is.

// Printing the SIGTERM-to-exit table is the point of this part of the benchmark.
#![allow(clippy::print_stdout)]

use std::cell::RefCell;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use divan::Bencher;
use orderly::{BoxError, Component, Context, Dependencies, Env, Key, Running, System};
use tokio::runtime::Runtime;
use tokio::time::Instant;

/// Counts allocations per iteration: a figure that, unlike time, does not move with the load of
/// the machine.
#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
    // Like divan: benchmark only under `cargo bench` (which passes `--bench`); `cargo test
    // --benches` runs each benchmark once as a test, and spawns no process.
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|arg| arg == flag);
    if has("--bench") && !has("--test") && !has("--list") {
        sigterm_to_exit();
    }
}

// ----- the systems -----

/// A component that does nothing: what is left is the framework's cost.
struct Noop<D>(PhantomData<fn(D)>);

impl<D: Send + 'static> Component for Noop<D> {
    type Deps = D;
    type Resource = ();

    async fn start(&mut self, _deps: D, _ctx: Context) -> Result<(), BoxError> {
        Ok(())
    }
}

fn noop<D: Dependencies>(system: &mut orderly::SystemBuilder, name: String, deps: D) -> Key<()> {
    system.add(name, deps, Noop::<D::Output>(PhantomData))
}

/// The graphs under test.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// 100 components in five layers with fan-out and fan-in.
    Layered100,
    /// 1,000 components, each depending on the previous one.
    Chain1000,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shape::Layered100 => "layered_100",
            Shape::Chain1000 => "chain_1000",
        })
    }
}

const SHAPES: [Shape; 2] = [Shape::Layered100, Shape::Chain1000];

impl Shape {
    fn components(self) -> usize {
        match self {
            Shape::Layered100 => 100,
            Shape::Chain1000 => 1_000,
        }
    }

    /// Describes the system (not timed). The process environment is ignored, so a
    /// `SHUTDOWN_DELAY` set in the shell cannot change the figures.
    fn builder(self) -> orderly::SystemBuilder {
        let mut system = System::builder(self.to_string()).env(Env::empty());
        match self {
            Shape::Layered100 => layered_100(&mut system),
            Shape::Chain1000 => {
                let mut previous = noop(&mut system, "link_0".into(), ());
                for i in 1..1_000 {
                    previous = noop(&mut system, format!("link_{i}"), previous);
                }
            }
        }
        system
    }

    fn system(self) -> System {
        self.builder()
            .build()
            .expect("the benchmark's system is valid")
    }
}

fn layered_100(system: &mut orderly::SystemBuilder) {
    let config = noop(system, "config".into(), ());
    let infra: Vec<Key<()>> = (0..10)
        .map(|i| noop(system, format!("infra_{i}"), config))
        .collect();
    // Services on 2 or 3 distinct infrastructure components.
    let services: Vec<Key<()>> = (0..40)
        .map(|s| {
            let name = format!("service_{s}");
            let (a, b, c) = (infra[s % 10], infra[(s + 3) % 10], infra[(s + 7) % 10]);
            if s % 2 == 0 {
                noop(system, name, (a, b, c))
            } else {
                noop(system, name, (a, b))
            }
        })
        .collect();
    // Handlers on 1, 2 or 3 distinct services.
    let handlers: Vec<Key<()>> = (0..40)
        .map(|h| {
            let name = format!("handler_{h}");
            let (a, b, c) = (
                services[h],
                services[(h + 13) % 40],
                services[(h + 27) % 40],
            );
            match h % 3 {
                0 => noop(system, name, a),
                1 => noop(system, name, (a, b)),
                _ => noop(system, name, (a, b, c)),
            }
        })
        .collect();
    // Edge components (listeners, consumers), each fanning in over 12 handlers; together they
    // cover every handler.
    for e in 0..9 {
        let h = |j: usize| handlers[(e * 4 + j) % 40];
        let deps = (
            h(0),
            h(1),
            h(2),
            h(3),
            h(4),
            h(5),
            h(6),
            h(7),
            h(8),
            h(9),
            h(10),
            h(11),
        );
        noop(system, format!("edge_{e}"), deps);
    }
}

// ----- divan benchmarks -----

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

/// Starts and stops one system and checks the report, so a benchmark cannot time a failure.
fn check(rt: &Runtime, shape: Shape) {
    let report = rt.block_on(async {
        let running = shape.system().start().await.expect("the system starts");
        running.stop().await
    });
    assert!(report.is_clean(), "{shape}: unclean stop: {report:?}");
    assert_eq!(report.components.len(), shape.components());
}

/// `build()`: validation (names, edges, cycles) and the node tables.
#[divan::bench(args = SHAPES)]
fn build(bencher: Bencher<'_, '_>, shape: Shape) {
    bencher
        .with_inputs(|| shape.builder())
        .bench_local_values(|builder| builder.build().expect("valid"));
}

/// `start()` until every component is started. The started systems are stopped outside the
/// timed region (when the next sample's inputs are made, and at the end).
#[divan::bench(args = SHAPES)]
fn start(bencher: Bencher<'_, '_>, shape: Shape) {
    let rt = runtime();
    check(&rt, shape);
    let started: RefCell<Vec<Running>> = RefCell::new(Vec::new());
    let stop_started = || {
        for running in started.borrow_mut().drain(..) {
            rt.block_on(running.stop());
        }
    };
    bencher
        .with_inputs(|| {
            stop_started();
            shape.system()
        })
        .bench_local_values(|system| {
            let running = rt.block_on(system.start()).expect("starts");
            started.borrow_mut().push(running);
        });
    stop_started();
}

/// `stop()` of an idle started system, shutdown delay 0, until the report is returned.
#[divan::bench(args = SHAPES)]
fn stop(bencher: Bencher<'_, '_>, shape: Shape) {
    let rt = runtime();
    check(&rt, shape);
    bencher
        .with_inputs(|| rt.block_on(shape.system().start()).expect("starts"))
        .bench_local_values(|running| rt.block_on(running.stop()));
}

/// `start()` then `stop()`, back to back.
#[divan::bench(args = SHAPES)]
fn start_stop(bencher: Bencher<'_, '_>, shape: Shape) {
    let rt = runtime();
    check(&rt, shape);
    bencher
        .with_inputs(|| shape.system())
        .bench_local_values(|system| {
            rt.block_on(async {
                let running = system.start().await.expect("starts");
                running.stop().await
            })
        });
}

// ----- SIGTERM to exit of a real process -----

const RUNS: usize = 20;
const STARTUP_LIMIT: Duration = Duration::from_secs(10);

/// `target/release/examples/09_service`, found next to this benchmark's executable
/// (`target/release/deps/lifecycle-…`).
fn service_path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let target = exe.parent()?.parent()?;
    Some(target.join("examples").join("09_service"))
}

fn sigterm_to_exit() {
    println!();
    println!("SIGTERM to exit of an idle 09_service process");
    let Some(path) = service_path().filter(|p| p.is_file()) else {
        println!(
            "  skipped: {} not found; run `cargo build --release -p orderly --example 09_service` first",
            service_path().map_or_else(|| "09_service".into(), |p| p.display().to_string())
        );
        return;
    };
    // One warm-up run (page cache, dynamic loader), not counted.
    if let Err(error) = measure_once(&path) {
        println!("  skipped: warm-up run failed: {error}");
        return;
    }
    let mut runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        match measure_once(&path) {
            Ok(run) => runs.push(run),
            Err(error) => {
                println!("  a run failed: {error}");
                return;
            }
        }
    }
    println!("  {} runs (+1 warm-up), {}", RUNS, path.display());
    println!(
        "  {:<38} {:>9} {:>9} {:>9} {:>9}",
        "", "min", "median", "p90", "max"
    );
    row("exec → system_started line", runs.iter().map(|r| r.ready));
    row("SIGTERM sent → exit", runs.iter().map(|r| r.exit));
}

struct Run {
    /// From spawning the process to reading its `system_started` line.
    ready: Duration,
    /// From sending SIGTERM to `wait()` returning.
    exit: Duration,
}

fn measure_once(path: &Path) -> Result<Run, String> {
    let spawned = Instant::now();
    let mut child = Command::new(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // The defaults: no shutdown delay, a stop that returns.
        .env_remove("SHUTDOWN_DELAY")
        .env_remove("SHUTDOWN_TIMEOUT")
        .env_remove("STOP_HANG")
        .env_remove("SIGHUP_RESTART")
        .spawn()
        .map_err(|e| format!("cannot spawn {}: {e}", path.display()))?;
    // Drain both streams on threads, so the service never blocks on a full pipe, and signal
    // the `system_started` line from whichever stream carries it.
    let (ready_tx, ready_rx) = mpsc::channel::<Instant>();
    let mut drains = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        drains.push(drain(stdout, ready_tx.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        drains.push(drain(stderr, ready_tx.clone()));
    }
    drop(ready_tx);

    let ready_at = match ready_rx.recv_timeout(STARTUP_LIMIT) {
        Ok(at) => at,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "no line with \"event\":\"system_started\" within {STARTUP_LIMIT:?}"
            ));
        }
    };
    let pid = i32::try_from(child.id())
        .map(nix::unistd::Pid::from_raw)
        .map_err(|e| format!("pid out of range: {e}"))?;
    let sent = Instant::now();
    let signalled = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let status = child.wait().map_err(|e| format!("wait failed: {e}"))?;
    let exited = Instant::now();
    for drain in drains {
        let _ = drain.join();
    }
    signalled.map_err(|e| format!("kill -TERM {pid} failed: {e}"))?;
    if !status.success() {
        return Err(format!("the service exited with {status} after SIGTERM"));
    }
    Ok(Run {
        ready: ready_at - spawned,
        exit: exited - sent,
    })
}

fn drain(
    stream: impl Read + Send + 'static,
    ready: mpsc::Sender<Instant>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if line.contains(r#""event":"system_started""#) {
                let _ = ready.send(Instant::now());
            }
        }
    })
}

fn row(label: &str, durations: impl Iterator<Item = Duration>) {
    let mut sorted: Vec<Duration> = durations.collect();
    sorted.sort_unstable();
    let Some((&min, &max)) = sorted.first().zip(sorted.last()) else {
        return;
    };
    // Nearest-rank percentiles.
    let rank = |p: usize| sorted[(sorted.len() * p).div_ceil(100).saturating_sub(1)];
    println!(
        "  {label:<38} {:>9} {:>9} {:>9} {:>9}",
        ms(min),
        ms(rank(50)),
        ms(rank(90)),
        ms(max)
    );
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}
