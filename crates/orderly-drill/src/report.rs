//! The drill's result: counts, failures by kind and over time against each SIGTERM, latency,
//! rollouts and replica exits; as JSON and as a human summary.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::error::Error;
use crate::load::Record;
use crate::outcome::Outcome;
use crate::replica::{ReplicaRecord, ledger_path};

/// The width of the buckets of failures over time.
pub const BUCKET: Duration = Duration::from_millis(100);

/// Serializes a duration (or an optional one) as milliseconds.
pub(crate) fn as_ms<T: Millis, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    value.millis().serialize(serializer)
}

pub(crate) trait Millis {
    fn millis(&self) -> Option<f64>;
}

impl Millis for Duration {
    fn millis(&self) -> Option<f64> {
        Some(ms(*self))
    }
}

impl Millis for Option<Duration> {
    fn millis(&self) -> Option<f64> {
        self.map(ms)
    }
}

/// Milliseconds with two decimals.
fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 100_000.0).round() / 100.0
}

/// What the drill expects, so its exit status can say whether it got it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expectation {
    /// Every request succeeds (the service drains correctly).
    NoFailures,
    /// At least one request fails (a negative control: the drill can see a loss).
    Failures,
}

/// Latency of the successful requests of one phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// How many successful requests.
    pub count: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
}

impl Latency {
    fn of(mut latencies: Vec<Duration>) -> Self {
        latencies.sort_unstable();
        let at = |q: f64| {
            let rank = (q * latencies.len() as f64).ceil() as usize;
            latencies
                .get(rank.saturating_sub(1))
                .copied()
                .map_or(0.0, ms)
        };
        Self {
            count: latencies.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: latencies.last().copied().map_or(0.0, ms),
        }
    }
}

/// One rolling update.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Rollout {
    /// When it began, from the drill's start.
    #[serde(serialize_with = "as_ms", rename = "started_ms")]
    pub started: Duration,
    /// How long it took, until the last old replica exited.
    #[serde(serialize_with = "as_ms", rename = "duration_ms")]
    pub duration: Duration,
}

/// The failures that ended after one SIGTERM (and before the next).
#[derive(Clone, Debug, Serialize)]
pub struct FailuresAfterSigterm {
    /// The replica that got it.
    pub replica: String,
    /// When, from the drill's start.
    #[serde(serialize_with = "as_ms", rename = "at_ms")]
    pub at: Duration,
    /// Failures by the start of their 100 ms bucket, in ms after the SIGTERM (only buckets with
    /// failures).
    pub buckets: BTreeMap<u64, usize>,
}

/// Everything a drill measured.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// What was expected, and whether it happened.
    pub expectation: Expectation,
    /// Requests sent.
    pub sent: usize,
    /// 2xx responses.
    pub ok: usize,
    /// Everything else.
    pub failed: usize,
    /// Failures by kind (`upstream-refused`, `client-timeout`, `status-503`…).
    pub failed_by_kind: BTreeMap<String, usize>,
    /// Failures by the replica the load balancer had chosen (`none` when it chose none or the
    /// client never got an answer naming one).
    pub failed_by_replica: BTreeMap<String, usize>,
    /// Failed requests that a replica's ledger says it handled: the work was done but the client
    /// never heard (worse than a refusal, which a client can retry safely).
    pub failed_but_handled: usize,
    /// Successful requests missing from every ledger (a replica that breaks the ledger contract).
    pub ok_not_in_ledger: usize,
    /// Ids handled more than once (something retried).
    pub handled_twice: usize,
    /// Failures that ended before the first SIGTERM.
    pub failures_before_first_sigterm: usize,
    /// Failures over time against each SIGTERM.
    pub sigterms: Vec<FailuresAfterSigterm>,
    /// Latency outside the rollouts.
    pub latency_steady: Latency,
    /// Latency during the rollouts.
    pub latency_rollout: Latency,
    /// Each rolling update.
    pub rollouts: Vec<Rollout>,
    /// Every replica, in start order, with its exit.
    pub replicas: Vec<ReplicaRecord>,
    /// Some replica was SIGKILLed at the end of its grace period.
    pub any_sigkilled: bool,
    /// Where the ledgers and the replicas' logs are.
    pub work_dir: String,
    /// The whole drill.
    #[serde(serialize_with = "as_ms", rename = "duration_ms")]
    pub duration: Duration,
    /// The options, as given.
    pub options: serde_json::Value,
}

/// The inputs of a report.
pub(crate) struct Inputs<'a> {
    pub(crate) expectation: Expectation,
    pub(crate) records: &'a [Record],
    pub(crate) replicas: Vec<ReplicaRecord>,
    pub(crate) rollouts: Vec<Rollout>,
    pub(crate) work_dir: &'a Path,
    pub(crate) duration: Duration,
    pub(crate) options: serde_json::Value,
}

/// Reads every replica's ledger: how many times each id was handled.
fn read_ledgers(work_dir: &Path, replicas: &[ReplicaRecord]) -> Result<HashMap<u64, u32>, Error> {
    let mut handled = HashMap::new();
    for replica in replicas {
        let path = ledger_path(work_dir, &replica.name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            // A replica that handled nothing may not have created its ledger.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(Error::file(path, error)),
        };
        // A line cut by SIGKILL is not an id.
        for id in text
            .lines()
            .filter_map(|line| line.trim().parse::<u64>().ok())
        {
            *handled.entry(id).or_insert(0) += 1;
        }
    }
    Ok(handled)
}

impl Report {
    pub(crate) fn build(inputs: Inputs<'_>) -> Result<Self, Error> {
        let handled = read_ledgers(inputs.work_dir, &inputs.replicas)?;
        let records = inputs.records;
        let failures: Vec<&Record> = records.iter().filter(|r| !r.outcome.is_ok()).collect();
        let mut failed_by_kind = BTreeMap::new();
        let mut failed_by_replica = BTreeMap::new();
        for record in &failures {
            *failed_by_kind.entry(record.outcome.label()).or_insert(0) += 1;
            let replica = record.replica.as_deref().unwrap_or("none").to_owned();
            *failed_by_replica.entry(replica).or_insert(0) += 1;
        }
        let in_rollout = |record: &Record| {
            inputs
                .rollouts
                .iter()
                .any(|r| record.sent >= r.started && record.sent <= r.started + r.duration)
        };
        let (rollout, steady): (Vec<&Record>, Vec<&Record>) = records
            .iter()
            .filter(|r| r.outcome == Outcome::Ok)
            .partition(|r| in_rollout(r));

        // Each failure against the SIGTERM of the replica it was routed to, if it ended after
        // it; otherwise against the last SIGTERM before it ended.
        let mut sigterms: Vec<FailuresAfterSigterm> = inputs
            .replicas
            .iter()
            .filter_map(|r| {
                Some(FailuresAfterSigterm {
                    replica: r.name.clone(),
                    at: r.sigterm?,
                    buckets: BTreeMap::new(),
                })
            })
            .collect();
        sigterms.sort_by_key(|s| s.at);
        let mut failures_before_first_sigterm = 0;
        for record in &failures {
            let ended = record.sent + record.latency;
            let own = sigterms.iter().position(|s| {
                s.at <= ended && record.replica.as_deref() == Some(s.replica.as_str())
            });
            let latest = sigterms.iter().rposition(|s| s.at <= ended);
            match own.or(latest).map(|i| &mut sigterms[i]) {
                Some(sigterm) => {
                    let after = ended - sigterm.at;
                    let bucket = (after.as_millis() / BUCKET.as_millis()) * BUCKET.as_millis();
                    *sigterm
                        .buckets
                        .entry(u64::try_from(bucket).unwrap_or(u64::MAX))
                        .or_insert(0) += 1;
                }
                None => failures_before_first_sigterm += 1,
            }
        }

        Ok(Self {
            expectation: inputs.expectation,
            sent: records.len(),
            ok: records.len() - failures.len(),
            failed: failures.len(),
            failed_by_kind,
            failed_by_replica,
            failed_but_handled: failures
                .iter()
                .filter(|r| handled.contains_key(&r.id))
                .count(),
            ok_not_in_ledger: records
                .iter()
                .filter(|r| r.outcome.is_ok() && !handled.contains_key(&r.id))
                .count(),
            handled_twice: handled.values().filter(|&&n| n > 1).count(),
            failures_before_first_sigterm,
            sigterms,
            latency_steady: Latency::of(steady.iter().map(|r| r.latency).collect()),
            latency_rollout: Latency::of(rollout.iter().map(|r| r.latency).collect()),
            any_sigkilled: inputs
                .replicas
                .iter()
                .any(|r| r.exit.is_some_and(|e| e.sigkilled)),
            replicas: inputs.replicas,
            rollouts: inputs.rollouts,
            work_dir: inputs.work_dir.display().to_string(),
            duration: inputs.duration,
            options: inputs.options,
        })
    }

    /// The expectation was met: no failure (and something was sent) for
    /// [`Expectation::NoFailures`], at least one for [`Expectation::Failures`]. A request
    /// handled twice always fails the drill (nothing may retry).
    pub fn passed(&self) -> bool {
        let clean = self.handled_twice == 0;
        match self.expectation {
            Expectation::NoFailures => clean && self.sent > 0 && self.failed == 0,
            Expectation::Failures => clean && self.failed > 0,
        }
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        // A Report holds only maps with string or integer keys and finite numbers.
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed() { "PASSED" } else { "FAILED" };
        let expected = match self.expectation {
            Expectation::NoFailures => "no failed request",
            Expectation::Failures => "failures (negative control)",
        };
        writeln!(f, "drill {verdict}: expected {expected}")?;
        writeln!(
            f,
            "  requests: {} sent, {} ok, {} failed ({} handled by a replica but failed at the \
             client); {} ok but not in a ledger; {} handled twice",
            self.sent,
            self.ok,
            self.failed,
            self.failed_but_handled,
            self.ok_not_in_ledger,
            self.handled_twice
        )?;
        for (kind, count) in &self.failed_by_kind {
            writeln!(f, "    {kind}: {count}")?;
        }
        let latency = |f: &mut fmt::Formatter<'_>, name: &str, l: &Latency| {
            writeln!(
                f,
                "  latency {name}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} requests)",
                l.p50_ms, l.p99_ms, l.max_ms, l.count
            )
        };
        latency(f, "steady ", &self.latency_steady)?;
        latency(f, "rollout", &self.latency_rollout)?;
        for (i, rollout) in self.rollouts.iter().enumerate() {
            writeln!(
                f,
                "  rollout {}: at {:.0} ms, took {:.0} ms",
                i + 1,
                ms(rollout.started),
                ms(rollout.duration)
            )?;
        }
        if self.failures_before_first_sigterm > 0 {
            writeln!(
                f,
                "  failures before the first SIGTERM: {}",
                self.failures_before_first_sigterm
            )?;
        }
        for sigterm in self.sigterms.iter().filter(|s| !s.buckets.is_empty()) {
            let buckets: Vec<String> = sigterm
                .buckets
                .iter()
                .map(|(at, n)| format!("+{at}ms: {n}"))
                .collect();
            writeln!(
                f,
                "  failures after SIGTERM to {} (at {:.0} ms): {}",
                sigterm.replica,
                ms(sigterm.at),
                buckets.join(", ")
            )?;
        }
        writeln!(f, "  replicas:")?;
        for r in &self.replicas {
            let exit = r
                .exit
                .map_or_else(|| "running".to_owned(), |e| e.to_string());
            writeln!(f, "    {} (pid {}): {exit}", r.name, r.pid)?;
        }
        writeln!(
            f,
            "  any SIGKILL: {}; drill took {:.1} s; files in {}",
            if self.any_sigkilled { "yes" } else { "no" },
            self.duration.as_secs_f64(),
            self.work_dir
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let latencies = (1..=100).map(Duration::from_millis).collect();
        let latency = Latency::of(latencies);
        assert_eq!(latency.count, 100);
        assert_eq!(latency.p50_ms, 50.0);
        assert_eq!(latency.p99_ms, 99.0);
        assert_eq!(latency.max_ms, 100.0);
        assert_eq!(Latency::of(Vec::new()), Latency::default());
    }
}
