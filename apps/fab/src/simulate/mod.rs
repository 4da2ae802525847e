//! `fab simulate`: scanners, metrology and temperature sensors sending realistic traffic to
//! a running fab, and a summary of what the fab made of it.
//!
//! [`run`] sets up what it needs through the API (a controller configuration as an
//! engineer; a spec with the sensors' FDC limits drafted, approved by a second engineer and
//! released), then runs every scanner and sensor concurrently on a compressed simulated
//! clock with a bounded number of requests in flight, retrying nothing: every answer is
//! counted by status, a refused lot is a *hold*, anything else not 2xx a *failure*. At the end
//! it reads the alarms back and returns a [`Summary`].
//!
//! - [`scenario`]: the [`Scenario`], its tokens and injected faults;
//! - `scanner`, `sensor`: the traffic; `client`: the counted HTTP client; `clock`:
//!   simulated time;
//! - [`summary`]: what is printed at the end.

mod args;
mod client;
mod clock;
mod error;
mod scanner;
pub mod scenario;
mod sensor;
pub mod summary;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use hyper::Method;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use args::SimulateArgs;
pub use error::{SimulateError, SimulateErrorKind};
pub use scenario::{InjectedFault, Maintenance, Scenario, SimTokens, parse_duration};
pub use summary::{Ending, Summary};

use client::{Api, Holds, Outcome};
use clock::Clock;
use scanner::{ScannerLog, ScannerPlan};
use sensor::{SensorLog, SensorPlan};

use crate::domain::apc::context::{Technology, ThreadKey};
use crate::domain::apc::controller::{ControllerKind, ControllerParams};
use crate::domain::fdc::alarm::{Alarm, AlarmId};
use crate::domain::fdc::limits::{Band, LimitsParams};
use crate::domain::fdc::rules::{Rule, RuleSet};
use crate::domain::name::Name;
use crate::domain::sim::{ProcessModel, ProcessSim, SensorSim};

/// The CD target every simulated thread is controlled to (nm).
const TARGET: f64 = 45.0;
/// The model gain (nm per mJ/cm²) and the nominal dose (mJ/cm²).
const GAIN: f64 = -5.0;
const NOMINAL: f64 = 40.0;
/// The simulated sensors: in-control mean and σ (°C).
const SENSOR_MEAN: f64 = 23.0;
const SENSOR_SIGMA: f64 = 0.1;

const PRODUCT: &str = "sim-soc";
const LAYER: &str = "M1";

fn name(field: &'static str, value: String) -> Result<Name, SimulateError> {
    Name::parse(field, value)
        .map_err(|e| SimulateError::new(SimulateErrorKind::Invalid(vec![e.to_string()])))
}

/// The name of sensor `j` (1-based) of every tool.
fn parameter_name(j: usize) -> String {
    format!("sim-temp-{j}")
}

/// Runs `scenario` against the fab until every lot and sample is sent or `stop` completes
/// (Ctrl-C: nothing more is sent, and the summary so far is returned).
///
/// # Errors
/// [`SimulateError`]: an invalid scenario (nothing sent), a refused setup step, or the fab
/// unreachable or going away mid-run (with the summary so far, see
/// [`SimulateError::summary`]).
pub async fn run(
    scenario: Scenario,
    stop: impl Future<Output = ()>,
) -> Result<Summary, SimulateError> {
    let problems = scenario.problems();
    if !problems.is_empty() {
        return Err(SimulateError::new(SimulateErrorKind::Invalid(problems)));
    }
    let cancel = CancellationToken::new();
    let api = Api::new(
        &scenario.url,
        scenario.in_flight,
        scenario.request_timeout,
        cancel.clone(),
    );
    let unreachable = |api: &Api| {
        api.recorder().unreachable.clone().map(|reason| {
            SimulateError::new(SimulateErrorKind::Unreachable {
                url: api.base().to_owned(),
                reason,
            })
        })
    };
    if let Err(e) = setup(&api, &scenario).await {
        return Err(unreachable(&api).unwrap_or(e));
    }

    let clock = Clock::new(crate::api::now(), scenario.speed);
    let mut tasks: JoinSet<Log> = JoinSet::new();
    let (scanners_plans, sensors_plans) = plans(&scenario)?;
    for plan in scanners_plans {
        let task = scanner::run(
            api.clone(),
            plan,
            clock,
            scenario.tokens.tool.clone(),
            cancel.clone(),
        );
        tasks.spawn(async move { Log::Scanner(task.await) });
    }
    for plan in sensors_plans {
        let task = sensor::run(
            api.clone(),
            plan,
            clock,
            scenario.tokens.tool.clone(),
            cancel.clone(),
        );
        tasks.spawn(async move { Log::Sensor(task.await) });
    }

    let mut interrupted = false;
    let mut scanners = Vec::new();
    let mut samples = 0;
    let mut raised = Vec::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let joined = tokio::select! {
            () = &mut stop, if !interrupted => {
                interrupted = true;
                cancel.cancel();
                continue;
            }
            joined = tasks.join_next() => joined,
        };
        match joined {
            None => break,
            Some(Ok(Log::Scanner(log))) => scanners.push(log),
            Some(Ok(Log::Sensor(log))) => {
                samples += log.samples;
                raised.extend(log.alarms);
            }
            // A simulation task panicked: a bug here, reported as a failed request.
            Some(Err(e)) => api.recorder().fail(format!("a simulation task ended: {e}")),
        }
    }

    let lost = unreachable(&api);
    let alarms = if lost.is_none() {
        read_alarms(&api, &scenario, raised).await
    } else {
        raised
    };
    let ending = match (&lost, interrupted) {
        (Some(_), _) => Ending::FabUnreachable,
        (None, true) => Ending::Interrupted,
        (None, false) => Ending::Completed,
    };
    let summary = summary::build(
        ending,
        scenario.seed,
        scanners,
        samples,
        &alarms,
        clock.start().as_millis(),
        &api.recorder(),
    );
    match lost {
        Some(e) => Err(e.with_summary(summary)),
        None => Ok(summary),
    }
}

#[derive(Debug)]
enum Log {
    Scanner(ScannerLog),
    Sensor(SensorLog),
}

/// Sends a setup write and expects a 2xx; returns its body.
async fn setup_step(
    api: &Api,
    step: &'static str,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, SimulateError> {
    let stopped = || {
        SimulateError::new(SimulateErrorKind::Setup {
            step,
            status: 0,
            body: "stopped before an answer".to_owned(),
        })
    };
    let (status, outcome) = api
        .send(
            Method::POST,
            path,
            Some(token),
            Some(body.to_string().into_bytes()),
            Holds::None,
        )
        .await
        .map_err(|_| stopped())?;
    match outcome {
        Outcome::Done(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
        Outcome::Held | Outcome::Failed => {
            let body = api.recorder().failures.last().cloned().unwrap_or_default();
            Err(SimulateError::new(SimulateErrorKind::Setup {
                step,
                status: status.as_u16(),
                body,
            }))
        }
    }
}

/// The controller configuration (as engineer) and a released spec with the sensors' limits
/// (drafted by the engineer, approved by the second token, released by the engineer).
async fn setup(api: &Api, scenario: &Scenario) -> Result<(), SimulateError> {
    let tokens = &scenario.tokens;
    let mut params = ControllerParams::typical(TARGET, GAIN, NOMINAL);
    // Double EWMA: the drift term follows tool wear.
    params.kind = ControllerKind::DoubleEwma {
        lambda: 0.3,
        lambda2: 0.1,
    };
    let config = json!({
        "product": PRODUCT,
        "technology": Technology::N5,
        "layer": LAYER,
        "params": params,
        "sr_limits": { "min": 30.0, "max": 50.0 },
    });
    setup_step(
        api,
        "controller configuration",
        "/v1/apc/configs",
        &tokens.engineer,
        &config,
    )
    .await?;

    let rules = RuleSet::of(&[Rule::Beyond3Sigma, Rule::TwoOfThreeBeyond2Sigma]);
    let mut fdc_limits = Vec::new();
    for j in 1..=scenario.sensors {
        fdc_limits.push(LimitsParams {
            parameter: name("parameter", parameter_name(j))?,
            spec: Band {
                lo: SENSOR_MEAN - 5.0 * SENSOR_SIGMA,
                hi: SENSOR_MEAN + 5.0 * SENSOR_SIGMA,
            },
            mean: SENSOR_MEAN,
            sigma: SENSOR_SIGMA,
            deadband: SENSOR_SIGMA / 2.0,
            physical: Band {
                lo: -50.0,
                hi: 150.0,
            },
            rules: rules.clone(),
            max_gap: Duration::from_secs(4),
            stuck_samples: 10,
        });
    }
    let content = json!({ "content": {
        "sr_limits": [{ "product": PRODUCT, "layer": LAYER, "min": 30.0, "max": 50.0 }],
        "fdc_limits": fdc_limits,
    }});
    let draft = setup_step(
        api,
        "spec draft",
        "/v1/spec/sets",
        &tokens.engineer,
        &content,
    )
    .await?;
    let version = draft
        .get("version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| {
            SimulateError::new(SimulateErrorKind::Setup {
                step: "spec draft",
                status: 201,
                body: format!("no version in {draft}"),
            })
        })?;
    let approver = tokens.approver.as_deref().unwrap_or(&tokens.engineer);
    let path = format!("/v1/spec/sets/{version}/approve");
    setup_step(api, "spec approval", &path, approver, &json!({})).await?;
    let path = format!("/v1/spec/sets/{version}/release");
    setup_step(api, "spec release", &path, &tokens.engineer, &json!({})).await?;
    Ok(())
}

/// Every scanner and sensor, each scanner holding its tool's sensors' progress.
fn plans(scenario: &Scenario) -> Result<(Vec<ScannerPlan>, Vec<SensorPlan>), SimulateError> {
    let invalid = |e: crate::domain::sim::SimError| {
        SimulateError::new(SimulateErrorKind::Invalid(vec![e.to_string()]))
    };
    let mut plans = Vec::new();
    let mut sensor_plans = Vec::new();
    for i in 1..=scenario.tools {
        let (sensors, mut progress) = sensors(scenario, i)?;
        sensor_plans.extend(sensors);
        let model = ProcessModel {
            alpha: ProcessModel::litho().alpha + scenario.offset,
            beta: GAIN,
            drift: scenario.drift,
            noise_sigma: scenario.noise,
        };
        let seed = scenario.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
        let mut process = ProcessSim::new(seed, model).map_err(invalid)?;
        if let Some(m) = scenario.maintenance {
            process = process.with_maintenance(m.at_lot, m.delta);
        }
        let key = ThreadKey {
            fab: name("fab", "fab-1".to_owned())?,
            tool: name("tool", scenario.tool_name(i))?,
            product: name("product", PRODUCT.to_owned())?,
            technology: Technology::N5,
            layer: name("layer", LAYER.to_owned())?,
            reticle: name("reticle", format!("RT-SIM-{i:02}"))?,
        };
        plans.push(ScannerPlan {
            key,
            process,
            lots: scenario.lots,
            lot_interval: scenario.lot_interval,
            metrology_every: scenario.metrology_every,
            metrology_delay: scenario.metrology_delay,
            target: TARGET,
            sensors: std::mem::take(&mut progress),
        });
    }
    Ok((plans, sensor_plans))
}

/// The sensors of tool `i`, and receivers of their progress.
type Sensors = (Vec<SensorPlan>, Vec<watch::Receiver<u64>>);

fn sensors(scenario: &Scenario, i: usize) -> Result<Sensors, SimulateError> {
    let mut plans = Vec::new();
    let mut receivers = Vec::new();
    {
        for j in 1..=scenario.sensors {
            let seed = scenario
                .seed
                .wrapping_mul(1_000_003)
                .wrapping_add((1000 * i + j) as u64);
            let (progress, receiver) = watch::channel(0);
            receivers.push(receiver);
            let mut sim = SensorSim::new(seed, SENSOR_MEAN, SENSOR_SIGMA)
                .map_err(|e| SimulateError::new(SimulateErrorKind::Invalid(vec![e.to_string()])))?;
            for f in scenario
                .faults
                .iter()
                .filter(|f| f.tool == i && f.sensor == j)
            {
                sim = sim.with_fault(f.fault);
            }
            plans.push(SensorPlan {
                tool: name("tool", scenario.tool_name(i))?,
                parameter: name("parameter", parameter_name(j))?,
                sim,
                duration: scenario.sensor_duration(),
                batch: scenario.batch,
                progress,
            });
        }
    }
    Ok((plans, receivers))
}

/// The alarms this simulation's batches raised, read back from the fab by id (their state
/// now, e.g. acknowledged); any the read-back misses (it lists the newest 1000 per tool) are
/// kept as they were answered.
async fn read_alarms(api: &Api, scenario: &Scenario, raised: Vec<Alarm>) -> Vec<Alarm> {
    let mut ours: BTreeMap<AlarmId, Alarm> = raised.into_iter().map(|a| (a.id, a)).collect();
    for i in 1..=scenario.tools {
        let path = format!("/v1/fdc/alarms?tool={}", scenario.tool_name(i));
        let Ok((_, Outcome::Done(bytes))) =
            api.send(Method::GET, &path, None, None, Holds::None).await
        else {
            continue;
        };
        match serde_json::from_slice::<Vec<Alarm>>(&bytes) {
            Ok(alarms) => {
                for alarm in alarms {
                    if let Some(slot) = ours.get_mut(&alarm.id) {
                        *slot = alarm;
                    }
                }
            }
            Err(e) => api.recorder().fail(format!("GET {path}: unreadable: {e}")),
        }
    }
    ours.into_values().collect()
}
