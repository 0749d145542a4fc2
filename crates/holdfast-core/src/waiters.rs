//! Long-poll signalling: how a waiting ReceiveMessage learns that a message became visible.
//!
//! A waiting receive costs nothing while it waits: it is parked on its queue's `Notify` with a
//! deadline, and no task polls the store on a timer. It is woken
//! - at once by a send of immediately visible messages (one `notify_one` per message), and
//! - by the service's timer (`crate::timer`, `Due::Visible`), scheduled for the earliest moment a
//!   hidden message (delayed, or in flight) becomes visible. Woken waiters that find nothing
//!   schedule the next such moment from the store's `next_visible_at`.
//!
//! Architecture Invariant: no lost wake-ups. A waiter registers (`waiting += 1`) and enables its
//! `Notified` before it asks the store; a producer changes the store before it checks `waiting`.
//! Both sides use SeqCst, so either the producer sees the waiter or the waiter's read sees the
//! producer's write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use crate::store::QueueId;

#[derive(Default)]
pub(crate) struct QueueSignal {
    pub notify: Notify,
    waiting: AtomicUsize,
}

/// Keeps a waiter counted while it lives.
pub(crate) struct WaiterGuard(Arc<QueueSignal>);

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
#[derive(Default)]
pub(crate) struct Waiters {
    queues: Mutex<HashMap<QueueId, Arc<QueueSignal>>>,
    /// Passes this node's news on to the other nodes of a shared store (`Store::announce_visible`).
    announce: Option<Arc<dyn crate::Store>>,
}

impl Waiters {
    /// Waiters whose news also goes to the other nodes sharing `store`.
    pub fn announcing_to(store: Arc<dyn crate::Store>) -> Self {
        Waiters { queues: Mutex::default(), announce: Some(store) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<QueueId, Arc<QueueSignal>>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn signal(&self, queue: QueueId) -> Arc<QueueSignal> {
        Arc::clone(self.lock().entry(queue).or_default())
    }

    fn existing(&self, queue: QueueId) -> Option<Arc<QueueSignal>> {
        self.lock().get(&queue).cloned()
    }

    /// Whether any receive is waiting on the queue now.
    pub fn has_waiters(&self, queue: QueueId) -> bool {
        self.existing(queue).is_some_and(|s| s.has_waiters())
    }

    /// `count` messages became visible now.
    pub fn messages_visible(&self, queue: QueueId, count: usize) {
        if let (Some(store), 1..) = (&self.announce, count) {
            store.announce_visible(queue);
        }
        if let Some(signal) = self.existing(queue).filter(|s| s.has_waiters()) {
            for _ in 0..count {
                signal.notify.notify_one();
            }
        }
    }

    /// Another node made messages visible in the queue: every waiter here looks again.
    pub fn visible_elsewhere(&self, queue: QueueId) {
        if let Some(signal) = self.existing(queue) {
            signal.notify.notify_waiters();
        }
    }

    /// Something in the queue became visible: every waiter looks again.
    pub fn wake_all(&self, queue: QueueId) {
        if let Some(signal) = self.existing(queue) {
            signal.notify.notify_waiters();
        }
    }

    /// The queue is gone: wake its waiters so they notice.
    pub fn queue_deleted(&self, queue: QueueId) {
        if let Some(signal) = self.lock().remove(&queue) {
            signal.notify.notify_waiters();
        }
    }
}
