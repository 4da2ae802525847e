//! System-wide settings, and the environment they can come from (`SHUTDOWN_DELAY`,
//! `SHUTDOWN_TIMEOUT`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::notify::Target;
use crate::report::ExitCodes;
use crate::signal::SighupPolicy;

/// Where a system reads its settings from the environment (`SHUTDOWN_DELAY`,
/// `SHUTDOWN_TIMEOUT`, and systemd's `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`).
///
/// The process environment by default; tests pass a map instead of changing the process's.
#[derive(Clone, Default)]
pub struct Env(Source);

#[derive(Clone, Default)]
enum Source {
    #[default]
    Process,
    Map(Arc<HashMap<String, String>>),
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self(Source::Process)
    }

    /// Exactly these variables and no others.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self(Source::Map(Arc::new(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )))
    }

    /// No variables at all.
    pub fn empty() -> Self {
        Self::from_pairs(std::iter::empty::<(String, String)>())
    }

    /// The value of `name`, if set (and valid Unicode).
    pub fn get(&self, name: &str) -> Option<String> {
        match &self.0 {
            Source::Process => std::env::var(name).ok(),
            Source::Map(map) => map.get(name).cloned(),
        }
    }

    /// Every variable as `(name, value)`, sorted by name; for readers of a whole family of
    /// variables (a prefix). Process variables whose name or value is not valid Unicode are
    /// left out, as [`get`](Env::get) leaves them out.
    pub fn vars(&self) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = match &self.0 {
            Source::Process => std::env::vars_os()
                .filter_map(|(name, value)| {
                    Some((name.into_string().ok()?, value.into_string().ok()?))
                })
                .collect(),
            Source::Map(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        vars.sort_unstable();
        vars
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Process => f.write_str("Env::process()"),
            Source::Map(map) => {
                // Values may be secrets: show the names only.
                let mut names: Vec<&String> = map.keys().collect();
                names.sort();
                f.debug_tuple("Env::from_pairs").field(&names).finish()
            }
        }
    }
}

/// The shutdown delay variable.
pub const SHUTDOWN_DELAY: &str = "SHUTDOWN_DELAY";
/// The global shutdown deadline variable.
pub const SHUTDOWN_TIMEOUT: &str = "SHUTDOWN_TIMEOUT";

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) shutdown_delay: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) start_timeout: Option<Duration>,
    pub(crate) stop_timeout: Option<Duration>,
    pub(crate) sighup: SighupPolicy,
    pub(crate) exit_codes: ExitCodes,
    /// systemd's notify socket and watchdog, from `NOTIFY_SOCKET` and `WATCHDOG_*`.
    pub(crate) notify: Option<Target>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            shutdown_delay: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(25),
            start_timeout: None,
            stop_timeout: None,
            sighup: SighupPolicy::default(),
            exit_codes: ExitCodes::default(),
            notify: None,
        }
    }
}

/// A duration that [`parse_duration`] cannot read: quotes the text and says why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(String);

/// Parses a duration as orderly's variables take them (`SHUTDOWN_DELAY`, `SHUTDOWN_TIMEOUT`,
/// and settings read by `orderly-config`): `500ms`, `5s`, `1.5s`, `2m`, `1h`, `1m30s`, or `0`.
/// A unit (`ms`, `s`, `m`, `h`) is required on every number but a bare `0`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(orderly::parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert!(orderly::parse_duration("5").unwrap_err().to_string().contains("unit is required"));
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    parse(text).map_err(DurationError)
}

fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("an empty value".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("'{text}': a unit is required (ms, s, m or h)")),
            other => {
                return Err(format!(
                    "'{text}': unknown unit '{other}' (use ms, s, m or h)"
                ));
            }
        };
        // The unit first: "abc" or "-1s" is an unknown unit, not an empty number.
        let value: f64 = number
            .parse()
            .map_err(|_| format!("'{text}': '{number}' is not a number"))?;
        total += Duration::try_from_secs_f64(value * scale)
            .map_err(|_| format!("'{text}' is out of range"))?;
        rest = tail;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::{Env, parse_duration};
    use std::time::Duration;

    #[test]
    fn vars_lists_every_variable_sorted() {
        let env = Env::from_pairs([("B", "2"), ("A", "1")]);
        assert_eq!(
            env.vars(),
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "2".to_owned())
            ]
        );
        assert!(Env::empty().vars().is_empty());
        assert!(!Env::process().vars().is_empty());
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration(" 1.5s "), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_with_a_reason() {
        let reason = |text: &str| parse_duration(text).unwrap_err().to_string();
        assert!(reason("").contains("empty"));
        assert!(reason("5").contains("unit is required"));
        assert!(reason("5 sec").contains("unknown unit"));
        assert!(reason("abc").contains("unknown unit"));
        assert!(reason("1..2s").contains("not a number"));
        assert!(reason("-1s").contains("unknown unit"));
    }
}
