//! `MemoryStore`: every queue and message in this process's memory, behind one mutex.
//!
//! Used for `--storage memory` and tests. Nothing survives the process, so the durability
//! invariant of `Store` holds vacuously; the others hold because every call runs entirely under
//! the one lock, which makes each call atomic and serialises it against all others.
//!
//! - `queue`: one queue's messages and indexes (visibility, age, receive count, message groups),
//!   its deduplication records and receive attempts.
//!
//! Invariants:
//! - Receive walks the visibility index (standard) or the ready group heads (FIFO) from their
//!   start and stops once it has enough, so its cost follows the messages it returns (plus the
//!   expired and dead-lettered ones it removes), never the backlog. Expiry walks the age index
//!   the same way.
//! - Queue ids and message seqs come from counters that only grow, so neither is ever reused; a
//!   moved message gets a new seq in its destination.
//! - Every decision both engines make (expire, dead-letter or deliver; deduplication scope and
//!   windows; move-task order) comes from `crate::rules`.

mod queue;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::rules::{
    dedup_key, delete_verdict, finish_step, is_active, judge, moved_sent_at, newest_first, plan_step, sweep_move_order,
    usable_dead_letter, visibility_outcome, visit_quiet_groups, Verdict, PRUNE_PER_CALL,
};
use holdfast_core::store::{
    ChangeVisibility, ChangeVisibilityOutcome, CreateQueueOutcome, DeadLetterTarget, Deduplication, DeleteOutcome,
    Delivery, ExpiryOutcome, FairOrder, GroupLoad, Lease, MessageMove, MetricQueue, Millis, MovableMessage, MoveStep,
    MoveTask, MoveTaskStatus, NewMessage, PurgeOutcome, QueueCounts, QueueId, QueueMinute, QueueRecord, ReceiveOutcome,
    ReceiveParams, Sent, Store, StoreError, StoreResult, StoredMessage, SweepOutcome, STANDARD_LOOKAHEAD,
};
use queue::{Message, Queue, QueueImage};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

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
    /// Live queues by (account, region, name). A `BTreeMap` because ListQueues pages through
    /// the names of one account and region in order.
    by_name: BTreeMap<(String, String, String), QueueId>,
    /// (account, region, name) -> deletion time, for the recreate cooldown. Pruned on create once older
    /// than the cooldown the caller passes, so it holds only names deleted recently.
    deleted: HashMap<(String, String, String), Millis>,
    /// Handle -> (insertion number, task). Move tasks outlive their queues (their history is
    /// listed after the queue is gone), so they are kept store-wide. The insertion number orders
    /// tasks started in the same millisecond.
    move_tasks: HashMap<String, (u64, MoveTask)>,
    last_move_task: u64,
    /// (account, region, queue name, minute) -> that minute's metrics.
    queue_minutes: BTreeMap<(String, String, String, Millis), QueueMinute>,
    /// Seeds each new queue's lease generator.
    queue_seeds: QueueSeeds,
}

/// Where each new queue's lease seed comes from: a CSPRNG seeded from the OS for a fresh store,
/// or from the journal for one being replayed, so that replaying the same calls hands out the
/// same leases.
#[derive(Debug)]
struct QueueSeeds(ChaCha20Rng);

impl Default for QueueSeeds {
    fn default() -> Self {
        QueueSeeds(ChaCha20Rng::from_entropy())
    }
}

impl QueueSeeds {
    fn next(&mut self) -> [u8; 32] {
        let mut seed = [0; 32];
        self.0.fill_bytes(&mut seed);
        seed
    }
}

/// The whole store as the journal engine's snapshots hold it (`MemoryStore::image`).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct StoreImage {
    last_queue_id: QueueId,
    last_seq: i64,
    queues: Vec<QueueImage>,
    deleted: Vec<((String, String, String), Millis)>,
    move_tasks: Vec<(String, u64, MoveTask)>,
    last_move_task: u64,
    queue_minutes: Vec<QueueMinute>,
    queue_seeds: ([u8; 32], u128),
}

/// How a message leaves its queue for another: dead-lettered by receive or the sweep, or moved by
/// a message move task.
#[derive(Clone, Copy)]
enum Move<'a> {
    /// Keeps its receive count and first receive; records the source queue's ARN.
    DeadLetter { source_arn: &'a str },
    /// Starts over: never received, no dead-letter source.
    Redrive,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose queues' lease generators are seeded from `seed` rather than the OS: two
    /// stores with the same seed given the same calls hand out the same leases.
    pub(crate) fn seeded(seed: [u8; 32]) -> Self {
        let state = State { queue_seeds: QueueSeeds(ChaCha20Rng::from_seed(seed)), ..State::default() };
        MemoryStore { state: Mutex::new(state) }
    }

    /// Reseeds every queue's lease generator, and the generator of new queues' seeds, from
    /// `seed`: queues in id order, so that the same seed gives the same generators.
    pub(crate) fn reseed(&self, seed: [u8; 32]) -> StoreResult<()> {
        let mut state = self.state()?;
        let state = &mut *state;
        state.queue_seeds = QueueSeeds(ChaCha20Rng::from_seed(seed));
        let mut ids: Vec<QueueId> = state.queues.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let seed = state.queue_seeds.next();
            state.queues.get_mut(&id).expect("listed above").reseed(seed);
        }
        Ok(())
    }

    /// Everything the store holds, for a snapshot.
    pub(crate) fn image(&self) -> StoreResult<StoreImage> {
        let state = self.state()?;
        let mut queues: Vec<&Queue> = state.queues.values().collect();
        queues.sort_unstable_by_key(|q| q.record.id);
        Ok(StoreImage {
            last_queue_id: state.last_queue_id,
            last_seq: state.last_seq,
            queues: queues.into_iter().map(Queue::image).collect(),
            deleted: state.deleted.iter().map(|(k, at)| (k.clone(), *at)).collect(),
            move_tasks: state.move_tasks.iter().map(|(h, (n, t))| (h.clone(), *n, t.clone())).collect(),
            last_move_task: state.last_move_task,
            queue_minutes: state.queue_minutes.values().cloned().collect(),
            queue_seeds: (state.queue_seeds.0.get_seed(), state.queue_seeds.0.get_word_pos()),
        })
    }

    /// The store a snapshot describes.
    pub(crate) fn from_image(image: StoreImage) -> Self {
        let mut seeds = ChaCha20Rng::from_seed(image.queue_seeds.0);
        seeds.set_word_pos(image.queue_seeds.1);
        let mut state = State {
            last_queue_id: image.last_queue_id,
            last_seq: image.last_seq,
            deleted: image.deleted.into_iter().collect(),
            move_tasks: image.move_tasks.into_iter().map(|(h, n, t)| (h, (n, t))).collect(),
            last_move_task: image.last_move_task,
            queue_seeds: QueueSeeds(seeds),
            ..State::default()
        };
        for m in image.queue_minutes {
            state.queue_minutes.insert((m.account.clone(), m.region.clone(), m.queue.clone(), m.minute), m);
        }
        for q in image.queues {
            let q = Queue::from_image(q);
            let r = &q.record;
            state.by_name.insert((r.account_id.clone(), r.region.clone(), r.name.clone()), r.id);
            state.queues.insert(r.id, q);
        }
        MemoryStore { state: Mutex::new(state) }
    }

    fn state(&self) -> StoreResult<MutexGuard<'_, State>> {
        // A poisoned lock means a call panicked half-way through a mutation: the state may break
        // the invariants above, so refuse to go on rather than serve from it.
        let state =
            self.state.lock().map_err(|_| StoreError::backend("memory store lock poisoned by an earlier panic"))?;
        if state.closed {
            return Err(StoreError::Closed);
        }
        Ok(state)
    }
}

impl State {
    fn next_seq(&mut self) -> i64 {
        self.last_seq += 1;
        self.last_seq
    }

    /// Enqueues `message` (taken out of its source queue) in `destination` under a new seq,
    /// visible now and leased by nobody.
    fn enqueue_moved(
        &mut self,
        destination: QueueId,
        mut message: Message,
        how: Move<'_>,
        reset_sent_at: bool,
        now: Millis,
    ) {
        let seq = self.next_seq();
        let stored = &mut message.stored;
        stored.seq = seq;
        stored.sent_at = moved_sent_at(stored.sent_at, reset_sent_at, now);
        stored.lease = 0;
        match how {
            Move::DeadLetter { source_arn } => stored.dead_letter_source_arn = Some(source_arn.to_owned()),
            Move::Redrive => {
                stored.receive_count = 0;
                stored.first_received_at = None;
                stored.dead_letter_source_arn = None;
            }
        }
        message.visible_at = now;
        message.lease = None;
        message.leased_at = 0;
        self.queues.get_mut(&destination).expect("the destination was checked to exist").insert(message);
    }

    fn dead_letter_target(&self, source: QueueId, target: Option<DeadLetterTarget>) -> Option<DeadLetterTarget> {
        usable_dead_letter(source, target, |id| self.queues.contains_key(&id))
    }

    fn queue(&self, queue: QueueId) -> StoreResult<&Queue> {
        self.queues.get(&queue).ok_or(StoreError::QueueNotFound(queue))
    }

    fn queue_mut(&mut self, queue: QueueId) -> StoreResult<&mut Queue> {
        self.queues.get_mut(&queue).ok_or(StoreError::QueueNotFound(queue))
    }

    /// Moves each listed message that is still visible in `source` to its destination, as a move
    /// task does (see `Store::advance_move_task`). Returns how many moved.
    fn move_messages(&mut self, source: QueueId, moves: Vec<MessageMove>, now: Millis) -> u64 {
        let mut moved = 0;
        for m in moves {
            if !self.queues.contains_key(&m.destination) {
                continue;
            }
            let Some(q) = self.queues.get_mut(&source) else { break };
            let visible = matches!(q.messages.get(&m.seq), Some(message) if message.visible_at <= now);
            if !visible {
                continue;
            }
            let message = q.remove(m.seq).expect("found above");
            self.enqueue_moved(m.destination, message, Move::Redrive, m.reset_sent_at, now);
            moved += 1;
        }
        moved
    }
}

fn new_message(seq: i64, m: NewMessage) -> Message {
    Message {
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
    }
}

/// Picks the messages a standard receive takes (`Delivery::Standard`): a few more candidates
/// than asked for in `(visible_at, seq)` order, then acted on oldest first: expired ones removed,
/// exhausted ones taken out for the dead-letter queue, up to `max_messages` leased.
fn receive_standard(
    q: &mut Queue,
    p: &ReceiveParams,
    max_receive_count: Option<u32>,
) -> (Vec<StoredMessage>, Vec<Message>) {
    let cutoff = p.now - p.retention_ms;
    let mut candidates = Vec::new();
    let mut deliverable = 0;
    for seq in q.visible(p.now) {
        if deliverable >= p.max_messages + STANDARD_LOOKAHEAD {
            break;
        }
        let m = &q.messages[&seq].stored;
        if judge(m.sent_at, m.receive_count, cutoff, max_receive_count) == Verdict::Deliver {
            deliverable += 1;
        }
        candidates.push(seq);
    }
    candidates.sort_unstable();
    let (mut leased, mut moved) = (Vec::new(), Vec::new());
    act_on(q, candidates, p, max_receive_count, &mut leased, &mut moved);
    (leased, moved)
}

/// Acts on visible candidates in order, as `rules::judge` decides, until `p.max_messages` are
/// leased: expired ones removed, exhausted ones taken out for the dead-letter queue.
fn act_on(
    q: &mut Queue,
    candidates: Vec<i64>,
    p: &ReceiveParams,
    max_receive_count: Option<u32>,
    leased: &mut Vec<StoredMessage>,
    moved: &mut Vec<Message>,
) {
    let cutoff = p.now - p.retention_ms;
    let visible_at = p.now + p.visibility_timeout_ms;
    for seq in candidates {
        if leased.len() >= p.max_messages {
            break;
        }
        let m = &q.messages[&seq].stored;
        match judge(m.sent_at, m.receive_count, cutoff, max_receive_count) {
            Verdict::Expire => drop(q.remove(seq)),
            Verdict::DeadLetter => moved.extend(q.remove(seq)),
            Verdict::Deliver => leased.push(q.lease(seq, p.now, visible_at)),
        }
    }
}

/// Picks the messages a fair receive takes (`FairOrder`), as the SQLite engine does: ungrouped
/// messages among the first visible ones, the quiet groups round robin, then the noisy groups.
fn receive_fair(
    q: &mut Queue,
    p: &ReceiveParams,
    max_receive_count: Option<u32>,
    order: &FairOrder,
) -> (Vec<StoredMessage>, Vec<Message>) {
    let (mut leased, mut moved) = (Vec::new(), Vec::new());
    let act = |q: &mut Queue, seqs: Vec<i64>, leased: &mut Vec<StoredMessage>, moved: &mut Vec<Message>| {
        act_on(q, seqs, p, max_receive_count, leased, moved)
    };
    let ungrouped: Vec<i64> = q
        .visible(p.now)
        .take(FairOrder::UNGROUPED_LOOK)
        .filter(|seq| q.messages[seq].stored.group_id.is_none())
        .collect();
    act(q, ungrouped, &mut leased, &mut moved);
    let visited = visit_quiet_groups(
        order,
        q,
        |q, after| Ok::<_, std::convert::Infallible>(q.group_after(after).map(str::to_owned)),
        |q, group| {
            let seqs = q.group_visible(group, p.now);
            act(q, seqs, &mut leased, &mut moved);
            Ok(leased.len() < p.max_messages)
        },
    );
    let Ok(()) = visited;
    for group in &order.noisy {
        if leased.len() >= p.max_messages {
            break;
        }
        let seqs = q.group_visible(group, p.now);
        act(q, seqs, &mut leased, &mut moved);
    }
    (leased, moved)
}

/// Picks the messages a FIFO receive takes: available groups oldest head first; from each, its
/// messages in seq order while they are visible. Each message met is judged like a standard
/// candidate: the head first, then, once the head is leased, the messages behind it that this
/// same receive would return (an exhausted one is dead-lettered rather than delivered).
fn receive_fifo(
    q: &mut Queue,
    p: &ReceiveParams,
    max_receive_count: Option<u32>,
) -> (Vec<StoredMessage>, Vec<Message>) {
    let cutoff = p.now - p.retention_ms;
    let visible_at = p.now + p.visibility_timeout_ms;
    let (mut leased, mut moved) = (Vec::new(), Vec::new());
    q.promote(p.now);
    let mut last = (Millis::MIN, i64::MIN);
    while leased.len() < p.max_messages {
        let Some(ready) = q.next_ready_head(last, p.now) else { break };
        last = ready;
        let head = ready.1;
        let group = q.messages[&head].stored.group_id.clone().expect("a head belongs to a group");
        let mut from = head;
        while leased.len() < p.max_messages {
            let Some(seq) = q.group_message_from(&group, from) else { break };
            from = seq + 1;
            let m = &q.messages[&seq];
            if m.visible_at > p.now {
                break;
            }
            match judge(m.stored.sent_at, m.stored.receive_count, cutoff, max_receive_count) {
                Verdict::Expire => drop(q.remove(seq)),
                Verdict::DeadLetter => moved.extend(q.remove(seq)),
                Verdict::Deliver => leased.push(q.lease(seq, p.now, visible_at)),
            }
        }
    }
    (leased, moved)
}

fn next_visible_at(q: &Queue, delivery: Delivery, now: Millis) -> Option<Millis> {
    match delivery {
        Delivery::Standard => q.next_visible_at(now),
        Delivery::Fifo => q.next_group_available_at(now),
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_queue(
        &self,
        account: &str,
        region: &str,
        name: &str,
        attributes: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
        now: Millis,
        recreate_cooldown_ms: i64,
    ) -> StoreResult<CreateQueueOutcome> {
        let mut state = self.state()?;
        let key = (account.to_owned(), region.to_owned(), name.to_owned());
        if let Some(id) = state.by_name.get(&key) {
            return Ok(CreateQueueOutcome::Exists(state.queues[id].record.clone()));
        }
        state.deleted.retain(|_, deleted_at| now - *deleted_at < recreate_cooldown_ms);
        if state.deleted.contains_key(&key) {
            return Ok(CreateQueueOutcome::DeletedRecently);
        }
        state.last_queue_id += 1;
        let (account, region, name) = key.clone();
        let record = QueueRecord::new(state.last_queue_id, account, region, name, attributes, tags, now, now);
        state.by_name.insert(key, record.id);
        let seed = state.queue_seeds.next();
        state.queues.insert(record.id, Queue::new(record.clone(), seed));
        Ok(CreateQueueOutcome::Created(record))
    }

    async fn get_queue(&self, account: &str, region: &str, name: &str) -> StoreResult<Option<QueueRecord>> {
        let state = self.state()?;
        let key = (account.to_owned(), region.to_owned(), name.to_owned());
        Ok(state.by_name.get(&key).map(|id| state.queues[id].record.clone()))
    }

    async fn list_queues(
        &self,
        account: &str,
        region: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<QueueRecord>> {
        use std::ops::Bound;
        let state = self.state()?;
        let key = |name: &str| (account.to_owned(), region.to_owned(), name.to_owned());
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(key(after)),
            _ => Bound::Included(key(prefix)),
        };
        Ok(state
            .by_name
            .range((start, Bound::Unbounded))
            .take_while(|((owner, at, name), _)| owner == account && at == region && name.starts_with(prefix))
            .take(limit)
            .map(|(_, id)| state.queues[id].record.clone())
            .collect())
    }

    async fn list_namespaces(&self) -> StoreResult<Vec<(String, String)>> {
        let state = self.state()?;
        let mut namespaces: Vec<(String, String)> =
            state.by_name.keys().map(|(account, region, _)| (account.clone(), region.clone())).collect();
        namespaces.dedup();
        Ok(namespaces)
    }

    async fn delete_queue(&self, queue: QueueId, now: Millis) -> StoreResult<()> {
        let mut state = self.state()?;
        let removed = state.queues.remove(&queue).ok_or(StoreError::QueueNotFound(queue))?;
        let key = (removed.record.account_id, removed.record.region, removed.record.name);
        state.by_name.remove(&key);
        state.deleted.insert(key, now);
        Ok(())
    }

    async fn set_queue_attributes(
        &self,
        queue: QueueId,
        attributes: BTreeMap<String, String>,
        now: Millis,
    ) -> StoreResult<()> {
        let mut state = self.state()?;
        state.queue_mut(queue)?.set_attributes(attributes, now);
        Ok(())
    }

    async fn replace_queue_attribute(
        &self,
        queue: QueueId,
        name: &str,
        expected: Option<&str>,
        value: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        let mut state = self.state()?;
        let q = state.queue_mut(queue)?;
        if q.record.attributes.get(name).map(String::as_str) != expected {
            return Ok(false);
        }
        q.set_attributes(BTreeMap::from([(name.to_owned(), value.to_owned())]), now);
        Ok(true)
    }

    async fn tag_queue(&self, queue: QueueId, tags: BTreeMap<String, String>) -> StoreResult<()> {
        let mut state = self.state()?;
        state.queue_mut(queue)?.record.tags.extend(tags);
        Ok(())
    }

    async fn untag_queue(&self, queue: QueueId, keys: Vec<String>) -> StoreResult<()> {
        let mut state = self.state()?;
        let q = state.queue_mut(queue)?;
        for key in keys {
            q.record.tags.remove(&key);
        }
        Ok(())
    }

    async fn purge_queue(&self, queue: QueueId, now: Millis, cooldown_ms: i64) -> StoreResult<PurgeOutcome> {
        let mut state = self.state()?;
        let q = state.queue_mut(queue)?;
        if q.last_purged_at.is_some_and(|at| now - at < cooldown_ms) {
            return Ok(PurgeOutcome::InProgress);
        }
        let removed = q.clear_messages();
        q.clear_dedup();
        q.last_purged_at = Some(now);
        Ok(PurgeOutcome::Purged { removed })
    }

    async fn queue_counts(&self, queue: QueueId, now: Millis) -> StoreResult<QueueCounts> {
        let state = self.state()?;
        let q = state.queue(queue)?;
        // Only hidden messages are walked: visible ones are the rest of the total, so the cost
        // follows the in-flight and delayed messages, not the backlog.
        let mut counts = QueueCounts::default();
        for seq in q.hidden(now) {
            if q.messages[&seq].stored.receive_count > 0 {
                counts.in_flight += 1;
            } else {
                counts.delayed += 1;
            }
        }
        counts.visible = q.messages.len() as u64 - counts.in_flight - counts.delayed;
        Ok(counts)
    }

    async fn group_load(&self, queue: QueueId, now: Millis) -> StoreResult<GroupLoad> {
        let state = self.state()?;
        let q = state.queue(queue)?;
        let mut by_group: BTreeMap<String, u64> = BTreeMap::new();
        let mut load = GroupLoad::default();
        for seq in q.hidden(now) {
            let m = &q.messages[&seq].stored;
            if m.receive_count > 0 {
                load.total_in_flight += 1;
                if let Some(group) = &m.group_id {
                    *by_group.entry(group.clone()).or_default() += 1;
                }
            }
        }
        load.in_flight = by_group.into_iter().collect();
        Ok(load)
    }

    async fn group_counts(&self, queue: QueueId, groups: Vec<String>, now: Millis) -> StoreResult<QueueCounts> {
        let state = self.state()?;
        let q = state.queue(queue)?;
        let mut counts = QueueCounts::default();
        for group in &groups {
            for seq in q.group_seqs(group) {
                let m = &q.messages[&seq];
                match (m.visible_at <= now, m.stored.receive_count > 0) {
                    (true, _) => counts.visible += 1,
                    (false, true) => counts.in_flight += 1,
                    (false, false) => counts.delayed += 1,
                }
            }
        }
        Ok(counts)
    }

    async fn oldest_outside(
        &self,
        queue: QueueId,
        groups: Vec<String>,
        scan_limit: usize,
    ) -> StoreResult<Option<Millis>> {
        let state = self.state()?;
        let q = state.queue(queue)?;
        let oldest = q
            .by_age()
            .take(scan_limit)
            .map(|seq| &q.messages[&seq].stored)
            .find(|m| !m.group_id.as_ref().is_some_and(|g| groups.contains(g)))
            .map(|m| m.sent_at);
        Ok(oldest)
    }

    async fn send_messages(
        &self,
        queue: QueueId,
        messages: Vec<NewMessage>,
        dedup: Option<Deduplication>,
        now: Millis,
    ) -> StoreResult<Vec<Sent>> {
        let mut state = self.state()?;
        let state = &mut *state;
        state.queue(queue)?;
        let mut outcomes = Vec::with_capacity(messages.len());
        for m in messages {
            let key = dedup.as_ref().and_then(|d| dedup_key(d, m.group_id.as_deref(), m.deduplication_id.as_deref()));
            let q = state.queues.get_mut(&queue).expect("checked above");
            if let Some(first) = key.as_ref().and_then(|key| q.live_dedup(key, now)) {
                outcomes.push(Sent { message_id: first.message_id.clone(), seq: first.seq, duplicate: true });
                continue;
            }
            state.last_seq += 1;
            let seq = state.last_seq;
            if let (Some(key), Some(dedup)) = (key, dedup) {
                q.record_dedup(key, m.message_id.clone(), seq, now + dedup.window_ms);
            }
            outcomes.push(Sent { message_id: m.message_id.clone(), seq, duplicate: false });
            q.insert(new_message(seq, m));
        }
        if dedup.is_some() {
            state.queues.get_mut(&queue).expect("checked above").prune(now, PRUNE_PER_CALL);
        }
        Ok(outcomes)
    }

    async fn receive_messages(&self, queue: QueueId, params: ReceiveParams) -> StoreResult<ReceiveOutcome> {
        let mut state = self.state()?;
        let state = &mut *state;
        state.queue(queue)?;
        let target = state.dead_letter_target(queue, params.dead_letter.clone());
        let q = state.queues.get_mut(&queue).expect("checked above");
        let now = params.now;
        if let Some(attempt) = &params.attempt {
            if let Some(leases) = q.live_attempt(&attempt.id, now) {
                // A retry: the same messages under the same leases, where those are still current.
                let visible_at = now + params.visibility_timeout_ms;
                let mut messages = Vec::new();
                for lease in leases {
                    if q.leased(lease).is_some() {
                        q.set_visible_at(lease.seq, visible_at);
                        messages.push(q.messages[&lease.seq].stored.clone());
                    }
                }
                let next_visible_at = next_visible_at(q, params.delivery, now);
                return Ok(ReceiveOutcome { messages, next_visible_at, dead_lettered: 0 });
            }
        }
        let max_receive_count = target.as_ref().map(|t| t.max_receive_count);
        let (mut messages, moved) = match (params.delivery, &params.fair) {
            (Delivery::Standard, Some(order)) => receive_fair(q, &params, max_receive_count, order),
            (Delivery::Standard, None) => receive_standard(q, &params, max_receive_count),
            (Delivery::Fifo, _) => receive_fifo(q, &params, max_receive_count),
        };
        // FIFO messages stay in the order of the walk, group by group.
        if params.delivery == Delivery::Standard {
            messages.sort_by_key(|m| m.seq);
        }
        if let Some(attempt) = &params.attempt {
            if !messages.is_empty() {
                let leases = messages.iter().map(|m| Lease { seq: m.seq, lease: m.lease }).collect();
                q.record_attempt(&attempt.id, leases, now + attempt.window_ms);
                q.prune(now, PRUNE_PER_CALL);
            }
        }
        let next_visible_at = next_visible_at(q, params.delivery, now);
        let dead_lettered = moved.len() as u64;
        if let Some(target) = &target {
            let how = Move::DeadLetter { source_arn: &target.source_arn };
            for message in moved {
                state.enqueue_moved(target.queue, message, how, target.reset_sent_at, now);
            }
        }
        Ok(ReceiveOutcome { messages, next_visible_at, dead_lettered })
    }

    async fn delete_messages(
        &self,
        queue: QueueId,
        leases: Vec<Lease>,
        refuse_expired_at: Option<Millis>,
    ) -> StoreResult<Vec<DeleteOutcome>> {
        let mut state = self.state()?;
        let q = state.queue_mut(queue)?;
        let outcomes = leases
            .into_iter()
            .map(|lease| {
                let exists = q.message(lease.seq).is_some();
                let current = q.leased(lease).map(|m| m.visible_at);
                if !exists {
                    return DeleteOutcome::NotCurrent;
                }
                let verdict = delete_verdict(current, refuse_expired_at);
                if verdict == DeleteOutcome::Deleted {
                    q.remove(lease.seq);
                }
                verdict
            })
            .collect();
        Ok(outcomes)
    }

    async fn change_visibility(
        &self,
        queue: QueueId,
        changes: Vec<ChangeVisibility>,
        now: Millis,
        max_inflight_ms: i64,
    ) -> StoreResult<Vec<ChangeVisibilityOutcome>> {
        let mut state = self.state()?;
        let q = state.queue_mut(queue)?;
        let outcomes = changes
            .into_iter()
            .map(|change| {
                let Some(m) = q.leased(change.lease) else {
                    return match q.message(change.lease.seq) {
                        Some(_) => ChangeVisibilityOutcome::Stale,
                        None => ChangeVisibilityOutcome::Gone,
                    };
                };
                let visible_at = now + change.visibility_timeout_ms;
                let outcome = visibility_outcome(m.leased_at, visible_at, max_inflight_ms);
                if outcome == ChangeVisibilityOutcome::Changed {
                    q.set_visible_at(change.lease.seq, visible_at);
                }
                outcome
            })
            .collect();
        Ok(outcomes)
    }

    async fn dead_letter_exhausted(
        &self,
        queue: QueueId,
        target: DeadLetterTarget,
        now: Millis,
        limit: usize,
    ) -> StoreResult<SweepOutcome> {
        let mut state = self.state()?;
        let state = &mut *state;
        state.queue(queue)?;
        let Some(target) = state.dead_letter_target(queue, Some(target)) else {
            return Ok(SweepOutcome::default());
        };
        let q = state.queue(queue)?;
        // Only received messages are read (in `(receive_count, seq)` order), from the first
        // exhausted one on: the never-received backlog is not touched.
        let mut exhausted: Vec<i64> = q
            .received_at_least(target.max_receive_count)
            .filter(|seq| q.messages[seq].visible_at <= now)
            .take(limit)
            .collect();
        sweep_move_order(&mut exhausted, |&seq| seq);
        let how = Move::DeadLetter { source_arn: &target.source_arn };
        for &seq in &exhausted {
            let message = state.queues.get_mut(&queue).and_then(|q| q.remove(seq)).expect("found above");
            state.enqueue_moved(target.queue, message, how, target.reset_sent_at, now);
        }
        let next_due_at = state.queue(queue)?.next_exhausted_at(target.max_receive_count, now);
        Ok(SweepOutcome { moved: exhausted.len() as u64, next_due_at })
    }

    async fn movable_messages(&self, queue: QueueId, now: Millis, limit: usize) -> StoreResult<Vec<MovableMessage>> {
        let state = self.state()?;
        let q = state.queue(queue)?;
        Ok(q.visible(now)
            .take(limit)
            .map(|seq| MovableMessage {
                seq,
                dead_letter_source_arn: q.messages[&seq].stored.dead_letter_source_arn.clone(),
            })
            .collect())
    }

    async fn expire_messages(&self, queue: QueueId, sent_before: Millis) -> StoreResult<ExpiryOutcome> {
        let mut state = self.state()?;
        let q = state.queue_mut(queue)?;
        let removed = q.expire_before(sent_before);
        Ok(ExpiryOutcome { removed, oldest_sent_at: q.oldest_sent_at() })
    }

    async fn prune_expired_records(&self, now: Millis) -> StoreResult<Option<Millis>> {
        let mut state = self.state()?;
        let mut next = None;
        for q in state.queues.values_mut() {
            while q.prune(now, PRUNE_PER_CALL) == PRUNE_PER_CALL {}
            next = next.into_iter().chain(q.next_record_expiry()).min();
        }
        Ok(next)
    }

    async fn start_move_task(&self, task: MoveTask) -> StoreResult<bool> {
        let mut state = self.state()?;
        let state = &mut *state;
        state.queue(task.source_queue)?;
        let busy = state.move_tasks.values().any(|(_, t)| t.source_queue == task.source_queue && is_active(t.status));
        if busy {
            return Ok(false);
        }
        state.last_move_task += 1;
        state.move_tasks.insert(task.handle.clone(), (state.last_move_task, task));
        Ok(true)
    }

    async fn cancel_move_task(&self, handle: &str) -> StoreResult<Option<MoveTask>> {
        let mut state = self.state()?;
        let Some((_, task)) = state.move_tasks.get_mut(handle) else { return Ok(None) };
        let found = task.clone();
        if task.status == MoveTaskStatus::Running {
            task.status = MoveTaskStatus::Cancelling;
        }
        Ok(Some(found))
    }

    async fn advance_move_task(&self, handle: &str, step: MoveStep, now: Millis) -> StoreResult<Option<MoveTask>> {
        let mut state = self.state()?;
        let state = &mut *state;
        let Some((_, task)) = state.move_tasks.get(handle) else { return Ok(None) };
        let source = task.source_queue;
        let plan = plan_step(task.status, step);
        let moved = state.move_messages(source, plan.moves, now);
        let (_, task) = state.move_tasks.get_mut(handle).expect("found above");
        finish_step(task, moved, plan.ends);
        Ok(Some(task.clone()))
    }

    async fn move_tasks(&self, source_queue: Option<QueueId>) -> StoreResult<Vec<MoveTask>> {
        let state = self.state()?;
        let mut tasks: Vec<(u64, MoveTask)> = state
            .move_tasks
            .values()
            .filter(|(_, task)| source_queue.is_none() || source_queue == Some(task.source_queue))
            .cloned()
            .collect();
        newest_first(&mut tasks);
        Ok(tasks.into_iter().map(|(_, task)| task).collect())
    }

    async fn record_queue_minutes(&self, minutes: Vec<QueueMinute>, forget_before: Millis) -> StoreResult<()> {
        let mut state = self.state()?;
        state.queue_minutes.retain(|_, row| row.minute >= forget_before);
        for row in minutes.into_iter().filter(|row| row.minute >= forget_before) {
            let key = (row.account.clone(), row.region.clone(), row.queue.clone(), row.minute);
            match state.queue_minutes.get_mut(&key) {
                Some(stored) => stored.absorb(&row),
                None => {
                    state.queue_minutes.insert(key, row);
                }
            }
        }
        Ok(())
    }

    async fn queue_minutes(
        &self,
        account: &str,
        region: &str,
        queue: &str,
        from: Millis,
        to: Millis,
    ) -> StoreResult<Vec<QueueMinute>> {
        let state = self.state()?;
        let key = |minute| (account.to_owned(), region.to_owned(), queue.to_owned(), minute);
        if from >= to {
            return Ok(Vec::new());
        }
        Ok(state.queue_minutes.range(key(from)..key(to)).map(|(_, row)| row.clone()).collect())
    }

    async fn metric_queues(&self, account: &str, region: &str, since: Millis) -> StoreResult<Vec<MetricQueue>> {
        let state = self.state()?;
        let mut found: Vec<MetricQueue> = Vec::new();
        for ((a, r, name, minute), row) in &state.queue_minutes {
            if a != account || r != region || *minute < since {
                continue;
            }
            let fair = row.gauges.as_ref().is_some_and(|g| g.fair.is_some());
            match found.last_mut() {
                Some(last) if last.name == *name => {
                    last.last_minute = last.last_minute.max(*minute);
                    last.fair |= fair;
                }
                _ => found.push(MetricQueue { name: name.clone(), last_minute: *minute, fair }),
            }
        }
        Ok(found)
    }

    async fn check(&self) -> StoreResult<()> {
        self.state().map(drop)
    }

    async fn close(&self) -> StoreResult<()> {
        let mut state = self.state()?;
        state.closed = true;
        Ok(())
    }
}
