//! DeleteMessage and DeleteMessageBatch.
//!
//! On a standard queue, a receipt handle from an earlier receive deletes nothing if the message
//! has been received again since, yet the call succeeds: SQS documents exactly this ("the request
//! succeeds, but the message might not be deleted"). On a FIFO queue a handle whose visibility
//! timeout ran out is refused instead, as AWS answers: the message may already be another
//! consumer's, and its group's order depends on knowing.

use holdfast_api::types::*;
use holdfast_api::{sqs_error, NoOutput, SqsError};

use super::send::failure;
use crate::receipt;
use crate::service::{from_store, Queue, RequestContext, Sqs};
use crate::store::{DeleteOutcome, Lease};
use crate::validate::check_batch_entry_ids;

async fn delete(sqs: &Sqs, queue: &Queue, leases: Vec<Lease>) -> Result<Vec<DeleteOutcome>, SqsError> {
    let fifo = queue.settings().fifo;
    let refuse_expired_at = fifo.then(|| sqs.now());
    let outcomes = sqs.store.delete_messages(queue.id, leases, refuse_expired_at).await.map_err(from_store)?;
    // Every delete with a valid receipt handle counts, a repeated one included, as on AWS.
    let deleted = outcomes.iter().filter(|o| **o != DeleteOutcome::Expired).count();
    sqs.recorder.deleted(&queue.key(), sqs.now(), deleted);
    // Deleting a FIFO group's in-flight head unlocks the group: its next message is available
    // now, to a receive that may be waiting for it.
    if fifo && outcomes.contains(&DeleteOutcome::Deleted) && sqs.waiters.has_waiters(queue.id) {
        sqs.waiters.messages_visible(queue.id, outcomes.len());
    }
    Ok(outcomes)
}

fn expired(receipt_handle: &str) -> SqsError {
    sqs_error!(
        InvalidParameterValue,
        "Value {receipt_handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."
    )
}

pub async fn delete_message(sqs: &Sqs, ctx: &RequestContext, req: DeleteMessageRequest) -> Result<NoOutput, SqsError> {
    let queue = sqs.queue(ctx, &req.queue_url).await?;
    let lease = receipt::decode(&req.receipt_handle, queue.id)?;
    match delete(sqs, &queue, vec![lease]).await?.first() {
        Some(DeleteOutcome::Expired) => Err(expired(&req.receipt_handle)),
        _ => Ok(NoOutput),
    }
}

pub async fn delete_message_batch(
    sqs: &Sqs,
    ctx: &RequestContext,
    req: DeleteMessageBatchRequest,
) -> Result<DeleteMessageBatchResponse, SqsError> {
    check_batch_entry_ids(req.entries.iter().map(|e| e.id.as_str()), req.entries.len())?;
    let queue = sqs.queue(ctx, &req.queue_url).await?;
    let mut leases = Vec::new();
    let mut decoded = Vec::new();
    let mut failed = Vec::new();
    for entry in &req.entries {
        match receipt::decode(&entry.receipt_handle, queue.id) {
            Ok(lease) => {
                leases.push(lease);
                decoded.push(entry);
            }
            Err(error) => failed.push(failure(&entry.id, error)),
        }
    }
    let outcomes = if leases.is_empty() { Vec::new() } else { delete(sqs, &queue, leases).await? };
    let mut successful = Vec::new();
    for (entry, outcome) in decoded.into_iter().zip(outcomes) {
        match outcome {
            DeleteOutcome::Expired => failed.push(failure(&entry.id, expired(&entry.receipt_handle))),
            DeleteOutcome::Deleted | DeleteOutcome::NotCurrent => {
                successful.push(BatchResultEntry { id: entry.id.clone() })
            }
        }
    }
    Ok(DeleteMessageBatchResponse { successful, failed })
}
