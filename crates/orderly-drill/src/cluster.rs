//! The orchestrator: a Deployment controller and kubelet over replica processes, keeping the
//! load balancer's endpoint table as the endpoint controller would.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::endpoints::{Endpoints, ReplicaName};
use crate::error::{Error, ErrorKind};
use crate::replica::{Change, Launcher, Replica, ReplicaRecord};

/// Replicas of one generation that may exit before they are ready (and are replaced) before
/// the drill gives up.
const MAX_START_FAILURES: usize = 2;

/// Where a replica is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Starting,
    Ready,
    /// Was ready; its readiness probe is failing.
    Unready,
    Terminating,
    Exited,
}

#[derive(Debug)]
struct Member {
    replica: Replica,
    generation: usize,
    phase: Phase,
}

/// The rollout strategy (Deployment `strategy.rollingUpdate`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Strategy {
    pub(crate) replicas: usize,
    pub(crate) max_surge: usize,
    pub(crate) max_unavailable: usize,
    pub(crate) propagation_delay: Duration,
    pub(crate) grace_period: Duration,
    /// How long the rollout may go without progress (`progressDeadlineSeconds`).
    pub(crate) progress_deadline: Duration,
}

/// What the Deployment controller does next in a rollout to `generation`.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Every replica is new and ready; no old one is left running.
    Done,
    /// Start this many new replicas and terminate these (indexes into the members).
    Act { start: usize, terminate: Vec<usize> },
    /// Nothing to do until a replica becomes ready (or exits).
    Wait,
}

/// The Deployment controller's rolling-update step, from the members' generations and phases:
/// start new replicas while fewer than `replicas + max_surge` are running (terminating ones do
/// not count, as in Kubernetes) and fewer than `replicas` are new; terminate old replicas that
/// are not ready, then ready ones while more than `replicas - max_unavailable` are ready.
fn plan(strategy: &Strategy, generation: usize, members: &[(usize, Phase)]) -> Plan {
    let alive = |phase: Phase| matches!(phase, Phase::Starting | Phase::Ready | Phase::Unready);
    let count = |pick: &dyn Fn(usize, Phase) -> bool| {
        members.iter().filter(|(g, phase)| pick(*g, *phase)).count()
    };
    let old_alive = count(&|g, phase| g < generation && alive(phase));
    let new_alive = count(&|g, phase| g == generation && alive(phase));
    let new_ready = count(&|g, phase| g == generation && phase == Phase::Ready);
    if old_alive == 0 && new_ready >= strategy.replicas {
        return Plan::Done;
    }
    let start = (strategy.replicas + strategy.max_surge)
        .saturating_sub(old_alive + new_alive)
        .min(strategy.replicas.saturating_sub(new_alive));
    let old = |wanted: &dyn Fn(Phase) -> bool| {
        members
            .iter()
            .enumerate()
            .filter(move |(_, (g, phase))| *g < generation && wanted(*phase))
            .map(|(index, _)| index)
            .collect::<Vec<_>>()
    };
    let mut terminate = old(&|phase| matches!(phase, Phase::Starting | Phase::Unready));
    let min_available = strategy.replicas.saturating_sub(strategy.max_unavailable);
    let available = count(&|_, phase| phase == Phase::Ready);
    let surplus = available.saturating_sub(min_available);
    terminate.extend(
        old(&|phase| phase == Phase::Ready)
            .into_iter()
            .take(surplus),
    );
    if start == 0 && terminate.is_empty() {
        Plan::Wait
    } else {
        Plan::Act { start, terminate }
    }
}

/// The replicas and the endpoint table.
#[derive(Debug)]
pub(crate) struct Cluster {
    launcher: Launcher,
    changes: mpsc::UnboundedReceiver<(ReplicaName, Change)>,
    endpoints: Arc<Endpoints>,
    strategy: Strategy,
    members: Vec<Member>,
    generation: usize,
    started_in_generation: usize,
}

impl Cluster {
    pub(crate) fn new(
        launcher: Launcher,
        changes: mpsc::UnboundedReceiver<(ReplicaName, Change)>,
        endpoints: Arc<Endpoints>,
        strategy: Strategy,
    ) -> Self {
        Self {
            launcher,
            changes,
            endpoints,
            strategy,
            members: Vec::new(),
            generation: 0,
            started_in_generation: 0,
        }
    }

    /// Every replica's record, in start order.
    pub(crate) fn records(&self) -> Vec<ReplicaRecord> {
        self.members
            .iter()
            .map(|m| m.replica.record.clone())
            .collect()
    }

    fn count(&self, pick: impl Fn(&Member) -> bool) -> usize {
        self.members.iter().filter(|m| pick(m)).count()
    }

    fn launch(&mut self) -> Result<(), Error> {
        let name = format!("r{}-{}", self.generation, self.started_in_generation);
        self.started_in_generation += 1;
        let replica = self.launcher.launch(&name, self.generation)?;
        self.members.push(Member {
            replica,
            generation: self.generation,
            phase: Phase::Starting,
        });
        Ok(())
    }

    /// Deletes the pod: its endpoint starts leaving (routable for the propagation delay) and
    /// it gets SIGTERM at the same moment.
    fn terminate(&mut self, index: usize) {
        let now = Instant::now();
        let epoch = self.launcher.epoch;
        let grace = self.strategy.grace_period;
        let member = &mut self.members[index];
        self.endpoints
            .leave(&member.replica.name, now, self.strategy.propagation_delay);
        member.replica.terminate(grace, epoch);
        member.phase = Phase::Terminating;
    }

    /// Applies one change.
    fn apply(&mut self, name: &ReplicaName, change: Change) {
        let now = Instant::now();
        let elapsed = self.launcher.epoch.elapsed();
        let Some(member) = self.members.iter_mut().find(|m| m.replica.name == *name) else {
            return;
        };
        match change {
            Change::Readiness(true) => {
                if matches!(member.phase, Phase::Starting | Phase::Unready) {
                    member.phase = Phase::Ready;
                    member.replica.record.ready.get_or_insert(elapsed);
                    self.endpoints.set_ready(name, member.replica.addr);
                    tracing::info!(replica = %name, "ready: added to the endpoints");
                }
            }
            Change::Readiness(false) => {
                if member.phase == Phase::Ready {
                    member.phase = Phase::Unready;
                    self.endpoints
                        .leave(name, now, self.strategy.propagation_delay);
                    tracing::warn!(replica = %name, "readiness probe failing: leaving the endpoints");
                }
            }
            Change::Exited(exit) => {
                if member.phase != Phase::Terminating {
                    tracing::warn!(
                        replica = %name,
                        %exit,
                        log = %self.launcher.work_dir.join(format!("{name}.log")).display(),
                        "replica exited without being asked to"
                    );
                }
                member.phase = Phase::Exited;
                member.replica.record.exited = Some(elapsed);
                member.replica.record.exit = Some(exit);
                // Still routed to until the news has propagated, as in a cluster.
                self.endpoints
                    .leave(name, now, self.strategy.propagation_delay);
            }
        }
    }

    /// Waits for and applies the next change; `false` when `until` came first.
    async fn next_change(&mut self, until: Instant) -> bool {
        tokio::select! {
            change = self.changes.recv() => {
                if let Some((name, change)) = change {
                    self.apply(&name, change);
                }
                true
            }
            () = tokio::time::sleep_until(until) => false,
        }
    }

    /// Applies changes for `duration` (the cluster keeps working while the drill waits).
    pub(crate) async fn idle(&mut self, duration: Duration) {
        let until = Instant::now() + duration;
        while self.next_change(until).await {}
    }

    /// The error when too many replicas of the current generation exited before they were
    /// ready. Fewer are replaced, as the kubelet restarts a crashed container: a replica can
    /// lose its port to another process between the drill picking it and the replica binding
    /// it.
    fn failed_start(&self) -> Option<Error> {
        let mut crashed = self.members.iter().filter(|m| {
            m.generation == self.generation
                && m.phase == Phase::Exited
                && m.replica.record.ready.is_none()
        });
        if crashed.clone().count() <= MAX_START_FAILURES {
            return None;
        }
        crashed.next().map(|m| {
            Error::new(ErrorKind::ExitedEarly {
                replica: m.replica.name.to_string(),
                exit: m
                    .replica
                    .record
                    .exit
                    .map_or_else(|| "unknown".to_owned(), |e| e.to_string()),
            })
        })
    }

    fn not_ready(&self) -> Error {
        let replica = self
            .members
            .iter()
            .find(|m| m.generation == self.generation && m.phase == Phase::Starting)
            .map_or_else(String::new, |m| m.replica.name.to_string());
        Error::new(ErrorKind::NotReady {
            replica,
            waited: self.strategy.progress_deadline,
        })
    }

    /// Starts the first generation and waits until every replica is ready.
    pub(crate) async fn start(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + self.strategy.progress_deadline;
        while self.count(|m| m.phase == Phase::Ready) < self.strategy.replicas {
            if let Some(error) = self.failed_start() {
                return Err(error);
            }
            let alive =
                |m: &Member| matches!(m.phase, Phase::Starting | Phase::Ready | Phase::Unready);
            for _ in self.count(alive)..self.strategy.replicas {
                self.launch()?;
            }
            if !self.next_change(deadline).await {
                return Err(self.not_ready());
            }
        }
        Ok(())
    }

    /// One rolling update to a new generation, as the Deployment controller does it: start new
    /// replicas up to `replicas + max_surge`, delete old ones while at least
    /// `replicas - max_unavailable` are available, until every replica is new and ready. Ends
    /// when every old replica has exited.
    pub(crate) async fn roll(&mut self) -> Result<(), Error> {
        self.generation += 1;
        self.started_in_generation = 0;
        let generation = self.generation;
        let mut progress = Instant::now();
        loop {
            if let Some(error) = self.failed_start() {
                return Err(error);
            }
            let phases: Vec<(usize, Phase)> = self
                .members
                .iter()
                .map(|m| (m.generation, m.phase))
                .collect();
            match plan(&self.strategy, generation, &phases) {
                Plan::Done => break,
                Plan::Act { start, terminate } => {
                    for _ in 0..start {
                        self.launch()?;
                    }
                    for index in terminate {
                        self.terminate(index);
                    }
                    continue; // a deletion may allow a start, and the other way round
                }
                Plan::Wait => {}
            }
            let before = self.count(|m| m.phase == Phase::Ready);
            if !self
                .next_change(progress + self.strategy.progress_deadline)
                .await
            {
                return Err(self.not_ready());
            }
            if self.count(|m| m.phase == Phase::Ready) != before {
                progress = Instant::now();
            }
        }
        self.wait_for_exits(|m| m.generation < generation).await;
        Ok(())
    }

    /// Terminates every replica still running and waits until all have exited.
    pub(crate) async fn stop(&mut self) {
        for index in 0..self.members.len() {
            if !matches!(
                self.members[index].phase,
                Phase::Terminating | Phase::Exited
            ) && !self.members[index].replica.is_terminating()
            {
                self.terminate(index);
            }
        }
        self.wait_for_exits(|_| true).await;
    }

    /// Applies changes until the chosen replicas have exited. They do by the end of the grace
    /// period (SIGKILL); the bound covers a supervisor that could not wait.
    async fn wait_for_exits(&mut self, pick: impl Fn(&Member) -> bool) {
        let until = Instant::now() + self.strategy.grace_period + Duration::from_secs(5);
        while self.count(|m| pick(m) && m.phase != Phase::Exited) > 0 {
            if !self.next_change(until).await {
                tracing::warn!("replicas did not report their exit");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(max_surge: usize, max_unavailable: usize) -> Strategy {
        Strategy {
            replicas: 3,
            max_surge,
            max_unavailable,
            propagation_delay: Duration::ZERO,
            grace_period: Duration::ZERO,
            progress_deadline: Duration::ZERO,
        }
    }

    use Phase::{Exited, Ready, Starting, Terminating, Unready};

    fn act(start: usize, terminate: &[usize]) -> Plan {
        Plan::Act {
            start,
            terminate: terminate.to_vec(),
        }
    }

    #[test]
    fn surge_first_starts_one_then_replaces_old_ones_one_by_one() {
        let s = strategy(1, 0);
        let old = [(0, Ready), (0, Ready), (0, Ready)];
        assert_eq!(plan(&s, 1, &old), act(1, &[]));
        // The new one is starting: nothing more until it is ready.
        let members = [(0, Ready), (0, Ready), (0, Ready), (1, Starting)];
        assert_eq!(plan(&s, 1, &members), Plan::Wait);
        // Ready: 4 available, 3 needed, so one old goes.
        let members = [(0, Ready), (0, Ready), (0, Ready), (1, Ready)];
        assert_eq!(plan(&s, 1, &members), act(0, &[0]));
        // Terminating replicas do not count against the surge: the next new one starts.
        let members = [(0, Terminating), (0, Ready), (0, Ready), (1, Ready)];
        assert_eq!(plan(&s, 1, &members), act(1, &[]));
        let members = [
            (0, Exited),
            (0, Terminating),
            (0, Terminating),
            (1, Ready),
            (1, Ready),
            (1, Ready),
        ];
        assert_eq!(plan(&s, 1, &members), Plan::Done);
    }

    #[test]
    fn unavailable_first_terminates_before_it_starts() {
        let s = strategy(0, 1);
        let old = [(0, Ready), (0, Ready), (0, Ready)];
        assert_eq!(plan(&s, 1, &old), act(0, &[0]));
        let members = [(0, Terminating), (0, Ready), (0, Ready)];
        assert_eq!(plan(&s, 1, &members), act(1, &[]));
        let members = [(0, Terminating), (0, Ready), (0, Ready), (1, Starting)];
        assert_eq!(plan(&s, 1, &members), Plan::Wait);
    }

    #[test]
    fn a_larger_surge_and_unavailability_act_at_once() {
        let s = strategy(2, 1);
        let old = [(0, Ready), (0, Ready), (0, Ready)];
        assert_eq!(plan(&s, 1, &old), act(2, &[0]));
    }

    #[test]
    fn old_replicas_that_are_not_ready_go_first_whatever_the_availability() {
        let s = strategy(1, 0);
        let members = [(0, Unready), (0, Ready), (0, Ready), (1, Starting)];
        assert_eq!(plan(&s, 1, &members), act(0, &[0]));
    }

    #[test]
    fn never_more_new_replicas_than_wanted() {
        let s = strategy(3, 0);
        let members = [(0, Ready), (1, Starting), (1, Starting), (1, Starting)];
        assert_eq!(plan(&s, 1, &members), Plan::Wait);
        // A new replica that crashed is replaced.
        let members = [(0, Ready), (1, Exited), (1, Starting), (1, Starting)];
        assert_eq!(plan(&s, 1, &members), act(1, &[]));
    }
}
