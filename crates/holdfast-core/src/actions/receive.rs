//! ReceiveMessage, with long polling.
//!
//! A receive asks the store once; if that yields nothing and the request may wait, it parks on
//! the queue's signal (see `crate::waiters`) until a send, an alarm for a message becoming
//! visible, its deadline, or server shutdown, and then asks again. Nothing polls on a timer.

use std::collections::BTreeMap;

use holdfast_api::types::*;
use holdfast_api::{limits, sqs_error, SqsError};

use super::dead_letters;
use crate::fifo;
use crate::in_flight;
use crate::message_attributes::{self as attrs, AttributeFilter};
use crate::receipt;
use crate::redrive::queue_of_arn;
use crate::service::{from_store, Queue, RequestContext, Sqs};
use crate::store::{
    DeadLetterTarget, Delivery, FairOrder, Millis, QueueId, ReceiveAttempt, ReceiveParams, StoredMessage,
};
use crate::timer::{Due, QueueKey};
use crate::validate::{check_fifo_id, check_range};

/// The message system attributes a receive can ask for (besides `All`).
const SYSTEM_ATTRIBUTES: &[&str] = &[
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageDeduplicationId",
    "MessageGroupId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
];

pub async fn receive_message(
    sqs: &Sqs,
    ctx: &RequestContext,
    req: ReceiveMessageRequest,
) -> Result<ReceiveMessageResponse, SqsError> {
    let queue = sqs.queue(ctx, &req.queue_url).await?;
    let max_messages = match req.max_number_of_messages {
        Some(n) => {
            check_range("MaxNumberOfMessages", n, 1, i64::from(limits::MAX_NUMBER_OF_MESSAGES_MAX))?;
            n as usize
        }
        None => limits::MAX_NUMBER_OF_MESSAGES_DEFAULT as usize,
    };
    let visibility_timeout = match req.visibility_timeout {
        Some(v) => {
            check_range("VisibilityTimeout", v, 0, i64::from(limits::VISIBILITY_TIMEOUT_MAX))?;
            v
        }
        None => i64::from(queue.settings().visibility_timeout),
    };
    let wait_seconds = match req.wait_time_seconds {
        Some(w) => {
            if !(0..=i64::from(limits::WAIT_TIME_SECONDS_MAX)).contains(&w) {
                // AWS words this range differently from its others.
                return Err(sqs_error!(
                    InvalidParameterValue,
                    "Value {w} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= {}, if provided.",
                    limits::WAIT_TIME_SECONDS_MAX
                ));
            }
            w
        }
        None => i64::from(queue.settings().receive_message_wait_time_seconds),
    };
    if let Some(attempt_id) = &req.receive_request_attempt_id {
        // Only meaningful on FIFO queues; standard queues accept and ignore it.
        check_fifo_id("ReceiveRequestAttemptId", attempt_id)?;
    }
    let attempt = match &req.receive_request_attempt_id {
        Some(id) if queue.settings().fifo => Some(ReceiveAttempt { id: id.clone(), window_ms: fifo::DEDUP_WINDOW_MS }),
        _ => None,
    };
    let system_names: Vec<&str> = req
        .attribute_names
        .iter()
        .chain(req.message_system_attribute_names.iter())
        .flatten()
        .map(String::as_str)
        .collect();
    let filter = AttributeFilter::new(req.message_attribute_names.as_deref().unwrap_or_default());

    let request = Batch { max_messages, visibility_timeout_ms: visibility_timeout * 1000, attempt };
    let mut messages = wait_for_messages(sqs, &queue, request, wait_seconds).await?;
    if let Some(encryption) = &sqs.config.encryption {
        // A message that cannot be opened (its master key is gone) is not delivered: it stays
        // leased, comes back when its visibility ends, and dead-letters like any other.
        messages.retain_mut(|m| match encryption.open(m) {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(queue = %queue.name, error = %error.0, "a stored message cannot be opened");
                false
            }
        });
    }
    sqs.recorder.received(&queue.key(), sqs.now(), messages.len());
    if messages.is_empty() {
        return Ok(ReceiveMessageResponse { messages: None });
    }
    let rendered = messages.into_iter().map(|m| render(&queue, m, &system_names, &filter)).collect();
    Ok(ReceiveMessageResponse { messages: Some(rendered) })
}

/// How many of `wanted` messages the in-flight limit lets a receive take (`crate::in_flight`).
async fn room_in_flight(sqs: &Sqs, queue: &Queue, wanted: usize, now: Millis) -> Result<usize, SqsError> {
    let limit = sqs.config.max_in_flight;
    if in_flight::room(limit, sqs.in_flight.bound(queue.id), wanted) == in_flight::Room::Enough {
        return Ok(wanted);
    }
    let in_flight = sqs.store.queue_counts(queue.id, now).await.map_err(from_store)?.in_flight;
    sqs.in_flight.counted(queue.id, in_flight);
    Ok(wanted.min(limit.saturating_sub(in_flight) as usize))
}

/// The fair-queue order of a standard queue's receive, sampling the queue's load first when due
/// (`crate::fairness`).
async fn fair_order(sqs: &Sqs, queue: QueueId, now: Millis) -> Result<Option<FairOrder>, SqsError> {
    if sqs.fairness.needs_sample(queue, now) {
        let load = sqs.store.group_load(queue, now).await.map_err(from_store)?;
        sqs.fairness.record(queue, &load, now);
    }
    Ok(sqs.fairness.order(queue))
}

/// What one receive asks of the store.
struct Batch {
    max_messages: usize,
    visibility_timeout_ms: i64,
    attempt: Option<ReceiveAttempt>,
}

/// The dead-letter queue a receive moves exhausted messages to, if the queue has a RedrivePolicy
/// whose target still exists, with the target's timer key.
pub(crate) async fn dead_letter_target(
    sqs: &Sqs,
    queue: &Queue,
) -> Result<Option<(DeadLetterTarget, QueueKey)>, SqsError> {
    let Some(policy) = &queue.settings().redrive_policy else { return Ok(None) };
    // A dead-letter queue is always in its source's account and region.
    let Some((_, _, name)) = queue_of_arn(&policy.dead_letter_target_arn)
        .filter(|(account, region, _)| *account == queue.account_id && *region == queue.region)
    else {
        return Ok(None);
    };
    let target = sqs.store.get_queue(&queue.account_id, &queue.region, name).await.map_err(from_store)?;
    Ok(target.map(|target| {
        let rule = DeadLetterTarget {
            queue: target.id,
            max_receive_count: policy.max_receive_count,
            source_arn: sqs.queue_arn(queue),
            reset_sent_at: queue.settings().fifo,
        };
        (rule, target.key())
    }))
}

async fn wait_for_messages(
    sqs: &Sqs,
    queue: &Queue,
    batch: Batch,
    wait_seconds: i64,
) -> Result<Vec<StoredMessage>, SqsError> {
    let Batch { max_messages, visibility_timeout_ms, attempt } = batch;
    let queue_id = queue.id;
    let key = queue.key();
    let dead_letter = dead_letter_target(sqs, queue).await?;
    let delivery = if queue.settings().fifo { Delivery::Fifo } else { Delivery::Standard };
    let retention_ms = i64::from(queue.settings().message_retention_period) * 1000;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait_seconds as u64);
    let signal = sqs.waiters.signal(queue_id);
    let _registration = (wait_seconds > 0).then(|| signal.register());
    let mut shutdown = sqs.shutdown_signal();
    loop {
        let notified = signal.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();

        let now = sqs.now();
        let max_messages = match room_in_flight(sqs, queue, max_messages, now).await? {
            0 if delivery == Delivery::Standard => {
                return Err(sqs_error!(
                    OverLimit,
                    "Too many messages have been received without being deleted. Please delete your received messages or let them timeout before receiving more."
                ));
            }
            // AWS returns nothing from a FIFO queue at the limit, without an error.
            0 => return Ok(Vec::new()),
            room => room,
        };
        let fair = match delivery {
            Delivery::Standard => fair_order(sqs, queue_id, now).await?,
            Delivery::Fifo => None,
        };
        let params = ReceiveParams {
            delivery,
            dead_letter: dead_letter.as_ref().map(|(rule, _)| rule.clone()),
            attempt: attempt.clone(),
            fair: fair.clone(),
            ..ReceiveParams::new(max_messages, visibility_timeout_ms, retention_ms, now)
        };
        let outcome = sqs.store.receive_messages(queue_id, params).await.map_err(from_store)?;
        sqs.in_flight.leased(queue_id, outcome.messages.len());
        if let Some(order) = &fair {
            sqs.fairness.served(queue_id, order, &outcome.messages);
        }
        if let (Some((_, target)), moved @ 1..) = (&dead_letter, outcome.dead_lettered) {
            dead_letters::arrived(sqs, target, moved);
        }
        if attempt.is_some() {
            sqs.timer.schedule(Due::Prune, now + fifo::DEDUP_WINDOW_MS);
        }
        if !outcome.messages.is_empty() {
            // Receives waiting on this queue must look again when these messages' visibility runs
            // out, and so must the dead-letter sweep if that makes one of them exhausted.
            let exhausted_then = dead_letter
                .as_ref()
                .is_some_and(|(rule, _)| outcome.messages.iter().any(|m| m.receive_count >= rule.max_receive_count));
            if exhausted_then || sqs.waiters.has_waiters(queue_id) {
                sqs.timer.schedule(Due::Visible(key), now + visibility_timeout_ms);
            }
            return Ok(outcome.messages);
        }
        if wait_seconds == 0 || *shutdown.borrow() {
            return Ok(Vec::new());
        }
        if let Some(at) = outcome.next_visible_at {
            sqs.timer.schedule(Due::Visible(key.clone()), at);
        }
        // With a shared store, another node's send may come with no word of it reaching here.
        let look_again = sqs.recheck.map(|every| tokio::time::Instant::now() + every);
        let wake = look_again.map_or(deadline, |at| at.min(deadline));
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(wake) => {
                if wake >= deadline {
                    return Ok(Vec::new());
                }
            }
            _ = shutdown.changed() => return Ok(Vec::new()),
        }
    }
}

fn render(queue: &Queue, message: StoredMessage, system_names: &[&str], filter: &AttributeFilter) -> Message {
    let receipt_handle = receipt::encode(queue.id, crate::store::Lease { seq: message.seq, lease: message.lease });
    let all_system = system_names.contains(&"All");
    let mut attributes = BTreeMap::new();
    let system_attributes = attrs::decode(&message.system_attributes);
    for name in SYSTEM_ATTRIBUTES {
        if !all_system && !system_names.contains(name) {
            continue;
        }
        let value = match *name {
            "SenderId" => Some(message.sender_id.clone()),
            "SentTimestamp" => Some(message.sent_at.to_string()),
            "ApproximateReceiveCount" => Some(message.receive_count.to_string()),
            "ApproximateFirstReceiveTimestamp" => message.first_received_at.map(|t| t.to_string()),
            "MessageGroupId" => message.group_id.clone(),
            "MessageDeduplicationId" => message.deduplication_id.clone(),
            "SequenceNumber" if queue.settings().fifo => Some(fifo::sequence_number(message.seq)),
            "DeadLetterQueueSourceArn" => message.dead_letter_source_arn.clone(),
            "AWSTraceHeader" => system_attributes.get("AWSTraceHeader").and_then(|v| v.string_value.clone()),
            _ => None,
        };
        if let Some(value) = value {
            attributes.insert(name.to_string(), value);
        }
    }
    let message_attributes: MessageAttributeMap = if filter.is_empty() {
        MessageAttributeMap::new()
    } else {
        attrs::decode(&message.attributes).into_iter().filter(|(name, _)| filter.matches(name)).collect()
    };
    Message {
        message_id: message.message_id,
        receipt_handle,
        md5_of_body: attrs::md5_hex(message.body.as_bytes()),
        body: message.body,
        attributes: (!attributes.is_empty()).then_some(attributes),
        md5_of_message_attributes: (!message_attributes.is_empty())
            .then(|| attrs::md5_of_attributes(&message_attributes)),
        message_attributes: (!message_attributes.is_empty()).then_some(message_attributes),
    }
}
