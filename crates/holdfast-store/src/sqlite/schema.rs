//! Opening the database file: connection settings, the versioned schema, and the checks that
//! make a damaged file fail loudly instead of opening as an empty store.
//!
//! Invariants:
//! - `PRAGMA user_version` is the schema version. 0 means "nothing created yet" and is accepted
//!   only for a database with no tables; a version above `SCHEMA_VERSION` (a newer holdfast) is
//!   refused rather than misread.
//! - A new database is created as version 1 and then migrated, in the same transaction, exactly
//!   as an existing version-1 file is at open: there is one way to reach each version, so a migrated
//!   file and a new one cannot differ. Each migration runs in one transaction and sets
//!   `user_version` last, so a crash mid-migration leaves the old version, which migrates again.
//! - A file that exists is never silently replaced by a fresh store: a zero-length file with no
//!   WAL, a file that is not SQLite, a file shorter than its own header says, missing tables, or
//!   a failed integrity check all make `open` fail with the path and the reason.

use std::path::Path;

use holdfast_core::store::StoreError;

use super::Home;
use rusqlite::{Connection, OpenFlags};

/// The database file inside the data directory.
pub const DB_FILE: &str = "holdfast.db";

pub(super) const SCHEMA_VERSION: i64 = 8;

/// Databases up to this size get a full `PRAGMA quick_check` at open (it reads every page, about a
/// second per few hundred MiB). Larger ones get the structural checks at open, so a big store still
/// starts in bounded time, and the full check right after, in the background
/// (`SqliteStore::open`): damage found then makes the store unhealthy (`/health` answers 503).
pub(super) const QUICK_CHECK_MAX_BYTES: u64 = 256 << 20;

/// The schema, version 1 (holdfast 0.1: standard queues only). Kept verbatim: new databases
/// start from it, and tests build version-1 files with it to prove the migration.
///
/// - `queues.id` is AUTOINCREMENT so ids are never reused: a deleted and re-created queue is a
///   new queue. `message_count` is kept up to date by every insert and delete of messages so
///   counts need not scan the backlog. Attributes and tags are JSON objects of strings.
/// - `deleted_queues` remembers names for the recreate cooldown.
/// - `messages.seq` is AUTOINCREMENT: enqueue order, unique and never reused. `lease` holds the
///   u64 lease as i64 bits; NULL until the first receive, so a never-received message matches no
///   lease.
/// - `messages_by_visibility (queue_id, visible_at)` serves receive, next_visible_at and counts
///   as index range scans. Every index entry ends with the rowid, which is `seq`, so the index is
///   ordered by `(queue_id, visible_at, seq)` without storing `seq` twice.
/// - `messages_by_age (queue_id, sent_at)` makes retention expiry a range delete instead of a
///   scan; `sent_at` never changes, so it costs only on insert and delete.
pub(super) const SCHEMA_V1: &str = "
CREATE TABLE queues (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    attributes TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_modified_at INTEGER NOT NULL,
    last_purged_at INTEGER,
    message_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE deleted_queues (
    name TEXT PRIMARY KEY,
    deleted_at INTEGER NOT NULL
);
CREATE INDEX deleted_queues_by_time ON deleted_queues (deleted_at);
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_id INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes BLOB NOT NULL,
    system_attributes BLOB NOT NULL,
    group_id TEXT,
    dedup_id TEXT,
    sender_id TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    first_received_at INTEGER,
    lease INTEGER,
    leased_at INTEGER
);
CREATE INDEX messages_by_visibility ON messages (queue_id, visible_at);
CREATE INDEX messages_by_age ON messages (queue_id, sent_at);
";

/// Version 1 to 2: FIFO queues, dead-letter queues, message move tasks.
///
/// - `messages.dead_letter_source_arn`: the `DeadLetterQueueSourceArn` of a dead-lettered
///   message. A nullable column added with ALTER TABLE: existing rows read NULL, nothing is
///   rewritten, so the migration is instant however big the file.
/// - `messages_received (queue_id, receive_count) WHERE receive_count > 0`: the dead-letter
///   sweep (`dead_letter_exhausted`). It holds only received, undeleted messages, so the fresh
///   backlog is never in it, and it is ordered by receive count, so the sweep reads a range
///   starting at the exhausted messages: it reads what it moves plus exhausted ones still in
///   flight (few, bounded by what is in flight), not the received-but-not-exhausted messages a
///   `(queue_id, visible_at)` index would make it step over on every sweep. Its key changes only
///   when `receive_count` does, not with every visibility change. Cost: one entry written per
///   receive, removed with the message.
/// - `fifo_groups`: one row per message group that has messages (groups of standard queues too,
///   which are never read: fair-queue group ids, fair queues <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues.html>). `head_seq`/`head_visible_at` are the
///   group's lowest-seq message and its visibility; `ready` says the head was found visible by a
///   FIFO receive (1) or is to be checked (0). `fifo_groups_waiting` orders the 0s by visibility,
///   so a FIFO receive promotes the heads that became visible and finds the next time a group
///   opens (`next_visible_at`) by index range; `fifo_groups_ready` orders the 1s by head seq, so
///   it serves the available groups oldest first without stepping over locked ones. Head fields
///   may be NULL only inside the delete trigger, for a group whose last message just went.
/// - Triggers keep `fifo_groups` in step with every insert, delete and visibility change of a
///   grouped message, whatever statement makes it (send, receive, delete, purge, expiry, moves),
///   so no code path can forget it. Ungrouped messages, the standard hot path, pass their `WHEN`
///   and cost nothing more. A new message never becomes the head of an existing group (seqs only
///   grow); the head's visibility changing sends the group back to waiting; the head leaving
///   makes the group's next message (by `messages_by_group`) the head, or removes the group.
/// - `dedup_records`: FIFO deduplication ids per queue and scope (`rules::dedup_key`), kept until
///   `expires_at` whatever becomes of the message; `dedup_records_by_expiry` lets pruning read
///   only expired records.
/// - `receive_attempts`: FIFO ReceiveRequestAttemptIds, the `(seq, lease)` pairs a receive
///   returned as JSON, until `expires_at`.
/// - `move_tasks`: message move tasks; `id` (AUTOINCREMENT) is the insertion order that breaks
///   ties between tasks started in the same millisecond; an update keeps it.
const MIGRATION_V2: &str = "
ALTER TABLE messages ADD COLUMN dead_letter_source_arn TEXT;
CREATE INDEX messages_received ON messages (queue_id, receive_count) WHERE receive_count > 0;
CREATE INDEX messages_by_group ON messages (queue_id, group_id) WHERE group_id IS NOT NULL;
CREATE TABLE fifo_groups (
    queue_id INTEGER NOT NULL,
    group_id TEXT NOT NULL,
    head_seq INTEGER,
    head_visible_at INTEGER,
    ready INTEGER,
    PRIMARY KEY (queue_id, group_id)
) WITHOUT ROWID;
CREATE INDEX fifo_groups_waiting ON fifo_groups (queue_id, head_visible_at) WHERE ready = 0;
CREATE INDEX fifo_groups_ready ON fifo_groups (queue_id, head_seq) WHERE ready = 1;
INSERT INTO fifo_groups (queue_id, group_id, head_seq, head_visible_at, ready)
    SELECT queue_id, group_id, min(seq), visible_at, 0 FROM messages
    WHERE group_id IS NOT NULL GROUP BY queue_id, group_id;
CREATE TRIGGER fifo_group_insert AFTER INSERT ON messages WHEN NEW.group_id IS NOT NULL BEGIN
    INSERT INTO fifo_groups (queue_id, group_id, head_seq, head_visible_at, ready)
    VALUES (NEW.queue_id, NEW.group_id, NEW.seq, NEW.visible_at, 0)
    ON CONFLICT (queue_id, group_id) DO NOTHING;
END;
CREATE TRIGGER fifo_group_visibility AFTER UPDATE OF visible_at ON messages WHEN NEW.group_id IS NOT NULL BEGIN
    UPDATE fifo_groups SET head_visible_at = NEW.visible_at, ready = 0
    WHERE queue_id = NEW.queue_id AND group_id = NEW.group_id AND head_seq = NEW.seq;
END;
CREATE TRIGGER fifo_group_delete AFTER DELETE ON messages WHEN OLD.group_id IS NOT NULL BEGIN
    UPDATE fifo_groups SET (head_seq, head_visible_at, ready) = (
        SELECT seq, visible_at, 0 FROM messages INDEXED BY messages_by_group
        WHERE queue_id = OLD.queue_id AND group_id = OLD.group_id ORDER BY seq LIMIT 1)
    WHERE queue_id = OLD.queue_id AND group_id = OLD.group_id AND head_seq = OLD.seq;
    DELETE FROM fifo_groups WHERE queue_id = OLD.queue_id AND group_id = OLD.group_id AND head_seq IS NULL;
END;
CREATE TABLE dedup_records (
    queue_id INTEGER NOT NULL,
    scope TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (queue_id, scope, dedup_id)
) WITHOUT ROWID;
CREATE INDEX dedup_records_by_expiry ON dedup_records (expires_at);
CREATE TABLE receive_attempts (
    queue_id INTEGER NOT NULL,
    attempt_id TEXT NOT NULL,
    leases TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (queue_id, attempt_id)
) WITHOUT ROWID;
CREATE INDEX receive_attempts_by_expiry ON receive_attempts (expires_at);
CREATE TABLE move_tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    handle TEXT NOT NULL UNIQUE,
    source_queue INTEGER NOT NULL,
    source_arn TEXT NOT NULL,
    destination_arn TEXT,
    max_per_second INTEGER,
    status TEXT NOT NULL,
    moved INTEGER NOT NULL,
    to_move INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    failure_reason TEXT
);
CREATE INDEX move_tasks_by_source ON move_tasks (source_queue);
";

/// Version 3: each message keeps a digest of its contents, written at send time and checked at
/// delivery (`NULL` for messages sent before: they are delivered unchecked), and messages found
/// damaged are moved aside into `quarantined_messages`, raw, for an operator to look at, instead
/// of failing every receive of their queue.
const MIGRATION_V3: &str = "
ALTER TABLE messages ADD COLUMN digest BLOB;
CREATE TABLE quarantined_messages (
    seq INTEGER PRIMARY KEY,
    queue_id INTEGER NOT NULL,
    message_id BLOB,
    body BLOB,
    attributes BLOB,
    system_attributes BLOB,
    reason TEXT NOT NULL,
    quarantined_at INTEGER NOT NULL
);
";

/// Version 3 to 4: accounts. A queue belongs to an account and its name is unique within it, so
/// `queues` and `deleted_queues` are rebuilt with `account_id` in their keys (SQLite cannot drop
/// a UNIQUE constraint in place). Queues from before accounts go to the server's account, which
/// is where they were served from. `queues.id` keeps its values and its AUTOINCREMENT high-water
/// mark, so ids are still never reused.
fn migration_v4(home_account: &str) -> String {
    format!(
        "
CREATE TABLE queues_v4 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    attributes TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_modified_at INTEGER NOT NULL,
    last_purged_at INTEGER,
    message_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, name)
);
INSERT INTO queues_v4 (id, account_id, name, attributes, tags, created_at, last_modified_at, last_purged_at,
                       message_count)
    SELECT id, '{home_account}', name, attributes, tags, created_at, last_modified_at, last_purged_at, message_count
    FROM queues;
INSERT INTO sqlite_sequence (name, seq) SELECT 'queues_v4', seq FROM sqlite_sequence WHERE name = 'queues';
DROP TABLE queues;
ALTER TABLE queues_v4 RENAME TO queues;
CREATE TABLE deleted_queues_v4 (
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    deleted_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, name)
);
INSERT INTO deleted_queues_v4 SELECT '{home_account}', name, deleted_at FROM deleted_queues;
DROP TABLE deleted_queues;
ALTER TABLE deleted_queues_v4 RENAME TO deleted_queues;
CREATE INDEX deleted_queues_by_time ON deleted_queues (deleted_at);
"
    )
}

/// Version 4 to 5: FIFO groups are served in the order they became available, as AWS serves
/// them, not oldest head first. A group's `head_visible_at` is the moment its head became
/// visible (sent, or its lock ended), and it does not change while the group is ready, so the
/// ready index orders by it, head seq breaking ties: a group whose messages return after a
/// visibility timeout queues behind the groups that were waiting meanwhile.
const MIGRATION_V5: &str = "
DROP INDEX fifo_groups_ready;
CREATE INDEX fifo_groups_ready ON fifo_groups (queue_id, head_visible_at, head_seq) WHERE ready = 1;
";

/// Version 5 to 6: regions. A queue's name is unique within its account and region, as on AWS,
/// so `queues` and `deleted_queues` are rebuilt with `region` in their keys, as version 4 did
/// for accounts. Queues from before regions go to the server's region, where they were served.
fn migration_v6(home_region: &str) -> String {
    format!(
        "
CREATE TABLE queues_v6 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    attributes TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_modified_at INTEGER NOT NULL,
    last_purged_at INTEGER,
    message_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, region, name)
);
INSERT INTO queues_v6 (id, account_id, region, name, attributes, tags, created_at, last_modified_at,
                       last_purged_at, message_count)
    SELECT id, account_id, '{home_region}', name, attributes, tags, created_at, last_modified_at, last_purged_at,
           message_count
    FROM queues;
INSERT INTO sqlite_sequence (name, seq) SELECT 'queues_v6', seq FROM sqlite_sequence WHERE name = 'queues';
DROP TABLE queues;
ALTER TABLE queues_v6 RENAME TO queues;
CREATE TABLE deleted_queues_v6 (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    deleted_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, name)
);
INSERT INTO deleted_queues_v6 SELECT account_id, '{home_region}', name, deleted_at FROM deleted_queues;
DROP TABLE deleted_queues;
ALTER TABLE deleted_queues_v6 RENAME TO deleted_queues;
CREATE INDEX deleted_queues_by_time ON deleted_queues (deleted_at);
"
    )
}

/// Version 6 to 7: fair queues. A fair receive takes a tenant's visible messages by
/// `messages_by_group_visibility` (a group's visible messages first, oldest visibility first),
/// so it never steps over a noisy tenant's backlog to find a quiet one's. Grouped messages only:
/// ungrouped standard messages, the common case, pay nothing for it.
const MIGRATION_V7: &str = "
CREATE INDEX messages_by_group_visibility ON messages (queue_id, group_id, visible_at) WHERE group_id IS NOT NULL;
";

/// Version 7 to 8: per-queue metrics by the minute (`holdfast_core::queue_metrics`). Rows are
/// keyed by queue name, not id, so a re-created queue continues its series as on CloudWatch;
/// `metric_queues` keeps one row per queue so ListMetrics does not scan the minutes. A NULL
/// `visible` is a minute whose gauges were not sampled; a NULL `noisy_groups`, one of a queue
/// that was not fair.
const MIGRATION_V8: &str = "
CREATE TABLE queue_minutes (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    queue TEXT NOT NULL,
    minute INTEGER NOT NULL,
    visible INTEGER,
    not_visible INTEGER,
    delayed INTEGER,
    oldest_age INTEGER,
    noisy_groups INTEGER,
    quiet_visible INTEGER,
    quiet_not_visible INTEGER,
    quiet_delayed INTEGER,
    quiet_oldest_age INTEGER,
    sent INTEGER NOT NULL,
    received INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    empty_receives INTEGER NOT NULL,
    size_count INTEGER NOT NULL,
    size_sum REAL NOT NULL,
    size_min REAL NOT NULL,
    size_max REAL NOT NULL,
    size_buckets BLOB NOT NULL,
    PRIMARY KEY (account, region, queue, minute)
) WITHOUT ROWID;
CREATE INDEX queue_minutes_by_minute ON queue_minutes (minute);
CREATE TABLE metric_queues (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    queue TEXT NOT NULL,
    last_minute INTEGER NOT NULL,
    fair INTEGER NOT NULL,
    PRIMARY KEY (account, region, queue)
) WITHOUT ROWID;
CREATE INDEX metric_queues_by_minute ON metric_queues (last_minute);
";

/// Schema objects `verify` insists on, per version.
const V1_OBJECTS: &[&str] =
    &["queues", "deleted_queues", "deleted_queues_by_time", "messages", "messages_by_visibility", "messages_by_age"];
const V3_OBJECTS: &[&str] = &["quarantined_messages"];
const V7_OBJECTS: &[&str] = &["messages_by_group_visibility"];
const V8_OBJECTS: &[&str] = &["queue_minutes", "queue_minutes_by_minute", "metric_queues", "metric_queues_by_minute"];
const V2_OBJECTS: &[&str] = &[
    "messages_received",
    "messages_by_group",
    "fifo_groups",
    "fifo_groups_waiting",
    "fifo_groups_ready",
    "fifo_group_insert",
    "fifo_group_visibility",
    "fifo_group_delete",
    "dedup_records",
    "dedup_records_by_expiry",
    "receive_attempts",
    "receive_attempts_by_expiry",
    "move_tasks",
];

/// Opens (creating if needed) `dir/holdfast.db`, ready for the writer thread.
/// Opens the database; `quick_check_max_bytes` is the largest file checked in full here.
/// Queues from before accounts (schema 3 and older) and regions (5 and older) are given to `home`.
pub(super) fn open(dir: &Path, quick_check_max_bytes: u64, home: &Home<'_>) -> Result<Connection, StoreError> {
    let home_account = home.account;
    std::fs::create_dir_all(dir)
        .map_err(|e| StoreError::backend_in(format!("cannot create data directory {}", dir.display()), e))?;
    let path = dir.join(DB_FILE);
    let fail = |reason: String| StoreError::backend_in(format!("cannot open {}", path.display()), reason);
    // The account is written into the migration's SQL, so it must be what account ids are.
    if home_account.is_empty() || !home_account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail(format!("the account id {home_account:?} is not a number")));
    }
    if !holdfast_core::names::is_region(home.region) {
        return Err(fail(format!("{:?} is not a region name", home.region)));
    }
    let existed = check_file(&path).map_err(fail)?;
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| fail(e.to_string()))?;
    // Everything that decides whether the file is ours only reads it: a file we refuse must be
    // left byte for byte as we found it, so WAL mode is switched on only after these checks.
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| fail(e.to_string()))?;
    match version {
        0 => {
            let tables: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
                .map_err(|e| fail(e.to_string()))?;
            if existed && tables > 0 {
                return Err(fail("the file is a SQLite database but not a holdfast one (user_version 0)".into()));
            }
        }
        1..=SCHEMA_VERSION => verify(&conn, &path, V1_OBJECTS, quick_check_max_bytes).map_err(fail)?,
        v if v > SCHEMA_VERSION => {
            return Err(fail(format!(
                "schema version {v} was written by a newer holdfast (this one knows {SCHEMA_VERSION})"
            )))
        }
        v => return Err(fail(format!("unknown schema version {v}"))),
    }
    configure(&conn).map_err(fail)?;
    match version {
        0 => create(&conn, existed).map_err(fail)?,
        1..=7 => {
            if version == 1 {
                migrate(&conn, MIGRATION_V2, 2)
                    .map_err(|e| fail(format!("cannot migrate from schema version 1: {e}")))?;
            }
            check_objects(&conn, V2_OBJECTS).map_err(fail)?;
            if version <= 2 {
                migrate(&conn, MIGRATION_V3, 3)
                    .map_err(|e| fail(format!("cannot migrate from schema version 2: {e}")))?;
            }
            check_objects(&conn, V3_OBJECTS).map_err(fail)?;
            if version <= 3 {
                migrate(&conn, &migration_v4(home_account), 4)
                    .map_err(|e| fail(format!("cannot migrate from schema version 3: {e}")))?;
            }
            check_objects(&conn, V1_OBJECTS).map_err(fail)?;
            if version <= 4 {
                migrate(&conn, MIGRATION_V5, 5)
                    .map_err(|e| fail(format!("cannot migrate from schema version 4: {e}")))?;
                check_objects(&conn, V2_OBJECTS).map_err(fail)?;
            }
            if version <= 5 {
                migrate(&conn, &migration_v6(home.region), 6)
                    .map_err(|e| fail(format!("cannot migrate from schema version 5: {e}")))?;
                check_objects(&conn, V1_OBJECTS).map_err(fail)?;
            }
            if version <= 6 {
                migrate(&conn, MIGRATION_V7, 7)
                    .map_err(|e| fail(format!("cannot migrate from schema version 6: {e}")))?;
                check_objects(&conn, V7_OBJECTS).map_err(fail)?;
            }
            migrate(&conn, MIGRATION_V8, 8).map_err(|e| fail(format!("cannot migrate from schema version 7: {e}")))?;
            check_objects(&conn, V8_OBJECTS).map_err(fail)?;
            tracing::info!(path = %path.display(), from = version, to = SCHEMA_VERSION, "migrated the database");
        }
        _ => {
            check_objects(&conn, V2_OBJECTS).map_err(fail)?;
            check_objects(&conn, V3_OBJECTS).map_err(fail)?;
            check_objects(&conn, V7_OBJECTS).map_err(fail)?;
            check_objects(&conn, V8_OBJECTS).map_err(fail)?;
        }
    }
    Ok(conn)
}

/// Returns whether the file already exists, refusing a zero-length one (SQLite would open it as
/// an empty database) and a WAL without its database. (A fresh store is checkpointed at creation, so its file is never empty;
/// while the WAL still holds data an empty main file is legitimate.)
fn check_file(path: &Path) -> Result<bool, String> {
    let wal_len = std::fs::metadata(path.with_extension("db-wal")).map(|m| m.len()).unwrap_or(0);
    let len = match std::fs::metadata(path) {
        Ok(meta) => meta.len(),
        // SQLite would replay a leftover WAL into a new, otherwise empty database.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && wal_len > 0 => {
            return Err("the file is missing but its WAL is not; restore the file or remove the WAL".into())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.to_string()),
    };
    if len == 0 && wal_len == 0 {
        return Err("the file is empty (truncated?); move it away to start with an empty store".into());
    }
    Ok(true)
}

fn configure(conn: &Connection) -> Result<(), String> {
    // WAL: readers never block the writer, and a commit appends to one file. synchronous=FULL
    // fsyncs the WAL at every commit, so an acknowledged call survives power loss, not only a
    // process crash (NORMAL would not).
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("could not enable WAL mode (got {mode})"));
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = OFF;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;",
    )
    .map_err(|e| e.to_string())?;
    // Another process holding the file (a second server on the same directory) is waited for
    // briefly, then reported, rather than failing at the first contention.
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| e.to_string())?;
    // Room for every statement the engine prepares, so the hot paths never re-prepare.
    conn.set_prepared_statement_cache_capacity(128);
    Ok(())
}

fn create(conn: &Connection, existed: bool) -> Result<(), String> {
    let tables: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    if existed && tables > 0 {
        return Err("the file is a SQLite database but not a holdfast one (user_version 0)".into());
    }
    conn.execute_batch(&format!(
        "BEGIN; {SCHEMA_V1} {MIGRATION_V2} {MIGRATION_V3} {} {MIGRATION_V5} {} {MIGRATION_V7} {MIGRATION_V8} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;",
        migration_v4("0"),
        migration_v6("us-east-1")
    ))
    .map_err(|e| {
        rollback(conn);
        format!("cannot create the schema: {e}")
    })?;
    // Move the schema out of the WAL at once, so the main file is never empty (`check_file`).
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(|e| e.to_string())
}

/// Runs one migration in its own transaction, ending with the new `user_version`.
fn migrate(conn: &Connection, migration: &str, version: i64) -> Result<(), String> {
    conn.execute_batch(&format!("BEGIN IMMEDIATE; {migration} PRAGMA user_version = {version}; COMMIT;")).map_err(
        |e| {
            rollback(conn);
            e.to_string()
        },
    )?;
    // As at creation: leave the main file complete, not the migration in the WAL.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(|e| e.to_string())
}

/// Undoes a half-run schema batch (`execute_batch` stops at the failing statement, inside the
/// transaction). Failing here means there was no transaction left to undo.
fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

fn check_objects(conn: &Connection, objects: &[&str]) -> Result<(), String> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'index', 'trigger')")
        .map_err(|e| e.to_string())?;
    let present: Vec<String> =
        stmt.query_map([], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(|e| e.to_string())?;
    if let Some(missing) = objects.iter().find(|o| !present.iter().any(|p| p == *o)) {
        return Err(format!("the schema lacks `{missing}`; the file is damaged"));
    }
    Ok(())
}

fn verify(conn: &Connection, path: &Path, objects: &[&str], quick_check_max_bytes: u64) -> Result<(), String> {
    check_objects(conn, objects)?;
    // Fold the WAL into the main file so the file alone can be measured against its header.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(|e| format!("cannot checkpoint the WAL: {e}"))?;
    let pages: u64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    let page_size: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len < pages * page_size {
        return Err(format!("the file holds {len} bytes but its header says {} (truncated?)", pages * page_size));
    }
    if len <= quick_check_max_bytes {
        let verdict: String = conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0)).map_err(|e| e.to_string())?;
        if verdict != "ok" {
            return Err(format!("integrity check failed: {verdict}"));
        }
    } else {
        // Too big to read whole at startup: at least walk to both ends of the main b-trees.
        conn.query_row("SELECT max(seq), min(seq) FROM messages", [], |_| Ok(()))
            .and_then(|_| conn.query_row("SELECT max(id), count(*) FROM queues", [], |_| Ok(())))
            .map_err(|e| format!("cannot read the database: {e}"))?;
    }
    Ok(())
}
