//! Durations as settings take them: `500ms`, `5s`, `1.5s`, `1m30s`, `0`.
//!
//! Use with `#[serde(with = "orderly_config::duration")]` on a [`Duration`] field, or
//! `#[serde(default, with = "orderly_config::duration::option")]` on an `Option<Duration>`.
//! The grammar is orderly's own ([`orderly::parse_duration`]), the one `SHUTDOWN_TIMEOUT`
//! takes, so every duration of a service is written the same way.
//!
//! ```
//! use std::time::Duration;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Http {
//!     #[serde(with = "orderly_config::duration")]
//!     timeout: Duration,
//! }
//!
//! let http: Http = serde_json::from_str(r#"{ "timeout": "1m30s" }"#).unwrap();
//! assert_eq!(http.timeout, Duration::from_secs(90));
//! ```

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::ser::Serializer;

const EXPECTED: &str = "a duration like 500ms or 5s";

/// Deserializes a duration from text such as `500ms` or `5s` (or the number 0).
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    // `any`: a bare 0 is a number in JSON, TOML and YAML.
    deserializer.deserialize_any(DurationVisitor)
}

/// Serializes a duration as text that [`deserialize`] reads back: `5s`, `500ms`, `1.5s`.
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&Text(*duration))
}

struct Text(Duration);

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{}s", d.as_secs())
        } else if d.subsec_nanos().is_multiple_of(1_000_000) {
            write!(f, "{}ms", d.as_millis())
        } else {
            write!(f, "{}s", d.as_secs_f64())
        }
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        orderly::parse_duration(text)
            .map_err(|reason| E::custom(format_args!("expected {EXPECTED}, found {reason}")))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
        if n == 0 {
            return Ok(Duration::ZERO);
        }
        Err(E::invalid_type(
            Unexpected::Unsigned(n),
            &"a duration with a unit, like 500ms or 5s",
        ))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
        match u64::try_from(n) {
            Ok(n) => self.visit_u64(n),
            Err(_) => Err(E::invalid_type(Unexpected::Signed(n), &self)),
        }
    }
}

/// For an `Option<Duration>` field: `#[serde(default, with = "orderly_config::duration::option")]`.
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Deserializes an optional duration; see [`deserialize`](super::deserialize).
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super")] Duration);
        Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(d)| d))
    }

    /// Serializes an optional duration; see [`serialize`](super::serialize).
    pub fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(d) => serializer.collect_str(&super::Text(*d)),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Deserialize, Serialize)]
    struct Timeouts {
        #[serde(with = "super")]
        read: Duration,
        #[serde(default, with = "super::option")]
        idle: Option<Duration>,
    }

    #[test]
    fn reads_and_writes_the_documented_forms() {
        let t: Timeouts = serde_json::from_str(r#"{"read": "1.5s", "idle": "500ms"}"#).unwrap();
        assert_eq!(t.read, Duration::from_millis(1500));
        assert_eq!(t.idle, Some(Duration::from_millis(500)));
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"read":"1500ms","idle":"500ms"}"#
        );
        let t: Timeouts = serde_json::from_str(r#"{"read": 0}"#).unwrap();
        assert_eq!(
            t,
            Timeouts {
                read: Duration::ZERO,
                idle: None
            }
        );
    }

    #[test]
    fn says_what_is_wrong() {
        let error = serde_json::from_str::<Timeouts>(r#"{"read": "5 sec"}"#).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("expected a duration like 500ms or 5s, found '5 sec'"),
            "{error}"
        );
        let error = serde_json::from_str::<Timeouts>(r#"{"read": 5}"#).unwrap_err();
        assert!(error.to_string().contains("with a unit"), "{error}");
    }
}
