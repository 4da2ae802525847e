//! A lithography thread under run-to-run control: a simulated scanner that drifts and has a
//! maintenance halfway, metrology on one lot in three arriving two lots late, and the SR rendered
//! for the tool's model. Prints one line per lot.
//!
//! ```text
//! cargo run -p fab --example 01_apc_loop
//! ```

#![allow(clippy::print_stdout, reason = "printing the trace is the point")]

use std::collections::VecDeque;
use std::error::Error;

use fab::{
    AdapterRegistry, Apc, ConfigVersion, ControllerConfig, ControllerKind, ControllerParams,
    ExposureJob, LotContext, LotPriority, Measurement, ModeRequest, Name, ProcessModel, ProcessSim,
    ProductKind, SrLimits, SubRecipeRequest, Technology, Thread, ThreadEvent, ThreadKey, Timestamp,
};

fn main() -> Result<(), Box<dyn Error>> {
    let key = ThreadKey {
        fab: Name::parse("fab", "fab-1")?,
        tool: Name::parse("tool", "scanner-07")?,
        product: Name::parse("product", "soc-a")?,
        technology: Technology::N7,
        layer: Name::parse("layer", "M1")?,
        reticle: Name::parse("reticle", "RT-42")?,
    };
    let mut params = ControllerParams::typical(45.0, -5.0, 40.0);
    params.kind = ControllerKind::DoubleEwma {
        lambda: 0.3,
        lambda2: 0.1,
    };
    let config = ControllerConfig::new(ConfigVersion(1), params)?;
    let (mut thread, _) = Thread::create(key.clone(), config, Timestamp::from_secs(0));
    let limits = SrLimits::new(30.0, 50.0, 1)?;
    let adapters = AdapterRegistry::standard();
    let model = ProcessModel {
        drift: 0.03,
        ..ProcessModel::litho()
    };
    let mut process = ProcessSim::new(42, model)?.with_maintenance(60, 2.0);
    let mut metrology = VecDeque::new();

    println!("lot  pilot         SR(mJ/cm²)  CD(nm)  tool job");
    for n in 0..120u32 {
        let now = Timestamp::from_secs(600 * u64::from(n));
        if process.maintenance_before(u64::from(n)) {
            thread.apply(ThreadEvent::Maintained { at: now })?;
        }
        let request = SubRecipeRequest {
            lot: LotContext {
                lot: Name::parse("lot", format!("LOT-{n:04}"))?,
                thread: key.clone(),
                product_kind: ProductKind::Mobile,
                priority: LotPriority::Normal,
            },
            mode: ModeRequest::Formula,
            seed_from: None,
        };
        let run = Name::parse("run", format!("R-{n:04}"))?;
        let (record, _transition) = Apc.dispatch(&mut thread, &request, &limits, run, now)?;
        let job = adapters.render(
            "nsr-s635",
            &ExposureJob {
                run: record.run.clone(),
                lot: record.lot.lot.clone(),
                layer: key.layer.clone(),
                reticle: key.reticle.clone(),
                dose: record.applied_sr,
            },
        )?;
        let cd = process.run(record.applied_sr);
        if record.pilot.is_some() || n % 3 == 0 {
            let m = Measurement {
                id: Name::parse("measurement", format!("M-{n:04}"))?,
                run: record.run.clone(),
                value: cd,
                at: now,
            };
            metrology.push_back((n + 2, m));
        }
        while metrology.front().is_some_and(|(due, _)| *due <= n) {
            if let Some((_, m)) = metrology.pop_front() {
                Apc.update_apc_fn(&mut thread, m)?;
            }
        }
        let pilot = record.pilot.map_or(String::new(), |p| format!("{p:?}"));
        println!(
            "{n:>4} {pilot:<13} {:>10.3} {cd:>7.2}  {job}",
            record.applied_sr
        );
    }
    let c = thread.controller();
    println!(
        "\nthread {} at version {}: offset {:.2} nm, drift {:.3} nm/run, σ {:.2} nm",
        thread.key(),
        thread.version(),
        c.offset,
        c.drift,
        c.sigma
    );
    Ok(())
}
