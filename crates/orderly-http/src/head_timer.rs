//! The header-read timer of HTTP/1 connections (slowloris protection), without a timer-wheel
//! entry per request.
//!
//! hyper asks its [`Timer`](hyper::rt::Timer) for a fresh sleep each time a connection waits
//! for a request head, and drops it once the head is read. hyper-util's `TokioTimer` makes each
//! one a boxed `tokio::time::Sleep`, registered in tokio's timer wheel at its first poll and
//! removed at its drop: two locked trips to the timer driver per request on a keep-alive
//! connection.
//!
//! Here each connection has one tokio sleep of its own, kept by the future that drives the
//! connection ([`Timed`]). hyper's sleeps ([`HeadSleep`]) only record the deadline they wait
//! for; after each poll of the connection, [`Timed`] checks that its sleep will wake the
//! connection by that deadline. A sleep still set for the previous head's (earlier) deadline
//! will, so it is left alone; when it fires, the connection's task is woken, and [`Timed`]
//! moves it to the deadline now awaited. A busy keep-alive connection thus touches tokio's
//! timer wheel about once per header-read timeout instead of twice per request. When the
//! sleep fires at the deadline hyper waits for, [`Timed`] records the deadline as reached and
//! polls the connection again; hyper's sleep for it is then ready, and the connection is cut
//! as with `TokioTimer`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// No deadline wanted.
const NONE: u64 = u64::MAX;

/// What a connection's [`HeadTimer`] and its [`Timed`] driver share. Deadlines are nanoseconds
/// since `base`.
#[derive(Debug)]
struct Shared {
    base: Instant,
    /// The deadline of the sleep hyper is waiting on, [`NONE`] if it waits on none.
    wanted: AtomicU64,
    /// The latest deadline the connection's tokio sleep reached.
    reached: AtomicU64,
}

/// The [`hyper::rt::Timer`] of one HTTP/1 connection (see the module's documentation).
#[derive(Clone, Debug)]
pub(crate) struct HeadTimer(Arc<Shared>);

/// A sleep handed to hyper: ready once the connection's own sleep has reached its deadline.
#[derive(Debug)]
struct HeadSleep {
    shared: Arc<Shared>,
    deadline: u64,
}

/// The driver of a connection's [`HeadTimer`]: the connection's future is polled through it
/// ([`Timed::poll`]).
#[derive(Debug)]
pub(crate) struct Timed {
    shared: Arc<Shared>,
    /// Made when the connection first waits for a head that has not arrived: a connection
    /// whose one request came with it never needs one.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The deadline `sleep` is set to, [`NONE`] before the first.
    armed: u64,
    /// The waker `sleep` was last polled with, while it is pending.
    registered: Option<Waker>,
}

impl HeadTimer {
    /// A timer for one connection, and the driver that the connection's future is polled with.
    pub(crate) fn new() -> (Self, Timed) {
        let now = Instant::now();
        let shared = Arc::new(Shared {
            base: now,
            wanted: AtomicU64::new(NONE),
            reached: AtomicU64::new(0),
        });
        let timed = Timed {
            shared: shared.clone(),
            sleep: None,
            armed: NONE,
            registered: None,
        };
        (Self(shared), timed)
    }
}

impl Shared {
    fn nanos(&self, deadline: Instant) -> u64 {
        u64::try_from(deadline.saturating_duration_since(self.base).as_nanos())
            .unwrap_or(NONE - 1)
            .min(NONE - 1)
    }
}

// hyper's `Timer` speaks in std's `Instant`; it is converted to tokio's at once.
#[allow(clippy::disallowed_types)]
impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeadSleep {
            deadline: self.0.nanos(Instant::from_std(deadline)),
            shared: self.0.clone(),
        })
    }

    fn now(&self) -> std::time::Instant {
        // tokio's clock, as `TokioTimer`'s: a paused test clock applies.
        Instant::now().into_std()
    }
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.shared.reached.load(Ordering::Relaxed) >= self.deadline {
            return Poll::Ready(());
        }
        // The connection's driver arms its sleep for this deadline when the connection's
        // poll returns; its wake-up polls the connection, and so this sleep, again.
        self.shared.wanted.store(self.deadline, Ordering::Relaxed);
        Poll::Pending
    }
}

impl hyper::rt::Sleep for HeadSleep {}

impl Drop for HeadSleep {
    fn drop(&mut self) {
        let _ = self.shared.wanted.compare_exchange(
            self.deadline,
            NONE,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
}

impl Timed {
    /// Polls `connection`, then makes sure that the connection's sleep wakes it by the deadline
    /// hyper waits for.
    ///
    /// The sleep is moved only when it would wake the task too late, or not at all: a
    /// registered sleep at an earlier deadline (the previous head's) is left as it is; when it
    /// fires, the task is woken, sees that hyper waits for a later deadline and moves it there.
    /// So a busy keep-alive connection costs a timer-wheel operation about once per header-read
    /// timeout, and a check of three numbers per request.
    pub(crate) fn poll<F: Future + ?Sized>(
        &mut self,
        mut connection: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<F::Output> {
        loop {
            if let Poll::Ready(output) = connection.as_mut().poll(cx) {
                return Poll::Ready(output);
            }
            let wanted = self.shared.wanted.load(Ordering::Relaxed);
            if wanted == NONE || wanted <= self.shared.reached.load(Ordering::Relaxed) {
                // No head awaited, or hyper has already seen its deadline pass.
                return Poll::Pending;
            }
            let deadline = self.shared.base + Duration::from_nanos(wanted);
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            let registered = self
                .registered
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()));
            let elapsed = sleep.is_elapsed();
            if self.armed <= wanted && registered && !elapsed {
                // It wakes the connection by then.
                return Poll::Pending;
            }
            if self.armed != wanted || elapsed {
                self.armed = wanted;
                sleep.as_mut().reset(deadline);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                if !registered {
                    self.registered = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
            // The deadline has come: poll the connection again, so that hyper sees it.
            self.registered = None;
            self.shared.reached.fetch_max(wanted, Ordering::Relaxed);
        }
    }
}
