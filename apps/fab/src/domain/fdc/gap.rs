//! Gap detection: no sample for longer than the parameter's `max_gap` is a fault of its own
//! (communication loss), found both by a periodic check and when the next sample arrives.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::time::Timestamp;

/// A stretch without samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Gap {
    /// The last sample before it (or the start of monitoring).
    pub since: Timestamp,
    /// How long it lasted (so far, when found by [`GapDetector::check`]).
    #[schema(value_type = Object)]
    pub length: Duration,
}

/// Tracks the last sample time of one parameter; one fault per gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GapDetector {
    last: Timestamp,
    reported: bool,
}

impl GapDetector {
    /// Monitoring starts at `start` (a gap can be found before the first sample).
    #[must_use]
    pub fn new(start: Timestamp) -> Self {
        Self {
            last: start,
            reported: false,
        }
    }

    /// A sample taken at `at` arrived: reports the gap it ends, unless already reported. A
    /// sample older than the newest one seen changes nothing.
    pub fn observe(&mut self, at: Timestamp, max_gap: Duration) -> Option<Gap> {
        if at <= self.last {
            return None;
        }
        let length = at.saturating_since(self.last);
        let gap = (length > max_gap && !self.reported).then_some(Gap {
            since: self.last,
            length,
        });
        self.last = at;
        self.reported = false;
        gap
    }

    /// A periodic check at `now`: reports an open gap once.
    pub fn check(&mut self, now: Timestamp, max_gap: Duration) -> Option<Gap> {
        let length = now.saturating_since(self.last);
        if length > max_gap && !self.reported {
            self.reported = true;
            Some(Gap {
                since: self.last,
                length,
            })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(4);

    #[test]
    fn a_gap_is_reported_once_by_check_or_by_the_next_sample() {
        let t = Timestamp::from_secs;
        let mut g = GapDetector::new(t(0));
        for s in 1..=5 {
            assert_eq!(g.observe(t(s), MAX), None);
        }
        assert_eq!(g.check(t(9), MAX), None, "4 s is not more than max_gap");
        let found = g.check(t(10), MAX).unwrap();
        assert_eq!(found.since, t(5));
        assert_eq!(g.check(t(11), MAX), None, "reported once");
        assert_eq!(g.observe(t(12), MAX), None, "already reported by check");
        // A gap only seen when the next sample arrives.
        let gap = g.observe(t(20), MAX).unwrap();
        assert_eq!((gap.since, gap.length), (t(12), Duration::from_secs(8)));
        // Late samples change nothing.
        assert_eq!(g.observe(t(3), MAX), None);
        // No sample at all since the start is a gap too.
        let mut g = GapDetector::new(t(100));
        assert!(g.check(t(105), MAX).is_some());
    }
}
