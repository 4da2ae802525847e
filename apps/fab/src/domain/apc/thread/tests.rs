use super::*;
use crate::domain::apc::context::Technology;
use crate::domain::apc::facade::Apc;
use crate::domain::apc::testkit::*;

/// A thread past its pilot run, with the transitions so far.
fn piloted() -> (Thread, Vec<Transition>) {
    let (mut thread, created) = Thread::create(key(Technology::N7), config(), at(0));
    let mut log = vec![created];
    let pilot = Apc
        .dispatch(&mut thread, &formula(0), &limits(), name("R-0"), at(0))
        .unwrap();
    assert_eq!(pilot.0.pilot, Some(PilotReason::New));
    log.push(pilot.1);
    let t = thread
        .apply(ThreadEvent::Measured(measurement("M-0", &pilot.0, 45.8)))
        .unwrap()
        .unwrap();
    assert_eq!(t.disposition, Some(Disposition::Pilot));
    log.push(t);
    (thread, log)
}

fn measure(
    thread: &mut Thread,
    log: &mut Vec<Transition>,
    id: &str,
    run: &RunRecord,
    y: f64,
) -> Disposition {
    let t = thread
        .apply(ThreadEvent::Measured(measurement(id, run, y)))
        .unwrap()
        .unwrap();
    let d = t.disposition.unwrap();
    log.push(t);
    d
}

fn dispatch(thread: &mut Thread, log: &mut Vec<Transition>, n: u32) -> RunRecord {
    let (r, t) = Apc
        .dispatch(
            thread,
            &formula(n),
            &limits(),
            name(&format!("R-{n}")),
            at(u64::from(n)),
        )
        .unwrap();
    log.push(t);
    r
}

#[test]
fn the_pilot_run_initialises_the_offset_from_its_measurement() {
    let (thread, _) = piloted();
    // a = y − b·u with the pilot's applied SR (the nominal 40 on a fresh thread).
    assert!((thread.controller().offset - (45.8 + 5.0 * 40.0)).abs() < 1e-9);
    assert_eq!(thread.pilot_requirement(at(1)), None);
}

#[test]
fn late_metrology_uses_the_sr_applied_to_its_run_not_the_current_one() {
    let (mut thread, mut log) = piloted();
    let r1 = dispatch(&mut thread, &mut log, 1);
    let r2 = dispatch(&mut thread, &mut log, 2);
    measure(&mut thread, &mut log, "M-2", &r2, 46.0);
    let r3 = dispatch(&mut thread, &mut log, 3);
    assert!(
        (r3.applied_sr - r1.applied_sr).abs() > 0.01,
        "the SR moved between runs"
    );
    let before = *thread.controller();
    measure(&mut thread, &mut log, "M-1", &r1, 45.3);
    let cfg = thread.config().clone();
    let with_run_sr = before.update(&cfg, r1.applied_sr, 45.3).unwrap().state;
    let with_current_sr = before.update(&cfg, r3.applied_sr, 45.3).unwrap().state;
    assert_eq!(*thread.controller(), with_run_sr);
    assert_ne!(*thread.controller(), with_current_sr);
    assert_eq!(
        thread.measurements().last().unwrap().applied_sr,
        r1.applied_sr
    );
}

#[test]
fn a_repeated_measurement_is_a_no_op_and_a_conflicting_one_an_error() {
    let (mut thread, mut log) = piloted();
    let r1 = dispatch(&mut thread, &mut log, 1);
    measure(&mut thread, &mut log, "M-1", &r1, 45.4);
    let snapshot = thread.clone();
    assert_eq!(
        thread.apply(ThreadEvent::Measured(measurement("M-1", &r1, 45.4))),
        Ok(None)
    );
    assert_eq!(thread, snapshot);
    assert_eq!(
        thread.apply(ThreadEvent::Measured(measurement("M-1", &r1, 44.0))),
        Err(ThreadError::ConflictingMeasurement(name("M-1")))
    );
    assert_eq!(thread, snapshot);
}

#[test]
fn bad_measurements_are_refused_and_change_nothing() {
    let (mut thread, mut log) = piloted();
    let r1 = dispatch(&mut thread, &mut log, 1);
    let snapshot = thread.clone();
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(matches!(
            thread.apply(ThreadEvent::Measured(measurement("M-x", &r1, v))),
            Err(ThreadError::NonFinite { field: "value", .. })
        ));
    }
    let mut ghost = measurement("M-y", &r1, 45.0);
    ghost.run = name("R-404");
    assert_eq!(
        thread.apply(ThreadEvent::Measured(ghost)),
        Err(ThreadError::UnknownRun(name("R-404")))
    );
    assert_eq!(thread, snapshot);
}

#[test]
fn invalidating_a_measurement_replays_the_thread_without_it() {
    let ys = [45.4, 44.9, 46.3, 45.2, 44.7];
    let (mut thread, mut log) = piloted();
    let (mut reference, mut ref_log) = piloted();
    for (i, y) in ys.iter().enumerate() {
        let n = u32::try_from(i).unwrap() + 1;
        let r = dispatch(&mut thread, &mut log, n);
        measure(&mut thread, &mut log, &format!("M-{n}"), &r, *y);
    }
    // The reference sees the same runs (same applied SRs) but never measurement 3.
    for (i, y) in ys.iter().enumerate() {
        let n = u32::try_from(i).unwrap() + 1;
        let r = thread.run(&name(&format!("R-{n}"))).unwrap().clone();
        ref_log.push(
            reference
                .apply(ThreadEvent::RunLogged(RunRecord {
                    state_version: reference.version(),
                    ..r.clone()
                }))
                .unwrap()
                .unwrap(),
        );
        if n != 3 {
            measure(&mut reference, &mut ref_log, &format!("M-{n}"), &r, *y);
        }
    }
    assert_ne!(thread.controller(), reference.controller());
    let t = thread
        .apply(ThreadEvent::Invalidated {
            measurement: name("M-3"),
            by: name("eng-ada"),
            reason: "wrong wafer measured".into(),
            at: at(10),
        })
        .unwrap()
        .unwrap();
    assert_ne!(t.before, t.after);
    assert_eq!(thread.controller(), reference.controller());
    assert_eq!(
        thread.measurements()[3].disposition,
        Disposition::Invalidated
    );
    // Invalidating again changes nothing; an unknown id is an error.
    let again = ThreadEvent::Invalidated {
        measurement: name("M-3"),
        by: name("eng-ada"),
        reason: "again".into(),
        at: at(11),
    };
    assert_eq!(thread.apply(again), Ok(None));
    assert!(matches!(
        thread.apply(ThreadEvent::Invalidated {
            measurement: name("M-9"),
            by: name("eng-ada"),
            reason: "x".into(),
            at: at(11),
        }),
        Err(ThreadError::UnknownMeasurement(_))
    ));
}

#[test]
fn the_state_is_the_fold_of_its_transitions() {
    let (mut thread, mut log) = piloted();
    for n in 1..30 {
        let r = dispatch(&mut thread, &mut log, n);
        if n % 3 == 0 {
            measure(
                &mut thread,
                &mut log,
                &format!("M-{n}"),
                &r,
                45.0 + f64::from(n % 5) * 0.2,
            );
        }
        if n == 10 {
            log.push(
                thread
                    .apply(ThreadEvent::Maintained { at: at(10) })
                    .unwrap()
                    .unwrap(),
            );
        }
        if n == 20 {
            log.push(
                thread
                    .apply(ThreadEvent::Invalidated {
                        measurement: name("M-15"),
                        by: name("eng-ada"),
                        reason: "bad site".into(),
                        at: at(20),
                    })
                    .unwrap()
                    .unwrap(),
            );
        }
    }
    // Versions are consecutive: 0 → 1 → 2 …
    for (i, t) in log.iter().enumerate() {
        assert_eq!(t.from, StateVersion(i as u64));
        assert_eq!(t.to, StateVersion(i as u64 + 1));
    }
    // Persisted as JSON and folded back, the history gives the same thread.
    let json = serde_json::to_string(&log.iter().map(|t| &t.event).collect::<Vec<_>>()).unwrap();
    let events: Vec<ThreadEvent> = serde_json::from_str(&json).unwrap();
    let rebuilt = Thread::from_events(&events).unwrap();
    assert_eq!(rebuilt, thread);
    assert_eq!(
        Thread::from_events(&events[1..]),
        Err(ThreadError::NotCreated)
    );
}

#[test]
fn a_stale_writer_gets_a_version_conflict() {
    let (mut thread, mut log) = piloted();
    let r1 = dispatch(&mut thread, &mut log, 1);
    // Two replicas read version v; the first one's metrology lands, the second one's preview is
    // now stale and must not be logged.
    let preview = Apc.preview(&thread, &formula(2), &limits(), at(2)).unwrap();
    let v = thread.version();
    thread
        .apply_expecting(v, ThreadEvent::Measured(measurement("M-1", &r1, 45.2)))
        .unwrap();
    let snapshot = thread.clone();
    let e = Apc
        .log(&mut thread, preview, name("R-2"), at(2))
        .unwrap_err();
    assert!(
        matches!(
            e,
            crate::domain::apc::facade::ApcError::Thread(ThreadError::VersionConflict { .. })
        ),
        "{e}"
    );
    assert_eq!(
        thread.apply_expecting(v, ThreadEvent::Maintained { at: at(3) }),
        Err(ThreadError::VersionConflict {
            expected: v,
            actual: thread.version()
        })
    );
    assert_eq!(thread, snapshot);
}

#[test]
fn a_frozen_thread_records_metrology_without_updating() {
    let (mut thread, mut log) = piloted();
    let freeze = Freeze {
        by: name("eng-ada"),
        reason: "investigating".into(),
        at: at(1),
    };
    log.push(
        thread
            .apply(ThreadEvent::Frozen(freeze.clone()))
            .unwrap()
            .unwrap(),
    );
    assert_eq!(
        thread.apply(ThreadEvent::Frozen(freeze)),
        Err(ThreadError::AlreadyFrozen)
    );
    let r1 = dispatch(&mut thread, &mut log, 1);
    let before = *thread.controller();
    assert_eq!(
        measure(&mut thread, &mut log, "M-1", &r1, 45.6),
        Disposition::Frozen
    );
    assert_eq!(*thread.controller(), before);
    thread
        .apply(ThreadEvent::Unfrozen {
            by: name("eng-ada"),
            at: at(2),
        })
        .unwrap();
    let r2 = dispatch(&mut thread, &mut log, 2);
    assert_eq!(
        measure(&mut thread, &mut log, "M-2", &r2, 45.6),
        Disposition::Accepted
    );
    assert_ne!(*thread.controller(), before);
}

#[test]
fn reset_and_maintenance_need_a_pilot_and_ignore_older_runs() {
    let (mut thread, mut log) = piloted();
    let old = dispatch(&mut thread, &mut log, 1);
    thread
        .apply(ThreadEvent::Reset {
            by: name("eng-ada"),
            reason: "new resist".into(),
            at: at(2),
        })
        .unwrap();
    assert_eq!(
        *thread.controller(),
        ControllerState::initial(thread.config())
    );
    assert_eq!(thread.pilot_requirement(at(3)), Some(PilotReason::Reset));
    assert_eq!(
        measure(&mut thread, &mut log, "M-1", &old, 45.0),
        Disposition::PreviousEpoch
    );
    let pilot = dispatch(&mut thread, &mut log, 3);
    assert_eq!(pilot.pilot, Some(PilotReason::Reset));
    assert_eq!(
        measure(&mut thread, &mut log, "M-3", &pilot, 46.0),
        Disposition::Pilot
    );

    thread.apply(ThreadEvent::Maintained { at: at(4) }).unwrap();
    assert_eq!(
        thread.pilot_requirement(at(5)),
        Some(PilotReason::Maintenance)
    );
    let p = dispatch(&mut thread, &mut log, 5);
    assert_eq!(p.pilot, Some(PilotReason::Maintenance));
    assert_eq!(
        measure(&mut thread, &mut log, "M-5", &p, 48.0),
        Disposition::Pilot
    );
    assert!((thread.controller().offset - (48.0 + 5.0 * p.applied_sr)).abs() < 1e-9);
}

#[test]
fn a_long_idle_thread_needs_a_pilot_and_a_new_one_may_start_from_its_parent() {
    let (mut thread, mut log) = piloted();
    let idle = thread.config().params().idle_limit;
    let later = at(0).saturating_add(idle + std::time::Duration::from_secs(60));
    assert_eq!(thread.pilot_requirement(later), Some(PilotReason::Idle));
    let epoch = thread.epoch();
    let (r, t) = Apc
        .dispatch(&mut thread, &formula(1), &limits(), name("R-idle"), later)
        .unwrap();
    log.push(t);
    assert_eq!(r.pilot, Some(PilotReason::Idle));
    assert_eq!(thread.epoch(), epoch + 1);

    // A sibling thread (another reticle) starts from the piloted thread's state.
    let mut child_key = key(Technology::N7);
    child_key.reticle = name("RT-43");
    let (mut child, _) = Thread::create(child_key, config(), at(100));
    assert_eq!(child.pilot_requirement(at(100)), Some(PilotReason::New));
    let parent_state = *thread.controller();
    child
        .apply(ThreadEvent::Seeded {
            parent: thread.key().clone(),
            state: parent_state,
            at: at(101),
        })
        .unwrap();
    assert_eq!(child.pilot_requirement(at(101)), None);
    assert_eq!(child.controller().offset, parent_state.offset);
    // Only a new or idle thread can be seeded.
    assert_eq!(
        child.apply(ThreadEvent::Seeded {
            parent: thread.key().clone(),
            state: parent_state,
            at: at(102),
        }),
        Err(ThreadError::SeedNotAllowed)
    );
}

#[test]
fn outliers_in_a_row_ask_for_a_pilot_run() {
    let (mut thread, mut log) = piloted();
    let max = thread.config().params().max_consecutive_outliers;
    for n in 1..=max {
        let r = dispatch(&mut thread, &mut log, n);
        // 6 nm off: far beyond 3.5σ with σ = 0.5.
        assert_eq!(
            measure(&mut thread, &mut log, &format!("M-{n}"), &r, 51.0),
            Disposition::Outlier
        );
    }
    assert_eq!(
        thread.pilot_requirement(at(10)),
        Some(PilotReason::Outliers)
    );
    let before = *thread.controller();
    assert_eq!(before.consecutive_outliers, max);
    let p = dispatch(&mut thread, &mut log, 10);
    assert_eq!(
        measure(&mut thread, &mut log, "M-10", &p, 51.0),
        Disposition::Pilot
    );
    assert_eq!(thread.pilot_requirement(at(11)), None);
}

#[test]
fn a_new_config_version_is_applied_forward_only() {
    let (mut thread, _) = piloted();
    let v2 = thread
        .config()
        .revise(ConfigVersion(2), |p| {
            p.kind = crate::domain::apc::controller::ControllerKind::Ewma { lambda: 0.2 }
        })
        .unwrap();
    thread
        .apply(ThreadEvent::Reconfigured {
            config: v2.clone(),
            at: at(1),
        })
        .unwrap();
    assert_eq!(thread.config().version(), ConfigVersion(2));
    assert_eq!(
        thread.pilot_requirement(at(2)),
        None,
        "same model gain: no pilot"
    );
    assert_eq!(
        thread.apply(ThreadEvent::Reconfigured {
            config: v2,
            at: at(2)
        }),
        Err(ThreadError::StaleConfig {
            current: ConfigVersion(2),
            got: ConfigVersion(2)
        })
    );
    let v3 = thread.config().revise(ConfigVersion(3), |p| {
        p.model_gain = -4.0;
        p.process_gain = -4.0;
    });
    thread
        .apply(ThreadEvent::Reconfigured {
            config: v3.unwrap(),
            at: at(3),
        })
        .unwrap();
    assert_eq!(
        thread.pilot_requirement(at(4)),
        Some(PilotReason::Reconfigured)
    );
}

#[test]
fn the_tools_applied_sr_report_replaces_the_sent_one_even_after_metrology() {
    let (mut thread, mut log) = piloted();
    let r1 = dispatch(&mut thread, &mut log, 1);
    let before = *thread.controller();
    measure(&mut thread, &mut log, "M-1", &r1, 45.3);
    // The tool rounded the dose and says so after the measurement was folded in: the epoch is
    // replayed with the reported SR.
    let reported = r1.applied_sr + 0.05;
    let report = ThreadEvent::SrReported {
        run: r1.run.clone(),
        sr: reported,
        at: at(2),
    };
    thread.apply(report.clone()).unwrap().unwrap();
    let expected = before
        .update(thread.config(), reported, 45.3)
        .unwrap()
        .state;
    assert_eq!(*thread.controller(), expected);
    assert_eq!(thread.measurements().last().unwrap().applied_sr, reported);
    assert_eq!(thread.run(&r1.run).unwrap().effective_sr(), reported);
    // Repeated: a no-op; another value: refused; NaN: refused.
    assert_eq!(thread.apply(report), Ok(None));
    assert_eq!(
        thread.apply(ThreadEvent::SrReported {
            run: r1.run.clone(),
            sr: reported + 1.0,
            at: at(3),
        }),
        Err(ThreadError::ConflictingReport(r1.run.clone()))
    );
    assert!(matches!(
        thread.apply(ThreadEvent::SrReported {
            run: r1.run.clone(),
            sr: f64::NAN,
            at: at(3),
        }),
        Err(ThreadError::NonFinite { field: "sr", .. })
    ));
    // Later metrology of a reported run uses the report too.
    let r2 = dispatch(&mut thread, &mut log, 2);
    thread
        .apply(ThreadEvent::SrReported {
            run: r2.run.clone(),
            sr: 41.0,
            at: at(4),
        })
        .unwrap();
    measure(&mut thread, &mut log, "M-2", &r2, 45.1);
    assert_eq!(thread.measurements().last().unwrap().applied_sr, 41.0);
}

#[test]
fn any_sequence_of_events_leaves_the_thread_equal_to_the_fold_of_those_it_accepted() {
    // Seeded random event streams, with bad values mixed in: nothing panics, a refused event
    // changes nothing, and folding the accepted ones rebuilds the very same thread.
    use rand::{Rng, SeedableRng};
    for seed in 0..100 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (mut thread, created) = Thread::create(key(Technology::N7), config(), at(0));
        let mut accepted = vec![created.event];
        let mut runs: Vec<RunRecord> = Vec::new();
        for i in 0..150u32 {
            let now = at(u64::from(i) * 60);
            let pick = |rng: &mut rand_chacha::ChaCha8Rng, runs: &[RunRecord]| {
                runs.get(rng.random_range(0..runs.len().max(1))).cloned()
            };
            let value = match rng.random_range(0..20) {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => 1e300,
                _ => 45.0 + rng.random_range(-3.0..3.0),
            };
            let event = match rng.random_range(0..16) {
                0..=3 => {
                    // A dispatch may be refused (out of spec after wild metrology): fine.
                    if let Ok((r, t)) = Apc.dispatch(
                        &mut thread,
                        &formula(i),
                        &limits(),
                        name(&format!("R-{i}")),
                        now,
                    ) {
                        runs.push(r);
                        accepted.push(t.event);
                    }
                    continue;
                }
                4..=6 => match pick(&mut rng, &runs) {
                    Some(r) => ThreadEvent::Measured(Measurement {
                        id: name(&format!("M-{}", rng.random_range(0..40))),
                        run: r.run,
                        value,
                        at: now,
                    }),
                    None => continue,
                },
                7 => ThreadEvent::Invalidated {
                    measurement: name(&format!("M-{}", rng.random_range(0..40))),
                    by: name("eng"),
                    reason: "x".into(),
                    at: now,
                },
                8 => match pick(&mut rng, &runs) {
                    Some(r) => ThreadEvent::SrReported {
                        run: r.run,
                        sr: value - 5.0,
                        at: now,
                    },
                    None => continue,
                },
                9 => ThreadEvent::Maintained { at: now },
                10 => ThreadEvent::Frozen(Freeze {
                    by: name("eng"),
                    reason: "x".into(),
                    at: now,
                }),
                11 => ThreadEvent::Unfrozen {
                    by: name("eng"),
                    at: now,
                },
                12 => ThreadEvent::Reset {
                    by: name("eng"),
                    reason: "x".into(),
                    at: now,
                },
                13 => ThreadEvent::Seeded {
                    parent: key(Technology::N5),
                    state: ControllerState {
                        offset: value + 200.0,
                        drift: 0.0,
                        sigma: if value > 44.0 { 0.5 } else { 0.0 },
                        updates: 3,
                        consecutive_outliers: 0,
                    },
                    at: now,
                },
                14 => {
                    let lambda = rng.random_range(0.05..1.2);
                    match thread.config().revise(ConfigVersion(i + 2), |p| {
                        p.kind = crate::domain::apc::controller::ControllerKind::Ewma { lambda };
                        p.model_gain = if value > 45.0 { -5.0 } else { -4.0 };
                    }) {
                        Ok(config) => ThreadEvent::Reconfigured { config, at: now },
                        Err(_) => continue,
                    }
                }
                // A stale config version.
                _ => ThreadEvent::Reconfigured {
                    config: config(),
                    at: now,
                },
            };
            let snapshot = thread.clone();
            match thread.apply(event) {
                Ok(Some(t)) => accepted.push(t.event),
                Ok(None) => assert_eq!(thread, snapshot, "seed {seed}: a no-op changed the thread"),
                Err(_) => assert_eq!(
                    thread, snapshot,
                    "seed {seed}: a refused event changed the thread"
                ),
            }
            assert!(thread.controller().offset.is_finite(), "seed {seed}");
        }
        assert!(
            accepted.len() > 30,
            "seed {seed}: only {} events accepted",
            accepted.len()
        );
        assert!(thread.measurements().len() > 5, "seed {seed}");
        assert_eq!(
            Thread::from_events(&accepted).unwrap(),
            thread,
            "seed {seed}"
        );
    }
}
