//! The consumer's and the publisher's settings, as `orderly-config` reads them.

use std::time::Duration;

use orderly_config::Secret;
use serde::Deserialize;

use crate::error::ErrorKind;

/// The URL used when none is configured: a local broker, default vhost, guest account.
pub const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// How a consumer makes sure its queue exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Declare {
    /// Declare the queue (durable) and its dead-letter queue, creating them if they do not exist;
    /// an existing queue must have the same type, or the broker refuses.
    #[default]
    Declare,
    /// Only check that they exist (a passive declare): for queues owned by an operator or a
    /// deployment tool. A missing queue fails the start.
    Check,
}

/// The type of a queue, which decides how a delivery's attempt is counted and how a failed
/// message is delivered again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum QueueType {
    /// A quorum queue (replicated, durable). The broker counts deliveries (the
    /// `x-delivery-count` header), so a failed message is simply rejected with requeue and
    /// its next delivery knows its exact attempt — crashes included.
    #[default]
    Quorum,
    /// A classic durable queue. The broker only says *whether* a message was delivered
    /// before, so a failed message is published again with an `x-orderly-attempt` header
    /// (and a publisher confirm) and then acknowledged: the count is exact, and the retried
    /// message goes to the back of the queue.
    Classic,
}

impl QueueType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Quorum => "quorum",
            Self::Classic => "classic",
        }
    }
}

/// A [`Consumer`](crate::Consumer)'s settings.
///
/// Read them with `orderly-config` under a prefix of your choice; with `APP` and the settings
/// in a field `orders`, the variables are `APP_ORDERS__URL`, `APP_ORDERS__QUEUE`, and so on:
///
/// | field | variable suffix | default |
/// |---|---|---|
/// | `url` | `__URL` | [`DEFAULT_URL`]; a secret, never shown (logs show it with the password redacted) |
/// | `queue` | `__QUEUE` | required |
/// | `queue_type` | `__QUEUE_TYPE` | `quorum` (or `classic`) |
/// | `declare` | `__DECLARE` | `declare` (or `check`) |
/// | `prefetch` | `__PREFETCH` | 32: the most messages handled at once (1–65535) |
/// | `max_deliveries` | `__MAX_DELIVERIES` | 5, then the dead-letter queue |
/// | `dead_letter_queue` | `__DEAD_LETTER_QUEUE` | `<queue>.dead` |
/// | `reconnect_delay` | `__RECONNECT_DELAY` | `100ms`, doubled after each failed attempt… |
/// | `reconnect_max_delay` | `__RECONNECT_MAX_DELAY` | …up to `10s` |
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ConsumerSettings {
    /// The broker's URL, `amqp://user:password@host:port/vhost` (vhost URL-encoded: `%2f` is
    /// `/`).
    #[serde(default = "default_url")]
    pub url: Secret<String>,
    /// The queue to consume.
    pub queue: String,
    /// The queue's type.
    #[serde(default)]
    pub queue_type: QueueType,
    /// Declare the queues, or only check them.
    #[serde(default)]
    pub declare: Declare,
    /// The most unacknowledged messages the broker sends at once, hence the most handlers
    /// running at once.
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
    /// The most deliveries of a message whose handler keeps failing, the first included.
    #[serde(default = "default_max_deliveries")]
    pub max_deliveries: u32,
    /// Where messages go that cannot succeed; `<queue>.dead` when unset.
    #[serde(default)]
    pub dead_letter_queue: Option<String>,
    /// The first delay before reconnecting after the broker dropped the connection.
    #[serde(default = "default_reconnect_delay", with = "orderly_config::duration")]
    pub reconnect_delay: Duration,
    /// The longest delay between two reconnection attempts.
    #[serde(
        default = "default_reconnect_max_delay",
        with = "orderly_config::duration"
    )]
    pub reconnect_max_delay: Duration,
}

impl ConsumerSettings {
    /// Settings for consuming `queue` at `url`, the rest by default.
    pub fn new(url: impl Into<String>, queue: impl Into<String>) -> Self {
        Self {
            url: Secret::new(url.into()),
            queue: queue.into(),
            queue_type: QueueType::default(),
            declare: Declare::default(),
            prefetch: default_prefetch(),
            max_deliveries: default_max_deliveries(),
            dead_letter_queue: None,
            reconnect_delay: default_reconnect_delay(),
            reconnect_max_delay: default_reconnect_max_delay(),
        }
    }

    /// The dead-letter queue's name.
    pub fn dead_letter_queue(&self) -> String {
        self.dead_letter_queue
            .clone()
            .unwrap_or_else(|| format!("{}.dead", self.queue))
    }

    /// Every problem with the settings.
    pub(crate) fn problems(&self) -> Vec<ErrorKind> {
        let mut problems = Vec::new();
        if self.prefetch == 0 {
            problems.push(ErrorKind::InvalidSetting {
                setting: "prefetch",
                reason: "must be at least 1 (0 would mean unbounded)".into(),
            });
        }
        for (setting, name) in [
            ("queue", self.queue.clone()),
            ("dead_letter_queue", self.dead_letter_queue()),
        ] {
            if name.is_empty() || name.len() > 255 {
                problems.push(ErrorKind::InvalidSetting {
                    setting,
                    reason: format!("a queue name has 1 to 255 bytes, found {}", name.len()),
                });
            }
        }
        if self.reconnect_delay.is_zero() || self.reconnect_max_delay < self.reconnect_delay {
            problems.push(ErrorKind::InvalidSetting {
                setting: "reconnect_delay",
                reason: "must be above zero and at most reconnect_max_delay".into(),
            });
        }
        problems
    }
}

/// A [`Publisher`](crate::Publisher)'s settings.
///
/// | field | variable suffix | default |
/// |---|---|---|
/// | `url` | `__URL` | [`DEFAULT_URL`]; a secret |
/// | `exchange` | `__EXCHANGE` | `""`, the default exchange (routes by queue name) |
/// | `routing_key` | `__ROUTING_KEY` | required: with the default exchange, the queue's name |
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PublisherSettings {
    /// The broker's URL.
    #[serde(default = "default_url")]
    pub url: Secret<String>,
    /// The exchange messages are published to.
    #[serde(default)]
    pub exchange: String,
    /// The routing key of every message published with
    /// [`PublisherHandle::publish`](crate::PublisherHandle::publish).
    pub routing_key: String,
}

impl PublisherSettings {
    /// Settings for publishing through the default exchange to queue `queue` at `url`.
    pub fn new(url: impl Into<String>, queue: impl Into<String>) -> Self {
        Self {
            url: Secret::new(url.into()),
            exchange: String::new(),
            routing_key: queue.into(),
        }
    }

    pub(crate) fn problems(&self) -> Vec<ErrorKind> {
        let mut problems = Vec::new();
        for (setting, name) in [
            ("exchange", &self.exchange),
            ("routing_key", &self.routing_key),
        ] {
            if name.len() > 255 {
                problems.push(ErrorKind::InvalidSetting {
                    setting,
                    reason: format!("at most 255 bytes, found {}", name.len()),
                });
            }
        }
        problems
    }
}

fn default_url() -> Secret<String> {
    Secret::new(DEFAULT_URL.to_owned())
}

fn default_prefetch() -> u16 {
    32
}

fn default_max_deliveries() -> u32 {
    5
}

fn default_reconnect_delay() -> Duration {
    Duration::from_millis(100)
}

fn default_reconnect_max_delay() -> Duration {
    Duration::from_secs(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_setting_and_defaults_the_rest() {
        let settings: ConsumerSettings = serde_json::from_str(
            r#"{"url":"amqp://u:p@h/v","queue":"orders","queue_type":"classic","declare":"check",
                "prefetch":8,"reconnect_delay":"1s","reconnect_max_delay":"1m"}"#,
        )
        .unwrap();
        assert_eq!(settings.queue_type, QueueType::Classic);
        assert_eq!(settings.declare, Declare::Check);
        assert_eq!(settings.prefetch, 8);
        assert_eq!(settings.max_deliveries, 5);
        assert_eq!(settings.dead_letter_queue(), "orders.dead");
        assert_eq!(settings.reconnect_max_delay, Duration::from_secs(60));
        assert_eq!(format!("{:?}", settings.url), "[redacted]");
        assert!(settings.problems().is_empty());
    }

    #[test]
    fn reports_every_problem() {
        let mut settings = ConsumerSettings::new(DEFAULT_URL, "");
        settings.prefetch = 0;
        settings.reconnect_delay = Duration::ZERO;
        let problems = settings.problems();
        let named: Vec<_> = problems
            .iter()
            .map(|p| match p {
                ErrorKind::InvalidSetting { setting, .. } => *setting,
                _ => "?",
            })
            .collect();
        assert_eq!(named, ["prefetch", "queue", "reconnect_delay"]);
    }
}
