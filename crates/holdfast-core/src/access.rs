//! Authorization: whether the caller of a request may do what it asks, decided as IAM decides
//! it for SQS (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>):
//!
//! 1. an explicit `Deny` in the caller's identity policy or in the queue's `Policy` refuses;
//! 2. within the caller's own account, an `Allow` in either allows; a key without an identity
//!    policy is its account's root and is allowed everything in its own account;
//! 3. for another account's queue, the queue's `Policy` must allow the caller, and so must the
//!    caller's identity policy if the key has one;
//! 4. anything else is refused: `AccessDenied` (403).
//!
//! Batch actions are authorized as their single forms (`SendMessageBatch` as `SendMessage`), as
//! SQS does. Requests are authorized before any action runs, so a refused request changes
//! nothing. Without authentication (`RequestContext::caller` is `None`) nothing is checked.

use std::net::IpAddr;
use std::sync::Arc;

use holdfast_api::{sqs_error, Request, SqsError};

use crate::names;
use crate::policy::{Access, Policy, Principal, RequestFacts, Verdict};
use crate::redrive::queue_of_arn;
use crate::service::{from_store, RequestContext, Sqs};

/// A verified caller: who signed the request, and the policy of their key.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    /// The key's identity policy; `None` for an account's root key.
    pub policy: Option<Arc<Policy>>,
}

impl Caller {
    /// What SQS reports as a message's `SenderId`: the user for a user's key, else the account.
    pub fn sender_id(&self) -> &str {
        self.principal.user.as_deref().unwrap_or(&self.principal.account_id)
    }
}

/// What one request asks for, as policies see it: an action on a queue (or on no queue).
struct Wanted {
    action: &'static str,
    /// `(account, region, name)` of the queue, or `None` for actions on no queue (ListQueues).
    queue: Option<(String, String, String)>,
}

impl Wanted {
    fn on(action: &'static str, account: &str, region: &str, name: &str) -> Self {
        Wanted { action, queue: Some((account.to_owned(), region.to_owned(), name.to_owned())) }
    }

    fn on_arn(action: &'static str, arn: &str) -> Option<Self> {
        let (account, region, name) = queue_of_arn(arn)?;
        Some(Wanted::on(action, account, region, name))
    }
}

/// The (action, queue) pairs `request` needs to be allowed. A queue reference that does not
/// parse needs nothing: the action itself refuses it (`InvalidAddress`,
/// `ResourceNotFoundException`) before touching anything.
fn wanted(sqs: &Sqs, ctx: &RequestContext, request: &Request) -> Vec<Wanted> {
    use Request as R;
    let (caller_account, region) = (ctx.account(sqs), ctx.region(sqs));
    let url = |action, url: &str| {
        let Ok(address) = names::parse_queue_url(url) else { return Vec::new() };
        let (account, region, name) = sqs.resolve(ctx, address);
        vec![Wanted::on(action, account, region, name)]
    };
    match request {
        R::CreateQueue(r) => {
            let mut wanted = vec![Wanted::on("CreateQueue", caller_account, region, &r.queue_name)];
            // Tagging at creation needs TagQueue as well, as in SQS.
            if r.tags.as_ref().is_some_and(|t| !t.is_empty()) {
                wanted.push(Wanted::on("TagQueue", caller_account, region, &r.queue_name));
            }
            wanted
        }
        R::GetQueueUrl(r) => {
            let owner = r.queue_owner_aws_account_id.as_deref().unwrap_or(caller_account);
            vec![Wanted::on("GetQueueUrl", owner, region, &r.queue_name)]
        }
        R::ListQueues(_) => vec![Wanted { action: "ListQueues", queue: None }],
        R::DeleteQueue(r) => url("DeleteQueue", &r.queue_url),
        R::GetQueueAttributes(r) => url("GetQueueAttributes", &r.queue_url),
        R::SetQueueAttributes(r) => url("SetQueueAttributes", &r.queue_url),
        R::PurgeQueue(r) => url("PurgeQueue", &r.queue_url),
        R::TagQueue(r) => url("TagQueue", &r.queue_url),
        R::UntagQueue(r) => url("UntagQueue", &r.queue_url),
        R::ListQueueTags(r) => url("ListQueueTags", &r.queue_url),
        R::SendMessage(r) => url("SendMessage", &r.queue_url),
        R::SendMessageBatch(r) => url("SendMessage", &r.queue_url),
        R::ReceiveMessage(r) => url("ReceiveMessage", &r.queue_url),
        R::DeleteMessage(r) => url("DeleteMessage", &r.queue_url),
        R::DeleteMessageBatch(r) => url("DeleteMessage", &r.queue_url),
        R::ChangeMessageVisibility(r) => url("ChangeMessageVisibility", &r.queue_url),
        R::ChangeMessageVisibilityBatch(r) => url("ChangeMessageVisibility", &r.queue_url),
        R::AddPermission(r) => url("AddPermission", &r.queue_url),
        R::RemovePermission(r) => url("RemovePermission", &r.queue_url),
        R::ListDeadLetterSourceQueues(r) => url("ListDeadLetterSourceQueues", &r.queue_url),
        R::StartMessageMoveTask(r) => {
            let mut wanted: Vec<Wanted> = Wanted::on_arn("StartMessageMoveTask", &r.source_arn).into_iter().collect();
            // Moving messages into a queue is sending to it.
            wanted.extend(r.destination_arn.as_deref().and_then(|arn| Wanted::on_arn("SendMessage", arn)));
            wanted
        }
        // The handle carries its task's source ARN. A handle altered to name another queue is no
        // task's handle, so the cancel it asks for finds nothing.
        R::CancelMessageMoveTask(r) => crate::actions::move_tasks::source_arn_of_handle(&r.task_handle)
            .and_then(|arn| Wanted::on_arn("CancelMessageMoveTask", &arn))
            .into_iter()
            .collect(),
        R::ListMessageMoveTasks(r) => Wanted::on_arn("ListMessageMoveTasks", &r.source_arn).into_iter().collect(),
    }
}

/// Facts of the transport that conditions test.
#[derive(Clone, Debug, Default)]
pub struct Transport {
    /// The client's address (`aws:SourceIp`).
    pub source_ip: Option<IpAddr>,
    /// Whether the connection is TLS (`aws:SecureTransport`).
    pub secure: bool,
}

impl Sqs {
    /// Refuses `request` with `AccessDenied` unless the caller's policies allow all it asks for.
    pub(crate) async fn authorize(&self, ctx: &RequestContext, request: &Request) -> Result<(), SqsError> {
        let Some(caller) = ctx.caller.as_deref() else { return Ok(()) };
        for wanted in wanted(self, ctx, request) {
            let (resource, owner, queue_policy) = match &wanted.queue {
                Some((account, region, name)) => {
                    let queue = self.store.get_queue(account, region, name).await.map_err(from_store)?;
                    let policy = queue.as_ref().and_then(|q| q.settings().policy.clone());
                    (names::queue_arn(region, account, name), Some(account.as_str()), policy)
                }
                None => ("*".to_owned(), None, None),
            };
            let access = Access {
                action: wanted.action,
                resource: &resource,
                facts: RequestFacts {
                    principal: &caller.principal,
                    source_ip: ctx.transport.source_ip,
                    secure_transport: ctx.transport.secure,
                    now: self.now(),
                },
            };
            let own_account = owner.is_none_or(|owner| owner == caller.principal.account_id);
            let identity = match &caller.policy {
                Some(policy) => policy.evaluate(&access),
                // A root key may do anything in its own account.
                None => Verdict { allows: own_account, denies: false },
            };
            let queue = queue_policy.map(|p| p.evaluate(&access)).unwrap_or_default();
            let allowed = !identity.denies
                && !queue.denies
                && if own_account {
                    identity.allows || queue.allows
                } else {
                    queue.allows && (caller.policy.is_none() || identity.allows)
                };
            if !allowed {
                tracing::info!(
                    principal = %caller.principal.arn(),
                    action = wanted.action,
                    %resource,
                    "request refused by policy"
                );
                return Err(sqs_error!(
                    AccessDenied,
                    "User: {} is not authorized to perform: sqs:{} on resource: {resource}",
                    caller.principal.arn(),
                    wanted.action
                ));
            }
        }
        Ok(())
    }

    /// Refuses an action of another service this server answers (`cloudwatch:GetMetricData`),
    /// which acts on no queue, unless the caller's identity policy allows it on `*`. A key
    /// without a policy (an account's root) may.
    pub(crate) fn authorize_service_action(&self, ctx: &RequestContext, action: &str) -> Result<(), SqsError> {
        let Some(caller) = ctx.caller.as_deref() else { return Ok(()) };
        let Some(policy) = &caller.policy else { return Ok(()) };
        let access = Access {
            action,
            resource: "*",
            facts: RequestFacts {
                principal: &caller.principal,
                source_ip: ctx.transport.source_ip,
                secure_transport: ctx.transport.secure,
                now: self.now(),
            },
        };
        let verdict = policy.evaluate(&access);
        if verdict.allows && !verdict.denies {
            return Ok(());
        }
        tracing::info!(principal = %caller.principal.arn(), action, "request refused by policy");
        Err(sqs_error!(
            AccessDenied,
            "User: {} is not authorized to perform: {action} on resource: *",
            caller.principal.arn()
        ))
    }
}
