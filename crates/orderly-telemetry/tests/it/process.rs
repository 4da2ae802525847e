//! The `01_logs` example as a child process whose stdout is a pipe that a task reads slowly:
//! small reads with a pause after each, so lines pile up in the pipe and in the logger's queue.
//! After the first signal the reads are smaller still, so the pipe is (nearly) full whenever
//! the child writes: a line the child does not wait for at its exit is likely lost, instead of
//! slipping through in a race with the exit.
//! Its stderr carries the example's cues (`logged N lines`, `stopping`).
//!
//! `cargo test` builds the examples first; `cargo test --test it` alone does not, and a missing
//! fixture fails with a message that says so. The real clock runs here: timeouts only stop a
//! broken test from hanging, and nothing asserts how long anything took.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::task::JoinHandle;

/// A guard against a hung test, never an expectation of speed.
pub(crate) const GUARD: Duration = Duration::from_secs(120);

/// How the reader of stdout is slow: this many bytes a read (fewer once signalled), then a
/// pause.
const CHUNK: usize = 8 * 1024;
const SIGNALLED_CHUNK: usize = 512;
const PAUSE: Duration = Duration::from_millis(1);

/// The example's binary, built from this crate's and orderly's sources.
pub(crate) fn fixture() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = [
        crate_dir.join("src"),
        crate_dir.join("examples/01_logs.rs"),
        crate_dir.join("../orderly/src"),
    ];
    crate::fixture::example("orderly-telemetry", "01_logs", &sources)
}

/// Where the example's stdout goes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stdout {
    /// A pipe, read slowly.
    SlowPipe,
    /// A pseudo-terminal.
    Terminal,
}

/// The example running with exactly the given environment.
pub(crate) struct Logging {
    child: Child,
    stderr: Lines<BufReader<ChildStderr>>,
    reader: JoinHandle<Vec<u8>>,
    /// Complete lines read from stdout so far.
    read: Arc<AtomicUsize>,
    /// Set at the first signal: the reader slows down.
    signalled: Arc<AtomicBool>,
}

impl Logging {
    /// Starts the example with exactly these environment variables, stdout to a slow pipe.
    pub(crate) fn spawn(env: &[(&str, &str)]) -> Self {
        Self::spawn_on(Stdout::SlowPipe, env)
    }

    /// Starts the example with exactly these environment variables, stdout to `stdout`.
    pub(crate) fn spawn_on(stdout: Stdout, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(fixture());
        command
            .env_clear()
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let read = Arc::new(AtomicUsize::new(0));
        let signalled = Arc::new(AtomicBool::new(false));
        let (mut child, reader) = match stdout {
            Stdout::SlowPipe => {
                let mut child = command
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("spawn 01_logs");
                let stdout = child.stdout.take().expect("stdout is piped");
                let reader = read_slowly(stdout, read.clone(), signalled.clone());
                (child, tokio::spawn(reader))
            }
            Stdout::Terminal => {
                let pty = nix::pty::openpty(None, None).expect("open a pseudo-terminal");
                let child = command.stdout(pty.slave).spawn().expect("spawn 01_logs");
                // The screen ends (EIO) once no one holds the terminal's other end: the child
                // and `command`, dropped below.
                let screen = std::fs::File::from(pty.master);
                (
                    child,
                    tokio::task::spawn_blocking(move || read_screen(screen)),
                )
            }
        };
        let stderr = child.stderr.take().expect("stderr is piped");
        Self {
            child,
            stderr: BufReader::new(stderr).lines(),
            reader,
            read,
            signalled,
        }
    }

    /// The next line on stderr; `None` once it is closed.
    pub(crate) async fn stderr_line(&mut self) -> Option<String> {
        tokio::time::timeout(GUARD, self.stderr.next_line())
            .await
            .unwrap_or_else(|_| panic!("nothing on stderr within {GUARD:?}"))
            .expect("read the example's stderr")
    }

    /// Waits for the cue `expected` on stderr.
    pub(crate) async fn cue(&mut self, expected: &str) {
        let line = self.stderr_line().await;
        assert_eq!(
            line.as_deref(),
            Some(expected),
            "the example's cue on stderr"
        );
    }

    /// How many complete lines the slow reader has read from stdout so far.
    pub(crate) fn lines_read(&self) -> usize {
        self.read.load(Ordering::SeqCst)
    }

    pub(crate) fn signal(&self, signal: Signal) {
        self.signalled.store(true, Ordering::SeqCst);
        let pid = self.child.id().expect("the example is running");
        let pid = Pid::from_raw(i32::try_from(pid).expect("a pid fits in i32"));
        kill(pid, signal).unwrap_or_else(|error| panic!("send {signal}: {error}"));
    }

    /// Waits for the exit; returns the exit code and everything the example wrote to stdout.
    pub(crate) async fn exit(mut self) -> (i32, String) {
        let stdout = tokio::time::timeout(GUARD, &mut self.reader)
            .await
            .unwrap_or_else(|_| panic!("stdout still open after {GUARD:?}"))
            .expect("the reader task");
        let status = tokio::time::timeout(GUARD, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("no exit within {GUARD:?}"))
            .expect("wait for the example");
        let stdout = String::from_utf8(stdout).expect("stdout is UTF-8");
        let code = status
            .code()
            .unwrap_or_else(|| panic!("killed ({status}) instead of exiting"));
        (code, stdout)
    }
}

/// Reads what a terminal shows until it closes, with its `\r\n` turned into `\n`.
fn read_screen(mut screen: std::fs::File) -> Vec<u8> {
    use std::io::Read;
    let mut shown = Vec::new();
    let mut chunk = [0; 4096];
    while let Ok(n @ 1..) = screen.read(&mut chunk) {
        shown.extend_from_slice(&chunk[..n]);
    }
    shown.retain(|&byte| byte != b'\r');
    shown
}

/// Reads `stdout` to its end, slowly, and more slowly once `signalled`; counts complete lines
/// in `read` as it goes.
async fn read_slowly(
    mut stdout: ChildStdout,
    read: Arc<AtomicUsize>,
    signalled: Arc<AtomicBool>,
) -> Vec<u8> {
    let mut all = Vec::new();
    let mut chunk = vec![0; CHUNK];
    loop {
        let size = if signalled.load(Ordering::SeqCst) {
            SIGNALLED_CHUNK
        } else {
            CHUNK
        };
        let n = stdout
            .read(&mut chunk[..size])
            .await
            .expect("read the example's stdout");
        if n == 0 {
            return all;
        }
        all.extend_from_slice(&chunk[..n]);
        let lines = chunk[..n].iter().filter(|&&byte| byte == b'\n').count();
        read.fetch_add(lines, Ordering::SeqCst);
        tokio::time::sleep(PAUSE).await;
    }
}
