//! The in-flight limit: a queue holds at most `ServiceConfig::max_in_flight` messages received
//! and not yet deleted (AWS: 120,000 for both queue types). At the limit, a standard queue's
//! ReceiveMessage fails with `OverLimit`, as AWS answers; a FIFO queue's returns nothing, as AWS
//! documents ("does not return an error, but processing may be impacted"). Near it, a receive
//! takes no more than the room left.
//!
//! Counting a queue's in-flight messages reads all of them, too costly for every receive, so each
//! queue keeps an upper bound: the last exact count plus every message leased since. Deletes and
//! timeouts only lower the truth, never the bound, so the bound is safe; an exact count is made
//! only when the bound says a receive might cross the limit, then the bound starts again from it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::store::QueueId;

#[derive(Debug, Default)]
pub(crate) struct InFlight {
    bounds: Mutex<HashMap<QueueId, u64>>,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<QueueId, u64>> {
        self.bounds.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The upper bound, if one is known.
    pub(crate) fn bound(&self, queue: QueueId) -> Option<u64> {
        self.lock().get(&queue).copied()
    }

    /// An exact count was just made.
    pub(crate) fn counted(&self, queue: QueueId, in_flight: u64) {
        self.lock().insert(queue, in_flight);
    }

    /// A receive leased `count` messages.
    pub(crate) fn leased(&self, queue: QueueId, count: usize) {
        if let Some(bound) = self.lock().get_mut(&queue) {
            *bound += count as u64;
        }
    }

    pub(crate) fn forget(&self, queue: QueueId) {
        self.lock().remove(&queue);
    }
}

/// How many messages a receive may take: all it asks for while the bound leaves room for them,
/// else what the exact count leaves.
pub(crate) fn room(limit: u64, bound: Option<u64>, wanted: usize) -> Room {
    match bound {
        Some(bound) if bound + wanted as u64 <= limit => Room::Enough,
        _ => Room::Count,
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Room {
    /// No need to count.
    Enough,
    /// Count exactly, then take at most `limit - count`.
    Count,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_when_the_bound_comes_near_the_limit() {
        let in_flight = InFlight::default();
        assert_eq!(room(100, in_flight.bound(1), 10), Room::Count, "nothing known yet");
        in_flight.counted(1, 50);
        assert_eq!(room(100, in_flight.bound(1), 10), Room::Enough);
        in_flight.leased(1, 40);
        assert_eq!(room(100, in_flight.bound(1), 10), Room::Enough, "90 + 10 fits exactly");
        in_flight.leased(1, 1);
        assert_eq!(room(100, in_flight.bound(1), 10), Room::Count);
        in_flight.forget(1);
        assert_eq!(in_flight.bound(1), None);
    }
}
