//! CreateQueue, DeleteQueue, GetQueueUrl, ListQueues, GetQueueAttributes, SetQueueAttributes,
//! PurgeQueue.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use holdfast_api::types::*;
use holdfast_api::{limits, sqs_error, NoOutput, SqsError};

use super::tags;
use crate::names;
use crate::queue_attributes::{self, effective_value, Occasion, ALL_ATTRIBUTES};
use crate::redrive::{queue_of_arn, RedriveAllowPolicy, RedrivePolicy};
use crate::service::{from_store, RequestContext, Sqs};
use crate::store::{CreateQueueOutcome, PurgeOutcome};
use crate::timer::Due;

pub async fn create_queue(
    sqs: &Sqs,
    ctx: &RequestContext,
    req: CreateQueueRequest,
) -> Result<CreateQueueResponse, SqsError> {
    let given = req.attributes.unwrap_or_default();
    let fifo_requested = given.get("FifoQueue").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    names::validate_queue_name(&req.queue_name, fifo_requested)?;
    let attributes = queue_attributes::validate(&given, Occasion::CreateQueue, fifo_requested)?;
    queue_attributes::validate_combination(&attributes)?;
    let (account, region) = (ctx.account(sqs), ctx.region(sqs));
    check_redrive(sqs, account, region, &req.queue_name, fifo_requested, &attributes).await?;
    let tags = req.tags.unwrap_or_default();
    tags::validate_tags(&tags)?;
    let now = sqs.now();
    let cooldown_ms = if sqs.config.cooldowns { i64::from(limits::RECREATE_COOLDOWN_SECONDS) * 1000 } else { 0 };
    let outcome = sqs
        .store
        .create_queue(account, region, &req.queue_name, attributes.clone(), tags, now, cooldown_ms)
        .await
        .map_err(from_store)?;
    let record = match outcome {
        CreateQueueOutcome::Created(record) => {
            tracing::info!(account = %record.account_id, region = %record.region, queue = %record.name, "queue created");
            record
        }
        CreateQueueOutcome::Exists(record) => {
            // SQS returns the existing queue only when every attribute given matches it.
            let conflict = attributes
                .iter()
                .find(|(name, value)| effective_value(&record.attributes, name).as_deref() != Some(value.as_str()));
            if let Some((name, _)) = conflict {
                return Err(sqs_error!(
                    QueueNameExists,
                    "A queue already exists with the same name and a different value for attribute {name}"
                ));
            }
            record
        }
        CreateQueueOutcome::DeletedRecently => {
            return Err(sqs_error!(
                QueueDeletedRecently,
                "You must wait 60 seconds after deleting a queue before you can create another with the same name."
            ));
        }
    };
    Ok(CreateQueueResponse { queue_url: Some(sqs.queue_url(ctx, &record)) })
}

pub async fn delete_queue(sqs: &Sqs, ctx: &RequestContext, req: DeleteQueueRequest) -> Result<NoOutput, SqsError> {
    let queue = sqs.queue(ctx, &req.queue_url).await?;
    sqs.store.delete_queue(queue.id, sqs.now()).await.map_err(from_store)?;
    sqs.waiters.queue_deleted(queue.id);
    sqs.timer.forget_queue(queue.id);
    sqs.fairness.forget(queue.id);
    sqs.in_flight.forget(queue.id);
    tracing::info!(queue = %queue.name, "queue deleted");
    Ok(NoOutput)
}

pub async fn get_queue_url(
    sqs: &Sqs,
    ctx: &RequestContext,
    req: GetQueueUrlRequest,
) -> Result<GetQueueUrlResponse, SqsError> {
    let owner = req.queue_owner_aws_account_id.as_deref().unwrap_or(ctx.account(sqs));
    let queue = sqs.queue_by_name(owner, ctx.region(sqs), &req.queue_name).await?;
    Ok(GetQueueUrlResponse { queue_url: Some(sqs.queue_url(ctx, &queue)) })
}

pub async fn list_queues(
    sqs: &Sqs,
    ctx: &RequestContext,
    req: ListQueuesRequest,
) -> Result<ListQueuesResponse, SqsError> {
    let max_results = match req.max_results {
        Some(n) => {
            crate::validate::check_range("MaxResults", n, 1, i64::from(limits::LIST_QUEUES_MAX_RESULTS))?;
            Some(n as usize)
        }
        None => None,
    };
    let after = req.next_token.as_deref().filter(|t| !t.is_empty()).map(decode_next_token).transpose()?;
    let prefix = req.queue_name_prefix.unwrap_or_default();
    let limit = max_results.unwrap_or(limits::LIST_QUEUES_MAX_RESULTS as usize);
    // One more than asked tells whether another page exists.
    let mut page = sqs
        .store
        .list_queues(ctx.account(sqs), ctx.region(sqs), &prefix, after.as_deref(), limit + 1)
        .await
        .map_err(from_store)?;
    let more = page.len() > limit;
    page.truncate(limit);
    // Without MaxResults SQS answers up to 1,000 queues and never a NextToken.
    let next_token = match (more, max_results, page.last()) {
        (true, Some(_), Some(last)) => Some(encode_next_token(&last.name)),
        _ => None,
    };
    let urls: Vec<String> = page.iter().map(|q| sqs.queue_url(ctx, q)).collect();
    Ok(ListQueuesResponse { queue_urls: (!urls.is_empty()).then_some(urls), next_token })
}

/// ListQueues and ListDeadLetterSourceQueues page by queue name; their NextToken is the last name
/// of the page, opaque to clients.
pub(crate) fn encode_next_token(last_name: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_name.as_bytes())
}

pub(crate) fn decode_next_token(token: &str) -> Result<String, SqsError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| sqs_error!(InvalidParameterValue, "Invalid NextToken value."))
}

pub async fn get_queue_attributes(
    sqs: &Sqs,
    ctx: &RequestContext,
    req: GetQueueAttributesRequest,
) -> Result<GetQueueAttributesResponse, SqsError> {
    let queue = sqs.queue(ctx, &req.queue_url).await?;
    let requested = req.attribute_names.unwrap_or_default();
    let mut wanted: Vec<&str> = Vec::new();
    for name in &requested {
        if name == "All" {
            wanted.extend_from_slice(ALL_ATTRIBUTES);
        } else if let Some(known) = ALL_ATTRIBUTES.iter().find(|a| **a == name.as_str()) {
            wanted.push(known);
        } else {
            return Err(sqs_error!(InvalidAttributeName, "Unknown Attribute {name}."));
        }
    }
    wanted.sort_unstable();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(GetQueueAttributesResponse { attributes: None });
    }

    let needs_counts = wanted.iter().any(|a| a.starts_with("ApproximateNumberOfMessages"));
    let counts =
        if needs_counts { Some(sqs.store.queue_counts(queue.id, sqs.now()).await.map_err(from_store)?) } else { None };
    let record = &queue;
    let mut attributes = BTreeMap::new();
    for name in wanted {
        let value = match name {
            "ApproximateNumberOfMessages" => counts.map(|c| c.visible.to_string()),
            "ApproximateNumberOfMessagesNotVisible" => counts.map(|c| c.in_flight.to_string()),
            "ApproximateNumberOfMessagesDelayed" => counts.map(|c| c.delayed.to_string()),
            "CreatedTimestamp" => Some((record.created_at / 1000).to_string()),
            "LastModifiedTimestamp" => Some((record.last_modified_at / 1000).to_string()),
            "QueueArn" => Some(sqs.queue_arn(record)),
            settable => effective_value(&record.attributes, settable),
        };
        if let Some(value) = value {
            attributes.insert(name.to_string(), value);
        }
    }
    // Only unset attributes asked for (a removed Policy, say): AWS leaves out the map itself.
    Ok(GetQueueAttributesResponse { attributes: (!attributes.is_empty()).then_some(attributes) })
}

pub async fn set_queue_attributes(
    sqs: &Sqs,
    ctx: &RequestContext,
    req: SetQueueAttributesRequest,
) -> Result<NoOutput, SqsError> {
    let queue = sqs.queue(ctx, &req.queue_url).await?;
    let attributes = queue_attributes::validate(&req.attributes, Occasion::SetQueueAttributes, queue.settings().fifo)?;
    let mut effective = queue.attributes.clone();
    effective.extend(attributes.clone());
    effective.retain(|_, value| !value.is_empty());
    queue_attributes::validate_combination(&effective)?;
    check_redrive(sqs, &queue.account_id, &queue.region, &queue.name, queue.settings().fifo, &attributes).await?;
    let now = sqs.now();
    let retention_changed = attributes.contains_key("MessageRetentionPeriod");
    let redrive_set = attributes.get("RedrivePolicy").is_some_and(|policy| !policy.is_empty());
    sqs.store.set_queue_attributes(queue.id, attributes, now).await.map_err(from_store)?;
    // A shorter retention period may expire messages now; a new RedrivePolicy may make messages
    // exhausted now.
    if retention_changed {
        sqs.timer.schedule(Due::Expire(queue.key()), now);
    }
    if redrive_set {
        sqs.timer.schedule(Due::Visible(queue.key()), now);
    }
    Ok(NoOutput)
}

pub async fn purge_queue(sqs: &Sqs, ctx: &RequestContext, req: PurgeQueueRequest) -> Result<NoOutput, SqsError> {
    let queue = sqs.queue(ctx, &req.queue_url).await?;
    let cooldown_ms = if sqs.config.cooldowns { i64::from(limits::PURGE_COOLDOWN_SECONDS) * 1000 } else { 0 };
    let outcome = sqs.store.purge_queue(queue.id, sqs.now(), cooldown_ms).await.map_err(from_store)?;
    match outcome {
        PurgeOutcome::Purged { removed } => {
            tracing::info!(queue = %queue.name, removed, "queue purged");
            Ok(NoOutput)
        }
        PurgeOutcome::InProgress => Err(sqs_error!(
            PurgeQueueInProgress,
            "Only one PurgeQueue operation on {} is allowed every 60 seconds.",
            queue.name
        )),
    }
}

/// A RedrivePolicy may only name an existing queue of the same account, region and type (FIFO
/// to FIFO) whose RedriveAllowPolicy lets this source in.
async fn check_redrive(
    sqs: &Sqs,
    account: &str,
    region: &str,
    source_name: &str,
    source_fifo: bool,
    attributes: &BTreeMap<String, String>,
) -> Result<(), SqsError> {
    let Some(text) = attributes.get("RedrivePolicy").filter(|t| !t.is_empty()) else { return Ok(()) };
    let policy = RedrivePolicy::parse(text)?;
    let reject = |reason: &str| {
        sqs_error!(InvalidParameterValue, "Value {text} for parameter RedrivePolicy is invalid. Reason: {reason}")
    };
    let target_name = queue_of_arn(&policy.dead_letter_target_arn)
        .filter(|(target_account, target_region, _)| *target_account == account && *target_region == region)
        .map(|(_, _, name)| name)
        .ok_or_else(|| reject("Dead-letter target does not exist."))?;
    // A queue may name itself, as AWS accepts; its messages then never move
    // (`store::DeadLetterTarget`'s engines ignore a target that is the source).
    let target = sqs
        .store
        .get_queue(account, region, target_name)
        .await
        .map_err(from_store)?
        .ok_or_else(|| reject("Dead-letter target does not exist."))?;
    if target.settings().fifo != source_fifo {
        return Err(reject("Dead-letter queue must be the same type of queue as the source (FIFO or standard)."));
    }
    if let Some(allow) = target.attributes.get("RedriveAllowPolicy").and_then(|t| RedriveAllowPolicy::parse(t).ok()) {
        let source_arn = names::queue_arn(region, account, source_name);
        if !allow.allows(&source_arn) {
            return Err(reject(&format!(
                "Queue {source_arn} is not allowed to use {} as its dead-letter queue.",
                policy.dead_letter_target_arn
            )));
        }
    }
    Ok(())
}
