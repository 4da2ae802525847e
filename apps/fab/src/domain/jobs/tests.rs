use super::*;

fn n(v: &str) -> Name {
    Name::parse("test", v).unwrap()
}

fn expose(lot: &str, reticle: &str, priority: LotPriority) -> ToolJob {
    ToolJob::Expose {
        run: n(&format!("R-{lot}")),
        lot: n(lot),
        reticle: n(reticle),
        sr: 40.0,
        priority,
    }
}

fn check_in(reticle: &str) -> ToolJob {
    ToolJob::CheckIn {
        reticle: n(reticle),
    }
}

fn check_out(reticle: &str) -> ToolJob {
    ToolJob::CheckOut {
        reticle: n(reticle),
    }
}

use LotPriority::{Hot, Normal};

#[test]
fn jobs_run_first_in_first_out() {
    let mut q = JobQueue::new();
    let a = q.submit(check_in("RT-A")).unwrap();
    let b = q.submit(expose("L1", "RT-A", Normal)).unwrap();
    let c = q.submit(expose("L2", "RT-A", Normal)).unwrap();
    let d = q.submit(check_out("RT-A")).unwrap();
    assert_eq!(q.planned_order(), vec![a, b, c, d]);
    for id in [a, b, c, d] {
        assert_eq!(q.start_next().map(|j| j.id), Some(id));
        assert_eq!(q.start_next(), None, "one job at a time");
        q.complete(id).unwrap();
    }
    assert!(!q.is_loaded(&n("RT-A")));
    assert_eq!(q.start_next(), None);
}

#[test]
fn a_hot_lot_jumps_the_waiting_jobs_but_not_the_running_one() {
    let mut q = JobQueue::new();
    let ci = q.submit(check_in("RT-A")).unwrap();
    let l1 = q.submit(expose("L1", "RT-A", Normal)).unwrap();
    let l2 = q.submit(expose("L2", "RT-A", Normal)).unwrap();
    assert_eq!(q.start_next().map(|j| j.id), Some(ci));
    q.complete(ci).unwrap();
    assert_eq!(q.start_next().map(|j| j.id), Some(l1));
    // L1 runs; a hot lot arrives: it waits for L1, then goes before L2.
    let hot = q.submit(expose("HOT", "RT-A", Hot)).unwrap();
    assert_eq!(q.start_next(), None);
    assert_eq!(q.running().map(|j| j.id), Some(l1));
    assert_eq!(q.planned_order(), vec![l1, hot, l2]);
    q.complete(l1).unwrap();
    assert_eq!(q.start_next().map(|j| j.id), Some(hot));
}

#[test]
fn hot_lots_keep_their_order_among_themselves() {
    let mut q = JobQueue::new();
    let ci = q.submit(check_in("RT-A")).unwrap();
    let l1 = q.submit(expose("L1", "RT-A", Normal)).unwrap();
    let h1 = q.submit(expose("H1", "RT-A", Hot)).unwrap();
    let h2 = q.submit(expose("H2", "RT-A", Hot)).unwrap();
    // RT-A is not in yet: the check-in H1 depends on runs first, then H1, H2, then L1.
    assert_eq!(q.planned_order(), vec![ci, h1, h2, l1]);
}

#[test]
fn a_hot_lot_never_skips_its_reticle_check_in() {
    let mut q = JobQueue::new();
    let ci_a = q.submit(check_in("RT-A")).unwrap();
    let l1 = q.submit(expose("L1", "RT-A", Normal)).unwrap();
    let ci_b = q.submit(check_in("RT-B")).unwrap();
    let l2 = q.submit(expose("L2", "RT-B", Normal)).unwrap();
    let hot = q.submit(expose("HOT", "RT-B", Hot)).unwrap();
    // The hot lot needs RT-B: its check-in jumps with it, and runs before it.
    assert_eq!(q.planned_order(), vec![ci_b, hot, ci_a, l1, l2]);
    // It jumps ahead of a check-out of its reticle while the reticle is in.
    let mut q = JobQueue::new();
    let ci = q.submit(check_in("RT-A")).unwrap();
    assert_eq!(q.start_next().map(|j| j.id), Some(ci));
    q.complete(ci).unwrap();
    let co = q.submit(check_out("RT-A")).unwrap();
    let hot = q.submit(expose("HOT", "RT-A", Hot)).unwrap();
    assert_eq!(q.planned_order(), vec![hot, co]);
}

#[test]
fn jobs_the_plan_cannot_satisfy_are_refused() {
    let mut q = JobQueue::new();
    assert!(matches!(
        q.submit(expose("L1", "RT-A", Normal)),
        Err(JobError::ReticleNotIn { .. })
    ));
    assert!(matches!(
        q.submit(expose("H", "RT-A", Hot)),
        Err(JobError::ReticleNotIn { .. })
    ));
    assert!(matches!(
        q.submit(check_out("RT-A")),
        Err(JobError::ReticleNotIn { .. })
    ));
    q.submit(check_in("RT-A")).unwrap();
    assert!(matches!(
        q.submit(check_in("RT-A")),
        Err(JobError::ReticleAlreadyIn { .. })
    ));
    q.submit(check_out("RT-A")).unwrap();
    // After the planned check-out a normal lot cannot use RT-A…
    assert!(matches!(
        q.submit(expose("L2", "RT-A", Normal)),
        Err(JobError::ReticleNotIn { .. })
    ));
    // …and NaN never reaches a tool.
    let mut bad = expose("L3", "RT-A", Normal);
    if let ToolJob::Expose { sr, .. } = &mut bad {
        *sr = f64::NAN;
    }
    assert!(matches!(q.submit(bad), Err(JobError::NonFiniteSr(_))));
    assert_eq!(q.waiting().count(), 2);
}

#[test]
fn a_check_in_others_depend_on_cannot_be_cancelled() {
    let mut q = JobQueue::new();
    let ci = q.submit(check_in("RT-A")).unwrap();
    let l1 = q.submit(expose("L1", "RT-A", Normal)).unwrap();
    assert!(matches!(q.cancel(ci), Err(JobError::ReticleNotIn { .. })));
    assert_eq!(q.planned_order(), vec![ci, l1]);
    q.cancel(l1).unwrap();
    q.cancel(ci).unwrap();
    assert_eq!(q.cancel(ci), Err(JobError::NotWaiting(ci)));
    assert_eq!(q.waiting().count(), 0);
}

#[test]
fn only_the_running_job_can_complete() {
    let mut q = JobQueue::new();
    let ci = q.submit(check_in("RT-A")).unwrap();
    let l1 = q.submit(expose("L1", "RT-A", Normal)).unwrap();
    assert_eq!(q.complete(ci), Err(JobError::NotRunning(ci)));
    q.start_next();
    assert_eq!(q.complete(l1), Err(JobError::NotRunning(l1)));
    assert!(q.complete(ci).is_ok());
    assert!(q.is_loaded(&n("RT-A")));
}

#[test]
fn every_planned_order_respects_reticle_dependencies() {
    // Property over many seeded random job streams: whatever is accepted, no exposure starts
    // without its reticle, no check-in or check-out runs against the tool's state, and every
    // accepted job eventually runs.
    use rand::{Rng, SeedableRng};
    for seed in 0..200 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut q = JobQueue::new();
        let reticles = ["RT-A", "RT-B", "RT-C"];
        for i in 0..40 {
            let r = reticles[rng.random_range(0..3)];
            let job = match rng.random_range(0..10) {
                0 | 1 => check_in(r),
                2 => check_out(r),
                3 => expose(&format!("H{i}"), r, Hot),
                _ => expose(&format!("L{i}"), r, Normal),
            };
            let _ = q.submit(job);
            if rng.random_bool(0.3) {
                if let Some(id) = q.running().map(|j| j.id) {
                    q.complete(id).unwrap();
                }
                if let Some(j) = q.start_next().cloned()
                    && let ToolJob::Expose { reticle, .. } = &j.job
                {
                    assert!(
                        q.is_loaded(reticle),
                        "seed {seed}: exposure without its reticle"
                    );
                }
            }
        }
        // Drain the rest.
        loop {
            if let Some(id) = q.running().map(|j| j.id) {
                q.complete(id).unwrap();
            }
            let Some(j) = q.start_next().cloned() else {
                break;
            };
            match &j.job {
                ToolJob::Expose { reticle, .. } => {
                    assert!(
                        q.is_loaded(reticle),
                        "seed {seed}: exposure without its reticle"
                    );
                }
                ToolJob::CheckIn { reticle } => assert!(!q.is_loaded(reticle), "seed {seed}"),
                ToolJob::CheckOut { reticle } => assert!(q.is_loaded(reticle), "seed {seed}"),
            }
        }
        assert_eq!(q.waiting().count(), 0, "seed {seed}: a job was stranded");
    }
}

#[test]
fn peek_next_names_what_start_next_starts_and_changes_nothing() {
    let mut q = JobQueue::new();
    assert_eq!(q.peek_next(), None);
    let a = q.submit(check_in("RT-A")).unwrap();
    let b = q.submit(expose("L1", "RT-A", Normal)).unwrap();
    let c = q.submit(expose("HOT", "RT-A", Hot)).unwrap();
    for expected in [a, c, b] {
        let before = q.clone();
        let peeked = q.peek_next().map(|j| j.id);
        assert_eq!(q, before, "peeking changes nothing");
        assert_eq!(peeked, Some(expected));
        assert_eq!(q.start_next().map(|j| j.id), Some(expected));
        // Nothing starts while a job runs, and peeking says so.
        assert_eq!(q.peek_next(), None);
        q.complete(expected).unwrap();
    }
    assert_eq!(q.loaded().collect::<Vec<_>>(), vec![&n("RT-A")]);
}

#[test]
fn a_queue_survives_its_stored_form() {
    // The service stores the queue as JSON and reloads it for the next request.
    let mut q = JobQueue::new();
    let a = q.submit(check_in("RT-A")).unwrap();
    q.submit(expose("L1", "RT-A", Normal)).unwrap();
    q.submit(expose("HOT", "RT-A", Hot)).unwrap();
    q.start_next();
    q.complete(a).unwrap();
    q.start_next();
    q.submit(check_out("RT-A")).unwrap();
    let text = serde_json::to_string(&q).unwrap();
    let back: JobQueue = serde_json::from_str(&text).unwrap();
    assert_eq!(back, q);
    assert_eq!(back.planned_order(), q.planned_order());
    assert!(back.running().is_some_and(|j| j.job.is_exposure()));
}
