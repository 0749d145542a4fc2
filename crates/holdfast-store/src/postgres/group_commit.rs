//! Group commit for the two hottest calls, standard sends and deletes: calls that arrive while
//! others are being written are gathered and written together, in one statement and one commit,
//! instead of one commit (and one WAL flush) each.
//!
//! Invariants:
//! - A caller is answered only after the statement holding its rows has committed, so `Ok` still
//!   means durable; a failed statement fails every call it held, and none of them took effect.
//! - Gathering never waits: a writer takes the first call, then whatever else is already queued
//!   (up to `MAX_CALLS`). Alone, a call is written at once; under load, batches grow by themselves.
//! - `WRITERS` writers run at once, each on a pooled connection, so one slow commit does not stop
//!   the others.
//! - The outcome of each call is exactly what the call alone would have had: sends of a queue that
//!   is gone insert nothing and answer `None`; a lease listed twice deletes once, for the first.

use std::collections::HashMap;
use std::sync::Arc;

use deadpool_postgres::Pool;
use holdfast_core::store::{DeleteOutcome, Lease, NewMessage, QueueId, Sent, StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot, Mutex};

use super::ops::{lease_to_sql, queue_exists, rows};
use super::Fail;
use crate::rules::content_digest;
use crate::sqlite::writer::WriterStats;

/// Calls written together at most.
const MAX_CALLS: usize = 64;
/// Writers per kind of call.
const WRITERS: usize = 4;
/// Calls queued at most before callers wait for room.
const QUEUED: usize = 1024;

type Reply<T> = oneshot::Sender<StoreResult<Option<T>>>;

pub(super) struct SendCall {
    pub queue: QueueId,
    pub messages: Vec<NewMessage>,
    pub reply: Reply<Vec<Sent>>,
}

pub(super) struct DeleteCall {
    pub queue: QueueId,
    pub leases: Vec<Lease>,
    pub reply: Reply<Vec<DeleteOutcome>>,
}

/// Starts the writers of one kind of call; returns where to queue calls. Each write is counted in
/// `stats` as one commit of that many calls.
fn start<C: Send + 'static, F, Fut>(pool: Pool, stats: Arc<WriterStats>, write: F) -> mpsc::Sender<C>
where
    F: Fn(Pool, Vec<C>) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (sender, receiver) = mpsc::channel::<C>(QUEUED);
    let receiver = Arc::new(Mutex::new(receiver));
    for _ in 0..WRITERS {
        let (pool, receiver, stats) = (pool.clone(), Arc::clone(&receiver), Arc::clone(&stats));
        tokio::spawn(async move {
            loop {
                let calls = {
                    let mut receiver = receiver.lock().await;
                    let Some(first) = receiver.recv().await else { return };
                    let mut calls = vec![first];
                    while calls.len() < MAX_CALLS {
                        match receiver.try_recv() {
                            Ok(call) => calls.push(call),
                            Err(_) => break,
                        }
                    }
                    calls
                };
                let (count, started) = (calls.len(), std::time::Instant::now());
                write(pool.clone(), calls).await;
                stats.commit(started.elapsed());
                stats.batch(count);
            }
        });
    }
    sender
}

pub(super) fn sends(pool: Pool, stats: Arc<WriterStats>) -> mpsc::Sender<SendCall> {
    start(pool, stats, write_sends)
}

pub(super) fn deletes(pool: Pool, stats: Arc<WriterStats>) -> mpsc::Sender<DeleteCall> {
    start(pool, stats, write_deletes)
}

const INSERT: &str = "INSERT INTO messages (queue_id, message_id, body, attributes, system_attributes, group_id,
        dedup_id, sender_id, sent_at, visible_at, digest)
    SELECT m.queue_id, m.message_id, m.body, m.attributes, m.system_attributes, m.group_id, m.dedup_id,
           m.sender_id, m.sent_at, m.visible_at, m.digest
    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::text[], $7::text[], $8::text[],
                $9::bigint[], $10::bigint[], $11::bytea[]) WITH ORDINALITY
         AS m(queue_id, message_id, body, attributes, system_attributes, group_id, dedup_id, sender_id, sent_at,
              visible_at, digest, n)
    WHERE EXISTS (SELECT 1 FROM queues q WHERE q.id = m.queue_id)
    ORDER BY n
    RETURNING message_id, seq";

async fn write_sends(pool: Pool, calls: Vec<SendCall>) {
    let result = insert_all(&pool, &calls).await.map_err(|fail| fail.into_store("send_messages"));
    for call in calls {
        let answer = match &result {
            Err(error) => Err(error.clone()),
            Ok(seqs) => {
                let sent: Option<Vec<Sent>> = call
                    .messages
                    .iter()
                    .map(|m| {
                        seqs.get(&m.message_id).map(|&seq| Sent {
                            message_id: m.message_id.clone(),
                            seq,
                            duplicate: false,
                        })
                    })
                    .collect();
                // Nothing of a call is inserted only when its queue is gone.
                Ok(sent.filter(|sent| !sent.is_empty() || call.messages.is_empty()))
            }
        };
        let _ = call.reply.send(answer);
    }
}

/// Inserts every call's messages in one statement; the seq of each inserted message by MessageId.
async fn insert_all(pool: &Pool, calls: &[SendCall]) -> Result<HashMap<String, i64>, Fail> {
    let all: Vec<(QueueId, &NewMessage)> =
        calls.iter().flat_map(|c| c.messages.iter().map(move |m| (c.queue, m))).collect();
    let client = pool.get().await?;
    if all.is_empty() {
        return Ok(HashMap::new());
    }
    let queues: Vec<i64> = all.iter().map(|(q, _)| *q).collect();
    let ids: Vec<&str> = all.iter().map(|(_, m)| m.message_id.as_str()).collect();
    let bodies: Vec<&str> = all.iter().map(|(_, m)| m.body.as_str()).collect();
    let attributes: Vec<&[u8]> = all.iter().map(|(_, m)| m.attributes.as_slice()).collect();
    let system: Vec<&[u8]> = all.iter().map(|(_, m)| m.system_attributes.as_slice()).collect();
    let groups: Vec<Option<&str>> = all.iter().map(|(_, m)| m.group_id.as_deref()).collect();
    let dedups: Vec<Option<&str>> = all.iter().map(|(_, m)| m.deduplication_id.as_deref()).collect();
    let senders: Vec<&str> = all.iter().map(|(_, m)| m.sender_id.as_str()).collect();
    let sent: Vec<i64> = all.iter().map(|(_, m)| m.sent_at).collect();
    let visible: Vec<i64> = all.iter().map(|(_, m)| m.visible_at).collect();
    let digests: Vec<Vec<u8>> =
        all.iter().map(|(_, m)| content_digest(&m.body, &m.attributes, &m.system_attributes).to_vec()).collect();
    let found = rows(
        &client,
        INSERT,
        &[&queues, &ids, &bodies, &attributes, &system, &groups, &dedups, &senders, &sent, &visible, &digests],
    )
    .await?;
    found.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

async fn write_deletes(pool: Pool, calls: Vec<DeleteCall>) {
    let result = delete_all(&pool, &calls).await;
    for (call, answer) in calls.into_iter().zip(result) {
        let _ = call.reply.send(answer);
    }
}

/// Deletes every call's current leases in one statement; one answer per call.
async fn delete_all(pool: &Pool, calls: &[DeleteCall]) -> Vec<StoreResult<Option<Vec<DeleteOutcome>>>> {
    let failed = |fail: Fail| {
        let error: StoreError = fail.into_store("delete_messages");
        calls.iter().map(|_| Err(error.clone())).collect()
    };
    let client = match pool.get().await {
        Ok(client) => client,
        Err(error) => return failed(error.into()),
    };
    let all: Vec<(QueueId, &Lease)> = calls.iter().flat_map(|c| c.leases.iter().map(move |l| (c.queue, l))).collect();
    let queues: Vec<i64> = all.iter().map(|(q, _)| *q).collect();
    let seqs: Vec<i64> = all.iter().map(|(_, l)| l.seq).collect();
    let leases: Vec<i64> = all.iter().map(|(_, l)| lease_to_sql(l.lease)).collect();
    let deleted = match rows(
        &client,
        "DELETE FROM messages m USING unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS l(queue_id, seq, lease)
         WHERE m.seq = l.seq AND m.queue_id = l.queue_id AND m.lease = l.lease RETURNING m.seq",
        &[&queues, &seqs, &leases],
    )
    .await
    {
        Ok(deleted) => deleted,
        Err(fail) => return failed(fail),
    };
    let mut gone: Vec<i64> = Vec::with_capacity(deleted.len());
    for r in &deleted {
        match r.try_get(0) {
            Ok(seq) => gone.push(seq),
            Err(error) => return failed(error.into()),
        }
    }
    let mut answers = Vec::with_capacity(calls.len());
    for call in calls {
        // Each deleted seq answers the first lease that names it, in call order.
        let outcomes: Vec<DeleteOutcome> = call
            .leases
            .iter()
            .map(|l| match gone.iter().position(|&seq| seq == l.seq) {
                Some(at) => {
                    gone.swap_remove(at);
                    DeleteOutcome::Deleted
                }
                None => DeleteOutcome::NotCurrent,
            })
            .collect();
        let all_deleted = outcomes.iter().all(|o| *o == DeleteOutcome::Deleted);
        let answer = if all_deleted {
            Ok(Some(outcomes))
        } else {
            match queue_exists(&client, call.queue).await {
                Ok(true) => Ok(Some(outcomes)),
                Ok(false) => Ok(None),
                Err(fail) => Err(fail.into_store("delete_messages")),
            }
        };
        answers.push(answer);
    }
    answers
}
