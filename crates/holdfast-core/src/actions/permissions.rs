//! AddPermission and RemovePermission: they maintain the queue's `Policy` attribute as a real IAM
//! policy document, one statement per label, as SQS does. Policies are stored and returned
//! faithfully; enforcing them arrives with signature verification.
//!
//! Each edit reads the policy, changes it, and writes it back with a compare-and-set
//! (`Store::replace_queue_attribute`): if anything changed the policy in between (another
//! permission edit, or SetQueueAttributes), the edit starts over from the new document, so no
//! concurrent change is lost and no lock is held across store calls.

use holdfast_api::types::*;
use holdfast_api::{limits, sqs_error, NoOutput, SqsError};
use serde_json::{json, Value};

use crate::policy::{Policy, PolicyKind};
use crate::service::{from_store, RequestContext, Sqs};

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
const MAX_ACTIONS_PER_STATEMENT: usize = limits::MAX_POLICY_ACTIONS_PER_STATEMENT;

fn policy_of(attributes: &std::collections::BTreeMap<String, String>, queue_arn: &str) -> Value {
    attributes
        .get("Policy")
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .filter(Value::is_object)
        .unwrap_or_else(
            // The document AWS starts from, its older policy-language version included.
            || json!({ "Version": "2008-10-17", "Id": format!("{queue_arn}/SQSDefaultPolicy"), "Statement": [] }),
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

/// How often an edit starts over because the policy changed under it before giving up. Edits of
/// one queue's policy are rare; losing this many races in a row means something is hammering it.
const MAX_EDIT_ATTEMPTS: usize = 32;

/// Applies `edit` to the queue's policy document and stores the result atomically with respect
/// to every other change of the policy. A policy left without statements is removed.
async fn edit_policy(
    sqs: &Sqs,
    ctx: &RequestContext,
    queue_url: &str,
    edit: impl Fn(&mut Vec<Value>) -> Result<(), SqsError>,
) -> Result<NoOutput, SqsError> {
    for _ in 0..MAX_EDIT_ATTEMPTS {
        let queue = sqs.queue(ctx, queue_url).await?;
        let current = queue.attributes.get("Policy").map(String::as_str);
        let mut policy = policy_of(&queue.attributes, &sqs.queue_arn(&queue));
        let list = statements(&mut policy);
        edit(list)?;
        // The last permission gone: the queue has no policy, as after SetQueueAttributes(Policy="").
        let replacement = if list.is_empty() { String::new() } else { policy.to_string() };
        if replacement.len() > limits::MAX_POLICY_BYTES {
            return Err(sqs_error!(
                OverLimit,
                "The queue's policy would be {} bytes; the limit is {}.",
                replacement.len(),
                limits::MAX_POLICY_BYTES
            ));
        }
        // The policy quotas (statements, principals, ...): a permission beyond them is OverLimit,
        // as AWS answers when a queue has as many permissions as it may.
        if !replacement.is_empty() {
            if let Err(reason) = Policy::parse(&replacement, PolicyKind::Resource) {
                return Err(sqs_error!(OverLimit, "The queue's policy would exceed a limit: {reason}."));
            }
        }
        let stored = sqs
            .store
            .replace_queue_attribute(queue.id, "Policy", current, &replacement, sqs.now())
            .await
            .map_err(from_store)?;
        if stored {
            return Ok(NoOutput);
        }
    }
    Err(sqs_error!(ServiceUnavailable, "The queue's policy is being changed concurrently; try again."))
}

pub async fn add_permission(sqs: &Sqs, ctx: &RequestContext, req: AddPermissionRequest) -> Result<NoOutput, SqsError> {
    let queue = sqs.queue(ctx, &req.queue_url).await?;
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
    let principals: Vec<String> = req.aws_account_ids.iter().map(|id| format!("arn:aws:iam::{id}:root")).collect();
    let actions: Vec<String> = req.actions.iter().map(|a| format!("SQS:{a}")).collect();
    let resource = sqs.queue_arn(&queue);
    edit_policy(sqs, ctx, &req.queue_url, |list| {
        if list.iter().any(|s| s.get("Sid").and_then(Value::as_str) == Some(req.label.as_str())) {
            return Err(sqs_error!(
                InvalidParameterValue,
                "Value {} for parameter Label is invalid. Reason: Already exists.",
                req.label
            ));
        }
        list.push(json!({
            "Sid": req.label,
            "Effect": "Allow",
            "Principal": { "AWS": one_or_many(principals.clone()) },
            "Action": one_or_many(actions.clone()),
            "Resource": resource,
        }));
        Ok(())
    })
    .await
}

pub async fn remove_permission(
    sqs: &Sqs,
    ctx: &RequestContext,
    req: RemovePermissionRequest,
) -> Result<NoOutput, SqsError> {
    edit_policy(sqs, ctx, &req.queue_url, |list| {
        let before = list.len();
        list.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(req.label.as_str()));
        if list.len() == before {
            return Err(sqs_error!(
                InvalidParameterValue,
                "Value {} for parameter Label is invalid. Reason: can't find label.",
                req.label
            ));
        }
        Ok(())
    })
    .await
}
