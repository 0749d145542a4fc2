//! Typed requests and responses for the 23 SQS actions.
//!
//! Field names are the model's member names (serde renames spell the few that are not plain
//! PascalCase: `MD5Of…`, `AWSAccountIds`, `QueueOwnerAWSAccountId`, CreateQueue's lower-case
//! `tags` and ListDeadLetterSourceQueues' lower-case `queueUrls`). Maps of queue attributes keep
//! their keys as strings so an unknown name reaches the service and gets `InvalidAttributeName`
//! rather than a parse error. Optional members are `Option`; absent is not zero.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Blob;

pub type AttributeMap = BTreeMap<String, String>;
pub type TagMap = BTreeMap<String, String>;
pub type MessageAttributeMap = BTreeMap<String, MessageAttributeValue>;

/// `MessageAttributeValue` and `MessageSystemAttributeValue` (identical shapes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageAttributeValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<Blob>,
    /// "Not implemented. Reserved for future use." in the model; rejected when non-empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_list_values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_list_values: Option<Vec<Blob>>,
    pub data_type: String,
}

// ---- queues ----

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateQueueRequest {
    pub queue_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<AttributeMap>,
    #[serde(default, rename = "tags", skip_serializing_if = "Option::is_none")]
    pub tags: Option<TagMap>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateQueueResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_url: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteQueueRequest {
    pub queue_url: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueueUrlRequest {
    pub queue_name: String,
    #[serde(default, rename = "QueueOwnerAWSAccountId", skip_serializing_if = "Option::is_none")]
    pub queue_owner_aws_account_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueueUrlResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_url: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueuesRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_name_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueuesResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_urls: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueueAttributesRequest {
    pub queue_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_names: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueueAttributesResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<AttributeMap>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetQueueAttributesRequest {
    pub queue_url: String,
    pub attributes: AttributeMap,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PurgeQueueRequest {
    pub queue_url: String,
}

// ---- tags ----

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagQueueRequest {
    pub queue_url: String,
    pub tags: TagMap,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagQueueRequest {
    pub queue_url: String,
    pub tag_keys: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueueTagsRequest {
    pub queue_url: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueueTagsResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<TagMap>,
}

// ---- permissions ----

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddPermissionRequest {
    pub queue_url: String,
    pub label: String,
    #[serde(rename = "AWSAccountIds")]
    pub aws_account_ids: Vec<String>,
    pub actions: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemovePermissionRequest {
    pub queue_url: String,
    pub label: String,
}

// ---- messages ----

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageRequest {
    pub queue_url: String,
    pub message_body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_attributes: Option<MessageAttributeMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_system_attributes: Option<MessageAttributeMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_deduplication_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_group_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SendMessageResponse {
    #[serde(rename = "MD5OfMessageBody", skip_serializing_if = "Option::is_none")]
    pub md5_of_message_body: Option<String>,
    #[serde(rename = "MD5OfMessageAttributes", skip_serializing_if = "Option::is_none")]
    pub md5_of_message_attributes: Option<String>,
    #[serde(rename = "MD5OfMessageSystemAttributes", skip_serializing_if = "Option::is_none")]
    pub md5_of_message_system_attributes: Option<String>,
    #[serde(rename = "MessageId", skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(rename = "SequenceNumber", skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageBatchRequestEntry {
    pub id: String,
    pub message_body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_attributes: Option<MessageAttributeMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_system_attributes: Option<MessageAttributeMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_deduplication_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_group_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageBatchRequest {
    pub queue_url: String,
    pub entries: Vec<SendMessageBatchRequestEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SendMessageBatchResultEntry {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "MessageId")]
    pub message_id: String,
    #[serde(rename = "MD5OfMessageBody")]
    pub md5_of_message_body: String,
    #[serde(rename = "MD5OfMessageAttributes", skip_serializing_if = "Option::is_none")]
    pub md5_of_message_attributes: Option<String>,
    #[serde(rename = "MD5OfMessageSystemAttributes", skip_serializing_if = "Option::is_none")]
    pub md5_of_message_system_attributes: Option<String>,
    #[serde(rename = "SequenceNumber", skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
}

/// A failed batch entry; the batch itself still answers 200.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchResultErrorEntry {
    pub id: String,
    pub sender_fault: bool,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageBatchResponse {
    /// Absent when empty, as AWS's JSON answers leave empty lists out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub successful: Vec<SendMessageBatchResultEntry>,
    /// Absent when empty, as AWS's JSON answers leave empty lists out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<BatchResultErrorEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReceiveMessageRequest {
    pub queue_url: String,
    /// Deprecated in favour of `MessageSystemAttributeNames`, still sent by older clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_system_attribute_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_attribute_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_number_of_messages: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_time_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_request_attempt_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Message {
    #[serde(rename = "MessageId")]
    pub message_id: String,
    #[serde(rename = "ReceiptHandle")]
    pub receipt_handle: String,
    #[serde(rename = "MD5OfBody")]
    pub md5_of_body: String,
    #[serde(rename = "Body")]
    pub body: String,
    #[serde(rename = "Attributes", skip_serializing_if = "Option::is_none")]
    pub attributes: Option<AttributeMap>,
    #[serde(rename = "MD5OfMessageAttributes", skip_serializing_if = "Option::is_none")]
    pub md5_of_message_attributes: Option<String>,
    #[serde(rename = "MessageAttributes", skip_serializing_if = "Option::is_none")]
    pub message_attributes: Option<MessageAttributeMap>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReceiveMessageResponse {
    /// Absent (not empty) when nothing was received, as SQS answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Message>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessageRequest {
    pub queue_url: String,
    pub receipt_handle: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessageBatchRequestEntry {
    pub id: String,
    pub receipt_handle: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessageBatchRequest {
    pub queue_url: String,
    pub entries: Vec<DeleteMessageBatchRequestEntry>,
}

/// The result entry of DeleteMessageBatch and ChangeMessageVisibilityBatch: just the Id.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchResultEntry {
    pub id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessageBatchResponse {
    /// Absent when empty, as AWS's JSON answers leave empty lists out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub successful: Vec<BatchResultEntry>,
    /// Absent when empty, as AWS's JSON answers leave empty lists out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<BatchResultErrorEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeMessageVisibilityRequest {
    pub queue_url: String,
    pub receipt_handle: String,
    pub visibility_timeout: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeMessageVisibilityBatchRequestEntry {
    pub id: String,
    pub receipt_handle: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility_timeout: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeMessageVisibilityBatchRequest {
    pub queue_url: String,
    pub entries: Vec<ChangeMessageVisibilityBatchRequestEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeMessageVisibilityBatchResponse {
    /// Absent when empty, as AWS's JSON answers leave empty lists out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub successful: Vec<BatchResultEntry>,
    /// Absent when empty, as AWS's JSON answers leave empty lists out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<BatchResultErrorEntry>,
}

// ---- dead-letter queues and message move tasks ----

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListDeadLetterSourceQueuesRequest {
    pub queue_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ListDeadLetterSourceQueuesResponse {
    #[serde(rename = "queueUrls")]
    pub queue_urls: Vec<String>,
    #[serde(rename = "NextToken", skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartMessageMoveTaskRequest {
    pub source_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_number_of_messages_per_second: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartMessageMoveTaskResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_handle: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CancelMessageMoveTaskRequest {
    pub task_handle: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CancelMessageMoveTaskResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximate_number_of_messages_moved: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListMessageMoveTasksRequest {
    pub source_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListMessageMoveTasksResultEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_handle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_number_of_messages_per_second: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximate_number_of_messages_moved: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximate_number_of_messages_to_move: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_timestamp: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListMessageMoveTasksResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<ListMessageMoveTasksResultEntry>>,
}
