//! A pool's settings, as a service's configuration gives them.

use std::time::Duration;

use serde::Deserialize;

use crate::url::DatabaseUrl;

/// How to reach a database and size its pool; deserialized from the service's configuration.
///
/// Every field but `url` has a default. With
/// [`orderly_config::Config`](orderly_config::Config) and the prefix `DATABASE`, a service
/// reads them from these variables (durations written `500ms`, `5s`, `1m`):
///
/// | variable | field | default |
/// |---|---|---|
/// | `DATABASE_URL` | [`url`](Self::url) | required |
/// | `DATABASE_MAX_CONNECTIONS` | [`max_connections`](Self::max_connections) | 10 |
/// | `DATABASE_MIN_CONNECTIONS` | [`min_connections`](Self::min_connections) | 0 |
/// | `DATABASE_ACQUIRE_TIMEOUT` | [`acquire_timeout`](Self::acquire_timeout) | `5s` |
/// | `DATABASE_CONNECT_TIMEOUT` | [`connect_timeout`](Self::connect_timeout) | `20s` |
/// | `DATABASE_CONNECT_BACKOFF` | [`connect_backoff`](Self::connect_backoff) | `100ms` |
/// | `DATABASE_CONNECT_BACKOFF_MAX` | [`connect_backoff_max`](Self::connect_backoff_max) | `5s` |
/// | `DATABASE_HEALTH_INTERVAL` | [`health_interval`](Self::health_interval) | `5s` |
/// | `DATABASE_HEALTH_TIMEOUT` | [`health_timeout`](Self::health_timeout) | `2s` |
/// | `DATABASE_BUSY_TIMEOUT` | [`busy_timeout`](Self::busy_timeout) (SQLite) | `5s` |
///
/// Nested in a service's own settings (a field `database`), the variables are
/// `{PREFIX}_DATABASE__URL` and so on.
///
/// ```
/// use std::time::Duration;
/// use orderly::Env;
/// use orderly_config::Config;
/// use orderly_sql::PoolSettings;
///
/// let env = Env::from_pairs([
///     ("DATABASE_URL", "postgres://app:hunter2@db:5432/orders"),
///     ("DATABASE_MAX_CONNECTIONS", "20"),
///     ("DATABASE_HEALTH_INTERVAL", "10s"),
/// ]);
/// let settings = Config::<PoolSettings>::builder("DATABASE").env(env).build().load()?;
/// assert_eq!(settings.max_connections, 20);
/// assert_eq!(settings.health_interval, Duration::from_secs(10));
/// assert_eq!(settings.url.to_string(), "postgres://app:***@db:5432/orders");
/// # Ok::<_, orderly_config::ConfigError>(())
/// ```
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct PoolSettings {
    /// Where the database is; its password is never shown.
    pub url: DatabaseUrl,
    /// The most connections the pool opens.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: u32,
    /// The connections the pool keeps open even when idle.
    #[serde(default)]
    pub min_connections: u32,
    /// How long a caller waits for a connection from the pool; also the limit of each
    /// connection attempt during the start.
    #[serde(
        default = "defaults::acquire_timeout",
        with = "orderly_config::duration"
    )]
    pub acquire_timeout: Duration,
    /// How long the start keeps trying to connect, all attempts included; it gives up when the
    /// next wait would pass this, rather than make a last attempt with no time left. Keep it below the
    /// component's start timeout, so the start fails with this crate's error (attempts, last
    /// cause) rather than a bare timeout.
    #[serde(
        default = "defaults::connect_timeout",
        with = "orderly_config::duration"
    )]
    pub connect_timeout: Duration,
    /// The wait after the first failed attempt; it doubles after each one. Each wait is
    /// jittered (between half of it and all of it) so replicas do not retry in lockstep.
    #[serde(
        default = "defaults::connect_backoff",
        with = "orderly_config::duration"
    )]
    pub connect_backoff: Duration,
    /// The longest wait between two attempts.
    #[serde(
        default = "defaults::connect_backoff_max",
        with = "orderly_config::duration"
    )]
    pub connect_backoff_max: Duration,
    /// How often the running pool checks the database (`SELECT 1`).
    #[serde(
        default = "defaults::health_interval",
        with = "orderly_config::duration"
    )]
    pub health_interval: Duration,
    /// How long one check may take before the database counts as unreachable.
    #[serde(
        default = "defaults::health_timeout",
        with = "orderly_config::duration"
    )]
    pub health_timeout: Duration,
    /// SQLite only: how long a statement waits for a lock held by another connection.
    #[serde(default = "defaults::busy_timeout", with = "orderly_config::duration")]
    pub busy_timeout: Duration,
}

mod defaults {
    use std::time::Duration;

    pub(super) fn max_connections() -> u32 {
        10
    }
    pub(super) fn acquire_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub(super) fn connect_timeout() -> Duration {
        Duration::from_secs(20)
    }
    pub(super) fn connect_backoff() -> Duration {
        Duration::from_millis(100)
    }
    pub(super) fn connect_backoff_max() -> Duration {
        Duration::from_secs(5)
    }
    pub(super) fn health_interval() -> Duration {
        Duration::from_secs(5)
    }
    pub(super) fn health_timeout() -> Duration {
        Duration::from_secs(2)
    }
    pub(super) fn busy_timeout() -> Duration {
        Duration::from_secs(5)
    }
}

impl PoolSettings {
    /// Settings for `url` with every default.
    pub fn new(url: DatabaseUrl) -> Self {
        Self {
            url,
            max_connections: defaults::max_connections(),
            min_connections: 0,
            acquire_timeout: defaults::acquire_timeout(),
            connect_timeout: defaults::connect_timeout(),
            connect_backoff: defaults::connect_backoff(),
            connect_backoff_max: defaults::connect_backoff_max(),
            health_interval: defaults::health_interval(),
            health_timeout: defaults::health_timeout(),
            busy_timeout: defaults::busy_timeout(),
        }
    }

    /// Sets [`max_connections`](Self::max_connections).
    #[must_use]
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets [`min_connections`](Self::min_connections).
    #[must_use]
    pub fn min_connections(mut self, n: u32) -> Self {
        self.min_connections = n;
        self
    }

    /// Sets [`acquire_timeout`](Self::acquire_timeout).
    #[must_use]
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`connect_backoff`](Self::connect_backoff) and
    /// [`connect_backoff_max`](Self::connect_backoff_max).
    #[must_use]
    pub fn connect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.connect_backoff = initial;
        self.connect_backoff_max = max;
        self
    }

    /// Sets [`health_interval`](Self::health_interval) and
    /// [`health_timeout`](Self::health_timeout).
    #[must_use]
    pub fn health_check(mut self, interval: Duration, timeout: Duration) -> Self {
        self.health_interval = interval;
        self.health_timeout = timeout;
        self
    }

    /// Sets [`busy_timeout`](Self::busy_timeout).
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Every value that cannot work, each naming its field; empty when all is well.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_connections == 0 {
            problems.push("max_connections: must be at least 1".to_owned());
        }
        if self.min_connections > self.max_connections {
            problems.push(format!(
                "min_connections: {} is more than max_connections ({})",
                self.min_connections, self.max_connections
            ));
        }
        let positive = [
            ("acquire_timeout", self.acquire_timeout),
            ("connect_backoff", self.connect_backoff),
            ("health_interval", self.health_interval),
            ("health_timeout", self.health_timeout),
        ];
        for (field, value) in positive {
            if value.is_zero() {
                problems.push(format!("{field}: must be more than 0"));
            }
        }
        if self.connect_backoff_max < self.connect_backoff {
            problems.push(format!(
                "connect_backoff_max: {:?} is less than connect_backoff ({:?})",
                self.connect_backoff_max, self.connect_backoff
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PoolSettings {
        PoolSettings::new("postgres://db/x".parse().unwrap())
    }

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(settings().problems(), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_reported_naming_its_field() {
        let bad = settings()
            .max_connections(0)
            .min_connections(2)
            .health_check(Duration::ZERO, Duration::from_secs(1))
            .connect_backoff(Duration::from_secs(2), Duration::from_secs(1));
        let problems = bad.problems();
        assert_eq!(problems.len(), 4, "{problems:?}");
        for field in [
            "max_connections",
            "min_connections",
            "health_interval",
            "connect_backoff_max",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(field)),
                "{problems:?}"
            );
        }
    }
}
