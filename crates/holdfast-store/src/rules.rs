//! The decisions both engines make the same way, kept in one place so they cannot drift apart:
//! each engine only finds the data (through its own indexes), these functions decide.

use std::collections::BTreeMap;

use holdfast_core::store::{
    ChangeVisibilityOutcome, DeadLetterTarget, Deduplication, DeleteOutcome, FairOrder, MessageMove, Millis, MoveStep,
    MoveTask, MoveTaskStatus, QueueId,
};

/// Merges SetQueueAttributes into the explicit attributes: an empty value removes the attribute
/// (so it falls back to its default), any other value sets it.
pub(crate) fn merge_attributes(current: &mut BTreeMap<String, String>, changes: BTreeMap<String, String>) {
    for (name, value) in changes {
        if value.is_empty() {
            current.remove(&name);
        } else {
            current.insert(name, value);
        }
    }
}

/// Decides ChangeMessageVisibility for a message whose lease is current, whether or not its
/// timeout already ran out (AWS re-hides a message nobody received since). The maximum counts
/// from the receive that took the lease.
pub(crate) fn visibility_outcome(
    leased_at: Millis,
    new_visible_at: Millis,
    max_inflight_ms: i64,
) -> ChangeVisibilityOutcome {
    if new_visible_at > leased_at + max_inflight_ms {
        ChangeVisibilityOutcome::ExceedsMaximum
    } else {
        ChangeVisibilityOutcome::Changed
    }
}

/// Decides DeleteMessage for a lease that is current (`visible_at` is its message's), or for a
/// message that exists under another lease (`visible_at` is `None`). Only FIFO queues
/// (`refuse_expired_at`) refuse: a lease whose timeout ran out no longer holds its group.
pub(crate) fn delete_verdict(
    current_lease_visible_at: Option<Millis>,
    refuse_expired_at: Option<Millis>,
) -> DeleteOutcome {
    match (current_lease_visible_at, refuse_expired_at) {
        (None, Some(_)) => DeleteOutcome::Expired,
        (None, None) => DeleteOutcome::NotCurrent,
        (Some(visible_at), Some(now)) if visible_at <= now => DeleteOutcome::Expired,
        (Some(_), _) => DeleteOutcome::Deleted,
    }
}

/// The digest stored with each message at send time and checked whenever it is delivered: MD5 of
/// the body and both attribute encodings, each length-prefixed so no two contents share one.
pub(crate) fn content_digest(body: &str, attributes: &[u8], system_attributes: &[u8]) -> [u8; 16] {
    use md5::{Digest, Md5};
    let mut hasher = Md5::new();
    for part in [body.as_bytes(), attributes, system_attributes] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

// ---- fair queues ----

/// The quiet groups a fair receive visits, in order (`FairOrder`): names after `start_after`,
/// then, wrapping around, from the first name up to `start_after` itself; noisy groups skipped;
/// at most `FairOrder::GROUP_VISITS` groups looked at. `next_after(name)` is the engine's first
/// group named after `name` ("" for the first of all); `visit` takes a quiet group's messages and
/// says whether the receive wants more. Both get the engine's `state`.
pub(crate) fn visit_quiet_groups<S, E>(
    order: &FairOrder,
    state: &mut S,
    mut next_after: impl FnMut(&mut S, &str) -> Result<Option<String>, E>,
    mut visit: impl FnMut(&mut S, &str) -> Result<bool, E>,
) -> Result<(), E> {
    let start = order.start_after.clone().unwrap_or_default();
    let (mut after, mut wrapped) = (start.clone(), false);
    for _ in 0..FairOrder::GROUP_VISITS {
        let group = match next_after(state, &after)? {
            Some(group) if wrapped && group > start => return Ok(()),
            Some(group) => group,
            None if wrapped || start.is_empty() => return Ok(()),
            None => {
                // Wrap around, once; this step visits nothing.
                (after, wrapped) = (String::new(), true);
                match next_after(state, &after)? {
                    Some(group) if group <= start => group,
                    _ => return Ok(()),
                }
            }
        };
        if !order.noisy.contains(&group) && !visit(state, &group)? {
            return Ok(());
        }
        after = group;
    }
    Ok(())
}

// ---- deduplication (FIFO queues <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fifo-queues.html>) ----

/// The key a deduplication id is recorded under, or `None` if the message carries no id (the
/// service always sets one for FIFO queues; without one there is nothing to deduplicate on).
///
/// The scope is part of the key so that queue-wide and per-group records can never match each
/// other, even if a queue's `DeduplicationScope` changes while records are live: `"q"` for the
/// queue, `"g:<group>"` for a message group. A message without a group under per-group scope
/// falls back to the queue scope.
pub(crate) fn dedup_key(
    dedup: &Deduplication,
    group_id: Option<&str>,
    dedup_id: Option<&str>,
) -> Option<(String, String)> {
    let id = dedup_id?;
    let scope = match group_id {
        Some(group) if dedup.per_group => format!("g:{group}"),
        _ => "q".to_owned(),
    };
    Some((scope, id.to_owned()))
}

/// A deduplication record or a receive attempt counts while its expiry is still ahead; one that
/// expires exactly now is gone (the window is half-open, like visibility: `visible_at <= now`).
pub(crate) fn is_live(expires_at: Millis, now: Millis) -> bool {
    expires_at > now
}

/// Expired deduplication records and receive attempts an engine removes per call that adds one,
/// on top of the periodic sweep in `expire_messages`: more than a call adds, so the tables shrink
/// back to their live records even if the sweep never runs, and few enough to keep a send cheap.
pub(crate) const PRUNE_PER_CALL: usize = 32;

// ---- receive: what to do with each message met (dead-letter queues <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html>) ----

/// What receive does with a visible message it meets, in delivery order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Sent before the retention cutoff: removed, never returned.
    Expire,
    /// Already received `max_receive_count` times: moved to the dead-letter queue instead of
    /// being returned; it does not count toward `max_messages`.
    DeadLetter,
    Deliver,
}

/// Judges one visible message. `max_receive_count` is set only when the dead-letter queue is
/// usable (`usable_dead_letter`). With `maxReceiveCount = N`, receives 1..N deliver and the
/// (N+1)-th moves: `receive_count` counts the receives so far, so `N` of them is exhausted.
pub(crate) fn judge(sent_at: Millis, receive_count: u32, cutoff: Millis, max_receive_count: Option<u32>) -> Verdict {
    if sent_at < cutoff {
        Verdict::Expire
    } else if max_receive_count.is_some_and(|max| is_exhausted(receive_count, max)) {
        Verdict::DeadLetter
    } else {
        Verdict::Deliver
    }
}

pub(crate) fn is_exhausted(receive_count: u32, max_receive_count: u32) -> bool {
    receive_count >= max_receive_count
}

/// The dead-letter target a call may move to: none when the target queue no longer exists
/// (messages are then delivered normally, as the contract says), and none when it is the source
/// itself, which would only re-enqueue the message behind itself, forever, within one FIFO walk.
pub(crate) fn usable_dead_letter(
    source: QueueId,
    target: Option<DeadLetterTarget>,
    target_exists: impl FnOnce(QueueId) -> bool,
) -> Option<DeadLetterTarget> {
    target.filter(|t| t.queue != source && target_exists(t.queue))
}

/// The dead-letter sweep picks exhausted messages by `(receive_count, seq)` (the order of the
/// index that finds them without reading the backlog) but moves its pick in seq order, so the
/// messages of one FIFO group reach the dead-letter queue in their order whatever their counts.
pub(crate) fn sweep_move_order<T>(picked: &mut [T], seq: impl Fn(&T) -> i64) {
    picked.sort_by_key(seq);
}

/// The enqueue time a moved message keeps: its original one (standard queues: retention keeps
/// counting from the first send), or the move's time when the destination restarts the clock
/// (FIFO queues).
pub(crate) fn moved_sent_at(sent_at: Millis, reset_sent_at: bool, now: Millis) -> Millis {
    if reset_sent_at {
        now
    } else {
        sent_at
    }
}

// ---- move tasks ----

/// Sorts move tasks newest first: by `started_at`, then by insertion (later first), so tasks
/// started in the same millisecond still list in a stable, meaningful order.
pub(crate) fn newest_first(tasks: &mut [(u64, MoveTask)]) {
    tasks.sort_by(|(a_order, a), (b_order, b)| b.started_at.cmp(&a.started_at).then(b_order.cmp(a_order)));
}

// ---- message move tasks ----

/// What one runner step does to a move task, decided from the task's status and the step.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct StepPlan {
    /// Messages to move (the task is running and the step moves some).
    pub moves: Vec<MessageMove>,
    /// The task's new status and failure reason, if the step ends it.
    pub ends: Option<(MoveTaskStatus, Option<String>)>,
}

/// A cancelled task (CANCELLING) becomes CANCELLED and the step is dropped; a running task takes
/// the step; an ended task is left as it is.
pub(crate) fn plan_step(status: MoveTaskStatus, step: MoveStep) -> StepPlan {
    match (status, step) {
        (MoveTaskStatus::Cancelling, _) => {
            StepPlan { ends: Some((MoveTaskStatus::Cancelled, None)), ..StepPlan::default() }
        }
        (MoveTaskStatus::Running, MoveStep::Moved(moves)) => StepPlan { moves, ends: None },
        (MoveTaskStatus::Running, MoveStep::Completed) => {
            StepPlan { ends: Some((MoveTaskStatus::Completed, None)), ..StepPlan::default() }
        }
        (MoveTaskStatus::Running, MoveStep::Failed(reason)) => {
            StepPlan { ends: Some((MoveTaskStatus::Failed, Some(reason))), ..StepPlan::default() }
        }
        (MoveTaskStatus::Completed | MoveTaskStatus::Cancelled | MoveTaskStatus::Failed, _) => StepPlan::default(),
    }
}

/// Records a planned step's result on the task.
pub(crate) fn finish_step(task: &mut MoveTask, moved: u64, ends: Option<(MoveTaskStatus, Option<String>)>) {
    task.moved += moved;
    if let Some((status, reason)) = ends {
        task.status = status;
        task.failure_reason = reason;
    }
}

/// Whether a task keeps its source queue busy: only one such task per source.
pub(crate) fn is_active(status: MoveTaskStatus) -> bool {
    matches!(status, MoveTaskStatus::Running | MoveTaskStatus::Cancelling)
}
