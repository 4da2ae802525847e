//! The consumer replicas: processes started from the command template with the drill's
//! environment, stopped by SIGTERM (graceful) or SIGKILL (a crash), every exit recorded.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, ErrorKind};
use crate::replica::{DRILL_REPLICA_NAME, Exit, Process, ProcessCommand, SpawnError};
use crate::report::as_ms;

/// How the drill stopped a consumer replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stop {
    /// SIGTERM in a rolling restart: it must drain and exit 0.
    Sigterm,
    /// SIGKILL: a crash.
    Sigkill,
    /// SIGTERM at the end of the drill, once the queue was drained: it must exit 0.
    End,
}

/// One consumer replica's life, as the report shows it. Times are from the drill's start.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ConsumerRecord {
    /// `c<n>`, in the order they were started.
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// When it was started.
    #[serde(serialize_with = "as_ms", rename = "started_ms")]
    pub started: Duration,
    /// When the broker first counted it as a consumer (with the others).
    #[serde(serialize_with = "as_ms", rename = "consuming_ms")]
    pub consuming: Option<Duration>,
    /// How the drill stopped it.
    pub stop: Option<Stop>,
    /// When the drill sent its signal.
    #[serde(serialize_with = "as_ms", rename = "signalled_ms")]
    pub signalled: Option<Duration>,
    /// When it exited.
    #[serde(serialize_with = "as_ms", rename = "exited_ms")]
    pub exited: Option<Duration>,
    /// How it exited.
    pub exit: Option<Exit>,
}

impl ConsumerRecord {
    /// Stopped by SIGTERM (in a rolling restart or at the end) but did not exit 0 by itself.
    pub fn failed_graceful_stop(&self) -> bool {
        matches!(self.stop, Some(Stop::Sigterm | Stop::End))
            && self
                .exit
                .is_none_or(|exit| exit.code != Some(0) || exit.sigkilled)
    }
}

/// How to start consumer replicas, and the ones started.
#[derive(Debug)]
pub(crate) struct Consumers {
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(&'static str, String)>,
    pub(crate) work_dir: PathBuf,
    pub(crate) grace_period: Duration,
    pub(crate) epoch: Instant,
    pub(crate) tracker: TaskTracker,
    pub(crate) abort: CancellationToken,
    live: Vec<(usize, Process)>,
    records: Vec<ConsumerRecord>,
    exits: HashMap<usize, Exit>,
    exits_tx: mpsc::UnboundedSender<(usize, Exit)>,
    exits_rx: mpsc::UnboundedReceiver<(usize, Exit)>,
}

impl Consumers {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        program: String,
        args: Vec<String>,
        env: Vec<(&'static str, String)>,
        work_dir: PathBuf,
        grace_period: Duration,
        epoch: Instant,
        tracker: TaskTracker,
        abort: CancellationToken,
    ) -> Self {
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        Self {
            program,
            args,
            env,
            work_dir,
            grace_period,
            epoch,
            tracker,
            abort,
            live: Vec::new(),
            records: Vec::new(),
            exits: HashMap::new(),
            exits_tx,
            exits_rx,
        }
    }

    /// Starts one more replica; returns its index.
    pub(crate) fn start(&mut self) -> Result<usize, Error> {
        let index = self.records.len();
        let name = format!("c{index}");
        let log = self.work_dir.join(format!("{name}.log"));
        let mut env = self.env.clone();
        env.push((DRILL_REPLICA_NAME, name.clone()));
        let exits = self.exits_tx.clone();
        let process = Process::spawn(
            &ProcessCommand {
                program: &self.program,
                args: &self.args,
                env,
                log: &log,
                name: &name,
            },
            &self.tracker,
            &self.abort,
            move |exit| {
                let _ = exits.send((index, exit));
            },
        )
        .map_err(|e| match e {
            SpawnError::Log(e) => Error::file(&log, e),
            SpawnError::Spawn(source) => Error::new(ErrorKind::Spawn {
                replica: name.clone(),
                command: std::iter::once(self.program.as_str())
                    .chain(self.args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
                source,
            }),
        })?;
        tracing::info!(replica = %name, pid = process.pid, "consumer replica started");
        self.records.push(ConsumerRecord {
            name,
            pid: process.pid,
            started: self.epoch.elapsed(),
            consuming: None,
            stop: None,
            signalled: None,
            exited: None,
            exit: None,
        });
        self.live.push((index, process));
        Ok(index)
    }

    /// Replicas started and not yet signalled, oldest first.
    pub(crate) fn live(&self) -> Vec<usize> {
        self.live.iter().map(|(index, _)| *index).collect()
    }

    /// When the newest live replica was started (from the drill's start).
    pub(crate) fn newest_started(&self) -> Option<Duration> {
        let (index, _) = self.live.last()?;
        self.records.get(*index).map(|record| record.started)
    }

    /// The replica's name.
    pub(crate) fn name(&self, index: usize) -> &str {
        self.records.get(index).map_or("?", |r| r.name.as_str())
    }

    /// Records that the broker counts every live replica as a consumer.
    pub(crate) fn mark_consuming(&mut self) {
        let now = self.epoch.elapsed();
        for (index, _) in &self.live {
            if let Some(record) = self.records.get_mut(*index) {
                record.consuming.get_or_insert(now);
            }
        }
    }

    /// Sends SIGTERM (`Stop::Sigterm` or `Stop::End`; SIGKILL at the end of the grace period)
    /// or SIGKILL now (`Stop::Sigkill`).
    pub(crate) fn stop(&mut self, index: usize, stop: Stop) {
        let Some(position) = self.live.iter().position(|(i, _)| *i == index) else {
            return;
        };
        let (_, mut process) = self.live.remove(position);
        match stop {
            Stop::Sigterm | Stop::End => process.terminate(self.grace_period),
            Stop::Sigkill => process.kill(),
        }
        tracing::info!(replica = self.name(index), ?stop, "signalled");
        if let Some(record) = self.records.get_mut(index) {
            record.stop = Some(stop);
            record.signalled = Some(self.epoch.elapsed());
        }
    }

    fn record_exit(&mut self, index: usize, exit: Exit) {
        if let Some(record) = self.records.get_mut(index) {
            record.exited = Some(self.epoch.elapsed());
            record.exit = Some(exit);
        }
        self.exits.insert(index, exit);
    }

    /// Takes the exits reported so far; returns a replica still live that has exited (it
    /// crashed by itself), if any.
    pub(crate) fn crashed(&mut self) -> Option<(usize, Exit)> {
        while let Ok((index, exit)) = self.exits_rx.try_recv() {
            self.record_exit(index, exit);
        }
        self.live
            .iter()
            .find_map(|(index, _)| self.exits.get(index).map(|exit| (*index, *exit)))
    }

    /// Waits for replica `index` to exit, for at most `within`.
    pub(crate) async fn wait_exit(&mut self, index: usize, within: Duration) -> Option<Exit> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(exit) = self.exits.get(&index) {
                return Some(*exit);
            }
            let (exited, exit) = tokio::time::timeout_at(deadline, self.exits_rx.recv())
                .await
                .ok()
                .flatten()?;
            self.record_exit(exited, exit);
        }
    }

    /// Every replica's record, once the drill is over.
    pub(crate) fn records(&self) -> Vec<ConsumerRecord> {
        self.records.clone()
    }
}
