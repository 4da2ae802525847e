//! The header-read timeout (slowloris protection), kept by the server instead of hyper.
//!
//! hyper can time the wait for each HTTP/1 request head itself, but it asks its timer for a
//! new sleep each time it waits for a head and drops the sleep once the head is read: with
//! tokio's timer, an entry added to the timer wheel and removed again for every request, and
//! about 1,100 instructions a request in all on a keep-alive connection (callgrind, see
//! `benches/README.md`), close to a tenth of what hyper spends on the whole request.
//!
//! The server knows when a connection waits for a head without asking hyper: from the moment
//! it is accepted until its first request, and from the end of each response until the next
//! request. Each connection has a [`HeadClock`], which its requests update (a count of those
//! whose response has not ended, and when the last one ended), and a [`Timed`] driver through
//! which the connection's future is polled. While no request is in progress, the next head
//! must arrive within the timeout of the last response's end (or of the accept); when that
//! deadline passes, [`Timed::poll`] gives up on the connection, and dropping it closes the
//! socket. A head that arrives in pieces gets no more time than one that does not arrive at
//! all; if part of one had arrived, the client is answered `408 Request Timeout` before the
//! socket closes (`upgrade::Io` writes it as it is dropped); a connection that sent nothing
//! since its last response is closed without a word, as an idle keep-alive connection is.
//!
//! The driver keeps one tokio sleep per connection and moves it only when it would wake the
//! connection too late: a sleep set for the previous wait's (earlier) deadline wakes the
//! connection early, which then finds the new deadline and moves the sleep there. A busy
//! keep-alive connection thus touches the timer wheel about once per timeout, and a request
//! costs two counter updates and a check of three numbers.
//!
//! HTTP/2 streams have no head to wait for: a connection that begins with the HTTP/2 preface
//! (prior knowledge, as h2c clients and gRPC do) has its clock turned off by its first read
//! (`upgrade::Io`), and any request that arrives over HTTP/2 turns it off too.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::Version;
use tokio::time::{Instant, Sleep};

/// When one connection waits for a request head. The connection's task is the only one that
/// updates it for HTTP/1 (its requests come one at a time); HTTP/2 turns it off.
#[derive(Debug)]
pub(crate) struct HeadClock {
    /// When the connection was accepted; times are kept in nanoseconds since.
    base: Instant,
    /// Requests whose response has not ended yet.
    busy: AtomicUsize,
    /// When the last request's response ended; 0 (the accept) before the first.
    idle_since: AtomicU64,
    /// Set for HTTP/2.
    off: AtomicBool,
    /// Bytes of the next head have arrived (but not all of it).
    partial: AtomicBool,
    /// The timeout ended the connection while part of a head had arrived: it is answered
    /// `408 Request Timeout` before the socket closes.
    late: AtomicBool,
}

impl HeadClock {
    /// The clock of a connection accepted now.
    pub(crate) fn new() -> Self {
        Self {
            base: Instant::now(),
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            off: AtomicBool::new(false),
            partial: AtomicBool::new(false),
            late: AtomicBool::new(false),
        }
    }

    /// A request's head has been read.
    pub(crate) fn request(&self, version: Version) {
        if version == Version::HTTP_2 {
            self.turn_off();
        }
        self.partial.store(false, Ordering::Relaxed);
        self.busy.fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes arrived on the connection: while it waits for a head, they are part of one.
    pub(crate) fn received(&self) {
        if self.busy.load(Ordering::Relaxed) == 0 {
            self.partial.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the timeout cut a head short: the client is owed a `408`.
    pub(crate) fn cut_a_head_short(&self) -> bool {
        self.late.load(Ordering::Relaxed)
    }

    /// The connection speaks HTTP/2: no head to wait for, ever.
    pub(crate) fn turn_off(&self) {
        self.off.store(true, Ordering::Relaxed);
    }

    /// A request's response ended (sent, or dropped) `at`.
    pub(crate) fn response_ended(&self, at: Instant) {
        let since =
            u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX);
        self.idle_since.store(since, Ordering::Relaxed);
        self.busy.fetch_sub(1, Ordering::Relaxed);
    }

    /// When the next head must have arrived, in nanoseconds since the accept, if the
    /// connection is waiting for one; `timeout` in nanoseconds. Integers: this is checked each
    /// time the connection wakes, and `Instant` arithmetic costs several times more.
    fn deadline(&self, timeout: u64) -> Option<u64> {
        if self.busy.load(Ordering::Relaxed) > 0 || self.off.load(Ordering::Relaxed) {
            return None;
        }
        Some(
            self.idle_since
                .load(Ordering::Relaxed)
                .saturating_add(timeout),
        )
    }

    /// The instant `nanos` after the accept.
    fn instant(&self, nanos: u64) -> Instant {
        let after = Duration::from_nanos(nanos);
        // Past the end of time: as good as never.
        self.base
            .checked_add(after)
            .unwrap_or_else(|| self.base + Duration::from_secs(86_400 * 365 * 30))
    }
}

/// Polls a connection's future and ends it when a head is not read in time (see the module's
/// documentation).
#[derive(Debug)]
pub(crate) struct Timed {
    /// The header-read timeout, in nanoseconds.
    timeout: u64,
    /// Made when the connection first waits for a head that has not arrived: a connection
    /// whose one request came with it never needs one.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The deadline `sleep` is set to, in nanoseconds since the accept.
    armed: Option<u64>,
    /// The waker `sleep` was last polled with.
    registered: Option<Waker>,
}

impl Timed {
    /// A driver for connections whose heads must arrive within `timeout`.
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            timeout: u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX),
            sleep: None,
            armed: None,
            registered: None,
        }
    }

    /// Polls `connection`; `Ready(None)` when it has waited for a head past the timeout of
    /// `clock`, and is to be dropped.
    pub(crate) fn poll<F: Future + ?Sized>(
        &mut self,
        clock: &HeadClock,
        connection: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<F::Output>> {
        if let Poll::Ready(output) = connection.poll(cx) {
            return Poll::Ready(Some(output));
        }
        let Some(deadline) = clock.deadline(self.timeout) else {
            // A request is in progress; the sleep, if it fires meanwhile, only wakes the task.
            return Poll::Pending;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(clock.instant(deadline))));
        let registered = self
            .registered
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()));
        if self.armed != Some(deadline) {
            if registered && self.armed.is_some_and(|armed| armed < deadline) && !sleep.is_elapsed()
            {
                // It wakes the connection before the deadline, which is checked again then.
                return Poll::Pending;
            }
            sleep.as_mut().reset(clock.instant(deadline));
            self.armed = Some(deadline);
        }
        if sleep.as_mut().poll(cx).is_ready() {
            if clock.partial.load(Ordering::Relaxed) {
                clock.late.store(true, Ordering::Relaxed);
            }
            return Poll::Ready(None);
        }
        if !registered {
            self.registered = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::future::{pending, poll_fn};

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    /// Drives a connection that never ends until the clock's deadline cuts it; returns when.
    async fn cut_at(clock: &HeadClock) -> Instant {
        let mut timed = Timed::new(TIMEOUT);
        let connection = pending::<()>();
        tokio::pin!(connection);
        let cut = poll_fn(|cx| timed.poll(clock, connection.as_mut(), cx)).await;
        assert!(cut.is_none(), "a pending connection is cut, not finished");
        Instant::now()
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_is_cut_at_the_timeout() {
        let clock = HeadClock::new();
        let start = Instant::now();
        assert_eq!(cut_at(&clock).await - start, TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_starts_again_at_the_end_of_each_response() {
        let clock = HeadClock::new();
        tokio::time::advance(Duration::from_secs(3)).await;
        clock.request(Version::HTTP_11);
        tokio::time::advance(Duration::from_secs(30)).await;
        let ended = Instant::now();
        clock.response_ended(ended);
        assert_eq!(cut_at(&clock).await - ended, TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_armed_for_an_earlier_wait_is_moved_when_it_fires() {
        let clock = HeadClock::new();
        let mut timed = Timed::new(TIMEOUT);
        let connection = pending::<()>();
        tokio::pin!(connection);
        // A waker that does nothing: the paused clock's `advance` runs the timers.
        let mut poll = || {
            timed.poll(
                &clock,
                connection.as_mut(),
                &mut Context::from_waker(Waker::noop()),
            )
        };
        // Armed for the accept's deadline, then a request and its end 4 s later.
        assert!(poll().is_pending());
        clock.request(Version::HTTP_11);
        tokio::time::advance(Duration::from_secs(4)).await;
        let ended = Instant::now();
        clock.response_ended(ended);
        assert!(poll().is_pending(), "the earlier sleep still stands");
        // The earlier deadline passes: not a cut, the sleep moves to the new one.
        tokio::time::advance(Duration::from_secs(7)).await;
        assert!(poll().is_pending());
        tokio::time::advance(Duration::from_secs(7)).await;
        assert!(
            poll().is_ready(),
            "cut at the end of the response + the timeout"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_head_begun_and_not_finished_is_owed_a_408() {
        // Bytes while a request is in progress (its body) begin no head.
        let clock = HeadClock::new();
        clock.request(Version::HTTP_11);
        clock.received();
        clock.response_ended(Instant::now());
        cut_at(&clock).await;
        assert!(
            !clock.cut_a_head_short(),
            "an idle connection is closed silently"
        );

        let clock = HeadClock::new();
        clock.received();
        cut_at(&clock).await;
        assert!(clock.cut_a_head_short());

        // A head that arrived whole is no longer partial.
        let clock = HeadClock::new();
        clock.received();
        clock.request(Version::HTTP_11);
        clock.response_ended(Instant::now());
        cut_at(&clock).await;
        assert!(!clock.cut_a_head_short());
    }

    #[tokio::test(start_paused = true)]
    async fn no_deadline_while_a_request_is_in_progress_or_over_http2() {
        let clock = HeadClock::new();
        let timeout = TIMEOUT.as_nanos() as u64;
        clock.request(Version::HTTP_11);
        assert_eq!(clock.deadline(timeout), None);
        clock.response_ended(Instant::now());
        assert!(clock.deadline(timeout).is_some());
        clock.request(Version::HTTP_2);
        clock.response_ended(Instant::now());
        assert_eq!(clock.deadline(timeout), None, "HTTP/2 turns it off");
    }
}
