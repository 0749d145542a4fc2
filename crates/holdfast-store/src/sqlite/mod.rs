//! `SqliteStore`: the durable engine, one SQLite database (`<dir>/holdfast.db`) in WAL mode.
//!
//! - `schema`: opening the file, the versioned schema, refusing damaged files.
//! - `writer`: the one thread that owns the connection, with group commit.
//! - `ops`: the SQL of the queue calls, send, delete, change-visibility and expiry.
//! - `receive`: the SQL of receive (standard and FIFO delivery, attempts, dead-lettering).
//! - `moves`: the dead-letter sweep, message moves and move tasks.
//!
//! Invariants:
//! - Async code never blocks on SQLite: each call becomes a closure sent to the writer thread and
//!   the caller awaits a oneshot reply. The thread runs a whole batch of calls in one transaction
//!   (one fsync for all, `synchronous=FULL`) and replies only after the commit, so `Ok` means
//!   durable.
//! - Reads go through the same thread. SQS reads are few (GetQueueUrl, GetQueueAttributes,
//!   ListQueues) and are all index lookups, while receive, the busiest call, writes anyway; one
//!   connection keeps every call serialised with every other, so a read always sees every write
//!   acknowledged before it, and there is no reader pool to size or second connection to keep
//!   consistent. Counts scan only hidden messages, so no read holds the writer up for long.
//! - After `close` (or drop) the thread has finished every queued call and closed the database;
//!   later calls fail with `StoreError::Closed`.

mod metrics;
mod moves;
mod ops;
mod queue_cache;
mod receive;
mod reserve;
mod schema;
pub(crate) mod writer;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use async_trait::async_trait;
use holdfast_core::store::{
    ChangeVisibility, ChangeVisibilityOutcome, CreateQueueOutcome, DeadLetterTarget, Deduplication, DeleteOutcome,
    EngineFigures, ExpiryOutcome, GroupLoad, Lease, MetricQueue, Millis, MovableMessage, MoveStep, MoveTask,
    NewMessage, PurgeOutcome, QueueCounts, QueueId, QueueMinute, QueueRecord, ReceiveOutcome, ReceiveParams, Sent,
    Store, StoreError, StoreResult, SweepOutcome,
};
use holdfast_core::DEFAULT_ACCOUNT_ID;
use rusqlite::Connection;
use tokio::sync::oneshot;

use queue_cache::QueueCache;
use writer::{Command, Msg};

pub use schema::DB_FILE;

/// The SQLite engine. Create with `SqliteStore::open`.
#[derive(Debug)]
pub struct SqliteStore {
    /// `None` once closed. A mutex rather than a bare `Sender` so `close` can take it away and
    /// every later call sees `Closed` instead of queueing behind the shutdown.
    commands: Mutex<Option<Sender<Msg>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    queues: Arc<QueueCache>,
    /// Space held back for the calls that free space when the disk is full.
    reserve: reserve::Reserve,
    /// What the background integrity check of a large database found wrong, if anything.
    damage: Arc<Mutex<Option<String>>>,
    /// The database file, for its size.
    path: std::path::PathBuf,
    stats: Arc<writer::WriterStats>,
}

/// Where a server lives: its own account and region. Queues from before holdfast had accounts
/// and regions were served from there.
#[derive(Clone, Copy, Debug)]
pub struct Home<'a> {
    pub account: &'a str,
    pub region: &'a str,
}

/// Reported when the writer thread is gone without `close` (it panicked): requests fail with a
/// cause instead of hanging.
const WRITER_GONE: &str = "the SQLite writer thread has stopped";

impl SqliteStore {
    /// Opens or creates the store in `dir` (created if missing), checks the file, and starts the
    /// writer thread. Blocking: call it before serving, or from `spawn_blocking`.
    ///
    /// Queues created before holdfast had accounts and regions go to `DEFAULT_ACCOUNT_ID` in
    /// us-east-1; a server with another home opens with `open_for_home`.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_for_home(dir, &Home { account: DEFAULT_ACCOUNT_ID, region: "us-east-1" })
    }

    /// `open` for a server whose own account and region are `home`: queues created before
    /// holdfast had accounts (schema version 3 and older) or regions (5 and older) were served
    /// from there, and stay there.
    pub fn open_for_home(dir: &Path, home: &Home<'_>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_checking(dir, schema::QUICK_CHECK_MAX_BYTES, home)
    }

    /// `open`, checking files up to `quick_check_max_bytes` in full before serving and larger
    /// ones in the background.
    fn open_checking(dir: &Path, quick_check_max_bytes: u64, home: &Home<'_>) -> Result<SqliteStore, StoreError> {
        // The reserve first: on a full disk it gives back the space opening the database needs.
        let _ = std::fs::create_dir_all(dir);
        let reserve = reserve::Reserve::open(dir);
        let conn = schema::open(dir, quick_check_max_bytes, home)?;
        let damage = Arc::new(Mutex::new(None));
        let path = dir.join(DB_FILE);
        if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) > quick_check_max_bytes {
            check_in_background(path, Arc::clone(&damage));
        }
        let (commands, receiver) = mpsc::channel();
        let stats = Arc::new(writer::WriterStats::default());
        let writer_stats = Arc::clone(&stats);
        let writer = std::thread::Builder::new()
            .name("holdfast-sqlite".into())
            .spawn(move || writer::run(conn, receiver, writer_stats))
            .map_err(StoreError::backend)?;
        Ok(SqliteStore {
            commands: Mutex::new(Some(commands)),
            writer: Mutex::new(Some(writer)),
            queues: Arc::new(QueueCache::default()),
            reserve,
            damage,
            path: dir.join(DB_FILE),
            stats,
        })
    }

    /// Runs `work` on the writer thread inside the next batch's transaction and waits for the
    /// commit.
    async fn call<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        {
            let commands = self.commands.lock().unwrap_or_else(PoisonError::into_inner);
            let commands = commands.as_ref().ok_or(StoreError::Closed)?;
            commands
                .send(Msg::Job(Box::new(Command::new(work, reply))))
                .map_err(|_| StoreError::backend(WRITER_GONE))?;
        }
        let result = answer.await.map_err(|_| StoreError::backend(WRITER_GONE))?;
        if let Err(StoreError::Full(_)) = &result {
            self.reserve.release("a write failed: the disk is full");
        }
        result
    }

    /// Like `call`, for commands that change queue records: the cache forgets them first.
    async fn call_changing_queues<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let queues = Arc::clone(&self.queues);
        self.call(move |c| {
            queues.invalidate();
            work(c)
        })
        .await
    }

    fn join_writer(&self) {
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(writer) = writer {
            if writer.join().is_err() {
                tracing::error!("the SQLite writer thread panicked");
            }
        }
    }
}

impl Drop for SqliteStore {
    /// Stops the writer: it finishes the calls already queued (their callers are gone or will get
    /// their replies), closes the database, and is joined so the file is closed when drop returns.
    fn drop(&mut self) {
        self.commands.lock().unwrap_or_else(PoisonError::into_inner).take();
        self.join_writer();
    }
}

/// Reads every page of a database too large to check before serving, on its own read-only
/// connection (WAL lets it read beside the writer), and records any damage it finds.
fn check_in_background(path: std::path::PathBuf, damage: Arc<Mutex<Option<String>>>) {
    let spawned = std::thread::Builder::new().name("holdfast-integrity".into()).spawn(move || {
        let started = std::time::Instant::now();
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let verdict = Connection::open_with_flags(&path, flags)
            .and_then(|conn| conn.query_row("PRAGMA quick_check(1)", [], |r| r.get::<_, String>(0)));
        let found = match verdict {
            Ok(verdict) if verdict == "ok" => None,
            Ok(verdict) => Some(format!("integrity check failed: {verdict}")),
            Err(error) => Some(format!("integrity check could not read the file: {error}")),
        };
        match &found {
            None => tracing::info!(seconds = started.elapsed().as_secs_f64(), "integrity check of the database passed"),
            Some(reason) => tracing::error!(path = %path.display(), %reason, "the database is damaged"),
        }
        *damage.lock().unwrap_or_else(PoisonError::into_inner) = found;
    });
    if let Err(error) = spawned {
        tracing::warn!(%error, "could not start the background integrity check");
    }
}

/// A per-queue command's answer, with the one convention of `Store`: a queue that is gone is
/// `QueueNotFound`. The SQL functions answer `None` (or `false`) for it.
fn found<T>(queue: QueueId, answer: Option<T>) -> StoreResult<T> {
    answer.ok_or(StoreError::QueueNotFound(queue))
}

#[async_trait]
impl Store for SqliteStore {
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
        self.reserve.admit()?;
        let (account, region, name) = (account.to_owned(), region.to_owned(), name.to_owned());
        #[cfg(feature = "fault-injection")]
        if std::env::var("HOLDFAST_FAULT_PANIC_ON_CREATE").is_ok_and(|target| target == name) {
            return self.call(|_| -> rusqlite::Result<CreateQueueOutcome> { panic!("injected panic") }).await;
        }
        self.call_changing_queues(move |c| {
            ops::create_queue(c, &account, &region, &name, attributes, tags, now, recreate_cooldown_ms)
        })
        .await
    }

    async fn get_queue(&self, account: &str, region: &str, name: &str) -> StoreResult<Option<QueueRecord>> {
        let generation = match self.queues.lookup(account, region, name) {
            Ok(record) => return Ok(Some(record)),
            Err(generation) => generation,
        };
        let (account, region, name) = (account.to_owned(), region.to_owned(), name.to_owned());
        let record = self.call(move |c| ops::get_queue(c, &account, &region, &name)).await?;
        if let Some(record) = &record {
            self.queues.fill(record, generation);
        }
        Ok(record)
    }

    async fn list_queues(
        &self,
        account: &str,
        region: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<QueueRecord>> {
        let (account, region, prefix) = (account.to_owned(), region.to_owned(), prefix.to_owned());
        let after = after.map(str::to_owned);
        self.call(move |c| ops::list_queues(c, &account, &region, &prefix, after.as_deref(), limit)).await
    }

    async fn list_namespaces(&self) -> StoreResult<Vec<(String, String)>> {
        self.call(ops::list_namespaces).await
    }

    async fn delete_queue(&self, queue: QueueId, now: Millis) -> StoreResult<()> {
        let deleted = self.call_changing_queues(move |c| ops::delete_queue(c, queue, now)).await?;
        found(queue, deleted.then_some(()))
    }

    async fn set_queue_attributes(
        &self,
        queue: QueueId,
        attributes: BTreeMap<String, String>,
        now: Millis,
    ) -> StoreResult<()> {
        self.reserve.admit()?;
        let written = self.call_changing_queues(move |c| ops::set_queue_attributes(c, queue, attributes, now)).await?;
        found(queue, written).map(drop)
    }

    async fn replace_queue_attribute(
        &self,
        queue: QueueId,
        name: &str,
        expected: Option<&str>,
        value: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        self.reserve.admit()?;
        let (name, expected, value) = (name.to_owned(), expected.map(str::to_owned), value.to_owned());
        let written = self
            .call_changing_queues(move |c| {
                ops::replace_queue_attribute(c, queue, &name, expected.as_deref(), &value, now)
            })
            .await?;
        found(queue, written)
    }

    async fn tag_queue(&self, queue: QueueId, tags: BTreeMap<String, String>) -> StoreResult<()> {
        self.reserve.admit()?;
        found(queue, self.call_changing_queues(move |c| ops::tag_queue(c, queue, tags)).await?).map(drop)
    }

    async fn untag_queue(&self, queue: QueueId, keys: Vec<String>) -> StoreResult<()> {
        found(queue, self.call_changing_queues(move |c| ops::untag_queue(c, queue, keys)).await?).map(drop)
    }

    async fn purge_queue(&self, queue: QueueId, now: Millis, cooldown_ms: i64) -> StoreResult<PurgeOutcome> {
        found(queue, self.call(move |c| ops::purge_queue(c, queue, now, cooldown_ms)).await?)
    }

    async fn queue_counts(&self, queue: QueueId, now: Millis) -> StoreResult<QueueCounts> {
        found(queue, self.call(move |c| ops::queue_counts(c, queue, now)).await?)
    }

    async fn group_load(&self, queue: QueueId, now: Millis) -> StoreResult<GroupLoad> {
        found(queue, self.call(move |c| ops::group_load(c, queue, now)).await?)
    }

    async fn group_counts(&self, queue: QueueId, groups: Vec<String>, now: Millis) -> StoreResult<QueueCounts> {
        found(queue, self.call(move |c| ops::group_counts(c, queue, &groups, now)).await?)
    }

    async fn oldest_outside(
        &self,
        queue: QueueId,
        groups: Vec<String>,
        scan_limit: usize,
    ) -> StoreResult<Option<Millis>> {
        found(queue, self.call(move |c| ops::oldest_outside(c, queue, &groups, scan_limit)).await?)
    }

    async fn send_messages(
        &self,
        queue: QueueId,
        messages: Vec<NewMessage>,
        dedup: Option<Deduplication>,
        now: Millis,
    ) -> StoreResult<Vec<Sent>> {
        self.reserve.admit()?;
        found(queue, self.call(move |c| ops::send_messages(c, queue, messages, dedup, now)).await?)
    }

    async fn receive_messages(&self, queue: QueueId, params: ReceiveParams) -> StoreResult<ReceiveOutcome> {
        found(queue, self.call(move |c| receive::receive_messages(c, queue, params)).await?)
    }

    async fn delete_messages(
        &self,
        queue: QueueId,
        leases: Vec<Lease>,
        refuse_expired_at: Option<Millis>,
    ) -> StoreResult<Vec<DeleteOutcome>> {
        found(queue, self.call(move |c| ops::delete_messages(c, queue, leases, refuse_expired_at)).await?)
    }

    async fn change_visibility(
        &self,
        queue: QueueId,
        changes: Vec<ChangeVisibility>,
        now: Millis,
        max_inflight_ms: i64,
    ) -> StoreResult<Vec<ChangeVisibilityOutcome>> {
        found(queue, self.call(move |c| ops::change_visibility(c, queue, changes, now, max_inflight_ms)).await?)
    }

    async fn dead_letter_exhausted(
        &self,
        queue: QueueId,
        target: DeadLetterTarget,
        now: Millis,
        limit: usize,
    ) -> StoreResult<SweepOutcome> {
        found(queue, self.call(move |c| moves::dead_letter_exhausted(c, queue, target, now, limit)).await?)
    }

    async fn movable_messages(&self, queue: QueueId, now: Millis, limit: usize) -> StoreResult<Vec<MovableMessage>> {
        found(queue, self.call(move |c| moves::movable_messages(c, queue, now, limit)).await?)
    }

    async fn expire_messages(&self, queue: QueueId, sent_before: Millis) -> StoreResult<ExpiryOutcome> {
        found(queue, self.call(move |c| ops::expire_messages(c, queue, sent_before)).await?)
    }

    async fn prune_expired_records(&self, now: Millis) -> StoreResult<Option<Millis>> {
        self.call(move |c| ops::prune_expired_records(c, now)).await
    }

    async fn start_move_task(&self, task: MoveTask) -> StoreResult<bool> {
        self.reserve.admit()?;
        let source = task.source_queue;
        found(source, self.call(move |c| moves::start_move_task(c, task)).await?)
    }

    async fn cancel_move_task(&self, handle: &str) -> StoreResult<Option<MoveTask>> {
        let handle = handle.to_owned();
        self.call(move |c| moves::cancel_move_task(c, &handle)).await
    }

    async fn advance_move_task(&self, handle: &str, step: MoveStep, now: Millis) -> StoreResult<Option<MoveTask>> {
        let handle = handle.to_owned();
        self.call(move |c| moves::advance_move_task(c, &handle, step, now)).await
    }

    async fn move_tasks(&self, source_queue: Option<QueueId>) -> StoreResult<Vec<MoveTask>> {
        self.call(move |c| moves::move_tasks(c, source_queue)).await
    }

    async fn record_queue_minutes(&self, minutes: Vec<QueueMinute>, forget_before: Millis) -> StoreResult<()> {
        self.call(move |c| metrics::record_queue_minutes(c, minutes, forget_before)).await
    }

    async fn queue_minutes(
        &self,
        account: &str,
        region: &str,
        queue: &str,
        from: Millis,
        to: Millis,
    ) -> StoreResult<Vec<QueueMinute>> {
        let (account, region, queue) = (account.to_owned(), region.to_owned(), queue.to_owned());
        self.call(move |c| metrics::queue_minutes(c, &account, &region, &queue, from, to)).await
    }

    async fn metric_queues(&self, account: &str, region: &str, since: Millis) -> StoreResult<Vec<MetricQueue>> {
        let (account, region) = (account.to_owned(), region.to_owned());
        self.call(move |c| metrics::metric_queues(c, &account, &region, since)).await
    }

    fn figures(&self) -> EngineFigures {
        // The WAL holds committed pages until they are checkpointed into the main file.
        let size = |path: &std::path::Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let database_bytes = size(&self.path) + size(&self.path.with_extension("db-wal"));
        EngineFigures {
            database_bytes: Some(database_bytes),
            commit_batch_size: Some(self.stats.batch_sizes()),
            commit_seconds: Some(self.stats.commit_times()),
        }
    }

    async fn check(&self) -> StoreResult<()> {
        if let Some(damage) = self.damage.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            return Err(StoreError::backend_in("the database is damaged", damage));
        }
        self.call(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    async fn close(&self) -> StoreResult<()> {
        let commands = self.commands.lock().unwrap_or_else(PoisonError::into_inner).take();
        let commands = commands.ok_or(StoreError::Closed)?;
        let (ack, closed) = oneshot::channel();
        commands.send(Msg::Close(ack)).map_err(|_| StoreError::backend(WRITER_GONE))?;
        drop(commands);
        let result = closed.await.map_err(|_| StoreError::backend(WRITER_GONE))?;
        // The thread has replied as its last act; joining only reaps it.
        self.join_writer();
        result
    }
}

#[cfg(test)]
mod tests;
