use super::*;
use crate::domain::apc::context::{ProductKind, Technology};
use crate::domain::apc::controller::{ControllerConfig, ControllerKind};
use crate::domain::apc::generator::ModeRequest;
use crate::domain::apc::testkit::*;
use crate::domain::apc::thread::{Disposition, PilotReason, ThreadEvent};
use crate::domain::sim::{ProcessModel, ProcessSim};

fn request(
    n: u32,
    kind: ProductKind,
    technology: Technology,
    mode: ModeRequest,
) -> SubRecipeRequest {
    SubRecipeRequest {
        lot: lot(n, kind, technology),
        mode,
        seed_from: None,
    }
}

#[test]
fn preview_changes_nothing_and_predicts_the_dispatch() {
    let mut thread = new_thread(config());
    let snapshot = thread.clone();
    let preview = Apc.preview(&thread, &formula(1), &limits(), at(1)).unwrap();
    assert_eq!(thread, snapshot);
    let (record, t) = Apc
        .dispatch(&mut thread, &formula(1), &limits(), name("R-1"), at(1))
        .unwrap();
    assert_eq!(record.applied_sr, preview.applied_sr());
    assert_eq!(record.pilot, Some(PilotReason::New));
    assert_eq!(t.from, snapshot.version());
    assert_eq!(thread.run(&name("R-1")), Some(&record));
}

#[test]
fn the_step_clamp_limits_formula_moves_and_refuses_large_overrides() {
    let mut thread = new_thread(config());
    let r0 = run(&mut thread, 0);
    // The pilot measures 5 nm high: the formula now wants +1 mJ/cm² (2.5 %), beyond the 2 %.
    Apc.update_apc_fn(&mut thread, measurement("M-0", &r0, 50.0))
        .unwrap();
    let checked = Apc.preview(&thread, &formula(1), &limits(), at(1)).unwrap();
    assert!(
        (checked.proposal().sr - 41.0).abs() < 1e-9,
        "{}",
        checked.proposal().sr
    );
    assert!(
        (checked.applied_sr() - 40.8).abs() < 1e-9,
        "{}",
        checked.applied_sr()
    );
    assert_eq!(
        checked.step(),
        StepCheck::Clamped {
            requested: checked.proposal().sr
        }
    );
    let (record, _) = Apc
        .dispatch(&mut thread, &formula(1), &limits(), name("R-1"), at(1))
        .unwrap();
    assert_eq!(record.computed_sr, checked.proposal().sr);
    assert_eq!(record.applied_sr, 40.8);

    let too_far = request(
        2,
        ProductKind::Mobile,
        Technology::N7,
        ModeRequest::Recommend {
            sr: 43.0,
            engineer: name("eng-ada"),
            reason: "test".into(),
        },
    );
    assert!(matches!(
        Apc.preview(&thread, &too_far, &limits(), at(2)),
        Err(ApcError::StepTooLarge { previous, .. }) if previous == 40.8
    ));
}

#[test]
fn an_sr_outside_the_spec_limits_is_refused_naming_the_version() {
    let thread = new_thread(config());
    let tight = SrLimits::new(41.0, 45.0, 7).unwrap();
    let e = Apc
        .preview(&thread, &formula(1), &tight, at(1))
        .unwrap_err();
    assert!(
        matches!(
            e,
            ApcError::OutOfSpec {
                spec_version: 7,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("spec version 7"));
    for (lo, hi) in [
        (45.0, 41.0),
        (f64::NAN, 1.0),
        (1.0, f64::INFINITY),
        (3.0, 3.0),
    ] {
        assert!(SrLimits::new(lo, hi, 1).is_err());
    }
    // Limits from the wire are validated too.
    assert!(serde_json::from_str::<SrLimits>(r#"{"min":50,"max":20,"spec_version":1}"#).is_err());
    let ok: SrLimits = serde_json::from_str(r#"{"min":20,"max":50,"spec_version":3}"#).unwrap();
    assert_eq!(ok.spec_version(), 3);
}

#[test]
fn a_recommendation_is_audited_and_needs_a_reason() {
    let mut thread = new_thread(config());
    let req = |reason: &str, sr: f64| {
        request(
            1,
            ProductKind::Pc,
            Technology::N7,
            ModeRequest::Recommend {
                sr,
                engineer: name("eng-ada"),
                reason: reason.into(),
            },
        )
    };
    for bad in ["", "   ", "a\nb"] {
        assert!(matches!(
            Apc.preview(&thread, &req(bad, 40.0), &limits(), at(1)),
            Err(ApcError::Generate(GenerateError::BadReason))
        ));
    }
    assert!(matches!(
        Apc.preview(&thread, &req("ok", f64::NAN), &limits(), at(1)),
        Err(ApcError::Generate(GenerateError::NonFinite {
            field: "sr",
            ..
        }))
    ));
    let (record, _) = Apc
        .dispatch(
            &mut thread,
            &req("  hot lot, CD qualified by hand ", 40.5),
            &limits(),
            name("R-1"),
            at(1),
        )
        .unwrap();
    assert_eq!(record.applied_sr, 40.5);
    assert_eq!(
        record.mode,
        ModeRecord::Recommend {
            engineer: name("eng-ada"),
            reason: "hot lot, CD qualified by hand".into()
        }
    );
}

#[test]
fn feedforward_reuses_the_last_sr_only_inside_its_window() {
    let mut thread = new_thread(config());
    let ff = |n| {
        request(
            n,
            ProductKind::Mobile,
            Technology::N7,
            ModeRequest::Feedforward,
        )
    };
    assert!(matches!(
        Apc.preview(&thread, &ff(0), &limits(), at(0)),
        Err(ApcError::Generate(GenerateError::PilotRequired(
            PilotReason::New
        )))
    ));
    let r0 = run(&mut thread, 0);
    Apc.update_apc_fn(&mut thread, measurement("M-0", &r0, 45.5))
        .unwrap();
    let r1 = run(&mut thread, 1);
    let checked = Apc.preview(&thread, &ff(2), &limits(), at(2)).unwrap();
    assert_eq!(checked.applied_sr(), r1.applied_sr);
    assert_eq!(
        checked.proposal().mode,
        ModeRecord::Feedforward {
            from_run: r1.run.clone()
        }
    );
    let window = thread.config().params().feedforward_window;
    let late = r1
        .at
        .saturating_add(window + std::time::Duration::from_secs(1));
    assert!(matches!(
        Apc.preview(&thread, &ff(3), &limits(), late),
        Err(ApcError::Generate(GenerateError::Stale { .. }))
    ));
}

#[test]
fn a_request_for_another_thread_is_refused() {
    let thread = new_thread(config());
    let other = request(1, ProductKind::Mobile, Technology::N5, ModeRequest::Formula);
    assert!(matches!(
        Apc.preview(&thread, &other, &limits(), at(1)),
        Err(ApcError::WrongThread { .. })
    ));
}

#[test]
fn product_strategies_differ_in_drift_and_deadband() {
    let dewma = ControllerConfig::new(
        crate::domain::apc::controller::ConfigVersion(1),
        params(ControllerKind::DoubleEwma {
            lambda: 0.3,
            lambda2: 0.1,
        }),
    )
    .unwrap();
    let mut thread = new_thread(dewma);
    let r0 = run(&mut thread, 0);
    Apc.update_apc_fn(&mut thread, measurement("M-0", &r0, 45.0))
        .unwrap();
    // A measurement 1 nm high: offset and drift both move.
    let r1 = run(&mut thread, 1);
    Apc.update_apc_fn(&mut thread, measurement("M-1", &r1, 46.0))
        .unwrap();
    assert!(thread.controller().drift > 0.0);
    let sr = |kind| {
        Apc.preview(
            &thread,
            &request(2, kind, Technology::N7, ModeRequest::Formula),
            &limits(),
            at(2),
        )
        .unwrap()
        .proposal
        .sr
    };
    let c = thread.controller();
    let b = thread.config().params().model_gain;
    assert!((sr(ProductKind::Mobile) - (T - c.offset - c.drift) / b).abs() < 1e-9);
    assert!((sr(ProductKind::Notebook) - (T - c.offset) / b).abs() < 1e-9);
    // PC: the last run's F(n) was 0 (formula at nominal); a change below the deadband is held.
    let mut p = params(ControllerKind::Ewma { lambda: 0.3 });
    p.deadband = 0.5;
    let mut thread = new_thread(
        ControllerConfig::new(crate::domain::apc::controller::ConfigVersion(1), p).unwrap(),
    );
    let pc = |n| request(n, ProductKind::Pc, Technology::N7, ModeRequest::Formula);
    let r0 = Apc
        .dispatch(&mut thread, &pc(0), &limits(), name("R-0"), at(0))
        .unwrap()
        .0;
    Apc.update_apc_fn(&mut thread, measurement("M-0", &r0, 45.0))
        .unwrap();
    let r1 = Apc
        .dispatch(&mut thread, &pc(1), &limits(), name("R-1"), at(1))
        .unwrap()
        .0;
    Apc.update_apc_fn(&mut thread, measurement("M-1", &r1, 45.5))
        .unwrap();
    // Unheld F(n) would be (T − a)/b − 40 = 0.03 mJ/cm²: below the 0.5 deadband.
    let held = Apc.preview(&thread, &pc(2), &limits(), at(2)).unwrap();
    assert_eq!(held.proposal().sr, 40.0);
    let mobile = Apc.preview(&thread, &formula(2), &limits(), at(2)).unwrap();
    assert!(
        (mobile.proposal().sr - 40.03).abs() < 1e-9,
        "{}",
        mobile.proposal().sr
    );
}

/// Runs `runs` lots through the facade against a simulated process; metrology samples one lot
/// in `every` and arrives `delay` runs late. Returns the outputs of all runs.
fn closed_loop(
    thread: &mut crate::domain::apc::thread::Thread,
    sim: &mut ProcessSim,
    technology: Technology,
    runs: u32,
    every: u32,
    delay: u32,
) -> Vec<f64> {
    let mut ys = Vec::new();
    let mut pending = std::collections::VecDeque::new();
    for n in 0..runs {
        if sim.maintenance_before(u64::from(n)) {
            thread
                .apply(ThreadEvent::Maintained {
                    at: at(u64::from(n)),
                })
                .unwrap();
        }
        let req = request(n, ProductKind::Mobile, technology, ModeRequest::Formula);
        let (record, _) = Apc
            .dispatch(
                thread,
                &req,
                &limits(),
                name(&format!("R-{n}")),
                at(u64::from(n)),
            )
            .unwrap();
        let y = sim.run(record.applied_sr);
        ys.push(y);
        // A pilot is always measured; other lots one in `every`.
        if record.pilot.is_some() || n % every == 0 {
            pending.push_back((n + delay, measurement(&format!("M-{n}"), &record, y)));
        }
        while pending.front().is_some_and(|(due, _)| *due <= n) {
            if let Some((_, m)) = pending.pop_front() {
                Apc.update_apc_fn(thread, m).unwrap();
            }
        }
    }
    ys
}

#[test]
fn sparse_late_metrology_through_the_facade_still_converges_after_maintenance() {
    let model = ProcessModel {
        drift: 0.02,
        ..ProcessModel::litho()
    };
    for seed in 0..20 {
        let mut thread = new_thread(config());
        let mut sim = ProcessSim::new(seed, model)
            .unwrap()
            .with_maintenance(150, 2.5);
        let ys = closed_loop(&mut thread, &mut sim, Technology::N7, 300, 3, 2);
        let tail = &ys[ys.len() - 30..];
        let mae = tail.iter().map(|y| (y - T).abs()).sum::<f64>() / 30.0;
        assert!(mae < 0.8, "seed {seed}: MAE {mae}");
        assert!(
            thread
                .measurements()
                .iter()
                .any(|m| m.disposition == Disposition::Pilot && m.epoch == 1),
            "seed {seed}: the maintenance was followed by a pilot"
        );
        // No output left the ±5 nm band after the first runs, clamp and all.
        assert!(ys[5..].iter().all(|y| (y - T).abs() < 5.0), "seed {seed}");
    }
}

#[test]
fn a_technology_offset_settles_the_process_at_its_print_bias() {
    // N3's F2 = 0.6 mJ/cm² with c = 1: the loop settles at T + b·c·F2 = 45 − 5·0.6 = 42 nm.
    let mut p = params(ControllerKind::Ewma { lambda: 0.3 });
    p.technology_weight = 1.0;
    let cfg = ControllerConfig::new(crate::domain::apc::controller::ConfigVersion(1), p).unwrap();
    let mut thread = crate::domain::apc::thread::Thread::create(key(Technology::N3), cfg, at(0)).0;
    let model = ProcessModel {
        noise_sigma: 0.2,
        ..ProcessModel::litho()
    };
    let mut sim = ProcessSim::new(5, model).unwrap();
    let ys = closed_loop(&mut thread, &mut sim, Technology::N3, 200, 1, 0);
    let mean = ys[150..].iter().sum::<f64>() / 50.0;
    assert!((mean - 42.0).abs() < 0.2, "settled at {mean}");
}
