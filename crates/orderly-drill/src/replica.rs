//! Replica processes: started with their ports and the drill's settings in the environment,
//! probed for readiness, stopped like the kubelet stops a container (SIGTERM, SIGKILL at the end
//! of the grace period).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::endpoints::ReplicaName;
use crate::error::{Error, ErrorKind};
use crate::probe::{self, Probe};
use crate::report::as_ms;

/// The variable a replica reads its public port from.
pub const PORT: &str = "PORT";
/// The variable a replica reads its admin port from (`/readyz` is probed there).
pub const ADMIN_PORT: &str = "ADMIN_PORT";
/// The shutdown delay the drill gives each replica (`500ms`, `2s`…).
pub const SHUTDOWN_DELAY: &str = "SHUTDOWN_DELAY";
/// The shutdown deadline the drill gives each replica.
pub const SHUTDOWN_TIMEOUT: &str = "SHUTDOWN_TIMEOUT";
/// The file a replica appends the ids it handled to, one a line.
pub const DRILL_LEDGER: &str = "DRILL_LEDGER";
/// The replica's name in the drill (for its logs).
pub const DRILL_REPLICA_NAME: &str = "DRILL_REPLICA";

/// How a replica process ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Exit {
    /// Its exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// The drill sent SIGKILL at the end of the grace period.
    pub sigkilled: bool,
}

impl Exit {
    fn new(status: &ExitStatus, sigkilled: bool) -> Self {
        use std::os::unix::process::ExitStatusExt;
        Self {
            code: status.code(),
            signal: status.signal(),
            sigkilled,
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}")?,
            (None, Some(signal)) => write!(f, "signal {signal}")?,
            (None, None) => f.write_str("unknown exit")?,
        }
        if self.sigkilled {
            f.write_str(" (SIGKILL at the end of the grace period)")?;
        }
        Ok(())
    }
}

/// One replica's life, as the report shows it. Times are from the drill's start.
#[derive(Clone, Debug, Serialize)]
pub struct ReplicaRecord {
    /// `r<generation>-<n>`.
    pub name: String,
    /// 0 for the first replicas, then one more for each rollout.
    pub generation: usize,
    /// Its public port.
    pub port: u16,
    /// Its admin port.
    pub admin_port: u16,
    /// Its process id.
    pub pid: u32,
    /// When it was started.
    #[serde(serialize_with = "as_ms", rename = "started_ms")]
    pub started: Duration,
    /// When its readiness probe first succeeded.
    #[serde(serialize_with = "as_ms", rename = "ready_ms")]
    pub ready: Option<Duration>,
    /// When it was sent SIGTERM (and its endpoint began leaving).
    #[serde(serialize_with = "as_ms", rename = "sigterm_ms")]
    pub sigterm: Option<Duration>,
    /// When it exited.
    #[serde(serialize_with = "as_ms", rename = "exited_ms")]
    pub exited: Option<Duration>,
    /// How it exited.
    pub exit: Option<Exit>,
}

/// A change the orchestrator hears about.
#[derive(Debug)]
pub(crate) enum Change {
    Readiness(bool),
    Exited(Exit),
}

/// How to start replicas.
#[derive(Debug)]
pub(crate) struct Launcher {
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) shutdown_delay: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) work_dir: PathBuf,
    pub(crate) probe: Probe,
    pub(crate) epoch: Instant,
    pub(crate) tracker: TaskTracker,
    /// Cancelled when the drill ends abnormally: every replica still running is killed.
    pub(crate) abort: CancellationToken,
    pub(crate) changes: mpsc::UnboundedSender<(ReplicaName, Change)>,
}

/// A running (or exited) replica, owned by the orchestrator.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) name: ReplicaName,
    pub(crate) addr: SocketAddr,
    pub(crate) record: ReplicaRecord,
    process: Process,
    probing: CancellationToken,
}

/// A free loopback port (bound then released; the replica binds it a moment later).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// A duration as orderly's variables take it.
fn env_duration(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
}

/// The ledger file of replica `name` in `work_dir`.
pub(crate) fn ledger_path(work_dir: &Path, name: &str) -> PathBuf {
    work_dir.join(format!("{name}.ids"))
}

impl Launcher {
    /// Starts replica `name` of `generation` and its readiness probe.
    pub(crate) fn launch(&self, name: &str, generation: usize) -> Result<Replica, Error> {
        let spawn_error = |source| {
            Error::new(ErrorKind::Spawn {
                replica: name.to_owned(),
                command: std::iter::once(self.program.as_str())
                    .chain(self.args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
                source,
            })
        };
        let port = free_port().map_err(spawn_error)?;
        let admin_port = free_port().map_err(spawn_error)?;
        // A fresh, empty ledger: a work directory used before must not count old ids.
        let ledger = ledger_path(&self.work_dir, name);
        std::fs::File::create(&ledger).map_err(|e| Error::file(&ledger, e))?;
        let log_path = self.work_dir.join(format!("{name}.log"));
        let name: ReplicaName = name.into();
        let probing = CancellationToken::new();
        let changes = self.changes.clone();
        let supervised = name.clone();
        let stop_probing = probing.clone();
        let process = Process::spawn(
            &ProcessCommand {
                program: &self.program,
                args: &self.args,
                env: vec![
                    (PORT, port.to_string()),
                    (ADMIN_PORT, admin_port.to_string()),
                    (SHUTDOWN_DELAY, env_duration(self.shutdown_delay)),
                    (SHUTDOWN_TIMEOUT, env_duration(self.shutdown_timeout)),
                    (DRILL_LEDGER, ledger.display().to_string()),
                    (DRILL_REPLICA_NAME, name.to_string()),
                ],
                log: &log_path,
                name: &name,
            },
            &self.tracker,
            &self.abort,
            move |exit| {
                stop_probing.cancel();
                let _ = changes.send((supervised, Change::Exited(exit)));
            },
        )
        .map_err(|e| match e {
            SpawnError::Log(e) => Error::file(&log_path, e),
            SpawnError::Spawn(e) => spawn_error(e),
        })?;
        let pid = process.pid;
        let started = self.epoch.elapsed();
        tracing::info!(replica = %name, pid, port, admin_port, "replica started");

        let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, admin_port));
        let changes = self.changes.clone();
        let probed = name.clone();
        self.tracker.spawn(probe::run(
            self.probe,
            move || probe::http_get(admin, "/readyz"),
            move |ready| {
                let _ = changes.send((probed.clone(), Change::Readiness(ready)));
            },
            probing.clone(),
        ));

        Ok(Replica {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            record: ReplicaRecord {
                name: name.to_string(),
                generation,
                port,
                admin_port,
                pid,
                started,
                ready: None,
                sigterm: None,
                exited: None,
                exit: None,
            },
            name,
            process,
            probing,
        })
    }
}

impl Replica {
    /// Sends SIGTERM now and starts the grace period (SIGKILL at its end). Its readiness is no
    /// longer probed (the endpoint is terminating whatever the probe says).
    pub(crate) fn terminate(&mut self, grace: Duration, epoch: Instant) {
        if self.process.is_terminating() {
            return;
        }
        self.probing.cancel();
        self.record.sigterm = Some(epoch.elapsed());
        self.process.terminate(grace);
        tracing::info!(replica = %self.name, "SIGTERM");
    }

    /// SIGTERM has been sent.
    pub(crate) fn is_terminating(&self) -> bool {
        self.process.is_terminating()
    }
}

/// How to start one supervised process.
#[derive(Debug)]
pub(crate) struct ProcessCommand<'a> {
    pub(crate) program: &'a str,
    pub(crate) args: &'a [String],
    /// Added to the drill's own environment.
    pub(crate) env: Vec<(&'static str, String)>,
    /// Its stdout and stderr.
    pub(crate) log: &'a Path,
    /// For the drill's log.
    pub(crate) name: &'a str,
}

/// Why a process could not be started.
#[derive(Debug)]
pub(crate) enum SpawnError {
    /// Its log file could not be created.
    Log(std::io::Error),
    /// The program could not be started.
    Spawn(std::io::Error),
}

/// A process the drill started, supervised by a tracked task like the kubelet supervises a
/// container: on [`terminate`](Process::terminate), SIGTERM and SIGKILL at the end of the grace
/// period; killed when the drill aborts; its [`Exit`] handed to a callback.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) pid: u32,
    terminate: Option<oneshot::Sender<Duration>>,
}

impl Process {
    /// Starts `command` with its log file and its supervisor; `on_exit` runs once it exited.
    pub(crate) fn spawn(
        command: &ProcessCommand<'_>,
        tracker: &TaskTracker,
        abort: &CancellationToken,
        on_exit: impl FnOnce(Exit) + Send + 'static,
    ) -> Result<Self, SpawnError> {
        let log = std::fs::File::create(command.log).map_err(SpawnError::Log)?;
        let log_err = log.try_clone().map_err(SpawnError::Log)?;
        let mut child = tokio::process::Command::new(command.program)
            .args(command.args)
            .envs(command.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(SpawnError::Spawn)?;
        let pid = child.id().unwrap_or_default();
        let (terminate, grace) = oneshot::channel::<Duration>();
        let abort = abort.clone();
        let name = command.name.to_owned();
        tracker.spawn(async move {
            let mut sigkilled = false;
            let status = tokio::select! {
                status = child.wait() => status,
                Ok(grace) = grace => {
                    tokio::select! {
                        status = child.wait() => status,
                        () = tokio::time::sleep(grace) => {
                            sigkilled = true;
                            let _ = child.start_kill();
                            child.wait().await
                        }
                    }
                }
                () = abort.cancelled() => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            let exit = match status {
                Ok(status) => Exit::new(&status, sigkilled),
                Err(error) => {
                    tracing::warn!(process = %name, %error, "cannot wait for the process");
                    Exit::default()
                }
            };
            tracing::info!(process = %name, %exit, "exited");
            on_exit(exit);
        });
        Ok(Self {
            pid,
            terminate: Some(terminate),
        })
    }

    /// Sends SIGTERM now and starts the grace period (SIGKILL at its end); once only.
    pub(crate) fn terminate(&mut self, grace: Duration) {
        let Some(terminate) = self.terminate.take() else {
            return;
        };
        self.signal(Signal::SIGTERM);
        let _ = terminate.send(grace);
    }

    /// Sends SIGKILL now (a crash, not the end of a grace period).
    pub(crate) fn kill(&mut self) {
        self.terminate = None;
        self.signal(Signal::SIGKILL);
    }

    /// SIGTERM (or SIGKILL) has been sent.
    pub(crate) fn is_terminating(&self) -> bool {
        self.terminate.is_none()
    }

    fn signal(&self, signal: Signal) {
        if let Ok(pid) = i32::try_from(self.pid) {
            // ESRCH (it has just exited) is fine: the supervisor will report the exit.
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}
