//! Committed queue records kept in memory, so that resolving a queue URL (every request does it)
//! reads a map instead of waiting its turn on the writer thread behind other requests' commits.
//!
//! Invariants, which together keep the cache from ever holding a record that was not committed
//! or that a later change superseded:
//! - Every command that changes a queue record clears the cache and bumps `generation`, on the
//!   writer thread, when it executes, so before its transaction commits.
//! - A record read from the database enters the cache only after that read's transaction has
//!   committed, and only if no change executed since the read was issued (same `generation`,
//!   checked and filled under one lock).
//! - Only hits are cached: a missing queue is always looked up again.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use holdfast_core::store::QueueRecord;

#[derive(Debug, Default)]
pub(super) struct QueueCache {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    generation: u64,
    /// Account -> region -> name -> record: nested so a lookup borrows its strs instead of
    /// building a key.
    by_name: HashMap<String, HashMap<String, HashMap<String, QueueRecord>>>,
}

impl QueueCache {
    /// The cached record, or the generation to hand back to `fill` after a database read.
    pub(super) fn lookup(&self, account: &str, region: &str, name: &str) -> Result<QueueRecord, u64> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let found =
            state.by_name.get(account).and_then(|regions| regions.get(region)).and_then(|names| names.get(name));
        found.cloned().ok_or(state.generation)
    }

    /// Caches a committed record read while the cache was at `generation`, unless a change has
    /// executed since.
    pub(super) fn fill(&self, record: &QueueRecord, generation: u64) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.generation == generation {
            let regions = state.by_name.entry(record.account_id.clone()).or_default();
            regions.entry(record.region.clone()).or_default().insert(record.name.clone(), record.clone());
        }
    }

    /// A queue record is about to change: forget everything.
    pub(super) fn invalidate(&self) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.generation += 1;
        state.by_name.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, id: i64) -> QueueRecord {
        QueueRecord::new(
            id,
            "000000000000".into(),
            "us-east-1".into(),
            name.into(),
            Default::default(),
            Default::default(),
            0,
            0,
        )
    }

    #[test]
    fn a_read_issued_before_a_change_is_not_cached() {
        let cache = QueueCache::default();
        let generation = cache.lookup("000000000000", "us-east-1", "q").unwrap_err();
        cache.invalidate();
        cache.fill(&record("q", 1), generation);
        assert!(cache.lookup("000000000000", "us-east-1", "q").is_err(), "the read may predate the change");
        let generation = cache.lookup("000000000000", "us-east-1", "q").unwrap_err();
        cache.fill(&record("q", 1), generation);
        assert_eq!(cache.lookup("000000000000", "us-east-1", "q").unwrap().id, 1);
        assert!(cache.lookup("000000000000", "eu-west-1", "q").is_err(), "another region's q is another queue");
        cache.invalidate();
        assert!(cache.lookup("000000000000", "us-east-1", "q").is_err());
    }
}
