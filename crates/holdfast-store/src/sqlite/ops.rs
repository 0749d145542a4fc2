//! The SQL of each `Store` call, run by the writer thread inside the call's savepoint.
//!
//! Every function here is one call's whole effect; the writer makes it atomic (savepoint) and
//! durable (the batch's commit). Hot-path statements use `prepare_cached`, so under load SQLite
//! only binds and steps them.
//!
//! This module holds queues, sends, delete, change-visibility and expiry; `receive` holds
//! receive (standard, FIFO, attempts, dead-lettering), `moves` the dead-letter sweep, message
//! moves and move tasks.
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
    ChangeVisibility, ChangeVisibilityOutcome, CreateQueueOutcome, Deduplication, DeleteOutcome, ExpiryOutcome,
    GroupLoad, Lease, Millis, NewMessage, PurgeOutcome, QueueCounts, QueueId, QueueRecord, Sent,
};
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Result, Row};

use crate::rules::{
    content_digest, dedup_key, delete_verdict, is_live, merge_attributes, visibility_outcome, PRUNE_PER_CALL,
};

const QUEUE_COLUMNS: &str = "id, account_id, region, name, attributes, tags, created_at, last_modified_at";

fn queue_from_row(row: &Row<'_>) -> Result<QueueRecord> {
    Ok(QueueRecord::new(
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        from_json(row, 4)?,
        from_json(row, 5)?,
        row.get(6)?,
        row.get(7)?,
    ))
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
pub(super) fn lease_to_sql(lease: u64) -> i64 {
    lease as i64
}

pub(super) fn queue_exists(conn: &Connection, queue: QueueId) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM queues WHERE id = ?1")?.exists([queue])
}

/// Keeps `message_count` in step with inserts and deletes. Returns false if the queue is gone.
pub(super) fn adjust_count(conn: &Connection, queue: QueueId, delta: i64) -> Result<bool> {
    let changed = conn
        .prepare_cached("UPDATE queues SET message_count = message_count + ?2 WHERE id = ?1")?
        .execute(params![queue, delta])?;
    Ok(changed == 1)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn create_queue(
    conn: &Connection,
    account: &str,
    region: &str,
    name: &str,
    attributes: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    now: Millis,
    recreate_cooldown_ms: i64,
) -> Result<CreateQueueOutcome> {
    if let Some(record) = get_queue(conn, account, region, name)? {
        return Ok(CreateQueueOutcome::Exists(record));
    }
    // Names deleted before the cooldown window can no longer block anything; dropping them here
    // keeps the table as small as the number of recent deletions.
    conn.prepare_cached("DELETE FROM deleted_queues WHERE deleted_at <= ?1")?.execute([now - recreate_cooldown_ms])?;
    if conn
        .prepare_cached("SELECT 1 FROM deleted_queues WHERE account_id = ?1 AND region = ?2 AND name = ?3")?
        .exists([account, region, name])?
    {
        return Ok(CreateQueueOutcome::DeletedRecently);
    }
    conn.prepare_cached(
        "INSERT INTO queues (account_id, region, name, attributes, tags, created_at, last_modified_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?
    .execute(params![account, region, name, to_json(&attributes)?, to_json(&tags)?, now])?;
    Ok(CreateQueueOutcome::Created(QueueRecord::new(
        conn.last_insert_rowid(),
        account.to_owned(),
        region.to_owned(),
        name.to_owned(),
        attributes,
        tags,
        now,
        now,
    )))
}

pub(super) fn get_queue(conn: &Connection, account: &str, region: &str, name: &str) -> Result<Option<QueueRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {QUEUE_COLUMNS} FROM queues WHERE account_id = ?1 AND region = ?2 AND name = ?3"
    ))?
    .query_row([account, region, name], queue_from_row)
    .optional()
}

pub(super) fn list_namespaces(conn: &Connection) -> Result<Vec<(String, String)>> {
    conn.prepare_cached("SELECT DISTINCT account_id, region FROM queues ORDER BY account_id, region")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

pub(super) fn list_queues(
    conn: &Connection,
    account: &str,
    region: &str,
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
            stmt = conn.prepare_cached(&format!(
                "SELECT {QUEUE_COLUMNS} FROM queues WHERE account_id = ?1 AND region = ?2 AND name > ?3 ORDER BY name"
            ))?;
            stmt.query([account, region, after])?
        }
        _ => {
            stmt = conn.prepare_cached(&format!(
                "SELECT {QUEUE_COLUMNS} FROM queues WHERE account_id = ?1 AND region = ?2 AND name >= ?3 ORDER BY name"
            ))?;
            stmt.query([account, region, prefix])?
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

/// Deletes the queue with its messages, deduplication records and receive attempts, in one
/// statement each (its move tasks stay: they are history). A queue with millions of messages
/// makes this one long transaction that holds up the writer; acceptable for now.
pub(super) fn delete_queue(conn: &Connection, queue: QueueId, now: Millis) -> Result<bool> {
    let owner_and_name: Option<(String, String, String)> = conn
        .prepare_cached("DELETE FROM queues WHERE id = ?1 RETURNING account_id, region, name")?
        .query_row([queue], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((account, region, name)) = owner_and_name else {
        return Ok(false);
    };
    delete_all_messages(conn, queue)?;
    conn.prepare_cached("DELETE FROM dedup_records WHERE queue_id = ?1")?.execute([queue])?;
    conn.prepare_cached("DELETE FROM receive_attempts WHERE queue_id = ?1")?.execute([queue])?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO deleted_queues (account_id, region, name, deleted_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![account, region, name, now])?;
    Ok(true)
}

/// Reads one of the queue's JSON maps, lets `change` edit it, and writes it back unless `change`
/// declines (returns false). `extra` runs on the same row (e.g. setting `last_modified_at`).
/// `None` if the queue does not exist, else whether the map was written.
fn edit_map(
    conn: &Connection,
    queue: QueueId,
    column: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> bool,
    extra: Option<Millis>,
) -> Result<Option<bool>> {
    let current: Option<String> = conn
        .prepare_cached(&format!("SELECT {column} FROM queues WHERE id = ?1"))?
        .query_row([queue], |r| r.get(0))
        .optional()?;
    let Some(current) = current else {
        return Ok(None);
    };
    let mut map: BTreeMap<String, String> = serde_json::from_str(&current)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, Type::Text, Box::new(e)))?;
    if !change(&mut map) {
        return Ok(Some(false));
    }
    match extra {
        Some(now) => conn
            .prepare_cached(&format!("UPDATE queues SET {column} = ?2, last_modified_at = ?3 WHERE id = ?1"))?
            .execute(params![queue, to_json(&map)?, now])?,
        None => conn
            .prepare_cached(&format!("UPDATE queues SET {column} = ?2 WHERE id = ?1"))?
            .execute(params![queue, to_json(&map)?])?,
    };
    Ok(Some(true))
}

pub(super) fn set_queue_attributes(
    conn: &Connection,
    queue: QueueId,
    attributes: BTreeMap<String, String>,
    now: Millis,
) -> Result<Option<bool>> {
    edit_map(
        conn,
        queue,
        "attributes",
        |current| {
            merge_attributes(current, attributes);
            true
        },
        Some(now),
    )
}

pub(super) fn replace_queue_attribute(
    conn: &Connection,
    queue: QueueId,
    name: &str,
    expected: Option<&str>,
    value: &str,
    now: Millis,
) -> Result<Option<bool>> {
    edit_map(
        conn,
        queue,
        "attributes",
        |current| {
            if current.get(name).map(String::as_str) != expected {
                return false;
            }
            merge_attributes(current, BTreeMap::from([(name.to_owned(), value.to_owned())]));
            true
        },
        Some(now),
    )
}

pub(super) fn tag_queue(conn: &Connection, queue: QueueId, tags: BTreeMap<String, String>) -> Result<Option<bool>> {
    edit_map(
        conn,
        queue,
        "tags",
        |current| {
            current.extend(tags);
            true
        },
        None,
    )
}

pub(super) fn untag_queue(conn: &Connection, queue: QueueId, keys: Vec<String>) -> Result<Option<bool>> {
    edit_map(
        conn,
        queue,
        "tags",
        |current| {
            for key in &keys {
                current.remove(key);
            }
            true
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
    let removed = delete_all_messages(conn, queue)?;
    conn.prepare_cached("DELETE FROM dedup_records WHERE queue_id = ?1")?.execute([queue])?;
    conn.prepare_cached("UPDATE queues SET last_purged_at = ?2, message_count = 0 WHERE id = ?1")?
        .execute(params![queue, now])?;
    Ok(Some(PurgeOutcome::Purged { removed: removed as u64 }))
}

pub(super) fn queue_counts(conn: &Connection, queue: QueueId, now: Millis) -> Result<Option<QueueCounts>> {
    let total: Option<i64> = conn
        .prepare_cached("SELECT message_count FROM queues WHERE id = ?1")?
        .query_row([queue], |r| r.get(0))
        .optional()?;
    let Some(total) = total else {
        return Ok(None);
    };
    // Only the hidden messages (in flight or delayed) are counted by scanning; the visible ones
    // are the rest of the total, so a deep backlog costs nothing here.
    let (hidden, in_flight): (i64, i64) = conn
        .prepare_cached(
            "SELECT count(*), coalesce(sum(receive_count > 0), 0) FROM messages
             WHERE queue_id = ?1 AND visible_at > ?2",
        )?
        .query_row(params![queue, now], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(Some(QueueCounts {
        visible: (total - hidden).max(0) as u64,
        in_flight: in_flight as u64,
        delayed: (hidden - in_flight) as u64,
    }))
}

/// In flight by group: reads the hidden messages only, as `queue_counts` does.
pub(super) fn group_load(conn: &Connection, queue: QueueId, now: Millis) -> Result<Option<GroupLoad>> {
    if !queue_exists(conn, queue)? {
        return Ok(None);
    }
    let mut load = GroupLoad::default();
    let mut select = conn.prepare_cached(
        "SELECT group_id, count(*) FROM messages INDEXED BY messages_by_visibility
         WHERE queue_id = ?1 AND visible_at > ?2 AND receive_count > 0 GROUP BY group_id ORDER BY group_id",
    )?;
    let mut rows = select.query(params![queue, now])?;
    while let Some(row) = rows.next()? {
        let (group, count): (Option<String>, i64) = (row.get(0)?, row.get(1)?);
        load.total_in_flight += count as u64;
        if let Some(group) = group {
            load.in_flight.push((group, count as u64));
        }
    }
    Ok(Some(load))
}

/// The counts of the messages of `groups`, read through `messages_by_group`: the cost is the
/// size of those groups.
pub(super) fn group_counts(
    conn: &Connection,
    queue: QueueId,
    groups: &[String],
    now: Millis,
) -> Result<Option<QueueCounts>> {
    if !queue_exists(conn, queue)? {
        return Ok(None);
    }
    let mut select = conn.prepare_cached(
        "SELECT coalesce(sum(visible_at <= ?3), 0), coalesce(sum(visible_at > ?3 AND receive_count > 0), 0),
                coalesce(sum(visible_at > ?3 AND receive_count = 0), 0)
         FROM messages INDEXED BY messages_by_group WHERE queue_id = ?1 AND group_id = ?2",
    )?;
    let mut counts = QueueCounts::default();
    for group in groups {
        let (visible, in_flight, delayed): (i64, i64, i64) =
            select.query_row(params![queue, group, now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        counts.visible += visible as u64;
        counts.in_flight += in_flight as u64;
        counts.delayed += delayed as u64;
    }
    Ok(Some(counts))
}

/// The oldest `sent_at` of a message outside `groups`, within the `scan_limit` oldest messages.
pub(super) fn oldest_outside(
    conn: &Connection,
    queue: QueueId,
    groups: &[String],
    scan_limit: usize,
) -> Result<Option<Option<Millis>>> {
    if !queue_exists(conn, queue)? {
        return Ok(None);
    }
    let mut select = conn.prepare_cached(
        "SELECT sent_at, group_id FROM messages INDEXED BY messages_by_age
         WHERE queue_id = ?1 ORDER BY sent_at LIMIT ?2",
    )?;
    let mut rows = select.query(params![queue, scan_limit as i64])?;
    while let Some(row) = rows.next()? {
        let (sent_at, group): (Millis, Option<String>) = (row.get(0)?, row.get(1)?);
        if !group.is_some_and(|g| groups.contains(&g)) {
            return Ok(Some(Some(sent_at)));
        }
    }
    Ok(Some(None))
}

/// Removes every message of the queue. Its groups go first, so the delete trigger finds no group
/// to advance for each grouped message (a primary-key miss instead of a search and an update).
fn delete_all_messages(conn: &Connection, queue: QueueId) -> Result<usize> {
    conn.prepare_cached("DELETE FROM fifo_groups WHERE queue_id = ?1")?.execute([queue])?;
    conn.prepare_cached("DELETE FROM messages WHERE queue_id = ?1")?.execute([queue])
}

pub(super) fn send_messages(
    conn: &Connection,
    queue: QueueId,
    messages: Vec<NewMessage>,
    dedup: Option<Deduplication>,
    now: Millis,
) -> Result<Option<Vec<Sent>>> {
    let Some(dedup) = dedup else {
        // Counting first doubles as the existence check: no row updated, no queue.
        if !adjust_count(conn, queue, messages.len() as i64)? {
            return Ok(None);
        }
        let mut outcomes = Vec::with_capacity(messages.len());
        for m in messages {
            let message_id = m.message_id.clone();
            outcomes.push(Sent { seq: insert_message(conn, queue, m)?, message_id, duplicate: false });
        }
        return Ok(Some(outcomes));
    };
    if !queue_exists(conn, queue)? {
        return Ok(None);
    }
    let mut lookup = conn.prepare_cached(
        "SELECT message_id, seq, expires_at FROM dedup_records WHERE queue_id = ?1 AND scope = ?2 AND dedup_id = ?3",
    )?;
    // An expired record of the same id is replaced, not added to.
    let mut record = conn.prepare_cached(
        "INSERT INTO dedup_records (queue_id, scope, dedup_id, message_id, seq, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (queue_id, scope, dedup_id)
         DO UPDATE SET message_id = excluded.message_id, seq = excluded.seq, expires_at = excluded.expires_at",
    )?;
    let mut outcomes = Vec::with_capacity(messages.len());
    let mut enqueued = 0;
    for m in messages {
        let key = dedup_key(&dedup, m.group_id.as_deref(), m.deduplication_id.as_deref());
        if let Some((scope, id)) = &key {
            let first: Option<(String, i64, Millis)> =
                lookup.query_row(params![queue, scope, id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()?;
            if let Some((message_id, seq, _)) = first.filter(|(_, _, expires_at)| is_live(*expires_at, now)) {
                outcomes.push(Sent { message_id, seq, duplicate: true });
                continue;
            }
        }
        let message_id = m.message_id.clone();
        let seq = insert_message(conn, queue, m)?;
        if let Some((scope, id)) = key {
            record.execute(params![queue, scope, id, message_id, seq, now + dedup.window_ms])?;
        }
        enqueued += 1;
        outcomes.push(Sent { message_id, seq, duplicate: false });
    }
    adjust_count(conn, queue, enqueued)?;
    prune_dedup_records(conn, now, Some(PRUNE_PER_CALL))?;
    Ok(Some(outcomes))
}

fn insert_message(conn: &Connection, queue: QueueId, m: NewMessage) -> Result<i64> {
    let digest = content_digest(&m.body, &m.attributes, &m.system_attributes);
    conn.prepare_cached(
        "INSERT INTO messages (queue_id, message_id, body, attributes, system_attributes, group_id, dedup_id,
                               sender_id, sent_at, visible_at, digest)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
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
        digest.as_slice(),
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Removes expired deduplication records (`!is_live`: `expires_at <= now`), oldest first, all of
/// them or up to `limit`, through the expiry index: only expired records are read.
fn prune_dedup_records(conn: &Connection, now: Millis, limit: Option<usize>) -> Result<usize> {
    match limit {
        Some(limit) => conn
            .prepare_cached(
                "DELETE FROM dedup_records WHERE (queue_id, scope, dedup_id) IN (
                     SELECT queue_id, scope, dedup_id FROM dedup_records INDEXED BY dedup_records_by_expiry
                     WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)",
            )?
            .execute(params![now, limit as i64]),
        None => conn
            .prepare_cached("DELETE FROM dedup_records INDEXED BY dedup_records_by_expiry WHERE expires_at <= ?1")?
            .execute([now]),
    }
}

/// As `prune_dedup_records`, for receive attempts.
pub(super) fn prune_receive_attempts(conn: &Connection, now: Millis, limit: Option<usize>) -> Result<usize> {
    match limit {
        Some(limit) => conn
            .prepare_cached(
                "DELETE FROM receive_attempts WHERE (queue_id, attempt_id) IN (
                     SELECT queue_id, attempt_id FROM receive_attempts INDEXED BY receive_attempts_by_expiry
                     WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)",
            )?
            .execute(params![now, limit as i64]),
        None => conn
            .prepare_cached(
                "DELETE FROM receive_attempts INDEXED BY receive_attempts_by_expiry WHERE expires_at <= ?1",
            )?
            .execute([now]),
    }
}

pub(super) fn delete_messages(
    conn: &Connection,
    queue: QueueId,
    leases: Vec<Lease>,
    refuse_expired_at: Option<Millis>,
) -> Result<Option<Vec<DeleteOutcome>>> {
    if !queue_exists(conn, queue)? {
        return Ok(None);
    }
    let mut delete = conn.prepare_cached("DELETE FROM messages WHERE seq = ?1 AND queue_id = ?2 AND lease = ?3")?;
    let mut current = conn.prepare_cached("SELECT lease, visible_at FROM messages WHERE seq = ?1 AND queue_id = ?2")?;
    let mut outcomes = Vec::with_capacity(leases.len());
    let mut deleted = 0;
    for lease in leases {
        // The common case (a current lease, no FIFO expiry rule) is one statement.
        if refuse_expired_at.is_none() {
            if delete.execute(params![lease.seq, queue, lease_to_sql(lease.lease)])? == 1 {
                deleted += 1;
                outcomes.push(DeleteOutcome::Deleted);
            } else {
                outcomes.push(DeleteOutcome::NotCurrent);
            }
            continue;
        }
        let found: Option<(Option<i64>, Millis)> =
            current.query_row(params![lease.seq, queue], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        let Some((held_by, visible_at)) = found else {
            outcomes.push(DeleteOutcome::NotCurrent);
            continue;
        };
        let current_visible_at = (held_by == Some(lease_to_sql(lease.lease))).then_some(visible_at);
        let verdict = delete_verdict(current_visible_at, refuse_expired_at);
        if verdict == DeleteOutcome::Deleted {
            delete.execute(params![lease.seq, queue, lease_to_sql(lease.lease)])?;
            deleted += 1;
        }
        outcomes.push(verdict);
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
    let mut select = conn.prepare_cached("SELECT lease, leased_at FROM messages WHERE seq = ?1 AND queue_id = ?2")?;
    let mut update = conn.prepare_cached("UPDATE messages SET visible_at = ?2 WHERE seq = ?1")?;
    let mut outcomes = Vec::with_capacity(changes.len());
    for change in changes {
        let Lease { seq, lease } = change.lease;
        let found: Option<(Option<i64>, Option<Millis>)> =
            select.query_row(params![seq, queue], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        let outcome = match found {
            None => ChangeVisibilityOutcome::Gone,
            Some((held_by, Some(leased_at))) if held_by == Some(lease_to_sql(lease)) => {
                let new_visible_at = now + change.visibility_timeout_ms;
                let outcome = visibility_outcome(leased_at, new_visible_at, max_inflight_ms);
                if outcome == ChangeVisibilityOutcome::Changed {
                    update.execute(params![seq, new_visible_at])?;
                }
                outcome
            }
            Some(_) => ChangeVisibilityOutcome::Stale,
        };
        outcomes.push(outcome);
    }
    Ok(Some(outcomes))
}

/// Removes the queue's messages sent before `sent_before` through the age index, and reads the
/// oldest one left from the same index. `None` if the queue does not exist.
pub(super) fn expire_messages(conn: &Connection, queue: QueueId, sent_before: Millis) -> Result<Option<ExpiryOutcome>> {
    if !queue_exists(conn, queue)? {
        return Ok(None);
    }
    let removed = conn
        .prepare_cached("DELETE FROM messages WHERE queue_id = ?1 AND sent_at < ?2")?
        .execute(params![queue, sent_before])?;
    if removed > 0 {
        adjust_count(conn, queue, -(removed as i64))?;
    }
    let oldest_sent_at: Option<Millis> = conn
        .prepare_cached("SELECT min(sent_at) FROM messages WHERE queue_id = ?1")?
        .query_row([queue], |r| r.get(0))?;
    Ok(Some(ExpiryOutcome { removed: removed as u64, oldest_sent_at }))
}

/// Drops every expired deduplication record and receive attempt, and says when the next one
/// expires (both tables have an expiry index, so each read is one seek).
pub(super) fn prune_expired_records(conn: &Connection, now: Millis) -> Result<Option<Millis>> {
    prune_dedup_records(conn, now, None)?;
    prune_receive_attempts(conn, now, None)?;
    let next: Option<Millis> = conn
        .prepare_cached(
            "SELECT min(at) FROM (SELECT min(expires_at) AS at FROM dedup_records
                                  UNION ALL SELECT min(expires_at) FROM receive_attempts)",
        )?
        .query_row([], |r| r.get(0))?;
    Ok(next)
}
