//! The SQL of each `Store` call, run by the writer thread inside the call's savepoint.
//!
//! Every function here is one call's whole effect; the writer makes it atomic (savepoint) and
//! durable (the batch's commit). Hot-path statements use `prepare_cached`, so under load SQLite
//! only binds and steps them.
//!
//! Invariants:
//! - `queues.message_count` changes in the same savepoint as every message insert or delete
//!   (`adjust_count`), so `queue_counts` can derive the visible count without scanning it.
//! - A message is touched by delete or change-visibility only through `(seq, queue_id, lease)`,
//!   so neither a stale lease nor a lease of another queue reaches it.
//! - Receive reads `messages_by_visibility` from its start and stops after `max_messages` live
//!   messages: its cost follows what it returns, never the backlog.

use std::collections::BTreeMap;

use holdfast_core::store::{
    ChangeVisibility, ChangeVisibilityOutcome, CreateQueueOutcome, DeleteOutcome, Lease, Millis, NewMessage,
    PurgeOutcome, QueueCounts, QueueId, QueueRecord, ReceiveOutcome, ReceiveParams, StoredMessage,
};
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Result, Row};

use crate::rules::{merge_attributes, visibility_outcome};

const QUEUE_COLUMNS: &str = "id, name, attributes, tags, created_at, last_modified_at";

fn queue_from_row(row: &Row<'_>) -> Result<QueueRecord> {
    Ok(QueueRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        attributes: from_json(row, 2)?,
        tags: from_json(row, 3)?,
        created_at: row.get(4)?,
        last_modified_at: row.get(5)?,
    })
}

fn from_json(row: &Row<'_>, column: usize) -> Result<BTreeMap<String, String>> {
    let text: String = row.get(column)?;
    serde_json::from_str(&text).map_err(|e| rusqlite::Error::FromSqlConversionFailure(column, Type::Text, Box::new(e)))
}

fn to_json(map: &BTreeMap<String, String>) -> Result<String> {
    serde_json::to_string(map).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Leases are random u64s; SQLite integers are i64. The bits are stored unchanged, and only ever
/// compared for equality, so the sign never matters.
fn lease_to_sql(lease: u64) -> i64 {
    lease as i64
}

fn queue_exists(conn: &Connection, queue: QueueId) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM queues WHERE id = ?1")?.exists([queue])
}

/// Keeps `message_count` in step with inserts and deletes. Returns false if the queue is gone.
fn adjust_count(conn: &Connection, queue: QueueId, delta: i64) -> Result<bool> {
    let changed = conn
        .prepare_cached("UPDATE queues SET message_count = message_count + ?2 WHERE id = ?1")?
        .execute(params![queue, delta])?;
    Ok(changed == 1)
}

pub(super) fn create_queue(
    conn: &Connection,
    name: &str,
    attributes: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    now: Millis,
    recreate_cooldown_ms: i64,
) -> Result<CreateQueueOutcome> {
    if let Some(record) = get_queue(conn, name)? {
        return Ok(CreateQueueOutcome::Exists(record));
    }
    // Names deleted before the cooldown window can no longer block anything; dropping them here
    // keeps the table as small as the number of recent deletions.
    conn.prepare_cached("DELETE FROM deleted_queues WHERE deleted_at <= ?1")?.execute([now - recreate_cooldown_ms])?;
    if conn.prepare_cached("SELECT 1 FROM deleted_queues WHERE name = ?1")?.exists([name])? {
        return Ok(CreateQueueOutcome::DeletedRecently);
    }
    conn.prepare_cached(
        "INSERT INTO queues (name, attributes, tags, created_at, last_modified_at) VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute(params![name, to_json(&attributes)?, to_json(&tags)?, now])?;
    Ok(CreateQueueOutcome::Created(QueueRecord {
        id: conn.last_insert_rowid(),
        name: name.to_owned(),
        attributes,
        tags,
        created_at: now,
        last_modified_at: now,
    }))
}

pub(super) fn get_queue(conn: &Connection, name: &str) -> Result<Option<QueueRecord>> {
    conn.prepare_cached(&format!("SELECT {QUEUE_COLUMNS} FROM queues WHERE name = ?1"))?
        .query_row([name], queue_from_row)
        .optional()
}

pub(super) fn list_queues(
    conn: &Connection,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<QueueRecord>> {
    // Names compare as bytes in SQLite (BINARY collation) and in Rust, so both engines page in
    // the same order. The range starts at the prefix (or just after `after`) and the rows stop
    // being read at the first name without the prefix.
    let mut stmt;
    let rows = match after {
        Some(after) if after >= prefix => {
            stmt = conn.prepare_cached(&format!("SELECT {QUEUE_COLUMNS} FROM queues WHERE name > ?1 ORDER BY name"))?;
            stmt.query([after])?
        }
        _ => {
            stmt =
                conn.prepare_cached(&format!("SELECT {QUEUE_COLUMNS} FROM queues WHERE name >= ?1 ORDER BY name"))?;
            stmt.query([prefix])?
        }
    };
    let mut rows = rows.mapped(queue_from_row);
    let mut queues = Vec::new();
    while queues.len() < limit {
        match rows.next().transpose()? {
            Some(queue) if queue.name.starts_with(prefix) => queues.push(queue),
            _ => break,
        }
    }
    Ok(queues)
}

/// Deletes the queue and its messages in one statement each. A queue with millions of messages
/// makes this one long transaction that holds up the writer; acceptable for now.
pub(super) fn delete_queue(conn: &Connection, queue: QueueId, now: Millis) -> Result<bool> {
    let name: Option<String> = conn
        .prepare_cached("DELETE FROM queues WHERE id = ?1 RETURNING name")?
        .query_row([queue], |r| r.get(0))
        .optional()?;
    let Some(name) = name else {
        return Ok(false);
    };
    conn.prepare_cached("DELETE FROM messages WHERE queue_id = ?1")?.execute([queue])?;
    conn.prepare_cached("INSERT OR REPLACE INTO deleted_queues (name, deleted_at) VALUES (?1, ?2)")?
        .execute(params![name, now])?;
    Ok(true)
}

/// Reads one of the queue's JSON maps, lets `change` edit it, writes it back. `extra` runs on the
/// same row (e.g. setting `last_modified_at`). False if the queue does not exist.
fn edit_map(
    conn: &Connection,
    queue: QueueId,
    column: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>),
    extra: Option<Millis>,
) -> Result<bool> {
    let current: Option<String> = conn
        .prepare_cached(&format!("SELECT {column} FROM queues WHERE id = ?1"))?
        .query_row([queue], |r| r.get(0))
        .optional()?;
    let Some(current) = current else {
        return Ok(false);
    };
    let mut map: BTreeMap<String, String> = serde_json::from_str(&current)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, Type::Text, Box::new(e)))?;
    change(&mut map);
    match extra {
        Some(now) => conn
            .prepare_cached(&format!("UPDATE queues SET {column} = ?2, last_modified_at = ?3 WHERE id = ?1"))?
            .execute(params![queue, to_json(&map)?, now])?,
        None => conn
            .prepare_cached(&format!("UPDATE queues SET {column} = ?2 WHERE id = ?1"))?
            .execute(params![queue, to_json(&map)?])?,
    };
    Ok(true)
}

pub(super) fn set_queue_attributes(
    conn: &Connection,
    queue: QueueId,
    attributes: BTreeMap<String, String>,
    now: Millis,
) -> Result<bool> {
    edit_map(conn, queue, "attributes", |current| merge_attributes(current, attributes), Some(now))
}

pub(super) fn tag_queue(conn: &Connection, queue: QueueId, tags: BTreeMap<String, String>) -> Result<bool> {
    edit_map(conn, queue, "tags", |current| current.extend(tags), None)
}

pub(super) fn untag_queue(conn: &Connection, queue: QueueId, keys: Vec<String>) -> Result<bool> {
    edit_map(
        conn,
        queue,
        "tags",
        |current| {
            for key in &keys {
                current.remove(key);
            }
        },
        None,
    )
}

pub(super) fn purge_queue(
    conn: &Connection,
    queue: QueueId,
    now: Millis,
    cooldown_ms: i64,
) -> Result<Option<PurgeOutcome>> {
    let last_purged_at: Option<Option<Millis>> = conn
        .prepare_cached("SELECT last_purged_at FROM queues WHERE id = ?1")?
        .query_row([queue], |r| r.get(0))
        .optional()?;
    let Some(last_purged_at) = last_purged_at else {
        return Ok(None);
    };
    if last_purged_at.is_some_and(|at| now - at < cooldown_ms) {
        return Ok(Some(PurgeOutcome::InProgress));
    }
    let removed = conn.prepare_cached("DELETE FROM messages WHERE queue_id = ?1")?.execute([queue])?;
    conn.prepare_cached("UPDATE queues SET last_purged_at = ?2, message_count = 0 WHERE id = ?1")?
        .execute(params![queue, now])?;
    Ok(Some(PurgeOutcome::Purged { removed: removed as u64 }))
}

pub(super) fn queue_counts(conn: &Connection, queue: QueueId, now: Millis) -> Result<QueueCounts> {
    let total: Option<i64> = conn
        .prepare_cached("SELECT message_count FROM queues WHERE id = ?1")?
        .query_row([queue], |r| r.get(0))
        .optional()?;
    let Some(total) = total else {
        return Ok(QueueCounts::default());
    };
    // Only the hidden messages (in flight or delayed) are counted by scanning; the visible ones
    // are the rest of the total, so a deep backlog costs nothing here.
    let (hidden, in_flight): (i64, i64) = conn
        .prepare_cached(
            "SELECT count(*), coalesce(sum(receive_count > 0), 0) FROM messages
             WHERE queue_id = ?1 AND visible_at > ?2",
        )?
        .query_row(params![queue, now], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(QueueCounts {
        visible: (total - hidden).max(0) as u64,
        in_flight: in_flight as u64,
        delayed: (hidden - in_flight) as u64,
    })
}

pub(super) fn send_messages(conn: &Connection, queue: QueueId, messages: Vec<NewMessage>) -> Result<Option<Vec<i64>>> {
    // Counting first doubles as the existence check: no row updated, no queue.
    if !adjust_count(conn, queue, messages.len() as i64)? {
        return Ok(None);
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO messages (queue_id, message_id, body, attributes, system_attributes, group_id, dedup_id,
                               sender_id, sent_at, visible_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let mut seqs = Vec::with_capacity(messages.len());
    for m in messages {
        insert.execute(params![
            queue,
            m.message_id,
            m.body,
            m.attributes,
            m.system_attributes,
            m.group_id,
            m.deduplication_id,
            m.sender_id,
            m.sent_at,
            m.visible_at,
        ])?;
        seqs.push(conn.last_insert_rowid());
    }
    Ok(Some(seqs))
}

pub(super) fn receive_messages(conn: &Connection, queue: QueueId, p: ReceiveParams) -> Result<Option<ReceiveOutcome>> {
    if !queue_exists(conn, queue)? {
        return Ok(None);
    }
    let cutoff = p.now - p.retention_ms;
    let mut chosen = Vec::new();
    let mut expired = Vec::new();
    {
        let mut select = conn.prepare_cached(
            "SELECT seq, sent_at FROM messages WHERE queue_id = ?1 AND visible_at <= ?2 ORDER BY visible_at, seq",
        )?;
        let mut rows = select.query(params![queue, p.now])?;
        while chosen.len() < p.max_messages {
            let Some(row) = rows.next()? else { break };
            let (seq, sent_at): (i64, Millis) = (row.get(0)?, row.get(1)?);
            if sent_at < cutoff {
                expired.push(seq);
            } else {
                chosen.push(seq);
            }
        }
    }
    if !expired.is_empty() {
        let mut delete = conn.prepare_cached("DELETE FROM messages WHERE seq = ?1")?;
        for &seq in &expired {
            delete.execute([seq])?;
        }
        adjust_count(conn, queue, -(expired.len() as i64))?;
    }
    let mut lease_stmt = conn.prepare_cached(
        "UPDATE messages
         SET visible_at = ?2, receive_count = receive_count + 1,
             first_received_at = coalesce(first_received_at, ?3), lease = ?4, leased_at = ?3
         WHERE seq = ?1
         RETURNING message_id, body, attributes, system_attributes, group_id, dedup_id, sender_id, sent_at,
                   receive_count, first_received_at",
    )?;
    let visible_at = p.now + p.visibility_timeout_ms;
    let mut messages = Vec::with_capacity(chosen.len());
    for seq in chosen {
        let lease = rand::random::<u64>();
        let message = lease_stmt.query_row(params![seq, visible_at, p.now, lease_to_sql(lease)], |r| {
            Ok(StoredMessage {
                seq,
                message_id: r.get(0)?,
                body: r.get(1)?,
                attributes: r.get(2)?,
                system_attributes: r.get(3)?,
                group_id: r.get(4)?,
                deduplication_id: r.get(5)?,
                sender_id: r.get(6)?,
                sent_at: r.get(7)?,
                receive_count: r.get(8)?,
                first_received_at: r.get(9)?,
                lease,
                dead_letter_source_arn: None,
            })
        })?;
        messages.push(message);
    }
    messages.sort_by_key(|m| m.seq);
    let next_visible_at = conn
        .prepare_cached("SELECT min(visible_at) FROM messages WHERE queue_id = ?1 AND visible_at > ?2")?
        .query_row(params![queue, p.now], |r| r.get(0))?;
    Ok(Some(ReceiveOutcome { messages, next_visible_at, dead_lettered: 0 }))
}

pub(super) fn delete_messages(
    conn: &Connection,
    queue: QueueId,
    leases: Vec<Lease>,
) -> Result<Option<Vec<DeleteOutcome>>> {
    if !queue_exists(conn, queue)? {
        return Ok(None);
    }
    let mut delete = conn.prepare_cached("DELETE FROM messages WHERE seq = ?1 AND queue_id = ?2 AND lease = ?3")?;
    let mut outcomes = Vec::with_capacity(leases.len());
    let mut deleted = 0;
    for lease in leases {
        if delete.execute(params![lease.seq, queue, lease_to_sql(lease.lease)])? == 1 {
            deleted += 1;
            outcomes.push(DeleteOutcome::Deleted);
        } else {
            outcomes.push(DeleteOutcome::NotCurrent);
        }
    }
    if deleted > 0 {
        adjust_count(conn, queue, -deleted)?;
    }
    Ok(Some(outcomes))
}

pub(super) fn change_visibility(
    conn: &Connection,
    queue: QueueId,
    changes: Vec<ChangeVisibility>,
    now: Millis,
    max_inflight_ms: i64,
) -> Result<Option<Vec<ChangeVisibilityOutcome>>> {
    if !queue_exists(conn, queue)? {
        return Ok(None);
    }
    let mut select = conn
        .prepare_cached("SELECT visible_at, leased_at FROM messages WHERE seq = ?1 AND queue_id = ?2 AND lease = ?3")?;
    let mut update = conn.prepare_cached("UPDATE messages SET visible_at = ?2 WHERE seq = ?1")?;
    let mut outcomes = Vec::with_capacity(changes.len());
    for change in changes {
        let Lease { seq, lease } = change.lease;
        let found: Option<(Millis, Millis)> =
            select.query_row(params![seq, queue, lease_to_sql(lease)], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        let Some((visible_at, leased_at)) = found else {
            outcomes.push(ChangeVisibilityOutcome::NotCurrent);
            continue;
        };
        let new_visible_at = now + change.visibility_timeout_ms;
        let outcome = visibility_outcome(visible_at, leased_at, new_visible_at, now, max_inflight_ms);
        if outcome == ChangeVisibilityOutcome::Changed {
            update.execute(params![seq, new_visible_at])?;
        }
        outcomes.push(outcome);
    }
    Ok(Some(outcomes))
}

pub(super) fn expire_messages(conn: &Connection, retention_ms: &[(QueueId, i64)], now: Millis) -> Result<u64> {
    let mut delete = conn.prepare_cached("DELETE FROM messages WHERE queue_id = ?1 AND sent_at < ?2")?;
    let mut removed = 0;
    for &(queue, retention) in retention_ms {
        let n = delete.execute(params![queue, now - retention])?;
        if n > 0 {
            adjust_count(conn, queue, -(n as i64))?;
            removed += n as u64;
        }
    }
    Ok(removed)
}
