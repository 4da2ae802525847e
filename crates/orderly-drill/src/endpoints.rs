//! The load balancer's endpoint table: which replicas it routes to, and for how long a
//! terminating one stays routable (the propagation delay of kube-proxy, DNS, ingresses…).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;

/// A replica's name, as the load balancer reports it in `x-drill-replica`.
pub(crate) type ReplicaName = Arc<str>;

/// One endpoint's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Routable.
    Ready,
    /// Deleted (or failing its readiness probe): routable until the news has propagated.
    Leaving { routable_until: Instant },
}

#[derive(Debug)]
struct Entry {
    name: ReplicaName,
    addr: SocketAddr,
    state: State,
}

/// The endpoint table, shared by the orchestrator (writer) and the load balancer (reader).
/// The lock is never held across an `.await`.
#[derive(Debug, Default)]
pub(crate) struct Endpoints {
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    entries: Vec<Entry>,
    /// The round-robin cursor.
    next: usize,
}

impl Endpoints {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding the lock leaves the table consistent (every write is one step).
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a ready endpoint, or makes a leaving one ready again.
    pub(crate) fn set_ready(&self, name: &ReplicaName, addr: SocketAddr) {
        let mut table = self.table();
        match table.entries.iter_mut().find(|e| e.name == *name) {
            Some(entry) => entry.state = State::Ready,
            None => table.entries.push(Entry {
                name: name.clone(),
                addr,
                state: State::Ready,
            }),
        }
    }

    /// Marks the endpoint leaving at `now`: it stays routable until `now + propagation`.
    /// Leaving again does not extend an earlier deadline.
    pub(crate) fn leave(&self, name: &str, now: Instant, propagation: std::time::Duration) {
        let mut table = self.table();
        let leaving = table
            .entries
            .iter_mut()
            .find(|e| &*e.name == name && e.state == State::Ready);
        if let Some(entry) = leaving {
            entry.state = State::Leaving {
                routable_until: now + propagation,
            };
        }
    }

    /// The next routable endpoint at `now`, round-robin; `None` when none is routable.
    /// Endpoints no longer routable are dropped from the table.
    pub(crate) fn pick(&self, now: Instant) -> Option<(ReplicaName, SocketAddr)> {
        let mut table = self.table();
        table.entries.retain(|entry| match entry.state {
            State::Ready => true,
            State::Leaving { routable_until } => now < routable_until,
        });
        if table.entries.is_empty() {
            return None;
        }
        let chosen = table.next % table.entries.len();
        table.next = table.next.wrapping_add(1);
        let entry = &table.entries[chosen];
        Some((entry.name.clone(), entry.addr))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// How many times each endpoint is picked in `n` picks at `now`.
    fn spread(endpoints: &Endpoints, now: Instant, n: usize) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for _ in 0..n {
            if let Some((name, _)) = endpoints.pick(now) {
                *counts.entry(name.to_string()).or_default() += 1;
            }
        }
        counts
    }

    #[tokio::test(start_paused = true)]
    async fn round_robin_over_ready_endpoints() {
        let endpoints = Endpoints::default();
        assert_eq!(endpoints.pick(Instant::now()), None);
        for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
            endpoints.set_ready(&name.into(), addr(1000 + i as u16));
        }
        let counts = spread(&endpoints, Instant::now(), 300);
        assert_eq!(
            counts.values().copied().collect::<Vec<_>>(),
            [100, 100, 100]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_leaving_endpoint_is_routed_to_until_the_propagation_delay_has_passed() {
        let endpoints = Endpoints::default();
        endpoints.set_ready(&"a".into(), addr(1));
        endpoints.set_ready(&"b".into(), addr(2));
        let deleted = Instant::now();
        endpoints.leave("a", deleted, Duration::from_millis(500));
        // A second deletion notice does not push the deadline back.
        tokio::time::advance(Duration::from_millis(100)).await;
        endpoints.leave("a", Instant::now(), Duration::from_millis(500));

        let just_before = deleted + Duration::from_millis(499);
        assert_eq!(spread(&endpoints, just_before, 10).len(), 2);
        let at_deadline = deleted + Duration::from_millis(500);
        assert_eq!(
            spread(&endpoints, at_deadline, 10),
            BTreeMap::from([("b".to_owned(), 10)])
        );

        // Ready again (a readiness probe recovered).
        endpoints.set_ready(&"a".into(), addr(1));
        assert_eq!(spread(&endpoints, at_deadline, 10).len(), 2);
        endpoints.leave("a", at_deadline, Duration::ZERO);
        endpoints.leave("b", at_deadline, Duration::ZERO);
        assert_eq!(endpoints.pick(at_deadline), None);
    }

    #[tokio::test(start_paused = true)]
    async fn no_propagation_delay_stops_routing_at_once() {
        let endpoints = Endpoints::default();
        endpoints.set_ready(&"a".into(), addr(1));
        endpoints.leave("a", Instant::now(), Duration::ZERO);
        assert_eq!(endpoints.pick(Instant::now()), None);
    }
}
