//! `PostgresStore`: the engine for several holdfast nodes on one PostgreSQL database.
//!
//! - `schema`: the tables and their migrations (one path, safe when nodes start together).
//! - `ops`: queues, send, delete, change-visibility, counts, expiry.
//! - `receive`: standard, fair and FIFO delivery, receive attempts, dead-lettering on the way.
//! - `moves`: the dead-letter sweep, message moves and move tasks.
//! - `metrics`: queue metrics by the minute.
//!
//! Invariants:
//! - Each `Store` call is one transaction (`transact!`), committed before the call returns: with
//!   `synchronous_commit` on (PostgreSQL's default) `Ok` means the change is in the WAL on disk,
//!   and with a synchronous standby, on two machines.
//! - The decisions are the other engines' (`crate::rules`); only how rows are found and locked
//!   differs. Concurrency comes from row locks: receives pick with `FOR UPDATE SKIP LOCKED`,
//!   read-modify-write calls lock what they read, FIFO queues serialise sends and receives on an
//!   advisory lock per queue.
//! - A transaction that PostgreSQL aborts for a serialization failure or a deadlock is run again
//!   from the start (a few times): nothing of it was applied.
//! - Connections come from a pool; a broken connection (a restarted or failed-over server) is
//!   dropped and replaced on the next call, so the engine reconnects by itself.

mod group_commit;
mod leader;
mod metrics;
mod moves;
mod notify;
mod ops;
mod receive;
mod schema;
mod scratch;

pub use scratch::{ScratchSchema, TEST_DATABASE_VARIABLE};

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use holdfast_core::store::{
    ChangeVisibility, ChangeVisibilityOutcome, CreateQueueOutcome, DeadLetterTarget, Deduplication, DeleteOutcome,
    EngineFigures, ExpiryOutcome, GroupLoad, Lease, MetricQueue, Millis, MovableMessage, MoveStep, MoveTask,
    NewMessage, PurgeOutcome, QueueCounts, QueueId, QueueMinute, QueueRecord, ReceiveOutcome, ReceiveParams, Sent,
    SharedStore, Store, StoreError, StoreResult, SweepOutcome,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use crate::sqlite::writer::WriterStats;

type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// Why a call failed, before it becomes a `StoreError`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Fail {
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error("no database connection: {0}")]
    Pool(String),
    #[error("{0}")]
    Data(String),
}

impl Fail {
    fn state(&self) -> Option<&SqlState> {
        match self {
            Fail::Db(error) => error.code(),
            _ => None,
        }
    }

    /// PostgreSQL aborted the transaction and nothing of it was applied: run it again.
    fn is_retryable(&self) -> bool {
        matches!(self.state(), Some(&SqlState::T_R_SERIALIZATION_FAILURE) | Some(&SqlState::T_R_DEADLOCK_DETECTED))
    }

    fn into_store(self, what: &str) -> StoreError {
        if self.state() == Some(&SqlState::DISK_FULL) {
            return StoreError::full(self);
        }
        StoreError::backend_in(format!("PostgreSQL: {what}"), self)
    }
}

impl From<deadpool_postgres::PoolError> for Fail {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        match error {
            deadpool_postgres::PoolError::Backend(error) => Fail::Db(error),
            other => Fail::Pool(other.to_string()),
        }
    }
}

/// How the engine connects.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Connections per node. Every call holds one for its transaction, so this bounds the calls
    /// a node runs at once; size it so all nodes together stay under `max_connections`.
    pub pool_size: usize,
    /// How long a call waits for a free connection before it fails.
    pub wait_timeout: Duration,
    /// Wake long polls on other nodes with LISTEN/NOTIFY. Off for databases without it
    /// (CockroachDB): waiting receives then rely on the re-check alone.
    pub notify: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions { pool_size: 16, wait_timeout: Duration::from_secs(10), notify: true }
    }
}

/// The PostgreSQL engine. Create with `PostgresStore::connect`.
pub struct PostgresStore {
    pool: Pool,
    closed: AtomicBool,
    /// Commit times, and calls per commit (one for a call in its own transaction, the number
    /// gathered for a group-committed write), for `/metrics`, as the SQLite writer reports them.
    stats: Arc<WriterStats>,
    /// `pg_database_size`, refreshed in the background (`figures` cannot wait for a query).
    database_bytes: Arc<AtomicU64>,
    /// Where this node's news for the other nodes is queued (`notify::announcer`).
    announcer: Option<tokio::sync::mpsc::Sender<QueueId>>,
    /// The other nodes' news, until the service takes it.
    shared: std::sync::Mutex<Option<SharedStore>>,
    leadership: leader::Leadership,
    /// Where standard sends and deletes queue for group commit (`group_commit`).
    sends: tokio::sync::mpsc::Sender<group_commit::SendCall>,
    deletes: tokio::sync::mpsc::Sender<group_commit::DeleteCall>,
}

/// How often a waiting receive looks at the store again when it is told of other nodes' sends,
/// and when it is not (LISTEN/NOTIFY off).
const RECHECK_WITH_NOTIFY: Duration = Duration::from_secs(1);
const RECHECK_WITHOUT_NOTIFY: Duration = Duration::from_millis(200);

/// Dropping the store stops its background tasks (they end when the pool closes) and lets its
/// connections go.
impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.pool.close();
    }
}

/// How often the database size shown in `/metrics` is read again.
const SIZE_REFRESH: Duration = Duration::from_secs(30);

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("pool", &self.pool.status()).finish()
    }
}

/// Runs `$body` (an expression using the transaction `$tx`) in a transaction of its own, commits
/// it, and runs it again if PostgreSQL aborted it for a serialization failure or deadlock.
macro_rules! transact {
    ($store:expr, $what:expr, |$tx:ident| $body:expr) => {{
        let mut attempt = 0;
        loop {
            let result: Result<_, Fail> = async {
                let mut client = $store.client().await?;
                let $tx = client.transaction().await?;
                let value = $body.await?;
                let committing = std::time::Instant::now();
                $tx.commit().await?;
                $store.stats.commit(committing.elapsed());
                $store.stats.batch(1);
                Ok(value)
            }
            .await;
            match result {
                Err(fail) if fail.is_retryable() && attempt < 5 => attempt += 1,
                other => break other.map_err(|fail| fail.into_store($what)),
            }
        }
    }};
}

/// Runs `$body` (an expression using `$db`, a pooled connection) as statements on their own, each
/// its own transaction: for calls that are one statement, which need no BEGIN and COMMIT.
macro_rules! single {
    ($store:expr, $what:expr, |$db:ident| $body:expr) => {{
        let mut attempt = 0;
        loop {
            let result: Result<_, Fail> = async {
                let client = $store.client().await?;
                let $db = &client;
                $body.await
            }
            .await;
            match result {
                Err(fail) if fail.is_retryable() && attempt < 5 => attempt += 1,
                other => break other.map_err(|fail| fail.into_store($what)),
            }
        }
    }};
}

/// A call on a queue that is gone answers `QueueNotFound`; the SQL functions answer `None`.
fn found<T>(queue: QueueId, answer: Option<T>) -> StoreResult<T> {
    answer.ok_or(StoreError::QueueNotFound(queue))
}

impl PostgresStore {
    /// Connects to the database at `url` (a libpq URL or key-value string: several hosts and
    /// `target_session_attrs=read-write` are understood, so a node follows a failover), creates
    /// or migrates the schema, and checks the connection works.
    pub async fn connect(url: &str, options: PostgresOptions) -> StoreResult<PostgresStore> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::backend_in("the PostgreSQL URL is not valid", e))?;
        PostgresStore::connect_with(config, options).await
    }

    /// `connect` with a parsed configuration (tests set the schema through `options`).
    pub async fn connect_with(
        mut config: tokio_postgres::Config,
        options: PostgresOptions,
    ) -> StoreResult<PostgresStore> {
        if config.get_application_name().is_none() {
            config.application_name("holdfast");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .wait_timeout(Some(options.wait_timeout))
            .create_timeout(Some(options.wait_timeout))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::backend_in("cannot build the PostgreSQL connection pool", e))?;
        // Tells this node's announcements apart from the others' on the shared channel.
        let node = rand::random::<u64>();
        let leadership = leader::Leadership::new(config.clone(), node);
        let (announcer, visible_elsewhere, recheck) = if options.notify {
            (Some(notify::announcer(pool.clone(), node)), notify::listener(config, node), RECHECK_WITH_NOTIFY)
        } else {
            (None, tokio::sync::mpsc::channel(1).1, RECHECK_WITHOUT_NOTIFY)
        };
        let stats = Arc::new(WriterStats::default());
        let store = PostgresStore {
            pool: pool.clone(),
            closed: AtomicBool::new(false),
            stats: Arc::clone(&stats),
            database_bytes: Arc::default(),
            announcer,
            shared: std::sync::Mutex::new(Some(SharedStore { visible_elsewhere, recheck })),
            leadership,
            sends: group_commit::sends(pool.clone(), Arc::clone(&stats)),
            deletes: group_commit::deletes(pool.clone(), Arc::clone(&stats)),
        };
        let mut client = store.client().await.map_err(|e| e.into_store("connecting"))?;
        schema::migrate(&mut client).await.map_err(|e| e.into_store("creating or migrating the schema"))?;
        drop(client);
        store.watch_size();
        Ok(store)
    }

    /// Reads the database's size now and every `SIZE_REFRESH`, until the pool closes.
    fn watch_size(&self) {
        let (pool, bytes) = (self.pool.clone(), Arc::clone(&self.database_bytes));
        tokio::spawn(async move {
            while !pool.is_closed() {
                if let Ok(client) = pool.get().await {
                    if let Ok(row) = client.query_one("SELECT pg_database_size(current_database())", &[]).await {
                        bytes.store(row.get::<_, i64>(0).max(0) as u64, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(SIZE_REFRESH).await;
            }
        });
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, Fail> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Fail::Pool("the store is closed".into()));
        }
        Ok(self.pool.get().await?)
    }

    fn check_open(&self) -> StoreResult<()> {
        if self.closed.load(Ordering::SeqCst) {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
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
        self.check_open()?;
        transact!(self, "create_queue", |tx| ops::create_queue(
            &tx,
            account,
            region,
            name,
            &attributes,
            &tags,
            now,
            recreate_cooldown_ms
        ))
    }

    async fn get_queue(&self, account: &str, region: &str, name: &str) -> StoreResult<Option<QueueRecord>> {
        self.check_open()?;
        // Read every time, one primary-key lookup: a change made through any node is seen by the
        // next request on every node, as clients behind a load balancer expect.
        single!(self, "get_queue", |db| ops::get_queue(db, account, region, name))
    }

    async fn list_queues(
        &self,
        account: &str,
        region: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<QueueRecord>> {
        self.check_open()?;
        transact!(self, "list_queues", |tx| ops::list_queues(&tx, account, region, prefix, after, limit))
    }

    async fn list_namespaces(&self) -> StoreResult<Vec<(String, String)>> {
        self.check_open()?;
        transact!(self, "list_namespaces", |tx| ops::list_namespaces(&tx))
    }

    async fn delete_queue(&self, queue: QueueId, now: Millis) -> StoreResult<()> {
        self.check_open()?;
        let deleted = transact!(self, "delete_queue", |tx| ops::delete_queue(&tx, queue, now))?;
        found(queue, deleted.then_some(()))
    }

    async fn set_queue_attributes(
        &self,
        queue: QueueId,
        attributes: BTreeMap<String, String>,
        now: Millis,
    ) -> StoreResult<()> {
        self.check_open()?;
        let done = transact!(self, "set_queue_attributes", |tx| ops::set_queue_attributes(
            &tx,
            queue,
            attributes.clone(),
            now
        ))?;
        found(queue, done).map(drop)
    }

    async fn replace_queue_attribute(
        &self,
        queue: QueueId,
        name: &str,
        expected: Option<&str>,
        value: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        self.check_open()?;
        let done = transact!(self, "replace_queue_attribute", |tx| ops::replace_queue_attribute(
            &tx, queue, name, expected, value, now
        ))?;
        found(queue, done)
    }

    async fn tag_queue(&self, queue: QueueId, tags: BTreeMap<String, String>) -> StoreResult<()> {
        self.check_open()?;
        let done = transact!(self, "tag_queue", |tx| ops::tag_queue(&tx, queue, tags.clone()))?;
        found(queue, done).map(drop)
    }

    async fn untag_queue(&self, queue: QueueId, keys: Vec<String>) -> StoreResult<()> {
        self.check_open()?;
        let done = transact!(self, "untag_queue", |tx| ops::untag_queue(&tx, queue, keys.clone()))?;
        found(queue, done).map(drop)
    }

    async fn purge_queue(&self, queue: QueueId, now: Millis, cooldown_ms: i64) -> StoreResult<PurgeOutcome> {
        self.check_open()?;
        let done = transact!(self, "purge_queue", |tx| ops::purge_queue(&tx, queue, now, cooldown_ms))?;
        found(queue, done)
    }

    async fn queue_counts(&self, queue: QueueId, now: Millis) -> StoreResult<QueueCounts> {
        self.check_open()?;
        let counts = transact!(self, "queue_counts", |tx| ops::queue_counts(&tx, queue, now))?;
        found(queue, counts)
    }

    async fn send_messages(
        &self,
        queue: QueueId,
        messages: Vec<NewMessage>,
        dedup: Option<Deduplication>,
        now: Millis,
    ) -> StoreResult<Vec<Sent>> {
        self.check_open()?;
        let sent = match dedup {
            None => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let call = group_commit::SendCall { queue, messages, reply };
                self.sends.send(call).await.map_err(|_| StoreError::Closed)?;
                answer.await.map_err(|_| StoreError::backend("the PostgreSQL send writer stopped"))??
            }
            Some(_) => transact!(self, "send_messages", |tx| ops::send_messages(&tx, queue, &messages, dedup, now))?,
        };
        found(queue, sent)
    }

    async fn receive_messages(&self, queue: QueueId, params: ReceiveParams) -> StoreResult<ReceiveOutcome> {
        self.check_open()?;
        if params.delivery == holdfast_core::store::Delivery::Standard
            && params.fair.is_none()
            && params.attempt.is_none()
        {
            match single!(self, "receive_messages", |db| receive::receive_quick(db, queue, &params))? {
                receive::Quick::Done(outcome) => return Ok(outcome),
                receive::Quick::Gone => return Err(StoreError::QueueNotFound(queue)),
                receive::Quick::NeedsFullReceive => {}
            }
        }
        let outcome = transact!(self, "receive_messages", |tx| receive::receive_messages(&tx, queue, &params))?;
        found(queue, outcome)
    }

    async fn group_load(&self, queue: QueueId, now: Millis) -> StoreResult<GroupLoad> {
        self.check_open()?;
        let load = transact!(self, "group_load", |tx| ops::group_load(&tx, queue, now))?;
        found(queue, load)
    }

    async fn group_counts(&self, queue: QueueId, groups: Vec<String>, now: Millis) -> StoreResult<QueueCounts> {
        self.check_open()?;
        let counts = transact!(self, "group_counts", |tx| ops::group_counts(&tx, queue, &groups, now))?;
        found(queue, counts)
    }

    async fn oldest_outside(
        &self,
        queue: QueueId,
        groups: Vec<String>,
        scan_limit: usize,
    ) -> StoreResult<Option<Millis>> {
        self.check_open()?;
        let oldest = transact!(self, "oldest_outside", |tx| ops::oldest_outside(&tx, queue, &groups, scan_limit))?;
        found(queue, oldest)
    }

    async fn delete_messages(
        &self,
        queue: QueueId,
        leases: Vec<Lease>,
        refuse_expired_at: Option<Millis>,
    ) -> StoreResult<Vec<DeleteOutcome>> {
        self.check_open()?;
        let outcomes = match refuse_expired_at {
            None => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let call = group_commit::DeleteCall { queue, leases, reply };
                self.deletes.send(call).await.map_err(|_| StoreError::Closed)?;
                answer.await.map_err(|_| StoreError::backend("the PostgreSQL delete writer stopped"))??
            }
            Some(_) => {
                transact!(self, "delete_messages", |tx| ops::delete_messages(&tx, queue, &leases, refuse_expired_at))?
            }
        };
        found(queue, outcomes)
    }

    async fn change_visibility(
        &self,
        queue: QueueId,
        changes: Vec<ChangeVisibility>,
        now: Millis,
        max_inflight_ms: i64,
    ) -> StoreResult<Vec<ChangeVisibilityOutcome>> {
        self.check_open()?;
        let outcomes = transact!(self, "change_visibility", |tx| ops::change_visibility(
            &tx,
            queue,
            &changes,
            now,
            max_inflight_ms
        ))?;
        found(queue, outcomes)
    }

    async fn dead_letter_exhausted(
        &self,
        queue: QueueId,
        target: DeadLetterTarget,
        now: Millis,
        limit: usize,
    ) -> StoreResult<SweepOutcome> {
        self.check_open()?;
        let outcome = transact!(self, "dead_letter_exhausted", |tx| moves::dead_letter_exhausted(
            &tx,
            queue,
            target.clone(),
            now,
            limit
        ))?;
        found(queue, outcome)
    }

    async fn movable_messages(&self, queue: QueueId, now: Millis, limit: usize) -> StoreResult<Vec<MovableMessage>> {
        self.check_open()?;
        let movable = transact!(self, "movable_messages", |tx| moves::movable_messages(&tx, queue, now, limit))?;
        found(queue, movable)
    }

    async fn expire_messages(&self, queue: QueueId, sent_before: Millis) -> StoreResult<ExpiryOutcome> {
        self.check_open()?;
        let outcome = transact!(self, "expire_messages", |tx| ops::expire_messages(&tx, queue, sent_before))?;
        found(queue, outcome)
    }

    async fn prune_expired_records(&self, now: Millis) -> StoreResult<Option<Millis>> {
        self.check_open()?;
        transact!(self, "prune_expired_records", |tx| ops::prune_expired_records(&tx, now))
    }

    async fn start_move_task(&self, task: MoveTask) -> StoreResult<bool> {
        self.check_open()?;
        let source = task.source_queue;
        let started = transact!(self, "start_move_task", |tx| moves::start_move_task(&tx, task.clone()))?;
        found(source, started)
    }

    async fn cancel_move_task(&self, handle: &str) -> StoreResult<Option<MoveTask>> {
        self.check_open()?;
        transact!(self, "cancel_move_task", |tx| moves::cancel_move_task(&tx, handle))
    }

    async fn advance_move_task(&self, handle: &str, step: MoveStep, now: Millis) -> StoreResult<Option<MoveTask>> {
        self.check_open()?;
        transact!(self, "advance_move_task", |tx| moves::advance_move_task(&tx, handle, step.clone(), now))
    }

    async fn move_tasks(&self, source_queue: Option<QueueId>) -> StoreResult<Vec<MoveTask>> {
        self.check_open()?;
        transact!(self, "move_tasks", |tx| moves::move_tasks(&tx, source_queue))
    }

    async fn record_queue_minutes(&self, minutes: Vec<QueueMinute>, forget_before: Millis) -> StoreResult<()> {
        self.check_open()?;
        transact!(self, "record_queue_minutes", |tx| metrics::record_queue_minutes(&tx, minutes.clone(), forget_before))
    }

    async fn queue_minutes(
        &self,
        account: &str,
        region: &str,
        queue: &str,
        from: Millis,
        to: Millis,
    ) -> StoreResult<Vec<QueueMinute>> {
        self.check_open()?;
        transact!(self, "queue_minutes", |tx| metrics::queue_minutes(&tx, account, region, queue, from, to))
    }

    async fn metric_queues(&self, account: &str, region: &str, since: Millis) -> StoreResult<Vec<MetricQueue>> {
        self.check_open()?;
        transact!(self, "metric_queues", |tx| metrics::metric_queues(&tx, account, region, since))
    }

    fn take_shared(&self) -> Option<SharedStore> {
        self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }

    fn announce_visible(&self, queue: QueueId) {
        if let Some(announcer) = &self.announcer {
            // A full backlog drops the hint; the other nodes' re-check covers it.
            let _ = announcer.try_send(queue);
        }
    }

    async fn lead(&self, job: &str, now: Millis) -> StoreResult<bool> {
        self.check_open()?;
        self.leadership.lead(job, now).await.map_err(|e| e.into_store("taking the lead of a background job"))
    }

    async fn release(&self, job: &str) -> StoreResult<()> {
        self.leadership.release(job).await.map_err(|e| e.into_store("releasing a background job"))
    }

    fn figures(&self) -> EngineFigures {
        EngineFigures {
            database_bytes: Some(self.database_bytes.load(Ordering::Relaxed)),
            commit_batch_size: Some(self.stats.batch_sizes()),
            commit_seconds: Some(self.stats.commit_times()),
        }
    }

    async fn check(&self) -> StoreResult<()> {
        self.check_open()?;
        let client = self.client().await.map_err(|e| e.into_store("checking the connection"))?;
        client.simple_query("SELECT 1").await.map_err(|e| Fail::Db(e).into_store("checking the connection"))?;
        Ok(())
    }

    async fn close(&self) -> StoreResult<()> {
        // Every acknowledged call is already committed; closing only stops new calls and lets the
        // connections go.
        if self.closed.swap(true, Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        self.leadership.close().await;
        self.pool.close();
        Ok(())
    }
}
