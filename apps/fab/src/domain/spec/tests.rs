use std::time::Duration;

use super::*;
use crate::domain::fdc::limits::Band;
use crate::domain::fdc::rules::RuleSet;

fn n(v: &str) -> Name {
    Name::parse("test", v).unwrap()
}

fn at(s: u64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + s)
}

fn content(max_dose: f64) -> SpecContent {
    SpecContent {
        sr_limits: vec![
            SrLimitItem {
                product: n("soc-a"),
                layer: n("M1"),
                min: 30.0,
                max: max_dose,
            },
            SrLimitItem {
                product: n("soc-a"),
                layer: n("POLY"),
                min: 25.0,
                max: 45.0,
            },
        ],
        fdc_limits: vec![LimitsParams {
            parameter: n("chuck-temp"),
            spec: Band { lo: 21.4, hi: 22.6 },
            mean: 22.0,
            sigma: 0.1,
            deadband: 0.05,
            physical: Band {
                lo: -50.0,
                hi: 400.0,
            },
            rules: RuleSet::western_electric(),
            max_gap: Duration::from_secs(4),
            stuck_samples: 8,
        }],
    }
}

/// Drafts, approves and releases a set with `max_dose`; returns its version.
fn publish(reg: &mut SpecRegistry, max_dose: f64, t: u64) -> SpecVersion {
    let v = reg
        .create_draft(content(max_dose), n("eng-ada"), at(t))
        .unwrap();
    reg.approve(v, n("eng-bob"), at(t + 1)).unwrap();
    reg.release(v, n("eng-bob"), at(t + 2)).unwrap();
    v
}

#[test]
fn versions_are_monotonic_and_one_set_is_released_at_a_time() {
    let mut reg = SpecRegistry::new();
    let v1 = publish(&mut reg, 50.0, 0);
    let v2 = reg
        .create_draft(content(52.0), n("eng-ada"), at(10))
        .unwrap();
    let v3 = reg
        .create_draft(content(54.0), n("eng-ada"), at(11))
        .unwrap();
    assert_eq!(
        (v1, v2, v3),
        (SpecVersion(1), SpecVersion(2), SpecVersion(3))
    );
    // A retired draft's number is never reused.
    reg.retire(v3, n("eng-ada"), at(12)).unwrap();
    let v4 = reg
        .create_draft(content(55.0), n("eng-ada"), at(13))
        .unwrap();
    assert_eq!(v4, SpecVersion(4));

    // Lifecycle: only an approved set is released, approval needs a second person.
    assert!(matches!(
        reg.release(v2, n("eng-bob"), at(14)),
        Err(SpecError::WrongState { .. })
    ));
    assert!(matches!(
        reg.approve(v2, n("eng-ada"), at(14)),
        Err(SpecError::SelfApproval { .. })
    ));
    reg.approve(v2, n("eng-bob"), at(15)).unwrap();
    reg.approve(v4, n("eng-bob"), at(15)).unwrap();
    reg.release(v4, n("eng-bob"), at(16)).unwrap();
    assert_eq!(
        reg.get(v1).unwrap().state,
        SpecState::Retired,
        "superseded in the same change"
    );
    assert_eq!(reg.released().map(|s| s.version), Some(v4));
    // An older approved set can no longer be released.
    assert_eq!(
        reg.release(v2, n("eng-bob"), at(17)),
        Err(SpecError::NotNewer {
            current: v4,
            got: v2
        })
    );
    let released = reg
        .sets
        .values()
        .filter(|s| s.state == SpecState::Released)
        .count();
    assert_eq!(released, 1);
    // Invalid content never becomes a draft, and takes no version number.
    let e = reg
        .create_draft(content(f64::NAN), n("eng-ada"), at(18))
        .unwrap_err();
    assert!(e.to_string().contains("sr_limits[0]"), "{e}");
    assert_eq!(
        reg.create_draft(content(50.0), n("eng-ada"), at(19)),
        Ok(SpecVersion(5))
    );
}

#[test]
fn a_fab_applies_a_release_atomically_or_not_at_all() {
    let mut reg = SpecRegistry::new();
    let v1 = publish(&mut reg, 50.0, 0);
    let mut fab = FabSpecs::new(n("fab-1"));
    let ack = fab.apply(reg.get(v1).unwrap(), at(5)).unwrap().unwrap();
    assert_eq!(ack.version, v1);
    assert_eq!(
        fab.sr_limits(&n("soc-a"), &n("M1")).map(|l| l.max()),
        Some(50.0)
    );

    // A set that arrives corrupted (valid JSON, invalid second FDC item) is refused whole: the
    // fab keeps v1's SR limits *and* v1's FDC limits, not a mixture.
    let v2 = publish(&mut reg, 52.0, 10);
    let mut json = serde_json::to_value(reg.get(v2).unwrap()).unwrap();
    json["content"]["fdc_limits"][0]["sigma"] = serde_json::json!(-1.0);
    let corrupted: SpecSet = serde_json::from_value(json).unwrap();
    let e = fab.apply(&corrupted, at(20)).unwrap_err();
    assert!(e.to_string().contains("fdc_limits[0]"), "{e}");
    assert_eq!(fab.version(), Some(v1));
    assert_eq!(
        fab.sr_limits(&n("soc-a"), &n("M1")).map(|l| l.max()),
        Some(50.0)
    );
    assert_eq!(
        fab.fdc_limits(&n("chuck-temp")).map(|l| l.version()),
        Some(LimitsVersion(1))
    );

    // The intact set applies; its limits carry its version everywhere.
    fab.apply(reg.get(v2).unwrap(), at(21)).unwrap();
    assert_eq!(
        fab.sr_limits(&n("soc-a"), &n("M1"))
            .map(|l| (l.max(), l.spec_version())),
        Some((52.0, 2))
    );
    assert_eq!(
        fab.fdc_limits(&n("chuck-temp")).map(|l| l.version()),
        Some(LimitsVersion(2))
    );
    // Applying it again changes nothing; an older one is refused; so is an unreleased one.
    assert_eq!(fab.apply(reg.get(v2).unwrap(), at(22)), Ok(None));
    let mut old = reg.get(v1).unwrap().clone();
    old.state = SpecState::Released;
    assert!(matches!(
        fab.apply(&old, at(23)),
        Err(SpecError::NotNewer { .. })
    ));
    let draft = reg
        .create_draft(content(53.0), n("eng-ada"), at(24))
        .unwrap();
    assert!(matches!(
        fab.apply(reg.get(draft).unwrap(), at(25)),
        Err(SpecError::WrongState { .. })
    ));
    assert_eq!(fab.version(), Some(v2));
}

#[test]
fn a_cursor_ahead_of_the_head_gets_nothing_and_the_real_head() {
    let mut reg = SpecRegistry::new();
    let empty = reg.changes_since(Revision(7));
    assert!(empty.changes.is_empty());
    assert_eq!(empty.head, Revision(0));
    publish(&mut reg, 50.0, 0);
    let ahead = reg.changes_since(Revision(u64::MAX));
    assert!(ahead.changes.is_empty());
    assert!(ahead.released.is_none());
    assert_eq!(ahead.head, Revision(3));
}

#[test]
fn delta_sync_and_per_fab_acknowledgements() {
    let mut reg = SpecRegistry::new();
    let v1 = publish(&mut reg, 50.0, 0);
    let d = reg.changes_since(Revision(0));
    assert_eq!(d.changes.len(), 3);
    assert_eq!(d.released.as_ref().map(|s| s.version), Some(v1));
    let head = d.head;
    assert!(reg.changes_since(head).changes.is_empty());
    assert_eq!(reg.changes_since(head).head, head);

    let v2 = publish(&mut reg, 52.0, 10);
    let d = reg.changes_since(head);
    assert_eq!(
        d.changes.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(),
        vec![
            SpecChange::Drafted { version: v2 },
            SpecChange::Approved { version: v2 },
            SpecChange::Released {
                version: v2,
                superseded: Some(v1)
            },
        ]
    );
    assert_eq!(d.released.map(|s| s.version), Some(v2));

    // fab-1 runs v2, fab-2 still v1 (cannot reach the centre), fab-3 never acknowledged.
    let fabs = [n("fab-1"), n("fab-2"), n("fab-3")];
    reg.acknowledge(Acknowledgement {
        fab: n("fab-2"),
        version: v1,
        at: at(5),
    })
    .unwrap();
    reg.acknowledge(Acknowledgement {
        fab: n("fab-1"),
        version: v2,
        at: at(15),
    })
    .unwrap();
    let lagging: Vec<_> = reg.lagging(&fabs).into_iter().cloned().collect();
    assert_eq!(lagging, vec![n("fab-2"), n("fab-3")]);
    // Acknowledgements only go forward, and only for released sets.
    assert!(matches!(
        reg.acknowledge(Acknowledgement {
            fab: n("fab-1"),
            version: v1,
            at: at(16)
        }),
        Err(SpecError::NotNewer { .. })
    ));
    let draft = reg
        .create_draft(content(53.0), n("eng-ada"), at(17))
        .unwrap();
    assert!(matches!(
        reg.acknowledge(Acknowledgement {
            fab: n("fab-2"),
            version: draft,
            at: at(18)
        }),
        Err(SpecError::WrongState { .. })
    ));
    assert_eq!(reg.acknowledgements().count(), 2);
}
