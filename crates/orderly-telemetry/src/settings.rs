//! How logs are written, read from the environment: `LOG_FORMAT`, `LOG_LEVEL`, `RUST_LOG`.

use std::fmt;
use std::io::IsTerminal;
use std::str::FromStr;

use orderly::Env;
use tracing_subscriber::EnvFilter;

use crate::error::Error;

/// The log format variable: `json` or `pretty`; by default `pretty` when stdout is a terminal,
/// `json` otherwise.
pub const LOG_FORMAT: &str = "LOG_FORMAT";
/// The log level variable: `trace`, `debug`, `info` (the default), `warn`, `error` or `off`.
pub const LOG_LEVEL: &str = "LOG_LEVEL";
/// Full [`EnvFilter`] directives, e.g. `info,orderly=debug`; wins over [`LOG_LEVEL`].
pub const RUST_LOG: &str = "RUST_LOG";

/// How each log line is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// One flat JSON object a line: `timestamp`, `level`, `message`, the event's fields,
    /// `target`, and the span context (`span`, `spans`) when there is one. For machines: log
    /// shippers, `jq`.
    Json,
    /// One human-readable line an event, coloured on a terminal. For people.
    Pretty,
}

impl LogFormat {
    /// The format's name, as `LOG_FORMAT` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Pretty => "pretty",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogFormat {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match text.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            _ => Err(Error::invalid(
                LOG_FORMAT,
                format!("expected json or pretty, found '{text}'"),
            )),
        }
    }
}

/// The levels `LOG_LEVEL` accepts.
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// How the process logs: the format, which events pass, and how many lines may wait for
/// stdout. Read from the environment with [`from_env`](Self::from_env), installed with
/// [`init`](Self::init).
///
/// | variable | values | default |
/// |---|---|---|
/// | `LOG_FORMAT` | `json`, `pretty` | `pretty` when stdout is a terminal, `json` otherwise |
/// | `LOG_LEVEL` | `trace`, `debug`, `info`, `warn`, `error`, `off` | `info` |
/// | `RUST_LOG` | [`EnvFilter`] directives, e.g. `info,orderly=debug,hyper=warn` | — |
///
/// When both `RUST_LOG` and `LOG_LEVEL` are set, `RUST_LOG` wins: it is the more precise of
/// the two, usually set by hand to look into one module (`LOG_LEVEL` is the deployment's
/// default); a warning at start says that `LOG_LEVEL` was ignored. An empty variable counts as
/// unset. Values are case-insensitive.
///
/// ```
/// use orderly::Env;
/// use orderly_telemetry::{LogFormat, LogSettings};
///
/// let env = Env::from_pairs([("LOG_FORMAT", "json"), ("LOG_LEVEL", "debug")]);
/// let settings = LogSettings::from_env(&env)?;
/// assert_eq!(settings.format(), LogFormat::Json);
/// assert_eq!(settings.filter(), "debug");
/// # Ok::<(), orderly_telemetry::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct LogSettings {
    pub(crate) format: LogFormat,
    pub(crate) filter: String,
    pub(crate) filter_from: Option<&'static str>,
    pub(crate) ignored_level: bool,
    pub(crate) ansi: bool,
    pub(crate) capacity: usize,
}

impl LogSettings {
    /// The settings `env` asks for; the default format depends on whether this process's stdout
    /// is a terminal. Every invalid variable is an error that names it.
    pub fn from_env(env: &Env) -> Result<Self, Error> {
        Self::resolve(env, std::io::stdout().is_terminal())
    }

    /// [`from_env`](Self::from_env) with stdout's terminal-ness given.
    pub(crate) fn resolve(env: &Env, terminal: bool) -> Result<Self, Error> {
        let get = |name: &str| env.get(name).filter(|value| !value.trim().is_empty());
        let format = match get(LOG_FORMAT) {
            Some(text) => text.parse()?,
            None if terminal => LogFormat::Pretty,
            None => LogFormat::Json,
        };
        let level = get(LOG_LEVEL)
            .map(|text| {
                let level = text.trim().to_ascii_lowercase();
                if LEVELS.contains(&level.as_str()) {
                    Ok(level)
                } else {
                    let expected = LEVELS.join(", ");
                    Err(Error::invalid(
                        LOG_LEVEL,
                        format!("expected one of {expected}, found '{text}'"),
                    ))
                }
            })
            .transpose()?;
        let directives = get(RUST_LOG);
        if let Some(directives) = &directives {
            // Parsed here to report it now; parsed again at `init` (`EnvFilter` is not Clone).
            EnvFilter::builder()
                .parse(directives)
                .map_err(|error| Error::invalid(RUST_LOG, error.to_string()))?;
        }
        let ignored_level = directives.is_some() && level.is_some();
        let (filter, filter_from) = match (directives, level) {
            (Some(directives), _) => (directives, Some(RUST_LOG)),
            (None, Some(level)) => (level, Some(LOG_LEVEL)),
            (None, None) => ("info".to_owned(), None),
        };
        Ok(Self {
            format,
            filter,
            filter_from,
            ignored_level,
            ansi: terminal,
            capacity: DEFAULT_CAPACITY,
        })
    }

    /// The format.
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// The filter directives in force, e.g. `info` or `info,orderly=debug`.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// The variable the filter came from (`RUST_LOG` or `LOG_LEVEL`); `None` for the default.
    pub fn filter_from(&self) -> Option<&'static str> {
        self.filter_from
    }

    /// How many log lines may wait for stdout before logging waits for it (default 8192).
    ///
    /// A larger buffer absorbs longer bursts without slowing the service when stdout is slow;
    /// a smaller one uses less memory. Either way no line is dropped.
    pub fn capacity(mut self, lines: usize) -> Self {
        self.capacity = lines.max(1);
        self
    }
}

/// Lines that may wait for stdout: about 2 MB of 250-byte lines.
const DEFAULT_CAPACITY: usize = 8192;

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(pairs: &[(&str, &str)], terminal: bool) -> Result<LogSettings, Error> {
        LogSettings::resolve(&Env::from_pairs(pairs.iter().copied()), terminal)
    }

    #[test]
    fn the_default_format_follows_the_terminal() {
        assert_eq!(resolve(&[], true).unwrap().format(), LogFormat::Pretty);
        assert_eq!(resolve(&[], false).unwrap().format(), LogFormat::Json);
        assert!(resolve(&[], true).unwrap().ansi);
        assert!(!resolve(&[], false).unwrap().ansi);
    }

    #[test]
    fn log_format_overrides_the_terminal_both_ways() {
        let json = resolve(&[(LOG_FORMAT, "json")], true).unwrap();
        assert_eq!(json.format(), LogFormat::Json);
        let pretty = resolve(&[(LOG_FORMAT, "Pretty")], false).unwrap();
        assert_eq!(pretty.format(), LogFormat::Pretty);
        assert!(!pretty.ansi, "no colour codes in a pipe or a file");
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let settings = resolve(&[(LOG_FORMAT, ""), (LOG_LEVEL, " ")], false).unwrap();
        assert_eq!(settings.format(), LogFormat::Json);
        assert_eq!(settings.filter(), "info");
        assert_eq!(settings.filter_from(), None);
    }
}
