//! The `fab` reference application: APC (run-to-run control of lithography), FDC (fault
//! detection and classification on tool sensors) and central specs. Its [`domain`] is a pure
//! library with no I/O, no async and no clock (time is passed in as a [`Timestamp`]); the
//! services ([`service`]: `fab all`, `fab apc`, `fab fdc`, `fab spec`, `fab migrate`) are built
//! on it with orderly components, and own persistence ([`store`]), transport ([`api`], [`bus`]).
//!
//! A thread of the run-to-run controller, from its pilot run to a converged recipe:
//!
//! ```
//! use fab::{
//!     Apc, ConfigVersion, ControllerConfig, ControllerParams, LotContext, LotPriority, Measurement,
//!     ModeRequest, Name, ProcessModel, ProcessSim, ProductKind, SrLimits, SubRecipeRequest,
//!     Technology, Thread, ThreadKey, Timestamp,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let name = |field, v: &str| Name::parse(field, v);
//! let key = ThreadKey {
//!     fab: name("fab", "fab-1")?,
//!     tool: name("tool", "scanner-07")?,
//!     product: name("product", "soc-a")?,
//!     technology: Technology::N5,
//!     layer: name("layer", "M1")?,
//!     reticle: name("reticle", "RT-42")?,
//! };
//! // CD target 45 nm, model gain −5 nm per mJ/cm², nominal dose 40 mJ/cm²; validated (and
//! // checked for stability) once, immutable after.
//! let config = ControllerConfig::new(ConfigVersion(1), ControllerParams::typical(45.0, -5.0, 40.0))?;
//! let (mut thread, _created) = Thread::create(key.clone(), config, Timestamp::from_secs(0));
//! let limits = SrLimits::new(30.0, 50.0, 1)?;
//!
//! // A simulated scanner whose process sits 2 nm high.
//! let mut process = ProcessSim::new(7, ProcessModel { alpha: 247.0, ..ProcessModel::litho() })?;
//! for n in 0..30u32 {
//!     let now = Timestamp::from_secs(60 * u64::from(n));
//!     let request = SubRecipeRequest {
//!         lot: LotContext {
//!             lot: name("lot", &format!("LOT-{n}"))?,
//!             thread: key.clone(),
//!             product_kind: ProductKind::Mobile,
//!             priority: LotPriority::Normal,
//!         },
//!         mode: ModeRequest::Formula,
//!         seed_from: None,
//!     };
//!     // genSubrecipe → checkSpec → log: the record and the transition are what a service
//!     // makes durable before answering the tool.
//!     let (record, _transition) =
//!         Apc.dispatch(&mut thread, &request, &limits, name("run", &format!("R-{n}"))?, now)?;
//!     let cd = process.run(record.applied_sr);
//!     // updateAPCFn, with the metrology of that run.
//!     let measurement = Measurement {
//!         id: name("measurement", &format!("M-{n}"))?,
//!         run: record.run.clone(),
//!         value: cd,
//!         at: now,
//!     };
//!     Apc.update_apc_fn(&mut thread, measurement)?;
//! }
//! let last = thread.last_run().map_or(0.0, |r| r.applied_sr);
//! // The process is on target at about 40.4 mJ/cm² (2 nm / 5 nm per mJ/cm²).
//! assert!((last - 40.4).abs() < 0.2, "{last}");
//! # Ok(())
//! # }
//! ```
//!
//! Where things live (see `README.md` for the design):
//! - [`domain::apc`]: thread keys, the EWMA / double-EWMA controller, strategies for F(n) and
//!   F2(n) (Strategy), the generator per mode (Factory), the APC steps and Preview (Facade),
//!   thread state as a fold of versioned transitions, tool job syntaxes (Adapter);
//! - [`domain::jobs`]: the per-tool job queue with hot lots and reticle dependencies (Command);
//! - [`domain::fdc`]: limits, run rules, gaps, classification, alarms, the per-parameter monitor;
//! - [`domain::spec`]: central spec versions, release, delta sync, per-fab acknowledgement;
//! - [`domain::sim`]: seeded synthetic process and sensor data;
//! - [`store`]: persistence (one SQL schema for SQLite and PostgreSQL, optimistic versioning
//!   per thread, idempotent writes);
//! - [`bus`]: events between the services (a trait; in-process for `fab all`);
//! - [`api`]: the HTTP API under `/v1` (axum), auth, idempotency, errors;
//! - [`service`]: the orderly wiring of each process (`fab all`, `fab apc`, `fab migrate`);
//! - [`simulate`]: `fab simulate`, scanners and sensors sending realistic traffic to a fab.

pub mod api;
pub mod bus;
pub mod domain;
pub mod service;
pub mod simulate;
pub mod store;

pub use domain::apc::adapter::{AdapterError, AdapterRegistry, ExposureJob, ToolAdapter};
pub use domain::apc::context::{LotContext, LotPriority, ProductKind, Technology, ThreadKey};
pub use domain::apc::controller::{
    ConfigError, ConfigVersion, ControllerConfig, ControllerKind, ControllerParams, ControllerState,
};
pub use domain::apc::facade::{Apc, ApcError, Checked, SrLimits};
pub use domain::apc::generator::{GenerateError, ModeRequest, Proposal, SubRecipeRequest};
pub use domain::apc::thread::{
    Disposition, Measurement, ModeRecord, PilotReason, RunRecord, StateVersion, Thread,
    ThreadError, ThreadEvent, Transition,
};
pub use domain::fdc::Sample;
pub use domain::fdc::alarm::{Alarm, AlarmId, Detection, Severity, ToolInhibit};
pub use domain::fdc::classify::FaultClass;
pub use domain::fdc::limits::{LimitsParams, LimitsVersion, ParameterLimits};
pub use domain::fdc::monitor::ParameterMonitor;
pub use domain::fdc::rules::{Rule, RuleSet};
pub use domain::jobs::{JobError, JobId, JobQueue, ToolJob};
pub use domain::name::{Name, NameError};
pub use domain::sim::{Fault, ProcessModel, ProcessSim, SensorSim};
pub use domain::spec::{FabSpecs, SpecError, SpecRegistry, SpecSet, SpecVersion};
pub use domain::time::Timestamp;
