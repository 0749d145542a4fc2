//! Long-poll signalling: how a waiting ReceiveMessage learns that a message became visible.
//!
//! A waiting receive costs nothing while it waits: it is parked on its queue's `Notify` with a
//! deadline, and no task polls the store on a timer. It is woken
//! - at once by a send of immediately visible messages (one `notify_one` per message), and
//! - by the queue's alarm, armed for the earliest moment a hidden message (delayed, or in flight
//!   with a visibility timeout) becomes visible. Only one alarm per queue is pending at a time: the
//!   earliest; woken waiters that find nothing re-arm it from the store's `next_visible_at`.
//!
//! Architecture Invariant: no lost wake-ups. A waiter registers (`waiting += 1`) and enables its
//! `Notified` before it asks the store; a producer changes the store before it checks `waiting`.
//! Both sides use SeqCst, so either the producer sees the waiter or the waiter's read sees the
//! producer's write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::Clock;
use crate::store::{Millis, QueueId};

#[derive(Default)]
pub struct QueueSignal {
    pub notify: Notify,
    waiting: AtomicUsize,
    /// The time the pending alarm fires at, if one is pending.
    alarm_at: Mutex<Option<Millis>>,
}

/// Keeps a waiter counted while it lives.
pub struct WaiterGuard(Arc<QueueSignal>);

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl QueueSignal {
    pub fn register(self: &Arc<Self>) -> WaiterGuard {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        WaiterGuard(Arc::clone(self))
    }

    fn has_waiters(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }
}

/// The signals of all queues that have (or recently had) waiters.
pub struct Waiters {
    queues: Mutex<HashMap<QueueId, Arc<QueueSignal>>>,
    clock: Arc<dyn Clock>,
}

impl Waiters {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Waiters { queues: Mutex::new(HashMap::new()), clock }
    }

    pub fn signal(&self, queue: QueueId) -> Arc<QueueSignal> {
        let mut queues = self.queues.lock().expect("waiters lock");
        Arc::clone(queues.entry(queue).or_default())
    }

    fn existing(&self, queue: QueueId) -> Option<Arc<QueueSignal>> {
        self.queues.lock().expect("waiters lock").get(&queue).cloned()
    }

    /// `count` messages became visible now.
    pub fn messages_visible(&self, queue: QueueId, count: usize) {
        if let Some(signal) = self.existing(queue).filter(|s| s.has_waiters()) {
            for _ in 0..count {
                signal.notify.notify_one();
            }
        }
    }

    /// A message becomes visible at `at`: make sure waiters are woken then.
    pub fn visible_at(&self, queue: QueueId, at: Millis) {
        if let Some(signal) = self.existing(queue).filter(|s| s.has_waiters()) {
            self.arm(&signal, at);
        }
    }

    /// Arms the queue's alarm for `at` unless an earlier alarm is already pending.
    pub fn arm(&self, signal: &Arc<QueueSignal>, at: Millis) {
        {
            let mut alarm_at = signal.alarm_at.lock().expect("alarm lock");
            if alarm_at.is_some_and(|pending| pending <= at) {
                return;
            }
            *alarm_at = Some(at);
        }
        let delay = Duration::from_millis((at - self.clock.now()).max(0) as u64);
        let signal = Arc::clone(signal);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            {
                let mut alarm_at = signal.alarm_at.lock().expect("alarm lock");
                if *alarm_at == Some(at) {
                    *alarm_at = None;
                }
            }
            signal.notify.notify_waiters();
        });
    }

    /// The queue is gone: wake its waiters so they notice.
    pub fn queue_deleted(&self, queue: QueueId) {
        if let Some(signal) = self.queues.lock().expect("waiters lock").remove(&queue) {
            signal.notify.notify_waiters();
        }
    }
}
