//! A job that fails or panics is counted and logged, and the pool goes on; the metrics.

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use orderly::BoxError;
use orderly_workers::WorkerPool;

use crate::fixture::{Jobs, start};

/// The pool's metrics since the last snapshot: the debugging recorder's snapshot *takes* the
/// values (counters and gauges are reset to 0), so each snapshot holds the changes since the
/// one before.
struct Taken(Vec<(String, DebugValue)>);

fn take(snapshotter: &Snapshotter) -> Taken {
    Taken(
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(key, ..)| {
                key.key()
                    .labels()
                    .any(|l| l.key() == "pool" && l.value() == "workers")
            })
            .map(|(key, _, _, value)| (key.key().name().to_owned(), value))
            .collect(),
    )
}

impl Taken {
    fn get(&self, name: &str) -> &DebugValue {
        match self.0.iter().find(|(n, _)| n == name) {
            Some((_, value)) => value,
            None => panic!("no metric {name}"),
        }
    }

    fn counter(&self, name: &str) -> u64 {
        match self.get(name) {
            DebugValue::Counter(n) => *n,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn gauge(&self, name: &str) -> f64 {
        match self.get(name) {
            DebugValue::Gauge(n) => n.0,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn samples(&self, name: &str) -> usize {
        match self.get(name) {
            DebugValue::Histogram(samples) => samples.len(),
            other => panic!("{name}: {other:?}"),
        }
    }
}

// The recorder is the thread's: the test runtime is current-thread, so every job runs here.
#[tokio::test(start_paused = true)]
async fn failing_and_panicking_jobs_are_counted_and_the_pool_goes_on() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let (running, workers) = start(WorkerPool::builder().concurrency(1)).await;
    workers
        .submit("broken", async { Err::<(), BoxError>("disk full".into()) })
        .await
        .unwrap();
    workers
        .submit("panicking", async {
            panic!("bug in the job");
            #[allow(unreachable_code)]
            Ok::<(), BoxError>(())
        })
        .await
        .unwrap();
    let mut jobs = Jobs::new();
    let (release, fine) = jobs.held("fine");
    workers.submit("fine", fine).await.unwrap();
    // The pool runs one job at a time: "fine" starts after both failures ended.
    jobs.started().await;
    let now = take(&snapshotter);
    assert_eq!(now.gauge("workers_jobs_running"), 1.0);
    assert_eq!(now.gauge("workers_jobs_queued"), 0.0);
    assert_eq!(now.counter("workers_jobs_failed_total"), 2);
    assert_eq!(now.counter("workers_jobs_completed_total"), 0);
    assert_eq!(now.samples("workers_job_duration_seconds"), 2);
    release.send(()).unwrap();
    jobs.ended().await;

    let report = running.stop().await;
    assert!(
        report.is_clean(),
        "a job's failure stopped the system: {}",
        report.summary()
    );
    // Changes since the snapshot above.
    let since = take(&snapshotter);
    assert_eq!(since.counter("workers_jobs_completed_total"), 1);
    assert_eq!(since.counter("workers_jobs_failed_total"), 0);
    assert_eq!(
        since.gauge("workers_jobs_running"),
        -1.0,
        "the running job ended"
    );
    assert_eq!(since.samples("workers_job_duration_seconds"), 1);
}
