//! The two dead-letter policies, as JSON documents in queue attributes (SetQueueAttributes, dead-letter queues):
//! `RedrivePolicy` on a source queue names its dead-letter queue and how many receives a message
//! gets before it moves there; `RedriveAllowPolicy` on a dead-letter queue says which sources may
//! name it.

use holdfast_api::{sqs_error, SqsError};
use serde_json::{json, Value};

/// The model documents `maxReceiveCount` without a range; SQS accepts 1 to 1,000.
pub const MAX_RECEIVE_COUNT_MAX: u32 = 1_000;
/// `byQueue` lists at most 10 source queues.
pub const MAX_SOURCE_QUEUE_ARNS: usize = 10;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedrivePolicy {
    pub dead_letter_target_arn: String,
    pub max_receive_count: u32,
}

fn invalid(parameter: &str, value: &str, reason: &str) -> SqsError {
    sqs_error!(InvalidParameterValue, "Value {value} for parameter {parameter} is invalid. Reason: {reason}")
}

impl RedrivePolicy {
    /// Parses the attribute value. `maxReceiveCount` may be a JSON number or a string holding one
    /// (botocore users commonly send `"3"`).
    pub fn parse(text: &str) -> Result<RedrivePolicy, SqsError> {
        let bad = |reason: &str| invalid("RedrivePolicy", text, reason);
        let document: Value = serde_json::from_str(text).map_err(|_| bad("Redrive policy is not a valid JSON map."))?;
        let Some(map) = document.as_object() else { return Err(bad("Redrive policy is not a valid JSON map.")) };
        if let Some(unknown) = map.keys().find(|k| *k != "deadLetterTargetArn" && *k != "maxReceiveCount") {
            return Err(bad(&format!(
                "Only following keys are allowed: deadLetterTargetArn, maxReceiveCount; found {unknown}."
            )));
        }
        let arn = map
            .get("deadLetterTargetArn")
            .and_then(Value::as_str)
            .filter(|arn| !arn.is_empty())
            .ok_or_else(|| bad("Redrive policy does not contain mandatory attribute: deadLetterTargetArn."))?;
        let count = match map.get("maxReceiveCount") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
            None => return Err(bad("Redrive policy does not contain mandatory attribute: maxReceiveCount.")),
            _ => None,
        };
        let max_receive_count = count
            .filter(|c| (1..=u64::from(MAX_RECEIVE_COUNT_MAX)).contains(c))
            .ok_or_else(|| bad("Invalid value for maxReceiveCount: must be an integer from 1 to 1000."))?;
        Ok(RedrivePolicy { dead_letter_target_arn: arn.to_string(), max_receive_count: max_receive_count as u32 })
    }

    /// The normalised document SQS returns: the count as a number.
    pub fn to_json(&self) -> String {
        json!({ "deadLetterTargetArn": self.dead_letter_target_arn, "maxReceiveCount": self.max_receive_count })
            .to_string()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedriveAllowPolicy {
    AllowAll,
    DenyAll,
    ByQueue(Vec<String>),
}

impl RedriveAllowPolicy {
    pub fn parse(text: &str) -> Result<RedriveAllowPolicy, SqsError> {
        let bad = |reason: &str| invalid("RedriveAllowPolicy", text, reason);
        let document: Value =
            serde_json::from_str(text).map_err(|_| bad("Redrive allow policy is not a valid JSON map."))?;
        let Some(map) = document.as_object() else { return Err(bad("Redrive allow policy is not a valid JSON map.")) };
        let arns = match map.get("sourceQueueArns") {
            None => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_string).ok_or_else(|| bad("sourceQueueArns must be a list of ARNs."))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => return Err(bad("sourceQueueArns must be a list of ARNs.")),
        };
        match (map.get("redrivePermission").and_then(Value::as_str), arns) {
            (Some("allowAll"), None) => Ok(RedriveAllowPolicy::AllowAll),
            (Some("denyAll"), None) => Ok(RedriveAllowPolicy::DenyAll),
            (Some("byQueue"), Some(arns)) if !arns.is_empty() && arns.len() <= MAX_SOURCE_QUEUE_ARNS => {
                Ok(RedriveAllowPolicy::ByQueue(arns))
            }
            (Some("byQueue"), _) => Err(bad("byQueue needs sourceQueueArns with 1 to 10 queue ARNs.")),
            (Some("allowAll" | "denyAll"), Some(_)) => {
                Err(bad("sourceQueueArns is allowed only with redrivePermission byQueue."))
            }
            _ => Err(bad("redrivePermission must be one of allowAll, denyAll, byQueue.")),
        }
    }

    pub fn to_json(&self) -> String {
        match self {
            RedriveAllowPolicy::AllowAll => json!({ "redrivePermission": "allowAll" }),
            RedriveAllowPolicy::DenyAll => json!({ "redrivePermission": "denyAll" }),
            RedriveAllowPolicy::ByQueue(arns) => json!({ "redrivePermission": "byQueue", "sourceQueueArns": arns }),
        }
        .to_string()
    }

    pub fn allows(&self, source_arn: &str) -> bool {
        match self {
            RedriveAllowPolicy::AllowAll => true,
            RedriveAllowPolicy::DenyAll => false,
            RedriveAllowPolicy::ByQueue(arns) => arns.iter().any(|a| a == source_arn),
        }
    }
}

/// The `(account, region, name)` an SQS queue ARN names: `arn:aws:sqs:<region>:<account>:<name>`.
pub fn queue_of_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let mut parts = arn.splitn(6, ':');
    match (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("arn"), Some(_partition), Some("sqs"), Some(region), Some(account), Some(name))
            if !account.is_empty() && !name.is_empty() && !region.is_empty() =>
        {
            Some((account, region, name))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrive_policy_accepts_numbers_and_numeric_strings() {
        let policy = RedrivePolicy::parse(
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"3"}"#,
        )
        .unwrap();
        assert_eq!(policy.max_receive_count, 3);
        assert_eq!(
            policy.to_json(),
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":3}"#
        );
        for bad in [
            r#"{"maxReceiveCount":3}"#,
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:0:d"}"#,
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:0:d","maxReceiveCount":0}"#,
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:0:d","maxReceiveCount":1001}"#,
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:0:d","maxReceiveCount":3,"x":1}"#,
            "not json",
        ] {
            assert!(RedrivePolicy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redrive_allow_policy() {
        assert_eq!(
            RedriveAllowPolicy::parse(r#"{"redrivePermission":"allowAll"}"#).unwrap(),
            RedriveAllowPolicy::AllowAll
        );
        let by_queue = RedriveAllowPolicy::parse(r#"{"redrivePermission":"byQueue","sourceQueueArns":["a"]}"#).unwrap();
        assert!(by_queue.allows("a") && !by_queue.allows("b"));
        assert!(!RedriveAllowPolicy::parse(r#"{"redrivePermission":"denyAll"}"#).unwrap().allows("a"));
        assert!(RedriveAllowPolicy::parse(r#"{"redrivePermission":"byQueue"}"#).is_err());
        assert!(RedriveAllowPolicy::parse(r#"{"redrivePermission":"allowAll","sourceQueueArns":["a"]}"#).is_err());
        let eleven: Vec<String> = (0..11).map(|i| format!("\"a{i}\"")).collect();
        let text = format!(r#"{{"redrivePermission":"byQueue","sourceQueueArns":[{}]}}"#, eleven.join(","));
        assert!(RedriveAllowPolicy::parse(&text).is_err());
    }

    #[test]
    fn arns() {
        assert_eq!(
            queue_of_arn("arn:aws:sqs:us-east-1:000000000000:dlq.fifo"),
            Some(("000000000000", "us-east-1", "dlq.fifo"))
        );
        assert_eq!(queue_of_arn("arn:aws:sqs:eu-west-1:111:dlq"), Some(("111", "eu-west-1", "dlq")));
        assert_eq!(queue_of_arn("arn:aws:sqs::111:dlq"), None);
        assert_eq!(queue_of_arn("arn:aws:sns:us-east-1:000000000000:t"), None);
        assert_eq!(queue_of_arn("arn:aws:sqs:us-east-1::dlq"), None);
    }
}
