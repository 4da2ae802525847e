//! What a simulation does: the validated scenario, its tokens and its injected faults.

use std::fmt;
use std::time::Duration;

use crate::domain::sim::Fault;

/// The tokens a simulation writes with. `Debug` never shows a token.
#[derive(Clone, PartialEq, Eq)]
pub struct SimTokens {
    /// Scanners, metrology and sensors send with this one (role tool or above).
    pub tool: String,
    /// Creates the controller configuration and drafts and releases the spec (engineer or above).
    pub engineer: String,
    /// Approves the spec: specs need four eyes, so another engineer or admin token.
    pub approver: Option<String>,
}

impl fmt::Debug for SimTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimTokens")
            .field("approver", &self.approver.is_some())
            .finish_non_exhaustive()
    }
}

impl SimTokens {
    /// Picks the tokens from `FAB_TOKENS` syntax (`role:token,role:token,…`): the first tool
    /// token (else the lowest role), the first engineer token (else an admin one), and another
    /// engineer or admin token as the approver.
    ///
    /// # Errors
    /// A message naming the entry at fault by position (never its token), or the missing role.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries: Vec<(u8, &str)> = Vec::new();
        for (i, entry) in text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let (role, token) = entry
                .split_once(':')
                .ok_or_else(|| format!("entry {} is not role:token", i + 1))?;
            let rank = match role.trim() {
                "tool" => 0,
                "engineer" => 1,
                "admin" => 2,
                _ => {
                    return Err(format!(
                        "entry {}: role must be tool, engineer or admin",
                        i + 1
                    ));
                }
            };
            entries.push((rank, token.trim()));
        }
        let lowest = entries.iter().min_by_key(|(rank, _)| *rank);
        let tool = lowest
            .map(|(_, t)| (*t).to_owned())
            .ok_or("no token at all")?;
        let mut writers: Vec<(u8, &str)> =
            entries.iter().copied().filter(|(r, _)| *r >= 1).collect();
        writers.sort_by_key(|(rank, _)| *rank);
        let engineer = writers
            .first()
            .map(|(_, t)| (*t).to_owned())
            .ok_or("no engineer or admin token: the configuration and the spec need one")?;
        let approver = writers
            .iter()
            .map(|(_, t)| *t)
            .find(|t| *t != engineer)
            .map(str::to_owned);
        Ok(Self {
            tool,
            engineer,
            approver,
        })
    }

    /// The `FAB_TOKENS=` line of a `tokens.env` file as `fab all` writes it.
    ///
    /// # Errors
    /// When there is no such line, or [`SimTokens::parse`] refuses it.
    pub fn from_env_file(text: &str) -> Result<Self, String> {
        let value = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("FAB_TOKENS="))
            .ok_or("no FAB_TOKENS= line")?;
        Self::parse(value)
    }
}

/// A sensor fault injected into one sensor of one tool (both numbered from 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InjectedFault {
    /// The tool (1-based).
    pub tool: usize,
    /// The sensor of that tool (1-based).
    pub sensor: usize,
    /// The fault; its times are simulated seconds from the start.
    pub fault: Fault,
}

impl InjectedFault {
    /// Parses `KIND@TOOL/SENSOR:FROM[..UNTIL][=VALUE]`: `spike@1/1:100=1.5`,
    /// `shift@1/1:300=0.3`, `drift@1/2:300=0.002` (per second), `stuck@2/1:400..430`,
    /// `gap@2/2:200..210`.
    ///
    /// # Errors
    /// A message saying what is missing or malformed.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad =
            |why: &str| format!("fault {text:?}: {why} (KIND@TOOL/SENSOR:FROM[..UNTIL][=VALUE])");
        let (kind, rest) = text.split_once('@').ok_or_else(|| bad("no @"))?;
        let (target, when) = rest.split_once(':').ok_or_else(|| bad("no :"))?;
        let (tool, sensor) = target
            .split_once('/')
            .ok_or_else(|| bad("no TOOL/SENSOR"))?;
        let tool: usize = tool.parse().map_err(|_| bad("TOOL is not a number"))?;
        let sensor: usize = sensor.parse().map_err(|_| bad("SENSOR is not a number"))?;
        let (span, value) = match when.split_once('=') {
            Some((span, value)) => {
                let value: f64 = value.parse().map_err(|_| bad("VALUE is not a number"))?;
                if !value.is_finite() {
                    return Err(bad("VALUE must be finite"));
                }
                (span, Some(value))
            }
            None => (when, None),
        };
        let (from, until) = match span.split_once("..") {
            Some((from, until)) => (from, Some(until)),
            None => (span, None),
        };
        let from: u64 = from.parse().map_err(|_| bad("FROM is not whole seconds"))?;
        let until = until
            .map(|u| {
                u.parse::<u64>()
                    .map_err(|_| bad("UNTIL is not whole seconds"))
            })
            .transpose()?;
        let need_value = || value.ok_or_else(|| bad("this kind needs =VALUE"));
        let need_until = || {
            until
                .filter(|u| *u > from)
                .ok_or_else(|| bad("this kind needs ..UNTIL after FROM"))
        };
        let fault = match kind {
            "spike" => Fault::Spike {
                at: from,
                magnitude: need_value()?,
            },
            "shift" => Fault::Shift {
                from,
                delta: need_value()?,
            },
            "drift" => Fault::Drift {
                from,
                per_sec: need_value()?,
            },
            "stuck" => Fault::Stuck {
                from,
                until: need_until()?,
            },
            "gap" => Fault::Gap {
                from,
                until: need_until()?,
            },
            _ => return Err(bad("KIND must be spike, shift, drift, stuck or gap")),
        };
        Ok(Self {
            tool,
            sensor,
            fault,
        })
    }
}

/// A step change of the process after maintenance: from lot `at_lot` on (0-based), every
/// tool's CD moves by `delta` nm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Maintenance {
    /// The first lot after the maintenance.
    pub at_lot: u64,
    /// The step (nm).
    pub delta: f64,
}

/// A simulation: what runs against which fab. Build it with [`Scenario::new`] and change the
/// fields; [`super::run`] validates it and reports every problem at once.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The fab's base URL (`http://host:port`).
    pub url: String,
    /// The tokens to write with.
    pub tokens: SimTokens,
    /// Scanners, one controller thread each, named `<tool_prefix>-01`, `-02`, …: a new prefix
    /// starts new threads and FDC monitors; reusing one continues them.
    pub tool_prefix: String,
    /// Scanners, one controller thread each.
    pub tools: usize,
    /// Lots per thread.
    pub lots: u32,
    /// Simulated time between two lots on a scanner.
    pub lot_interval: Duration,
    /// Metrology measures 1 lot in this many.
    pub metrology_every: u32,
    /// A measured lot's result reaches the APC this many lots later.
    pub metrology_delay: u32,
    /// Temperature sensors per tool (1 Hz simulated).
    pub sensors: usize,
    /// Simulated seconds of samples per batch request.
    pub batch: Duration,
    /// Simulated seconds per wall-clock second.
    pub speed: f64,
    /// Simulated time the sensors report; `None`: `lots × lot_interval`.
    pub duration: Option<Duration>,
    /// Sensor faults.
    pub faults: Vec<InjectedFault>,
    /// How far the process sits from the controller's model at the start (nm).
    pub offset: f64,
    /// Tool wear: the process's drift per run (nm).
    pub drift: f64,
    /// σ of the process noise (nm).
    pub noise: f64,
    /// A maintenance step change, if any.
    pub maintenance: Option<Maintenance>,
    /// Seed of every generator.
    pub seed: u64,
    /// The most requests in flight at once.
    pub in_flight: usize,
    /// A request taking longer fails (and is counted).
    pub request_timeout: Duration,
}

impl Scenario {
    /// Two scanners of 40 lots a minute apart, metrology on 1 lot in 2 a lot late, two
    /// sensors each, 10 s batches, 120× faster than real time, a process 4 nm off its model,
    /// no faults, seed 1.
    #[must_use]
    pub fn new(url: impl Into<String>, tokens: SimTokens) -> Self {
        Self {
            url: url.into(),
            tokens,
            tool_prefix: "sim-scanner".to_owned(),
            tools: 2,
            lots: 40,
            lot_interval: Duration::from_secs(60),
            metrology_every: 2,
            metrology_delay: 1,
            sensors: 2,
            batch: Duration::from_secs(10),
            speed: 120.0,
            duration: None,
            faults: Vec::new(),
            offset: 4.0,
            drift: 0.0,
            noise: 0.5,
            maintenance: None,
            seed: 1,
            in_flight: 8,
            request_timeout: Duration::from_secs(10),
        }
    }

    /// The name of tool `i` (1-based).
    #[must_use]
    pub fn tool_name(&self, i: usize) -> String {
        format!("{}-{i:02}", self.tool_prefix)
    }

    /// The simulated time the sensors report.
    #[must_use]
    pub fn sensor_duration(&self) -> Duration {
        self.duration
            .unwrap_or_else(|| self.lot_interval.saturating_mul(self.lots))
    }

    /// Every problem of the scenario, each naming its option.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |ok: bool, text: &str| {
            if !ok {
                out.push(text.to_owned());
            }
        };
        let url_ok = self
            .url
            .strip_prefix("http://")
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
            && format!("{}/v1", self.url).parse::<hyper::Uri>().is_ok();
        check(url_ok, "--url (FAB_URL) must be http://host:port (no path)");
        check((1..=100).contains(&self.tools), "--tools must be 1 to 100");
        check(
            crate::domain::name::Name::parse("tool", self.tool_name(100)).is_ok(),
            "--tool-prefix must be 1 to 60 letters, digits, '.', '_' or '-'",
        );
        check(self.lots >= 1, "--lots must be at least 1");
        check(
            self.lot_interval >= Duration::from_secs(1),
            "--lot-interval must be at least 1s",
        );
        check(
            self.metrology_every >= 1,
            "--metrology-every must be at least 1",
        );
        check(self.sensors <= 20, "--sensors must be 0 to 20");
        check(
            self.batch >= Duration::from_secs(1) && self.batch <= Duration::from_secs(3600),
            "--batch must be 1s to 1h",
        );
        check(
            self.speed.is_finite() && self.speed > 0.0,
            "--speed must be a positive number",
        );
        check(
            self.sensor_duration() <= Duration::from_secs(7 * 24 * 3600),
            "--duration must be at most a week",
        );
        check(
            self.offset.is_finite() && self.offset.abs() <= 20.0,
            "--offset must be within ±20 nm",
        );
        check(
            self.drift.is_finite() && self.drift.abs() <= 1.0,
            "--drift must be within ±1 nm per run",
        );
        check(
            self.noise.is_finite() && (0.0..=5.0).contains(&self.noise),
            "--noise must be 0 to 5 nm",
        );
        if let Some(m) = self.maintenance {
            check(
                m.delta.is_finite() && m.delta.abs() <= 20.0,
                "--maintenance step must be within ±20 nm",
            );
        }
        check(self.in_flight >= 1, "--in-flight must be at least 1");
        check(
            self.request_timeout > Duration::ZERO,
            "--request-timeout must be positive",
        );
        check(
            self.tokens.approver.is_some(),
            "the tokens need a second engineer or admin token: a spec is approved by someone other than its author",
        );
        for f in &self.faults {
            if f.tool == 0 || f.tool > self.tools || f.sensor == 0 || f.sensor > self.sensors {
                out.push(format!(
                    "--fault on tool {} sensor {}: there are {} tools with {} sensors (numbered from 1)",
                    f.tool, f.sensor, self.tools, self.sensors
                ));
            }
        }
        out
    }
}

/// Parses a duration such as `500ms`, `10s`, `2m` or `1h` (a bare number is seconds).
///
/// # Errors
/// A message saying what is expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms, 10s, 2m or 1h"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("{text:?}: the unit must be ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_pick_a_tool_an_engineer_and_another_approver() {
        let t = SimTokens::parse("engineer:eeeeeeee1, tool:tttttttt1, admin:aaaaaaaa1").unwrap();
        assert_eq!(t.tool, "tttttttt1");
        assert_eq!(t.engineer, "eeeeeeee1");
        assert_eq!(t.approver.as_deref(), Some("aaaaaaaa1"));
        let t = SimTokens::parse("tool:tttttttt1,engineer:eeeeeeee1").unwrap();
        assert_eq!(t.approver, None);
        assert!(SimTokens::parse("tool:tttttttt1").is_err());
        assert!(SimTokens::parse("boss:tttttttt1").is_err());
        assert!(!format!("{t:?}").contains("eeee"));
        let file = "# generated\nFAB_TOKENS=tool:t1t1t1t1,engineer:e1e1e1e1,admin:a1a1a1a1\n";
        let t = SimTokens::from_env_file(file).unwrap();
        assert_eq!(t.approver.as_deref(), Some("a1a1a1a1"));
    }

    #[test]
    fn faults_parse_each_kind_and_refuse_nonsense() {
        let f = InjectedFault::parse("shift@1/2:300=0.3").unwrap();
        assert_eq!((f.tool, f.sensor), (1, 2));
        assert_eq!(
            f.fault,
            Fault::Shift {
                from: 300,
                delta: 0.3
            }
        );
        assert_eq!(
            InjectedFault::parse("gap@2/1:200..210").unwrap().fault,
            Fault::Gap {
                from: 200,
                until: 210
            }
        );
        assert_eq!(
            InjectedFault::parse("stuck@1/1:5..9").unwrap().fault,
            Fault::Stuck { from: 5, until: 9 }
        );
        assert!(InjectedFault::parse("shift@1/1:300").is_err());
        assert!(InjectedFault::parse("gap@1/1:20..10").is_err());
        assert!(InjectedFault::parse("melt@1/1:3=1").is_err());
        assert!(InjectedFault::parse("spike@x/1:3=1").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("2 days").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let tokens = SimTokens::parse("tool:tttttttt1,engineer:eeeeeeee1").unwrap();
        let mut s = Scenario::new("https://fab.example/x", tokens);
        s.tools = 0;
        s.speed = f64::NAN;
        let problems = s.problems();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("--url"));
    }
}
