//! StartMessageMoveTask, CancelMessageMoveTask, ListMessageMoveTasks, and the runner that moves
//! messages out of a dead-letter queue (DLQ redrive).
//!
//! A task is persisted by the store, so it survives restarts: `resume` restarts the runner of
//! every RUNNING task and finishes cancellations that were under way. A task moves the messages
//! that were in the dead-letter queue when it started (`ApproximateNumberOfMessagesToMove`);
//! messages arriving later stay where they are, and nothing is lost either way because each move
//! is one atomic store call. Each change of a task is one store call too: starting checks for an
//! active task and records the new one atomically, cancelling flips RUNNING to CANCELLING, and
//! each runner step moves its messages and records the progress together
//! (`Store::advance_move_task`), so a cancellation is never overwritten by progress.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use holdfast_api::types::*;
use holdfast_api::{sqs_error, SqsError};
use serde_json::json;

use super::dead_letters::{arrived, queues_of};
use crate::redrive::queue_of_arn;
use crate::service::{from_store, Sqs};
use crate::store::{MessageMove, Millis, MoveStep, MoveTask, MoveTaskStatus, QueueId, QueueRecord};
use crate::timer::QueueKey;
use crate::validate::check_range;

/// SQS's ceiling for `MaxNumberOfMessagesPerSecond`.
const MAX_RATE: i64 = 500;
/// Messages moved per store call when no rate is given ("system-optimized").
const BATCH: usize = 100;
/// `ListMessageMoveTasks` returns at most this many tasks.
const LIST_MAX_RESULTS: i64 = 10;

fn not_found(what: &str) -> SqsError {
    sqs_error!(ResourceNotFoundException, "The resource that you specified for the {what} parameter doesn't exist.")
}

async fn queue_by_arn(sqs: &Sqs, arn: &str, parameter: &str) -> Result<QueueRecord, SqsError> {
    let (account, region, name) = queue_of_arn(arn).ok_or_else(|| not_found(parameter))?;
    sqs.store.get_queue(account, region, name).await.map_err(from_store)?.ok_or_else(|| not_found(parameter))
}

/// Task handles are opaque to clients; like SQS's, they encode the task id and source ARN.
fn new_handle(source_arn: &str) -> String {
    STANDARD.encode(json!({ "taskId": uuid::Uuid::new_v4().to_string(), "sourceArn": source_arn }).to_string())
}

pub(crate) fn source_arn_of_handle(handle: &str) -> Option<String> {
    let bytes = STANDARD.decode(handle.trim()).ok()?;
    let document: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    document.get("sourceArn")?.as_str().map(str::to_string)
}

pub async fn start_message_move_task(
    sqs: &Arc<Sqs>,
    req: StartMessageMoveTaskRequest,
) -> Result<StartMessageMoveTaskResponse, SqsError> {
    let source = queue_by_arn(sqs, &req.source_arn, "SourceArn").await?;
    let source_arn = sqs.queue_arn(&source);
    if let Some(rate) = req.max_number_of_messages_per_second {
        check_range("MaxNumberOfMessagesPerSecond", rate, 1, MAX_RATE)?;
    }
    let is_dead_letter_queue = queues_of(sqs, &source.account_id, &source.region)
        .await?
        .iter()
        .any(|q| q.settings().redrive_policy.as_ref().is_some_and(|p| p.dead_letter_target_arn == source_arn));
    if !is_dead_letter_queue {
        return Err(sqs_error!(InvalidParameterValue, "Source queue must be configured as a Dead Letter Queue."));
    }
    if let Some(destination) = &req.destination_arn {
        let destination = queue_by_arn(sqs, destination, "DestinationArn").await?;
        if destination.id == source.id {
            return Err(sqs_error!(InvalidParameterValue, "The destination queue must differ from the source queue."));
        }
    }
    let counts = sqs.store.queue_counts(source.id, sqs.now()).await.map_err(from_store)?;
    let task = MoveTask {
        handle: new_handle(&source_arn),
        source_queue: source.id,
        source_arn,
        destination_arn: req.destination_arn,
        max_per_second: req.max_number_of_messages_per_second.map(|r| r as u32),
        status: MoveTaskStatus::Running,
        moved: 0,
        to_move: counts.visible,
        started_at: sqs.now(),
        failure_reason: None,
    };
    if !sqs.store.start_move_task(task.clone()).await.map_err(from_store)? {
        return Err(sqs_error!(
            InvalidParameterValue,
            "There is already a task running. Only one active task is allowed for a source queue arn at a given time."
        ));
    }
    tracing::info!(source = %task.source_arn, destination = ?task.destination_arn, "message move task started");
    let handle = task.handle.clone();
    tokio::spawn(run_once(Arc::clone(sqs), task));
    Ok(StartMessageMoveTaskResponse { task_handle: Some(handle) })
}

pub async fn cancel_message_move_task(
    sqs: &Sqs,
    req: CancelMessageMoveTaskRequest,
) -> Result<CancelMessageMoveTaskResponse, SqsError> {
    // AWS's three answers: a handle that is not one, a source queue that does not exist, and a
    // task that does not exist on it.
    let source_arn = source_arn_of_handle(&req.task_handle)
        .ok_or_else(|| sqs_error!(InvalidParameterValue, "Value for parameter TaskHandle is invalid."))?;
    let source = queue_by_arn(sqs, &source_arn, "SourceArn").await?;
    let task = sqs
        .store
        .cancel_move_task(&req.task_handle)
        .await
        .map_err(from_store)?
        .filter(|t| t.source_queue == source.id)
        .ok_or_else(|| sqs_error!(ResourceNotFoundException, "Task does not exist."))?;
    // The store changed only a RUNNING task; any other is reported as it was.
    if task.status != MoveTaskStatus::Running {
        return Err(sqs_error!(
            InvalidParameterValue,
            "Only active tasks can be cancelled; this task is {}.",
            task.status.as_str()
        ));
    }
    Ok(CancelMessageMoveTaskResponse { approximate_number_of_messages_moved: Some(task.moved as i64) })
}

pub async fn list_message_move_tasks(
    sqs: &Sqs,
    req: ListMessageMoveTasksRequest,
) -> Result<ListMessageMoveTasksResponse, SqsError> {
    let source = queue_by_arn(sqs, &req.source_arn, "SourceArn").await?;
    let max_results = req.max_results.unwrap_or(1);
    check_range("MaxResults", max_results, 1, LIST_MAX_RESULTS)?;
    let tasks = sqs.store.move_tasks(Some(source.id)).await.map_err(from_store)?;
    let results = tasks
        .into_iter()
        .take(max_results as usize)
        .map(|task| ListMessageMoveTasksResultEntry {
            // SQS lists the handle only while a task can still be cancelled.
            task_handle: (task.status == MoveTaskStatus::Running).then(|| task.handle.clone()),
            status: Some(task.status.as_str().to_string()),
            source_arn: Some(task.source_arn),
            destination_arn: task.destination_arn,
            max_number_of_messages_per_second: task.max_per_second.map(i64::from),
            approximate_number_of_messages_moved: Some(task.moved as i64),
            approximate_number_of_messages_to_move: Some(task.to_move as i64),
            failure_reason: (task.status == MoveTaskStatus::Failed).then_some(task.failure_reason).flatten(),
            started_timestamp: Some(task.started_at),
        })
        .collect();
    Ok(ListMessageMoveTasksResponse { results: Some(results) })
}

/// Restarts the runners of tasks that were running when the server stopped.
pub(crate) async fn resume(sqs: &Arc<Sqs>) -> Result<(), SqsError> {
    for task in sqs.store.move_tasks(None).await.map_err(from_store)? {
        match task.status {
            // `run_once` leaves a task alone that runs here or on another node already.
            MoveTaskStatus::Running => {
                tokio::spawn(run_once(Arc::clone(sqs), task));
            }
            MoveTaskStatus::Cancelling => {
                // Any step finishes a cancellation that was under way.
                sqs.store.advance_move_task(&task.handle, MoveStep::Completed, sqs.now()).await.map_err(from_store)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A step's moves, and how many messages each destination is to receive.
struct Plan {
    moves: Vec<MessageMove>,
    arrivals: Vec<(QueueKey, u64)>,
}

/// Where each message goes: the task's destination, or the queue it was dead-lettered from.
async fn destinations(sqs: &Sqs, task: &MoveTask, messages: &[crate::store::MovableMessage]) -> Result<Plan, String> {
    let mut moves = Vec::with_capacity(messages.len());
    let mut resolved: HashMap<String, (QueueKey, bool)> = HashMap::new();
    let mut arrivals: HashMap<QueueId, (QueueKey, u64)> = HashMap::new();
    for message in messages {
        let arn = match (&task.destination_arn, &message.dead_letter_source_arn) {
            (Some(destination), _) => destination.clone(),
            (None, Some(source)) => source.clone(),
            (None, None) => {
                return Err("A message in the queue was not moved there by a redrive policy, so it has no source queue to return to; give a DestinationArn.".into());
            }
        };
        if !resolved.contains_key(&arn) {
            // Messages move only between queues of one account and region.
            let source = queue_of_arn(&task.source_arn).map(|(account, region, _)| (account, region));
            let (account, region, name) = queue_of_arn(&arn)
                .filter(|(account, region, _)| Some((*account, *region)) == source)
                .ok_or_else(|| format!("{arn} is not a queue of the source queue's account and region."))?;
            let queue = sqs
                .store
                .get_queue(account, region, name)
                .await
                .map_err(|e| e.chain())?
                .ok_or_else(|| format!("The destination queue {arn} does not exist."))?;
            resolved.insert(arn.clone(), (queue.key(), queue.settings().fifo));
        }
        let (destination, fifo) = &resolved[&arn];
        moves.push(MessageMove { seq: message.seq, destination: destination.id, reset_sent_at: *fifo });
        arrivals.entry(destination.id).or_insert_with(|| (destination.clone(), 0)).1 += 1;
    }
    Ok(Plan { moves, arrivals: arrivals.into_values().collect() })
}

/// What the runner does next: move the next batch, or finish.
async fn next_step(sqs: &Sqs, task: &MoveTask, batch: usize, now: Millis) -> (MoveStep, Vec<(QueueKey, u64)>) {
    let remaining = task.to_move.saturating_sub(task.moved) as usize;
    if remaining == 0 {
        return (MoveStep::Completed, Vec::new());
    }
    let messages = match sqs.store.movable_messages(task.source_queue, now, batch.min(remaining)).await {
        Ok(messages) => messages,
        Err(error) => return (MoveStep::Failed(error.chain()), Vec::new()),
    };
    if messages.is_empty() {
        return (MoveStep::Completed, Vec::new());
    }
    match destinations(sqs, task, &messages).await {
        Ok(plan) => (MoveStep::Moved(plan.moves), plan.arrivals),
        Err(reason) => (MoveStep::Failed(reason), Vec::new()),
    }
}

/// Runs the task here unless it already runs here, or on another node sharing the store (each
/// task has a leader: `Store::lead`); a node that dies lets another node's `resume` take it over.
async fn run_once(sqs: Arc<Sqs>, task: MoveTask) {
    let handle = task.handle.clone();
    if !sqs.running_moves.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(handle.clone()) {
        return;
    }
    let job = format!("move-task:{handle}");
    match sqs.store.lead(&job, sqs.now()).await {
        Ok(true) => {
            tracing::info!(source = %task.source_arn, "running message move task");
            run(&sqs, task).await;
            if let Err(error) = sqs.store.release(&job).await {
                tracing::debug!(error = %error.chain(), "releasing a message move task");
            }
        }
        Ok(false) => {}
        Err(error) => tracing::warn!(error = %error.chain(), "cannot tell which node runs a message move task"),
    }
    sqs.running_moves.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&handle);
}

/// Moves the task's messages until all that were there at the start are moved, the source is
/// empty, the task is cancelled, or a move fails.
async fn run(sqs: &Arc<Sqs>, mut task: MoveTask) {
    let batch = task.max_per_second.map_or(BATCH, |rate| (rate as usize).min(BATCH));
    loop {
        let now = sqs.now();
        let (step, arrivals) = next_step(sqs, &task, batch, now).await;
        if let MoveStep::Failed(reason) = &step {
            tracing::warn!(source = %task.source_arn, %reason, "message move task failed");
        }
        let advanced = match sqs.store.advance_move_task(&task.handle, step, now).await {
            Ok(Some(advanced)) => advanced,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(error = %error.chain(), "recording a message move task's progress failed; retrying");
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        let moved_now = advanced.moved.saturating_sub(task.moved);
        task = advanced;
        if moved_now > 0 {
            for (destination, count) in &arrivals {
                arrived(sqs, destination, *count);
            }
        }
        if task.status != MoveTaskStatus::Running {
            tracing::info!(source = %task.source_arn, status = task.status.as_str(), moved = task.moved, "message move task ended");
            return;
        }
        if let Some(rate) = task.max_per_second {
            tokio::time::sleep(Duration::from_secs_f64(moved_now.max(1) as f64 / f64::from(rate))).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
}

/// How long the runner waits before trying again after the store failed to record a step.
const RETRY_AFTER: Duration = Duration::from_secs(1);
