//! Starts or stops in flight: each in its own task (so a panic is caught and a timeout can
//! abandon it), with its own deadline.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::{AbortHandle, Id, JoinError, JoinSet};
use tokio::time::Instant;

use crate::error::{BoxError, Failure, FailureKind};

struct Entry {
    node: usize,
    began: Instant,
    timeout: Option<(Instant, Duration)>,
    abort: AbortHandle,
}

/// A set of per-component tasks in flight.
pub(crate) struct Flight<T> {
    set: JoinSet<Result<T, BoxError>>,
    entries: HashMap<Id, Entry>,
}

/// A finished task: the node, its result, how long it ran.
pub(crate) struct Landed<T> {
    pub(crate) node: usize,
    pub(crate) result: Result<T, Failure>,
    pub(crate) took: Duration,
}

impl<T: Send + 'static> Flight<T> {
    pub(crate) fn new() -> Self {
        Self {
            set: JoinSet::new(),
            entries: HashMap::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn spawn<F>(&mut self, node: usize, timeout: Option<Duration>, task: F)
    where
        F: Future<Output = Result<T, BoxError>> + Send + 'static,
    {
        let began = Instant::now();
        let abort = self.set.spawn(task);
        self.entries.insert(
            abort.id(),
            Entry {
                node,
                began,
                timeout: timeout.map(|t| (began + t, t)),
                abort,
            },
        );
    }

    /// The next task to finish, fail, panic or time out; `None` when none is in flight.
    ///
    /// # Cancel safety
    /// Cancel safe: a finished task is not lost when the future is dropped.
    pub(crate) async fn next(&mut self) -> Option<Landed<T>> {
        loop {
            if self.entries.is_empty() {
                return None;
            }
            let next_timeout = self
                .entries
                .values()
                .filter_map(|e| e.timeout.map(|(at, _)| at))
                .min();
            tokio::select! {
                Some(joined) = self.set.join_next_with_id() => {
                    if let Some(landed) = self.land(joined) {
                        return Some(landed);
                    }
                }
                () = sleep_until(next_timeout) => {
                    let now = Instant::now();
                    let expired = self
                        .entries
                        .iter()
                        .find(|(_, e)| e.timeout.is_some_and(|(at, _)| at <= now))
                        .map(|(id, _)| *id);
                    if let Some(entry) = expired.and_then(|id| self.entries.remove(&id)) {
                        entry.abort.abort();
                        let after = entry.timeout.map_or(Duration::ZERO, |(_, t)| t);
                        return Some(Landed {
                            node: entry.node,
                            result: Err(Failure::new(FailureKind::Timeout(after))),
                            took: entry.began.elapsed(),
                        });
                    }
                }
            }
        }
    }

    /// A task that has already finished, without waiting; `None` if none has.
    pub(crate) fn try_next(&mut self) -> Option<Landed<T>> {
        while let Some(joined) = self.set.try_join_next_with_id() {
            if let Some(landed) = self.land(joined) {
                return Some(landed);
            }
        }
        None
    }

    /// Turns a joined task into its node's result; `None` for a task we aborted (already
    /// reported when it was aborted).
    fn land(&mut self, joined: Result<(Id, Result<T, BoxError>), JoinError>) -> Option<Landed<T>> {
        let (id, result) = match joined {
            Ok((id, Ok(value))) => (id, Ok(value)),
            Ok((id, Err(error))) => (id, Err(Failure::error(error))),
            Err(error) if error.is_panic() => {
                let id = error.id();
                (id, Err(Failure::from_panic(&*error.into_panic())))
            }
            Err(_) => return None,
        };
        let entry = self.entries.remove(&id)?;
        Some(Landed {
            node: entry.node,
            result,
            took: entry.began.elapsed(),
        })
    }

    /// Aborts every task in flight; returns their nodes and how long each ran.
    pub(crate) fn abort_all(&mut self) -> Vec<(usize, Duration)> {
        let mut aborted: Vec<(usize, Duration)> = self
            .entries
            .drain()
            .map(|(_, entry)| {
                entry.abort.abort();
                (entry.node, entry.began.elapsed())
            })
            .collect();
        aborted.sort_unstable_by_key(|(node, _)| *node);
        aborted
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
