//! The writer thread: the only code that touches the SQLite connection after `open`.
//!
//! Commands arrive over a channel as closures over `&Connection`. The thread blocks for the first
//! command, then takes every command already queued (up to `MAX_BATCH`) and runs them all in ONE
//! transaction, each inside its own SAVEPOINT, commits once, and only then replies to each caller.
//! Under concurrency many requests therefore share one fsync (group commit), while a failing
//! command rolls back only its own savepoint.
//!
//! Invariants:
//! - No reply leaves before the COMMIT that made its effect durable has returned. If the commit
//!   fails, every command of the batch answers with that error, even those whose own work
//!   succeeded (and reads, which may have seen the batch's uncommitted writes).
//! - SQLite may roll back a whole transaction by itself after SQLITE_FULL or SQLITE_IOERR. The
//!   thread checks `is_autocommit` after every command and fails the commands whose effects were
//!   lost, then opens a new transaction for the rest of the batch.
//! - After any failure the connection is left outside a transaction, so the next batch starts
//!   clean: a full disk fails requests until space is freed, then the store carries on.
//! - A command that panics does not take the thread with it: the panic is caught, the batch's
//!   transaction is rolled back and every command of the batch fails (the store cannot tell
//!   what the panicking command left half done), and the thread goes on with the next batch. One
//!   bad request costs its batch, never the store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use holdfast_core::store::{EngineHistogram, StoreError, StoreResult};
use rusqlite::{Connection, ErrorCode};
use tokio::sync::oneshot;

/// The most commands one transaction takes. Big enough that one fsync serves every request a busy
/// server has waiting; small enough that a batch's replies are not held back for long.
const MAX_BATCH: usize = 512;

/// The longest a batch waits for more commands, and only when the previous batch was bigger than
/// what has arrived so far. A fraction of an fsync, so it costs a lone caller nothing (its
/// batches hold one command, so it never waits) and busy callers less than the extra commit it
/// saves them.
const GATHER_WINDOW: Duration = Duration::from_micros(200);

/// Upper bounds of the batch-size buckets: powers of two up to `MAX_BATCH`.
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// Upper bounds of the commit-time buckets, in seconds: an fsync takes from tens of microseconds
/// (a battery-backed cache) to tens of milliseconds (a busy disk).
const COMMIT_BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// What the thread measures of its own work, read by `/metrics`: relaxed atomics the thread adds
/// to once per batch.
#[derive(Debug)]
pub(crate) struct WriterStats {
    batch_sizes: Vec<AtomicU64>,
    commands: AtomicU64,
    commit_times: Vec<AtomicU64>,
    commit_micros: AtomicU64,
}

impl Default for WriterStats {
    fn default() -> Self {
        WriterStats {
            batch_sizes: (0..=BATCH_BUCKETS.len()).map(|_| AtomicU64::new(0)).collect(),
            commands: AtomicU64::new(0),
            commit_times: (0..=COMMIT_BUCKETS.len()).map(|_| AtomicU64::new(0)).collect(),
            commit_micros: AtomicU64::new(0),
        }
    }
}

fn bucket(bounds: &[f64], value: f64) -> usize {
    bounds.iter().position(|bound| value <= *bound).unwrap_or(bounds.len())
}

impl WriterStats {
    pub(crate) fn batch(&self, commands: usize) {
        self.batch_sizes[bucket(&BATCH_BUCKETS, commands as f64)].fetch_add(1, Ordering::Relaxed);
        self.commands.fetch_add(commands as u64, Ordering::Relaxed);
    }

    pub(crate) fn commit(&self, took: Duration) {
        self.commit_times[bucket(&COMMIT_BUCKETS, took.as_secs_f64())].fetch_add(1, Ordering::Relaxed);
        self.commit_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub(crate) fn batch_sizes(&self) -> EngineHistogram {
        EngineHistogram {
            bounds: BATCH_BUCKETS.to_vec(),
            counts: self.batch_sizes.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
            sum: self.commands.load(Ordering::Relaxed) as f64,
        }
    }

    pub(crate) fn commit_times(&self) -> EngineHistogram {
        EngineHistogram {
            bounds: COMMIT_BUCKETS.to_vec(),
            counts: self.commit_times.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
            sum: self.commit_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// What the store sends the thread.
pub(super) enum Msg {
    Job(Box<dyn Job>),
    /// Finish the queued commands, checkpoint, close the connection, then acknowledge.
    Close(oneshot::Sender<StoreResult<()>>),
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Job(_) => "Job",
            Msg::Close(_) => "Close",
        })
    }
}

/// How one command ran.
pub(super) enum Ran {
    Ok,
    /// The command failed; its savepoint is rolled back and the rest of the batch goes on.
    Failed(StoreError),
    /// The command panicked; nothing it did can be trusted.
    Panicked(StoreError),
}

/// One command with its reply channel; type-erased so one channel carries every command.
pub(super) trait Job: Send {
    /// Runs the command in the open transaction, inside its own savepoint, and keeps its result
    /// until the transaction's fate is known.
    fn run(&mut self, conn: &Connection) -> Ran;
    /// The transaction that held this command's effects is gone: answer `err` instead, unless the
    /// command had already failed by itself (its own error says more).
    fn fail(&mut self, err: StoreError);
    fn reply(self: Box<Self>);
}

pub(super) struct Command<T, F> {
    work: Option<F>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Command<T, F> {
    pub(super) fn new(work: F, reply: oneshot::Sender<StoreResult<T>>) -> Self {
        Command { work: Some(work), result: None, reply }
    }
}

impl<T, F> Job for Command<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> Ran {
        let Some(work) = self.work.take() else {
            let err = StoreError::backend("command ran twice");
            self.result = Some(Err(err.clone()));
            return Ran::Failed(err);
        };
        // The connection is only borrowed by the command; after a panic `execute` rolls the
        // transaction back, so no half-done state outlives the unwinding.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| in_savepoint(conn, work))) {
            Ok(result) => {
                let ran = match &result {
                    Ok(_) => Ran::Ok,
                    Err(err) => Ran::Failed(err.clone()),
                };
                self.result = Some(result);
                ran
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".into());
                let err = StoreError::backend_in("a storage command panicked", message);
                self.result = Some(Err(err.clone()));
                Ran::Panicked(err)
            }
        }
    }

    fn fail(&mut self, err: StoreError) {
        if !matches!(self.result, Some(Err(_))) {
            self.result = Some(Err(err));
        }
    }

    fn reply(self: Box<Self>) {
        let result = self.result.unwrap_or_else(|| Err(StoreError::backend("command never ran")));
        // The caller may have given up (its future was dropped); nothing to do then.
        let _ = self.reply.send(result);
    }
}

fn in_savepoint<T>(conn: &Connection, work: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
    conn.prepare_cached("SAVEPOINT command").and_then(|mut s| s.execute([])).map_err(store_error)?;
    let result = work(conn).and_then(|value| {
        conn.prepare_cached("RELEASE command").and_then(|mut s| s.execute([]))?;
        Ok(value)
    });
    if result.is_err() && !conn.is_autocommit() {
        // Undo only this command. If SQLite already rolled back the whole transaction the
        // savepoint is gone with it; `execute` notices that and fails the batch's earlier commands.
        if let Err(undo) = conn.execute_batch("ROLLBACK TO command; RELEASE command") {
            // The command's partial effects must not be committed with the others: give up the
            // whole transaction instead (`execute` then fails the earlier commands too).
            tracing::error!(error = %undo, "could not roll back a failed command's savepoint");
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    result.map_err(store_error)
}

/// The thread's body: batches commands until the store is closed or dropped.
pub(super) fn run(conn: Connection, commands: Receiver<Msg>, stats: std::sync::Arc<WriterStats>) {
    let mut close_ack = None;
    // How many commands the last batch held: about how many callers are waiting on each commit.
    let mut last_batch = 1;
    while close_ack.is_none() {
        let first = match commands.recv() {
            Ok(Msg::Job(job)) => job,
            Ok(Msg::Close(ack)) => {
                close_ack = Some(ack);
                break;
            }
            // Every sender is gone: the store was dropped without `close`.
            Err(_) => break,
        };
        let mut batch = vec![first];
        let gather_until = Instant::now() + GATHER_WINDOW;
        while batch.len() < MAX_BATCH {
            let next = match commands.try_recv() {
                Ok(msg) => msg,
                Err(TryRecvError::Disconnected) => break,
                // The callers of the last batch are still waking up from its replies and sending
                // their next commands; wait a moment for them rather than commit a handful now
                // and make the rest wait a whole extra fsync.
                Err(TryRecvError::Empty) if batch.len() < last_batch => {
                    match commands.recv_timeout(gather_until.saturating_duration_since(Instant::now())) {
                        Ok(msg) => msg,
                        Err(_) => break,
                    }
                }
                Err(TryRecvError::Empty) => break,
            };
            match next {
                Msg::Job(job) => batch.push(job),
                Msg::Close(ack) => {
                    close_ack = Some(ack);
                    break;
                }
            }
        }
        last_batch = batch.len();
        stats.batch(batch.len());
        execute(&conn, &mut batch, &stats);
        for job in batch {
            job.reply();
        }
    }
    let closed = shut_down(conn);
    if let Some(ack) = close_ack {
        let _ = ack.send(closed);
    }
}

/// Runs one batch as one transaction (or several, if SQLite aborts one midway).
fn execute(conn: &Connection, batch: &mut [Box<dyn Job>], stats: &WriterStats) {
    // Index of the first command whose effects are in the currently open transaction.
    let mut open_from = 0;
    if let Err(err) = begin(conn) {
        fail_all(batch, &err);
        return;
    }
    for i in 0..batch.len() {
        if conn.is_autocommit() {
            if let Err(err) = begin(conn) {
                fail_all(&mut batch[i..], &err);
                return;
            }
            open_from = i;
        }
        let err = match batch[i].run(conn) {
            Ran::Ok => None,
            Ran::Failed(err) => Some(err),
            Ran::Panicked(err) => {
                tracing::error!(error = %err.chain(), "failing the batch of a panicking command");
                if !conn.is_autocommit() {
                    if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                        tracing::error!(error = %rollback, "rollback after a panic failed");
                    }
                }
                fail_all(batch, &err);
                return;
            }
        };
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back: earlier commands' effects are lost too.
            let err = err.unwrap_or_else(|| StoreError::backend("transaction rolled back by SQLite"));
            tracing::warn!(error = %err.chain(), "SQLite aborted a transaction; failing its commands");
            fail_all(&mut batch[open_from..i], &err);
            open_from = i + 1;
        }
    }
    if conn.is_autocommit() {
        return;
    }
    let commit_started = Instant::now();
    let committed = conn.prepare_cached("COMMIT").and_then(|mut s| s.execute([]));
    stats.commit(commit_started.elapsed());
    if let Err(err) = committed {
        let err = store_error(err);
        tracing::warn!(error = %err.chain(), commands = batch.len() - open_from, "commit failed");
        if !conn.is_autocommit() {
            if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %rollback, "rollback after a failed commit failed");
            }
        }
        fail_all(&mut batch[open_from..], &err);
    }
}

fn begin(conn: &Connection) -> StoreResult<()> {
    // IMMEDIATE takes the write lock up front, so a batch never fails halfway on SQLITE_BUSY.
    conn.prepare_cached("BEGIN IMMEDIATE").and_then(|mut s| s.execute([])).map(drop).map_err(store_error)
}

fn fail_all(jobs: &mut [Box<dyn Job>], err: &StoreError) {
    for job in jobs {
        job.fail(err.clone());
    }
}

/// Empties the WAL into the database file and closes the connection.
fn shut_down(conn: Connection) -> StoreResult<()> {
    // TRUNCATE leaves a zero-length WAL, so a closed store is a single self-contained file.
    // Failing here loses nothing (the WAL is replayed at the next open), so it is only logged.
    if let Err(err) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %err, "checkpoint at close failed");
    }
    conn.close().map_err(|(_, err)| store_error(err))
}

/// Classifies a SQLite error: a full disk (or a database at its size limit) is `Full`, which the
/// service reports as ServiceUnavailable and which clears once space is freed; anything else is
/// `Backend`. Either keeps the SQLite error as its cause.
pub(super) fn store_error(err: rusqlite::Error) -> StoreError {
    if err.sqlite_error_code() == Some(ErrorCode::DiskFull) {
        StoreError::full(err)
    } else {
        StoreError::backend(err)
    }
}
