//! The settings of the consumer and the publisher, as `orderly-config` loads them.

use std::time::Duration;

use orderly_config::Secret;
use serde::Deserialize;

/// The server URL used when none is configured.
pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// How a [`JetStreamConsumer`](crate::JetStreamConsumer) connects and consumes.
///
/// Deserialize it with `orderly-config` as a nested key: with the prefix `APP` and a field
/// `nats: ConsumerSettings`, the variables are
///
/// | variable | field | default |
/// |---|---|---|
/// | `APP_NATS__URL` | [`url`](Self::url) (a secret: it may hold a password) | `nats://127.0.0.1:4222` |
/// | `APP_NATS__STREAM` | [`stream`](Self::stream) | required |
/// | `APP_NATS__SUBJECTS` | [`subjects`](Self::subjects), e.g. `[orders.>]` | empty: the stream must exist |
/// | `APP_NATS__CONSUMER` | [`consumer`](Self::consumer), the durable name | required |
/// | `APP_NATS__FILTER_SUBJECT` | [`filter_subject`](Self::filter_subject) | every subject |
/// | `APP_NATS__PREFETCH` | [`prefetch`](Self::prefetch) | 64 |
/// | `APP_NATS__ACK_WAIT` | [`ack_wait`](Self::ack_wait) | `30s` |
/// | `APP_NATS__MAX_DELIVERIES` | [`max_deliveries`](Self::max_deliveries) | 5 |
/// | `APP_NATS__RETRY_DELAY` | [`retry_delay`](Self::retry_delay) | `1s` |
/// | `APP_NATS__DEAD_LETTER_STREAM` | [`dead_letter_stream`](Self::dead_letter_stream) | `<stream>_DEAD` |
/// | `APP_NATS__DEAD_LETTER_SUBJECT` | [`dead_letter_subject`](Self::dead_letter_subject) | `dead.<stream>` |
/// | `APP_NATS__PULL_EXPIRY` | [`pull_expiry`](Self::pull_expiry) | `1s` |
/// | `APP_NATS__ACK_MODE` | [`ack_mode`](Self::ack_mode): `pipelined` or `confirmed` | `pipelined` |
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ConsumerSettings {
    /// The server's URL; never logged with its password.
    pub url: Secret<String>,
    /// The stream to consume.
    pub stream: String,
    /// The stream's subjects: when not empty, the stream is created with them if it does not
    /// exist; when empty, the stream must exist (its absence fails the start).
    pub subjects: Vec<String>,
    /// The durable consumer's name; created, or updated to these settings, at start.
    pub consumer: String,
    /// Only messages on this subject (wildcards allowed); empty: every subject of the stream.
    pub filter_subject: String,
    /// The most messages delivered and not yet acknowledged: the consumer's `max_ack_pending`,
    /// and the most handlers running at once.
    pub prefetch: u16,
    /// How long the server waits for an acknowledgement before it delivers a message again
    /// (`AckWait`). A handler that runs longer is kept alive with progress acknowledgements.
    #[serde(with = "orderly_config::duration")]
    pub ack_wait: Duration,
    /// The most deliveries of a failing message, then the dead-letter stream.
    pub max_deliveries: u32,
    /// How long the server waits before delivering a failed message again (a delayed `NAK`).
    #[serde(with = "orderly_config::duration")]
    pub retry_delay: Duration,
    /// The stream dead-lettered messages go to; empty: `<stream>_DEAD`. Created at start.
    pub dead_letter_stream: String,
    /// The subject dead-lettered messages are published on; empty: `dead.<stream>`. It must
    /// not be one of the consumed stream's subjects.
    pub dead_letter_subject: String,
    /// How long one pull request waits at the server for messages. A stop lets the pulls in
    /// flight end, so it takes up to this long (plus the handlers still running); an idle
    /// consumer makes one pull per expiry.
    #[serde(with = "orderly_config::duration")]
    pub pull_expiry: Duration,
    /// Whether each acknowledgement waits for the server's confirmation.
    pub ack_mode: AckMode,
}

/// How the consumer acknowledges a message whose handler succeeded.
///
/// Either way the message is acknowledged only after its handler succeeded, and the stop
/// returns only once the server has every acknowledgement sent (a round trip to the server
/// after the last one); a redelivery (after a crash, or a lost connection) changes nothing if
/// the effect is idempotent. Either way too, the server's `max_ack_pending` (the prefetch)
/// bounds what a crash leaves to deliver again: at most the prefetch.
///
/// The modes differ only in what a handler's freed slot means, and in cost: measured with the
/// crate's `throughput` bench (see the crate docs), `Pipelined` consumes at about 3 times the
/// rate of `Confirmed`, for a fifth of the client CPU per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AckMode {
    /// Acknowledgements are sent without waiting for a confirmation (one message each, no
    /// round trip, as a hand-written loop's `ack()`); the stop confirms them all at once. An
    /// acknowledgement lost with the connection or the process before it reached the server
    /// means one more delivery of that message (after `AckWait`). Negative acknowledgements and
    /// terminations are always confirmed. The default.
    #[default]
    Pipelined,
    /// Each acknowledgement waits for the server's confirmation (JetStream's double ack) before
    /// the handler's slot is free: when the slot is free, the server has the acknowledgement.
    /// A round trip per message, and a handler slot held during it.
    Confirmed,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            url: Secret::new(DEFAULT_URL.to_owned()),
            stream: String::new(),
            subjects: Vec::new(),
            consumer: String::new(),
            filter_subject: String::new(),
            prefetch: 64,
            ack_wait: Duration::from_secs(30),
            max_deliveries: 5,
            retry_delay: Duration::from_secs(1),
            dead_letter_stream: String::new(),
            dead_letter_subject: String::new(),
            pull_expiry: Duration::from_secs(1),
            ack_mode: AckMode::Pipelined,
        }
    }
}

impl ConsumerSettings {
    /// Settings for the durable consumer `consumer` of `stream`, other fields at their
    /// defaults; change them with the methods below.
    pub fn new(stream: impl Into<String>, consumer: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            consumer: consumer.into(),
            ..Self::default()
        }
    }

    /// The server's URL.
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Secret::new(url.into());
        self
    }

    /// Create the stream with these subjects if it does not exist.
    #[must_use]
    pub fn subjects<S: Into<String>>(mut self, subjects: impl IntoIterator<Item = S>) -> Self {
        self.subjects = subjects.into_iter().map(Into::into).collect();
        self
    }

    /// Consume only messages on `subject`.
    #[must_use]
    pub fn filter_subject(mut self, subject: impl Into<String>) -> Self {
        self.filter_subject = subject.into();
        self
    }

    /// The in-flight bound (`max_ack_pending`), at least 1.
    #[must_use]
    pub fn prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch.max(1);
        self
    }

    /// The server's `AckWait`.
    #[must_use]
    pub fn ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// The most deliveries of a failing message.
    #[must_use]
    pub fn max_deliveries(mut self, max_deliveries: u32) -> Self {
        self.max_deliveries = max_deliveries;
        self
    }

    /// The delay before a failed message is delivered again.
    #[must_use]
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// The dead-letter stream and the subject dead-lettered messages are published on.
    #[must_use]
    pub fn dead_letter(mut self, stream: impl Into<String>, subject: impl Into<String>) -> Self {
        self.dead_letter_stream = stream.into();
        self.dead_letter_subject = subject.into();
        self
    }

    /// How long one pull request waits at the server.
    #[must_use]
    pub fn pull_expiry(mut self, expiry: Duration) -> Self {
        self.pull_expiry = expiry;
        self
    }

    /// How acknowledgements are sent.
    #[must_use]
    pub fn ack_mode(mut self, mode: AckMode) -> Self {
        self.ack_mode = mode;
        self
    }

    /// The dead-letter stream's name: [`dead_letter_stream`](Self::dead_letter_stream) or
    /// `<stream>_DEAD`.
    pub fn dead_letter_stream_name(&self) -> String {
        if self.dead_letter_stream.is_empty() {
            format!("{}_DEAD", self.stream)
        } else {
            self.dead_letter_stream.clone()
        }
    }

    /// The dead-letter subject: [`dead_letter_subject`](Self::dead_letter_subject) or
    /// `dead.<stream>`.
    pub fn dead_letter_subject_name(&self) -> String {
        if self.dead_letter_subject.is_empty() {
            format!("dead.{}", self.stream)
        } else {
            self.dead_letter_subject.clone()
        }
    }
}

/// How a [`JetStreamPublisher`](crate::JetStreamPublisher) connects.
///
/// With the prefix `APP` and a field `publisher: PublisherSettings`: `APP_PUBLISHER__URL`
/// (default `nats://127.0.0.1:4222`, a secret) and `APP_PUBLISHER__ACK_TIMEOUT` (how long a
/// publish waits for the server's acknowledgement, default `5s`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PublisherSettings {
    /// The server's URL; never logged with its password.
    pub url: Secret<String>,
    /// How long a publish waits for the stream's acknowledgement (`PubAck`).
    #[serde(with = "orderly_config::duration")]
    pub ack_timeout: Duration,
}

impl Default for PublisherSettings {
    fn default() -> Self {
        Self {
            url: Secret::new(DEFAULT_URL.to_owned()),
            ack_timeout: Duration::from_secs(5),
        }
    }
}

impl PublisherSettings {
    /// Settings for the server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: Secret::new(url.into()),
            ..Self::default()
        }
    }

    /// How long a publish waits for its acknowledgement.
    #[must_use]
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }
}

/// `url` with any password replaced by `***`, for logs and errors.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_userinfo(url);
    };
    format!("{scheme}://{}", redact_userinfo(rest))
}

fn redact_userinfo(rest: &str) -> String {
    // Userinfo ends at the last '@' before the first '/'.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            if userinfo.contains(':') {
                format!("{user}:***@{host}{path}")
            } else {
                // A bare token is a secret too.
                format!("***@{host}{path}")
            }
        }
        None => rest.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_password_or_token_in_the_url_is_never_shown() {
        assert_eq!(
            redact("nats://alice:s3cret@127.0.0.1:4222"),
            "nats://alice:***@127.0.0.1:4222"
        );
        assert_eq!(redact("nats://tok3n@host:4222"), "nats://***@host:4222");
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(redact("a:b@host"), "a:***@host");
    }

    #[test]
    fn the_documented_variables_set_the_consumer_settings() {
        #[derive(Debug, Deserialize)]
        struct App {
            nats: ConsumerSettings,
            publisher: PublisherSettings,
        }
        let env = orderly::Env::from_pairs([
            ("APP_NATS__URL", "nats://bob:pw@10.0.0.1:4222"),
            ("APP_NATS__STREAM", "ORDERS"),
            ("APP_NATS__CONSUMER", "billing"),
            ("APP_NATS__PREFETCH", "8"),
            ("APP_NATS__ACK_WAIT", "2s"),
            ("APP_NATS__MAX_DELIVERIES", "3"),
            ("APP_NATS__RETRY_DELAY", "250ms"),
            ("APP_NATS__PULL_EXPIRY", "500ms"),
            ("APP_NATS__ACK_MODE", "confirmed"),
            ("APP_PUBLISHER__ACK_TIMEOUT", "3s"),
        ]);
        let app = orderly_config::Config::<App>::builder("APP")
            .env(env)
            .build()
            .load()
            .unwrap();
        let nats = app.nats;
        assert_eq!(nats.url.expose(), "nats://bob:pw@10.0.0.1:4222");
        assert_eq!(
            (nats.stream.as_str(), nats.consumer.as_str()),
            ("ORDERS", "billing")
        );
        assert_eq!(nats.prefetch, 8);
        assert_eq!(nats.ack_wait, Duration::from_secs(2));
        assert_eq!(nats.max_deliveries, 3);
        assert_eq!(nats.retry_delay, Duration::from_millis(250));
        assert_eq!(nats.pull_expiry, Duration::from_millis(500));
        assert_eq!(nats.ack_mode, AckMode::Confirmed);
        assert!(!format!("{nats:?}").contains("pw"));
        assert_eq!(app.publisher.ack_timeout, Duration::from_secs(3));
        assert_eq!(app.publisher.url.expose(), DEFAULT_URL);
    }

    #[test]
    fn dead_letter_names_default_from_the_stream() {
        let s = ConsumerSettings::new("ORDERS", "billing");
        assert_eq!(s.dead_letter_stream_name(), "ORDERS_DEAD");
        assert_eq!(s.dead_letter_subject_name(), "dead.ORDERS");
        let s = s.dead_letter("DLQ", "dlq.orders");
        assert_eq!(s.dead_letter_stream_name(), "DLQ");
        assert_eq!(s.dead_letter_subject_name(), "dlq.orders");
        assert_eq!(format!("{:?}", s.url), "[redacted]");
    }
}
