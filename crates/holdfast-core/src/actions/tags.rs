//! TagQueue, UntagQueue, ListQueueTags, and the tag rules CreateQueue shares.

use holdfast_api::types::*;
use holdfast_api::{limits, sqs_error, NoOutput, SqsError};

use crate::service::{from_store, RequestContext, Sqs};

/// Tag rules from the Developer Guide's quotas: keys 1–128 and values 0–256 characters of
/// letters, digits, whitespace and `_ . : / = + - @`; no `aws:` prefix.
pub(crate) fn validate_tags(tags: &TagMap) -> Result<(), SqsError> {
    if tags.len() > limits::MAX_TAGS_PER_QUEUE {
        return Err(sqs_error!(
            InvalidParameterValue,
            "Too many tags: a queue can have at most {} tags.",
            limits::MAX_TAGS_PER_QUEUE
        ));
    }
    let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    for (key, value) in tags {
        validate_tag_key(key)?;
        if value.chars().count() > limits::MAX_TAG_VALUE_LEN || !value.chars().all(allowed) {
            return Err(sqs_error!(InvalidParameterValue, "Tag value for key '{key}' is invalid."));
        }
    }
    Ok(())
}

fn validate_tag_key(key: &str) -> Result<(), SqsError> {
    let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    let length = key.chars().count();
    if length == 0
        || length > limits::MAX_TAG_KEY_LEN
        || !key.chars().all(allowed)
        || key.to_ascii_lowercase().starts_with("aws:")
    {
        return Err(sqs_error!(InvalidParameterValue, "Tag key '{key}' is invalid."));
    }
    Ok(())
}

pub async fn tag_queue(sqs: &Sqs, ctx: &RequestContext, req: TagQueueRequest) -> Result<NoOutput, SqsError> {
    let queue = sqs.queue(ctx, &req.queue_url).await?;
    if req.tags.is_empty() {
        return Err(sqs_error!(MissingParameter, "The request must contain the parameter Tags."));
    }
    validate_tags(&req.tags)?;
    let mut combined = queue.tags.clone();
    combined.extend(req.tags.clone());
    if combined.len() > limits::MAX_TAGS_PER_QUEUE {
        return Err(sqs_error!(
            InvalidParameterValue,
            "Too many tags added for queue {}: a queue can have at most {} tags.",
            queue.name,
            limits::MAX_TAGS_PER_QUEUE
        ));
    }
    sqs.store.tag_queue(queue.id, req.tags).await.map_err(from_store)?;
    Ok(NoOutput)
}

pub async fn untag_queue(sqs: &Sqs, ctx: &RequestContext, req: UntagQueueRequest) -> Result<NoOutput, SqsError> {
    let queue = sqs.queue(ctx, &req.queue_url).await?;
    if req.tag_keys.is_empty() {
        return Err(sqs_error!(MissingParameter, "The request must contain the parameter TagKeys."));
    }
    sqs.store.untag_queue(queue.id, req.tag_keys).await.map_err(from_store)?;
    Ok(NoOutput)
}

pub async fn list_queue_tags(
    sqs: &Sqs,
    ctx: &RequestContext,
    req: ListQueueTagsRequest,
) -> Result<ListQueueTagsResponse, SqsError> {
    let queue = sqs.queue(ctx, &req.queue_url).await?;
    let tags = queue.tags;
    Ok(ListQueueTagsResponse { tags: (!tags.is_empty()).then_some(tags) })
}
