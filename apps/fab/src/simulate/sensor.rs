//! A tool's temperature sensor: 1 Hz simulated samples (faults injected), sent in batches.

use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::client::{Api, Holds, Outcome};
use super::clock::Clock;
use crate::domain::fdc::alarm::Alarm;
use crate::domain::name::Name;
use crate::domain::sim::SensorSim;

/// What one sensor does.
#[derive(Debug)]
pub(crate) struct SensorPlan {
    pub(crate) tool: Name,
    pub(crate) parameter: Name,
    pub(crate) sim: SensorSim,
    pub(crate) duration: Duration,
    pub(crate) batch: Duration,
    /// How far (simulated ms from the start) this sensor's samples have been answered; its
    /// tool's scanner dispatches a lot only once its sensors are there, so FDC has judged
    /// the tool up to the lot's time however fast or slow the requests are. Dropped (the
    /// scanner no longer waits) when the sensor ends.
    pub(crate) progress: watch::Sender<u64>,
}

/// What a sensor sent and what the fab raised on it.
#[derive(Debug, Default)]
pub(crate) struct SensorLog {
    pub(crate) samples: u64,
    /// The alarms its batches raised, as answered (the summary reads them back by id).
    pub(crate) alarms: Vec<Alarm>,
}

/// The part of the samples answer a sensor keeps (the library's alarm type).
#[derive(Debug, Deserialize)]
struct Evaluated {
    alarms: Vec<Alarm>,
}

pub(crate) async fn run(
    api: Arc<Api>,
    mut plan: SensorPlan,
    clock: Clock,
    tool_token: String,
    cancel: CancellationToken,
) -> SensorLog {
    let mut log = SensorLog::default();
    // The whole trace at once: the generator's fault times count from its first second.
    let trace = plan.sim.trace(clock.start(), plan.duration.as_secs());
    let batch_ms = u64::try_from(plan.batch.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let start_ms = clock.start().as_millis();
    let mut rest = trace.as_slice();
    let mut k: u32 = 0;
    while !rest.is_empty() {
        k = k.saturating_add(1);
        // A batch leaves when its last second has been sampled.
        if !clock.wait(plan.batch.saturating_mul(k), &cancel).await {
            return log;
        }
        let end = start_ms.saturating_add(batch_ms.saturating_mul(u64::from(k)));
        let split = rest.partition_point(|s| s.at.as_millis() < end);
        let (batch, later) = rest.split_at(split);
        rest = later;
        // A gap sends nothing: the fab notices when the samples resume.
        if batch.is_empty() {
            plan.progress.send_replace(end.saturating_sub(start_ms));
            continue;
        }
        let body = serde_json::json!({
            "tool": plan.tool,
            "parameter": plan.parameter,
            "samples": batch,
        });
        let sent = api
            .send(
                Method::POST,
                "/v1/fdc/samples",
                Some(&tool_token),
                Some(body.to_string().into_bytes()),
                Holds::None,
            )
            .await;
        match sent {
            Err(_) => return log,
            Ok((_, Outcome::Done(bytes))) => match serde_json::from_slice::<Evaluated>(&bytes) {
                Ok(evaluated) => log.alarms.extend(evaluated.alarms),
                Err(e) => api
                    .recorder()
                    .fail(format!("POST /v1/fdc/samples: answer unreadable: {e}")),
            },
            Ok(_) => {}
        }
        log.samples += batch.len() as u64;
        plan.progress.send_replace(end.saturating_sub(start_ms));
    }
    log
}
