//! ChangeMessageVisibility and ChangeMessageVisibilityBatch.

use holdfast_api::types::*;
use holdfast_api::{limits, sqs_error, NoOutput, SqsError};

use super::send::failure;
use crate::receipt;
use crate::service::{from_store, Queue, RequestContext, Sqs};
use crate::store::{ChangeVisibility, ChangeVisibilityOutcome};
use crate::timer::Due;
use crate::validate::{check_batch_entry_ids, check_range};

fn parse_change(receipt_handle: &str, timeout: Option<i64>, queue_id: i64) -> Result<ChangeVisibility, SqsError> {
    let Some(timeout) = timeout else {
        return Err(sqs_error!(MissingParameter, "The request must contain the parameter VisibilityTimeout."));
    };
    check_range("VisibilityTimeout", timeout, 0, i64::from(limits::VISIBILITY_TIMEOUT_MAX))?;
    let lease = receipt::decode(receipt_handle, queue_id)?;
    Ok(ChangeVisibility { lease, visibility_timeout_ms: timeout * 1000 })
}

fn outcome_error(outcome: ChangeVisibilityOutcome, receipt_handle: &str, timeout_ms: i64) -> Option<SqsError> {
    match outcome {
        ChangeVisibilityOutcome::Changed => None,
        // AWS's answers: a deleted message's handle is an invalid value; a handle of a message
        // received again since has expired (and never touches the other receiver's lease).
        ChangeVisibilityOutcome::Gone => Some(sqs_error!(
            InvalidParameterValue,
            "Value {receipt_handle} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change."
        )),
        ChangeVisibilityOutcome::Stale => Some(sqs_error!(
            ReceiptHandleIsInvalid,
            "Value {receipt_handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."
        )),
        ChangeVisibilityOutcome::ExceedsMaximum => Some(sqs_error!(
            InvalidParameterValue,
            "Value {} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [{} seconds].",
            timeout_ms / 1000,
            limits::VISIBILITY_TIMEOUT_MAX
        )),
    }
}

async fn apply(
    sqs: &Sqs,
    queue: &Queue,
    changes: Vec<ChangeVisibility>,
) -> Result<Vec<ChangeVisibilityOutcome>, SqsError> {
    let now = sqs.now();
    let max_inflight_ms = i64::from(limits::VISIBILITY_TIMEOUT_MAX) * 1000;
    let earliest = changes.iter().map(|c| now + c.visibility_timeout_ms).min();
    let outcomes = sqs.store.change_visibility(queue.id, changes, now, max_inflight_ms).await.map_err(from_store)?;
    // Waiting receives, and a dead-letter sweep, must look again when these messages reappear.
    if let Some(at) = earliest {
        if sqs.waiters.has_waiters(queue.id) || queue.settings().redrive_policy.is_some() {
            sqs.timer.schedule(Due::Visible(queue.key()), at);
        }
    }
    Ok(outcomes)
}

pub async fn change_message_visibility(
    sqs: &Sqs,
    ctx: &RequestContext,
    req: ChangeMessageVisibilityRequest,
) -> Result<NoOutput, SqsError> {
    let queue = sqs.queue(ctx, &req.queue_url).await?;
    let change = parse_change(&req.receipt_handle, Some(req.visibility_timeout), queue.id)?;
    let outcomes = apply(sqs, &queue, vec![change]).await?;
    match outcomes.first().and_then(|&o| outcome_error(o, &req.receipt_handle, change.visibility_timeout_ms)) {
        Some(error) => Err(error),
        None => Ok(NoOutput),
    }
}

pub async fn change_message_visibility_batch(
    sqs: &Sqs,
    ctx: &RequestContext,
    req: ChangeMessageVisibilityBatchRequest,
) -> Result<ChangeMessageVisibilityBatchResponse, SqsError> {
    check_batch_entry_ids(req.entries.iter().map(|e| e.id.as_str()), req.entries.len())?;
    let queue = sqs.queue(ctx, &req.queue_url).await?;
    let mut changes = Vec::new();
    let mut applied = Vec::new();
    let mut failed = Vec::new();
    for entry in &req.entries {
        match parse_change(&entry.receipt_handle, entry.visibility_timeout, queue.id) {
            Ok(change) => {
                changes.push(change);
                applied.push(entry);
            }
            Err(error) => failed.push(failure(&entry.id, error)),
        }
    }
    let mut successful = Vec::new();
    if !changes.is_empty() {
        let timeouts: Vec<i64> = changes.iter().map(|c| c.visibility_timeout_ms).collect();
        let outcomes = apply(sqs, &queue, changes).await?;
        for ((entry, outcome), timeout_ms) in applied.into_iter().zip(outcomes).zip(timeouts) {
            match outcome_error(outcome, &entry.receipt_handle, timeout_ms) {
                None => successful.push(BatchResultEntry { id: entry.id.clone() }),
                Some(error) => failed.push(failure(&entry.id, error)),
            }
        }
    }
    Ok(ChangeMessageVisibilityBatchResponse { successful, failed })
}
