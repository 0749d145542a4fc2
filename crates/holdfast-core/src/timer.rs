//! The service's one timer: every piece of work that falls due at a moment in time, for every
//! queue, in one ordered set of deadlines served by one task.
//!
//! What falls due:
//! - `Visible(queue)`: a hidden message (delayed, or in flight) becomes visible. Long polls parked
//!   on the queue wake and look again; a queue with a RedrivePolicy moves the messages that are
//!   now exhausted to its dead-letter queue, even if nobody receives from it.
//! - `Expire(queue)`: the queue's oldest message reaches the end of its retention period.
//! - `Prune`: FIFO deduplication records and receive attempts outlive their window.
//!
//! Each key has at most one pending deadline, the earliest anyone asked for: `schedule` with a
//! later time is a no-op, an earlier one replaces it. Whoever handles a deadline asks the store
//! when the next one of its kind is due and schedules that, so the set holds one entry per busy
//! queue, not one per message. The task sleeps until the first deadline (`sleep_until`), and is
//! woken early only when a new first deadline arrives. An idle server with no deadlines sleeps
//! until something is scheduled: it costs no wake-ups at all, however many queues it has.
//!
//! Deadlines are in the service's `Clock` time (epoch milliseconds); the sleep converts the
//! distance to the first one into tokio time, so tests drive both a `ManualClock` and paused
//! tokio time by the same amount.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use crate::store::{Millis, QueueId};

/// A queue as the timer knows it: its id, and its name to look it up again when a deadline
/// fires (it may have been deleted, or deleted and re-created under a new id, since).
#[derive(Clone, Debug)]
pub(crate) struct QueueKey {
    pub id: QueueId,
    pub account: Arc<str>,
    pub region: Arc<str>,
    pub name: Arc<str>,
}

impl QueueKey {
    pub fn new(id: QueueId, account: &str, region: &str, name: &str) -> Self {
        QueueKey { id, account: Arc::from(account), region: Arc::from(region), name: Arc::from(name) }
    }
}

// A queue id names one queue for good (ids are never reused), so the id alone identifies a key.
impl PartialEq for QueueKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for QueueKey {}
impl Hash for QueueKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}
impl PartialOrd for QueueKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for QueueKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id.cmp(&other.id)
    }
}

/// Work that falls due at a moment in time.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Due {
    Visible(QueueKey),
    Expire(QueueKey),
    Prune,
}

impl Due {
    fn queue(&self) -> Option<QueueId> {
        match self {
            Due::Visible(q) | Due::Expire(q) => Some(q.id),
            Due::Prune => None,
        }
    }
}

#[derive(Default)]
struct Deadlines {
    /// Every pending deadline in time order.
    by_time: BTreeSet<(Millis, Due)>,
    /// The pending deadline of each key (the same entries as `by_time`, looked up by key).
    pending: HashMap<Due, Millis>,
}

#[derive(Default)]
pub(crate) struct Timer {
    deadlines: Mutex<Deadlines>,
    /// Signalled when a deadline earlier than every pending one arrives, so the sleeping task
    /// re-arms. `notify_one` keeps a permit if the task is busy, so no re-arm is ever lost.
    rearm: Notify,
}

impl Timer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Deadlines> {
        // Nothing panics while holding the lock; recover the data rather than stop the timer.
        self.deadlines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes sure `due` fires at `at` or earlier.
    pub fn schedule(&self, due: Due, at: Millis) {
        let mut deadlines = self.lock();
        match deadlines.pending.get(&due) {
            Some(&pending) if pending <= at => return,
            Some(&pending) => {
                deadlines.by_time.remove(&(pending, due.clone()));
            }
            None => {}
        }
        let first = deadlines.by_time.first().is_none_or(|(earliest, _)| at < *earliest);
        deadlines.pending.insert(due.clone(), at);
        deadlines.by_time.insert((at, due));
        drop(deadlines);
        if first {
            self.rearm.notify_one();
        }
    }

    /// Drops every deadline of a deleted queue.
    pub fn forget_queue(&self, queue: QueueId) {
        let mut deadlines = self.lock();
        let Deadlines { by_time, pending } = &mut *deadlines;
        pending.retain(|due, at| {
            let keep = due.queue() != Some(queue);
            if !keep {
                by_time.remove(&(*at, due.clone()));
            }
            keep
        });
    }

    /// Removes and returns every deadline at or before `now`, earliest first.
    pub fn take_due(&self, now: Millis) -> Vec<Due> {
        let mut deadlines = self.lock();
        let mut due = Vec::new();
        while deadlines.by_time.first().is_some_and(|(at, _)| *at <= now) {
            let (_, item) = deadlines.by_time.pop_first().expect("checked above");
            deadlines.pending.remove(&item);
            due.push(item);
        }
        due
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.lock().by_time.first().map(|(at, _)| *at)
    }

    /// How many deadlines are pending (for tests and diagnostics).
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.lock().by_time.len()
    }

    /// Resolves when a deadline earlier than all others has been scheduled since the last call.
    pub async fn rearmed(&self) {
        self.rearm.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(id: QueueId) -> QueueKey {
        QueueKey::new(id, "000000000000", "us-east-1", &format!("q{id}"))
    }

    #[test]
    fn keeps_only_the_earliest_deadline_per_key() {
        let timer = Timer::default();
        timer.schedule(Due::Visible(queue(1)), 500);
        timer.schedule(Due::Visible(queue(1)), 900);
        timer.schedule(Due::Visible(queue(1)), 300);
        assert_eq!(timer.pending(), 1);
        assert_eq!(timer.next_deadline(), Some(300));
        assert_eq!(timer.take_due(299), Vec::<Due>::new());
        assert_eq!(timer.take_due(300), vec![Due::Visible(queue(1))]);
        assert_eq!(timer.next_deadline(), None);
    }

    #[test]
    fn hands_out_due_work_in_time_order() {
        let timer = Timer::default();
        timer.schedule(Due::Expire(queue(2)), 200);
        timer.schedule(Due::Prune, 100);
        timer.schedule(Due::Visible(queue(1)), 300);
        assert_eq!(timer.take_due(250), vec![Due::Prune, Due::Expire(queue(2))]);
        assert_eq!(timer.next_deadline(), Some(300));
    }

    #[test]
    fn forgets_a_deleted_queue() {
        let timer = Timer::default();
        timer.schedule(Due::Expire(queue(1)), 200);
        timer.schedule(Due::Visible(queue(1)), 100);
        timer.schedule(Due::Visible(queue(2)), 150);
        timer.forget_queue(1);
        assert_eq!(timer.pending(), 1);
        assert_eq!(timer.take_due(1_000), vec![Due::Visible(queue(2))]);
    }

    #[tokio::test]
    async fn an_earlier_deadline_rearms_the_sleeper() {
        let timer = Timer::default();
        timer.schedule(Due::Prune, 1_000);
        // The first deadline left a permit; consume it.
        timer.rearmed().await;
        timer.schedule(Due::Visible(queue(1)), 2_000);
        let later = tokio::time::timeout(std::time::Duration::from_millis(10), timer.rearmed()).await;
        assert!(later.is_err(), "a later deadline does not wake the sleeper");
        timer.schedule(Due::Visible(queue(2)), 500);
        tokio::time::timeout(std::time::Duration::from_secs(5), timer.rearmed())
            .await
            .expect("an earlier deadline wakes the sleeper");
    }
}
