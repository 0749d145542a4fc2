//! StartMessageMoveTask, CancelMessageMoveTask, ListMessageMoveTasks, and the runner that moves
//! messages out of a dead-letter queue (DLQ redrive).
//!
//! A task is persisted by the store, so it survives restarts: `resume` restarts the runner of
//! every RUNNING task and finishes cancellations that were under way. A task moves the messages
//! that were in the dead-letter queue when it started (`ApproximateNumberOfMessagesToMove`);
//! messages arriving later stay where they are, and nothing is lost either way because each move
//! is one atomic store call. Only the runner and cancellation change a task, one at a time
//! (`Sqs::move_tasks_lock`), so a cancellation is never overwritten by progress.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use holdfast_api::types::*;
use holdfast_api::{sqs_error, SqsError};
use serde_json::json;

use super::dead_letters::all_queues;
use crate::queue_attributes::QueueSettings;
use crate::redrive::queue_name_from_arn;
use crate::service::{internal, Sqs};
use crate::store::{MessageMove, MoveTask, MoveTaskStatus, QueueId, QueueRecord};
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
    let name = queue_name_from_arn(arn, &sqs.config.account_id).ok_or_else(|| not_found(parameter))?;
    sqs.store.get_queue(name).await.map_err(internal)?.ok_or_else(|| not_found(parameter))
}

/// Task handles are opaque to clients; like SQS's, they encode the task id and source ARN.
fn new_handle(source_arn: &str) -> String {
    STANDARD.encode(json!({ "taskId": uuid::Uuid::new_v4().to_string(), "sourceArn": source_arn }).to_string())
}

fn source_arn_of_handle(handle: &str) -> Option<String> {
    let bytes = STANDARD.decode(handle.trim()).ok()?;
    let document: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    document.get("sourceArn")?.as_str().map(str::to_string)
}

fn is_active(task: &MoveTask) -> bool {
    matches!(task.status, MoveTaskStatus::Running | MoveTaskStatus::Cancelling)
}

pub async fn start_message_move_task(
    sqs: &Arc<Sqs>,
    req: StartMessageMoveTaskRequest,
) -> Result<StartMessageMoveTaskResponse, SqsError> {
    let source = queue_by_arn(sqs, &req.source_arn, "SourceArn").await?;
    let source_arn = sqs.queue_arn(&source.name);
    if let Some(rate) = req.max_number_of_messages_per_second {
        check_range("MaxNumberOfMessagesPerSecond", rate, 1, MAX_RATE)?;
    }
    let is_dead_letter_queue = all_queues(sqs).await?.iter().any(|q| {
        QueueSettings::from_attributes(&q.attributes)
            .redrive_policy
            .is_some_and(|p| p.dead_letter_target_arn == source_arn)
    });
    if !is_dead_letter_queue {
        return Err(sqs_error!(InvalidParameterValue, "Source queue must be configured as a Dead Letter Queue."));
    }
    if let Some(destination) = &req.destination_arn {
        let destination = queue_by_arn(sqs, destination, "DestinationArn").await?;
        if destination.id == source.id {
            return Err(sqs_error!(InvalidParameterValue, "The destination queue must differ from the source queue."));
        }
    }
    let _guard = sqs.move_tasks_lock.lock().await;
    let existing = sqs.store.move_tasks(Some(source.id)).await.map_err(internal)?;
    if existing.iter().any(is_active) {
        return Err(sqs_error!(
            InvalidParameterValue,
            "There is already a task running. Only one active task is allowed for a source queue arn at a given time."
        ));
    }
    let counts = sqs.store.queue_counts(source.id, sqs.now()).await.map_err(internal)?;
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
    sqs.store.save_move_task(task.clone()).await.map_err(internal)?;
    tracing::info!(source = %task.source_arn, destination = ?task.destination_arn, "message move task started");
    let handle = task.handle.clone();
    tokio::spawn(run(Arc::clone(sqs), task));
    Ok(StartMessageMoveTaskResponse { task_handle: Some(handle) })
}

pub async fn cancel_message_move_task(
    sqs: &Sqs,
    req: CancelMessageMoveTaskRequest,
) -> Result<CancelMessageMoveTaskResponse, SqsError> {
    let source_arn = source_arn_of_handle(&req.task_handle).ok_or_else(|| not_found("TaskHandle"))?;
    let source = queue_by_arn(sqs, &source_arn, "TaskHandle").await?;
    let _guard = sqs.move_tasks_lock.lock().await;
    let tasks = sqs.store.move_tasks(Some(source.id)).await.map_err(internal)?;
    let mut task = tasks.into_iter().find(|t| t.handle == req.task_handle).ok_or_else(|| not_found("TaskHandle"))?;
    if task.status != MoveTaskStatus::Running {
        return Err(sqs_error!(
            InvalidParameterValue,
            "Only active tasks can be cancelled; this task is {}.",
            task.status.as_str()
        ));
    }
    task.status = MoveTaskStatus::Cancelling;
    sqs.store.save_move_task(task.clone()).await.map_err(internal)?;
    Ok(CancelMessageMoveTaskResponse { approximate_number_of_messages_moved: Some(task.moved as i64) })
}

pub async fn list_message_move_tasks(
    sqs: &Sqs,
    req: ListMessageMoveTasksRequest,
) -> Result<ListMessageMoveTasksResponse, SqsError> {
    let source = queue_by_arn(sqs, &req.source_arn, "SourceArn").await?;
    let max_results = req.max_results.unwrap_or(1);
    check_range("MaxResults", max_results, 1, LIST_MAX_RESULTS)?;
    let tasks = sqs.store.move_tasks(Some(source.id)).await.map_err(internal)?;
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
    for mut task in sqs.store.move_tasks(None).await.map_err(internal)? {
        match task.status {
            MoveTaskStatus::Running => {
                tracing::info!(source = %task.source_arn, "resuming message move task");
                tokio::spawn(run(Arc::clone(sqs), task));
            }
            MoveTaskStatus::Cancelling => {
                task.status = MoveTaskStatus::Cancelled;
                sqs.store.save_move_task(task).await.map_err(internal)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Where each message goes: the task's destination, or the queue it was dead-lettered from.
async fn destinations(
    sqs: &Sqs,
    task: &MoveTask,
    messages: &[crate::store::MovableMessage],
) -> Result<Vec<MessageMove>, String> {
    let mut moves = Vec::with_capacity(messages.len());
    let mut cache: std::collections::HashMap<String, (QueueId, bool)> = std::collections::HashMap::new();
    for message in messages {
        let arn = match (&task.destination_arn, &message.dead_letter_source_arn) {
            (Some(destination), _) => destination.clone(),
            (None, Some(source)) => source.clone(),
            (None, None) => {
                return Err("A message in the queue was not moved there by a redrive policy, so it has no source queue to return to; give a DestinationArn.".into());
            }
        };
        if !cache.contains_key(&arn) {
            let name = queue_name_from_arn(&arn, &sqs.config.account_id)
                .ok_or_else(|| format!("{arn} is not a queue of this account."))?;
            let queue = sqs
                .store
                .get_queue(name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("The destination queue {arn} does not exist."))?;
            cache.insert(arn.clone(), (queue.id, QueueSettings::from_attributes(&queue.attributes).fifo));
        }
        let (destination, fifo) = cache[&arn];
        moves.push(MessageMove { seq: message.seq, destination, reset_sent_at: fifo });
    }
    Ok(moves)
}

/// Moves the task's messages until all that were there at the start are moved, the source is
/// empty, the task is cancelled, or a move fails.
async fn run(sqs: Arc<Sqs>, mut task: MoveTask) {
    let batch = task.max_per_second.map_or(BATCH, |rate| (rate as usize).min(BATCH));
    loop {
        let now = sqs.now();
        let step = async {
            let remaining = task.to_move.saturating_sub(task.moved) as usize;
            if remaining == 0 {
                return Ok::<_, String>(None);
            }
            let messages = sqs
                .store
                .movable_messages(task.source_queue, now, batch.min(remaining))
                .await
                .map_err(|e| e.to_string())?;
            if messages.is_empty() {
                return Ok(None);
            }
            let moves = destinations(&sqs, &task, &messages).await?;
            let mut per_destination: std::collections::HashMap<QueueId, usize> = std::collections::HashMap::new();
            for m in &moves {
                *per_destination.entry(m.destination).or_default() += 1;
            }
            let moved = sqs.store.move_messages(task.source_queue, moves, now).await.map_err(|e| e.to_string())?;
            for (queue, count) in per_destination {
                sqs.waiters.messages_visible(queue, count);
            }
            Ok(Some(moved))
        };
        let result = step.await;
        let _guard = sqs.move_tasks_lock.lock().await;
        // A cancellation may have been saved since the last step.
        let current = sqs
            .store
            .move_tasks(Some(task.source_queue))
            .await
            .ok()
            .and_then(|tasks| tasks.into_iter().find(|t| t.handle == task.handle));
        if current.as_ref().is_some_and(|t| t.status == MoveTaskStatus::Cancelling) {
            task.status = MoveTaskStatus::Cancelled;
        }
        let moved_now = match result {
            Ok(Some(moved)) => moved,
            Ok(None) => {
                if task.status == MoveTaskStatus::Running {
                    task.status = MoveTaskStatus::Completed;
                }
                0
            }
            Err(reason) => {
                tracing::warn!(source = %task.source_arn, %reason, "message move task failed");
                task.status = MoveTaskStatus::Failed;
                task.failure_reason = Some(reason);
                0
            }
        };
        task.moved += moved_now;
        if let Err(error) = sqs.store.save_move_task(task.clone()).await {
            tracing::warn!(%error, "saving a message move task failed; retrying");
        }
        drop(_guard);
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
