//! DeleteMessage and DeleteMessageBatch.
//!
//! A receipt handle from an earlier receive deletes nothing if the message has been received again
//! since, yet the call succeeds: SQS documents exactly this ("the request succeeds, but the message
//! might not be deleted").

use holdfast_api::types::*;
use holdfast_api::{NoOutput, SqsError};

use super::send::failure;
use crate::receipt;
use crate::service::{from_store, Sqs};
use crate::validate::check_batch_entry_ids;

pub async fn delete_message(sqs: &Sqs, req: DeleteMessageRequest) -> Result<NoOutput, SqsError> {
    let queue = sqs.queue(&req.queue_url).await?;
    let lease = receipt::decode(&req.receipt_handle, queue.id)?;
    sqs.store.delete_messages(queue.id, vec![lease]).await.map_err(from_store)?;
    Ok(NoOutput)
}

pub async fn delete_message_batch(
    sqs: &Sqs,
    req: DeleteMessageBatchRequest,
) -> Result<DeleteMessageBatchResponse, SqsError> {
    check_batch_entry_ids(req.entries.iter().map(|e| e.id.as_str()), req.entries.len())?;
    let queue = sqs.queue(&req.queue_url).await?;
    let mut leases = Vec::new();
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for entry in &req.entries {
        match receipt::decode(&entry.receipt_handle, queue.id) {
            Ok(lease) => {
                leases.push(lease);
                successful.push(BatchResultEntry { id: entry.id.clone() });
            }
            Err(error) => failed.push(failure(&entry.id, error)),
        }
    }
    if !leases.is_empty() {
        sqs.store.delete_messages(queue.id, leases).await.map_err(from_store)?;
    }
    Ok(DeleteMessageBatchResponse { successful, failed })
}
