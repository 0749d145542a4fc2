//! `MemoryStore`: every queue and message in this process's memory, behind one mutex.
//!
//! Used for `--storage memory` and tests. Nothing survives the process, so the durability
//! invariant of `Store` holds vacuously; the others hold because every call runs entirely under
//! the one lock, which makes each call atomic and serialises it against all others.
//!
//! Invariants:
//! - Per queue, `messages` (seq -> message), `by_visibility` (`(visible_at, seq)`) and `by_age`
//!   (`(sent_at, seq)`) always hold exactly the same seqs; every insert and removal goes through
//!   `Queue::insert` / `Queue::remove`, and visibility changes through `Queue::set_visible_at`.
//! - Receive walks `by_visibility` from its start and stops at the first entry that is not yet
//!   visible, so its cost follows the messages it returns (plus expired ones it removes), never
//!   the backlog. Expiry walks `by_age` the same way.
//! - Queue ids and message seqs come from counters that only grow, so neither is ever reused.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::rules::{merge_attributes, visibility_outcome};
use holdfast_core::store::{
    ChangeVisibility, ChangeVisibilityOutcome, CreateQueueOutcome, DeadLetterTarget, Deduplication, DeleteOutcome, Lease,
    MessageMove, Millis, MovableMessage, MoveTask, NewMessage, PurgeOutcome, QueueCounts, QueueId, QueueRecord,
    ReceiveOutcome, ReceiveParams, SendOutcome, Store, StoreError, StoreResult, StoredMessage,
};

/// The in-memory engine. Cheap to create; each instance is an independent, empty store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    /// Last queue id handed out; ids start at 1 like SQLite's AUTOINCREMENT.
    last_queue_id: QueueId,
    /// Last seq handed out, shared by all queues because seqs are unique store-wide.
    last_seq: i64,
    queues: HashMap<QueueId, Queue>,
    /// Live queue names. A `BTreeMap` because ListQueues pages through names in order.
    by_name: BTreeMap<String, QueueId>,
    /// Name -> deletion time, for the recreate cooldown. Pruned on create once older than the
    /// cooldown the caller passes, so it holds only names deleted recently.
    deleted: HashMap<String, Millis>,
}

#[derive(Debug)]
struct Queue {
    record: QueueRecord,
    last_purged_at: Option<Millis>,
    messages: HashMap<i64, Message>,
    by_visibility: BTreeSet<(Millis, i64)>,
    by_age: BTreeSet<(Millis, i64)>,
}

#[derive(Debug)]
struct Message {
    stored: StoredMessage,
    visible_at: Millis,
    /// The current lease, `None` until the first receive. Kept apart from `stored.lease` (a plain
    /// u64) so a never-received message matches no lease at all.
    lease: Option<u64>,
    leased_at: Millis,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> StoreResult<MutexGuard<'_, State>> {
        // A poisoned lock means a call panicked half-way through a mutation: the state may break
        // the invariants above, so refuse to go on rather than serve from it.
        let state = self
            .state
            .lock()
            .map_err(|_| StoreError::Backend("memory store lock poisoned by an earlier panic".into()))?;
        if state.closed {
            return Err(StoreError::Closed);
        }
        Ok(state)
    }
}

impl Queue {
    fn new(record: QueueRecord) -> Self {
        Queue {
            record,
            last_purged_at: None,
            messages: HashMap::new(),
            by_visibility: BTreeSet::new(),
            by_age: BTreeSet::new(),
        }
    }

    fn insert(&mut self, message: Message) {
        let seq = message.stored.seq;
        self.by_visibility.insert((message.visible_at, seq));
        self.by_age.insert((message.stored.sent_at, seq));
        self.messages.insert(seq, message);
    }

    fn remove(&mut self, seq: i64) -> Option<Message> {
        let message = self.messages.remove(&seq)?;
        self.by_visibility.remove(&(message.visible_at, seq));
        self.by_age.remove(&(message.stored.sent_at, seq));
        Some(message)
    }

    fn set_visible_at(&mut self, seq: i64, visible_at: Millis) {
        if let Some(message) = self.messages.get_mut(&seq) {
            self.by_visibility.remove(&(message.visible_at, seq));
            message.visible_at = visible_at;
            self.by_visibility.insert((visible_at, seq));
        }
    }

    /// Removes every message sent before `cutoff`, oldest first.
    fn expire_before(&mut self, cutoff: Millis) -> u64 {
        let expired: Vec<i64> = self.by_age.range(..(cutoff, i64::MIN)).map(|&(_, seq)| seq).collect();
        for &seq in &expired {
            self.remove(seq);
        }
        expired.len() as u64
    }

    /// The message leased by `lease` in this queue, if that lease is still its current one.
    fn leased(&self, lease: Lease) -> Option<&Message> {
        self.messages.get(&lease.seq).filter(|m| m.lease == Some(lease.lease))
    }

    fn next_visible_at(&self, now: Millis) -> Option<Millis> {
        self.by_visibility.range((now + 1, i64::MIN)..).next().map(|&(at, _)| at)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_queue(
        &self,
        name: &str,
        attributes: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
        now: Millis,
        recreate_cooldown_ms: i64,
    ) -> StoreResult<CreateQueueOutcome> {
        let mut state = self.state()?;
        if let Some(id) = state.by_name.get(name) {
            return Ok(CreateQueueOutcome::Exists(state.queues[id].record.clone()));
        }
        state.deleted.retain(|_, deleted_at| now - *deleted_at < recreate_cooldown_ms);
        if state.deleted.contains_key(name) {
            return Ok(CreateQueueOutcome::DeletedRecently);
        }
        state.last_queue_id += 1;
        let record = QueueRecord {
            id: state.last_queue_id,
            name: name.to_owned(),
            attributes,
            tags,
            created_at: now,
            last_modified_at: now,
        };
        state.by_name.insert(name.to_owned(), record.id);
        state.queues.insert(record.id, Queue::new(record.clone()));
        Ok(CreateQueueOutcome::Created(record))
    }

    async fn get_queue(&self, name: &str) -> StoreResult<Option<QueueRecord>> {
        let state = self.state()?;
        Ok(state.by_name.get(name).map(|id| state.queues[id].record.clone()))
    }

    async fn list_queues(&self, prefix: &str, after: Option<&str>, limit: usize) -> StoreResult<Vec<QueueRecord>> {
        use std::ops::Bound;
        let state = self.state()?;
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        Ok(state
            .by_name
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(name, _)| name.starts_with(prefix))
            .take(limit)
            .map(|(_, id)| state.queues[id].record.clone())
            .collect())
    }

    async fn delete_queue(&self, queue: QueueId, now: Millis) -> StoreResult<bool> {
        let mut state = self.state()?;
        let Some(removed) = state.queues.remove(&queue) else {
            return Ok(false);
        };
        state.by_name.remove(&removed.record.name);
        state.deleted.insert(removed.record.name, now);
        Ok(true)
    }

    async fn set_queue_attributes(
        &self,
        queue: QueueId,
        attributes: BTreeMap<String, String>,
        now: Millis,
    ) -> StoreResult<bool> {
        let mut state = self.state()?;
        let Some(q) = state.queues.get_mut(&queue) else {
            return Ok(false);
        };
        merge_attributes(&mut q.record.attributes, attributes);
        q.record.last_modified_at = now;
        Ok(true)
    }

    async fn tag_queue(&self, queue: QueueId, tags: BTreeMap<String, String>) -> StoreResult<bool> {
        let mut state = self.state()?;
        let Some(q) = state.queues.get_mut(&queue) else {
            return Ok(false);
        };
        q.record.tags.extend(tags);
        Ok(true)
    }

    async fn untag_queue(&self, queue: QueueId, keys: Vec<String>) -> StoreResult<bool> {
        let mut state = self.state()?;
        let Some(q) = state.queues.get_mut(&queue) else {
            return Ok(false);
        };
        for key in keys {
            q.record.tags.remove(&key);
        }
        Ok(true)
    }

    async fn purge_queue(&self, queue: QueueId, now: Millis, cooldown_ms: i64) -> StoreResult<Option<PurgeOutcome>> {
        let mut state = self.state()?;
        let Some(q) = state.queues.get_mut(&queue) else {
            return Ok(None);
        };
        if q.last_purged_at.is_some_and(|at| now - at < cooldown_ms) {
            return Ok(Some(PurgeOutcome::InProgress));
        }
        let removed = q.messages.len() as u64;
        q.messages.clear();
        q.by_visibility.clear();
        q.by_age.clear();
        q.last_purged_at = Some(now);
        Ok(Some(PurgeOutcome::Purged { removed }))
    }

    async fn queue_counts(&self, queue: QueueId, now: Millis) -> StoreResult<QueueCounts> {
        let state = self.state()?;
        let Some(q) = state.queues.get(&queue) else {
            return Ok(QueueCounts::default());
        };
        // Only hidden messages are walked: visible ones are the rest of the total, so the cost
        // follows the in-flight and delayed messages, not the backlog.
        let mut counts = QueueCounts::default();
        for (_, seq) in q.by_visibility.range((now + 1, i64::MIN)..) {
            if q.messages[seq].stored.receive_count > 0 {
                counts.in_flight += 1;
            } else {
                counts.delayed += 1;
            }
        }
        counts.visible = q.messages.len() as u64 - counts.in_flight - counts.delayed;
        Ok(counts)
    }

    async fn send_messages(
        &self,
        queue: QueueId,
        messages: Vec<NewMessage>,
        _dedup: Option<Deduplication>,
        _now: Millis,
    ) -> StoreResult<Option<Vec<SendOutcome>>> {
        let mut state = self.state()?;
        let state = &mut *state;
        let Some(q) = state.queues.get_mut(&queue) else {
            return Ok(None);
        };
        let mut seqs = Vec::with_capacity(messages.len());
        for m in messages {
            state.last_seq += 1;
            let seq = state.last_seq;
            seqs.push(SendOutcome::Enqueued { seq });
            q.insert(Message {
                visible_at: m.visible_at,
                lease: None,
                leased_at: 0,
                stored: StoredMessage {
                    seq,
                    message_id: m.message_id,
                    body: m.body,
                    attributes: m.attributes,
                    system_attributes: m.system_attributes,
                    group_id: m.group_id,
                    deduplication_id: m.deduplication_id,
                    sender_id: m.sender_id,
                    sent_at: m.sent_at,
                    receive_count: 0,
                    first_received_at: None,
                    lease: 0,
                    dead_letter_source_arn: None,
                },
            });
        }
        Ok(Some(seqs))
    }

    async fn receive_messages(&self, queue: QueueId, params: ReceiveParams) -> StoreResult<Option<ReceiveOutcome>> {
        let mut state = self.state()?;
        let Some(q) = state.queues.get_mut(&queue) else {
            return Ok(None);
        };
        let now = params.now;
        let cutoff = now - params.retention_ms;
        let mut expired = Vec::new();
        let mut chosen = Vec::new();
        for &(_, seq) in q.by_visibility.range(..(now + 1, i64::MIN)) {
            if chosen.len() >= params.max_messages {
                break;
            }
            if q.messages[&seq].stored.sent_at < cutoff {
                expired.push(seq);
            } else {
                chosen.push(seq);
            }
        }
        for seq in expired {
            q.remove(seq);
        }
        let visible_at = now + params.visibility_timeout_ms;
        let mut messages = Vec::with_capacity(chosen.len());
        for &seq in &chosen {
            q.set_visible_at(seq, visible_at);
            let m = q.messages.get_mut(&seq).expect("chosen from the index of this queue");
            let lease = rand::random::<u64>();
            m.lease = Some(lease);
            m.leased_at = now;
            m.stored.lease = lease;
            m.stored.receive_count += 1;
            m.stored.first_received_at.get_or_insert(now);
            messages.push(m.stored.clone());
        }
        messages.sort_by_key(|m| m.seq);
        Ok(Some(ReceiveOutcome { messages, next_visible_at: q.next_visible_at(now), dead_lettered: 0 }))
    }

    async fn delete_messages(&self, queue: QueueId, leases: Vec<Lease>) -> StoreResult<Option<Vec<DeleteOutcome>>> {
        let mut state = self.state()?;
        let Some(q) = state.queues.get_mut(&queue) else {
            return Ok(None);
        };
        let outcomes = leases
            .into_iter()
            .map(|lease| {
                if q.leased(lease).is_some() {
                    q.remove(lease.seq);
                    DeleteOutcome::Deleted
                } else {
                    DeleteOutcome::NotCurrent
                }
            })
            .collect();
        Ok(Some(outcomes))
    }

    async fn change_visibility(
        &self,
        queue: QueueId,
        changes: Vec<ChangeVisibility>,
        now: Millis,
        max_inflight_ms: i64,
    ) -> StoreResult<Option<Vec<ChangeVisibilityOutcome>>> {
        let mut state = self.state()?;
        let Some(q) = state.queues.get_mut(&queue) else {
            return Ok(None);
        };
        let outcomes = changes
            .into_iter()
            .map(|change| {
                let Some(m) = q.leased(change.lease) else {
                    return ChangeVisibilityOutcome::NotCurrent;
                };
                let visible_at = now + change.visibility_timeout_ms;
                let outcome = visibility_outcome(m.visible_at, m.leased_at, visible_at, now, max_inflight_ms);
                if outcome == ChangeVisibilityOutcome::Changed {
                    q.set_visible_at(change.lease.seq, visible_at);
                }
                outcome
            })
            .collect();
        Ok(Some(outcomes))
    }

    async fn dead_letter_exhausted(
        &self,
        _queue: QueueId,
        _target: DeadLetterTarget,
        _now: Millis,
        _limit: usize,
    ) -> StoreResult<Option<u64>> {
        Err(StoreError::Backend("dead-letter queues are not implemented by this engine yet".into()))
    }

    async fn movable_messages(&self, _queue: QueueId, _now: Millis, _limit: usize) -> StoreResult<Vec<MovableMessage>> {
        Err(StoreError::Backend("message move tasks are not implemented by this engine yet".into()))
    }

    async fn move_messages(&self, _source: QueueId, _moves: Vec<MessageMove>, _now: Millis) -> StoreResult<u64> {
        Err(StoreError::Backend("message move tasks are not implemented by this engine yet".into()))
    }

    async fn save_move_task(&self, _task: MoveTask) -> StoreResult<()> {
        Err(StoreError::Backend("message move tasks are not implemented by this engine yet".into()))
    }

    async fn move_tasks(&self, _source_queue: Option<QueueId>) -> StoreResult<Vec<MoveTask>> {
        Ok(Vec::new())
    }

    async fn expire_messages(&self, retention_ms: &[(QueueId, i64)], now: Millis) -> StoreResult<u64> {
        let mut state = self.state()?;
        let mut removed = 0;
        for &(queue, retention) in retention_ms {
            if let Some(q) = state.queues.get_mut(&queue) {
                removed += q.expire_before(now - retention);
            }
        }
        Ok(removed)
    }

    async fn close(&self) -> StoreResult<()> {
        let mut state = self.state()?;
        state.closed = true;
        Ok(())
    }
}
