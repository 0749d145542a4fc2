//! SendMessage and SendMessageBatch.
//!
//! Every entry is validated on its own (`prepare`); a batch sends all valid entries in one store
//! call, so they are durable together, and reports the invalid ones in `Failed`.

use holdfast_api::types::*;
use holdfast_api::{limits, sqs_error, SqsError};

use crate::fifo;
use crate::message_attributes as attrs;
use crate::service::{expires_at, from_store, Queue, RequestContext, Sqs};
use crate::store::{Deduplication, Millis, NewMessage, Sent};
use crate::timer::Due;
use crate::validate::{check_batch_entry_ids, check_fifo_id, check_message_characters};

/// The members SendMessage and a SendMessageBatch entry share.
struct Outgoing<'a> {
    body: &'a str,
    delay_seconds: Option<i64>,
    attributes: &'a MessageAttributeMap,
    system_attributes: &'a MessageAttributeMap,
    deduplication_id: Option<&'a str>,
    group_id: Option<&'a str>,
    /// The request's `X-Amzn-Trace-Id` header: the message's `AWSTraceHeader` unless the
    /// message sets that system attribute itself.
    trace_header: Option<&'a str>,
}

/// The digests a send result reports about one message, computed from what the client sent.
struct Digests {
    /// The message's size as the limits count it, for `SentMessageSize`.
    size: usize,
    md5_of_body: String,
    md5_of_attributes: Option<String>,
    md5_of_system_attributes: Option<String>,
}

/// Bytes counted toward the size limits: body plus attribute names, types and values.
fn message_size(body: &str, attributes: &MessageAttributeMap) -> usize {
    body.len() + attrs::size_of(attributes)
}

fn prepare(queue: &Queue, sender_id: &str, now: Millis, out: Outgoing<'_>) -> Result<(NewMessage, Digests), SqsError> {
    if out.body.is_empty() {
        return Err(sqs_error!(MissingParameter, "The request must contain the parameter MessageBody."));
    }
    if let Err(bad) = check_message_characters(out.body) {
        return Err(sqs_error!(
            InvalidMessageContents,
            "Invalid binary character '#x{:X}' was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
            bad as u32
        ));
    }
    attrs::validate(out.attributes)?;
    attrs::validate_system(out.system_attributes)?;
    let system_attributes = with_trace_header(out.system_attributes, out.trace_header);
    let size = message_size(out.body, out.attributes);
    let max_size = queue.settings().maximum_message_size as usize;
    if size > max_size {
        return Err(sqs_error!(
            InvalidParameterValue,
            "One or more parameters are invalid. Reason: Message must be shorter than {max_size} bytes."
        ));
    }
    let delay = match out.delay_seconds {
        // FIFO queues have only the queue's delay: per-message delays would break the order.
        Some(delay) if queue.settings().fifo && delay != 0 => {
            return Err(sqs_error!(
                InvalidParameterValue,
                // AWS's wording, grammar included.
                "Value {delay} for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type."
            ));
        }
        // DelaySeconds=0 is allowed on a FIFO queue but the queue's own delay still applies.
        _ if queue.settings().fifo => i64::from(queue.settings().delay_seconds),
        Some(delay) => {
            if !(0..=i64::from(limits::DELAY_SECONDS_MAX)).contains(&delay) {
                return Err(sqs_error!(
                    InvalidParameterValue,
                    "Value {delay} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."
                ));
            }
            delay
        }
        None => i64::from(queue.settings().delay_seconds),
    };
    let deduplication_id = if queue.settings().fifo {
        let Some(group) = out.group_id else {
            return Err(sqs_error!(MissingParameter, "The request must contain the parameter MessageGroupId."));
        };
        check_fifo_id("MessageGroupId", group)?;
        match out.deduplication_id {
            Some(explicit) => {
                check_fifo_id("MessageDeduplicationId", explicit)?;
                Some(explicit.to_string())
            }
            None if queue.settings().content_based_deduplication => Some(fifo::content_deduplication_id(out.body)),
            None => {
                return Err(sqs_error!(
                    InvalidParameterValue,
                    "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly"
                ));
            }
        }
    } else {
        if let Some(dedup) = out.deduplication_id {
            return Err(sqs_error!(
                InvalidParameterValue,
                "Value {dedup} for parameter MessageDeduplicationId is invalid. Reason: The request includes a parameter that is not valid for this queue type."
            ));
        }
        // A group id on a standard queue names the tenant of a fair queue: accepted and returned.
        if let Some(group) = out.group_id {
            check_fifo_id("MessageGroupId", group)?;
        }
        None
    };
    let encoded_attributes = attrs::encode(out.attributes);
    let encoded_system = attrs::encode(&system_attributes);
    let digests = Digests {
        size,
        md5_of_body: attrs::md5_hex(out.body.as_bytes()),
        md5_of_attributes: (!out.attributes.is_empty()).then(|| attrs::md5_hex(&encoded_attributes)),
        // What the client sent: a trace header added from the HTTP header is not its to check.
        md5_of_system_attributes: (!out.system_attributes.is_empty())
            .then(|| attrs::md5_hex(&attrs::encode(out.system_attributes))),
    };
    let message = NewMessage {
        message_id: uuid::Uuid::new_v4().to_string(),
        body: out.body.to_string(),
        attributes: encoded_attributes,
        system_attributes: encoded_system,
        group_id: out.group_id.map(str::to_string),
        deduplication_id,
        sender_id: sender_id.to_string(),
        sent_at: now,
        visible_at: now + delay * 1000,
    };
    Ok((message, digests))
}

/// The system attributes to store: those sent, plus `AWSTraceHeader` from the HTTP header (as
/// the X-Ray SDK sends it) when the message does not set it. A header that would not be a valid
/// attribute value, or is longer than any trace header (`MAX_TRACE_HEADER_BYTES`), is ignored
/// rather than failing the send.
fn with_trace_header(sent: &MessageAttributeMap, header: Option<&str>) -> MessageAttributeMap {
    let mut attributes = sent.clone();
    let header = header.filter(|h| h.len() <= MAX_TRACE_HEADER_BYTES && !sent.contains_key(TRACE_HEADER));
    if let Some(header) = header {
        let value = MessageAttributeValue {
            string_value: Some(header.to_owned()),
            data_type: "String".into(),
            ..Default::default()
        };
        let candidate = MessageAttributeMap::from([(TRACE_HEADER.to_owned(), value)]);
        if attrs::validate_system(&candidate).is_ok() {
            attributes.extend(candidate);
        }
    }
    attributes
}

const TRACE_HEADER: &str = "AWSTraceHeader";
/// An X-Ray trace header is about 100 bytes; this bounds what a header may add to every message.
const MAX_TRACE_HEADER_BYTES: usize = 1_024;

fn sender_id(sqs: &Sqs, ctx: &RequestContext) -> String {
    ctx.sender_id.clone().unwrap_or_else(|| ctx.account(sqs).to_owned())
}

/// Enqueues messages in one store call, wakes receivers waiting on the queue, and schedules what
/// the new messages make due: their expiry, their delay's end for waiting receivers, and the end
/// of FIFO deduplication windows.
async fn enqueue(sqs: &Sqs, queue: &Queue, mut messages: Vec<NewMessage>) -> Result<Vec<Sent>, SqsError> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let now = sqs.now();
    let settings = queue.settings();
    if !settings.fifo {
        // On a standard queue a group id names a tenant of a fair queue.
        for group in messages.iter().filter_map(|m| m.group_id.as_deref()) {
            sqs.fairness.sent(queue.id, group, now);
        }
    }
    if let Some(encryption) = &sqs.config.encryption {
        encryption.seal(queue.id, i64::from(settings.kms_data_key_reuse_period) * 1000, now, &mut messages);
    }
    let visible_now = messages.iter().filter(|m| m.visible_at <= now).count();
    let earliest_delayed = messages.iter().map(|m| m.visible_at).filter(|&at| at > now).min();
    let dedup = settings
        .fifo
        .then_some(Deduplication { window_ms: fifo::DEDUP_WINDOW_MS, per_group: settings.dedup_per_group });
    let sent = sqs.store.send_messages(queue.id, messages, dedup, now).await.map_err(from_store)?;
    // FIFO messages all share the queue's delay, so a duplicate (which enqueued nothing) is one
    // of the visible ones exactly when any are.
    let duplicates = sent.iter().filter(|s| s.duplicate).count();
    sqs.waiters.messages_visible(queue.id, visible_now.saturating_sub(duplicates));
    let key = queue.key();
    if let Some(at) = earliest_delayed.filter(|_| sqs.waiters.has_waiters(queue.id)) {
        sqs.timer.schedule(Due::Visible(key.clone()), at);
    }
    sqs.timer.schedule(Due::Expire(key), expires_at(now, i64::from(settings.message_retention_period) * 1000));
    if dedup.is_some() {
        sqs.timer.schedule(Due::Prune, now + fifo::DEDUP_WINDOW_MS);
    }
    Ok(sent)
}

/// A FIFO message's SequenceNumber.
fn sequence_number(queue: &Queue, sent: &Sent) -> Option<String> {
    queue.settings().fifo.then(|| fifo::sequence_number(sent.seq))
}

pub async fn send_message(
    sqs: &Sqs,
    ctx: &RequestContext,
    req: SendMessageRequest,
) -> Result<SendMessageResponse, SqsError> {
    let queue = sqs.queue(ctx, &req.queue_url).await?;
    let empty = MessageAttributeMap::new();
    let (message, digests) = prepare(
        &queue,
        &sender_id(sqs, ctx),
        sqs.now(),
        Outgoing {
            body: &req.message_body,
            delay_seconds: req.delay_seconds,
            attributes: req.message_attributes.as_ref().unwrap_or(&empty),
            system_attributes: req.message_system_attributes.as_ref().unwrap_or(&empty),
            deduplication_id: req.message_deduplication_id.as_deref(),
            group_id: req.message_group_id.as_deref(),
            trace_header: ctx.trace_header.as_deref(),
        },
    )?;
    let sent = enqueue(sqs, &queue, vec![message]).await?.pop().expect("one outcome per message");
    sqs.recorder.sent(&queue.key(), sqs.now(), std::iter::once(digests.size));
    Ok(SendMessageResponse {
        md5_of_message_body: Some(digests.md5_of_body),
        md5_of_message_attributes: digests.md5_of_attributes,
        md5_of_message_system_attributes: digests.md5_of_system_attributes,
        sequence_number: sequence_number(&queue, &sent),
        message_id: Some(sent.message_id),
    })
}

pub async fn send_message_batch(
    sqs: &Sqs,
    ctx: &RequestContext,
    req: SendMessageBatchRequest,
) -> Result<SendMessageBatchResponse, SqsError> {
    check_batch_entry_ids(req.entries.iter().map(|e| e.id.as_str()), req.entries.len())?;
    let queue = sqs.queue(ctx, &req.queue_url).await?;
    let total: usize = req
        .entries
        .iter()
        .map(|e| message_size(&e.message_body, e.message_attributes.as_ref().unwrap_or(&MessageAttributeMap::new())))
        .sum();
    if total > limits::MAX_BATCH_PAYLOAD_BYTES {
        return Err(sqs_error!(
            BatchRequestTooLong,
            "Batch requests cannot be longer than {} bytes. You have sent {total} bytes.",
            limits::MAX_BATCH_PAYLOAD_BYTES
        ));
    }
    check_fifo_batch(&queue, &req.entries)?;
    let sender = sender_id(sqs, ctx);
    let now = sqs.now();
    let empty = MessageAttributeMap::new();
    let mut messages = Vec::new();
    let mut accepted: Vec<(String, Digests)> = Vec::new();
    let mut failed = Vec::new();
    for entry in &req.entries {
        let outgoing = Outgoing {
            body: &entry.message_body,
            delay_seconds: entry.delay_seconds,
            attributes: entry.message_attributes.as_ref().unwrap_or(&empty),
            system_attributes: entry.message_system_attributes.as_ref().unwrap_or(&empty),
            deduplication_id: entry.message_deduplication_id.as_deref(),
            group_id: entry.message_group_id.as_deref(),
            trace_header: ctx.trace_header.as_deref(),
        };
        match prepare(&queue, &sender, now, outgoing) {
            Ok((message, digests)) => {
                messages.push(message);
                accepted.push((entry.id.clone(), digests));
            }
            Err(error) => failed.push(failure(&entry.id, error)),
        }
    }
    let sent = enqueue(sqs, &queue, messages).await?;
    if !accepted.is_empty() {
        sqs.recorder.sent(&queue.key(), sqs.now(), accepted.iter().map(|(_, digests)| digests.size));
    }
    let successful = accepted
        .into_iter()
        .zip(sent)
        .map(|((id, digests), sent)| SendMessageBatchResultEntry {
            id,
            sequence_number: sequence_number(&queue, &sent),
            message_id: sent.message_id,
            md5_of_message_body: digests.md5_of_body,
            md5_of_message_attributes: digests.md5_of_attributes,
            md5_of_message_system_attributes: digests.md5_of_system_attributes,
        })
        .collect();
    Ok(SendMessageBatchResponse { successful, failed })
}

/// On a FIFO queue, an entry without a MessageGroupId, or without a MessageDeduplicationId when
/// the queue has no content-based deduplication, fails the whole batch (not just the entry), as
/// AWS answers.
fn check_fifo_batch(queue: &Queue, entries: &[SendMessageBatchRequestEntry]) -> Result<(), SqsError> {
    if !queue.settings().fifo {
        return Ok(());
    }
    if entries.iter().any(|e| e.message_group_id.is_none()) {
        return Err(sqs_error!(InvalidParameterValue, "The request must contain the parameter MessageGroupId."));
    }
    if !queue.settings().content_based_deduplication && entries.iter().any(|e| e.message_deduplication_id.is_none()) {
        return Err(sqs_error!(
            InvalidParameterValue,
            "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly"
        ));
    }
    Ok(())
}

/// A batch entry's failure, reported with the legacy (Query) error code as SQS does.
pub(crate) fn failure(id: &str, error: SqsError) -> BatchResultErrorEntry {
    BatchResultErrorEntry {
        id: id.to_string(),
        sender_fault: error.code.sender_fault(),
        code: error.code.query_code().to_string(),
        message: Some(error.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_header_is_taken_only_when_plausible() {
        let none = MessageAttributeMap::new();
        let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        assert_eq!(with_trace_header(&none, Some(trace))[TRACE_HEADER].string_value.as_deref(), Some(trace));
        assert!(with_trace_header(&none, Some(&"x".repeat(MAX_TRACE_HEADER_BYTES + 1))).is_empty(), "too long");
        assert!(with_trace_header(&none, Some("bad\u{1}char")).is_empty(), "not a valid value");
        let own = MessageAttributeMap::from([(
            TRACE_HEADER.to_owned(),
            MessageAttributeValue {
                string_value: Some("mine".into()),
                data_type: "String".into(),
                ..Default::default()
            },
        )]);
        assert_eq!(with_trace_header(&own, Some(trace))[TRACE_HEADER].string_value.as_deref(), Some("mine"));
    }
}
