//! A scanner: sub recipe → the seeded process exposes with the returned SR → applied report;
//! 1 lot in N measured, its result reaching the APC a few lots later.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::client::{Api, Holds, Outcome, Stopped};
use super::clock::Clock;
use crate::domain::apc::context::{LotContext, LotPriority, ProductKind, ThreadKey};
use crate::domain::apc::generator::{ModeRequest, SubRecipeRequest};
use crate::domain::apc::thread::{Measurement, RunRecord};
use crate::domain::name::Name;
use crate::domain::sim::ProcessSim;

/// What one scanner does.
#[derive(Debug)]
pub(crate) struct ScannerPlan {
    pub(crate) key: ThreadKey,
    pub(crate) process: ProcessSim,
    pub(crate) lots: u32,
    pub(crate) lot_interval: Duration,
    pub(crate) metrology_every: u32,
    pub(crate) metrology_delay: u32,
    pub(crate) target: f64,
    /// Its tool's sensors' progress (see [`super::sensor::SensorPlan::progress`]).
    pub(crate) sensors: Vec<watch::Receiver<u64>>,
}

/// What one scanner saw.
#[derive(Debug, Default)]
pub(crate) struct ScannerLog {
    pub(crate) thread: String,
    /// The SR of each exposed lot.
    pub(crate) srs: Vec<f64>,
    /// `y − T` of each exposed lot (the simulator knows every lot's CD, measured or not).
    pub(crate) errors: Vec<f64>,
    /// Measurements the APC accepted.
    pub(crate) measured: u32,
}

/// The part of the sub-recipe answer a scanner needs: the run record (the library's type).
#[derive(Debug, Deserialize)]
struct SubRecipeAnswer {
    record: RunRecord,
}

pub(crate) async fn run(
    api: Arc<Api>,
    mut plan: ScannerPlan,
    clock: Clock,
    tool_token: String,
    cancel: CancellationToken,
) -> ScannerLog {
    let mut log = ScannerLog {
        thread: plan.key.to_string(),
        ..ScannerLog::default()
    };
    let mut pending: VecDeque<(u32, Measurement)> = VecDeque::new();
    let token = tool_token.as_str();
    for n in 0..plan.lots {
        let offset = plan.lot_interval.saturating_mul(n);
        if !clock.wait(offset, &cancel).await
            || !sensors_reached(&mut plan.sensors, offset, &cancel).await
        {
            return log;
        }
        // Metrology due by now reaches the APC first.
        while pending.front().is_some_and(|(due, _)| *due <= n) {
            if let Some((_, m)) = pending.pop_front() {
                match measure(&api, token, &m).await {
                    Ok(accepted) => log.measured += u32::from(accepted),
                    Err(Stopped) => return log,
                }
            }
        }
        let Ok(lot) = Name::parse("lot", api.unique(&format!("L{n}"))) else {
            return log;
        };
        let request = SubRecipeRequest {
            lot: LotContext {
                lot,
                thread: plan.key.clone(),
                product_kind: ProductKind::Mobile,
                priority: LotPriority::Normal,
            },
            mode: ModeRequest::Formula,
            seed_from: None,
        };
        let Ok(body) = serde_json::to_vec(&request) else {
            return log;
        };
        let answer = api
            .send(
                Method::POST,
                "/v1/apc/subrecipe",
                Some(token),
                Some(body),
                Holds::Dispatch,
            )
            .await;
        let record = match answer {
            Err(_) => return log,
            Ok((_, Outcome::Done(bytes))) => {
                match serde_json::from_slice::<SubRecipeAnswer>(&bytes) {
                    Ok(answer) => answer.record,
                    Err(e) => {
                        api.recorder()
                            .fail(format!("POST /v1/apc/subrecipe: answer unreadable: {e}"));
                        continue;
                    }
                }
            }
            // A held or failed lot is not exposed (and counted by the client).
            Ok((_, Outcome::Held | Outcome::Failed)) => continue,
        };
        // The tool exposes with the SR it was given and reports it.
        let sr = record.applied_sr;
        let y = plan.process.run(sr);
        log.srs.push(sr);
        log.errors.push(y - plan.target);
        let path = format!("/v1/apc/runs/{}/applied", record.run);
        let body = serde_json::json!({ "sr": sr }).to_string().into_bytes();
        if api
            .send(Method::POST, &path, Some(token), Some(body), Holds::None)
            .await
            .is_err()
        {
            return log;
        }
        if n % plan.metrology_every == 0 {
            let Ok(id) = Name::parse("measurement", api.unique(&format!("M{n}"))) else {
                return log;
            };
            let due = n.saturating_add(plan.metrology_delay);
            let at = clock.at(plan.lot_interval.saturating_mul(due));
            pending.push_back((
                due,
                Measurement {
                    id,
                    run: record.run,
                    value: y,
                    at,
                },
            ));
        }
    }
    // The last measurements arrive after the last lot.
    while let Some((_, m)) = pending.pop_front() {
        match measure(&api, token, &m).await {
            Ok(accepted) => log.measured += u32::from(accepted),
            Err(Stopped) => return log,
        }
    }
    log
}

/// Sends a measurement: whether the APC accepted it (a refusal is counted by the client).
async fn measure(api: &Api, token: &str, m: &Measurement) -> Result<bool, Stopped> {
    let Ok(body) = serde_json::to_vec(m) else {
        return Ok(false);
    };
    let (_, outcome) = api
        .send(
            Method::POST,
            "/v1/apc/metrology",
            Some(token),
            Some(body),
            Holds::None,
        )
        .await?;
    Ok(matches!(outcome, Outcome::Done(_)))
}

/// Waits until every sensor of the tool has been answered up to `offset` (or has ended);
/// `false` when the simulation stopped first.
async fn sensors_reached(
    sensors: &mut [watch::Receiver<u64>],
    offset: Duration,
    cancel: &CancellationToken,
) -> bool {
    let at = u64::try_from(offset.as_millis()).unwrap_or(u64::MAX);
    for progress in sensors {
        tokio::select! {
            () = cancel.cancelled() => return false,
            // An ended sensor (sender dropped) holds nothing up.
            _ = progress.wait_for(|p| *p >= at) => {}
        }
    }
    !cancel.is_cancelled()
}
