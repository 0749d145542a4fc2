//! ReceiveMessage: standard and FIFO delivery, receive attempts, dead-lettering on the way.
//!
//! Invariants:
//! - Standard receive reads `messages_by_visibility` from its start and stops after
//!   `max_messages` deliverable messages: its cost follows what it returns (plus the expired and
//!   dead-lettered messages it removes), never the backlog.
//! - FIFO receive first promotes the groups whose head became visible (`fifo_groups_waiting`,
//!   a range of exactly those), then takes ready groups in the order they became available
//!   (`fifo_groups_ready`: by when the head became visible)
//!   and walks each from its head through `messages_by_group` while messages are visible. It
//!   reads the groups it serves and the messages it returns or removes, never a group's backlog
//!   behind the first message it stops at, nor the groups that are locked.
//! - The walk holds no statement open while it writes: each step is a fresh `LIMIT 1` lookup,
//!   so the triggers that move group heads never change rows under an open cursor.
//! - What happens to each message met is `rules::judge`, as in the memory engine.
//! - A message about to be delivered whose contents no longer match the digest stored with it, or
//!   that cannot even be read, is moved to `quarantined_messages` (and logged) instead: one
//!   damaged record costs that message, never every receive of its queue.

use holdfast_core::store::{
    DeadLetterTarget, Delivery, FairOrder, Lease, Millis, QueueId, ReceiveAttempt, ReceiveOutcome, ReceiveParams,
    StoredMessage, STANDARD_LOOKAHEAD,
};
use rusqlite::{params, Connection, OptionalExtension, Result};

use super::moves::{move_message, Move};
use super::ops::{adjust_count, lease_to_sql, prune_receive_attempts, queue_exists};
use crate::rules::{content_digest, is_live, judge, usable_dead_letter, visit_quiet_groups, Verdict, PRUNE_PER_CALL};

/// The columns `stored_message` reads, in order, after an UPDATE of the message.
const RETURNING: &str = "RETURNING seq, message_id, body, attributes, system_attributes, group_id, dedup_id, sender_id,
                  sent_at, receive_count, first_received_at, dead_letter_source_arn, digest";

fn stored_message(r: &rusqlite::Row<'_>, lease: u64) -> Result<StoredMessage> {
    Ok(StoredMessage {
        seq: r.get(0)?,
        message_id: r.get(1)?,
        body: r.get(2)?,
        attributes: r.get(3)?,
        system_attributes: r.get(4)?,
        group_id: r.get(5)?,
        deduplication_id: r.get(6)?,
        sender_id: r.get(7)?,
        sent_at: r.get(8)?,
        receive_count: r.get(9)?,
        first_received_at: r.get(10)?,
        lease,
        dead_letter_source_arn: r.get(11)?,
    })
}

/// One receive in progress: what it has taken, removed and moved so far.
struct Walk<'a> {
    conn: &'a Connection,
    queue: QueueId,
    p: &'a ReceiveParams,
    target: Option<DeadLetterTarget>,
    leased: Vec<StoredMessage>,
    expired: i64,
    dead_lettered: i64,
}

impl Walk<'_> {
    fn cutoff(&self) -> Millis {
        self.p.now - self.p.retention_ms
    }

    fn max_receive_count(&self) -> Option<u32> {
        self.target.as_ref().map(|t| t.max_receive_count)
    }

    fn full(&self) -> bool {
        self.leased.len() >= self.p.max_messages
    }

    /// Acts on one visible message as `rules::judge` decides.
    fn take(&mut self, seq: i64, sent_at: Millis, receive_count: u32) -> Result<()> {
        match judge(sent_at, receive_count, self.cutoff(), self.max_receive_count()) {
            Verdict::Expire => {
                self.conn.prepare_cached("DELETE FROM messages WHERE seq = ?1")?.execute([seq])?;
                self.expired += 1;
            }
            Verdict::DeadLetter => {
                let target = self.target.as_ref().expect("judged exhausted only with a target");
                let how = Move::DeadLetter { source_arn: &target.source_arn };
                move_message(self.conn, seq, sent_at, target.queue, how, target.reset_sent_at, self.p.now)?;
                self.dead_lettered += 1;
            }
            Verdict::Deliver => self.lease(seq)?,
        }
        Ok(())
    }

    fn lease(&mut self, seq: i64) -> Result<()> {
        let lease = rand::random::<u64>();
        let visible_at = self.p.now + self.p.visibility_timeout_ms;
        let (message, digest) = self
            .conn
            .prepare_cached(&format!(
                "UPDATE messages
                 SET visible_at = ?2, receive_count = receive_count + 1,
                     first_received_at = coalesce(first_received_at, ?3), lease = ?4, leased_at = ?3
                 WHERE seq = ?1
                 {RETURNING}"
            ))?
            .query_row(params![seq, visible_at, self.p.now, lease_to_sql(lease)], |r| {
                Ok((stored_message(r, lease), r.get::<_, Option<Vec<u8>>>(12)))
            })?;
        let damage = match (&message, &digest) {
            (Err(error), _) => Some(format!("it cannot be read: {error}")),
            (_, Err(error)) => Some(format!("its digest cannot be read: {error}")),
            (Ok(m), Ok(Some(stored))) if stored[..] != content_digest(&m.body, &m.attributes, &m.system_attributes) => {
                Some("its contents do not match the digest stored when it was sent".to_owned())
            }
            _ => None,
        };
        match (damage, message) {
            (Some(reason), _) => quarantine(self.conn, self.queue, seq, &reason, self.p.now),
            (None, Ok(message)) => {
                self.leased.push(message);
                Ok(())
            }
            (None, Err(error)) => Err(error),
        }
    }

    /// Standard delivery (`Delivery::Standard`): candidates in `(visible_at, seq)` order, a few
    /// more than asked for, collected first (the cursor is closed before anything changes), then
    /// acted on oldest first.
    fn standard(&mut self) -> Result<()> {
        let mut candidates = Vec::new();
        {
            let mut select = self.conn.prepare_cached(
                "SELECT seq, sent_at, receive_count FROM messages
                 WHERE queue_id = ?1 AND visible_at <= ?2 ORDER BY visible_at, seq",
            )?;
            let mut rows = select.query(params![self.queue, self.p.now])?;
            let mut deliverable = 0;
            while deliverable < self.p.max_messages + STANDARD_LOOKAHEAD {
                let Some(row) = rows.next()? else { break };
                let (seq, sent_at, receive_count): (i64, Millis, u32) = (row.get(0)?, row.get(1)?, row.get(2)?);
                if judge(sent_at, receive_count, self.cutoff(), self.max_receive_count()) == Verdict::Deliver {
                    deliverable += 1;
                }
                candidates.push((seq, sent_at, receive_count));
            }
        }
        candidates.sort_unstable_by_key(|&(seq, _, _)| seq);
        self.take_candidates(candidates, self.p.max_messages)
    }

    /// Fair-queue delivery (`FairOrder`): quiet tenants first, then the noisy ones in the order
    /// given. Candidates are collected before anything changes, like `standard`'s.
    fn fair(&mut self, order: &FairOrder) -> Result<()> {
        let conn = self.conn;
        let (queue, now) = (self.queue, self.p.now);
        let mut candidates = Vec::new();
        // Messages without a group, each its own (quiet) tenant, among the first visible ones.
        {
            let mut select = conn.prepare_cached(
                "SELECT seq, sent_at, receive_count, group_id IS NULL FROM messages INDEXED BY messages_by_visibility
                 WHERE queue_id = ?1 AND visible_at <= ?2 ORDER BY visible_at, seq LIMIT ?3",
            )?;
            let mut rows = select.query(params![queue, now, FairOrder::UNGROUPED_LOOK as i64])?;
            while let Some(row) = rows.next()? {
                if row.get::<_, bool>(3)? {
                    candidates.push((row.get(0)?, row.get(1)?, row.get(2)?));
                }
            }
        }
        self.take_candidates(candidates, self.p.max_messages)?;
        // The quiet groups, round robin from `start_after`.
        let mut next_group = conn.prepare_cached(
            "SELECT group_id FROM fifo_groups WHERE queue_id = ?1 AND group_id > ?2 ORDER BY group_id LIMIT 1",
        )?;
        if !self.full() {
            visit_quiet_groups(
                order,
                self,
                |_, after| next_group.query_row(params![queue, after], |r| r.get(0)).optional(),
                |walk, group| {
                    walk.take_group(group)?;
                    Ok(!walk.full())
                },
            )?;
        }
        for group in &order.noisy {
            if self.full() {
                break;
            }
            self.take_group(group)?;
        }
        Ok(())
    }

    /// Takes the group's visible messages in `(visible_at, seq)` order until the receive is full.
    fn take_group(&mut self, group: &str) -> Result<()> {
        let mut candidates = Vec::new();
        {
            let mut select = self.conn.prepare_cached(
                "SELECT seq, sent_at, receive_count FROM messages INDEXED BY messages_by_group_visibility
                 WHERE queue_id = ?1 AND group_id = ?2 AND visible_at <= ?3 ORDER BY visible_at, seq",
            )?;
            let mut rows = select.query(params![self.queue, group, self.p.now])?;
            let wanted = self.p.max_messages - self.leased.len();
            let mut deliverable = 0;
            while deliverable < wanted {
                let Some(row) = rows.next()? else { break };
                let (seq, sent_at, receive_count): (i64, Millis, u32) = (row.get(0)?, row.get(1)?, row.get(2)?);
                if judge(sent_at, receive_count, self.cutoff(), self.max_receive_count()) == Verdict::Deliver {
                    deliverable += 1;
                }
                candidates.push((seq, sent_at, receive_count));
            }
        }
        let wanted = self.p.max_messages - self.leased.len();
        self.take_candidates(candidates, wanted)
    }

    /// Acts on candidates in order until `wanted` more messages are leased.
    fn take_candidates(&mut self, candidates: Vec<(i64, Millis, u32)>, wanted: usize) -> Result<()> {
        let goal = self.leased.len() + wanted;
        for (seq, sent_at, receive_count) in candidates {
            if self.leased.len() >= goal.min(self.p.max_messages) {
                break;
            }
            self.take(seq, sent_at, receive_count)?;
        }
        Ok(())
    }

    /// FIFO delivery: available groups oldest head first; each from its head in seq order while
    /// its messages are visible. Every message met is judged like a standard candidate: the head
    /// first, then, once the head is leased, the messages behind it that this same receive would
    /// return (an exhausted one is dead-lettered rather than delivered).
    fn fifo(&mut self) -> Result<()> {
        let (conn, queue, now) = (self.conn, self.queue, self.p.now);
        conn.prepare_cached(
            "UPDATE fifo_groups INDEXED BY fifo_groups_waiting SET ready = 1
             WHERE queue_id = ?1 AND ready = 0 AND head_visible_at <= ?2",
        )?
        .execute(params![queue, now])?;
        // Groups in the order they became available: `(head_visible_at, head_seq)`.
        let mut last = (Millis::MIN, i64::MIN);
        while !self.full() {
            // A ready head is visible unless `now` went backwards since it was promoted.
            let next: Option<(String, i64, Millis)> = conn
                .prepare_cached(
                    "SELECT group_id, head_seq, head_visible_at FROM fifo_groups INDEXED BY fifo_groups_ready
                     WHERE queue_id = ?1 AND ready = 1 AND (head_visible_at, head_seq) > (?2, ?3)
                       AND head_visible_at <= ?4
                     ORDER BY head_visible_at, head_seq LIMIT 1",
                )?
                .query_row(params![queue, last.0, last.1, now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let Some((group, head, head_visible_at)) = next else { break };
            last = (head_visible_at, head);
            let mut from = head;
            while !self.full() {
                let next: Option<(i64, Millis, Millis, u32)> = conn
                    .prepare_cached(
                        "SELECT seq, visible_at, sent_at, receive_count FROM messages INDEXED BY messages_by_group
                         WHERE queue_id = ?1 AND group_id = ?2 AND seq >= ?3 ORDER BY seq LIMIT 1",
                    )?
                    .query_row(params![queue, group, from], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .optional()?;
                let Some((seq, visible_at, sent_at, receive_count)) = next else { break };
                if visible_at > now {
                    break;
                }
                from = seq + 1;
                self.take(seq, sent_at, receive_count)?;
            }
        }
        Ok(())
    }
}

pub(super) fn receive_messages(conn: &Connection, queue: QueueId, p: ReceiveParams) -> Result<Option<ReceiveOutcome>> {
    if !queue_exists(conn, queue)? {
        return Ok(None);
    }
    if let Some(attempt) = &p.attempt {
        if let Some(leases) = live_attempt(conn, queue, attempt, p.now)? {
            let messages = renew(conn, queue, leases, p.now + p.visibility_timeout_ms)?;
            let next_visible_at = next_visible_at(conn, queue, p.delivery, p.now)?;
            return Ok(Some(ReceiveOutcome { messages, next_visible_at, dead_lettered: 0 }));
        }
    }
    let target = match &p.dead_letter {
        Some(t) if t.queue != queue => {
            let exists = queue_exists(conn, t.queue)?;
            usable_dead_letter(queue, Some(t.clone()), |_| exists)
        }
        _ => None,
    };
    let mut walk = Walk { conn, queue, p: &p, target, leased: Vec::new(), expired: 0, dead_lettered: 0 };
    match (p.delivery, &p.fair) {
        (Delivery::Standard, Some(order)) => walk.fair(order)?,
        (Delivery::Standard, None) => walk.standard()?,
        (Delivery::Fifo, _) => walk.fifo()?,
    }
    let Walk { mut leased, expired, dead_lettered, target, .. } = walk;
    if expired + dead_lettered > 0 {
        adjust_count(conn, queue, -(expired + dead_lettered))?;
    }
    if let Some(target) = target.filter(|_| dead_lettered > 0) {
        adjust_count(conn, target.queue, dead_lettered)?;
    }
    // Standard messages go out oldest first; FIFO ones in the order of the walk, group by group
    // (AWS returns as many of one group as it can together).
    if p.delivery == Delivery::Standard {
        leased.sort_by_key(|m| m.seq);
    }
    if let Some(attempt) = &p.attempt {
        if !leased.is_empty() {
            record_attempt(conn, queue, attempt, &leased, p.now)?;
        }
    }
    let next_visible_at = next_visible_at(conn, queue, p.delivery, p.now)?;
    Ok(Some(ReceiveOutcome { messages: leased, next_visible_at, dead_lettered: dead_lettered as u64 }))
}

/// When the earliest message not yet available becomes available: for standard delivery any
/// hidden message; for FIFO the head of a locked or delayed group (a message behind an in-flight
/// head opens nothing when its own visibility ends).
fn next_visible_at(conn: &Connection, queue: QueueId, delivery: Delivery, now: Millis) -> Result<Option<Millis>> {
    let sql = match delivery {
        Delivery::Standard => "SELECT min(visible_at) FROM messages WHERE queue_id = ?1 AND visible_at > ?2",
        Delivery::Fifo => {
            "SELECT min(head_visible_at) FROM fifo_groups INDEXED BY fifo_groups_waiting
             WHERE queue_id = ?1 AND ready = 0 AND head_visible_at > ?2"
        }
    };
    conn.prepare_cached(sql)?.query_row(params![queue, now], |r| r.get(0))
}

/// The leases a live attempt returned, as `(seq, lease)` pairs.
fn live_attempt(
    conn: &Connection,
    queue: QueueId,
    attempt: &ReceiveAttempt,
    now: Millis,
) -> Result<Option<Vec<Lease>>> {
    let found: Option<(String, Millis)> = conn
        .prepare_cached("SELECT leases, expires_at FROM receive_attempts WHERE queue_id = ?1 AND attempt_id = ?2")?
        .query_row(params![queue, attempt.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((leases, _)) = found.filter(|(_, expires_at)| is_live(*expires_at, now)) else {
        return Ok(None);
    };
    let pairs: Vec<(i64, i64)> = serde_json::from_str(&leases)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(Some(pairs.into_iter().map(|(seq, lease)| Lease { seq, lease: lease as u64 }).collect()))
}

/// A retried attempt: restarts the visibility timeout of each message still under the attempt's
/// lease and returns it unchanged otherwise.
fn renew(conn: &Connection, queue: QueueId, leases: Vec<Lease>, visible_at: Millis) -> Result<Vec<StoredMessage>> {
    let mut update = conn.prepare_cached(&format!(
        "UPDATE messages SET visible_at = ?4 WHERE seq = ?1 AND queue_id = ?2 AND lease = ?3 {RETURNING}"
    ))?;
    let mut messages = Vec::with_capacity(leases.len());
    for Lease { seq, lease } in leases {
        let renewed = update
            .query_row(params![seq, queue, lease_to_sql(lease), visible_at], |r| stored_message(r, lease))
            .optional()?;
        messages.extend(renewed);
    }
    // In the order the first receive returned them (the attempt recorded them so).
    Ok(messages)
}

fn record_attempt(
    conn: &Connection,
    queue: QueueId,
    attempt: &ReceiveAttempt,
    messages: &[StoredMessage],
    now: Millis,
) -> Result<()> {
    let pairs: Vec<(i64, i64)> = messages.iter().map(|m| (m.seq, lease_to_sql(m.lease))).collect();
    let leases = serde_json::to_string(&pairs).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.prepare_cached(
        "INSERT INTO receive_attempts (queue_id, attempt_id, leases, expires_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (queue_id, attempt_id) DO UPDATE SET leases = excluded.leases, expires_at = excluded.expires_at",
    )?
    .execute(params![queue, attempt.id, leases, now + attempt.window_ms])?;
    prune_receive_attempts(conn, now, Some(PRUNE_PER_CALL))?;
    Ok(())
}

/// Moves a damaged message out of its queue into `quarantined_messages`, raw, and says so.
fn quarantine(conn: &Connection, queue: QueueId, seq: i64, reason: &str, now: Millis) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO quarantined_messages
             (seq, queue_id, message_id, body, attributes, system_attributes, reason, quarantined_at)
         SELECT seq, queue_id, CAST(message_id AS BLOB), CAST(body AS BLOB), attributes, system_attributes, ?2, ?3
         FROM messages WHERE seq = ?1",
    )?
    .execute(params![seq, reason, now])?;
    conn.prepare_cached("DELETE FROM messages WHERE seq = ?1")?.execute([seq])?;
    adjust_count(conn, queue, -1)?;
    tracing::error!(queue, seq, reason, "a damaged message was quarantined instead of delivered");
    Ok(())
}
