//! Queue records a node read lately, so resolving a queue name (every request does) costs no
//! round trip to the database most of the time.
//!
//! Invariants:
//! - An entry is served for at most `TTL` after it was read: a queue changed or deleted on another
//!   node is seen here within that time. A stale record can only carry stale settings; every call
//!   on a deleted queue's id still fails with `QueueNotFound` in the database.
//! - A change made through this node clears the cache before it is made, and a read that began
//!   before a change is not stored (`generation`), so this node always sees its own changes.
//! - Only queues that exist are cached: a queue created on another node is found at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use holdfast_core::store::QueueRecord;

/// How long a record read from the database is used without reading it again.
pub(super) const TTL: Duration = Duration::from_secs(1);
/// Entries kept at most; past it the cache starts over.
const CAPACITY: usize = 10_000;

type Key = (String, String, String);

#[derive(Default)]
pub(super) struct QueueCache {
    entries: Mutex<HashMap<Key, (QueueRecord, Instant)>>,
    generation: AtomicU64,
}

impl QueueCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (QueueRecord, Instant)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn get(&self, account: &str, region: &str, name: &str) -> Option<QueueRecord> {
        let key = (account.to_owned(), region.to_owned(), name.to_owned());
        let entries = self.entries();
        let (record, read_at) = entries.get(&key)?;
        (read_at.elapsed() < TTL).then(|| record.clone())
    }

    /// The generation to hand back to `put` with a record read after this call.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Stores a record read from the database, unless a change was made here since the read began.
    pub(super) fn put(&self, record: QueueRecord, generation: u64) {
        let mut entries = self.entries();
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        let key = (record.account_id.clone(), record.region.clone(), record.name.clone());
        entries.insert(key, (record, Instant::now()));
    }

    /// A queue is about to change through this node: forget everything.
    pub(super) fn changed_here(&self) {
        let mut entries = self.entries();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }
}
