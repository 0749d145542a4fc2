//! The SQL of the queue calls, send, delete, change-visibility, counts and expiry, each run inside
//! the call's transaction (`PostgresStore::transact`).
//!
//! Invariants:
//! - A message is touched by delete or change-visibility only through `(seq, queue_id, lease)`,
//!   and change-visibility locks the row it reads (`FOR UPDATE`), so a receive that re-leases the
//!   message meanwhile makes the lease stale instead of being overwritten.
//! - Sends to a FIFO queue hold the queue's advisory lock (`lock_queue`), as FIFO receives do:
//!   seqs are then handed out in commit order within the queue, so a group's head is always its
//!   oldest message, and two sends of one deduplication id cannot both enqueue.
//! - Standard sends take no lock at all: concurrent senders of one queue never wait on each other.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use holdfast_core::store::{
    ChangeVisibility, ChangeVisibilityOutcome, CreateQueueOutcome, Deduplication, DeleteOutcome, ExpiryOutcome,
    GroupLoad, Lease, Millis, NewMessage, PurgeOutcome, QueueCounts, QueueId, QueueRecord, Sent,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{Fail, Tx};
use crate::rules::{
    content_digest, dedup_key, delete_verdict, is_live, merge_attributes, visibility_outcome, PRUNE_PER_CALL,
};

const QUEUE_COLUMNS: &str = "id, account_id, region, name, attributes, tags, created_at, last_modified_at";

/// Runs a cached prepared statement (in a transaction, or on its own) and returns its rows.
pub(super) async fn rows(db: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Fail> {
    let statement = db.prepare_cached(sql).await?;
    Ok(db.query(&statement, params).await?)
}

/// Runs a cached prepared statement and returns its only row, if any.
pub(super) async fn row(
    db: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, Fail> {
    let statement = db.prepare_cached(sql).await?;
    Ok(db.query_opt(&statement, params).await?)
}

/// Runs a cached prepared statement and returns how many rows it changed.
pub(super) async fn exec(db: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Fail> {
    let statement = db.prepare_cached(sql).await?;
    Ok(db.execute(&statement, params).await?)
}

pub(super) fn queue_from_row(row: &Row) -> Result<QueueRecord, Fail> {
    Ok(QueueRecord::new(
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        from_json(row.try_get(4)?)?,
        from_json(row.try_get(5)?)?,
        row.try_get(6)?,
        row.try_get(7)?,
    ))
}

fn from_json(text: &str) -> Result<BTreeMap<String, String>, Fail> {
    serde_json::from_str(text).map_err(|e| Fail::Data(format!("a stored map is not JSON: {e}")))
}

fn to_json(map: &BTreeMap<String, String>) -> String {
    serde_json::to_string(map).expect("a map of strings always serialises")
}

/// Leases are random u64s stored as BIGINT bits; only ever compared for equality.
pub(super) fn lease_to_sql(lease: u64) -> i64 {
    lease as i64
}

/// The advisory lock that serialises the calls of one FIFO queue that must not interleave (sends
/// and receives), held until the transaction ends. Keyed by the schema too (the two-key form),
/// so holdfast clusters in different schemas of one database never wait on each other.
pub(super) async fn lock_queue(tx: &Tx<'_>, queue: QueueId) -> Result<(), Fail> {
    let queue = i32::try_from(queue).map_err(|_| Fail::Data(format!("queue id {queue} is out of range")))?;
    exec(tx, "SELECT pg_advisory_xact_lock(hashtext(current_schema()), $1)", &[&queue]).await?;
    Ok(())
}

pub(super) async fn queue_exists(tx: &impl GenericClient, queue: QueueId) -> Result<bool, Fail> {
    Ok(row(tx, "SELECT 1 FROM queues WHERE id = $1", &[&queue]).await?.is_some())
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn create_queue(
    tx: &Tx<'_>,
    account: &str,
    region: &str,
    name: &str,
    attributes: &BTreeMap<String, String>,
    tags: &BTreeMap<String, String>,
    now: Millis,
    recreate_cooldown_ms: i64,
) -> Result<CreateQueueOutcome, Fail> {
    if let Some(record) = get_queue(tx, account, region, name).await? {
        return Ok(CreateQueueOutcome::Exists(record));
    }
    exec(tx, "DELETE FROM deleted_queues WHERE deleted_at <= $1", &[&(now - recreate_cooldown_ms)]).await?;
    let recent = row(
        tx,
        "SELECT 1 FROM deleted_queues WHERE account_id = $1 AND region = $2 AND name = $3",
        &[&account, &region, &name],
    )
    .await?;
    if recent.is_some() {
        return Ok(CreateQueueOutcome::DeletedRecently);
    }
    // Another node may create the same name at the same moment: the unique key decides, and the
    // loser reports the winner's queue.
    let created = row(
        tx,
        "INSERT INTO queues (account_id, region, name, attributes, tags, created_at, last_modified_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (account_id, region, name) DO NOTHING RETURNING id",
        &[&account, &region, &name, &to_json(attributes), &to_json(tags), &now],
    )
    .await?;
    match created {
        Some(id) => Ok(CreateQueueOutcome::Created(QueueRecord::new(
            id.try_get(0)?,
            account.to_owned(),
            region.to_owned(),
            name.to_owned(),
            attributes.clone(),
            tags.clone(),
            now,
            now,
        ))),
        None => match get_queue(tx, account, region, name).await? {
            Some(record) => Ok(CreateQueueOutcome::Exists(record)),
            None => Err(Fail::Data(format!("queue {name} was created and deleted while being created"))),
        },
    }
}

pub(super) async fn get_queue(
    tx: &impl GenericClient,
    account: &str,
    region: &str,
    name: &str,
) -> Result<Option<QueueRecord>, Fail> {
    let found = row(
        tx,
        &format!("SELECT {QUEUE_COLUMNS} FROM queues WHERE account_id = $1 AND region = $2 AND name = $3"),
        &[&account, &region, &name],
    )
    .await?;
    found.as_ref().map(queue_from_row).transpose()
}

pub(super) async fn list_namespaces(tx: &Tx<'_>) -> Result<Vec<(String, String)>, Fail> {
    let found = rows(tx, "SELECT DISTINCT account_id, region FROM queues ORDER BY account_id, region", &[]).await?;
    found.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

pub(super) async fn list_queues(
    tx: &Tx<'_>,
    account: &str,
    region: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<QueueRecord>, Fail> {
    // Names are in the "C" collation: byte order, as the other engines page. The range starts at
    // the prefix (or just after `after`); rows past the prefix end the page.
    let (operator, from) = match after {
        Some(after) if after >= prefix => (">", after),
        _ => (">=", prefix),
    };
    let found = rows(
        tx,
        &format!(
            "SELECT {QUEUE_COLUMNS} FROM queues WHERE account_id = $1 AND region = $2 AND name {operator} $3
             ORDER BY name LIMIT $4"
        ),
        &[&account, &region, &from, &(limit as i64)],
    )
    .await?;
    let mut queues = Vec::new();
    for r in &found {
        let queue = queue_from_row(r)?;
        if !queue.name.starts_with(prefix) {
            break;
        }
        queues.push(queue);
    }
    Ok(queues)
}

/// Deletes the queue with its messages, groups, deduplication records and receive attempts (its
/// move tasks stay: they are history), and remembers its name for the cooldown and its id for
/// the sweep of messages a concurrent send may still write.
pub(super) async fn delete_queue(tx: &Tx<'_>, queue: QueueId, now: Millis) -> Result<bool, Fail> {
    let Some(owner) = row(tx, "DELETE FROM queues WHERE id = $1 RETURNING account_id, region, name", &[&queue]).await?
    else {
        return Ok(false);
    };
    let (account, region, name): (String, String, String) = (owner.try_get(0)?, owner.try_get(1)?, owner.try_get(2)?);
    delete_all_messages(tx, queue).await?;
    exec(tx, "DELETE FROM dedup_records WHERE queue_id = $1", &[&queue]).await?;
    exec(tx, "DELETE FROM receive_attempts WHERE queue_id = $1", &[&queue]).await?;
    exec(
        tx,
        "INSERT INTO deleted_queues (account_id, region, name, queue_id, deleted_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (account_id, region, name) DO UPDATE SET queue_id = EXCLUDED.queue_id,
             deleted_at = EXCLUDED.deleted_at",
        &[&account, &region, &name, &queue, &now],
    )
    .await?;
    Ok(true)
}

/// Removes every message of the queue, its groups first so the delete trigger finds no head to
/// advance for each grouped message.
async fn delete_all_messages(tx: &Tx<'_>, queue: QueueId) -> Result<u64, Fail> {
    exec(tx, "DELETE FROM fifo_groups WHERE queue_id = $1", &[&queue]).await?;
    exec(tx, "DELETE FROM messages WHERE queue_id = $1", &[&queue]).await
}

/// Reads one of the queue's JSON maps with its row locked, lets `change` edit it, and writes it
/// back unless `change` declines. `None` if the queue does not exist, else whether it was written.
async fn edit_map(
    tx: &Tx<'_>,
    queue: QueueId,
    column: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> bool,
    modified_at: Option<Millis>,
) -> Result<Option<bool>, Fail> {
    let Some(current) = row(tx, &format!("SELECT {column} FROM queues WHERE id = $1 FOR UPDATE"), &[&queue]).await?
    else {
        return Ok(None);
    };
    let mut map = from_json(current.try_get(0)?)?;
    if !change(&mut map) {
        return Ok(Some(false));
    }
    match modified_at {
        Some(now) => {
            let sql = format!("UPDATE queues SET {column} = $2, last_modified_at = $3 WHERE id = $1");
            exec(tx, &sql, &[&queue, &to_json(&map), &now]).await?
        }
        None => exec(tx, &format!("UPDATE queues SET {column} = $2 WHERE id = $1"), &[&queue, &to_json(&map)]).await?,
    };
    Ok(Some(true))
}

pub(super) async fn set_queue_attributes(
    tx: &Tx<'_>,
    queue: QueueId,
    attributes: BTreeMap<String, String>,
    now: Millis,
) -> Result<Option<bool>, Fail> {
    let change = |current: &mut BTreeMap<String, String>| {
        merge_attributes(current, attributes);
        true
    };
    edit_map(tx, queue, "attributes", change, Some(now)).await
}

pub(super) async fn replace_queue_attribute(
    tx: &Tx<'_>,
    queue: QueueId,
    name: &str,
    expected: Option<&str>,
    value: &str,
    now: Millis,
) -> Result<Option<bool>, Fail> {
    let change = |current: &mut BTreeMap<String, String>| {
        if current.get(name).map(String::as_str) != expected {
            return false;
        }
        merge_attributes(current, BTreeMap::from([(name.to_owned(), value.to_owned())]));
        true
    };
    edit_map(tx, queue, "attributes", change, Some(now)).await
}

pub(super) async fn tag_queue(
    tx: &Tx<'_>,
    queue: QueueId,
    tags: BTreeMap<String, String>,
) -> Result<Option<bool>, Fail> {
    let change = |current: &mut BTreeMap<String, String>| {
        current.extend(tags);
        true
    };
    edit_map(tx, queue, "tags", change, None).await
}

pub(super) async fn untag_queue(tx: &Tx<'_>, queue: QueueId, keys: Vec<String>) -> Result<Option<bool>, Fail> {
    let change = |current: &mut BTreeMap<String, String>| {
        for key in &keys {
            current.remove(key);
        }
        true
    };
    edit_map(tx, queue, "tags", change, None).await
}

pub(super) async fn purge_queue(
    tx: &Tx<'_>,
    queue: QueueId,
    now: Millis,
    cooldown_ms: i64,
) -> Result<Option<PurgeOutcome>, Fail> {
    let Some(found) = row(tx, "SELECT last_purged_at FROM queues WHERE id = $1 FOR UPDATE", &[&queue]).await? else {
        return Ok(None);
    };
    let last_purged_at: Option<Millis> = found.try_get(0)?;
    if last_purged_at.is_some_and(|at| now - at < cooldown_ms) {
        return Ok(Some(PurgeOutcome::InProgress));
    }
    let removed = delete_all_messages(tx, queue).await?;
    exec(tx, "DELETE FROM dedup_records WHERE queue_id = $1", &[&queue]).await?;
    exec(tx, "UPDATE queues SET last_purged_at = $2 WHERE id = $1", &[&queue, &now]).await?;
    Ok(Some(PurgeOutcome::Purged { removed }))
}

/// Counts from `messages_by_visibility`: hidden messages (in flight or delayed) and the rest.
pub(super) async fn queue_counts(tx: &Tx<'_>, queue: QueueId, now: Millis) -> Result<Option<QueueCounts>, Fail> {
    if !queue_exists(tx, queue).await? {
        return Ok(None);
    }
    let counts = row(
        tx,
        "SELECT count(*) FILTER (WHERE visible_at <= $2),
                count(*) FILTER (WHERE visible_at > $2 AND receive_count > 0),
                count(*) FILTER (WHERE visible_at > $2 AND receive_count = 0)
         FROM messages WHERE queue_id = $1",
        &[&queue, &now],
    )
    .await?;
    counts_of(counts).map(Some)
}

/// The visible, in-flight and delayed counts a counting statement's one row holds, in that order.
fn counts_of(counts: Option<Row>) -> Result<QueueCounts, Fail> {
    let counts = counts.ok_or_else(|| Fail::Data("count(*) returned no row".into()))?;
    let count = |i: usize| -> Result<u64, Fail> { Ok(counts.try_get::<_, i64>(i)?.max(0) as u64) };
    Ok(QueueCounts { visible: count(0)?, in_flight: count(1)?, delayed: count(2)? })
}

/// In flight by group: reads the hidden messages only.
pub(super) async fn group_load(tx: &Tx<'_>, queue: QueueId, now: Millis) -> Result<Option<GroupLoad>, Fail> {
    if !queue_exists(tx, queue).await? {
        return Ok(None);
    }
    let found = rows(
        tx,
        "SELECT group_id, count(*) FROM messages
         WHERE queue_id = $1 AND visible_at > $2 AND receive_count > 0 GROUP BY group_id ORDER BY group_id",
        &[&queue, &now],
    )
    .await?;
    let mut load = GroupLoad::default();
    for r in &found {
        let (group, count): (Option<String>, i64) = (r.try_get(0)?, r.try_get(1)?);
        load.total_in_flight += count as u64;
        if let Some(group) = group {
            load.in_flight.push((group, count as u64));
        }
    }
    Ok(Some(load))
}

/// The counts of the messages of `groups`, read through `messages_by_group`.
pub(super) async fn group_counts(
    tx: &Tx<'_>,
    queue: QueueId,
    groups: &[String],
    now: Millis,
) -> Result<Option<QueueCounts>, Fail> {
    if !queue_exists(tx, queue).await? {
        return Ok(None);
    }
    let counts = row(
        tx,
        "SELECT count(*) FILTER (WHERE visible_at <= $3),
                count(*) FILTER (WHERE visible_at > $3 AND receive_count > 0),
                count(*) FILTER (WHERE visible_at > $3 AND receive_count = 0)
         FROM messages WHERE queue_id = $1 AND group_id = ANY($2)",
        &[&queue, &groups, &now],
    )
    .await?;
    counts_of(counts).map(Some)
}

/// The oldest `sent_at` of a message outside `groups`, within the `scan_limit` oldest messages.
pub(super) async fn oldest_outside(
    tx: &Tx<'_>,
    queue: QueueId,
    groups: &[String],
    scan_limit: usize,
) -> Result<Option<Option<Millis>>, Fail> {
    if !queue_exists(tx, queue).await? {
        return Ok(None);
    }
    let found = rows(
        tx,
        "SELECT sent_at, group_id FROM messages WHERE queue_id = $1 ORDER BY sent_at, seq LIMIT $2",
        &[&queue, &(scan_limit as i64)],
    )
    .await?;
    for r in &found {
        let (sent_at, group): (Millis, Option<String>) = (r.try_get(0)?, r.try_get(1)?);
        if !group.is_some_and(|g| groups.contains(&g)) {
            return Ok(Some(Some(sent_at)));
        }
    }
    Ok(Some(None))
}

const INSERT_MESSAGES: &str = "INSERT INTO messages (queue_id, message_id, body, attributes, system_attributes,
        group_id, dedup_id, sender_id, sent_at, visible_at, digest)
    SELECT $1, message_id, body, attributes, system_attributes, group_id, dedup_id, sender_id, sent_at, visible_at,
           digest
    FROM unnest($2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::text[], $7::text[], $8::text[],
                $9::bigint[], $10::bigint[], $11::bytea[]) WITH ORDINALITY
         AS m(message_id, body, attributes, system_attributes, group_id, dedup_id, sender_id, sent_at,
              visible_at, digest, n)
    WHERE EXISTS (SELECT 1 FROM queues WHERE id = $1)
    ORDER BY n
    RETURNING message_id, seq";

/// Inserts messages in one statement, seqs drawn in input order, if the queue exists; returns the
/// seqs in input order (`None`: the queue is gone).
async fn insert_messages(
    db: &impl GenericClient,
    queue: QueueId,
    messages: &[&NewMessage],
) -> Result<Option<Vec<i64>>, Fail> {
    let message_ids: Vec<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
    let bodies: Vec<&str> = messages.iter().map(|m| m.body.as_str()).collect();
    let attributes: Vec<&[u8]> = messages.iter().map(|m| m.attributes.as_slice()).collect();
    let system: Vec<&[u8]> = messages.iter().map(|m| m.system_attributes.as_slice()).collect();
    let groups: Vec<Option<&str>> = messages.iter().map(|m| m.group_id.as_deref()).collect();
    let dedups: Vec<Option<&str>> = messages.iter().map(|m| m.deduplication_id.as_deref()).collect();
    let senders: Vec<&str> = messages.iter().map(|m| m.sender_id.as_str()).collect();
    let sent: Vec<i64> = messages.iter().map(|m| m.sent_at).collect();
    let visible: Vec<i64> = messages.iter().map(|m| m.visible_at).collect();
    let digests: Vec<Vec<u8>> =
        messages.iter().map(|m| content_digest(&m.body, &m.attributes, &m.system_attributes).to_vec()).collect();
    let found = rows(
        db,
        INSERT_MESSAGES,
        &[&queue, &message_ids, &bodies, &attributes, &system, &groups, &dedups, &senders, &sent, &visible, &digests],
    )
    .await?;
    if found.is_empty() && !messages.is_empty() {
        return Ok(None);
    }
    // Matched by MessageId (unique per send) rather than trusting the order RETURNING lists rows in.
    let mut seqs = std::collections::HashMap::with_capacity(found.len());
    for r in &found {
        seqs.insert(r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?);
    }
    message_ids
        .iter()
        .map(|id| seqs.get(*id).copied().ok_or_else(|| Fail::Data(format!("message {id} was not inserted"))))
        .collect::<Result<_, _>>()
        .map(Some)
}

/// A standard send: one statement, on its own (no transaction around it), that checks the queue
/// exists and inserts every message.
pub(super) async fn send_standard(
    db: &impl GenericClient,
    queue: QueueId,
    messages: &[NewMessage],
) -> Result<Option<Vec<Sent>>, Fail> {
    if messages.is_empty() {
        return Ok(queue_exists(db, queue).await?.then(Vec::new));
    }
    let all: Vec<&NewMessage> = messages.iter().collect();
    let Some(seqs) = insert_messages(db, queue, &all).await? else { return Ok(None) };
    let sent = messages.iter().zip(seqs);
    Ok(Some(sent.map(|(m, seq)| Sent { message_id: m.message_id.clone(), seq, duplicate: false }).collect()))
}

/// A delete without the FIFO expiry rule: one statement on its own for the whole batch; the
/// queue is looked up only when some lease deleted nothing.
pub(super) async fn delete_current(
    db: &impl GenericClient,
    queue: QueueId,
    leases: &[Lease],
) -> Result<Option<Vec<DeleteOutcome>>, Fail> {
    let seqs: Vec<i64> = leases.iter().map(|l| l.seq).collect();
    let held: Vec<i64> = leases.iter().map(|l| lease_to_sql(l.lease)).collect();
    let deleted = rows(
        db,
        "DELETE FROM messages m USING unnest($2::bigint[], $3::bigint[]) AS l(seq, lease)
         WHERE m.seq = l.seq AND m.queue_id = $1 AND m.lease = l.lease RETURNING m.seq",
        &[&queue, &seqs, &held],
    )
    .await?;
    let mut deleted: Vec<i64> = deleted.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    if deleted.len() < leases.len() && !queue_exists(db, queue).await? {
        return Ok(None);
    }
    // A lease listed twice deletes once: its second mention finds the message gone.
    let outcomes = leases.iter().map(|l| match deleted.iter().position(|&seq| seq == l.seq) {
        Some(at) => {
            deleted.swap_remove(at);
            DeleteOutcome::Deleted
        }
        None => DeleteOutcome::NotCurrent,
    });
    Ok(Some(outcomes.collect()))
}

pub(super) async fn send_messages(
    tx: &Tx<'_>,
    queue: QueueId,
    messages: &[NewMessage],
    dedup: Option<Deduplication>,
    now: Millis,
) -> Result<Option<Vec<Sent>>, Fail> {
    let Some(dedup) = dedup else {
        return send_standard(tx, queue, messages).await;
    };
    lock_queue(tx, queue).await?;
    if !queue_exists(tx, queue).await? {
        return Ok(None);
    }
    let mut outcomes = Vec::with_capacity(messages.len());
    for m in messages {
        let key = dedup_key(&dedup, m.group_id.as_deref(), m.deduplication_id.as_deref());
        if let Some((scope, id)) = &key {
            let first = row(
                tx,
                "SELECT message_id, seq, expires_at FROM dedup_records
                 WHERE queue_id = $1 AND scope = $2 AND dedup_id = $3",
                &[&queue, scope, id],
            )
            .await?;
            if let Some(first) = first {
                let (message_id, seq, expires_at): (String, i64, Millis) =
                    (first.try_get(0)?, first.try_get(1)?, first.try_get(2)?);
                if is_live(expires_at, now) {
                    outcomes.push(Sent { message_id, seq, duplicate: true });
                    continue;
                }
            }
        }
        let Some(seqs) = insert_messages(tx, queue, &[m]).await? else { return Ok(None) };
        let seq = seqs[0];
        if let Some((scope, id)) = key {
            exec(
                tx,
                "INSERT INTO dedup_records (queue_id, scope, dedup_id, message_id, seq, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (queue_id, scope, dedup_id) DO UPDATE SET message_id = EXCLUDED.message_id,
                     seq = EXCLUDED.seq, expires_at = EXCLUDED.expires_at",
                &[&queue, &scope, &id, &m.message_id, &seq, &(now + dedup.window_ms)],
            )
            .await?;
        }
        outcomes.push(Sent { message_id: m.message_id.clone(), seq, duplicate: false });
    }
    prune_dedup_records(tx, now, Some(PRUNE_PER_CALL)).await?;
    Ok(Some(outcomes))
}

/// Removes expired deduplication records, oldest first, all of them or up to `limit`.
async fn prune_dedup_records(tx: &Tx<'_>, now: Millis, limit: Option<usize>) -> Result<u64, Fail> {
    match limit {
        Some(limit) => {
            exec(
                tx,
                "DELETE FROM dedup_records WHERE (queue_id, scope, dedup_id) IN (
                     SELECT queue_id, scope, dedup_id FROM dedup_records WHERE expires_at <= $1
                     ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
                &[&now, &(limit as i64)],
            )
            .await
        }
        None => exec(tx, "DELETE FROM dedup_records WHERE expires_at <= $1", &[&now]).await,
    }
}

/// As `prune_dedup_records`, for receive attempts.
pub(super) async fn prune_receive_attempts(tx: &Tx<'_>, now: Millis, limit: Option<usize>) -> Result<u64, Fail> {
    match limit {
        Some(limit) => {
            exec(
                tx,
                "DELETE FROM receive_attempts WHERE (queue_id, attempt_id) IN (
                     SELECT queue_id, attempt_id FROM receive_attempts WHERE expires_at <= $1
                     ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
                &[&now, &(limit as i64)],
            )
            .await
        }
        None => exec(tx, "DELETE FROM receive_attempts WHERE expires_at <= $1", &[&now]).await,
    }
}

pub(super) async fn delete_messages(
    tx: &Tx<'_>,
    queue: QueueId,
    leases: &[Lease],
    refuse_expired_at: Option<Millis>,
) -> Result<Option<Vec<DeleteOutcome>>, Fail> {
    if !queue_exists(tx, queue).await? {
        return Ok(None);
    }
    if refuse_expired_at.is_none() {
        return delete_current(tx, queue, leases).await;
    }
    let mut outcomes = Vec::with_capacity(leases.len());
    for lease in leases {
        let found = row(
            tx,
            "SELECT lease, visible_at FROM messages WHERE seq = $1 AND queue_id = $2 FOR UPDATE",
            &[&lease.seq, &queue],
        )
        .await?;
        let Some(found) = found else {
            outcomes.push(DeleteOutcome::NotCurrent);
            continue;
        };
        let (held_by, visible_at): (Option<i64>, Millis) = (found.try_get(0)?, found.try_get(1)?);
        let current_visible_at = (held_by == Some(lease_to_sql(lease.lease))).then_some(visible_at);
        let verdict = delete_verdict(current_visible_at, refuse_expired_at);
        if verdict == DeleteOutcome::Deleted {
            exec(tx, "DELETE FROM messages WHERE seq = $1", &[&lease.seq]).await?;
        }
        outcomes.push(verdict);
    }
    Ok(Some(outcomes))
}

pub(super) async fn change_visibility(
    tx: &Tx<'_>,
    queue: QueueId,
    changes: &[ChangeVisibility],
    now: Millis,
    max_inflight_ms: i64,
) -> Result<Option<Vec<ChangeVisibilityOutcome>>, Fail> {
    if !queue_exists(tx, queue).await? {
        return Ok(None);
    }
    let mut outcomes = Vec::with_capacity(changes.len());
    for change in changes {
        let Lease { seq, lease } = change.lease;
        let found = row(
            tx,
            "SELECT lease, leased_at FROM messages WHERE seq = $1 AND queue_id = $2 FOR UPDATE",
            &[&seq, &queue],
        )
        .await?;
        let outcome = match found {
            None => ChangeVisibilityOutcome::Gone,
            Some(found) => {
                let (held_by, leased_at): (Option<i64>, Option<Millis>) = (found.try_get(0)?, found.try_get(1)?);
                match leased_at {
                    Some(leased_at) if held_by == Some(lease_to_sql(lease)) => {
                        let new_visible_at = now + change.visibility_timeout_ms;
                        let outcome = visibility_outcome(leased_at, new_visible_at, max_inflight_ms);
                        if outcome == ChangeVisibilityOutcome::Changed {
                            exec(tx, "UPDATE messages SET visible_at = $2 WHERE seq = $1", &[&seq, &new_visible_at])
                                .await?;
                        }
                        outcome
                    }
                    _ => ChangeVisibilityOutcome::Stale,
                }
            }
        };
        outcomes.push(outcome);
    }
    Ok(Some(outcomes))
}

/// Removes the queue's messages sent before `sent_before` through the age index and reads the
/// oldest one left from the same index.
pub(super) async fn expire_messages(
    tx: &Tx<'_>,
    queue: QueueId,
    sent_before: Millis,
) -> Result<Option<ExpiryOutcome>, Fail> {
    if !queue_exists(tx, queue).await? {
        return Ok(None);
    }
    let removed =
        exec(tx, "DELETE FROM messages WHERE queue_id = $1 AND sent_at < $2", &[&queue, &sent_before]).await?;
    let oldest = row(tx, "SELECT min(sent_at) FROM messages WHERE queue_id = $1", &[&queue]).await?;
    let oldest_sent_at: Option<Millis> = oldest.map(|r| r.try_get(0)).transpose()?.flatten();
    Ok(Some(ExpiryOutcome { removed, oldest_sent_at }))
}

/// Drops every expired deduplication record and receive attempt, and the messages a send wrote
/// into a queue while it was being deleted; says when the next record expires.
pub(super) async fn prune_expired_records(tx: &Tx<'_>, now: Millis) -> Result<Option<Millis>, Fail> {
    prune_dedup_records(tx, now, None).await?;
    prune_receive_attempts(tx, now, None).await?;
    exec(tx, "DELETE FROM messages WHERE queue_id IN (SELECT queue_id FROM deleted_queues)", &[]).await?;
    let next = row(
        tx,
        "SELECT min(at) FROM (SELECT min(expires_at) AS at FROM dedup_records
                              UNION ALL SELECT min(expires_at) FROM receive_attempts) AS expiries",
        &[],
    )
    .await?;
    Ok(next.map(|r| r.try_get(0)).transpose()?.flatten())
}
