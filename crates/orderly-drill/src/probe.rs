//! Readiness probes with Kubernetes semantics: an initial delay, then one probe every period,
//! each bounded by a timeout (a timeout is a failure); the replica becomes ready after
//! `success_threshold` consecutive successes and unready after `failure_threshold` consecutive
//! failures. It starts unready.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// A readiness probe's settings (Kubernetes `readinessProbe`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Probe {
    /// Before the first probe (`initialDelaySeconds`).
    #[serde(serialize_with = "crate::report::as_ms", rename = "initial_delay_ms")]
    pub initial_delay: Duration,
    /// Between probes (`periodSeconds`).
    #[serde(serialize_with = "crate::report::as_ms", rename = "period_ms")]
    pub period: Duration,
    /// For one probe; longer is a failure (`timeoutSeconds`).
    #[serde(serialize_with = "crate::report::as_ms", rename = "timeout_ms")]
    pub timeout: Duration,
    /// Consecutive successes to become ready (`successThreshold`).
    pub success_threshold: u32,
    /// Consecutive failures to become unready (`failureThreshold`).
    pub failure_threshold: u32,
}

impl Probe {
    /// Kubernetes' defaults: no initial delay, every 10 s, 1 s timeout, thresholds 1 and 3.
    pub fn kubernetes() -> Self {
        Self {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold: 3,
        }
    }

    /// Kubernetes' semantics scaled down 100 times for a fast drill: every 100 ms, 500 ms
    /// timeout (a loaded 2-core machine can be slow to answer), thresholds 1 and 3.
    pub fn fast() -> Self {
        Self {
            period: Duration::from_millis(100),
            timeout: Duration::from_millis(500),
            ..Self::kubernetes()
        }
    }

    /// What is wrong with these settings, each naming its option.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.period.is_zero() {
            problems.push("--probe-period must be above 0".to_owned());
        }
        if self.timeout.is_zero() {
            problems.push("--probe-timeout must be above 0".to_owned());
        }
        if self.success_threshold == 0 {
            problems.push("--probe-success-threshold must be at least 1".to_owned());
        }
        if self.failure_threshold == 0 {
            problems.push("--probe-failure-threshold must be at least 1".to_owned());
        }
        problems
    }
}

impl Default for Probe {
    fn default() -> Self {
        Self::fast()
    }
}

/// The readiness a sequence of probe results leads to.
#[derive(Debug, Default)]
pub(crate) struct Readiness {
    ready: bool,
    successes: u32,
    failures: u32,
}

impl Readiness {
    /// Records one probe result; returns the new readiness when it changed.
    pub(crate) fn observe(&mut self, success: bool, probe: &Probe) -> Option<bool> {
        if success {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if !self.ready && self.successes >= probe.success_threshold {
                self.ready = true;
                return Some(true);
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.ready && self.failures >= probe.failure_threshold {
                self.ready = false;
                return Some(false);
            }
        }
        None
    }
}

/// Probes with `check` until `stop`, calling `changed` with every change of readiness.
pub(crate) async fn run<F, Fut>(
    probe: Probe,
    mut check: F,
    mut changed: impl FnMut(bool),
    stop: CancellationToken,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let probing = async {
        tokio::time::sleep(probe.initial_delay).await;
        let mut ticks = tokio::time::interval(probe.period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut readiness = Readiness::default();
        loop {
            ticks.tick().await;
            let success = tokio::time::timeout(probe.timeout, check())
                .await
                .unwrap_or(false);
            if let Some(now_ready) = readiness.observe(success, &probe) {
                changed(now_ready);
            }
        }
    };
    tokio::select! {
        () = probing => {}
        () = stop.cancelled() => {}
    }
}

/// One HTTP probe, as the kubelet makes it: a fresh connection, `GET path`, success on a
/// status from 200 to 399.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> bool {
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await
    else {
        return false;
    };
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::USER_AGENT, "orderly-drill-probe")
        // The kubelet closes its probe connections.
        .header(http::header::CONNECTION, "close")
        .body(Empty::new());
    let Ok(request) = request else {
        return false;
    };
    // The connection is driven here, not spawned: it ends with this probe. It may end (the
    // server closed it) in the same poll that delivered the response, so the response is
    // still awaited after it has ended.
    let exchange = async {
        let response = sender.send_request(request).await.ok()?;
        Some((200..400).contains(&response.status().as_u16()))
    };
    let mut exchange = std::pin::pin!(exchange);
    let mut connection = std::pin::pin!(connection);
    let mut connected = true;
    loop {
        tokio::select! {
            biased;
            outcome = &mut exchange => return outcome.unwrap_or(false),
            _ = &mut connection, if connected => connected = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use tokio::sync::watch;
    use tokio::time::Instant;

    use super::*;

    fn probe(success_threshold: u32, failure_threshold: u32) -> Probe {
        Probe {
            initial_delay: Duration::from_secs(1),
            period: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            success_threshold,
            failure_threshold,
        }
    }

    #[test]
    fn thresholds_count_consecutive_results() {
        let probe = probe(2, 3);
        let mut readiness = Readiness::default();
        // Starts unready; a failure while unready changes nothing.
        assert_eq!(readiness.observe(false, &probe), None);
        assert_eq!(readiness.observe(true, &probe), None);
        // A failure resets the success streak.
        assert_eq!(readiness.observe(false, &probe), None);
        assert_eq!(readiness.observe(true, &probe), None);
        assert_eq!(readiness.observe(true, &probe), Some(true));
        assert_eq!(readiness.observe(true, &probe), None);
        assert_eq!(readiness.observe(false, &probe), None);
        assert_eq!(readiness.observe(false, &probe), None);
        assert_eq!(readiness.observe(true, &probe), None);
        assert_eq!(readiness.observe(false, &probe), None);
        assert_eq!(readiness.observe(false, &probe), None);
        assert_eq!(readiness.observe(false, &probe), Some(false));
    }

    /// Runs the probe loop against a check whose answers are `answers` (then failures), each
    /// taking `answer_after`; returns when readiness changed each time.
    async fn changes(
        probe: Probe,
        answers: &'static [bool],
        answer_after: Duration,
        expected_changes: usize,
    ) -> Vec<(Duration, bool)> {
        let start = Instant::now();
        let (tx, mut rx) = watch::channel(false);
        let stop = CancellationToken::new();
        let calls = Arc::new(AtomicU32::new(0));
        let check = {
            let calls = calls.clone();
            move || {
                let n = calls.fetch_add(1, Ordering::SeqCst) as usize;
                async move {
                    tokio::time::sleep(answer_after).await;
                    answers.get(n).copied().unwrap_or(false)
                }
            }
        };
        let changed = move |ready| {
            tx.send_replace(ready);
        };
        let task = tokio::spawn(run(probe, check, changed, stop.clone()));
        let mut seen = Vec::new();
        while seen.len() < expected_changes {
            rx.changed().await.unwrap();
            seen.push((start.elapsed(), *rx.borrow_and_update()));
        }
        stop.cancel();
        task.await.unwrap();
        seen
    }

    #[tokio::test(start_paused = true)]
    async fn ready_after_the_success_threshold_unready_after_the_failure_threshold() {
        // Probes at 1 s, 11 s, 21 s…, each answering after 100 ms: ready at the second success
        // in a row (21 s), unready at the third failure in a row (61 s).
        let seen = changes(
            probe(2, 3),
            &[false, true, true, true, false, false, false],
            Duration::from_millis(100),
            2,
        )
        .await;
        assert_eq!(
            seen,
            [
                (Duration::from_millis(21_100), true),
                (Duration::from_millis(61_100), false),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_after_the_timeout_is_a_failure() {
        let (tx, rx) = watch::channel(false);
        let stop = CancellationToken::new();
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(1_001)).await;
            true
        };
        let changed = move |ready| {
            tx.send_replace(ready);
        };
        let task = tokio::spawn(run(probe(1, 3), slow, changed, stop.clone()));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!*rx.borrow());
        stop.cancel();
        task.await.unwrap();

        let seen = changes(probe(1, 1), &[true], Duration::from_millis(999), 2).await;
        assert_eq!(
            seen,
            [
                (Duration::from_millis(1_999), true),
                (Duration::from_millis(11_999), false),
            ]
        );
    }
}
