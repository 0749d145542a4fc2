//! ReceiveMessage on PostgreSQL: standard, fair and FIFO delivery, receive attempts,
//! dead-lettering on the way, with the SQLite engine's rules (`crate::rules`) and order.
//!
//! Invariants:
//! - Candidates are picked with `FOR UPDATE SKIP LOCKED` in `(visible_at, seq)` order: two
//!   receives of one queue on any nodes never pick the same message, and neither waits for the
//!   other; a row another transaction holds is simply not a candidate this time.
//! - Each pick is decided in memory (`rules::judge`) and then applied in one statement per kind
//!   (expire, dead-letter, lease), so a receive of ten messages is a handful of round trips.
//! - FIFO receives of one queue hold its advisory lock (`ops::lock_queue`), so the group lock
//!   cannot be taken twice by receives racing on two nodes; the group walk is the SQLite
//!   engine's, through `fifo_groups`.
//! - A message whose contents no longer match its digest is quarantined instead of delivered.

use std::collections::BTreeSet;

use deadpool_postgres::GenericClient;
use holdfast_core::store::{
    DeadLetterTarget, Delivery, FairOrder, Lease, Millis, QueueId, ReceiveAttempt, ReceiveOutcome, ReceiveParams,
    StoredMessage, STANDARD_LOOKAHEAD,
};
use tokio_postgres::Row;

use super::moves::{move_messages_to, Move};
use super::ops::{exec, lease_to_sql, lock_queue, prune_receive_attempts, queue_exists, row, rows};
use super::{Fail, Tx};
use crate::rules::{content_digest, is_live, judge, usable_dead_letter, visit_quiet_groups, Verdict, PRUNE_PER_CALL};

/// The columns `stored_message` reads, in order, of an UPDATE of `messages m`.
const RETURNING: &str = "RETURNING m.seq, m.message_id, m.body, m.attributes, m.system_attributes, m.group_id,
                  m.dedup_id, m.sender_id, m.sent_at, m.receive_count, m.first_received_at,
                  m.dead_letter_source_arn, m.digest, m.lease";

fn stored_message(r: &Row) -> Result<(StoredMessage, Option<Vec<u8>>), Fail> {
    stored_message_at(r, 0)
}

/// `stored_message` for a row whose message columns start at column `at`.
fn stored_message_at(r: &Row, at: usize) -> Result<(StoredMessage, Option<Vec<u8>>), Fail> {
    let message = StoredMessage {
        seq: r.try_get(at)?,
        message_id: r.try_get(at + 1)?,
        body: r.try_get(at + 2)?,
        attributes: r.try_get(at + 3)?,
        system_attributes: r.try_get(at + 4)?,
        group_id: r.try_get(at + 5)?,
        deduplication_id: r.try_get(at + 6)?,
        sender_id: r.try_get(at + 7)?,
        sent_at: r.try_get(at + 8)?,
        receive_count: r.try_get::<_, i32>(at + 9)?.max(0) as u32,
        first_received_at: r.try_get(at + 10)?,
        dead_letter_source_arn: r.try_get(at + 11)?,
        lease: r.try_get::<_, Option<i64>>(at + 13)?.unwrap_or_default() as u64,
    };
    Ok((message, r.try_get(at + 12)?))
}

/// What the one-statement standard receive found.
pub(super) enum Quick {
    Done(ReceiveOutcome),
    /// The queue does not exist.
    Gone,
    /// Among the messages it would look at, some are expired or exhausted: the full receive
    /// (`receive_messages`, in a transaction) deals with them. Nothing was changed.
    NeedsFullReceive,
}

/// The common standard receive in one statement on its own: a plain queue (not fair, no receive
/// attempt) whose first `max_messages + STANDARD_LOOKAHEAD` visible messages are all deliverable
/// (none past retention, none exhausted). Then the pick, the oldest by seq, the leases and the
/// next visibility are exactly `receive_messages`'s, in one round trip instead of a transaction.
pub(super) async fn receive_quick(db: &impl GenericClient, queue: QueueId, p: &ReceiveParams) -> Result<Quick, Fail> {
    let max_receive_count = match &p.dead_letter {
        Some(t) if t.queue != queue => i32::try_from(t.max_receive_count).unwrap_or(i32::MAX),
        _ => i32::MAX,
    };
    let leases: Vec<i64> = (0..p.max_messages).map(|_| lease_to_sql(rand::random::<u64>())).collect();
    let visible_at = p.now + p.visibility_timeout_ms;
    let found = rows(
        db,
        "WITH picked AS (
             SELECT seq, sent_at, receive_count FROM messages WHERE queue_id = $1 AND visible_at <= $2
             ORDER BY visible_at, seq LIMIT $3 FOR UPDATE SKIP LOCKED),
         info AS (
             SELECT EXISTS (SELECT 1 FROM queues WHERE id = $1) AS queue_exists,
                    EXISTS (SELECT 1 FROM picked WHERE sent_at < $4 OR receive_count >= $5) AS blocked,
                    (SELECT min(visible_at) FROM messages WHERE queue_id = $1 AND visible_at > $2) AS hidden_from),
         chosen AS (
             SELECT seq, row_number() OVER (ORDER BY seq) AS n FROM picked
             WHERE NOT (SELECT blocked FROM info) ORDER BY seq LIMIT $6),
         leased AS (
             UPDATE messages m SET visible_at = $7, receive_count = m.receive_count + 1,
                 first_received_at = coalesce(m.first_received_at, $2), lease = ($8::bigint[])[c.n], leased_at = $2
             FROM chosen c WHERE m.seq = c.seq
             RETURNING m.seq, m.message_id, m.body, m.attributes, m.system_attributes, m.group_id, m.dedup_id,
                       m.sender_id, m.sent_at, m.receive_count, m.first_received_at, m.dead_letter_source_arn,
                       m.digest, m.lease)
         SELECT info.queue_exists, info.blocked, info.hidden_from, leased.* FROM info LEFT JOIN leased ON true",
        &[
            &queue,
            &p.now,
            &((p.max_messages + STANDARD_LOOKAHEAD) as i64),
            &(p.now - p.retention_ms),
            &max_receive_count,
            &(p.max_messages as i64),
            &visible_at,
            &leases,
        ],
    )
    .await?;
    let info = found.first().ok_or_else(|| Fail::Data("the receive statement returned no row".into()))?;
    if !info.try_get::<_, bool>(0)? {
        return Ok(Quick::Gone);
    }
    if info.try_get::<_, bool>(1)? {
        return Ok(Quick::NeedsFullReceive);
    }
    let hidden_from: Option<Millis> = info.try_get(2)?;
    let mut messages = Vec::new();
    for r in &found {
        if r.try_get::<_, Option<i64>>(3)?.is_none() {
            continue;
        }
        match stored_message_at(r, 3) {
            Ok((m, Some(stored))) if stored[..] != content_digest(&m.body, &m.attributes, &m.system_attributes) => {
                let reason = "its contents do not match the digest stored when it was sent";
                quarantine(db, queue, m.seq, reason, p.now).await?;
            }
            Ok((m, _)) => messages.push(m),
            Err(error) => {
                let seq: i64 = r.try_get(3)?;
                quarantine(db, queue, seq, &format!("it cannot be read: {error}"), p.now).await?;
            }
        }
    }
    messages.sort_by_key(|m| m.seq);
    // The leased messages are the only ones that became hidden.
    let leased_until = (!messages.is_empty() && p.visibility_timeout_ms > 0).then_some(visible_at);
    let next_visible_at = match (hidden_from, leased_until) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(Quick::Done(ReceiveOutcome { messages, next_visible_at, dead_lettered: 0 }))
}

/// A visible message as a receive first sees it.
#[derive(Clone, Copy)]
struct Candidate {
    seq: i64,
    sent_at: Millis,
    receive_count: u32,
}

fn candidate(r: &Row) -> Result<Candidate, Fail> {
    Ok(Candidate { seq: r.try_get(0)?, sent_at: r.try_get(1)?, receive_count: r.try_get::<_, i32>(2)?.max(0) as u32 })
}

/// One receive in progress: what it has taken and moved so far.
struct Walk<'a, 't> {
    tx: &'a Tx<'t>,
    queue: QueueId,
    p: &'a ReceiveParams,
    target: Option<DeadLetterTarget>,
    leased: Vec<StoredMessage>,
    dead_lettered: u64,
}

impl Walk<'_, '_> {
    fn cutoff(&self) -> Millis {
        self.p.now - self.p.retention_ms
    }

    fn max_receive_count(&self) -> Option<u32> {
        self.target.as_ref().map(|t| t.max_receive_count)
    }

    fn verdict(&self, c: &Candidate) -> Verdict {
        judge(c.sent_at, c.receive_count, self.cutoff(), self.max_receive_count())
    }

    fn full(&self) -> bool {
        self.leased.len() >= self.p.max_messages
    }

    /// Acts on candidates in order until `wanted` more messages are leased: the expired ones met
    /// are removed, the exhausted ones dead-lettered, the rest leased, one statement for each kind.
    async fn take(&mut self, candidates: &[Candidate], wanted: usize) -> Result<(), Fail> {
        let goal = (self.leased.len() + wanted).min(self.p.max_messages);
        let (mut expire, mut dead, mut lease) = (Vec::new(), Vec::new(), Vec::new());
        for c in candidates {
            if self.leased.len() + lease.len() >= goal {
                break;
            }
            match self.verdict(c) {
                Verdict::Expire => expire.push(c.seq),
                Verdict::DeadLetter => dead.push((c.seq, c.sent_at)),
                Verdict::Deliver => lease.push(c.seq),
            }
        }
        if !expire.is_empty() {
            exec(self.tx, "DELETE FROM messages WHERE seq = ANY($1)", &[&expire]).await?;
        }
        if !dead.is_empty() {
            let target = self.target.as_ref().expect("judged exhausted only with a target");
            let how = Move::DeadLetter { source_arn: &target.source_arn };
            let moves: Vec<(i64, i64)> = dead.iter().map(|&(seq, _)| (seq, target.queue)).collect();
            move_messages_to(self.tx, &moves, how, target.reset_sent_at, self.p.now).await?;
            self.dead_lettered += dead.len() as u64;
        }
        if !lease.is_empty() {
            self.lease(&lease).await?;
        }
        Ok(())
    }

    /// Leases the messages `seqs` (in that order), each under a fresh random lease.
    async fn lease(&mut self, seqs: &[i64]) -> Result<(), Fail> {
        let leases: Vec<i64> = seqs.iter().map(|_| lease_to_sql(rand::random::<u64>())).collect();
        let visible_at = self.p.now + self.p.visibility_timeout_ms;
        let updated = rows(
            self.tx,
            &format!(
                "UPDATE messages m
                 SET visible_at = $3, receive_count = m.receive_count + 1,
                     first_received_at = coalesce(m.first_received_at, $4), lease = l.lease, leased_at = $4
                 FROM unnest($1::bigint[], $2::bigint[]) AS l(seq, lease)
                 WHERE m.seq = l.seq AND m.visible_at <= $4
                 {RETURNING}"
            ),
            &[&seqs, &leases, &visible_at, &self.p.now],
        )
        .await?;
        let mut taken = Vec::with_capacity(updated.len());
        for r in &updated {
            let seq: i64 = r.try_get(0)?;
            let damage = match stored_message(r) {
                Err(error) => Some((seq, format!("it cannot be read: {error}"))),
                Ok((m, Some(stored))) if stored[..] != content_digest(&m.body, &m.attributes, &m.system_attributes) => {
                    Some((seq, "its contents do not match the digest stored when it was sent".to_owned()))
                }
                Ok((m, _)) => {
                    taken.push(m);
                    None
                }
            };
            if let Some((seq, reason)) = damage {
                quarantine(self.tx, self.queue, seq, &reason, self.p.now).await?;
            }
        }
        // In the order asked for (RETURNING lists rows in no promised order).
        taken.sort_by_key(|m| seqs.iter().position(|&s| s == m.seq));
        self.leased.extend(taken);
        Ok(())
    }

    /// Up to `want` deliverable visible messages of the queue (or of one group) in
    /// `(visible_at, seq)` order, with the expired and exhausted ones met on the way, each row
    /// locked; rows other receives hold are passed over.
    async fn pick(&self, group: Option<&str>, want: usize) -> Result<Vec<Candidate>, Fail> {
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut after = (Millis::MIN, i64::MIN);
        let mut deliverable = 0;
        while deliverable < want {
            let limit = want - deliverable;
            let page = match group {
                None => {
                    rows(
                        self.tx,
                        "SELECT seq, sent_at, receive_count, visible_at FROM messages
                         WHERE queue_id = $1 AND visible_at <= $2 AND (visible_at, seq) > ($3, $4)
                         ORDER BY visible_at, seq LIMIT $5 FOR UPDATE SKIP LOCKED",
                        &[&self.queue, &self.p.now, &after.0, &after.1, &(limit as i64)],
                    )
                    .await?
                }
                Some(group) => {
                    rows(
                        self.tx,
                        "SELECT seq, sent_at, receive_count, visible_at FROM messages
                         WHERE queue_id = $1 AND group_id = $6 AND visible_at <= $2 AND (visible_at, seq) > ($3, $4)
                         ORDER BY visible_at, seq LIMIT $5 FOR UPDATE SKIP LOCKED",
                        &[&self.queue, &self.p.now, &after.0, &after.1, &(limit as i64), &group],
                    )
                    .await?
                }
            };
            for r in &page {
                let c = candidate(r)?;
                if self.verdict(&c) == Verdict::Deliver {
                    deliverable += 1;
                }
                candidates.push(c);
                after = (r.try_get(3)?, c.seq);
            }
            if page.len() < limit {
                break;
            }
        }
        Ok(candidates)
    }

    /// Standard delivery: of the first `max_messages + STANDARD_LOOKAHEAD` deliverable messages in
    /// `(visible_at, seq)` order, the oldest by seq.
    async fn standard(&mut self) -> Result<(), Fail> {
        let mut candidates = self.pick(None, self.p.max_messages + STANDARD_LOOKAHEAD).await?;
        candidates.sort_unstable_by_key(|c| c.seq);
        self.take(&candidates, self.p.max_messages).await
    }

    /// Fair-queue delivery (`FairOrder`): quiet tenants first, then the noisy ones in the order given.
    async fn fair(&mut self, order: &FairOrder) -> Result<(), Fail> {
        let (queue, now) = (self.queue, self.p.now);
        // Messages without a group, each its own (quiet) tenant, among the first visible ones.
        let head = rows(
            self.tx,
            "SELECT seq, sent_at, receive_count, group_id IS NULL FROM messages
             WHERE queue_id = $1 AND visible_at <= $2 ORDER BY visible_at, seq LIMIT $3",
            &[&queue, &now, &(FairOrder::UNGROUPED_LOOK as i64)],
        )
        .await?;
        let mut ungrouped = Vec::new();
        for r in &head {
            if r.try_get::<_, bool>(3)? {
                ungrouped.push(r.try_get::<_, i64>(0)?);
            }
        }
        // Locked only now, and only the ungrouped ones: rows another receive holds drop out.
        let locked = rows(
            self.tx,
            "SELECT seq, sent_at, receive_count FROM messages WHERE seq = ANY($1) AND visible_at <= $2
             ORDER BY visible_at, seq FOR UPDATE SKIP LOCKED",
            &[&ungrouped, &now],
        )
        .await?;
        let ungrouped = locked.iter().map(candidate).collect::<Result<Vec<_>, _>>()?;
        self.take(&ungrouped, self.p.max_messages).await?;
        // The quiet groups, round robin from `start_after`. The groups the walk can reach are at
        // most `GROUP_VISITS` after `start_after` and as many from the first name on (after it
        // wraps around), so those two runs are read first and the walk is planned over them.
        let start = order.start_after.clone().unwrap_or_default();
        let mut names = BTreeSet::new();
        for (sql, from) in [
            (
                "SELECT group_id FROM fifo_groups WHERE queue_id = $1 AND group_id > $2 ORDER BY group_id LIMIT $3",
                &start,
            ),
            (
                "SELECT group_id FROM fifo_groups WHERE queue_id = $1 AND group_id >= $2 ORDER BY group_id LIMIT $3",
                &String::new(),
            ),
        ] {
            for r in rows(self.tx, sql, &[&queue, from, &(FairOrder::GROUP_VISITS as i64)]).await? {
                names.insert(r.try_get::<_, String>(0)?);
            }
        }
        let mut quiet = Vec::new();
        visit_quiet_groups::<_, Fail>(
            order,
            &mut quiet,
            |_, after| {
                Ok(names
                    .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                    .next()
                    .cloned())
            },
            |quiet, group| {
                quiet.push(group.to_owned());
                Ok(true)
            },
        )?;
        for group in quiet.iter().chain(&order.noisy) {
            if self.full() {
                break;
            }
            self.take_group(group).await?;
        }
        Ok(())
    }

    /// Takes the group's visible messages in `(visible_at, seq)` order until the receive is full.
    async fn take_group(&mut self, group: &str) -> Result<(), Fail> {
        let wanted = self.p.max_messages - self.leased.len();
        let candidates = self.pick(Some(group), wanted).await?;
        self.take(&candidates, wanted).await
    }

    /// FIFO delivery: available groups in the order they became available; each from its head in
    /// seq order while its messages are visible.
    async fn fifo(&mut self) -> Result<(), Fail> {
        let (tx, queue, now) = (self.tx, self.queue, self.p.now);
        exec(
            tx,
            "UPDATE fifo_groups SET ready = true WHERE queue_id = $1 AND NOT ready AND head_visible_at <= $2",
            &[&queue, &now],
        )
        .await?;
        let mut last = (Millis::MIN, i64::MIN);
        while !self.full() {
            let next = row(
                tx,
                "SELECT group_id, head_seq, head_visible_at FROM fifo_groups
                 WHERE queue_id = $1 AND ready AND (head_visible_at, head_seq) > ($2, $3) AND head_visible_at <= $4
                 ORDER BY head_visible_at, head_seq LIMIT 1",
                &[&queue, &last.0, &last.1, &now],
            )
            .await?;
            let Some(next) = next else { break };
            let (group, head, head_visible_at): (String, i64, Millis) =
                (next.try_get(0)?, next.try_get(1)?, next.try_get(2)?);
            last = (head_visible_at, head);
            let mut from = head;
            while !self.full() {
                let next = row(
                    tx,
                    "SELECT seq, sent_at, receive_count, visible_at FROM messages
                     WHERE queue_id = $1 AND group_id = $2 AND seq >= $3 ORDER BY seq LIMIT 1",
                    &[&queue, &group, &from],
                )
                .await?;
                let Some(next) = next else { break };
                let c = candidate(&next)?;
                if next.try_get::<_, Millis>(3)? > now {
                    break;
                }
                from = c.seq + 1;
                self.take(&[c], 1).await?;
            }
        }
        Ok(())
    }
}

pub(super) async fn receive_messages(
    tx: &Tx<'_>,
    queue: QueueId,
    p: &ReceiveParams,
) -> Result<Option<ReceiveOutcome>, Fail> {
    if p.delivery == Delivery::Fifo {
        lock_queue(tx, queue).await?;
    }
    if !queue_exists(tx, queue).await? {
        return Ok(None);
    }
    if let Some(attempt) = &p.attempt {
        if let Some(leases) = live_attempt(tx, queue, attempt, p.now).await? {
            let messages = renew(tx, queue, &leases, p.now + p.visibility_timeout_ms).await?;
            let next_visible_at = next_visible_at(tx, queue, p.delivery, p.now).await?;
            return Ok(Some(ReceiveOutcome { messages, next_visible_at, dead_lettered: 0 }));
        }
    }
    let target = match &p.dead_letter {
        Some(t) if t.queue != queue => {
            let exists = queue_exists(tx, t.queue).await?;
            usable_dead_letter(queue, Some(t.clone()), |_| exists)
        }
        _ => None,
    };
    let mut walk = Walk { tx, queue, p, target, leased: Vec::new(), dead_lettered: 0 };
    match (p.delivery, &p.fair) {
        (Delivery::Standard, Some(order)) => walk.fair(order).await?,
        (Delivery::Standard, None) => walk.standard().await?,
        (Delivery::Fifo, _) => walk.fifo().await?,
    }
    let Walk { mut leased, dead_lettered, .. } = walk;
    if p.delivery == Delivery::Standard {
        leased.sort_by_key(|m| m.seq);
    }
    if let Some(attempt) = &p.attempt {
        if !leased.is_empty() {
            record_attempt(tx, queue, attempt, &leased, p.now).await?;
        }
    }
    let next_visible_at = next_visible_at(tx, queue, p.delivery, p.now).await?;
    Ok(Some(ReceiveOutcome { messages: leased, next_visible_at, dead_lettered }))
}

/// When the earliest message not yet available becomes available: for standard delivery any
/// hidden message; for FIFO the head of a locked or delayed group.
async fn next_visible_at(tx: &Tx<'_>, queue: QueueId, delivery: Delivery, now: Millis) -> Result<Option<Millis>, Fail> {
    let sql = match delivery {
        Delivery::Standard => "SELECT min(visible_at) FROM messages WHERE queue_id = $1 AND visible_at > $2",
        Delivery::Fifo => {
            "SELECT min(head_visible_at) FROM fifo_groups WHERE queue_id = $1 AND NOT ready AND head_visible_at > $2"
        }
    };
    Ok(row(tx, sql, &[&queue, &now]).await?.map(|r| r.try_get(0)).transpose()?.flatten())
}

/// The leases a live attempt returned, as `(seq, lease)` pairs.
async fn live_attempt(
    tx: &Tx<'_>,
    queue: QueueId,
    attempt: &ReceiveAttempt,
    now: Millis,
) -> Result<Option<Vec<Lease>>, Fail> {
    let found = row(
        tx,
        "SELECT leases, expires_at FROM receive_attempts WHERE queue_id = $1 AND attempt_id = $2",
        &[&queue, &attempt.id],
    )
    .await?;
    let Some(found) = found else { return Ok(None) };
    let (leases, expires_at): (String, Millis) = (found.try_get(0)?, found.try_get(1)?);
    if !is_live(expires_at, now) {
        return Ok(None);
    }
    let pairs: Vec<(i64, i64)> =
        serde_json::from_str(&leases).map_err(|e| Fail::Data(format!("a receive attempt is not JSON: {e}")))?;
    Ok(Some(pairs.into_iter().map(|(seq, lease)| Lease { seq, lease: lease as u64 }).collect()))
}

/// A retried attempt: restarts the visibility timeout of each message still under the attempt's
/// lease, in the order the first receive returned them.
async fn renew(tx: &Tx<'_>, queue: QueueId, leases: &[Lease], visible_at: Millis) -> Result<Vec<StoredMessage>, Fail> {
    let mut messages = Vec::with_capacity(leases.len());
    for Lease { seq, lease } in leases {
        let renewed = row(
            tx,
            &format!(
                "UPDATE messages m SET visible_at = $4 WHERE seq = $1 AND queue_id = $2 AND lease = $3 {RETURNING}"
            ),
            &[seq, &queue, &lease_to_sql(*lease), &visible_at],
        )
        .await?;
        if let Some(r) = renewed {
            messages.push(stored_message(&r)?.0);
        }
    }
    Ok(messages)
}

async fn record_attempt(
    tx: &Tx<'_>,
    queue: QueueId,
    attempt: &ReceiveAttempt,
    messages: &[StoredMessage],
    now: Millis,
) -> Result<(), Fail> {
    let pairs: Vec<(i64, i64)> = messages.iter().map(|m| (m.seq, lease_to_sql(m.lease))).collect();
    let leases = serde_json::to_string(&pairs).expect("pairs of integers always serialise");
    exec(
        tx,
        "INSERT INTO receive_attempts (queue_id, attempt_id, leases, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (queue_id, attempt_id) DO UPDATE SET leases = EXCLUDED.leases, expires_at = EXCLUDED.expires_at",
        &[&queue, &attempt.id, &leases, &(now + attempt.window_ms)],
    )
    .await?;
    prune_receive_attempts(tx, now, Some(PRUNE_PER_CALL)).await?;
    Ok(())
}

/// Moves a damaged message out of its queue into `quarantined_messages`, and says so. Both steps
/// can be repeated: a message quarantined but not yet removed is quarantined again, once.
async fn quarantine(tx: &impl GenericClient, queue: QueueId, seq: i64, reason: &str, now: Millis) -> Result<(), Fail> {
    exec(
        tx,
        "INSERT INTO quarantined_messages
             (seq, queue_id, message_id, body, attributes, system_attributes, reason, quarantined_at)
         SELECT seq, queue_id, message_id, body, attributes, system_attributes, $2, $3 FROM messages WHERE seq = $1
         ON CONFLICT (seq) DO NOTHING",
        &[&seq, &reason, &now],
    )
    .await?;
    exec(tx, "DELETE FROM messages WHERE seq = $1", &[&seq]).await?;
    tracing::error!(queue, seq, reason, "a damaged message was quarantined instead of delivered");
    Ok(())
}
