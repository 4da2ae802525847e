//! Shared fixtures for the APC unit tests.

use crate::domain::apc::context::{LotContext, LotPriority, ProductKind, Technology, ThreadKey};
use crate::domain::apc::controller::{
    ConfigVersion, ControllerConfig, ControllerKind, ControllerParams,
};
use crate::domain::apc::facade::{Apc, SrLimits};
use crate::domain::apc::generator::{ModeRequest, SubRecipeRequest};
use crate::domain::apc::thread::{Measurement, RunRecord, Thread};
use crate::domain::name::Name;
use crate::domain::time::Timestamp;

pub(crate) const T: f64 = 45.0;
pub(crate) const NOMINAL: f64 = 40.0;

pub(crate) fn name(v: &str) -> Name {
    Name::parse("test", v).unwrap()
}

pub(crate) fn key(technology: Technology) -> ThreadKey {
    ThreadKey {
        fab: name("fab-1"),
        tool: name("scanner-07"),
        product: name("soc-a"),
        technology,
        layer: name("M1"),
        reticle: name("RT-42"),
    }
}

pub(crate) fn params(kind: ControllerKind) -> ControllerParams {
    let mut p = ControllerParams::typical(T, -5.0, NOMINAL);
    p.kind = kind;
    p.initial_sigma = 0.5;
    p
}

pub(crate) fn config() -> ControllerConfig {
    ControllerConfig::new(
        ConfigVersion(1),
        params(ControllerKind::Ewma { lambda: 0.3 }),
    )
    .unwrap()
}

pub(crate) fn lot(n: u32, kind: ProductKind, technology: Technology) -> LotContext {
    LotContext {
        lot: name(&format!("LOT-{n}")),
        thread: key(technology),
        product_kind: kind,
        priority: LotPriority::Normal,
    }
}

pub(crate) fn formula(n: u32) -> SubRecipeRequest {
    SubRecipeRequest {
        lot: lot(n, ProductKind::Mobile, Technology::N7),
        mode: ModeRequest::Formula,
        seed_from: None,
    }
}

pub(crate) fn limits() -> SrLimits {
    SrLimits::new(20.0, 60.0, 1).unwrap()
}

pub(crate) fn at(s: u64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + s)
}

pub(crate) fn new_thread(config: ControllerConfig) -> Thread {
    Thread::create(key(Technology::N7), config, at(0)).0
}

/// Dispatches run `R-n` with the formula at second `n`.
pub(crate) fn run(thread: &mut Thread, n: u32) -> RunRecord {
    Apc.dispatch(
        thread,
        &formula(n),
        &limits(),
        name(&format!("R-{n}")),
        at(u64::from(n)),
    )
    .unwrap()
    .0
}

pub(crate) fn measurement(id: &str, run: &RunRecord, value: f64) -> Measurement {
    Measurement {
        id: name(id),
        run: run.run.clone(),
        value,
        at: run.at,
    }
}
