//! Opening the database file: connection settings, the versioned schema, and the checks that
//! make a damaged file fail loudly instead of opening as an empty store.
//!
//! Invariants:
//! - `PRAGMA user_version` is the schema version. 0 means "nothing created yet" and is accepted
//!   only for a database with no tables; a version above `SCHEMA_VERSION` (a newer holdfast) is
//!   refused rather than misread.
//! - A file that exists is never silently replaced by a fresh store: a zero-length file with no
//!   WAL, a file that is not SQLite, a file shorter than its own header says, missing tables, or
//!   a failed integrity check all make `open` fail with the path and the reason.

use std::path::Path;

use holdfast_core::store::StoreError;
use rusqlite::{Connection, OpenFlags};

/// The database file inside the data directory.
pub const DB_FILE: &str = "holdfast.db";

pub(super) const SCHEMA_VERSION: i64 = 1;

/// Databases up to this size get a full `PRAGMA quick_check` at open (it reads every page, about a
/// second per few hundred MiB). Larger ones get the structural checks only, so a big store still
/// starts in bounded time.
const QUICK_CHECK_MAX_BYTES: u64 = 256 << 20;

/// The schema, version 1.
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
const SCHEMA_V1: &str = "
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

/// Tables and indexes `verify` insists on.
const SCHEMA_OBJECTS: [&str; 6] =
    ["queues", "deleted_queues", "deleted_queues_by_time", "messages", "messages_by_visibility", "messages_by_age"];

/// Opens (creating if needed) `dir/holdfast.db`, ready for the writer thread.
pub(super) fn open(dir: &Path) -> Result<Connection, StoreError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| StoreError::Backend(format!("cannot create data directory {}: {e}", dir.display())))?;
    let path = dir.join(DB_FILE);
    let fail = |reason: String| StoreError::Backend(format!("cannot open {}: {reason}", path.display()));
    let existed = check_file(&path).map_err(fail)?;
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| fail(e.to_string()))?;
    configure(&conn).map_err(fail)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| fail(e.to_string()))?;
    match version {
        0 => create(&conn, existed).map_err(fail)?,
        SCHEMA_VERSION => verify(&conn, &path).map_err(fail)?,
        v if v > SCHEMA_VERSION => {
            return Err(fail(format!(
                "schema version {v} was written by a newer holdfast (this one knows {SCHEMA_VERSION})"
            )))
        }
        v => return Err(fail(format!("unknown schema version {v}"))),
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
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

fn create(conn: &Connection, existed: bool) -> Result<(), String> {
    let tables: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    if existed && tables > 0 {
        return Err("the file is a SQLite database but not a holdfast one (user_version 0)".into());
    }
    conn.execute_batch(&format!("BEGIN; {SCHEMA_V1} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"))
        .map_err(|e| format!("cannot create the schema: {e}"))?;
    // Move the schema out of the WAL at once, so the main file is never empty (`check_file`).
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(|e| e.to_string())
}

fn verify(conn: &Connection, path: &Path) -> Result<(), String> {
    let mut stmt =
        conn.prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'index')").map_err(|e| e.to_string())?;
    let present: Vec<String> =
        stmt.query_map([], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(|e| e.to_string())?;
    if let Some(missing) = SCHEMA_OBJECTS.iter().find(|o| !present.iter().any(|p| p == *o)) {
        return Err(format!("the schema lacks `{missing}`; the file is damaged"));
    }
    // Fold the WAL into the main file so the file alone can be measured against its header.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(|e| format!("cannot checkpoint the WAL: {e}"))?;
    let pages: u64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    let page_size: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len < pages * page_size {
        return Err(format!("the file holds {len} bytes but its header says {} (truncated?)", pages * page_size));
    }
    if len <= QUICK_CHECK_MAX_BYTES {
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
