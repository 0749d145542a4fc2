//! ListDeadLetterSourceQueues, and the sweep that dead-letters exhausted messages of queues nobody
//! is receiving from.

use holdfast_api::types::*;
use holdfast_api::{limits, SqsError};

use super::queues::{decode_next_token, encode_next_token};
use super::receive::dead_letter_target;
use crate::queue_attributes::QueueSettings;
use crate::service::{internal, Queue, RequestContext, Sqs};
use crate::store::QueueRecord;
use crate::validate::check_range;

/// How many exhausted messages one sweep moves per queue; the next sweep takes the rest.
const SWEEP_LIMIT: usize = 1_000;

/// Every live queue, page by page.
pub(crate) async fn all_queues(sqs: &Sqs) -> Result<Vec<QueueRecord>, SqsError> {
    let mut queues = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = sqs.store.list_queues("", after.as_deref(), 1000).await.map_err(internal)?;
        let Some(last) = page.last() else { break };
        after = Some(last.name.clone());
        queues.extend(page);
    }
    Ok(queues)
}

pub async fn list_dead_letter_source_queues(
    sqs: &Sqs,
    ctx: &RequestContext,
    req: ListDeadLetterSourceQueuesRequest,
) -> Result<ListDeadLetterSourceQueuesResponse, SqsError> {
    let queue = sqs.queue(&req.queue_url).await?;
    let max_results = match req.max_results {
        Some(n) => {
            check_range("MaxResults", n, 1, i64::from(limits::LIST_QUEUES_MAX_RESULTS))?;
            Some(n as usize)
        }
        None => None,
    };
    let after = req.next_token.as_deref().filter(|t| !t.is_empty()).map(decode_next_token).transpose()?;
    let target_arn = sqs.queue_arn(&queue.record.name);
    let mut sources: Vec<String> = all_queues(sqs)
        .await?
        .into_iter()
        .filter(|q| {
            let settings = QueueSettings::from_attributes(&q.attributes);
            settings.redrive_policy.is_some_and(|p| p.dead_letter_target_arn == target_arn)
        })
        .map(|q| q.name)
        .filter(|name| after.as_ref().is_none_or(|after| name > after))
        .collect();
    let limit = max_results.unwrap_or(limits::LIST_QUEUES_MAX_RESULTS as usize);
    let more = sources.len() > limit;
    sources.truncate(limit);
    let next_token = match (more, max_results, sources.last()) {
        (true, Some(_), Some(last)) => Some(encode_next_token(last)),
        _ => None,
    };
    Ok(ListDeadLetterSourceQueuesResponse {
        queue_urls: sources.iter().map(|name| sqs.queue_url(ctx, name)).collect(),
        next_token,
    })
}

/// Moves exhausted messages of every queue with a RedrivePolicy to its dead-letter queue, so a
/// poison message does not wait for a receive that may never come. Returns how many moved.
pub(crate) async fn sweep(sqs: &Sqs) -> Result<u64, SqsError> {
    let mut moved = 0;
    for record in all_queues(sqs).await? {
        let settings = QueueSettings::from_attributes(&record.attributes);
        if settings.redrive_policy.is_none() {
            continue;
        }
        let queue = Queue { record, settings };
        let Some(target) = dead_letter_target(sqs, &queue).await? else { continue };
        let target_queue = target.queue;
        let count = sqs
            .store
            .dead_letter_exhausted(queue.record.id, target, sqs.now(), SWEEP_LIMIT)
            .await
            .map_err(internal)?
            .unwrap_or(0);
        if count > 0 {
            sqs.waiters.messages_visible(target_queue, count as usize);
            moved += count;
        }
    }
    Ok(moved)
}
