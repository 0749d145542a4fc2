//! One queue of the memory engine: its messages and every index over them, kept consistent by
//! the few methods that change them.
//!
//! Invariants:
//! - `messages` (seq -> message), `by_visibility` (`(visible_at, seq)`), `by_age`
//!   (`(sent_at, seq)`) and `by_receive_count` (`(receive_count, seq)`, received messages only)
//!   always describe the same messages; every insert and removal goes through `insert` /
//!   `remove`, every visibility change through `set_visible_at`, every receive through `lease`.
//! - Message groups: `groups` holds each group's seqs; a group's head is its lowest seq. Every
//!   head is in exactly one of `waiting` (keyed by the head's current `visible_at`) or `ready`,
//!   and no other message is in either. A head enters `waiting` when it becomes head or its
//!   visibility changes; `promote` moves the heads that have become visible to `ready`, so a FIFO
//!   receive finds the available groups in the order they became available by walking `ready`
//!   in `(visible_at, seq)` order, and the
//!   next group to become available is the first entry of `waiting`. Neither walk reads a
//!   group's backlog. The SQLite engine keeps the same two sets as `fifo_groups.ready`.
//! - Deduplication records and receive attempts live here, so they go with the queue, and each
//!   has an expiry index so pruning reads only expired entries.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use holdfast_core::store::{Lease, Millis, QueueRecord, StoredMessage};
use rand::RngCore;
use rand_chacha::ChaCha20Rng;

use crate::rules::is_live;

#[derive(Debug)]
pub(super) struct Queue {
    pub(super) record: QueueRecord,
    pub(super) last_purged_at: Option<Millis>,
    pub(super) messages: HashMap<i64, Message>,
    by_visibility: BTreeSet<(Millis, i64)>,
    by_age: BTreeSet<(Millis, i64)>,
    /// Received messages only: the dead-letter sweep reads exhausted messages from here without
    /// touching the never-received backlog.
    by_receive_count: BTreeSet<(u32, i64)>,
    /// By name: a fair receive visits groups in name order.
    groups: BTreeMap<String, BTreeSet<i64>>,
    /// Heads not yet known to be visible, as `(visible_at, seq)`.
    waiting: BTreeSet<(Millis, i64)>,
    /// Heads known to be visible, as `(visible_at, seq)`: the order groups became available.
    /// A head's `visible_at` does not change while it is here (a change moves it to `waiting`).
    ready: BTreeSet<(Millis, i64)>,
    /// `(scope, deduplication id)` -> the first message sent with it.
    dedup: HashMap<(String, String), DedupRecord>,
    dedup_by_expiry: BTreeSet<(Millis, String, String)>,
    attempts: HashMap<String, Attempt>,
    attempts_by_expiry: BTreeSet<(Millis, String)>,
    /// Where this queue's leases come from: a CSPRNG seeded when the queue is created, so a
    /// receipt handle cannot be guessed from another, yet the same seed and the same calls give
    /// the same leases (the journal engine replays calls and must arrive at the same state).
    leases: ChaCha20Rng,
}

#[derive(Debug)]
pub(super) struct Message {
    pub(super) stored: StoredMessage,
    pub(super) visible_at: Millis,
    /// The current lease, `None` until the first receive. Kept apart from `stored.lease` (a plain
    /// u64) so a never-received message matches no lease at all.
    pub(super) lease: Option<u64>,
    pub(super) leased_at: Millis,
}

#[derive(Debug, Clone)]
pub(super) struct DedupRecord {
    pub(super) message_id: String,
    pub(super) seq: i64,
    expires_at: Millis,
}

#[derive(Debug)]
struct Attempt {
    leases: Vec<Lease>,
    expires_at: Millis,
}

impl Queue {
    pub(super) fn new(record: QueueRecord, lease_seed: [u8; 32]) -> Self {
        Queue {
            record,
            last_purged_at: None,
            messages: HashMap::new(),
            by_visibility: BTreeSet::new(),
            by_age: BTreeSet::new(),
            by_receive_count: BTreeSet::new(),
            groups: BTreeMap::new(),
            waiting: BTreeSet::new(),
            ready: BTreeSet::new(),
            dedup: HashMap::new(),
            dedup_by_expiry: BTreeSet::new(),
            attempts: HashMap::new(),
            attempts_by_expiry: BTreeSet::new(),
            leases: rand::SeedableRng::from_seed(lease_seed),
        }
    }

    /// Adds a message. Its seq is the newest of the store, so in its group it is never the head
    /// unless the group was empty.
    pub(super) fn insert(&mut self, message: Message) {
        let seq = message.stored.seq;
        self.by_visibility.insert((message.visible_at, seq));
        self.by_age.insert((message.stored.sent_at, seq));
        if message.stored.receive_count > 0 {
            self.by_receive_count.insert((message.stored.receive_count, seq));
        }
        if let Some(group) = &message.stored.group_id {
            let seqs = self.groups.entry(group.clone()).or_default();
            debug_assert!(seqs.last().copied().unwrap_or(i64::MIN) < seq, "seqs only grow");
            if seqs.is_empty() {
                self.waiting.insert((message.visible_at, seq));
            }
            seqs.insert(seq);
        }
        self.messages.insert(seq, message);
    }

    pub(super) fn remove(&mut self, seq: i64) -> Option<Message> {
        let message = self.messages.remove(&seq)?;
        self.by_visibility.remove(&(message.visible_at, seq));
        self.by_age.remove(&(message.stored.sent_at, seq));
        self.by_receive_count.remove(&(message.stored.receive_count, seq));
        if let Some(group) = &message.stored.group_id {
            let seqs = self.groups.get_mut(group).expect("a grouped message's group exists");
            let was_head = seqs.first() == Some(&seq);
            seqs.remove(&seq);
            if was_head {
                if !self.ready.remove(&(message.visible_at, seq)) {
                    self.waiting.remove(&(message.visible_at, seq));
                }
                match seqs.first() {
                    Some(&head) => {
                        self.waiting.insert((self.messages[&head].visible_at, head));
                    }
                    None => {
                        self.groups.remove(group);
                    }
                }
            }
        }
        Some(message)
    }

    /// Removes every message (PurgeQueue). Deduplication records and attempts stay: they outlive
    /// the messages they name.
    pub(super) fn clear_messages(&mut self) -> u64 {
        let removed = self.messages.len() as u64;
        self.messages.clear();
        self.by_visibility.clear();
        self.by_age.clear();
        self.by_receive_count.clear();
        self.groups.clear();
        self.waiting.clear();
        self.ready.clear();
        removed
    }

    fn is_head(&self, message: &Message) -> bool {
        message.stored.group_id.as_ref().is_some_and(|g| self.groups[g].first() == Some(&message.stored.seq))
    }

    pub(super) fn set_visible_at(&mut self, seq: i64, visible_at: Millis) {
        let Some(message) = self.messages.get(&seq) else { return };
        let old = message.visible_at;
        if self.is_head(message) {
            if !self.ready.remove(&(old, seq)) {
                self.waiting.remove(&(old, seq));
            }
            self.waiting.insert((visible_at, seq));
        }
        self.by_visibility.remove(&(old, seq));
        self.by_visibility.insert((visible_at, seq));
        self.messages.get_mut(&seq).expect("looked up above").visible_at = visible_at;
    }

    /// Leases one message for a receive: new lease, one more receive, hidden until `visible_at`.
    pub(super) fn lease(&mut self, seq: i64, now: Millis, visible_at: Millis) -> StoredMessage {
        self.set_visible_at(seq, visible_at);
        let m = self.messages.get_mut(&seq).expect("leasing a message of this queue");
        self.by_receive_count.remove(&(m.stored.receive_count, seq));
        let lease = self.leases.next_u64();
        m.lease = Some(lease);
        m.leased_at = now;
        m.stored.lease = lease;
        m.stored.receive_count += 1;
        m.stored.first_received_at.get_or_insert(now);
        self.by_receive_count.insert((m.stored.receive_count, seq));
        m.stored.clone()
    }

    pub(super) fn reseed(&mut self, seed: [u8; 32]) {
        self.leases = rand::SeedableRng::from_seed(seed);
    }

    /// Merges SetQueueAttributes `changes` into the record. The record is replaced, not edited:
    /// its parsed settings belong to the old attributes.
    pub(super) fn set_attributes(&mut self, changes: std::collections::BTreeMap<String, String>, now: Millis) {
        let old = &self.record;
        let mut attributes = old.attributes.clone();
        crate::rules::merge_attributes(&mut attributes, changes);
        self.record = QueueRecord::new(
            old.id,
            old.account_id.clone(),
            old.region.clone(),
            old.name.clone(),
            attributes,
            old.tags.clone(),
            old.created_at,
            now,
        );
    }

    /// Removes every message sent before `cutoff`, oldest first.
    pub(super) fn expire_before(&mut self, cutoff: Millis) -> u64 {
        let expired: Vec<i64> = self.by_age.range(..(cutoff, i64::MIN)).map(|&(_, seq)| seq).collect();
        for &seq in &expired {
            self.remove(seq);
        }
        expired.len() as u64
    }

    /// The message `seq` of this queue, whoever holds it.
    pub(super) fn message(&self, seq: i64) -> Option<&Message> {
        self.messages.get(&seq)
    }

    /// The message leased by `lease` in this queue, if that lease is still its current one.
    pub(super) fn leased(&self, lease: Lease) -> Option<&Message> {
        self.messages.get(&lease.seq).filter(|m| m.lease == Some(lease.lease))
    }

    /// Visible messages in `(visible_at, seq)` order, the standard delivery order.
    pub(super) fn visible(&self, now: Millis) -> impl Iterator<Item = i64> + '_ {
        self.by_visibility.range(..(now + 1, i64::MIN)).map(|&(_, seq)| seq)
    }

    /// Hidden messages (in flight or delayed), for counting without reading the visible backlog.
    pub(super) fn hidden(&self, now: Millis) -> impl Iterator<Item = i64> + '_ {
        self.by_visibility.range((now + 1, i64::MIN)..).map(|&(_, seq)| seq)
    }

    /// Received messages with at least `min_receive_count` receives, in `(receive_count, seq)`
    /// order, whatever their visibility.
    pub(super) fn received_at_least(&self, min_receive_count: u32) -> impl Iterator<Item = i64> + '_ {
        self.by_receive_count.range((min_receive_count, i64::MIN)..).map(|&(_, seq)| seq)
    }

    /// The enqueue time of the oldest message.
    pub(super) fn oldest_sent_at(&self) -> Option<Millis> {
        self.by_age.first().map(|&(at, _)| at)
    }

    /// When the first exhausted message (at least `min_receive_count` receives) that is still
    /// hidden at `now` becomes visible.
    pub(super) fn next_exhausted_at(&self, min_receive_count: u32, now: Millis) -> Option<Millis> {
        self.received_at_least(min_receive_count).map(|seq| self.messages[&seq].visible_at).filter(|&at| at > now).min()
    }

    pub(super) fn next_visible_at(&self, now: Millis) -> Option<Millis> {
        self.by_visibility.range((now + 1, i64::MIN)..).next().map(|&(at, _)| at)
    }

    // ---- FIFO ----

    /// Moves the heads that are visible at `now` from `waiting` to `ready`.
    pub(super) fn promote(&mut self, now: Millis) {
        while let Some(&(at, seq)) = self.waiting.first() {
            if at > now {
                break;
            }
            self.waiting.pop_first();
            self.ready.insert((at, seq));
        }
    }

    /// The next available group's head after `after`, as `(visible_at, seq)`, in the order
    /// groups became available. A ready head is visible unless `now` went backwards since it was
    /// promoted; such a head is skipped.
    pub(super) fn next_ready_head(&self, after: (Millis, i64), now: Millis) -> Option<(Millis, i64)> {
        use std::ops::Bound::{Excluded, Unbounded};
        self.ready.range((Excluded(after), Unbounded)).copied().find(|&(at, _)| at <= now)
    }

    /// The group's first message at or after `from`.
    pub(super) fn group_message_from(&self, group: &str, from: i64) -> Option<i64> {
        self.groups.get(group)?.range(from..).next().copied()
    }

    /// The first group named after `after` ("" for the first of all).
    pub(super) fn group_after(&self, after: &str) -> Option<&str> {
        use std::ops::Bound::{Excluded, Unbounded};
        self.groups.range::<str, _>((Excluded(after), Unbounded)).next().map(|(name, _)| name.as_str())
    }

    /// The group's visible messages in `(visible_at, seq)` order.
    pub(super) fn group_visible(&self, group: &str, now: Millis) -> Vec<i64> {
        let Some(seqs) = self.groups.get(group) else { return Vec::new() };
        let mut visible: Vec<(Millis, i64)> =
            seqs.iter().map(|seq| (self.messages[seq].visible_at, *seq)).filter(|&(at, _)| at <= now).collect();
        visible.sort_unstable();
        visible.into_iter().map(|(_, seq)| seq).collect()
    }

    /// All the group's seqs (any visibility).
    pub(super) fn group_seqs(&self, group: &str) -> impl Iterator<Item = i64> + '_ {
        self.groups.get(group).into_iter().flatten().copied()
    }

    /// The seqs of messages in `(sent_at, seq)` order, oldest first.
    pub(super) fn by_age(&self) -> impl Iterator<Item = i64> + '_ {
        self.by_age.iter().map(|&(_, seq)| seq)
    }

    /// When the next locked or delayed group becomes available.
    pub(super) fn next_group_available_at(&self, now: Millis) -> Option<Millis> {
        self.waiting.range((now + 1, i64::MIN)..).next().map(|&(at, _)| at)
    }

    // ---- deduplication ----

    /// Forgets every deduplication id (a purge).
    pub(super) fn clear_dedup(&mut self) {
        self.dedup.clear();
        self.dedup_by_expiry.clear();
    }

    pub(super) fn live_dedup(&self, key: &(String, String), now: Millis) -> Option<&DedupRecord> {
        self.dedup.get(key).filter(|r| is_live(r.expires_at, now))
    }

    pub(super) fn record_dedup(&mut self, key: (String, String), message_id: String, seq: i64, expires_at: Millis) {
        let record = DedupRecord { message_id, seq, expires_at };
        if let Some(old) = self.dedup.insert(key.clone(), record) {
            self.dedup_by_expiry.remove(&(old.expires_at, key.0.clone(), key.1.clone()));
        }
        self.dedup_by_expiry.insert((expires_at, key.0, key.1));
    }

    /// Removes up to `limit` expired deduplication records and receive attempts, soonest
    /// expired first. Returns how many went.
    pub(super) fn prune(&mut self, now: Millis, limit: usize) -> usize {
        let mut pruned = 0;
        while pruned < limit {
            let Some((at, scope, id)) = self.dedup_by_expiry.first().cloned() else { break };
            if is_live(at, now) {
                break;
            }
            self.dedup_by_expiry.pop_first();
            self.dedup.remove(&(scope, id));
            pruned += 1;
        }
        while pruned < limit {
            let Some((at, id)) = self.attempts_by_expiry.first().cloned() else { break };
            if is_live(at, now) {
                break;
            }
            self.attempts_by_expiry.pop_first();
            self.attempts.remove(&id);
            pruned += 1;
        }
        pruned
    }

    /// When the next deduplication record or receive attempt expires.
    pub(super) fn next_record_expiry(&self) -> Option<Millis> {
        let dedup = self.dedup_by_expiry.first().map(|(at, _, _)| *at);
        let attempts = self.attempts_by_expiry.first().map(|(at, _)| *at);
        dedup.into_iter().chain(attempts).min()
    }

    // ---- receive attempts ----

    pub(super) fn live_attempt(&self, id: &str, now: Millis) -> Option<Vec<Lease>> {
        self.attempts.get(id).filter(|a| is_live(a.expires_at, now)).map(|a| a.leases.clone())
    }

    pub(super) fn record_attempt(&mut self, id: &str, leases: Vec<Lease>, expires_at: Millis) {
        if let Some(old) = self.attempts.insert(id.to_owned(), Attempt { leases, expires_at }) {
            self.attempts_by_expiry.remove(&(old.expires_at, id.to_owned()));
        }
        self.attempts_by_expiry.insert((expires_at, id.to_owned()));
    }
}

/// A queue as the journal engine's snapshots hold it: what cannot be derived, and the order of
/// the FIFO group heads, which depends on when each became available. The other indexes are
/// rebuilt by `insert`.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct QueueImage {
    id: i64,
    account_id: String,
    region: String,
    name: String,
    attributes: std::collections::BTreeMap<String, String>,
    tags: std::collections::BTreeMap<String, String>,
    created_at: Millis,
    last_modified_at: Millis,
    last_purged_at: Option<Millis>,
    /// `(message, visible_at, lease, leased_at)` in seq order.
    messages: Vec<(StoredMessage, Millis, Option<u64>, Millis)>,
    waiting: Vec<(Millis, i64)>,
    ready: Vec<(Millis, i64)>,
    /// `(scope, dedup id, message id, seq, expires_at)`.
    dedup: Vec<(String, String, String, i64, Millis)>,
    attempts: Vec<(String, Vec<Lease>, Millis)>,
    /// The lease generator's seed and position in its stream.
    leases: ([u8; 32], u128),
}

impl Queue {
    pub(super) fn image(&self) -> QueueImage {
        let r = &self.record;
        let mut seqs: Vec<i64> = self.messages.keys().copied().collect();
        seqs.sort_unstable();
        QueueImage {
            id: r.id,
            account_id: r.account_id.clone(),
            region: r.region.clone(),
            name: r.name.clone(),
            attributes: r.attributes.clone(),
            tags: r.tags.clone(),
            created_at: r.created_at,
            last_modified_at: r.last_modified_at,
            last_purged_at: self.last_purged_at,
            messages: seqs
                .iter()
                .map(|seq| {
                    let m = &self.messages[seq];
                    (m.stored.clone(), m.visible_at, m.lease, m.leased_at)
                })
                .collect(),
            waiting: self.waiting.iter().copied().collect(),
            ready: self.ready.iter().copied().collect(),
            dedup: self
                .dedup
                .iter()
                .map(|((scope, id), r)| (scope.clone(), id.clone(), r.message_id.clone(), r.seq, r.expires_at))
                .collect(),
            attempts: self.attempts.iter().map(|(id, a)| (id.clone(), a.leases.clone(), a.expires_at)).collect(),
            leases: (self.leases.get_seed(), self.leases.get_word_pos()),
        }
    }

    pub(super) fn from_image(image: QueueImage) -> Queue {
        let record = QueueRecord::new(
            image.id,
            image.account_id,
            image.region,
            image.name,
            image.attributes,
            image.tags,
            image.created_at,
            image.last_modified_at,
        );
        let mut queue = Queue::new(record, image.leases.0);
        queue.leases.set_word_pos(image.leases.1);
        queue.last_purged_at = image.last_purged_at;
        for (stored, visible_at, lease, leased_at) in image.messages {
            queue.insert(Message { stored, visible_at, lease, leased_at });
        }
        queue.waiting = image.waiting.into_iter().collect();
        queue.ready = image.ready.into_iter().collect();
        for (scope, id, message_id, seq, expires_at) in image.dedup {
            queue.record_dedup((scope, id), message_id, seq, expires_at);
        }
        for (id, leases, expires_at) in image.attempts {
            queue.record_attempt(&id, leases, expires_at);
        }
        queue
    }
}
