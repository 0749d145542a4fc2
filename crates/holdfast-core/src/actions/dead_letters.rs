//! ListDeadLetterSourceQueues, and the sweep that dead-letters exhausted messages of queues nobody
//! is receiving from, run by the service's timer when such a message becomes visible.

use holdfast_api::types::*;
use holdfast_api::{limits, SqsError};

use super::queues::{decode_next_token, encode_next_token};
use super::receive::dead_letter_target;
use crate::service::{from_store, RequestContext, Sqs};
use crate::store::{QueueRecord, StoreError};
use crate::timer::{Due, QueueKey};
use crate::validate::check_range;

/// How many exhausted messages one sweep moves; a sweep that moved this many runs again at once.
const SWEEP_LIMIT: usize = 1_000;

/// Every live queue of `account` in `region`, page by page.
pub(crate) async fn queues_of(sqs: &Sqs, account: &str, region: &str) -> Result<Vec<QueueRecord>, SqsError> {
    let mut queues = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = sqs.store.list_queues(account, region, "", after.as_deref(), 1000).await.map_err(from_store)?;
        let Some(last) = page.last() else { break };
        after = Some(last.name.clone());
        queues.extend(page);
    }
    Ok(queues)
}

/// Every live queue of every account and region.
pub(crate) async fn all_queues(sqs: &Sqs) -> Result<Vec<QueueRecord>, SqsError> {
    let mut queues = Vec::new();
    for (account, region) in sqs.store.list_namespaces().await.map_err(from_store)? {
        queues.extend(queues_of(sqs, &account, &region).await?);
    }
    Ok(queues)
}

pub async fn list_dead_letter_source_queues(
    sqs: &Sqs,
    ctx: &RequestContext,
    req: ListDeadLetterSourceQueuesRequest,
) -> Result<ListDeadLetterSourceQueuesResponse, SqsError> {
    let queue = sqs.queue(ctx, &req.queue_url).await?;
    let max_results = match req.max_results {
        Some(n) => {
            check_range("MaxResults", n, 1, i64::from(limits::LIST_QUEUES_MAX_RESULTS))?;
            Some(n as usize)
        }
        None => None,
    };
    let after = req.next_token.as_deref().filter(|t| !t.is_empty()).map(decode_next_token).transpose()?;
    let target_arn = sqs.queue_arn(&queue);
    let mut sources: Vec<QueueRecord> = queues_of(sqs, &queue.account_id, &queue.region)
        .await?
        .into_iter()
        .filter(|q| q.settings().redrive_policy.as_ref().is_some_and(|p| p.dead_letter_target_arn == target_arn))
        .filter(|q| after.as_ref().is_none_or(|after| &q.name > after))
        .collect();
    let limit = max_results.unwrap_or(limits::LIST_QUEUES_MAX_RESULTS as usize);
    let more = sources.len() > limit;
    sources.truncate(limit);
    let next_token = match (more, max_results, sources.last()) {
        (true, Some(_), Some(last)) => Some(encode_next_token(&last.name)),
        _ => None,
    };
    Ok(ListDeadLetterSourceQueuesResponse {
        queue_urls: sources.iter().map(|source| sqs.queue_url(ctx, source)).collect(),
        next_token,
    })
}

/// Messages arrived in `queue` from another queue (dead-lettered or moved): wake its receivers,
/// and let expiry look at it, since a moved message may keep an enqueue time older than any there.
pub(crate) fn arrived(sqs: &Sqs, queue: &QueueKey, count: u64) {
    // Not a send, but the queue now holds messages: its metrics are recorded from now on.
    sqs.recorder.touch(queue.id, sqs.now());
    sqs.waiters.messages_visible(queue.id, count as usize);
    sqs.timer.schedule(Due::Expire(queue.clone()), sqs.now());
}

/// Moves the queue's exhausted messages to its dead-letter queue, so a poison message does not
/// wait for a receive that may never come, and schedules the next sweep for when the next
/// exhausted message in flight becomes visible.
pub(crate) async fn sweep_queue(sqs: &Sqs, key: &QueueKey) -> Result<(), SqsError> {
    let Some(queue) = sqs.live_queue(key).await? else { return Ok(()) };
    let Some((rule, target)) = dead_letter_target(sqs, &queue).await? else { return Ok(()) };
    let now = sqs.now();
    let outcome = match sqs.store.dead_letter_exhausted(queue.id, rule, now, SWEEP_LIMIT).await {
        Err(StoreError::QueueNotFound(_)) => return Ok(()),
        other => other.map_err(from_store)?,
    };
    if outcome.moved > 0 {
        tracing::info!(queue = %queue.name, moved = outcome.moved, "moved exhausted messages to the dead-letter queue");
        arrived(sqs, &target, outcome.moved);
    }
    let next = if outcome.moved as usize >= SWEEP_LIMIT { Some(now) } else { outcome.next_due_at };
    if let Some(at) = next {
        sqs.timer.schedule(Due::Visible(key.clone()), at);
    }
    Ok(())
}
