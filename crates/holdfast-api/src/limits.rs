//! Limits and defaults from the current botocore model (`service-2.json`) and the SQS Developer
//! Guide quotas pages. Durations are in seconds unless the name says otherwise.

pub const MAX_QUEUE_NAME_LEN: usize = 80;
pub const FIFO_SUFFIX: &str = ".fifo";

pub const MAX_BATCH_ENTRIES: usize = 10;
pub const MAX_BATCH_ENTRY_ID_LEN: usize = 80;
/// SendMessageBatch: the sum of all entries' sizes (body + attributes).
pub const MAX_BATCH_PAYLOAD_BYTES: usize = 1_048_576;

pub const MAX_MESSAGE_SIZE_MIN: u32 = 1_024;
pub const MAX_MESSAGE_SIZE_MAX: u32 = 1_048_576;
pub const MAX_MESSAGE_SIZE_DEFAULT: u32 = 1_048_576;

pub const DELAY_SECONDS_MAX: u32 = 900;
pub const DELAY_SECONDS_DEFAULT: u32 = 0;

pub const VISIBILITY_TIMEOUT_MAX: u32 = 43_200;
pub const VISIBILITY_TIMEOUT_DEFAULT: u32 = 30;

pub const RETENTION_PERIOD_MIN: u32 = 60;
pub const RETENTION_PERIOD_MAX: u32 = 1_209_600;
pub const RETENTION_PERIOD_DEFAULT: u32 = 345_600;

pub const WAIT_TIME_SECONDS_MAX: u32 = 20;
pub const WAIT_TIME_SECONDS_DEFAULT: u32 = 0;

pub const KMS_DATA_KEY_REUSE_MIN: u32 = 60;
pub const KMS_DATA_KEY_REUSE_MAX: u32 = 86_400;
pub const KMS_DATA_KEY_REUSE_DEFAULT: u32 = 300;

pub const MAX_NUMBER_OF_MESSAGES_MAX: u32 = 10;
pub const MAX_NUMBER_OF_MESSAGES_DEFAULT: u32 = 1;

pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;
pub const MAX_MESSAGE_ATTRIBUTE_NAME_LEN: usize = 256;
pub const MAX_MESSAGE_ATTRIBUTE_TYPE_LEN: usize = 256;

/// MessageGroupId, MessageDeduplicationId, ReceiveRequestAttemptId.
pub const MAX_FIFO_ID_LEN: usize = 128;

pub const LIST_QUEUES_MAX_RESULTS: u32 = 1_000;

pub const MAX_TAG_KEY_LEN: usize = 128;
pub const MAX_TAG_VALUE_LEN: usize = 256;
/// The Developer Guide's quota for tags per queue.
pub const MAX_TAGS_PER_QUEUE: usize = 50;

pub const MAX_PERMISSION_LABEL_LEN: usize = 80;
/// The largest queue `Policy` document, in bytes (the IAM limit for resource-based policies
/// SQS applies).
pub const MAX_POLICY_BYTES: usize = 8_192;
/// The other policy quotas ("Amazon SQS policy quotas"): statements, principals and conditions
/// in a queue's policy, and actions in one of its statements (also AddPermission's limit).
pub const MAX_POLICY_STATEMENTS: usize = 20;
pub const MAX_POLICY_PRINCIPALS: usize = 50;
pub const MAX_POLICY_CONDITIONS: usize = 10;
pub const MAX_POLICY_ACTIONS_PER_STATEMENT: usize = 7;

/// PurgeQueue may run once per 60 seconds per queue.
pub const PURGE_COOLDOWN_SECONDS: u32 = 60;
/// A deleted queue's name may not be reused for 60 seconds.
pub const RECREATE_COOLDOWN_SECONDS: u32 = 60;

/// In-flight messages per queue, standard and FIFO (the quotas pages): beyond, a standard
/// queue's ReceiveMessage answers `OverLimit` and a FIFO queue's returns nothing.
pub const MAX_IN_FLIGHT: u64 = 120_000;

/// FIFO deduplication interval and ReceiveRequestAttemptId validity.
pub const FIFO_DEDUP_WINDOW_SECONDS: u32 = 300;
