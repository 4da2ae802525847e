//! The log pipe: log lines go into a shared buffer that one thread writes to stdout, so a log
//! call does no I/O; a flush waits until every line appended before it is written.
//!
//! The writer thread is woken when the buffer goes from empty to not, and then *lingers* (up
//! to [`LINGER`]) so that the lines logged meanwhile go out in the same write: under load a
//! log call neither allocates nor wakes a thread, and the writer makes one system call per
//! batch. Handing each line to the thread through a channel cost a wake-up (a futex call and a
//! context switch) per line: more than formatting the line. A flush, a full batch or a full
//! buffer end the linger at once.
//!
//! Why not `tracing_appender::non_blocking`: its guard waits at most a second for the worker at
//! exit (and 100 ms to hand it the shutdown when the queue is full), so with a slow reader on
//! stdout the last lines — the shutdown report — are lost; and it has no flush short of dropping
//! the guard, which a foundation component that flushes at stop and a hook before a forced exit
//! both need.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// A batch is written once it holds this much, without waiting out the linger.
const BATCH: usize = 64 * 1024;

/// How long the writer waits for more lines once one is there: the most a line waits for
/// stdout when nothing flushes.
const LINGER: Duration = Duration::from_millis(10);

/// The sending end, shared by the subscriber, the [`Logs`](crate::Logs) guard, the component and
/// the exit hook. The writer thread lives as long as the process (or until every `Pipe` is
/// dropped), so a line appended at any time is written.
#[derive(Debug)]
pub(crate) struct Pipe {
    shared: Arc<Shared>,
    /// After [`close`](Pipe::close): every write waits until it is written.
    closed: AtomicBool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: a line in an empty buffer, a flush, a full batch or buffer, the end.
    work: Condvar,
    /// Wakes senders: a batch was written (room in the buffer, a flush done).
    written: Condvar,
    /// How many lines may wait; then senders wait.
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    /// The lines waiting to be written, back to back.
    buffer: Vec<u8>,
    /// How many lines `buffer` holds.
    lines: usize,
    /// Lines appended and lines written since the start, to tell when a flush is done.
    appended: u64,
    done: u64,
    /// Someone waits: for a flush or for room. The writer does not linger.
    urgent: bool,
    /// Every `Pipe` is gone: the writer writes what is left and ends.
    ended: bool,
}

impl State {
    fn pressing(&self) -> bool {
        self.urgent || self.ended || self.buffer.len() >= BATCH
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned buffer is still a valid buffer.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Pipe {
    /// Starts the writer thread; up to `capacity` lines wait, then senders wait.
    pub(crate) fn spawn(
        capacity: usize,
        out: impl Write + Send + 'static,
    ) -> io::Result<Arc<Self>> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            written: Condvar::new(),
            capacity: capacity.max(1),
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("orderly-logs".into())
            .spawn(move || write_lines(&writer, out))?;
        Ok(Arc::new(Self {
            shared,
            closed: AtomicBool::new(false),
        }))
    }

    /// Appends one line (or several); waits only while the buffer is full (or, once closed,
    /// until written).
    fn send(&self, line: &[u8]) {
        let shared = &*self.shared;
        let mut state = shared.lock();
        while state.lines >= shared.capacity && !state.ended {
            state.urgent = true;
            shared.work.notify_one();
            state = shared
                .written
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let was_empty = state.buffer.is_empty();
        state.buffer.extend_from_slice(line);
        state.lines += 1;
        state.appended += 1;
        if was_empty || state.buffer.len() >= BATCH {
            shared.work.notify_one();
        }
        drop(state);
        if self.closed.load(Ordering::Acquire) {
            self.flush();
        }
    }

    /// Waits until every line appended before this call is written to the output.
    pub(crate) fn flush(&self) {
        let shared = &*self.shared;
        let mut state = shared.lock();
        let target = state.appended;
        while state.done < target && !state.ended {
            state.urgent = true;
            shared.work.notify_one();
            state = shared
                .written
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Flushes, and from now on writes synchronously: for lines logged after `main`'s guard
    /// dropped, while the process exits.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.flush();
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.shared.lock().ended = true;
        self.shared.work.notify_one();
    }
}

/// The writer thread: waits for lines, lingers for more, writes them in one call, says so.
fn write_lines(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let mut state = shared.lock();
        while state.buffer.is_empty() && !state.ended {
            state = shared
                .work
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if !state.pressing() {
            state = shared
                .work
                .wait_timeout_while(state, LINGER, |state| !state.pressing())
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if state.buffer.is_empty() && state.ended {
            return;
        }
        std::mem::swap(&mut batch, &mut state.buffer);
        let lines = std::mem::take(&mut state.lines) as u64;
        // The lines waiting for room are appended while this batch is written.
        state.urgent = false;
        drop(state);
        shared.written.notify_all();
        // A closed or broken stdout loses the lines: there is nowhere left to report it.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        if batch.capacity() > 4 * BATCH {
            batch = Vec::with_capacity(BATCH);
        }
        shared.lock().done += lines;
        shared.written.notify_all();
    }
}

/// The subscriber's writer: each event's formatted line is appended in one piece.
#[derive(Clone, Debug)]
pub(crate) struct PipeWriter(pub(crate) Arc<Pipe>);

impl<'a> MakeWriter<'a> for PipeWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line(&self.0)
    }
}

/// One event's line, on its way into the pipe.
#[derive(Debug)]
pub(crate) struct Line<'a>(&'a Pipe);

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        // Both formatters write each event with one `write_all`.
        self.0.send(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex, PoisonError};

    use super::*;

    /// An output that records every write call.
    #[derive(Clone, Default)]
    struct Recorded(Arc<Mutex<Vec<Vec<u8>>>>, Arc<Condvar>);

    impl Write for Recorded {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let mut writes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            writes.push(bytes.to_vec());
            self.1.notify_all();
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Recorded {
        fn writes(&self) -> usize {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
        }

        fn text(&self) -> String {
            let writes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            String::from_utf8(writes.concat()).unwrap()
        }
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_flush_returns() {
        let out = Recorded::default();
        let pipe = Pipe::spawn(16, out.clone()).unwrap();
        let expected: String = (1..=1000).map(|n| format!("line {n}\n")).collect();
        for n in 1..=1000 {
            pipe.send(format!("line {n}\n").as_bytes());
        }
        pipe.flush();
        assert_eq!(out.text(), expected);
    }

    #[test]
    fn lines_from_many_threads_arrive_whole() {
        let out = Recorded::default();
        let pipe = Pipe::spawn(4, out.clone()).unwrap();
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let pipe = &pipe;
                scope.spawn(move || {
                    for n in 0..500 {
                        pipe.send(format!("{thread}:{n}\n").as_bytes());
                    }
                });
            }
        });
        pipe.flush();
        let text = out.text();
        for thread in 0..4 {
            let mine: Vec<&str> = text
                .lines()
                .filter(|line| line.starts_with(&format!("{thread}:")))
                .collect();
            let expected: Vec<String> = (0..500).map(|n| format!("{thread}:{n}")).collect();
            assert_eq!(mine, expected, "each thread's lines, whole and in order");
        }
    }

    #[test]
    fn after_close_a_line_is_written_before_the_call_returns() {
        let out = Recorded::default();
        let pipe = Pipe::spawn(16, out.clone()).unwrap();
        pipe.close();
        pipe.send(b"late\n");
        assert_eq!(out.text(), "late\n");
    }

    #[test]
    fn a_burst_of_lines_goes_out_in_a_few_writes() {
        let out = Recorded::default();
        let pipe = Pipe::spawn(8192, out.clone()).unwrap();
        for n in 0..1000 {
            pipe.send(format!("line {n}\n").as_bytes());
        }
        pipe.flush();
        assert_eq!(out.text().lines().count(), 1000);
        // One write per line would be 1000; the writer lingers for the rest of a burst.
        assert!(out.writes() < 100, "{} writes", out.writes());
    }

    #[test]
    fn a_full_buffer_makes_senders_wait_and_loses_nothing() {
        let out = Recorded::default();
        let pipe = Pipe::spawn(1, out.clone()).unwrap();
        let expected: String = (0..300).map(|n| format!("{n}\n")).collect();
        for n in 0..300 {
            pipe.send(format!("{n}\n").as_bytes());
        }
        pipe.flush();
        assert_eq!(out.text(), expected);
    }

    #[test]
    fn a_line_is_written_without_a_flush() {
        let out = Recorded::default();
        let pipe = Pipe::spawn(16, out.clone()).unwrap();
        pipe.send(b"alone\n");
        // A guard against a hung test, not a timing assertion: the line must come out.
        let writes = out.0.lock().unwrap();
        let (writes, _) = out
            .1
            .wait_timeout_while(writes, Duration::from_secs(60), |w| w.is_empty())
            .unwrap();
        assert_eq!(writes.concat(), b"alone\n");
    }
}
