//! AddPermission and RemovePermission: they maintain the queue's `Policy` attribute as a real IAM
//! policy document, one statement per label, as SQS does. Policies are stored and returned
//! faithfully; enforcing them arrives with signature verification.

use holdfast_api::types::*;
use holdfast_api::{limits, sqs_error, NoOutput, SqsError};
use serde_json::{json, Value};

use super::exists;
use crate::service::{internal, Sqs};

/// Actions a permission may grant (the model's documented values, plus `*`).
const GRANTABLE: &[&str] = &[
    "*",
    "SendMessage",
    "ReceiveMessage",
    "DeleteMessage",
    "ChangeMessageVisibility",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "PurgeQueue",
    "ListQueueTags",
];

/// SQS's limit on actions in one AddPermission statement.
const MAX_ACTIONS_PER_STATEMENT: usize = 7;

fn policy_of(attributes: &std::collections::BTreeMap<String, String>, queue_arn: &str) -> Value {
    attributes
        .get("Policy")
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .filter(Value::is_object)
        .unwrap_or_else(
            || json!({ "Version": "2012-10-17", "Id": format!("{queue_arn}/SQSDefaultPolicy"), "Statement": [] }),
        )
}

fn statements(policy: &mut Value) -> &mut Vec<Value> {
    let object = policy.as_object_mut().expect("policies are objects");
    let statement = object.entry("Statement").or_insert_with(|| json!([]));
    if !statement.is_array() {
        // A single statement may be written as an object; normalise to a list.
        *statement = json!([statement.take()]);
    }
    statement.as_array_mut().expect("just made an array")
}

/// A single value as a string, several as a list: the shape SQS writes.
fn one_or_many(values: Vec<String>) -> Value {
    if values.len() == 1 {
        Value::String(values.into_iter().next().expect("one value"))
    } else {
        Value::Array(values.into_iter().map(Value::String).collect())
    }
}

fn validate_label(label: &str) -> Result<(), SqsError> {
    let valid = !label.is_empty()
        && label.len() <= limits::MAX_PERMISSION_LABEL_LEN
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(sqs_error!(
            InvalidParameterValue,
            "Value {label} for parameter Label is invalid. Reason: Must be 1 to 80 alphanumeric characters, hyphens or underscores."
        ))
    }
}

pub async fn add_permission(sqs: &Sqs, req: AddPermissionRequest) -> Result<NoOutput, SqsError> {
    let _edit = sqs.permissions_lock.lock().await;
    let queue = sqs.queue(&req.queue_url).await?;
    validate_label(&req.label)?;
    if req.aws_account_ids.is_empty() {
        return Err(sqs_error!(MissingParameter, "The request must contain the parameter AWSAccountIds."));
    }
    if req.actions.is_empty() {
        return Err(sqs_error!(MissingParameter, "The request must contain the parameter Actions."));
    }
    if req.actions.len() > MAX_ACTIONS_PER_STATEMENT {
        return Err(sqs_error!(
            OverLimit,
            "{} actions were found, maximum allowed is {MAX_ACTIONS_PER_STATEMENT}.",
            req.actions.len()
        ));
    }
    if let Some(bad) = req.actions.iter().find(|a| !GRANTABLE.contains(&a.as_str())) {
        return Err(sqs_error!(InvalidParameterValue, "Value SQS:{bad} for parameter ActionName is invalid. Reason: Please refer to the appropriate WSDL for a list of valid actions."));
    }
    if let Some(bad) = req.aws_account_ids.iter().find(|id| id.is_empty()) {
        return Err(sqs_error!(InvalidParameterValue, "Value {bad} for parameter AWSAccountIds is invalid."));
    }
    let queue_arn = sqs.queue_arn(&queue.record.name);
    let mut policy = policy_of(&queue.record.attributes, &queue_arn);
    let list = statements(&mut policy);
    if list.iter().any(|s| s.get("Sid").and_then(Value::as_str) == Some(req.label.as_str())) {
        return Err(sqs_error!(
            InvalidParameterValue,
            "Value {} for parameter Label is invalid. Reason: Already exists.",
            req.label
        ));
    }
    let principals = req.aws_account_ids.iter().map(|id| format!("arn:aws:iam::{id}:root")).collect();
    let actions = req.actions.iter().map(|a| format!("SQS:{a}")).collect();
    list.push(json!({
        "Sid": req.label,
        "Effect": "Allow",
        "Principal": { "AWS": one_or_many(principals) },
        "Action": one_or_many(actions),
        "Resource": queue_arn,
    }));
    store_policy(sqs, queue.record.id, &policy).await
}

pub async fn remove_permission(sqs: &Sqs, req: RemovePermissionRequest) -> Result<NoOutput, SqsError> {
    let _edit = sqs.permissions_lock.lock().await;
    let queue = sqs.queue(&req.queue_url).await?;
    let queue_arn = sqs.queue_arn(&queue.record.name);
    let mut policy = policy_of(&queue.record.attributes, &queue_arn);
    let list = statements(&mut policy);
    let before = list.len();
    list.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(req.label.as_str()));
    if list.len() == before {
        return Err(sqs_error!(
            InvalidParameterValue,
            "Value {} for parameter Label is invalid. Reason: can't find label on existing policy.",
            req.label
        ));
    }
    if list.is_empty() {
        // The last permission gone: the queue has no policy, as after SetQueueAttributes(Policy="").
        let cleared = std::collections::BTreeMap::from([("Policy".to_string(), String::new())]);
        let updated = sqs.store.set_queue_attributes(queue.record.id, cleared, sqs.now()).await.map_err(internal)?;
        return exists(updated.then_some(NoOutput));
    }
    store_policy(sqs, queue.record.id, &policy).await
}

async fn store_policy(sqs: &Sqs, queue_id: i64, policy: &Value) -> Result<NoOutput, SqsError> {
    let attributes = std::collections::BTreeMap::from([("Policy".to_string(), policy.to_string())]);
    let updated = sqs.store.set_queue_attributes(queue_id, attributes, sqs.now()).await.map_err(internal)?;
    exists(updated.then_some(NoOutput))
}
