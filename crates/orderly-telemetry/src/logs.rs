//! The process's logger: installed first, stopped last, flushed on every way out.

use std::sync::Arc;

use orderly::{BoxError, Component, Context, Env, Spec, SystemBuilder};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Registry, fmt};

use crate::error::{Error, ErrorKind};
use crate::json_lines::JsonLines;
use crate::pipe::{Pipe, PipeWriter};
use crate::settings::{LOG_LEVEL, LogFormat, LogSettings, RUST_LOG};

/// The name of the component [`Logs::attach`] adds.
pub const LOGS: &str = "logs";

/// The process's logger, and the guard that flushes it: hold it in `main` until `main` returns.
///
/// [`init`](Logs::init) installs the global `tracing` subscriber, writing to stdout in the
/// format and at the level the environment asks for (see [`LogSettings`]). Call it first in
/// `main`, before the configuration is read and the system is built, so their errors are
/// logged too; then [`attach`](Logs::attach) it to the system.
///
/// # Writing, and the trade-off
///
/// A log call formats its line on the caller's thread and appends it to a buffer; one thread
/// writes the buffer to stdout in batches, waiting up to 10 ms after a line for more to come
/// (a flush does not wait), so that under load a log call neither allocates nor wakes a thread
/// and stdout gets one write per batch. So logging does no I/O on the service's threads —
/// unless the buffer is full ([`LogSettings::capacity`], 8192 lines by default): then the log
/// call waits for room. A slow reader on stdout (a busy log shipper, a full pipe) slows the logging
/// threads down instead of losing lines, and a stalled reader stalls them; the platform's kill
/// at the end of its grace period bounds both.
///
/// # Flushed last, on every way out
///
/// - The `logs` component that [`attach`](Logs::attach) adds is a
///   [foundation](orderly::Spec::foundation): it starts first and stops after every other
///   component, and its stop waits until everything logged so far is written.
/// - [`System::run`](orderly::System::run) logs the shutdown report after the last component
///   stopped; the hook `attach` registers with
///   [`before_exit`](orderly::SystemBuilder::before_exit) writes it out, also before a forced
///   exit (a second signal, the deadline), which runs no destructor.
/// - Dropping `Logs` at the end of `main` flushes what was logged after `run` returned; lines
///   logged later still (while the runtime shuts down) are written before the log call
///   returns.
///
/// Every flush waits as long as the reader of stdout takes: no line is dropped.
#[derive(Debug)]
#[must_use = "dropping Logs flushes and closes the log writer: hold it until main returns"]
pub struct Logs {
    pipe: Arc<Pipe>,
    settings: LogSettings,
}

impl Logs {
    /// Installs the process's logger as `env` asks (`LOG_FORMAT`, `LOG_LEVEL`, `RUST_LOG`; see
    /// [`LogSettings`]). Fails on an invalid variable, naming it, before anything is installed;
    /// and if a global subscriber is already installed.
    pub fn init(env: &Env) -> Result<Self, Error> {
        LogSettings::from_env(env)?.init()
    }

    /// The settings in force.
    pub fn settings(&self) -> &LogSettings {
        &self.settings
    }

    /// Adds the `logs` component to `system` as a foundation (it stops after every other
    /// component and flushes), turns on [`log_all_events`](SystemBuilder::log_all_events) so
    /// every lifecycle event and the shutdown report are log lines, and flushes before
    /// [`run`](orderly::System::run) exits.
    pub fn attach(&self, system: SystemBuilder) -> SystemBuilder {
        let pipe = self.pipe.clone();
        let mut system = system.log_all_events().before_exit(move || pipe.flush());
        system.add(Spec::new(LOGS).foundation(), (), Logger(self.pipe.clone()));
        system
    }

    /// Waits until every line logged before the call is written to stdout. It blocks the
    /// thread: from async code, prefer the `logs` component, which flushes at its stop.
    pub fn flush(&self) {
        self.pipe.flush();
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        self.pipe.close();
    }
}

impl LogSettings {
    /// Installs these settings as the process's logger; see [`Logs::init`].
    pub fn init(self) -> Result<Logs, Error> {
        let filter = EnvFilter::builder().parse(&self.filter).map_err(|error| {
            Error::invalid(self.filter_from.unwrap_or(RUST_LOG), error.to_string())
        })?;
        let pipe =
            Pipe::spawn(self.capacity, std::io::stdout()).map_err(ErrorKind::WriterThread)?;
        let writer = PipeWriter(pipe.clone());
        let (json, pretty) = match self.format {
            LogFormat::Json => (Some(JsonLines::new(writer)), None),
            LogFormat::Pretty => {
                let layer = fmt::layer().with_ansi(self.ansi).with_writer(writer);
                (None, Some(layer))
            }
        };
        let subscriber = Registry::default().with(filter).with(json).with(pretty);
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|_| ErrorKind::LoggerInstalled)?;
        if self.ignored_level {
            tracing::warn!(
                filter = self.filter,
                "{LOG_LEVEL} is ignored: {RUST_LOG} is set and wins"
            );
        }
        Ok(Logs {
            pipe,
            settings: self,
        })
    }
}

/// The `logs` component: nothing to start; its stop flushes.
struct Logger(Arc<Pipe>);

impl Component for Logger {
    type Deps = ();
    type Resource = ();

    async fn start(&mut self, (): (), _ctx: Context) -> Result<(), BoxError> {
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), BoxError> {
        // On the blocking pool: a flush may wait for a slow reader of stdout, and the runtime
        // must still see a second signal meanwhile.
        let pipe = self.0.clone();
        tokio::task::spawn_blocking(move || pipe.flush()).await?;
        Ok(())
    }
}
