//! `JournalStore`: the state lives in memory (the memory engine, unchanged) and every call that
//! changes it is appended to a journal on disk before it is acknowledged, as a message broker
//! keeps its log; a restart reads the last snapshot and replays the journal after it.
//!
//! - `command`: what a journal frame holds, one `Store` call with its arguments, and its replay.
//! - `log`: segment files, frames with checksums, the writer thread (group commit, one
//!   `fdatasync` per commit) and the thread that prepares the next segment.
//! - `snapshot`: the whole state at one journal position; segments before it are deleted.
//!
//! Invariants:
//! - A call that changes state runs under the journal's tail lock: space for its frame is
//!   reserved first (or the call fails with `Full` having changed nothing), then it runs on the
//!   memory engine, then its frame is appended. So the journal's order is the order the state
//!   changed in, and replaying it against the same (deterministic) engine arrives at the same
//!   state. Its reply waits until its frame is durable.
//! - Replies never reveal what is not durable: a call's frame follows every frame whose effect it
//!   saw, so waiting for its own frame covers them; reads wait for the last frame announced
//!   before they ran (queue records: the last frame that changed one, usually long durable).
//! - A journaled call that panics stops the store (the memory engine's state may be half
//!   changed); the journal does not hold the panicking call, so a restart recovers.
//! - What is on disk is always a whole snapshot plus whole segments; a damaged frame is either a
//!   torn last write (never acknowledged, discarded) or damage that stops `open` with its file
//!   and offset.

mod command;
mod log;
mod snapshot;

use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use holdfast_core::queue_metrics::QueueMinute;
use holdfast_core::store::{
    ChangeVisibility, ChangeVisibilityOutcome, CreateQueueOutcome, DeadLetterTarget, Deduplication, DeleteOutcome,
    EngineFigures, ExpiryOutcome, GroupLoad, Lease, MetricQueue, Millis, MovableMessage, MoveStep, MoveTask,
    NewMessage, PurgeOutcome, QueueCounts, QueueId, QueueRecord, ReceiveOutcome, ReceiveParams, Sent, Store,
    StoreError, StoreResult, SweepOutcome,
};
use rand::RngCore;
use tokio::sync::watch;

use crate::memory::MemoryStore;
use command::Command;
use log::{frame_len, Durable, Log, Position, Threads};
use snapshot::Snapshot;

/// The journal's directory inside the data directory.
pub const JOURNAL_DIR: &str = "journal";

/// A snapshot is taken once this many segments' worth has been appended since the last one, and
/// at least twice the size of the last snapshot (so that snapshots of a large state, which cost
/// in proportion to it, stay a bounded share of the work: as with Redis's AOF rewrite). A restart
/// replays at most about this much, and the journal on disk stays within a few segments plus a
/// few times the live state.
const SNAPSHOT_AFTER_SEGMENTS: u64 = 4;
const SNAPSHOT_GROWTH: u64 = 2;

pub use log::{DEFAULT_SEGMENT_BYTES, MIN_SEGMENT_BYTES};

/// How the journal is laid out on disk.
#[derive(Clone, Copy, Debug)]
pub struct JournalOptions {
    /// The size of each segment file, at least `MIN_SEGMENT_BYTES`; the journal needs two of
    /// them free to start. A call's record must fit in one.
    pub segment_bytes: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions { segment_bytes: DEFAULT_SEGMENT_BYTES }
    }
}

/// The journaled engine. See the module documentation.
#[derive(Debug)]
pub struct JournalStore {
    dir: PathBuf,
    memory: Arc<MemoryStore>,
    log: Arc<Log>,
    threads: Mutex<Threads>,
    durable: watch::Receiver<Durable>,
    /// The ticket of the last call that started running: what a read may have seen.
    announced: AtomicU64,
    /// The ticket of the last call that changed a queue record.
    records_changed: AtomicU64,
    snapshotting: Arc<AtomicBool>,
    /// The size of the last snapshot written, in bytes.
    snapshot_bytes: Arc<AtomicU64>,
    /// Held (with an exclusive `flock`) while the store is open: two processes appending to one
    /// journal would interleave their frames.
    _lock: File,
}

/// Which frames a read waits for.
enum Fence {
    /// Every frame announced before the read ran.
    All,
    /// The last frame that changed a queue record.
    QueueRecords,
}

impl JournalStore {
    /// Opens the journal in `<dir>/journal` (created if missing) with the default options.
    pub fn open(dir: &Path) -> StoreResult<JournalStore> {
        JournalStore::open_with(dir, JournalOptions::default())
    }

    /// Opens the journal in `<dir>/journal` (created if missing): reads the snapshot, replays
    /// the frames after it, and starts the writer. Blocking: call it before serving. The segment
    /// size applies to segments created from now on; existing ones are read whatever their size.
    pub fn open_with(dir: &Path, options: JournalOptions) -> StoreResult<JournalStore> {
        if options.segment_bytes < MIN_SEGMENT_BYTES {
            return Err(StoreError::backend(format!("journal segments must be at least {MIN_SEGMENT_BYTES} bytes")));
        }
        let dir = dir.join(JOURNAL_DIR);
        std::fs::create_dir_all(&dir)
            .map_err(|err| StoreError::backend_in(format!("creating {}", dir.display()), err.to_string()))?;
        let lock = lock(&dir)?;
        let started = Instant::now();
        let snapshot_bytes = std::fs::metadata(snapshot::path(&dir)).map_or(0, |m| m.len());
        let (memory, from, frames) = match snapshot::read(&dir)? {
            Some(s) => (MemoryStore::from_image(s.image), s.position, s.frames),
            None => {
                if !log::segments(&dir).map_err(StoreError::backend)?.is_empty() {
                    return Err(log::damage(&snapshot::path(&dir), 0, "segments exist but the snapshot is missing"));
                }
                let mut seed = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut seed);
                let memory = MemoryStore::seeded(seed);
                let position = Position::start_of(1);
                snapshot::write(&dir, &Snapshot { position, frames: 0, image: memory.image()? })?;
                (memory, position, 0)
            }
        };
        remove_segments_before(&dir, from.segment);
        // A new journal writes its snapshot first and then its first segment; a crash between
        // the two leaves a snapshot and no segment at all, and nothing was ever written to it.
        let no_segments = log::segments(&dir).map_err(StoreError::backend)?.is_empty();
        if no_segments && from.offset == log::SEGMENT_HEADER {
            log::prepare_segment(&dir, from.segment, options.segment_bytes).map_err(|err| io_error(&dir, err))?;
        }
        let read = log::read_frames(&dir, from, |payload| {
            let command: Command = postcard::from_bytes(payload)
                .map_err(|err| StoreError::backend(format!("an undecodable record: {err}")))?;
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ready(command.replay(&memory))))
                .map_err(|_| StoreError::backend("replaying the record panicked"))
        })?;
        tracing::info!(
            frames = read.frames,
            torn_bytes = read.torn_bytes,
            took_ms = started.elapsed().as_millis() as u64,
            "journal opened"
        );
        let appended = frames + read.frames;
        let (log, threads) = Log::start(&dir, options.segment_bytes, read.end, appended)?;
        let durable = log.durable();
        let store = JournalStore {
            dir,
            memory: Arc::new(memory),
            log,
            threads: Mutex::new(threads),
            durable,
            announced: AtomicU64::new(appended),
            records_changed: AtomicU64::new(appended),
            snapshotting: Arc::new(AtomicBool::new(false)),
            snapshot_bytes: Arc::new(AtomicU64::new(snapshot_bytes)),
            _lock: lock,
        };
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let memory = &store.memory;
        let (ticket, reseeded) =
            store.apply(Command::Reseed { seed }, || async { memory.reseed(seed) }, |_, _, t| t)?;
        reseeded?;
        store.wait_blocking(ticket)?;
        Ok(store)
    }

    /// `wait` for a caller outside the runtime (`open`).
    fn wait_blocking(&self, ticket: u64) -> StoreResult<()> {
        loop {
            let durable = self.durable.borrow().clone();
            if let Some(err) = durable.failed {
                return Err(err);
            }
            if durable.upto >= ticket {
                return Ok(());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Runs a call that changes state and answers once its frame is durable.
    async fn journaled<T, F>(&self, command: Command, run: impl FnOnce() -> F) -> StoreResult<T>
    where
        F: Future<Output = StoreResult<T>>,
    {
        let (wait_for, result) = self.apply(command, run, |_, _, ticket| ticket)?;
        self.wait(wait_for).await?;
        result
    }

    /// Reserves the command's frame, runs it on the memory engine, appends the frame, and
    /// returns the result with the ticket its answer must wait for, as `settle` decides from the
    /// result, the tail and the frame's own ticket.
    fn apply<T, F>(
        &self,
        command: Command,
        run: impl FnOnce() -> F,
        settle: impl FnOnce(&StoreResult<T>, &log::Tail, u64) -> u64,
    ) -> StoreResult<(u64, StoreResult<T>)>
    where
        F: Future<Output = StoreResult<T>>,
    {
        let payload = postcard::to_stdvec(&command).map_err(StoreError::backend)?;
        let tail = self.log.lock();
        let mut tail = self.log.reserve(tail, frame_len(payload.len()), command.grows())?;
        let ticket = tail.appended + 1;
        self.announced.store(ticket, Ordering::SeqCst);
        if command.changes_queue_records() {
            self.records_changed.store(ticket, Ordering::SeqCst);
        }
        let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ready(run()))) {
            Ok(result) => result,
            Err(_) => {
                let err = StoreError::backend("a storage command panicked");
                self.log.fail(&mut tail, err.clone());
                return Err(err);
            }
        };
        self.log.push(&mut tail, &payload);
        let due = (SNAPSHOT_AFTER_SEGMENTS * self.log.segment_bytes)
            .max(SNAPSHOT_GROWTH * self.snapshot_bytes.load(Ordering::Relaxed));
        if tail.since_snapshot >= due {
            self.start_snapshot(&mut tail);
        }
        let wait_for = settle(&result, &tail, ticket);
        Ok((wait_for, result))
    }

    /// Runs a read, then waits until what it may have seen is durable.
    async fn read<T, F>(&self, fence: Fence, run: impl FnOnce() -> F) -> StoreResult<T>
    where
        F: Future<Output = StoreResult<T>>,
    {
        let result = ready(run());
        let ticket = match fence {
            Fence::All => self.announced.load(Ordering::SeqCst),
            Fence::QueueRecords => self.records_changed.load(Ordering::SeqCst),
        };
        self.wait(ticket).await?;
        result
    }

    async fn wait(&self, ticket: u64) -> StoreResult<()> {
        let reached = |d: &Durable| d.upto >= ticket || d.failed.is_some();
        if !reached(&self.durable.borrow()) {
            let mut durable = self.durable.clone();
            durable.wait_for(reached).await.map_err(|_| StoreError::Closed)?;
        }
        let durable = self.durable.borrow();
        match &durable.failed {
            Some(err) if durable.upto < ticket => Err(err.clone()),
            _ => Ok(()),
        }
    }

    /// Takes an image of the state at the tail and writes it as the snapshot in the background,
    /// once every frame before it is durable; then deletes the segments it covers.
    fn start_snapshot(&self, tail: &mut log::Tail) {
        if self.snapshotting.swap(true, Ordering::SeqCst) {
            return;
        }
        let image = match self.memory.image() {
            Ok(image) => image,
            Err(_) => {
                self.snapshotting.store(false, Ordering::SeqCst);
                return;
            }
        };
        tail.since_snapshot = 0;
        let snapshot = Snapshot { position: tail.position, frames: tail.appended, image };
        let (dir, durable, busy) = (self.dir.clone(), self.durable.clone(), self.snapshotting.clone());
        let size = self.snapshot_bytes.clone();
        let spawned = std::thread::Builder::new().name("holdfast-snapshot".into()).spawn(move || {
            loop {
                let d = durable.borrow().clone();
                if d.failed.is_some() {
                    busy.store(false, Ordering::SeqCst);
                    return;
                }
                if d.upto >= snapshot.frames {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let started = Instant::now();
            match snapshot::write(&dir, &snapshot) {
                Ok(()) => {
                    if let Ok(meta) = std::fs::metadata(snapshot::path(&dir)) {
                        size.store(meta.len(), Ordering::Relaxed);
                    }
                    remove_segments_before(&dir, snapshot.position.segment);
                    tracing::debug!(took_ms = started.elapsed().as_millis() as u64, "journal snapshot written");
                }
                Err(err) => tracing::warn!(error = %err.chain(), "could not write a journal snapshot"),
            }
            busy.store(false, Ordering::SeqCst);
        });
        if spawned.is_err() {
            self.snapshotting.store(false, Ordering::SeqCst);
        }
    }
}

/// Dropped without `close`: the threads write what is pending and stop before the lock on the
/// directory goes, so nothing of this store touches the files once another may open them.
impl Drop for JournalStore {
    fn drop(&mut self) {
        self.log.close();
        self.threads.get_mut().unwrap_or_else(PoisonError::into_inner).join();
    }
}

fn lock(dir: &Path) -> StoreResult<File> {
    let path = dir.join("lock");
    let file = File::create(&path).map_err(|err| io_error(dir, err))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(|_| {
        StoreError::backend(format!(
            "{} is locked: another holdfast process has this data directory open",
            path.display()
        ))
    })?;
    Ok(file)
}

/// Deletes the segments a snapshot made unnecessary (also left over by a crash between writing a
/// snapshot and deleting them).
fn remove_segments_before(dir: &Path, segment: u64) {
    for old in log::segments(dir).unwrap_or_default().into_iter().filter(|&s| s < segment) {
        if let Err(err) = std::fs::remove_file(log::segment_path(dir, old)) {
            tracing::warn!(error = %err, segment = old, "could not delete an old journal segment");
        }
    }
}

/// An I/O error in `dir`, naming it; a full disk is `Full`.
fn io_error(dir: &Path, err: std::io::Error) -> StoreError {
    let full = err.raw_os_error() == Some(28);
    let err = std::io::Error::new(err.kind(), format!("{}: {err}", dir.display()));
    if full {
        StoreError::full(err)
    } else {
        StoreError::backend(err)
    }
}

/// The value of a future that never waits, as the memory engine's calls never do (their `async`
/// is the trait's, not theirs).
fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => unreachable!("the memory engine's calls complete without waiting"),
    }
}

#[async_trait]
impl Store for JournalStore {
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
        let command = Command::CreateQueue {
            account: account.to_owned(),
            region: region.to_owned(),
            name: name.to_owned(),
            attributes: attributes.clone(),
            tags: tags.clone(),
            now,
            recreate_cooldown_ms,
        };
        self.journaled(command, || {
            self.memory.create_queue(account, region, name, attributes, tags, now, recreate_cooldown_ms)
        })
        .await
    }

    async fn get_queue(&self, account: &str, region: &str, name: &str) -> StoreResult<Option<QueueRecord>> {
        self.read(Fence::QueueRecords, || self.memory.get_queue(account, region, name)).await
    }

    async fn list_queues(
        &self,
        account: &str,
        region: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<QueueRecord>> {
        self.read(Fence::QueueRecords, || self.memory.list_queues(account, region, prefix, after, limit)).await
    }

    async fn list_namespaces(&self) -> StoreResult<Vec<(String, String)>> {
        self.read(Fence::QueueRecords, || self.memory.list_namespaces()).await
    }

    async fn delete_queue(&self, queue: QueueId, now: Millis) -> StoreResult<()> {
        self.journaled(Command::DeleteQueue { queue, now }, || self.memory.delete_queue(queue, now)).await
    }

    async fn set_queue_attributes(
        &self,
        queue: QueueId,
        attributes: BTreeMap<String, String>,
        now: Millis,
    ) -> StoreResult<()> {
        let command = Command::SetQueueAttributes { queue, attributes: attributes.clone(), now };
        self.journaled(command, || self.memory.set_queue_attributes(queue, attributes, now)).await
    }

    async fn replace_queue_attribute(
        &self,
        queue: QueueId,
        name: &str,
        expected: Option<&str>,
        value: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        let command = Command::ReplaceQueueAttribute {
            queue,
            name: name.to_owned(),
            expected: expected.map(str::to_owned),
            value: value.to_owned(),
            now,
        };
        self.journaled(command, || self.memory.replace_queue_attribute(queue, name, expected, value, now)).await
    }

    async fn tag_queue(&self, queue: QueueId, tags: BTreeMap<String, String>) -> StoreResult<()> {
        self.journaled(Command::TagQueue { queue, tags: tags.clone() }, || self.memory.tag_queue(queue, tags)).await
    }

    async fn untag_queue(&self, queue: QueueId, keys: Vec<String>) -> StoreResult<()> {
        self.journaled(Command::UntagQueue { queue, keys: keys.clone() }, || self.memory.untag_queue(queue, keys)).await
    }

    async fn purge_queue(&self, queue: QueueId, now: Millis, cooldown_ms: i64) -> StoreResult<PurgeOutcome> {
        let command = Command::PurgeQueue { queue, now, cooldown_ms };
        self.journaled(command, || self.memory.purge_queue(queue, now, cooldown_ms)).await
    }

    async fn queue_counts(&self, queue: QueueId, now: Millis) -> StoreResult<QueueCounts> {
        self.read(Fence::All, || self.memory.queue_counts(queue, now)).await
    }

    async fn send_messages(
        &self,
        queue: QueueId,
        messages: Vec<NewMessage>,
        dedup: Option<Deduplication>,
        now: Millis,
    ) -> StoreResult<Vec<Sent>> {
        let command = Command::SendMessages { queue, messages: messages.clone(), dedup, now };
        self.journaled(command, || self.memory.send_messages(queue, messages, dedup, now)).await
    }

    /// A receive that returns nothing answers without waiting for its frame: it reveals
    /// nothing, and what it changed (messages expired or dead-lettered, FIFO groups found
    /// available) is changed again by the next receive if a crash loses it. One that returns
    /// messages waits for its frame, so that a receipt handle a client holds is always one the
    /// store will still know after a crash.
    async fn receive_messages(&self, queue: QueueId, params: ReceiveParams) -> StoreResult<ReceiveOutcome> {
        let command = Command::ReceiveMessages { queue, params: params.clone() };
        let settle = |result: &StoreResult<ReceiveOutcome>, _: &log::Tail, ticket: u64| match result {
            Ok(outcome) if outcome.messages.is_empty() => 0,
            _ => ticket,
        };
        let (wait_for, result) = self.apply(command, || self.memory.receive_messages(queue, params), settle)?;
        self.wait(wait_for).await?;
        result
    }

    async fn group_load(&self, queue: QueueId, now: Millis) -> StoreResult<GroupLoad> {
        self.read(Fence::All, || self.memory.group_load(queue, now)).await
    }

    async fn group_counts(&self, queue: QueueId, groups: Vec<String>, now: Millis) -> StoreResult<QueueCounts> {
        self.read(Fence::All, || self.memory.group_counts(queue, groups, now)).await
    }

    async fn oldest_outside(
        &self,
        queue: QueueId,
        groups: Vec<String>,
        scan_limit: usize,
    ) -> StoreResult<Option<Millis>> {
        self.read(Fence::All, || self.memory.oldest_outside(queue, groups, scan_limit)).await
    }

    async fn delete_messages(
        &self,
        queue: QueueId,
        leases: Vec<Lease>,
        refuse_expired_at: Option<Millis>,
    ) -> StoreResult<Vec<DeleteOutcome>> {
        let command = Command::DeleteMessages { queue, leases: leases.clone(), refuse_expired_at };
        self.journaled(command, || self.memory.delete_messages(queue, leases, refuse_expired_at)).await
    }

    async fn change_visibility(
        &self,
        queue: QueueId,
        changes: Vec<ChangeVisibility>,
        now: Millis,
        max_inflight_ms: i64,
    ) -> StoreResult<Vec<ChangeVisibilityOutcome>> {
        let command = Command::ChangeVisibility { queue, changes: changes.clone(), now, max_inflight_ms };
        self.journaled(command, || self.memory.change_visibility(queue, changes, now, max_inflight_ms)).await
    }

    async fn dead_letter_exhausted(
        &self,
        queue: QueueId,
        target: DeadLetterTarget,
        now: Millis,
        limit: usize,
    ) -> StoreResult<SweepOutcome> {
        let command = Command::DeadLetterExhausted { queue, target: target.clone(), now, limit };
        self.journaled(command, || self.memory.dead_letter_exhausted(queue, target, now, limit)).await
    }

    async fn movable_messages(&self, queue: QueueId, now: Millis, limit: usize) -> StoreResult<Vec<MovableMessage>> {
        self.read(Fence::All, || self.memory.movable_messages(queue, now, limit)).await
    }

    async fn expire_messages(&self, queue: QueueId, sent_before: Millis) -> StoreResult<ExpiryOutcome> {
        self.journaled(Command::ExpireMessages { queue, sent_before }, || {
            self.memory.expire_messages(queue, sent_before)
        })
        .await
    }

    async fn prune_expired_records(&self, now: Millis) -> StoreResult<Option<Millis>> {
        self.journaled(Command::PruneExpiredRecords { now }, || self.memory.prune_expired_records(now)).await
    }

    async fn start_move_task(&self, task: MoveTask) -> StoreResult<bool> {
        self.journaled(Command::StartMoveTask { task: task.clone() }, || self.memory.start_move_task(task)).await
    }

    async fn cancel_move_task(&self, handle: &str) -> StoreResult<Option<MoveTask>> {
        self.journaled(Command::CancelMoveTask { handle: handle.to_owned() }, || self.memory.cancel_move_task(handle))
            .await
    }

    async fn advance_move_task(&self, handle: &str, step: MoveStep, now: Millis) -> StoreResult<Option<MoveTask>> {
        let command = Command::AdvanceMoveTask { handle: handle.to_owned(), step: step.clone(), now };
        self.journaled(command, || self.memory.advance_move_task(handle, step, now)).await
    }

    async fn move_tasks(&self, source_queue: Option<QueueId>) -> StoreResult<Vec<MoveTask>> {
        self.read(Fence::All, || self.memory.move_tasks(source_queue)).await
    }

    async fn record_queue_minutes(&self, minutes: Vec<QueueMinute>, forget_before: Millis) -> StoreResult<()> {
        let command = Command::RecordQueueMinutes { minutes: minutes.clone(), forget_before };
        self.journaled(command, || self.memory.record_queue_minutes(minutes, forget_before)).await
    }

    async fn queue_minutes(
        &self,
        account: &str,
        region: &str,
        queue: &str,
        from: Millis,
        to: Millis,
    ) -> StoreResult<Vec<QueueMinute>> {
        self.read(Fence::All, || self.memory.queue_minutes(account, region, queue, from, to)).await
    }

    async fn metric_queues(&self, account: &str, region: &str, since: Millis) -> StoreResult<Vec<MetricQueue>> {
        self.read(Fence::All, || self.memory.metric_queues(account, region, since)).await
    }

    fn figures(&self) -> EngineFigures {
        let bytes = std::fs::read_dir(&self.dir)
            .map(|entries| entries.flatten().filter_map(|e| e.metadata().ok()).map(|meta| meta.len()).sum())
            .ok();
        EngineFigures {
            database_bytes: bytes,
            commit_batch_size: Some(self.log.stats.batch_sizes()),
            commit_seconds: Some(self.log.stats.commit_times()),
        }
    }

    async fn check(&self) -> StoreResult<()> {
        if let Some(err) = &self.durable.borrow().failed {
            return Err(err.clone());
        }
        self.memory.check().await
    }

    /// Writes what is pending, stops the threads, and writes a snapshot of the final state, so
    /// the next start replays nothing (and an upgrade never replays an older version's frames).
    async fn close(&self) -> StoreResult<()> {
        self.log.close();
        let mut threads =
            std::mem::replace(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner), Threads::none());
        tokio::task::spawn_blocking(move || threads.join()).await.map_err(StoreError::backend)?;
        while self.snapshotting.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (position, frames, failed) = {
            let tail = self.log.lock();
            (tail.position, tail.appended, tail.failed.clone())
        };
        if let Some(err) = failed {
            let _ = self.memory.close().await;
            return Err(err);
        }
        let image = self.memory.image()?;
        self.memory.close().await?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            snapshot::write(&dir, &Snapshot { position, frames, image })?;
            remove_segments_before(&dir, position.segment);
            Ok(())
        })
        .await
        .map_err(StoreError::backend)?
    }
}
