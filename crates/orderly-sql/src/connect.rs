//! The start's connection: attempts with exponential backoff, bounded by the connect timeout.

use std::time::Duration;

use sqlx::pool::PoolOptions;
use sqlx::{ConnectOptions as _, Connection as _, Pool};
use tokio::time::Instant;

use crate::backend::{Backend, ConnectOptions, is_transient};
use crate::error::{Error, ErrorKind};
use crate::settings::PoolSettings;

/// A pooled connection idle for longer than this is pinged before it is handed out.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// The waits between attempts: `initial`, doubling each time, at most `max`, each with "equal
/// jitter" (between half the wait and the whole of it), so replicas restarted together do not
/// retry in lockstep.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self { next: initial, max }
    }

    /// The longest wait before the next attempt (the wait without jitter).
    fn next_ceiling(&mut self) -> Duration {
        let wait = self.next.min(self.max);
        self.next = wait.saturating_mul(2);
        wait
    }

    /// The wait before the next attempt.
    pub(crate) fn next_wait(&mut self) -> Duration {
        let ceiling = self.next_ceiling();
        let half = ceiling / 2;
        half.saturating_add(half.mul_f64(random_fraction()))
    }
}

/// A number in `[0, 1)`, different in every call and process; not for cryptography.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    // `RandomState` is seeded randomly per process; the counter varies it per call.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Connects to the database, retrying what may succeed later until the connect timeout, then
/// builds the pool. Each failed attempt is logged with the target (never the password).
pub(crate) async fn connect<DB: Backend>(
    settings: &PoolSettings,
    options: &ConnectOptions<DB>,
    target: &str,
) -> Result<Pool<DB>, Error> {
    let started = Instant::now();
    let deadline = started + settings.connect_timeout;
    let mut backoff = Backoff::new(settings.connect_backoff, settings.connect_backoff_max);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let limit = settings.acquire_timeout.min(left);
        // One connection of our own proves the database answers and accepts us, with its real
        // error when it does not (the pool would report only a timeout).
        let cause = match tokio::time::timeout(limit, options.connect()).await {
            Ok(Ok(connection)) => {
                // Closing a healthy connection has nothing to report.
                let _ = connection.close().await;
                break;
            }
            Ok(Err(error)) if !is_transient(&error) => {
                return Err(Error::new(ErrorKind::Refused {
                    backend: DB::LABEL,
                    target: target.to_owned(),
                    attempts,
                    reason: error.to_string(),
                }));
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {limit:?}"),
        };
        let wait = backoff.next_wait();
        let left = deadline.saturating_duration_since(Instant::now());
        if left <= wait {
            return Err(Error::new(ErrorKind::Unreachable {
                backend: DB::LABEL,
                target: target.to_owned(),
                attempts,
                elapsed: started.elapsed(),
                last: cause,
            }));
        }
        tracing::warn!(
            backend = DB::LABEL,
            database = target,
            attempt = attempts,
            retry_in = ?wait,
            error = cause,
            "cannot connect to the database; retrying"
        );
        tokio::time::sleep(wait).await;
    }
    tracing::info!(
        backend = DB::LABEL,
        database = target,
        attempts,
        took = ?started.elapsed(),
        "connected to the database"
    );
    let pool_options = PoolOptions::<DB>::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(settings.acquire_timeout)
        // sqlx pings every connection it hands out (a round trip before each query run on the
        // pool); a connection that was in use a moment ago is alive, so only one idle for
        // longer than PING_IF_IDLE_FOR is checked (a dead one is dropped and another taken).
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_IF_IDLE_FOR {
                    connection.ping().await?;
                }
                Ok(true)
            })
        });
    Ok(DB::pool_options(settings, pool_options).connect_lazy_with(options.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_the_max() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(700));
        let waits: Vec<u128> = (0..6).map(|_| backoff.next_ceiling().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 700, 700, 700]);
    }

    #[test]
    fn each_wait_is_between_half_and_all_of_its_ceiling() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(700));
        let mut ceilings = backoff.clone();
        let mut waits = std::collections::HashSet::new();
        for _ in 0..50 {
            let (wait, ceiling) = (backoff.next_wait(), ceilings.next_ceiling());
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "{wait:?} of {ceiling:?}"
            );
            waits.insert(wait);
        }
        assert!(waits.len() > 10, "jittered: {waits:?}");
    }

    #[test]
    fn a_huge_wait_does_not_overflow() {
        let mut backoff = Backoff::new(Duration::MAX, Duration::MAX);
        assert!(backoff.next_wait() >= Duration::MAX / 2);
        assert!(backoff.next_wait() >= Duration::MAX / 2);
    }
}
