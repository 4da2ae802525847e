//! The queue drill's report: what was published and confirmed, what the effects table holds,
//! what was lost or handled twice, and every restart, kill and exit.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::queue::options::{QueueExpectation, Scenario};
use crate::queue::replicas::{ConsumerRecord, Stop};
use crate::replica::Exit;
use crate::report::as_ms;

/// Ids listed in the report at most (of lost or duplicated messages).
pub(crate) const LISTED: usize = 100;

/// One rolling restart or SIGKILL. Times are from the drill's start.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct QueueEvent {
    /// SIGTERM (a rolling restart) or SIGKILL.
    pub stop: Stop,
    /// The replica stopped.
    pub replica: String,
    /// The replica started in its place.
    pub replacement: String,
    /// When the signal was sent.
    #[serde(serialize_with = "as_ms", rename = "at_ms")]
    pub at: Duration,
    /// From the signal to the replica's exit.
    #[serde(serialize_with = "as_ms", rename = "exited_after_ms")]
    pub exited_after: Option<Duration>,
    /// How long the replacement took from its start until the broker counted it.
    #[serde(serialize_with = "as_ms", rename = "replacement_ready_after_ms")]
    pub replacement_ready_after: Option<Duration>,
    /// How the stopped replica exited.
    pub exit: Option<Exit>,
}

/// What a queue drill found. [`passed`](QueueReport::passed) says whether the expectation was
/// met; `Display` gives the human summary, [`to_json`](QueueReport::to_json) the rest.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct QueueReport {
    /// `amqp` or `nats`.
    pub broker: String,
    /// The broker's URL, its password redacted.
    pub broker_url: String,
    /// The queue (RabbitMQ) or stream (JetStream).
    pub queue: String,
    /// The drill's database.
    pub database: String,
    /// Rolling restarts or SIGKILLs, and how many.
    pub scenario: Scenario,
    /// Replicas running at once.
    pub replicas: usize,
    /// Each replica's prefetch.
    pub prefetch: u16,
    /// Messages a second asked for.
    pub rate: u32,
    /// The SIGKILL scenario's seed.
    pub seed: u64,
    /// Messages sent to the broker.
    pub sent: u64,
    /// Messages the broker confirmed: each must have exactly one effect.
    pub confirmed: u64,
    /// Messages sent but not confirmed (refused, returned or unanswered): they may or may not
    /// have an effect.
    pub unconfirmed: u64,
    /// Of those, the ones with an effect.
    pub unconfirmed_with_effect: u64,
    /// From the first message sent to the last confirm.
    #[serde(serialize_with = "as_ms", rename = "publishing_ms")]
    pub publishing: Duration,
    /// Confirmed messages a second over the publishing.
    pub confirmed_per_second: f64,
    /// Why publishing stopped early, if it did.
    pub publish_error: Option<String>,
    /// Rows in the effects table.
    pub effects: u64,
    /// Confirmed messages without an effect.
    pub lost: u64,
    /// The first lost message ids.
    pub lost_ids: Vec<String>,
    /// Effect rows with `handled > 1`: messages handled more than once.
    pub handled_twice: u64,
    /// Handlings beyond the first, summed over every message.
    pub extra_handlings: u64,
    /// The first message ids handled more than once.
    pub duplicate_ids: Vec<String>,
    /// The most extra handlings SIGKILLs can explain: kills × prefetch (the messages a killed
    /// replica held unacknowledged); 0 in a graceful scenario.
    pub redelivery_bound: u64,
    /// Effect rows whose id the drill never sent.
    pub unknown_effects: u64,
    /// Messages in the dead-letter queue at the end.
    pub dead_lettered: u64,
    /// The queue was drained (no ready message, effects no longer growing) in time.
    pub drained: bool,
    /// From the end of publishing until drained (or the drain timeout).
    #[serde(serialize_with = "as_ms", rename = "drain_ms")]
    pub drain: Duration,
    /// Every rolling restart or SIGKILL.
    pub events: Vec<QueueEvent>,
    /// Every replica started.
    pub consumers: Vec<ConsumerRecord>,
    /// What the drill had to find.
    pub expectation: QueueExpectation,
    /// Whatever breaks the exactly-once expectation, in words.
    pub problems: Vec<String>,
    /// The whole drill.
    #[serde(serialize_with = "as_ms", rename = "duration_ms")]
    pub duration: Duration,
}

impl QueueReport {
    /// Fills in [`problems`](Self::problems) from the counts.
    pub(crate) fn judge(&mut self) {
        let mut problems = Vec::new();
        if self.lost > 0 {
            problems.push(format!(
                "{} confirmed messages have no effect (lost), e.g. {}",
                self.lost,
                self.lost_ids
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if self.extra_handlings > self.redelivery_bound {
            problems.push(format!(
                "{} extra handlings ({} messages handled more than once) exceed the bound of {}",
                self.extra_handlings, self.handled_twice, self.redelivery_bound
            ));
        }
        if self.unknown_effects > 0 {
            problems.push(format!(
                "{} effects of messages the drill never sent",
                self.unknown_effects
            ));
        }
        for consumer in &self.consumers {
            if consumer.failed_graceful_stop() {
                let exit = consumer
                    .exit
                    .map_or_else(|| "no exit".to_owned(), |e| e.to_string());
                problems.push(format!(
                    "replica {} did not stop gracefully on SIGTERM ({exit})",
                    consumer.name
                ));
            }
        }
        if let Some(error) = &self.publish_error {
            problems.push(format!("publishing stopped early: {error}"));
        }
        if !self.drained {
            problems.push("the queue was not drained in time".to_owned());
        }
        self.problems = problems;
    }

    /// The expectation was met: exactly once with no problem, or, for a negative control,
    /// some confirmed message lost.
    #[must_use]
    pub fn passed(&self) -> bool {
        match self.expectation {
            QueueExpectation::ExactlyOnce => self.problems.is_empty(),
            QueueExpectation::Loss => self.lost > 0,
        }
    }

    /// The report as pretty JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

fn ms(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "-".to_owned(), |d| format!("{} ms", d.as_millis()))
}

impl fmt::Display for QueueReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scenario = match self.scenario {
            Scenario::RollingRestarts(n) => format!("{n} rolling restarts"),
            Scenario::Sigkills(n) => format!("{n} SIGKILLs (seed {})", self.seed),
        };
        writeln!(
            f,
            "queue drill on {} ({}, queue {}, database {}): {} replicas, prefetch {}, {scenario}",
            self.broker, self.broker_url, self.queue, self.database, self.replicas, self.prefetch
        )?;
        writeln!(
            f,
            "published: {} sent, {} confirmed, {} unconfirmed ({} with an effect) in {:.1} s ({:.0} confirmed/s, {} asked)",
            self.sent,
            self.confirmed,
            self.unconfirmed,
            self.unconfirmed_with_effect,
            self.publishing.as_secs_f64(),
            self.confirmed_per_second,
            self.rate
        )?;
        writeln!(
            f,
            "effects: {} rows; lost {}; handled more than once {} ({} extra handlings, bound {}); unknown {}; dead-lettered {}",
            self.effects,
            self.lost,
            self.handled_twice,
            self.extra_handlings,
            self.redelivery_bound,
            self.unknown_effects,
            self.dead_lettered
        )?;
        if !self.lost_ids.is_empty() {
            writeln!(f, "lost ids: {}", self.lost_ids.join(" "))?;
        }
        if !self.duplicate_ids.is_empty() {
            writeln!(
                f,
                "ids handled more than once: {}",
                self.duplicate_ids.join(" ")
            )?;
        }
        writeln!(
            f,
            "drain: {} after publishing ({})",
            ms(Some(self.drain)),
            if self.drained {
                "drained"
            } else {
                "NOT drained"
            }
        )?;
        for event in &self.events {
            writeln!(
                f,
                "  {:?} {} at {}: exited after {} ({}); replacement {} consuming after {}",
                event.stop,
                event.replica,
                ms(Some(event.at)),
                ms(event.exited_after),
                event
                    .exit
                    .map_or_else(|| "no exit".to_owned(), |e| e.to_string()),
                event.replacement,
                ms(event.replacement_ready_after)
            )?;
        }
        let exits: Vec<String> = self
            .consumers
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c.name,
                    c.exit
                        .map_or_else(|| "running".to_owned(), |e| e.to_string())
                )
            })
            .collect();
        writeln!(f, "replica exits: {}", exits.join(", "))?;
        for problem in &self.problems {
            writeln!(f, "problem: {problem}")?;
        }
        let verdict = match (self.expectation, self.passed()) {
            (QueueExpectation::ExactlyOnce, true) => {
                "PASSED: every confirmed message had its effect exactly once"
            }
            (QueueExpectation::ExactlyOnce, false) => "FAILED",
            (QueueExpectation::Loss, true) => "PASSED (negative control): the drill saw the loss",
            (QueueExpectation::Loss, false) => {
                "FAILED (negative control): no loss seen, so a zero proves nothing"
            }
        };
        writeln!(f, "{verdict} in {:.1} s", self.duration.as_secs_f64())
    }
}
