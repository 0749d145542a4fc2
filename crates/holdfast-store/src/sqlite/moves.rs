//! Messages leaving their queue for another (dead-lettering, message move tasks), and the move
//! tasks themselves.
//!
//! Invariants:
//! - A move is an INSERT of a copy under a new seq (AUTOINCREMENT: the destination sees it
//!   arrive after everything already there) and a DELETE of the original, in the call's
//!   savepoint, with both queues' `message_count` adjusted by the caller or here. The group
//!   triggers follow both statements like any other.
//! - The sweep reads `messages_received` from the first exhausted receive count on (see
//!   `schema::MIGRATION_V2` for why that index), never the never-received backlog.

use holdfast_core::store::{
    DeadLetterTarget, MessageMove, Millis, MovableMessage, MoveStep, MoveTask, MoveTaskStatus, QueueId, SweepOutcome,
};
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Result};

use super::ops::{adjust_count, queue_exists};
use crate::rules::{
    finish_step, is_active, moved_sent_at, newest_first, plan_step, sweep_move_order, usable_dead_letter,
};

/// How a message leaves its queue.
#[derive(Clone, Copy)]
pub(super) enum Move<'a> {
    /// Dead-lettered: keeps its receive count and first receive; records the source's ARN.
    DeadLetter { source_arn: &'a str },
    /// Moved by a move task: starts over, never received, no dead-letter source.
    Redrive,
}

/// Moves message `seq` (whose `sent_at` the caller has read) to `destination`: a new seq, visible
/// at `now`, leased by nobody. Adjusts no count: the caller does, once per call.
pub(super) fn move_message(
    conn: &Connection,
    seq: i64,
    sent_at: Millis,
    destination: QueueId,
    how: Move<'_>,
    reset_sent_at: bool,
    now: Millis,
) -> Result<()> {
    let sent_at = moved_sent_at(sent_at, reset_sent_at, now);
    match how {
        Move::DeadLetter { source_arn } => conn
            .prepare_cached(
                "INSERT INTO messages (queue_id, message_id, body, attributes, system_attributes, group_id, dedup_id,
                                       sender_id, sent_at, visible_at, receive_count, first_received_at,
                                       dead_letter_source_arn, digest)
                 SELECT ?2, message_id, body, attributes, system_attributes, group_id, dedup_id,
                        sender_id, ?3, ?4, receive_count, first_received_at, ?5, digest
                 FROM messages WHERE seq = ?1",
            )?
            .execute(params![seq, destination, sent_at, now, source_arn])?,
        Move::Redrive => conn
            .prepare_cached(
                "INSERT INTO messages (queue_id, message_id, body, attributes, system_attributes, group_id, dedup_id,
                                       sender_id, sent_at, visible_at, digest)
                 SELECT ?2, message_id, body, attributes, system_attributes, group_id, dedup_id, sender_id, ?3, ?4,
                        digest
                 FROM messages WHERE seq = ?1",
            )?
            .execute(params![seq, destination, sent_at, now])?,
    };
    conn.prepare_cached("DELETE FROM messages WHERE seq = ?1")?.execute([seq])?;
    Ok(())
}

/// The sweep's candidates. `receive_count >= ?2` is `rules::is_exhausted` as an index range;
/// `receive_count > 0` is spelled out only so SQLite may use the partial index. The order of the
/// two matters: SQLite seeks on one lower bound only, the first it meets, and seeking on `> 0`
/// would step over every received message that is not exhausted
/// (`tests::sweep_reads_only_exhausted_messages` holds this).
pub(super) const SWEEP: &str = "SELECT seq, sent_at FROM messages INDEXED BY messages_received
     WHERE queue_id = ?1 AND receive_count >= ?2 AND receive_count > 0 AND visible_at <= ?3
     ORDER BY receive_count, seq LIMIT ?4";

pub(super) fn dead_letter_exhausted(
    conn: &Connection,
    queue: QueueId,
    target: DeadLetterTarget,
    now: Millis,
    limit: usize,
) -> Result<Option<SweepOutcome>> {
    if !queue_exists(conn, queue)? {
        return Ok(None);
    }
    let exists = target.queue != queue && queue_exists(conn, target.queue)?;
    let Some(target) = usable_dead_letter(queue, Some(target), |_| exists) else {
        return Ok(Some(SweepOutcome::default()));
    };
    let mut exhausted: Vec<(i64, Millis)> = conn
        .prepare_cached(SWEEP)?
        .query_map(params![queue, target.max_receive_count, now, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_>>()?;
    sweep_move_order(&mut exhausted, |&(seq, _)| seq);
    let how = Move::DeadLetter { source_arn: &target.source_arn };
    for &(seq, sent_at) in &exhausted {
        move_message(conn, seq, sent_at, target.queue, how, target.reset_sent_at, now)?;
    }
    let moved = exhausted.len() as i64;
    if moved > 0 {
        adjust_count(conn, queue, -moved)?;
        adjust_count(conn, target.queue, moved)?;
    }
    // The same index range as the sweep, past `now`: the exhausted messages still in flight.
    let next_due_at: Option<Millis> = conn
        .prepare_cached(
            "SELECT min(visible_at) FROM messages INDEXED BY messages_received
             WHERE queue_id = ?1 AND receive_count >= ?2 AND receive_count > 0 AND visible_at > ?3",
        )?
        .query_row(params![queue, target.max_receive_count, now], |r| r.get(0))?;
    Ok(Some(SweepOutcome { moved: moved as u64, next_due_at }))
}

pub(super) fn movable_messages(
    conn: &Connection,
    queue: QueueId,
    now: Millis,
    limit: usize,
) -> Result<Option<Vec<MovableMessage>>> {
    if !queue_exists(conn, queue)? {
        return Ok(None);
    }
    conn.prepare_cached(
        "SELECT seq, dead_letter_source_arn FROM messages WHERE queue_id = ?1 AND visible_at <= ?2
         ORDER BY visible_at, seq LIMIT ?3",
    )?
    .query_map(params![queue, now, limit as i64], |r| {
        Ok(MovableMessage { seq: r.get(0)?, dead_letter_source_arn: r.get(1)? })
    })?
    .collect::<Result<_>>()
    .map(Some)
}

fn move_messages(conn: &Connection, source: QueueId, moves: Vec<MessageMove>, now: Millis) -> Result<u64> {
    let mut moved = 0;
    for m in moves {
        let sent_at: Option<Millis> = conn
            .prepare_cached("SELECT sent_at FROM messages WHERE seq = ?1 AND queue_id = ?2 AND visible_at <= ?3")?
            .query_row(params![m.seq, source, now], |r| r.get(0))
            .optional()?;
        let Some(sent_at) = sent_at else { continue };
        if !queue_exists(conn, m.destination)? {
            continue;
        }
        move_message(conn, m.seq, sent_at, m.destination, Move::Redrive, m.reset_sent_at, now)?;
        adjust_count(conn, source, -1)?;
        adjust_count(conn, m.destination, 1)?;
        moved += 1;
    }
    Ok(moved)
}

fn save_move_task(conn: &Connection, task: &MoveTask) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO move_tasks (handle, source_queue, source_arn, destination_arn, max_per_second, status, moved,
                                 to_move, started_at, failure_reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (handle) DO UPDATE SET
             source_queue = excluded.source_queue, source_arn = excluded.source_arn,
             destination_arn = excluded.destination_arn, max_per_second = excluded.max_per_second,
             status = excluded.status, moved = excluded.moved, to_move = excluded.to_move,
             started_at = excluded.started_at, failure_reason = excluded.failure_reason",
    )?
    .execute(params![
        task.handle,
        task.source_queue,
        task.source_arn,
        task.destination_arn,
        task.max_per_second,
        task.status.as_str(),
        task.moved as i64,
        task.to_move as i64,
        task.started_at,
        task.failure_reason,
    ])?;
    Ok(())
}

/// Records a new task unless its source has an active one. `None` if the source queue is gone.
pub(super) fn start_move_task(conn: &Connection, task: MoveTask) -> Result<Option<bool>> {
    if !queue_exists(conn, task.source_queue)? {
        return Ok(None);
    }
    if move_tasks(conn, Some(task.source_queue))?.iter().any(|t| is_active(t.status)) {
        return Ok(Some(false));
    }
    save_move_task(conn, &task)?;
    Ok(Some(true))
}

fn move_task(conn: &Connection, handle: &str) -> Result<Option<MoveTask>> {
    Ok(move_tasks_where(conn, "handle = ?1", [handle])?.into_iter().next())
}

pub(super) fn cancel_move_task(conn: &Connection, handle: &str) -> Result<Option<MoveTask>> {
    let Some(task) = move_task(conn, handle)? else { return Ok(None) };
    if task.status == MoveTaskStatus::Running {
        save_move_task(conn, &MoveTask { status: MoveTaskStatus::Cancelling, ..task.clone() })?;
    }
    Ok(Some(task))
}

pub(super) fn advance_move_task(
    conn: &Connection,
    handle: &str,
    step: MoveStep,
    now: Millis,
) -> Result<Option<MoveTask>> {
    let Some(mut task) = move_task(conn, handle)? else { return Ok(None) };
    let plan = plan_step(task.status, step);
    let moved = if plan.moves.is_empty() { 0 } else { move_messages(conn, task.source_queue, plan.moves, now)? };
    finish_step(&mut task, moved, plan.ends);
    save_move_task(conn, &task)?;
    Ok(Some(task))
}

pub(super) fn move_tasks(conn: &Connection, source_queue: Option<QueueId>) -> Result<Vec<MoveTask>> {
    match source_queue {
        Some(queue) => move_tasks_where(conn, "source_queue = ?1", [queue]),
        None => move_tasks_where(conn, "1", []),
    }
}

/// The tasks matching `filter` (an SQL condition over `params`), newest first.
fn move_tasks_where(conn: &Connection, filter: &str, params: impl rusqlite::Params) -> Result<Vec<MoveTask>> {
    const COLUMNS: &str = "id, handle, source_queue, source_arn, destination_arn, max_per_second, status, moved, \
                           to_move, started_at, failure_reason";
    let row = |r: &rusqlite::Row<'_>| -> Result<(u64, MoveTask)> {
        let status: String = r.get(6)?;
        let status = MoveTaskStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                6,
                Type::Text,
                format!("unknown move task status {status:?}").into(),
            )
        })?;
        let task = MoveTask {
            handle: r.get(1)?,
            source_queue: r.get(2)?,
            source_arn: r.get(3)?,
            destination_arn: r.get(4)?,
            max_per_second: r.get(5)?,
            status,
            moved: r.get::<_, i64>(7)? as u64,
            to_move: r.get::<_, i64>(8)? as u64,
            started_at: r.get(9)?,
            failure_reason: r.get(10)?,
        };
        Ok((r.get::<_, i64>(0)? as u64, task))
    };
    let mut tasks: Vec<(u64, MoveTask)> = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM move_tasks WHERE {filter}"))?
        .query_map(params, row)?
        .collect::<Result<_>>()?;
    newest_first(&mut tasks);
    Ok(tasks.into_iter().map(|(_, task)| task).collect())
}
