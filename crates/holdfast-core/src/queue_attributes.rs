//! Queue attributes: which exist, which may be set, their valid values and defaults (SetQueueAttributes <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html>).
//!
//! Stores keep only the attributes a client set explicitly, already normalised here; the effective
//! settings (`QueueSettings`) apply the defaults when read. Read-only attributes (counts,
//! timestamps, the ARN) are computed by the service on request.

use std::collections::BTreeMap;
use std::sync::Arc;

use holdfast_api::{limits, sqs_error, SqsError};

use crate::policy::{Policy, PolicyKind};
use crate::redrive::{RedriveAllowPolicy, RedrivePolicy};

/// Every attribute name of the model's `QueueAttributeName` enum, except `All`.
pub const ALL_ATTRIBUTES: &[&str] = &[
    "Policy",
    "VisibilityTimeout",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
    "ApproximateNumberOfMessagesDelayed",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "RedriveAllowPolicy",
    "SqsManagedSseEnabled",
];

/// When an attribute may be given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Occasion {
    CreateQueue,
    SetQueueAttributes,
}

/// The effective, typed settings of a queue.
#[derive(Clone, Debug)]
pub struct QueueSettings {
    pub delay_seconds: u32,
    pub maximum_message_size: u32,
    pub message_retention_period: u32,
    pub receive_message_wait_time_seconds: u32,
    pub visibility_timeout: u32,
    pub fifo: bool,
    pub content_based_deduplication: bool,
    /// `DeduplicationScope=messageGroup`.
    pub dedup_per_group: bool,
    pub redrive_policy: Option<RedrivePolicy>,
    /// How long one data key seals this queue's messages (with a master key configured).
    pub kms_data_key_reuse_period: u32,
    /// The queue's `Policy`, parsed once per record for every request's authorization.
    pub policy: Option<Arc<Policy>>,
}

impl QueueSettings {
    pub fn from_attributes(attributes: &BTreeMap<String, String>) -> Self {
        let int = |name: &str, default: u32| attributes.get(name).and_then(|v| v.parse().ok()).unwrap_or(default);
        QueueSettings {
            delay_seconds: int("DelaySeconds", limits::DELAY_SECONDS_DEFAULT),
            maximum_message_size: int("MaximumMessageSize", limits::MAX_MESSAGE_SIZE_DEFAULT),
            message_retention_period: int("MessageRetentionPeriod", limits::RETENTION_PERIOD_DEFAULT),
            receive_message_wait_time_seconds: int("ReceiveMessageWaitTimeSeconds", limits::WAIT_TIME_SECONDS_DEFAULT),
            visibility_timeout: int("VisibilityTimeout", limits::VISIBILITY_TIMEOUT_DEFAULT),
            fifo: attributes.get("FifoQueue").is_some_and(|v| v == "true"),
            content_based_deduplication: attributes.get("ContentBasedDeduplication").is_some_and(|v| v == "true"),
            dedup_per_group: attributes.get("DeduplicationScope").is_some_and(|v| v == "messageGroup"),
            // Stored policies were validated on the way in.
            redrive_policy: attributes.get("RedrivePolicy").and_then(|text| RedrivePolicy::parse(text).ok()),
            kms_data_key_reuse_period: int("KmsDataKeyReusePeriodSeconds", limits::KMS_DATA_KEY_REUSE_DEFAULT),
            policy: attributes
                .get("Policy")
                .filter(|text| !text.is_empty())
                .and_then(|text| Policy::parse(text, PolicyKind::Resource).ok())
                .map(Arc::new),
        }
    }
}

/// The effective value of a settable attribute: the explicit one, else the default (`None` for
/// attributes that are absent unless set, like `Policy`).
pub fn effective_value(attributes: &BTreeMap<String, String>, name: &str) -> Option<String> {
    // A KMS key replaces SQS-managed encryption; the data-key period means nothing without one.
    let kms_key = attributes.get("KmsMasterKeyId").is_some_and(|id| !id.is_empty());
    if name == "KmsDataKeyReusePeriodSeconds" && !kms_key {
        return None;
    }
    if let Some(value) = attributes.get(name) {
        // An attribute set to "" (Policy, RedrivePolicy, KmsMasterKeyId...) is removed.
        return (!value.is_empty()).then(|| value.clone());
    }
    let fifo = attributes.get("FifoQueue").is_some_and(|v| v == "true");
    let default = match name {
        "DelaySeconds" => limits::DELAY_SECONDS_DEFAULT.to_string(),
        "MaximumMessageSize" => limits::MAX_MESSAGE_SIZE_DEFAULT.to_string(),
        "MessageRetentionPeriod" => limits::RETENTION_PERIOD_DEFAULT.to_string(),
        "ReceiveMessageWaitTimeSeconds" => limits::WAIT_TIME_SECONDS_DEFAULT.to_string(),
        "VisibilityTimeout" => limits::VISIBILITY_TIMEOUT_DEFAULT.to_string(),
        // New queues are encrypted with SQS-managed keys unless given a KMS key, as on AWS.
        "SqsManagedSseEnabled" => (!kms_key).to_string(),
        "KmsDataKeyReusePeriodSeconds" => limits::KMS_DATA_KEY_REUSE_DEFAULT.to_string(),
        "FifoQueue" | "ContentBasedDeduplication" if fifo => "false".to_string(),
        "DeduplicationScope" if fifo => "queue".to_string(),
        "FifoThroughputLimit" if fifo => "perQueue".to_string(),
        _ => return None,
    };
    Some(default)
}

/// Validates and normalises attributes given to CreateQueue or SetQueueAttributes of a queue
/// that is (or will be) FIFO or not. Returns the explicit attributes to store. Cross-queue rules
/// (a dead-letter target must exist and allow the source) are checked by the caller, which can
/// look queues up.
pub fn validate(
    given: &BTreeMap<String, String>,
    occasion: Occasion,
    fifo: bool,
) -> Result<BTreeMap<String, String>, SqsError> {
    let mut normalised = BTreeMap::new();
    for (name, value) in given {
        let invalid = || sqs_error!(InvalidAttributeValue, "Invalid value for the parameter {name}.");
        let int_in = |min: u32, max: u32| -> Result<String, SqsError> {
            let parsed: u32 = value.trim().parse().map_err(|_| invalid())?;
            if (min..=max).contains(&parsed) {
                Ok(parsed.to_string())
            } else {
                Err(invalid())
            }
        };
        let boolean = || -> Result<String, SqsError> {
            match value.to_ascii_lowercase().as_str() {
                b @ ("true" | "false") => Ok(b.to_string()),
                _ => Err(invalid()),
            }
        };
        let one_of = |allowed: &[&str]| -> Result<String, SqsError> {
            allowed.iter().find(|a| **a == value.as_str()).map(|a| a.to_string()).ok_or_else(invalid)
        };
        let value = match name.as_str() {
            "DelaySeconds" => int_in(0, limits::DELAY_SECONDS_MAX)?,
            "MaximumMessageSize" => int_in(limits::MAX_MESSAGE_SIZE_MIN, limits::MAX_MESSAGE_SIZE_MAX)?,
            "MessageRetentionPeriod" => int_in(limits::RETENTION_PERIOD_MIN, limits::RETENTION_PERIOD_MAX)?,
            "ReceiveMessageWaitTimeSeconds" => int_in(0, limits::WAIT_TIME_SECONDS_MAX)?,
            "VisibilityTimeout" => int_in(0, limits::VISIBILITY_TIMEOUT_MAX)?,
            "KmsDataKeyReusePeriodSeconds" => int_in(limits::KMS_DATA_KEY_REUSE_MIN, limits::KMS_DATA_KEY_REUSE_MAX)?,
            "KmsMasterKeyId" => value.clone(),
            "SqsManagedSseEnabled" => boolean()?,
            "Policy" => {
                if value.len() > limits::MAX_POLICY_BYTES {
                    return Err(sqs_error!(
                        InvalidAttributeValue,
                        "Invalid value for the parameter Policy. Reason: the policy is {} bytes; the limit is {}.",
                        value.len(),
                        limits::MAX_POLICY_BYTES
                    ));
                }
                if !value.is_empty() {
                    Policy::parse(value, PolicyKind::Resource).map_err(|reason| {
                        tracing::debug!(%reason, "refused a queue policy");
                        invalid()
                    })?;
                }
                value.clone()
            }
            "RedrivePolicy" if value.is_empty() => String::new(),
            "RedrivePolicy" => RedrivePolicy::parse(value)?.to_json(),
            "RedriveAllowPolicy" if value.is_empty() => String::new(),
            "RedriveAllowPolicy" => RedriveAllowPolicy::parse(value)?.to_json(),
            // As AWS answers: a standard queue has no such attribute; a FIFO queue accepts
            // FifoQueue=true (a no-op) and refuses to become standard.
            "FifoQueue" if occasion == Occasion::SetQueueAttributes && !fifo => {
                return Err(sqs_error!(InvalidAttributeName, "Unknown Attribute FifoQueue."));
            }
            "FifoQueue" if occasion == Occasion::SetQueueAttributes => match boolean()?.as_str() {
                "true" => "true".to_string(),
                _ => {
                    return Err(sqs_error!(
                        InvalidAttributeValue,
                        "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not supported."
                    ))
                }
            },
            // A standard queue has no FifoQueue attribute at all: AWS refuses even "false".
            "FifoQueue" => match (boolean()?.as_str(), fifo) {
                ("true", true) => "true".to_string(),
                (_, false) => return Err(sqs_error!(InvalidAttributeName, "Unknown Attribute FifoQueue.")),
                _ => return Err(invalid()),
            },
            "ContentBasedDeduplication" if !fifo => {
                return Err(sqs_error!(InvalidAttributeName, "Unknown Attribute {name}."));
            }
            "DeduplicationScope" | "FifoThroughputLimit" if !fifo => {
                return Err(sqs_error!(
                    InvalidAttributeName,
                    "You can specify the {name} only when FifoQueue is set to true."
                ));
            }
            "ContentBasedDeduplication" => boolean()?,
            "DeduplicationScope" => one_of(&["messageGroup", "queue"])?,
            "FifoThroughputLimit" => one_of(&["perQueue", "perMessageGroupId"])?,
            _ if ALL_ATTRIBUTES.contains(&name.as_str()) => {
                return Err(sqs_error!(InvalidAttributeName, "Attribute {name} is read-only."));
            }
            _ => return Err(sqs_error!(InvalidAttributeName, "Unknown Attribute {name}.")),
        };
        normalised.insert(name.clone(), value);
    }
    let kms_key = normalised.get("KmsMasterKeyId").is_some_and(|id| !id.is_empty());
    match normalised.get("SqsManagedSseEnabled").map(String::as_str) {
        Some("true") if kms_key => {
            return Err(sqs_error!(
                InvalidAttributeValue,
                "You can use one type of server-side encryption (SSE) at one time: KmsMasterKeyId or SqsManagedSseEnabled."
            ));
        }
        // Choosing a KMS key turns SQS-managed encryption off, and it stays off when the key is
        // later removed (AWS's recorded behaviour).
        None if kms_key => {
            normalised.insert("SqsManagedSseEnabled".to_string(), "false".to_string());
        }
        _ => {}
    }
    Ok(normalised)
}

/// Rules over the effective attributes once a change is applied: high-throughput FIFO
/// (`FifoThroughputLimit=perMessageGroupId`) needs per-group deduplication.
pub fn validate_combination(effective: &BTreeMap<String, String>) -> Result<(), SqsError> {
    let per_group_throughput = effective.get("FifoThroughputLimit").is_some_and(|v| v == "perMessageGroupId");
    let per_group_dedup = effective.get("DeduplicationScope").is_some_and(|v| v == "messageGroup");
    if per_group_throughput && !per_group_dedup {
        return Err(sqs_error!(
            InvalidAttributeValue,
            "Invalid value for the parameter FifoThroughputLimit. Reason: perMessageGroupId is allowed only with DeduplicationScope messageGroup."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_api::ErrorCode;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn validates_and_normalises() {
        let ok = validate(
            &attrs(&[("VisibilityTimeout", "060"), ("SqsManagedSseEnabled", "True")]),
            Occasion::CreateQueue,
            false,
        );
        assert_eq!(ok.unwrap(), attrs(&[("VisibilityTimeout", "60"), ("SqsManagedSseEnabled", "true")]));
        let code = |pairs: &[(&str, &str)], occasion| validate(&attrs(pairs), occasion, false).unwrap_err().code;
        assert_eq!(code(&[("VisibilityTimeout", "43201")], Occasion::CreateQueue), ErrorCode::InvalidAttributeValue);
        assert_eq!(code(&[("DelaySeconds", "-1")], Occasion::CreateQueue), ErrorCode::InvalidAttributeValue);
        assert_eq!(code(&[("MaximumMessageSize", "1023")], Occasion::CreateQueue), ErrorCode::InvalidAttributeValue);
        assert_eq!(code(&[("MessageRetentionPeriod", "59")], Occasion::CreateQueue), ErrorCode::InvalidAttributeValue);
        assert_eq!(code(&[("Policy", "{not json")], Occasion::CreateQueue), ErrorCode::InvalidAttributeValue);
        let padding = "x".repeat(limits::MAX_POLICY_BYTES);
        let huge = format!(r#"{{"Version":"2012-10-17","Id":"{padding}","Statement":[]}}"#);
        assert_eq!(code(&[("Policy", &huge)], Occasion::SetQueueAttributes), ErrorCode::InvalidAttributeValue);
        assert_eq!(code(&[("Bogus", "1")], Occasion::CreateQueue), ErrorCode::InvalidAttributeName);
        assert_eq!(code(&[("QueueArn", "x")], Occasion::SetQueueAttributes), ErrorCode::InvalidAttributeName);
        assert_eq!(code(&[("FifoQueue", "true")], Occasion::SetQueueAttributes), ErrorCode::InvalidAttributeName);
        let set_on_fifo = |value: &str| validate(&attrs(&[("FifoQueue", value)]), Occasion::SetQueueAttributes, true);
        assert!(set_on_fifo("true").is_ok(), "a no-op on a FIFO queue");
        assert_eq!(
            set_on_fifo("false").unwrap_err().message,
            "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not supported."
        );
        assert_eq!(code(&[("FifoQueue", "true")], Occasion::CreateQueue), ErrorCode::InvalidAttributeName);
        assert_eq!(code(&[("FifoQueue", "false")], Occasion::CreateQueue), ErrorCode::InvalidAttributeName);
        let message =
            |pairs: &[(&str, &str)]| validate(&attrs(pairs), Occasion::CreateQueue, false).unwrap_err().message;
        assert_eq!(message(&[("FifoQueue", "false")]), "Unknown Attribute FifoQueue.");
        assert_eq!(
            message(&[("DeduplicationScope", "queue")]),
            "You can specify the DeduplicationScope only when FifoQueue is set to true."
        );
        assert_eq!(
            code(&[("ContentBasedDeduplication", "true")], Occasion::CreateQueue),
            ErrorCode::InvalidAttributeName
        );
        let fifo = |pairs: &[(&str, &str)]| validate(&attrs(pairs), Occasion::CreateQueue, true);
        assert!(fifo(&[
            ("FifoQueue", "true"),
            ("ContentBasedDeduplication", "true"),
            ("DeduplicationScope", "messageGroup")
        ])
        .is_ok());
        assert_eq!(fifo(&[("DeduplicationScope", "group")]).unwrap_err().code, ErrorCode::InvalidAttributeValue);
        assert_eq!(fifo(&[("FifoQueue", "false")]).unwrap_err().code, ErrorCode::InvalidAttributeValue);
        let high_throughput = attrs(&[("FifoThroughputLimit", "perMessageGroupId")]);
        assert!(validate_combination(&high_throughput).is_err());
        let mut with_scope = high_throughput.clone();
        with_scope.insert("DeduplicationScope".into(), "messageGroup".into());
        assert!(validate_combination(&with_scope).is_ok());
    }

    #[test]
    fn defaults_apply_when_unset() {
        let settings = QueueSettings::from_attributes(&attrs(&[("VisibilityTimeout", "5")]));
        assert_eq!(settings.visibility_timeout, 5);
        assert_eq!(settings.maximum_message_size, 1_048_576);
        assert_eq!(settings.message_retention_period, 345_600);
        assert_eq!(effective_value(&BTreeMap::new(), "DelaySeconds").as_deref(), Some("0"));
        assert_eq!(effective_value(&BTreeMap::new(), "Policy"), None);
    }

    #[test]
    fn a_kms_key_replaces_sqs_managed_encryption() {
        let shown = |stored: &BTreeMap<String, String>, name: &str| effective_value(stored, name);
        let fresh = BTreeMap::new();
        assert_eq!(shown(&fresh, "SqsManagedSseEnabled").as_deref(), Some("true"));
        assert_eq!(shown(&fresh, "KmsDataKeyReusePeriodSeconds"), None);

        let kms = validate(&attrs(&[("KmsMasterKeyId", "alias/orders")]), Occasion::SetQueueAttributes, false).unwrap();
        assert_eq!(shown(&kms, "SqsManagedSseEnabled").as_deref(), Some("false"));
        assert_eq!(shown(&kms, "KmsDataKeyReusePeriodSeconds").as_deref(), Some("300"));

        // Removing the key again leaves SQS-managed encryption off and hides the period.
        let mut removed = kms.clone();
        removed.extend(validate(&attrs(&[("KmsMasterKeyId", "")]), Occasion::SetQueueAttributes, false).unwrap());
        assert_eq!(shown(&removed, "KmsMasterKeyId"), None);
        assert_eq!(shown(&removed, "SqsManagedSseEnabled").as_deref(), Some("false"));
        assert_eq!(shown(&removed, "KmsDataKeyReusePeriodSeconds"), None);

        let both = attrs(&[("KmsMasterKeyId", "k"), ("SqsManagedSseEnabled", "true")]);
        assert_eq!(validate(&both, Occasion::CreateQueue, false).unwrap_err().code, ErrorCode::InvalidAttributeValue);
    }
}
