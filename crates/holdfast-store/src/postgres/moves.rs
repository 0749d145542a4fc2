//! Messages leaving their queue for another (dead-lettering, message move tasks), and the move
//! tasks themselves, on PostgreSQL.
//!
//! Invariants:
//! - A move is an INSERT of a copy under a new seq and a DELETE of the original, in the call's
//!   transaction, for all the call's messages at once, in seq order (so a FIFO group keeps its
//!   order in the destination). The group triggers follow both statements.
//! - The rows moved are locked by the caller (`FOR UPDATE`, or `SKIP LOCKED` when picking), so a
//!   message being received elsewhere is never moved out from under that receive.
//! - A move task row is locked (`FOR UPDATE`) for each step, so a cancellation from another node
//!   and a step of the runner cannot both apply.

use holdfast_core::store::{
    DeadLetterTarget, MessageMove, Millis, MovableMessage, MoveStep, MoveTask, MoveTaskStatus, QueueId, SweepOutcome,
};
use tokio_postgres::Row;

use super::ops::{exec, queue_exists, row, rows};
use super::{Fail, Tx};
use crate::rules::{finish_step, is_active, newest_first, plan_step, sweep_move_order, usable_dead_letter};

/// How a message leaves its queue.
#[derive(Clone, Copy)]
pub(super) enum Move<'a> {
    /// Dead-lettered: keeps its receive count and first receive; records the source's ARN.
    DeadLetter { source_arn: &'a str },
    /// Moved by a move task: starts over, never received, no dead-letter source.
    Redrive,
}

/// Moves each `(seq, destination)` message: a new seq (in seq order), visible at `now`, leased by
/// nobody, its enqueue time kept or (`reset_sent_at`) restarted (`rules::moved_sent_at`).
pub(super) async fn move_messages_to(
    tx: &Tx<'_>,
    moves: &[(i64, QueueId)],
    how: Move<'_>,
    reset_sent_at: bool,
    now: Millis,
) -> Result<(), Fail> {
    let seqs: Vec<i64> = moves.iter().map(|&(seq, _)| seq).collect();
    let destinations: Vec<i64> = moves.iter().map(|&(_, queue)| queue).collect();
    match how {
        Move::DeadLetter { source_arn } => {
            exec(
                tx,
                "INSERT INTO messages (queue_id, message_id, body, attributes, system_attributes, group_id, dedup_id,
                                       sender_id, sent_at, visible_at, receive_count, first_received_at,
                                       dead_letter_source_arn, digest)
                 SELECT d.queue_id, message_id, body, attributes, system_attributes, group_id, dedup_id, sender_id,
                        CASE WHEN $3 THEN $4 ELSE sent_at END, $4, receive_count, first_received_at, $5, digest
                 FROM messages JOIN unnest($1::bigint[], $2::bigint[]) AS d(seq, queue_id) USING (seq)
                 ORDER BY seq",
                &[&seqs, &destinations, &reset_sent_at, &now, &source_arn],
            )
            .await?
        }
        Move::Redrive => {
            exec(
                tx,
                "INSERT INTO messages (queue_id, message_id, body, attributes, system_attributes, group_id, dedup_id,
                                       sender_id, sent_at, visible_at, digest)
                 SELECT d.queue_id, message_id, body, attributes, system_attributes, group_id, dedup_id, sender_id,
                        CASE WHEN $3 THEN $4 ELSE sent_at END, $4, digest
                 FROM messages JOIN unnest($1::bigint[], $2::bigint[]) AS d(seq, queue_id) USING (seq)
                 ORDER BY seq",
                &[&seqs, &destinations, &reset_sent_at, &now],
            )
            .await?
        }
    };
    exec(tx, "DELETE FROM messages WHERE seq = ANY($1)", &[&seqs]).await?;
    Ok(())
}

pub(super) async fn dead_letter_exhausted(
    tx: &Tx<'_>,
    queue: QueueId,
    target: DeadLetterTarget,
    now: Millis,
    limit: usize,
) -> Result<Option<SweepOutcome>, Fail> {
    if !queue_exists(tx, queue).await? {
        return Ok(None);
    }
    let exists = target.queue != queue && queue_exists(tx, target.queue).await?;
    let Some(target) = usable_dead_letter(queue, Some(target), |_| exists) else {
        return Ok(Some(SweepOutcome::default()));
    };
    let max = target.max_receive_count as i32;
    let picked = rows(
        tx,
        "SELECT seq FROM messages WHERE queue_id = $1 AND receive_count >= $2 AND receive_count > 0
             AND visible_at <= $3
         ORDER BY receive_count, seq LIMIT $4 FOR UPDATE SKIP LOCKED",
        &[&queue, &max, &now, &(limit as i64)],
    )
    .await?;
    let mut exhausted: Vec<i64> = picked.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    sweep_move_order(&mut exhausted, |&seq| seq);
    if !exhausted.is_empty() {
        let moves: Vec<(i64, QueueId)> = exhausted.iter().map(|&seq| (seq, target.queue)).collect();
        let how = Move::DeadLetter { source_arn: &target.source_arn };
        move_messages_to(tx, &moves, how, target.reset_sent_at, now).await?;
    }
    let next = row(
        tx,
        "SELECT min(visible_at) FROM messages
         WHERE queue_id = $1 AND receive_count >= $2 AND receive_count > 0 AND visible_at > $3",
        &[&queue, &max, &now],
    )
    .await?;
    let next_due_at: Option<Millis> = next.map(|r| r.try_get(0)).transpose()?.flatten();
    Ok(Some(SweepOutcome { moved: exhausted.len() as u64, next_due_at }))
}

pub(super) async fn movable_messages(
    tx: &Tx<'_>,
    queue: QueueId,
    now: Millis,
    limit: usize,
) -> Result<Option<Vec<MovableMessage>>, Fail> {
    if !queue_exists(tx, queue).await? {
        return Ok(None);
    }
    let found = rows(
        tx,
        "SELECT seq, dead_letter_source_arn FROM messages WHERE queue_id = $1 AND visible_at <= $2
         ORDER BY visible_at, seq LIMIT $3",
        &[&queue, &now, &(limit as i64)],
    )
    .await?;
    found
        .iter()
        .map(|r| Ok(MovableMessage { seq: r.try_get(0)?, dead_letter_source_arn: r.try_get(1)? }))
        .collect::<Result<_, Fail>>()
        .map(Some)
}

/// Moves those of `moves` still visible in `source` whose destination exists, in order; returns
/// how many moved.
async fn move_messages(tx: &Tx<'_>, source: QueueId, moves: Vec<MessageMove>, now: Millis) -> Result<u64, Fail> {
    let mut moved = 0;
    for m in moves {
        let visible = row(
            tx,
            "SELECT 1 FROM messages WHERE seq = $1 AND queue_id = $2 AND visible_at <= $3 FOR UPDATE",
            &[&m.seq, &source, &now],
        )
        .await?;
        if visible.is_none() || !queue_exists(tx, m.destination).await? {
            continue;
        }
        move_messages_to(tx, &[(m.seq, m.destination)], Move::Redrive, m.reset_sent_at, now).await?;
        moved += 1;
    }
    Ok(moved)
}

async fn save_move_task(tx: &Tx<'_>, task: &MoveTask) -> Result<(), Fail> {
    exec(
        tx,
        "INSERT INTO move_tasks (handle, source_queue, source_arn, destination_arn, max_per_second, status, moved,
                                 to_move, started_at, failure_reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (handle) DO UPDATE SET
             source_queue = EXCLUDED.source_queue, source_arn = EXCLUDED.source_arn,
             destination_arn = EXCLUDED.destination_arn, max_per_second = EXCLUDED.max_per_second,
             status = EXCLUDED.status, moved = EXCLUDED.moved, to_move = EXCLUDED.to_move,
             started_at = EXCLUDED.started_at, failure_reason = EXCLUDED.failure_reason",
        &[
            &task.handle,
            &task.source_queue,
            &task.source_arn,
            &task.destination_arn,
            &task.max_per_second.map(i64::from),
            &task.status.as_str(),
            &(task.moved as i64),
            &(task.to_move as i64),
            &task.started_at,
            &task.failure_reason,
        ],
    )
    .await?;
    Ok(())
}

/// Records a new task unless its source has an active one. The source queue's row is locked
/// first, so two nodes starting a task for one source at once cannot both succeed.
pub(super) async fn start_move_task(tx: &Tx<'_>, task: MoveTask) -> Result<Option<bool>, Fail> {
    if row(tx, "SELECT 1 FROM queues WHERE id = $1 FOR UPDATE", &[&task.source_queue]).await?.is_none() {
        return Ok(None);
    }
    if move_tasks(tx, Some(task.source_queue)).await?.iter().any(|t| is_active(t.status)) {
        return Ok(Some(false));
    }
    save_move_task(tx, &task).await?;
    Ok(Some(true))
}

async fn locked_move_task(tx: &Tx<'_>, handle: &str) -> Result<Option<MoveTask>, Fail> {
    let found =
        rows(tx, &format!("SELECT {TASK_COLUMNS} FROM move_tasks WHERE handle = $1 FOR UPDATE"), &[&handle]).await?;
    Ok(found.first().map(task_from_row).transpose()?.map(|(_, task)| task))
}

pub(super) async fn cancel_move_task(tx: &Tx<'_>, handle: &str) -> Result<Option<MoveTask>, Fail> {
    let Some(task) = locked_move_task(tx, handle).await? else { return Ok(None) };
    if task.status == MoveTaskStatus::Running {
        save_move_task(tx, &MoveTask { status: MoveTaskStatus::Cancelling, ..task.clone() }).await?;
    }
    Ok(Some(task))
}

pub(super) async fn advance_move_task(
    tx: &Tx<'_>,
    handle: &str,
    step: MoveStep,
    now: Millis,
) -> Result<Option<MoveTask>, Fail> {
    let Some(mut task) = locked_move_task(tx, handle).await? else { return Ok(None) };
    let plan = plan_step(task.status, step);
    let moved = if plan.moves.is_empty() { 0 } else { move_messages(tx, task.source_queue, plan.moves, now).await? };
    finish_step(&mut task, moved, plan.ends);
    save_move_task(tx, &task).await?;
    Ok(Some(task))
}

const TASK_COLUMNS: &str = "id, handle, source_queue, source_arn, destination_arn, max_per_second, status, moved, \
                            to_move, started_at, failure_reason";

fn task_from_row(r: &Row) -> Result<(u64, MoveTask), Fail> {
    let status: String = r.try_get(6)?;
    let status =
        MoveTaskStatus::parse(&status).ok_or_else(|| Fail::Data(format!("unknown move task status {status:?}")))?;
    let task = MoveTask {
        handle: r.try_get(1)?,
        source_queue: r.try_get(2)?,
        source_arn: r.try_get(3)?,
        destination_arn: r.try_get(4)?,
        max_per_second: r.try_get::<_, Option<i64>>(5)?.map(|v| v.clamp(0, u32::MAX as i64) as u32),
        status,
        moved: r.try_get::<_, i64>(7)?.max(0) as u64,
        to_move: r.try_get::<_, i64>(8)?.max(0) as u64,
        started_at: r.try_get(9)?,
        failure_reason: r.try_get(10)?,
    };
    Ok((r.try_get::<_, i64>(0)?.max(0) as u64, task))
}

/// Move tasks, newest first: those of one source queue, or all.
pub(super) async fn move_tasks(tx: &Tx<'_>, source_queue: Option<QueueId>) -> Result<Vec<MoveTask>, Fail> {
    let found = match source_queue {
        Some(queue) => {
            rows(tx, &format!("SELECT {TASK_COLUMNS} FROM move_tasks WHERE source_queue = $1"), &[&queue]).await?
        }
        None => rows(tx, &format!("SELECT {TASK_COLUMNS} FROM move_tasks"), &[]).await?,
    };
    let mut tasks = found.iter().map(task_from_row).collect::<Result<Vec<_>, _>>()?;
    newest_first(&mut tasks);
    Ok(tasks.into_iter().map(|(_, task)| task).collect())
}
