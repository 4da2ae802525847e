//! A controller thread: its state is the fold of its events, each a versioned transition.
//!
//! Every change is a [`ThreadEvent`] applied with [`Thread::apply`]; the result is a
//! [`Transition`] (event, versions, controller state before and after) for the caller to persist.
//! Replaying the persisted events with [`Thread::from_events`] rebuilds the same thread, so the
//! thread is what its history says, nothing else.
//!
//! **Optimistic concurrency.** Each transition moves the version from `n` to `n + 1`; a store
//! accepts it only if the stored version is still `n` ([`Thread::apply_expecting`] checks the
//! same in memory), so scaled-out services serialise updates per thread without locks.
//!
//! **Epochs and pilot runs.** A new thread, a reset, a tool maintenance, a model-gain change or
//! a long idle time starts a new *epoch* that needs a pilot run: the first measurement of a run
//! made while the pilot was pending re-initialises the controller (no outlier gate). So do too
//! many outliers in a row. Measurements of runs from an earlier epoch are recorded but never
//! fold into the state. A new (or idle) thread may instead be seeded from a parent context's
//! state.
//!
//! **Metrology.** Folded with the sub recipe *applied* to its run (late metrology is normal),
//! idempotent by measurement id; invalidating a measurement replays the epoch from its history
//! without it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::apc::context::{LotContext, ThreadKey};
use crate::domain::apc::controller::{ConfigVersion, ControllerConfig, ControllerState, Gate};
use crate::domain::name::Name;
use crate::domain::time::Timestamp;

/// The version of a thread's state; every transition adds one.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
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
pub struct StateVersion(pub u64);

impl fmt::Display for StateVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a thread needs a pilot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PilotReason {
    /// The thread has never been measured.
    New,
    /// No run for longer than the configuration's idle limit.
    Idle,
    /// The tool had maintenance.
    Maintenance,
    /// An engineer reset the thread.
    Reset,
    /// The model gain changed with a new configuration.
    Reconfigured,
    /// Too many outliers in a row: the process moved.
    Outliers,
}

/// How the sub recipe of a run was produced (the audit part of a run record).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ModeRecord {
    /// `SR = a + b·F(n) + c·F2(n)` with these terms.
    Formula {
        /// F(n), from the product strategy (mJ/cm²).
        feedback: f64,
        /// F2(n), from the technology strategy (mJ/cm²).
        technology_offset: f64,
    },
    /// Set by hand by an engineer.
    Recommend {
        /// Who.
        engineer: Name,
        /// Why.
        reason: String,
    },
    /// Reused from a previous run of the thread.
    Feedforward {
        /// The run whose SR was reused.
        from_run: Name,
    },
}

/// Whether the step clamp changed the sub recipe.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum StepCheck {
    /// The first run of the epoch: no previous SR to step from.
    First,
    /// Within the per-run step limit.
    Within,
    /// Clamped to the per-run step limit.
    Clamped {
        /// The SR before clamping.
        requested: f64,
    },
}

/// The durable record of one run (an exposure of a lot).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunRecord {
    /// The run's id (allocated by the caller).
    pub run: Name,
    /// The lot and its context.
    pub lot: LotContext,
    /// How the SR was produced.
    pub mode: ModeRecord,
    /// The SR the generator produced (mJ/cm²).
    pub computed_sr: f64,
    /// The SR sent to the tool, after the step clamp (mJ/cm²).
    pub applied_sr: f64,
    /// The SR the tool reported it applied, when it reported one (mJ/cm²).
    #[serde(default)]
    pub reported_sr: Option<f64>,
    /// What the step clamp did.
    pub step: StepCheck,
    /// Set when this run is (one of) the pilot runs of its epoch.
    pub pilot: Option<PilotReason>,
    /// The controller configuration used.
    pub config_version: ConfigVersion,
    /// The thread version the SR was computed from.
    pub state_version: StateVersion,
    /// The version of the spec limits the SR was checked against.
    pub spec_version: u32,
    /// The thread's epoch when it ran.
    pub epoch: u32,
    /// When it was logged.
    pub at: Timestamp,
}

impl RunRecord {
    /// The SR the run really had: the tool's report, or else what was sent.
    #[must_use]
    pub fn effective_sr(&self) -> f64 {
        self.reported_sr.unwrap_or(self.applied_sr)
    }
}

/// A metrology result for a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Measurement {
    /// Unique id from the metrology tool: a second delivery with the same id is a no-op.
    pub id: Name,
    /// The run measured.
    pub run: Name,
    /// The measured output (nm).
    pub value: f64,
    /// When it was measured.
    pub at: Timestamp,
}

/// What became of a measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Folded into the state.
    Accepted,
    /// Beyond the outlier gate: recorded only.
    Outlier,
    /// A pilot run's: re-initialised the state.
    Pilot,
    /// The thread was frozen: recorded only.
    Frozen,
    /// Of a run from an earlier epoch: recorded only.
    PreviousEpoch,
    /// Of a non-pilot run while the thread waits for a pilot measurement: recorded only.
    AwaitingPilot,
    /// Invalidated by an engineer: ignored from then on.
    Invalidated,
}

/// A measurement as the thread keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MeasurementRecord {
    /// The measurement.
    pub measurement: Measurement,
    /// The SR its run really had ([`RunRecord::effective_sr`], looked up by run id, never the
    /// current SR).
    pub applied_sr: f64,
    /// The epoch of its run.
    pub epoch: u32,
    /// What became of it.
    pub disposition: Disposition,
    /// Its forecast error when it went through the gate (nm).
    pub forecast_error: Option<f64>,
}

/// Who froze a thread, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Freeze {
    /// Who.
    pub by: Name,
    /// Why.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// Everything that can happen to a thread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ThreadEvent {
    /// The thread came to be, with its first configuration; it needs a pilot run.
    Created {
        /// Its key.
        key: ThreadKey,
        /// Its configuration.
        config: ControllerConfig,
        /// When.
        at: Timestamp,
    },
    /// A new or idle thread starts from a parent context's state instead of a pilot run.
    Seeded {
        /// The parent thread.
        parent: ThreadKey,
        /// Its state.
        state: ControllerState,
        /// When.
        at: Timestamp,
    },
    /// A run was made.
    RunLogged(RunRecord),
    /// The tool reported the SR it applied to a run (it may differ from the one sent: tool
    /// resolution, an operator's change). Measurements of the run already folded in are
    /// replayed with it.
    SrReported {
        /// The run.
        run: Name,
        /// The SR applied (mJ/cm²).
        sr: f64,
        /// When reported.
        at: Timestamp,
    },
    /// A metrology result arrived.
    Measured(Measurement),
    /// A measurement was found wrong: the epoch is replayed without it.
    Invalidated {
        /// The measurement.
        measurement: Name,
        /// Who.
        by: Name,
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// The controller stops updating (SRs still come from the frozen state).
    Frozen(Freeze),
    /// The controller updates again.
    Unfrozen {
        /// Who.
        by: Name,
        /// When.
        at: Timestamp,
    },
    /// Back to the configuration's initial state; needs a pilot run.
    Reset {
        /// Who.
        by: Name,
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// The tool had maintenance; needs a pilot run.
    Maintained {
        /// When.
        at: Timestamp,
    },
    /// A new configuration version; a model-gain change needs a pilot run.
    Reconfigured {
        /// The new configuration.
        config: ControllerConfig,
        /// When.
        at: Timestamp,
    },
}

/// One applied event: what the store persists (before/after make every state change auditable).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transition {
    /// The thread.
    pub key: ThreadKey,
    /// The version before.
    pub from: StateVersion,
    /// The version after (`from + 1`).
    pub to: StateVersion,
    /// The event.
    pub event: ThreadEvent,
    /// The controller state before.
    pub before: ControllerState,
    /// The controller state after.
    pub after: ControllerState,
    /// For a measurement: what became of it.
    pub disposition: Option<Disposition>,
}

/// An event that cannot be applied; the thread is unchanged.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ThreadError {
    /// The first event of a history must be `Created`, and only the first.
    #[error("a thread's history must start with one created event")]
    NotCreated,
    /// The event belongs to another thread.
    #[error("event for thread {got} applied to thread {expected}")]
    WrongThread {
        /// This thread.
        expected: Box<ThreadKey>,
        /// The event's.
        got: Box<ThreadKey>,
    },
    /// The thread moved on since the caller read it.
    #[error("thread version conflict: expected {expected}, is {actual}")]
    VersionConflict {
        /// The version the caller read.
        expected: StateVersion,
        /// The version now.
        actual: StateVersion,
    },
    /// A run id used twice with different contents.
    #[error("run {0} is already logged")]
    DuplicateRun(Name),
    /// A measurement of a run this thread never logged.
    #[error("measurement for unknown run {0}")]
    UnknownRun(Name),
    /// A second applied-SR report for a run, with another value.
    #[error("run {0} already has another applied SR reported")]
    ConflictingReport(Name),
    /// A measurement id reused for a different measurement.
    #[error("measurement {0} was already received with other contents")]
    ConflictingMeasurement(Name),
    /// Invalidation of a measurement this thread never received.
    #[error("unknown measurement {0}")]
    UnknownMeasurement(Name),
    /// A number is NaN or infinite.
    #[error("{field} must be a finite number, got {value}")]
    NonFinite {
        /// The field.
        field: &'static str,
        /// The value.
        value: f64,
    },
    /// A run record from another epoch or computed from another configuration.
    #[error("run record is stale: {0}")]
    StaleRecord(&'static str),
    /// Freezing a frozen thread.
    #[error("thread is already frozen")]
    AlreadyFrozen,
    /// Unfreezing a thread that is not frozen.
    #[error("thread is not frozen")]
    NotFrozen,
    /// Seeding a thread that neither is new nor idle.
    #[error("only a new or idle thread can be seeded from a parent")]
    SeedNotAllowed,
    /// A configuration that is not newer than the current one.
    #[error("config {got} is not newer than the current {current}")]
    StaleConfig {
        /// The current version.
        current: ConfigVersion,
        /// The version offered.
        got: ConfigVersion,
    },
}

/// One controller thread: configuration, controller state, runs, measurements and flags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Thread {
    key: ThreadKey,
    config: ControllerConfig,
    version: StateVersion,
    controller: ControllerState,
    epoch: u32,
    epoch_start: ControllerState,
    epoch_pilot: Option<PilotReason>,
    pending_pilot: Option<PilotReason>,
    frozen: Option<Freeze>,
    last_activity: Timestamp,
    last_run: Option<Name>,
    runs: BTreeMap<Name, RunRecord>,
    measurements: Vec<MeasurementRecord>,
}

impl Thread {
    /// A new thread, and the transition that creates it (version 0 → 1).
    #[must_use]
    pub fn create(key: ThreadKey, config: ControllerConfig, at: Timestamp) -> (Self, Transition) {
        let initial = ControllerState::initial(&config);
        let thread = Self {
            key: key.clone(),
            config: config.clone(),
            version: StateVersion(1),
            controller: initial,
            epoch: 0,
            epoch_start: initial,
            epoch_pilot: Some(PilotReason::New),
            pending_pilot: Some(PilotReason::New),
            frozen: None,
            last_activity: at,
            last_run: None,
            runs: BTreeMap::new(),
            measurements: Vec::new(),
        };
        let t = Transition {
            key: key.clone(),
            from: StateVersion(0),
            to: StateVersion(1),
            event: ThreadEvent::Created { key, config, at },
            before: initial,
            after: initial,
            disposition: None,
        };
        (thread, t)
    }

    /// Rebuilds a thread by folding its history.
    ///
    /// # Errors
    /// [`ThreadError`] when the history does not start with `Created` or an event does not apply.
    pub fn from_events<'a>(
        events: impl IntoIterator<Item = &'a ThreadEvent>,
    ) -> Result<Self, ThreadError> {
        let mut events = events.into_iter();
        let Some(ThreadEvent::Created { key, config, at }) = events.next() else {
            return Err(ThreadError::NotCreated);
        };
        let (mut thread, _) = Self::create(key.clone(), config.clone(), *at);
        for e in events {
            thread.apply(e.clone())?;
        }
        Ok(thread)
    }

    /// Applies `event` only if the thread is still at version `expected`.
    ///
    /// # Errors
    /// [`ThreadError::VersionConflict`] when it moved on, or as [`Thread::apply`].
    pub fn apply_expecting(
        &mut self,
        expected: StateVersion,
        event: ThreadEvent,
    ) -> Result<Option<Transition>, ThreadError> {
        if expected != self.version {
            return Err(ThreadError::VersionConflict {
                expected,
                actual: self.version,
            });
        }
        self.apply(event)
    }

    /// Applies `event`: `Ok(Some(transition))` to persist, `Ok(None)` when it changes nothing
    /// (a repeated measurement or run record, an invalidation already made).
    ///
    /// # Errors
    /// [`ThreadError`] when the event cannot apply; the thread is then unchanged.
    pub fn apply(&mut self, event: ThreadEvent) -> Result<Option<Transition>, ThreadError> {
        let before = self.controller;
        let from = self.version;
        let disposition = match &event {
            ThreadEvent::Created { .. } => return Err(ThreadError::NotCreated),
            ThreadEvent::Seeded {
                parent: _,
                state,
                at,
            } => {
                self.seed(*state, *at)?;
                None
            }
            ThreadEvent::RunLogged(record) => {
                if !self.log_run(record)? {
                    return Ok(None);
                }
                None
            }
            ThreadEvent::SrReported { run, sr, .. } => {
                if !self.report_sr(run, *sr)? {
                    return Ok(None);
                }
                None
            }
            ThreadEvent::Measured(m) => match self.measure(m)? {
                Some(d) => Some(d),
                None => return Ok(None),
            },
            ThreadEvent::Invalidated { measurement, .. } => {
                if !self.invalidate(measurement)? {
                    return Ok(None);
                }
                None
            }
            ThreadEvent::Frozen(freeze) => {
                if self.frozen.is_some() {
                    return Err(ThreadError::AlreadyFrozen);
                }
                self.frozen = Some(freeze.clone());
                None
            }
            ThreadEvent::Unfrozen { .. } => {
                if self.frozen.take().is_none() {
                    return Err(ThreadError::NotFrozen);
                }
                None
            }
            ThreadEvent::Reset { at, .. } => {
                let initial = ControllerState::initial(&self.config);
                self.new_epoch(initial, Some(PilotReason::Reset), *at);
                None
            }
            ThreadEvent::Maintained { at } => {
                self.new_epoch(self.controller, Some(PilotReason::Maintenance), *at);
                None
            }
            ThreadEvent::Reconfigured { config, at } => {
                if config.version() <= self.config.version() {
                    return Err(ThreadError::StaleConfig {
                        current: self.config.version(),
                        got: config.version(),
                    });
                }
                #[allow(clippy::float_cmp)] // an exact change of a configured number
                let pilot = (config.params().model_gain != self.config.params().model_gain)
                    .then_some(PilotReason::Reconfigured);
                self.config = config.clone();
                self.new_epoch(self.controller, pilot, *at);
                None
            }
        };
        self.version = StateVersion(from.0 + 1);
        Ok(Some(Transition {
            key: self.key.clone(),
            from,
            to: self.version,
            event,
            before,
            after: self.controller,
            disposition,
        }))
    }

    fn new_epoch(&mut self, start: ControllerState, pilot: Option<PilotReason>, at: Timestamp) {
        self.epoch = self.epoch.saturating_add(1);
        self.controller = start;
        self.epoch_start = start;
        self.epoch_pilot = pilot;
        self.pending_pilot = pilot;
        self.last_activity = at;
        self.last_run = None;
    }

    fn seed(&mut self, state: ControllerState, at: Timestamp) -> Result<(), ThreadError> {
        if state.sigma.is_nan() || state.sigma <= 0.0 {
            return Err(ThreadError::NonFinite {
                field: "state.sigma",
                value: state.sigma,
            });
        }
        for (field, value) in [
            ("state.offset", state.offset),
            ("state.drift", state.drift),
            ("state.sigma", state.sigma),
        ] {
            if !value.is_finite() {
                return Err(ThreadError::NonFinite { field, value });
            }
        }
        match self.pilot_requirement(at) {
            Some(PilotReason::New | PilotReason::Idle) => {}
            _ => return Err(ThreadError::SeedNotAllowed),
        }
        let mut state = state;
        state.consecutive_outliers = 0;
        self.new_epoch(state, None, at);
        Ok(())
    }

    /// Returns whether the record was new.
    fn log_run(&mut self, record: &RunRecord) -> Result<bool, ThreadError> {
        if record.lot.thread != self.key {
            return Err(ThreadError::WrongThread {
                expected: Box::new(self.key.clone()),
                got: Box::new(record.lot.thread.clone()),
            });
        }
        if let Some(existing) = self.runs.get(&record.run) {
            return if existing == record {
                Ok(false)
            } else {
                Err(ThreadError::DuplicateRun(record.run.clone()))
            };
        }
        for (field, value) in [
            ("computed_sr", record.computed_sr),
            ("applied_sr", record.applied_sr),
            ("reported_sr", record.reported_sr.unwrap_or(0.0)),
        ] {
            if !value.is_finite() {
                return Err(ThreadError::NonFinite { field, value });
            }
        }
        if record.state_version != self.version {
            return Err(ThreadError::VersionConflict {
                expected: record.state_version,
                actual: self.version,
            });
        }
        if record.config_version != self.config.version() {
            return Err(ThreadError::StaleRecord(
                "computed with another controller config",
            ));
        }
        if record.epoch != self.epoch_for_run(record.at) {
            return Err(ThreadError::StaleRecord("made in another epoch"));
        }
        // A run after a long idle time opens a new epoch that needs a pilot.
        if record.epoch != self.epoch {
            self.new_epoch(self.controller, Some(PilotReason::Idle), record.at);
        }
        self.last_activity = self.last_activity.max(record.at);
        self.last_run = Some(record.run.clone());
        self.runs.insert(record.run.clone(), record.clone());
        Ok(true)
    }

    /// Returns whether anything changed.
    fn report_sr(&mut self, run: &Name, sr: f64) -> Result<bool, ThreadError> {
        if !sr.is_finite() {
            return Err(ThreadError::NonFinite {
                field: "sr",
                value: sr,
            });
        }
        let record = self
            .runs
            .get_mut(run)
            .ok_or_else(|| ThreadError::UnknownRun(run.clone()))?;
        match record.reported_sr {
            Some(r) if r.to_bits() == sr.to_bits() => return Ok(false),
            Some(_) => return Err(ThreadError::ConflictingReport(run.clone())),
            None => record.reported_sr = Some(sr),
        }
        let mut folded = false;
        for m in self
            .measurements
            .iter_mut()
            .filter(|m| &m.measurement.run == run)
        {
            m.applied_sr = sr;
            folded |= m.epoch == self.epoch;
        }
        if folded {
            self.replay_epoch();
        }
        Ok(true)
    }

    /// Returns the disposition, or `None` for a repeated delivery.
    fn measure(&mut self, m: &Measurement) -> Result<Option<Disposition>, ThreadError> {
        if let Some(existing) = self.measurements.iter().find(|r| r.measurement.id == m.id) {
            #[allow(clippy::float_cmp)] // the same delivery carries the same bits
            let same = existing.measurement.run == m.run
                && existing.measurement.value.to_bits() == m.value.to_bits();
            return if same {
                Ok(None)
            } else {
                Err(ThreadError::ConflictingMeasurement(m.id.clone()))
            };
        }
        if !m.value.is_finite() {
            return Err(ThreadError::NonFinite {
                field: "value",
                value: m.value,
            });
        }
        let Some(run) = self.runs.get(&m.run) else {
            return Err(ThreadError::UnknownRun(m.run.clone()));
        };
        let mut record = MeasurementRecord {
            measurement: m.clone(),
            applied_sr: run.effective_sr(),
            epoch: run.epoch,
            disposition: Disposition::Accepted,
            forecast_error: None,
        };
        self.fold(&mut record);
        let d = record.disposition;
        self.measurements.push(record);
        Ok(Some(d))
    }

    /// Folds one measurement into the controller, setting its disposition.
    fn fold(&mut self, record: &mut MeasurementRecord) {
        if record.epoch != self.epoch {
            record.disposition = Disposition::PreviousEpoch;
            return;
        }
        if self.frozen.is_some() {
            record.disposition = Disposition::Frozen;
            return;
        }
        let u = record.applied_sr;
        let y = record.measurement.value;
        let pilot_run = self
            .runs
            .get(&record.measurement.run)
            .is_some_and(|r| r.pilot.is_some());
        if self.pending_pilot.is_some() {
            if !pilot_run {
                record.disposition = Disposition::AwaitingPilot;
                return;
            }
            // Finite inputs were checked before; a failure leaves the state as it is.
            if let Ok(state) = self.controller.from_pilot(&self.config, u, y) {
                record.forecast_error = Some(y - self.controller.forecast(&self.config, u));
                self.controller = state;
                self.pending_pilot = None;
                record.disposition = Disposition::Pilot;
            }
            return;
        }
        if let Ok(update) = self.controller.update(&self.config, u, y) {
            record.forecast_error = Some(update.forecast_error);
            self.controller = update.state;
            record.disposition = match update.gate {
                Gate::Accepted => Disposition::Accepted,
                Gate::Outlier => {
                    if update.state.consecutive_outliers
                        >= self.config.params().max_consecutive_outliers
                    {
                        self.pending_pilot = Some(PilotReason::Outliers);
                    }
                    Disposition::Outlier
                }
            };
        }
    }

    /// Returns whether anything changed.
    fn invalidate(&mut self, id: &Name) -> Result<bool, ThreadError> {
        let Some(idx) = self
            .measurements
            .iter()
            .position(|r| &r.measurement.id == id)
        else {
            return Err(ThreadError::UnknownMeasurement(id.clone()));
        };
        if self.measurements[idx].disposition == Disposition::Invalidated {
            return Ok(false);
        }
        self.measurements[idx].disposition = Disposition::Invalidated;
        self.replay_epoch();
        Ok(true)
    }

    /// Replays the current epoch's measurements from its start state, skipping invalidated ones
    /// and keeping those recorded while frozen out, as they were.
    fn replay_epoch(&mut self) {
        self.controller = self.epoch_start;
        self.pending_pilot = self.epoch_pilot;
        let frozen = self.frozen.take();
        let mut records = std::mem::take(&mut self.measurements);
        let epoch = self.epoch;
        for r in records.iter_mut().filter(|r| r.epoch == epoch) {
            match r.disposition {
                Disposition::Invalidated | Disposition::Frozen => {}
                _ => self.fold(r),
            }
        }
        self.measurements = records;
        self.frozen = frozen;
    }

    /// Whether the next run must be a pilot run at `now`, and why.
    #[must_use]
    pub fn pilot_requirement(&self, now: Timestamp) -> Option<PilotReason> {
        self.pending_pilot.or_else(|| {
            (now.saturating_since(self.last_activity) > self.config.params().idle_limit)
                .then_some(PilotReason::Idle)
        })
    }

    /// The epoch a run made at `at` belongs to: the current one, or the next when the thread
    /// has been idle too long (that run opens it, as a pilot).
    #[must_use]
    pub fn epoch_for_run(&self, at: Timestamp) -> u32 {
        if self.pending_pilot.is_none() && self.pilot_requirement(at) == Some(PilotReason::Idle) {
            self.epoch.saturating_add(1)
        } else {
            self.epoch
        }
    }

    /// The thread's key.
    #[must_use]
    pub fn key(&self) -> &ThreadKey {
        &self.key
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// The version (for optimistic concurrency).
    #[must_use]
    pub fn version(&self) -> StateVersion {
        self.version
    }

    /// The controller state.
    #[must_use]
    pub fn controller(&self) -> &ControllerState {
        &self.controller
    }

    /// The current epoch.
    #[must_use]
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Who froze the thread, if it is frozen.
    #[must_use]
    pub fn frozen(&self) -> Option<&Freeze> {
        self.frozen.as_ref()
    }

    /// The run `id`.
    #[must_use]
    pub fn run(&self, id: &Name) -> Option<&RunRecord> {
        self.runs.get(id)
    }

    /// The last run of the current epoch.
    #[must_use]
    pub fn last_run(&self) -> Option<&RunRecord> {
        self.last_run.as_ref().and_then(|id| self.runs.get(id))
    }

    /// Every measurement received, in arrival order.
    #[must_use]
    pub fn measurements(&self) -> &[MeasurementRecord] {
        &self.measurements
    }
}

#[cfg(test)]
mod tests;
