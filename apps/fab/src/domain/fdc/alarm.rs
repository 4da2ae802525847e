//! Alarms: what was detected, under which limits version, how severe; acknowledgement; and the
//! tool inhibit (no new lots dispatched) that critical alarms hold until acknowledged.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::fdc::classify::FaultClass;
use crate::domain::fdc::limits::{LimitsVersion, Side};
use crate::domain::fdc::rules::Rule;
use crate::domain::name::Name;
use crate::domain::time::{Timestamp, millis};

/// An alarm's id (allocated by the caller).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct AlarmId(pub u64);

impl fmt::Display for AlarmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "alarm {}", self.0)
    }
}

/// What triggered a detection.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Cause {
    /// The value left the spec limits.
    SpecLimit {
        /// Which side.
        side: Side,
    },
    /// The value left the control limits μ ± 3σ.
    ControlLimit {
        /// Which side.
        side: Side,
    },
    /// A run rule fired.
    Rule {
        /// The rule.
        rule: Rule,
    },
    /// A significant ramp over the recent history.
    Trend {
        /// Its slope, in the parameter's unit per sample.
        per_sample: f64,
    },
    /// The same reading repeated.
    Stuck {
        /// How many times.
        samples: u32,
    },
    /// A NaN, infinite or impossible reading.
    InvalidReading,
    /// No samples.
    Gap {
        /// How long (so far).
        #[serde(with = "millis")]
        #[schema(value_type = u64)]
        length: Duration,
    },
}

/// How bad it is.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Look at it; production goes on.
    Warning,
    /// The tool is inhibited until the alarm is acknowledged.
    Critical,
}

impl Cause {
    /// The severity of a detection with this cause: leaving the spec, or losing sight of the
    /// tool (failed, stuck or silent sensor), is critical; statistical signals are warnings.
    #[must_use]
    pub fn severity(&self) -> Severity {
        match self {
            Cause::SpecLimit { .. }
            | Cause::Stuck { .. }
            | Cause::InvalidReading
            | Cause::Gap { .. } => Severity::Critical,
            Cause::ControlLimit { .. } | Cause::Rule { .. } | Cause::Trend { .. } => {
                Severity::Warning
            }
        }
    }
}

/// A detection, before it becomes an alarm with an id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Detection {
    /// The tool.
    pub tool: Name,
    /// The parameter.
    pub parameter: Name,
    /// What triggered it.
    pub cause: Cause,
    /// Its class.
    pub class: FaultClass,
    /// Its severity.
    pub severity: Severity,
    /// The limits version in force.
    pub limits_version: LimitsVersion,
    /// When (the sample's time, or the check's for a gap).
    pub at: Timestamp,
    /// The reading, if there was one (NaN for a failed sensor is kept as `None`).
    pub value: Option<f64>,
}

/// An acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ack {
    /// Who.
    pub by: Name,
    /// When.
    pub at: Timestamp,
    /// What they found or did.
    pub note: String,
}

/// A raised alarm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alarm {
    /// Its id.
    pub id: AlarmId,
    /// What was detected.
    pub detection: Detection,
    /// The acknowledgement, once given.
    pub ack: Option<Ack>,
}

/// An alarm operation that does not apply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlarmError {
    /// Acknowledging twice.
    #[error("{id} was already acknowledged by {by}")]
    AlreadyAcknowledged {
        /// The alarm.
        id: AlarmId,
        /// Who acknowledged it.
        by: Name,
    },
    /// An acknowledgement without a note.
    #[error("note must be 1 to 500 characters without control characters")]
    BadNote,
}

impl Alarm {
    /// Raises `detection` as alarm `id`.
    #[must_use]
    pub fn raise(id: AlarmId, detection: Detection) -> Self {
        Self {
            id,
            detection,
            ack: None,
        }
    }

    /// Acknowledges the alarm.
    ///
    /// # Errors
    /// [`AlarmError`] when already acknowledged or the note is empty, too long or has control
    /// characters.
    pub fn acknowledge(&mut self, by: Name, note: &str, at: Timestamp) -> Result<(), AlarmError> {
        if let Some(ack) = &self.ack {
            return Err(AlarmError::AlreadyAcknowledged {
                id: self.id,
                by: ack.by.clone(),
            });
        }
        let note = note.trim();
        if note.is_empty() || note.chars().count() > 500 || note.chars().any(char::is_control) {
            return Err(AlarmError::BadNote);
        }
        self.ack = Some(Ack {
            by,
            at,
            note: note.to_owned(),
        });
        Ok(())
    }

    /// Whether this alarm holds its tool inhibited: critical and not yet acknowledged.
    #[must_use]
    pub fn inhibits(&self) -> bool {
        self.detection.severity == Severity::Critical && self.ack.is_none()
    }
}

/// A tool's dispatch state: inhibited while any critical alarm on it is unacknowledged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ToolInhibit {
    holding: BTreeSet<AlarmId>,
}

impl ToolInhibit {
    /// Takes account of `alarm` (raised or acknowledged).
    pub fn update(&mut self, alarm: &Alarm) {
        if alarm.inhibits() {
            self.holding.insert(alarm.id);
        } else {
            self.holding.remove(&alarm.id);
        }
    }

    /// Whether no new lots may be dispatched to the tool.
    #[must_use]
    pub fn is_inhibited(&self) -> bool {
        !self.holding.is_empty()
    }

    /// The alarms holding the inhibit.
    pub fn holding(&self) -> impl Iterator<Item = AlarmId> + '_ {
        self.holding.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detection(cause: Cause) -> Detection {
        Detection {
            tool: Name::parse("tool", "etch-3").unwrap(),
            parameter: Name::parse("parameter", "chuck-temp").unwrap(),
            severity: cause.severity(),
            cause,
            class: FaultClass::Excursion,
            limits_version: LimitsVersion(4),
            at: Timestamp::from_secs(10),
            value: Some(30.0),
        }
    }

    #[test]
    fn a_critical_alarm_inhibits_the_tool_until_acknowledged() {
        let mut inhibit = ToolInhibit::default();
        let mut spec = Alarm::raise(AlarmId(1), detection(Cause::SpecLimit { side: Side::High }));
        let warn = Alarm::raise(
            AlarmId(2),
            detection(Cause::Rule {
                rule: Rule::EightOnOneSide,
            }),
        );
        inhibit.update(&warn);
        assert!(!inhibit.is_inhibited(), "warnings do not inhibit");
        inhibit.update(&spec);
        assert!(inhibit.is_inhibited());
        assert_eq!(inhibit.holding().collect::<Vec<_>>(), vec![AlarmId(1)]);
        let by = Name::parse("by", "eng-ada").unwrap();
        assert_eq!(
            spec.acknowledge(by.clone(), "  ", Timestamp::from_secs(11)),
            Err(AlarmError::BadNote)
        );
        spec.acknowledge(
            by.clone(),
            "heater relay replaced",
            Timestamp::from_secs(12),
        )
        .unwrap();
        inhibit.update(&spec);
        assert!(!inhibit.is_inhibited());
        assert!(matches!(
            spec.acknowledge(by, "again", Timestamp::from_secs(13)),
            Err(AlarmError::AlreadyAcknowledged { .. })
        ));
        // The alarm keeps the limits version it was raised under.
        assert_eq!(spec.detection.limits_version, LimitsVersion(4));
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<Alarm>(&json).unwrap(), spec);
    }
}
