use super::*;
use crate::domain::apc::context::Technology;
use crate::domain::apc::facade::Apc;
use crate::domain::apc::testkit::*;
use crate::domain::apc::thread::{Disposition, ThreadEvent};

/// A thread past its pilot run.
fn piloted() -> Thread {
    let mut thread = new_thread(config());
    let pilot = Apc
        .dispatch(&mut thread, &formula(0), &limits(), name("R-0"), at(0))
        .unwrap()
        .0;
    let t = thread
        .apply(ThreadEvent::Measured(measurement("M-0", &pilot, 46.5)))
        .unwrap()
        .unwrap();
    assert_eq!(t.disposition, Some(Disposition::Pilot));
    thread
}

fn sibling() -> ThreadKey {
    let mut child = key(Technology::N7);
    child.reticle = name("RT-43");
    child
}

#[test]
fn a_settled_sibling_seeds_a_new_thread_that_then_needs_no_pilot() {
    let parent = piloted();
    let child_key = sibling();
    let state = seed_state(&child_key, &parent, at(10)).unwrap();
    assert_eq!(state, *parent.controller());

    let (mut child, _) = Thread::create(child_key.clone(), config(), at(10));
    let t = child
        .apply(ThreadEvent::Seeded {
            parent: parent.key().clone(),
            state,
            at: at(10),
        })
        .unwrap()
        .unwrap();
    assert_eq!(t.after.offset, parent.controller().offset);
    assert_eq!(child.pilot_requirement(at(11)), None);
    // Its first run is a formula run from the parent's state, not a pilot run.
    let mut request = formula(1);
    request.lot.thread = child_key;
    let run = Apc
        .dispatch(&mut child, &request, &limits(), name("R-1"), at(11))
        .unwrap()
        .0;
    assert_eq!(run.pilot, None);
}

#[test]
fn another_tool_of_the_same_process_may_be_the_parent() {
    let parent = piloted();
    let mut child = key(Technology::N7);
    child.tool = name("scanner-08");
    assert!(seed_state(&child, &parent, at(10)).is_ok());
}

#[test]
fn a_parent_of_another_process_itself_or_unsettled_is_refused() {
    let parent = piloted();
    assert_eq!(
        seed_state(parent.key(), &parent, at(10)),
        Err(ParentError::Itself)
    );
    for change in [
        |k: &mut ThreadKey| k.layer = name("POLY"),
        |k: &mut ThreadKey| k.product = name("soc-b"),
        |k: &mut ThreadKey| k.technology = Technology::N5,
    ] {
        let mut child = sibling();
        change(&mut child);
        assert!(matches!(
            seed_state(&child, &parent, at(10)),
            Err(ParentError::OtherProcess { .. })
        ));
    }
    // A parent that never had its pilot measured, or has been idle too long, has nothing to give.
    let fresh = new_thread(config());
    assert!(matches!(
        seed_state(&sibling(), &fresh, at(10)),
        Err(ParentError::Unsettled {
            reason: PilotReason::New,
            ..
        })
    ));
    let idle = parent.config().params().idle_limit;
    let later = at(0).saturating_add(idle + std::time::Duration::from_secs(1));
    assert!(matches!(
        seed_state(&sibling(), &parent, later),
        Err(ParentError::Unsettled {
            reason: PilotReason::Idle,
            ..
        })
    ));
}
