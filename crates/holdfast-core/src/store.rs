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
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;

use crate::queue_attributes::QueueSettings;
pub use crate::queue_metrics::QueueMinute;
use crate::timer::QueueKey;

/// Epoch milliseconds. SQS timestamps are epoch seconds or milliseconds; all internal ones are ms.
pub type Millis = i64;

/// A queue's internal id. Ids are never reused, so a deleted and re-created queue is a new queue
/// and nothing addressed to the old one can reach it.
pub type QueueId = i64;

/// What a storage failure was caused by, kept whole so logs show the full chain. Shared, so one
/// failure can be the answer of every call that a failed batch held.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Store failures.
///
/// One convention for a queue that is gone: looking a queue up by name answers `Ok(None)`; every
/// call that acts on a `QueueId` fails with `QueueNotFound` when that queue no longer exists
/// (deleted since the caller resolved it). The service turns that into `QueueDoesNotExist`.
/// The other variants never reach a client as such: the service logs them with their cause chain
/// and answers `InternalFailure` (or `ServiceUnavailable`).
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error("queue {0} does not exist")]
    QueueNotFound(QueueId),
    #[error("storage is out of space")]
    Full(#[source] Cause),
    #[error("storage failure")]
    Backend(#[source] Cause),
    #[error("the store is shutting down")]
    Closed,
}

impl StoreError {
    /// A backend failure from any error, or from a message (`"writer thread gone"`).
    pub fn backend(cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        StoreError::Backend(Arc::from(cause.into()))
    }

    /// A backend failure with a sentence of context (what was being done) over its cause.
    pub fn backend_in(
        context: impl Into<String>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        StoreError::backend(Context { context: context.into(), cause: cause.into() })
    }

    pub fn full(cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        StoreError::Full(Arc::from(cause.into()))
    }

    /// The error and every cause under it, joined with `: `, for logs.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What was being done when a cause failed, kept above it in the chain.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
struct Context {
    context: String,
    #[source]
    cause: Box<dyn std::error::Error + Send + Sync + 'static>,
}

/// A queue as stored. Engines build it with `QueueRecord::new`.
#[derive(Clone, Debug)]
pub struct QueueRecord {
    pub id: QueueId,
    /// The account that owns the queue, and the region it lives in. Names are unique per
    /// account and region, as on AWS: `orders` in two regions (or two accounts) is two queues.
    pub account_id: String,
    pub region: String,
    pub name: String,
    /// The settable attributes given explicitly at creation or by SetQueueAttributes, already
    /// validated and normalised by the service (e.g. `"VisibilityTimeout" => "60"`). Defaults are
    /// not stored: they are applied when read, so the effective value of an unset attribute
    /// follows the service's defaults.
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub created_at: Millis,
    pub last_modified_at: Millis,
    /// `attributes` parsed into settings on first use and shared by every clone of this record,
    /// so an engine that caches records parses each queue's attributes (RedrivePolicy JSON
    /// included) once per load, not once per request.
    settings: Arc<OnceLock<QueueSettings>>,
    /// The timer's key for this queue, made once per record for the same reason.
    key: Arc<OnceLock<QueueKey>>,
}

impl QueueRecord {
    // One argument per stored column, as engines read them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: QueueId,
        account_id: String,
        region: String,
        name: String,
        attributes: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
        created_at: Millis,
        last_modified_at: Millis,
    ) -> Self {
        QueueRecord {
            id,
            account_id,
            region,
            name,
            attributes,
            tags,
            created_at,
            last_modified_at,
            settings: Arc::default(),
            key: Arc::default(),
        }
    }

    /// The timer's key for this queue.
    pub(crate) fn key(&self) -> QueueKey {
        self.key.get_or_init(|| QueueKey::new(self.id, &self.account_id, &self.region, &self.name)).clone()
    }

    /// The effective settings (defaults applied) of this record's attributes.
    pub(crate) fn settings(&self) -> &QueueSettings {
        self.settings.get_or_init(|| QueueSettings::from_attributes(&self.attributes))
    }
}

/// Records are equal when their stored fields are; the parsed settings follow from those.
impl PartialEq for QueueRecord {
    fn eq(&self, other: &Self) -> bool {
        (
            self.id,
            &self.account_id,
            &self.region,
            &self.name,
            &self.attributes,
            &self.tags,
            self.created_at,
            self.last_modified_at,
        ) == (
            other.id,
            &other.account_id,
            &other.region,
            &other.name,
            &other.attributes,
            &other.tags,
            other.created_at,
            other.last_modified_at,
        )
    }
}

impl Eq for QueueRecord {}

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
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// How a FIFO queue deduplicates sends (FIFO queues <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fifo-queues.html>).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Deduplication {
    /// A deduplication id seen within this window (5 minutes) makes a send a duplicate, even if
    /// the first message has been deleted since.
    pub window_ms: i64,
    /// `DeduplicationScope=messageGroup`: ids are unique per message group, not per queue.
    pub per_group: bool,
}

/// What `send_messages` did with one message: everything a send response reports about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The message's MessageId: the new message's, or for a duplicate the first message's.
    pub message_id: String,
    /// The message's seq (FIFO SequenceNumber); for a duplicate, the first message's.
    pub seq: i64,
    /// A FIFO send whose deduplication id was seen within the window: nothing was enqueued.
    pub duplicate: bool,
}

/// A message as stored, returned by receive.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Lease {
    pub seq: i64,
    pub lease: u64,
}

/// How far past what it returns a standard receive looks for older messages (`Delivery`).
pub const STANDARD_LOOKAHEAD: usize = 10;

/// The delivery order a queue promises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Delivery {
    /// Best effort, oldest first: of the first `max_messages + STANDARD_LOOKAHEAD` deliverable
    /// messages in `(visible_at, seq)` order, the `max_messages` oldest (lowest seq). A message
    /// whose visibility timeout ran out so competes with those that became visible just before
    /// it, rather than queueing behind them all (AWS puts it back near its place), while a
    /// receive still reads only a bounded run of the visibility index.
    #[default]
    Standard,
    /// Strict order within each message group (FIFO queues): a group's messages are delivered in
    /// `seq` order, and while any of them is in flight no later one is delivered (the group is
    /// locked). Groups whose first remaining message is visible are served in the order they
    /// became available (when that message became visible, then its seq), as many of one
    /// group's messages as fit before the next group, and returned in that order.
    Fifo,
}

/// Where messages go once they have been received too often (a queue's RedrivePolicy).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReceiveAttempt {
    pub id: String,
    pub window_ms: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// Standard delivery only: a fair queue with noisy tenants (`crate::fairness`).
    pub fair: Option<FairOrder>,
}

/// How a standard receive serves the tenants (message groups) of a fair queue
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues.html>)
/// while some are noisy: quiet tenants' messages first, then the noisy tenants' in the order
/// given. Quiet messages are, first, ungrouped ones among the first `UNGROUPED_LOOK` visible
/// messages, then those of the quiet groups, visited in name order (round robin: starting after
/// `start_after`, wrapping around, at most `GROUP_VISITS` groups), each group's visible messages
/// in `(visible_at, seq)` order. Nothing reads a noisy tenant's backlog to get past it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FairOrder {
    /// Noisy groups, fewest in flight first.
    pub noisy: Vec<String>,
    pub start_after: Option<String>,
}

impl FairOrder {
    /// How many visible messages from the head of the queue a fair receive looks at for
    /// messages without a group.
    pub const UNGROUPED_LOOK: usize = 256;
    /// How many groups one fair receive visits at most.
    pub const GROUP_VISITS: usize = 256;
}

/// The in-flight messages of a standard queue by tenant (message group), for fair queues.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupLoad {
    /// `(group, in flight)` for each group with messages in flight, by group.
    pub in_flight: Vec<(String, u64)>,
    /// In flight in the whole queue, grouped or not.
    pub total_in_flight: u64,
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

/// What one `dead_letter_exhausted` call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepOutcome {
    pub moved: u64,
    /// When the next exhausted message still in flight becomes visible (and so due to move), if
    /// any: the service's timer wakes then.
    pub next_due_at: Option<Millis>,
}

/// What one `expire_messages` call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpiryOutcome {
    pub removed: u64,
    /// The enqueue time of the oldest message left, if any: it expires a retention period later.
    pub oldest_sent_at: Option<Millis>,
}

/// One message for a message move task to move: which message and where to.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// One step of a running move task, applied by `advance_move_task` unless the task was cancelled.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MoveStep {
    /// Move these messages (as `move_messages` describes) and add how many moved to the task.
    Moved(Vec<MessageMove>),
    /// Nothing is left to move.
    Completed,
    /// The task cannot go on.
    Failed(String),
}

/// A message move task (StartMessageMoveTask), persisted so it survives restarts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// Only when expired leases are refused (FIFO queues): the message still exists but this
    /// lease's visibility timeout ran out or it was received again. Nothing was deleted.
    Expired,
}

/// The outcome of changing one message's visibility by its lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeVisibilityOutcome {
    /// Applied: also when the lease's timeout had already run out, as long as nobody received
    /// the message since (it is hidden again).
    Changed,
    /// The message no longer exists.
    Gone,
    /// The message was received again since: this lease no longer speaks for it.
    Stale,
    /// The new timeout would keep the message hidden for more than `max_inflight_ms` after the
    /// receive that leased it.
    ExceedsMaximum,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// A queue that has recorded metrics, for ListMetrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricQueue {
    pub name: String,
    /// The last minute it has a row for.
    pub last_minute: Millis,
    /// Whether any of its rows has fair-queue gauges (so the fair-queue metrics exist for it).
    pub fair: bool,
}

/// A histogram an engine keeps of its own work.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineHistogram {
    /// Upper bounds of the buckets.
    pub bounds: Vec<f64>,
    /// Observations per bucket (not cumulative), one more than `bounds` for those above the last.
    pub counts: Vec<u64>,
    pub sum: f64,
}

/// What an engine reports about itself (`Store::figures`); `None` for what it does not measure.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineFigures {
    /// Bytes the engine's files take on disk.
    pub database_bytes: Option<u64>,
    /// Store calls per commit (group commit).
    pub commit_batch_size: Option<EngineHistogram>,
    /// Time to commit a batch, fsync included, in seconds.
    pub commit_seconds: Option<EngineHistogram>,
}

/// How a store that several nodes share keeps this node's long polls awake to the others' sends.
#[derive(Debug)]
pub struct SharedStore {
    /// Queues in which another node made messages visible: a hint, which may arrive late or not at
    /// all (a dropped connection), never a promise.
    pub visible_elsewhere: tokio::sync::mpsc::Receiver<QueueId>,
    /// So a waiting receive looks at the store again at least this often, whatever it was told:
    /// a lost hint delays a message by at most this, and never strands it.
    pub recheck: std::time::Duration,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- queues ----

    /// Creates a queue in `account` and `region` unless one of that name exists there or was
    /// deleted there within the cooldown.
    #[allow(clippy::too_many_arguments)]
    async fn create_queue(
        &self,
        account: &str,
        region: &str,
        name: &str,
        attributes: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
        now: Millis,
        recreate_cooldown_ms: i64,
    ) -> StoreResult<CreateQueueOutcome>;

    /// The live queue of that name in `account` and `region`, if any.
    async fn get_queue(&self, account: &str, region: &str, name: &str) -> StoreResult<Option<QueueRecord>>;

    /// Live queues of `account` in `region` whose name starts with `prefix`, in name order,
    /// starting after `after`, at most `limit`.
    async fn list_queues(
        &self,
        account: &str,
        region: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<QueueRecord>>;

    /// The `(account, region)` pairs that have at least one live queue, in order.
    async fn list_namespaces(&self) -> StoreResult<Vec<(String, String)>>;

    /// Deletes the queue and all its messages; remembers the name and time for the cooldown.
    async fn delete_queue(&self, queue: QueueId, now: Millis) -> StoreResult<()>;

    /// Merges `attributes` into the queue's explicit attributes (an empty value removes one) and
    /// sets `last_modified_at`.
    async fn set_queue_attributes(
        &self,
        queue: QueueId,
        attributes: BTreeMap<String, String>,
        now: Millis,
    ) -> StoreResult<()>;

    /// Sets one explicit attribute to `value` (empty removes it) only if its explicit value is
    /// still `expected` (`None`: unset): a compare-and-set for read-modify-write edits such as
    /// AddPermission's. Returns false, changing nothing, if the value changed meanwhile.
    async fn replace_queue_attribute(
        &self,
        queue: QueueId,
        name: &str,
        expected: Option<&str>,
        value: &str,
        now: Millis,
    ) -> StoreResult<bool>;

    /// Adds or overwrites tags.
    async fn tag_queue(&self, queue: QueueId, tags: BTreeMap<String, String>) -> StoreResult<()>;

    /// Removes tags (missing keys are ignored).
    async fn untag_queue(&self, queue: QueueId, keys: Vec<String>) -> StoreResult<()>;

    /// Removes every message of the queue (visible, delayed and in flight) and its FIFO
    /// deduplication history, as SQS does, unless the queue was purged less than `cooldown_ms` ago.
    async fn purge_queue(&self, queue: QueueId, now: Millis, cooldown_ms: i64) -> StoreResult<PurgeOutcome>;

    async fn queue_counts(&self, queue: QueueId, now: Millis) -> StoreResult<QueueCounts>;

    // ---- messages ----

    /// Enqueues all messages atomically, in order; one `Sent` per message. With `dedup` (FIFO
    /// queues), a message whose `deduplication_id` was recorded within the window (in its group,
    /// for per-group scope) is not enqueued, and each enqueued id is recorded until `now +
    /// window_ms`, surviving the message's deletion.
    async fn send_messages(
        &self,
        queue: QueueId,
        messages: Vec<NewMessage>,
        dedup: Option<Deduplication>,
        now: Millis,
    ) -> StoreResult<Vec<Sent>>;

    /// Leases up to `max_messages` visible messages in the order `params.delivery` prescribes:
    /// each gets a new random lease, `receive_count + 1`, `first_received_at` if unset, and stays
    /// hidden until `now + visibility_timeout_ms`. Expired messages met on the way are removed;
    /// exhausted ones are dead-lettered (`params.dead_letter`).
    async fn receive_messages(&self, queue: QueueId, params: ReceiveParams) -> StoreResult<ReceiveOutcome>;

    /// What is in flight, by message group (fair queues).
    async fn group_load(&self, queue: QueueId, now: Millis) -> StoreResult<GroupLoad>;

    /// The counts of the messages of `groups`, together.
    async fn group_counts(&self, queue: QueueId, groups: Vec<String>, now: Millis) -> StoreResult<QueueCounts>;

    /// When the oldest message outside `groups` was sent, looking at no more than `scan_limit`
    /// messages from the oldest (`None` past that, or if there is none).
    async fn oldest_outside(
        &self,
        queue: QueueId,
        groups: Vec<String>,
        scan_limit: usize,
    ) -> StoreResult<Option<Millis>>;

    /// Deletes each message whose lease is current. With `refuse_expired_at` (FIFO queues), a
    /// lease whose visibility timeout ran out by then deletes nothing and is `Expired`, as is a
    /// stale lease of a message that still exists. One outcome per input, in order.
    async fn delete_messages(
        &self,
        queue: QueueId,
        leases: Vec<Lease>,
        refuse_expired_at: Option<Millis>,
    ) -> StoreResult<Vec<DeleteOutcome>>;

    /// Sets each leased message's visibility to `now + visibility_timeout_ms` where the lease is
    /// current, in flight or not. One outcome per input, in order.
    async fn change_visibility(
        &self,
        queue: QueueId,
        changes: Vec<ChangeVisibility>,
        now: Millis,
        max_inflight_ms: i64,
    ) -> StoreResult<Vec<ChangeVisibilityOutcome>>;

    /// Moves up to `limit` visible messages whose `receive_count >= max_receive_count` to the
    /// dead-letter queue, so they do not wait in the source queue for a receive that may never
    /// come, and says when the next exhausted message in flight becomes due.
    async fn dead_letter_exhausted(
        &self,
        queue: QueueId,
        target: DeadLetterTarget,
        now: Millis,
        limit: usize,
    ) -> StoreResult<SweepOutcome>;

    /// Up to `limit` visible messages of `queue`, in delivery order, for a move task to place.
    async fn movable_messages(&self, queue: QueueId, now: Millis, limit: usize) -> StoreResult<Vec<MovableMessage>>;

    /// Removes the messages of `queue` sent before `sent_before` (now minus its retention period)
    /// and reports the oldest message left, so expiry can be scheduled for exactly when it is due.
    async fn expire_messages(&self, queue: QueueId, sent_before: Millis) -> StoreResult<ExpiryOutcome>;

    /// Forgets every deduplication record and receive attempt whose window has passed; returns
    /// when the next one's does, if any is left.
    async fn prune_expired_records(&self, now: Millis) -> StoreResult<Option<Millis>>;

    // ---- message move tasks ----

    /// Records a new RUNNING task, unless its source queue already has an active (RUNNING or
    /// CANCELLING) task: then returns false and records nothing.
    async fn start_move_task(&self, task: MoveTask) -> StoreResult<bool>;

    /// Turns the RUNNING task `handle` into CANCELLING. Returns the task as it was found (so the
    /// caller can tell a task that was not running), or `None` if there is no such task.
    async fn cancel_move_task(&self, handle: &str) -> StoreResult<Option<MoveTask>>;

    /// Applies one step of the runner to task `handle`, atomically with any cancellation: a
    /// CANCELLING task becomes CANCELLED and the step is dropped; a RUNNING task takes the step
    /// (`Moved`: each listed message moves from the task's source to its destination, keeping its
    /// id, body, attributes and, unless `reset_sent_at`, its enqueue time, clearing its
    /// dead-letter source and receive count; messages no longer visible in the source, or whose
    /// destination is gone, are skipped; the task's `moved` grows by how many moved). Any other
    /// task is left as it is. Returns the task afterwards, or `None` if there is no such task.
    async fn advance_move_task(&self, handle: &str, step: MoveStep, now: Millis) -> StoreResult<Option<MoveTask>>;

    /// Move tasks, newest first: those of one source queue, or all.
    async fn move_tasks(&self, source_queue: Option<QueueId>) -> StoreResult<Vec<MoveTask>>;

    // ---- queue metrics (`crate::queue_metrics`) ----

    /// Stores one row per queue and minute, adding to a row already stored for the same queue
    /// and minute (`QueueMinute::absorb`), and forgets every row of a minute before
    /// `forget_before`, in one atomic call.
    async fn record_queue_minutes(&self, minutes: Vec<QueueMinute>, forget_before: Millis) -> StoreResult<()>;

    /// The stored rows of queue `queue` (by name: a deleted and re-created queue continues its
    /// metrics, as on CloudWatch) with `from <= minute < to`, in minute order.
    async fn queue_minutes(
        &self,
        account: &str,
        region: &str,
        queue: &str,
        from: Millis,
        to: Millis,
    ) -> StoreResult<Vec<QueueMinute>>;

    /// The queues of `account` and `region` with a row at or after `since`, in name order.
    async fn metric_queues(&self, account: &str, region: &str, since: Millis) -> StoreResult<Vec<MetricQueue>>;

    // ---- the engine ----

    /// For engines several nodes share: the feed of other nodes' news, taken once by the service
    /// (`None` afterwards, and always for engines one process owns).
    fn take_shared(&self) -> Option<SharedStore> {
        None
    }

    /// Tells the other nodes sharing this store that messages became visible in `queue`, so their
    /// long polls on it look again. A hint: engines may batch or drop it.
    fn announce_visible(&self, _queue: QueueId) {}

    /// Whether this node leads `job`, a background job that should run once across all nodes
    /// sharing the store, taking the lead if nobody holds it. A node keeps a lead until it releases
    /// it or dies; then the next node to ask takes it. Engines one process owns: always.
    async fn lead(&self, _job: &str, _now: Millis) -> StoreResult<bool> {
        Ok(true)
    }

    /// Lets go of `job` (see `lead`).
    async fn release(&self, _job: &str) -> StoreResult<()> {
        Ok(())
    }

    /// Figures about the engine's own work, for `/metrics`. Engines report what they have.
    fn figures(&self) -> EngineFigures {
        EngineFigures::default()
    }

    /// Whether the engine can serve requests: answers `Ok` only after a round trip through the
    /// engine's machinery (for SQLite, its writer thread), so a wedged or dead engine shows.
    async fn check(&self) -> StoreResult<()>;

    /// Makes everything acknowledged so far durable and releases resources. Later calls fail
    /// with `StoreError::Closed`.
    async fn close(&self) -> StoreResult<()>;
}
