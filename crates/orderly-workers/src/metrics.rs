//! The pool's metrics, through the `metrics` facade, labelled with the pool's name.

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

/// Handles made once per start, so a job pays no key lookup.
pub(crate) struct JobMetrics {
    running: Gauge,
    queued: Gauge,
    completed: Counter,
    failed: Counter,
    abandoned: Counter,
    rejected: Counter,
    duration: Histogram,
}

impl JobMetrics {
    pub(crate) fn new(pool: &str) -> Self {
        let label = [("pool", pool.to_owned())];
        Self {
            running: metrics::gauge!("workers_jobs_running", &label),
            queued: metrics::gauge!("workers_jobs_queued", &label),
            completed: metrics::counter!("workers_jobs_completed_total", &label),
            failed: metrics::counter!("workers_jobs_failed_total", &label),
            abandoned: metrics::counter!("workers_jobs_abandoned_total", &label),
            rejected: metrics::counter!("workers_jobs_rejected_total", &label),
            duration: metrics::histogram!("workers_job_duration_seconds", &label),
        }
    }

    pub(crate) fn enqueued(&self) {
        self.queued.increment(1.0);
    }

    pub(crate) fn dequeued(&self) {
        self.queued.decrement(1.0);
    }

    pub(crate) fn started(&self) {
        self.running.increment(1.0);
    }

    pub(crate) fn ended(&self) {
        self.running.decrement(1.0);
    }

    pub(crate) fn finished(&self, took: Duration, succeeded: bool) {
        self.duration.record(took.as_secs_f64());
        if succeeded {
            self.completed.increment(1);
        } else {
            self.failed.increment(1);
        }
    }

    pub(crate) fn abandoned(&self, count: usize) {
        self.abandoned.increment(count as u64);
    }

    pub(crate) fn rejected(&self) {
        self.rejected.increment(1);
    }
}
