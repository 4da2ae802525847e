//! Simulated time: 1 Hz sensors and minute-apart lots, compressed so a run takes seconds.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::domain::time::Timestamp;

/// Maps simulated offsets to timestamps and to wall-clock deadlines.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    wall_start: Instant,
    sim_start: Timestamp,
    speed: f64,
}

impl Clock {
    pub(crate) fn new(sim_start: Timestamp, speed: f64) -> Self {
        Self {
            wall_start: Instant::now(),
            sim_start,
            speed,
        }
    }

    /// The simulated start.
    pub(crate) fn start(&self) -> Timestamp {
        self.sim_start
    }

    /// The timestamp `offset` after the simulated start.
    pub(crate) fn at(&self, offset: Duration) -> Timestamp {
        self.sim_start.saturating_add(offset)
    }

    /// Waits until simulated `offset` is reached; `false` when the simulation stopped first.
    pub(crate) async fn wait(&self, offset: Duration, cancel: &CancellationToken) -> bool {
        let wall = offset.div_f64(self.speed);
        let deadline = self.wall_start.checked_add(wall).unwrap_or(self.wall_start);
        tokio::select! {
            () = cancel.cancelled() => false,
            () = tokio::time::sleep_until(deadline) => !cancel.is_cancelled(),
        }
    }
}
