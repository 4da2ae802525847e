//! The log pipe: log lines go through a bounded queue to one thread that writes them to stdout,
//! so a log call does no I/O; a flush waits until every line queued before it is written.
//!
//! Why not `tracing_appender::non_blocking`: its guard waits at most a second for the worker at
//! exit (and 100 ms to hand it the shutdown when the queue is full), so with a slow reader on
//! stdout the last lines — the shutdown report — are lost; and it has no flush short of dropping
//! the guard, which a foundation component that flushes at stop and a hook before a forced exit
//! both need.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use tracing_subscriber::fmt::MakeWriter;

/// A batch is written once it holds this much, or when the queue is empty.
const BATCH: usize = 64 * 1024;

enum Message {
    Line(Vec<u8>),
    /// Answered once every line queued before it has been written.
    Flush(SyncSender<()>),
}

/// The sending end, shared by the subscriber, the [`Logs`](crate::Logs) guard, the component and
/// the exit hook. The writer thread lives as long as the process (or until every `Pipe` is
/// dropped), so a line queued at any time is written.
#[derive(Debug)]
pub(crate) struct Pipe {
    queue: SyncSender<Message>,
    /// After [`close`](Pipe::close): every write waits until it is written.
    closed: AtomicBool,
}

impl Pipe {
    /// Starts the writer thread; up to `capacity` lines wait in the queue, then senders wait.
    pub(crate) fn spawn(
        capacity: usize,
        out: impl Write + Send + 'static,
    ) -> io::Result<Arc<Self>> {
        let (queue, lines) = sync_channel(capacity);
        std::thread::Builder::new()
            .name("orderly-logs".into())
            .spawn(move || write_lines(&lines, out))?;
        Ok(Arc::new(Self {
            queue,
            closed: AtomicBool::new(false),
        }))
    }

    /// Queues one line; waits only while the queue is full (or, once closed, until written).
    fn send(&self, line: Vec<u8>) {
        // The writer thread is gone only if it panicked; then there is nowhere to write to.
        let _ = self.queue.send(Message::Line(line));
        if self.closed.load(Ordering::Acquire) {
            self.flush();
        }
    }

    /// Waits until every line queued before this call is written to the output.
    pub(crate) fn flush(&self) {
        let (ack, done) = sync_channel(1);
        if self.queue.send(Message::Flush(ack)).is_ok() {
            let _ = done.recv();
        }
    }

    /// Flushes, and from now on writes synchronously: for lines logged after `main`'s guard
    /// dropped, while the process exits.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.flush();
    }
}

/// The writer thread: batches what is queued, writes it, answers flushes.
fn write_lines(lines: &Receiver<Message>, mut out: impl Write) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut flushed = Vec::new();
    while let Ok(first) = lines.recv() {
        let mut next = Ok(first);
        while let Ok(message) = next {
            match message {
                Message::Line(line) => batch.extend_from_slice(&line),
                Message::Flush(ack) => flushed.push(ack),
            }
            if batch.len() >= BATCH {
                write(&mut out, &mut batch);
            }
            next = lines.try_recv();
        }
        write(&mut out, &mut batch);
        for ack in flushed.drain(..) {
            let _ = ack.send(());
        }
    }
}

fn write(out: &mut impl Write, batch: &mut Vec<u8>) {
    if !batch.is_empty() {
        // A closed or broken stdout loses the lines: there is nowhere left to report it.
        let _ = out.write_all(batch).and_then(|()| out.flush());
        batch.clear();
    }
}

/// The subscriber's writer: each event's formatted line becomes one message.
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
        // `tracing-subscriber` writes each formatted event with one `write_all`.
        self.0.send(bytes.to_vec());
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Mutex, PoisonError};

    use super::*;

    /// An output that records every write call.
    #[derive(Clone, Default)]
    struct Recorded(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Recorded {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let mut writes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            writes.push(bytes.to_vec());
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Recorded {
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
            pipe.send(format!("line {n}\n").into_bytes());
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
                        pipe.send(format!("{thread}:{n}\n").into_bytes());
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
        pipe.send(b"late\n".to_vec());
        assert_eq!(out.text(), "late\n");
    }
}
