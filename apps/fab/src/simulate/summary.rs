//! What a simulation prints at its end (text, or JSON with `--json`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::client::Recorder;
use super::scanner::ScannerLog;
use crate::domain::fdc::alarm::{Alarm, Cause};
use crate::domain::fdc::classify::FaultClass;

/// How the simulation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Ending {
    /// Every lot and sample was sent.
    Completed,
    /// Stopped early (Ctrl-C): the summary so far.
    Interrupted,
    /// The fab refused or dropped a connection: the summary so far.
    FabUnreachable,
}

/// Mean, σ, min and max of some values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stats {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one value).
    pub sigma: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Stats {
    /// The statistics of `values`, `None` when there are none.
    #[must_use]
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        #[allow(clippy::cast_precision_loss)] // counts stay far below 2^52
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sigma = if values.len() > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Self {
            mean,
            sigma,
            min,
            max,
        })
    }
}

/// Mean |y − T| over the first and the last fifth of the exposed lots: a converging
/// controller's last window is well below its first.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Convergence {
    /// Mean |y − T| of the first 20 % of the lots (nm).
    pub first: f64,
    /// Mean |y − T| of the last 20 % of the lots (nm).
    pub last: f64,
}

impl Convergence {
    /// The windows of `errors` (`y − T` in lot order); `None` for fewer than 2 lots.
    #[must_use]
    pub fn of(errors: &[f64]) -> Option<Self> {
        if errors.len() < 2 {
            return None;
        }
        let window = (errors.len() / 5).max(1);
        let mean_abs = |xs: &[f64]| {
            #[allow(clippy::cast_precision_loss)]
            let n = xs.len() as f64;
            xs.iter().map(|e| e.abs()).sum::<f64>() / n
        };
        Some(Self {
            first: mean_abs(&errors[..window]),
            last: mean_abs(&errors[errors.len() - window..]),
        })
    }
}

/// One controller thread (one scanner).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThreadSummary {
    /// The thread key.
    pub thread: String,
    /// Lots exposed.
    pub runs: usize,
    /// Measurements the APC accepted.
    pub measured: u32,
    /// The SRs the APC gave (mJ/cm²).
    pub sr: Option<Stats>,
    /// The controller's error, first and last window.
    pub error: Option<Convergence>,
}

/// Lots the fab refused to dispatch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Holds {
    /// checkSpec refused the SR (422 on `mode.sr`).
    pub out_of_spec: u64,
    /// FDC holds the tool inhibited (409 on `lot.thread.tool`).
    pub inhibited: u64,
}

/// Alarms of one class and cause on one sensor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlarmCount {
    /// The tool.
    pub tool: String,
    /// The parameter (sensor).
    pub parameter: String,
    /// The fault class.
    pub class: FaultClass,
    /// What raised it: `spec_limit`, `control_limit`, `rule:<rule>`, `trend`, `stuck`,
    /// `invalid_reading`, `gap`.
    pub cause: String,
    /// How many.
    pub count: u64,
    /// Simulated seconds from the start to the first of them.
    pub first_at_s: f64,
}

/// Requests by status and their latency.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Requests {
    /// Answers by HTTP status, plus `connection` and `timeout` for requests without one.
    pub by_status: BTreeMap<String, u64>,
    /// Requests that failed (neither a success nor a hold); never retried.
    pub failed: u64,
    /// The first failures, one line each.
    pub failures: Vec<String>,
    /// Median latency (ms).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency (ms).
    pub p99_ms: Option<f64>,
}

/// The summary of a simulation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// How it ended.
    pub ending: Ending,
    /// The seed (the same seed replays the same process and sensor data).
    pub seed: u64,
    /// Per thread: runs, SR statistics, controller error.
    pub threads: Vec<ThreadSummary>,
    /// The controller error over every thread's windows together.
    pub error: Option<Convergence>,
    /// Lots held.
    pub holds: Holds,
    /// Sensor samples sent.
    pub samples: u64,
    /// Alarms raised on the simulated sensors, read back from the fab.
    pub alarms: Vec<AlarmCount>,
    /// Alarms by class.
    pub alarms_by_class: BTreeMap<FaultClass, u64>,
    /// Requests.
    pub requests: Requests,
}

impl Summary {
    /// How many alarms of `class` were raised.
    #[must_use]
    pub fn alarms_of(&self, class: FaultClass) -> u64 {
        self.alarms_by_class.get(&class).copied().unwrap_or(0)
    }
}

/// A cause as a short label.
pub(crate) fn cause_label(cause: &Cause) -> String {
    let tagged = serde_json::to_value(cause).ok();
    let name = tagged
        .as_ref()
        .and_then(|v| v.get("cause"))
        .and_then(|v| v.as_str())
        .unwrap_or("unknown")
        .to_owned();
    match cause {
        Cause::Rule { rule } => {
            let rule = serde_json::to_value(rule)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!("{name}:{rule}")
        }
        _ => name,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i].as_secs_f64() * 1000.0)
}

pub(crate) fn build(
    ending: Ending,
    seed: u64,
    scanners: Vec<ScannerLog>,
    samples: u64,
    alarms: &[Alarm],
    start_ms: u64,
    record: &Recorder,
) -> Summary {
    let mut threads: Vec<ThreadSummary> = scanners
        .iter()
        .map(|s| ThreadSummary {
            thread: s.thread.clone(),
            runs: s.srs.len(),
            measured: s.measured,
            sr: Stats::of(&s.srs),
            error: Convergence::of(&s.errors),
        })
        .collect();
    threads.sort_by(|a, b| a.thread.cmp(&b.thread));
    let windows: Vec<Convergence> = threads.iter().filter_map(|t| t.error).collect();
    let error = (!windows.is_empty()).then(|| {
        #[allow(clippy::cast_precision_loss)]
        let n = windows.len() as f64;
        Convergence {
            first: windows.iter().map(|w| w.first).sum::<f64>() / n,
            last: windows.iter().map(|w| w.last).sum::<f64>() / n,
        }
    });

    let mut grouped: BTreeMap<(String, String, FaultClass, String), (u64, u64)> = BTreeMap::new();
    let mut alarms_by_class = BTreeMap::new();
    for alarm in alarms {
        let d = &alarm.detection;
        let at = d.at.as_millis();
        let entry = grouped
            .entry((
                d.tool.to_string(),
                d.parameter.to_string(),
                d.class,
                cause_label(&d.cause),
            ))
            .or_insert((0, u64::MAX));
        entry.0 += 1;
        entry.1 = entry.1.min(at);
        *alarms_by_class.entry(d.class).or_default() += 1;
    }
    let alarms = grouped
        .into_iter()
        .map(|((tool, parameter, class, cause), (count, first))| {
            #[allow(clippy::cast_precision_loss)]
            let first_at_s = first.saturating_sub(start_ms) as f64 / 1000.0;
            AlarmCount {
                tool,
                parameter,
                class,
                cause,
                count,
                first_at_s,
            }
        })
        .collect();

    let mut latencies = record.latencies.clone();
    latencies.sort_unstable();
    Summary {
        ending,
        seed,
        threads,
        error,
        holds: Holds {
            out_of_spec: record.held_out_of_spec,
            inhibited: record.held_inhibited,
        },
        samples,
        alarms,
        alarms_by_class,
        requests: Requests {
            by_status: record.by_status.clone(),
            failed: record.failed,
            failures: record.failures.clone(),
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
        },
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ending = match self.ending {
            Ending::Completed => "completed",
            Ending::Interrupted => "interrupted (summary so far)",
            Ending::FabUnreachable => "the fab went away (summary so far)",
        };
        writeln!(f, "fab simulate: {ending}, seed {}", self.seed)?;
        writeln!(f, "threads:")?;
        for t in &self.threads {
            write!(
                f,
                "  {}: {} runs, {} measured",
                t.thread, t.runs, t.measured
            )?;
            if let Some(s) = t.sr {
                write!(
                    f,
                    ", SR mean {:.3} σ {:.3} min {:.3} max {:.3} mJ/cm²",
                    s.mean, s.sigma, s.min, s.max
                )?;
            }
            if let Some(e) = t.error {
                write!(f, ", |y−T| {:.2} → {:.2} nm", e.first, e.last)?;
            }
            writeln!(f)?;
        }
        if let Some(e) = self.error {
            writeln!(
                f,
                "controller error |y−T|: first 20% {:.2} nm, last 20% {:.2} nm",
                e.first, e.last
            )?;
        }
        writeln!(
            f,
            "holds: {} out of spec, {} inhibited tool",
            self.holds.out_of_spec, self.holds.inhibited
        )?;
        writeln!(f, "samples sent: {}", self.samples)?;
        let total: u64 = self.alarms_by_class.values().sum();
        writeln!(f, "alarms: {total}")?;
        for a in &self.alarms {
            writeln!(
                f,
                "  {}/{}: {} × {:?} ({}), first at {:.0} s",
                a.tool, a.parameter, a.count, a.class, a.cause, a.first_at_s
            )?;
        }
        let statuses: Vec<String> = self
            .requests
            .by_status
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        writeln!(
            f,
            "requests: {} ({} failed)",
            statuses.join(", "),
            self.requests.failed
        )?;
        if let (Some(p50), Some(p99)) = (self.requests.p50_ms, self.requests.p99_ms) {
            writeln!(f, "latency: p50 {p50:.1} ms, p99 {p99:.1} ms")?;
        }
        for failure in &self.requests.failures {
            writeln!(f, "  failed: {failure}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_windows() {
        let s = Stats::of(&[1.0, 2.0, 3.0]).unwrap();
        assert!((s.mean - 2.0).abs() < 1e-12 && (s.sigma - 1.0).abs() < 1e-12);
        assert_eq!((s.min, s.max), (1.0, 3.0));
        assert!(Stats::of(&[]).is_none());
        let errors = [4.0, -3.0, 1.0, 0.5, -0.2, 0.1, 0.3, -0.1, 0.2, -0.3];
        let c = Convergence::of(&errors).unwrap();
        assert!((c.first - 3.5).abs() < 1e-12, "{c:?}");
        assert!((c.last - 0.25).abs() < 1e-12, "{c:?}");
    }

    #[test]
    fn percentiles_pick_ranks() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 0.5), Some(50.0));
        assert_eq!(percentile(&d, 0.99), Some(99.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
