//! The `Store` trait: every state change of every queue, each as one atomic call.
//!
//! The service (`crate::service`) validates requests and decides what should happen; a store
//! only makes it happen, atomically and durably. A store knows no SQS validation rule, but it
//! owns the invariants that must hold under concurrency:
//!
//! - Architecture Invariant: a call that returns `Ok` has made its effect durable (for durable
//!   engines). Nothing is acknowledged before it would survive a crash.
//! - Architecture Invariant: a message is leased by at most one receive at a time. Each receive
//!   draws a fresh random `lease`; delete and change-visibility act only when the caller's lease
//!   is the message's current one, so a stale receipt handle can never touch a re-delivered
//!   message.
//! - Architecture Invariant: receive cost does not grow with the backlog: engines find the next
//!   visible messages through an index ordered by `(visible_at, seq)`, never by scanning.
//!
//! Time is an input: every call that depends on time takes `now` (epoch milliseconds), so the
//! conformance suite drives time by hand instead of sleeping.

use std::collections::BTreeMap;

use async_trait::async_trait;

/// Epoch milliseconds. SQS timestamps are epoch seconds or milliseconds; all internal ones are ms.
pub type Millis = i64;

/// A queue's internal id. Ids are never reused, so a deleted and re-created queue is a new queue
/// and nothing addressed to the old one can reach it.
pub type QueueId = i64;

/// Storage failures. These never reach a client as such: the service logs them with their cause
/// and answers `InternalFailure` (or `ServiceUnavailable` when the disk is full).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage is out of space: {0}")]
    Full(String),
    #[error("storage failure: {0}")]
    Backend(String),
    #[error("the store is shutting down")]
    Closed,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A queue as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRecord {
    pub id: QueueId,
    pub name: String,
    /// The settable attributes given explicitly at creation or by SetQueueAttributes, already
    /// validated and normalised by the service (e.g. `"VisibilityTimeout" => "60"`). Defaults are
    /// not stored: they are applied when read, so the effective value of an unset attribute
    /// follows the service's defaults.
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub created_at: Millis,
    pub last_modified_at: Millis,
}

/// What `create_queue` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateQueueOutcome {
    Created(QueueRecord),
    /// A live queue of that name exists; nothing was changed. The service compares attributes.
    Exists(QueueRecord),
    /// A queue of that name was deleted less than `recreate_cooldown_ms` ago.
    DeletedRecently,
}

/// What `purge_queue` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PurgeOutcome {
    Purged {
        removed: u64,
    },
    /// The queue was purged less than `cooldown_ms` ago; nothing was removed.
    InProgress,
}

/// A message to enqueue, fully validated by the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// The MessageId the client is told (a UUID).
    pub message_id: String,
    pub body: String,
    /// Message attributes in their canonical encoding (`crate::message_attributes::encode`),
    /// opaque to the store.
    pub attributes: Vec<u8>,
    /// Message system attributes (`AWSTraceHeader`), same encoding.
    pub system_attributes: Vec<u8>,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
    pub sender_id: String,
    pub sent_at: Millis,
    /// `sent_at` plus the message's delay.
    pub visible_at: Millis,
}

/// How a FIFO queue deduplicates sends (SPEC §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deduplication {
    /// A deduplication id seen within this window (5 minutes) makes a send a duplicate, even if
    /// the first message has been deleted since.
    pub window_ms: i64,
    /// `DeduplicationScope=messageGroup`: ids are unique per message group, not per queue.
    pub per_group: bool,
}

/// What `send_messages` did with one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    Enqueued {
        seq: i64,
    },
    /// A FIFO send whose deduplication id was seen within the window: nothing was enqueued; the
    /// first message's id and seq are reported instead.
    Duplicate {
        seq: i64,
        message_id: String,
    },
}

impl SendOutcome {
    pub fn seq(&self) -> i64 {
        match self {
            SendOutcome::Enqueued { seq } | SendOutcome::Duplicate { seq, .. } => *seq,
        }
    }
}

/// A message as stored, returned by receive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// Enqueue order, unique across the store and never reused.
    pub seq: i64,
    pub message_id: String,
    pub body: String,
    pub attributes: Vec<u8>,
    pub system_attributes: Vec<u8>,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
    pub sender_id: String,
    pub sent_at: Millis,
    /// How many times the message has been received, including the receive returning it.
    pub receive_count: u32,
    pub first_received_at: Option<Millis>,
    /// The lease of the receive that returned this message; goes into the receipt handle.
    pub lease: u64,
    /// The ARN of the queue this message was dead-lettered from, while it sits in a dead-letter
    /// queue (the `DeadLetterQueueSourceArn` system attribute).
    pub dead_letter_source_arn: Option<String>,
}

/// Identifies one receive of one message: what a receipt handle decodes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    pub seq: i64,
    pub lease: u64,
}

/// The delivery order a queue promises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Delivery {
    /// Best effort: visible messages in `(visible_at, seq)` order.
    #[default]
    Standard,
    /// Strict order within each message group (SPEC §5.2): a group's messages are delivered in
    /// `seq` order, and while any of them is in flight no later one is delivered (the group is
    /// locked). Groups whose first remaining message is visible are served oldest first, as many
    /// of one group's messages as fit before the next group.
    Fifo,
}

/// Where messages go once they have been received too often (a queue's RedrivePolicy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterTarget {
    pub queue: QueueId,
    /// A message already received this many times moves to `queue` instead of being delivered
    /// again.
    pub max_receive_count: u32,
    /// The source queue's ARN, recorded on each moved message.
    pub source_arn: String,
    /// FIFO dead-letter queues restart the retention clock; standard ones keep the original
    /// enqueue time (Developer Guide, "dead-letter queue retention").
    pub reset_sent_at: bool,
}

/// A FIFO `ReceiveRequestAttemptId`: a retry with the same id within the window returns the same
/// messages with the same leases (and restarts their visibility timeout), provided they are still
/// leased by that receive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiveAttempt {
    pub id: String,
    pub window_ms: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiveParams {
    pub max_messages: usize,
    /// The received messages become visible again at `now + visibility_timeout_ms`.
    pub visibility_timeout_ms: i64,
    /// Messages sent before `now - retention_ms` are expired: removed, never returned.
    pub retention_ms: i64,
    pub now: Millis,
    pub delivery: Delivery,
    /// Met on the way, a message whose `receive_count >= max_receive_count` is moved (atomically,
    /// in the same call) instead of returned. A target queue that no longer exists is ignored.
    pub dead_letter: Option<DeadLetterTarget>,
    pub attempt: Option<ReceiveAttempt>,
}

impl ReceiveParams {
    /// A standard-queue receive without a dead-letter queue.
    pub fn new(max_messages: usize, visibility_timeout_ms: i64, retention_ms: i64, now: Millis) -> Self {
        ReceiveParams { max_messages, visibility_timeout_ms, retention_ms, now, ..Default::default() }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiveOutcome {
    /// In enqueue order among the messages that were visible; may be empty.
    pub messages: Vec<StoredMessage>,
    /// When the earliest message not yet visible (delayed or in flight) becomes visible, if any.
    /// Long polls sleep until then instead of polling.
    pub next_visible_at: Option<Millis>,
    /// How many messages this call moved to the dead-letter queue.
    pub dead_lettered: u64,
}

/// One message for a message move task to move: which message and where to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageMove {
    pub seq: i64,
    pub destination: QueueId,
    /// As for dead-lettering: FIFO destinations restart the retention clock.
    pub reset_sent_at: bool,
}

/// A visible message as a move task sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MovableMessage {
    pub seq: i64,
    pub dead_letter_source_arn: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveTaskStatus {
    Running,
    Completed,
    Cancelling,
    Cancelled,
    Failed,
}

impl MoveTaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MoveTaskStatus::Running => "RUNNING",
            MoveTaskStatus::Completed => "COMPLETED",
            MoveTaskStatus::Cancelling => "CANCELLING",
            MoveTaskStatus::Cancelled => "CANCELLED",
            MoveTaskStatus::Failed => "FAILED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Running, Self::Completed, Self::Cancelling, Self::Cancelled, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A message move task (StartMessageMoveTask), persisted so it survives restarts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoveTask {
    pub handle: String,
    pub source_queue: QueueId,
    pub source_arn: String,
    /// `None`: each message goes back to the queue it was dead-lettered from.
    pub destination_arn: Option<String>,
    pub max_per_second: Option<u32>,
    pub status: MoveTaskStatus,
    pub moved: u64,
    pub to_move: u64,
    pub started_at: Millis,
    pub failure_reason: Option<String>,
}

/// The outcome of deleting one message by its lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// The message is gone already or was received again since (the lease is stale). SQS answers
    /// success in both cases; the message, if it still exists, is untouched.
    NotCurrent,
}

/// The outcome of changing one message's visibility by its lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeVisibilityOutcome {
    Changed,
    /// The lease is current but its visibility timeout has already expired.
    NotInFlight,
    /// The message no longer exists, or it was received again since (stale lease).
    NotCurrent,
    /// The new timeout would keep the message hidden for more than `max_inflight_ms` after the
    /// receive that leased it.
    ExceedsMaximum,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeVisibility {
    pub lease: Lease,
    pub visibility_timeout_ms: i64,
}

/// Message counts for the `ApproximateNumberOfMessages*` attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Visible now.
    pub visible: u64,
    /// Received and not yet visible again.
    pub in_flight: u64,
    /// Never received and not yet visible (message or queue delay).
    pub delayed: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- queues ----

    /// Creates a queue unless one of that name exists or was deleted within the cooldown.
    async fn create_queue(
        &self,
        name: &str,
        attributes: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
        now: Millis,
        recreate_cooldown_ms: i64,
    ) -> StoreResult<CreateQueueOutcome>;

    async fn get_queue(&self, name: &str) -> StoreResult<Option<QueueRecord>>;

    /// Live queues whose name starts with `prefix`, in name order, starting after `after`,
    /// at most `limit`.
    async fn list_queues(&self, prefix: &str, after: Option<&str>, limit: usize) -> StoreResult<Vec<QueueRecord>>;

    /// Deletes the queue and all its messages; remembers the name and time for the cooldown.
    /// Returns false if the queue did not exist.
    async fn delete_queue(&self, queue: QueueId, now: Millis) -> StoreResult<bool>;

    /// Merges `attributes` into the queue's explicit attributes (an empty value removes one) and
    /// sets `last_modified_at`. Returns false if the queue does not exist.
    async fn set_queue_attributes(
        &self,
        queue: QueueId,
        attributes: BTreeMap<String, String>,
        now: Millis,
    ) -> StoreResult<bool>;

    /// Adds or overwrites tags. Returns false if the queue does not exist.
    async fn tag_queue(&self, queue: QueueId, tags: BTreeMap<String, String>) -> StoreResult<bool>;

    /// Removes tags (missing keys are ignored). Returns false if the queue does not exist.
    async fn untag_queue(&self, queue: QueueId, keys: Vec<String>) -> StoreResult<bool>;

    /// Removes every message of the queue (visible, delayed and in flight), unless the queue was
    /// purged less than `cooldown_ms` ago. `None` if the queue does not exist.
    async fn purge_queue(&self, queue: QueueId, now: Millis, cooldown_ms: i64) -> StoreResult<Option<PurgeOutcome>>;

    async fn queue_counts(&self, queue: QueueId, now: Millis) -> StoreResult<QueueCounts>;

    // ---- messages ----

    /// Enqueues all messages atomically, in order; one outcome per message. With `dedup` (FIFO
    /// queues), a message whose `deduplication_id` was recorded within the window (in its group,
    /// for per-group scope) is not enqueued, and each enqueued id is recorded until `now +
    /// window_ms`, surviving the message's deletion. Enqueues nothing if the queue does not exist:
    /// `Ok(None)`.
    async fn send_messages(
        &self,
        queue: QueueId,
        messages: Vec<NewMessage>,
        dedup: Option<Deduplication>,
        now: Millis,
    ) -> StoreResult<Option<Vec<SendOutcome>>>;

    /// Leases up to `max_messages` visible messages in the order `params.delivery` prescribes:
    /// each gets a new random lease, `receive_count + 1`, `first_received_at` if unset, and stays
    /// hidden until `now + visibility_timeout_ms`. Expired messages met on the way are removed;
    /// exhausted ones are dead-lettered (`params.dead_letter`). `Ok(None)` if the queue does not
    /// exist.
    async fn receive_messages(&self, queue: QueueId, params: ReceiveParams) -> StoreResult<Option<ReceiveOutcome>>;

    /// Deletes each message whose lease is current. One outcome per input, in order.
    /// `Ok(None)` if the queue does not exist.
    async fn delete_messages(&self, queue: QueueId, leases: Vec<Lease>) -> StoreResult<Option<Vec<DeleteOutcome>>>;

    /// Sets each leased message's visibility to `now + visibility_timeout_ms` where the lease is
    /// current and still in flight. One outcome per input, in order. `Ok(None)` if the queue does
    /// not exist.
    async fn change_visibility(
        &self,
        queue: QueueId,
        changes: Vec<ChangeVisibility>,
        now: Millis,
        max_inflight_ms: i64,
    ) -> StoreResult<Option<Vec<ChangeVisibilityOutcome>>>;

    /// Moves up to `limit` visible messages whose `receive_count >= max_receive_count` to the
    /// dead-letter queue, so they do not wait in the source queue for a receive that may never
    /// come. Returns how many moved; `Ok(None)` if the source queue does not exist.
    async fn dead_letter_exhausted(
        &self,
        queue: QueueId,
        target: DeadLetterTarget,
        now: Millis,
        limit: usize,
    ) -> StoreResult<Option<u64>>;

    /// Up to `limit` visible messages of `queue`, in delivery order, for a move task to place.
    async fn movable_messages(&self, queue: QueueId, now: Millis, limit: usize) -> StoreResult<Vec<MovableMessage>>;

    /// Moves each listed message from `source` to its destination, keeping its id, body,
    /// attributes and (unless `reset_sent_at`) enqueue time, clearing its dead-letter source and
    /// receive count. Messages no longer visible in `source`, or whose destination no longer
    /// exists, are skipped. Returns how many moved.
    async fn move_messages(&self, source: QueueId, moves: Vec<MessageMove>, now: Millis) -> StoreResult<u64>;

    /// Inserts or replaces a move task (by handle).
    async fn save_move_task(&self, task: MoveTask) -> StoreResult<()>;

    /// Move tasks, newest first: those of one source queue, or all.
    async fn move_tasks(&self, source_queue: Option<QueueId>) -> StoreResult<Vec<MoveTask>>;

    /// Removes the messages of every queue that were sent before `now - retention` of their
    /// queue, where `retention_ms` gives each queue's period. Returns how many were removed.
    /// Called periodically so expiry happens even when nobody receives.
    async fn expire_messages(&self, retention_ms: &[(QueueId, i64)], now: Millis) -> StoreResult<u64>;

    /// Makes everything acknowledged so far durable and releases resources. Later calls fail
    /// with `StoreError::Closed`.
    async fn close(&self) -> StoreResult<()>;
}
