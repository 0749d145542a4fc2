//! Authorization as IAM decides it: identity and queue policies, accounts, explicit denies, and
//! the actions a request needs (batches as single forms, tags at creation, move destinations).

use std::sync::Arc;

use holdfast_api::types::*;
use holdfast_api::{ErrorCode, Request, Response};
use holdfast_core::policy::{Policy, PolicyKind, Principal};
use holdfast_core::{Caller, RequestContext, Transport};

use crate::harness::Harness;

const HOME: &str = "000000000000";
const OTHER: &str = "444455556666";

fn caller(account: &str, user: Option<&str>, policy: Option<&str>) -> RequestContext {
    let policy = policy.map(|text| Arc::new(Policy::parse(text, PolicyKind::Identity).expect("policy")));
    let principal = Principal { account_id: account.into(), user: user.map(str::to_owned) };
    RequestContext {
        base_url: "http://sqs.test".into(),
        sender_id: None,
        caller: Some(Arc::new(Caller { principal, policy })),
        transport: Transport { source_ip: Some("192.0.2.10".parse().unwrap()), secure: false },
        ..RequestContext::default()
    }
}

fn identity(actions: &str, resource: &str) -> String {
    format!(r#"{{"Statement":[{{"Effect":"Allow","Action":{actions},"Resource":"{resource}"}}]}}"#)
}

fn send(url: &str) -> Request {
    Request::SendMessage(SendMessageRequest { queue_url: url.into(), message_body: "m".into(), ..Default::default() })
}

fn send_batch(url: &str) -> Request {
    let entry = SendMessageBatchRequestEntry { id: "a".into(), message_body: "m".into(), ..Default::default() };
    Request::SendMessageBatch(SendMessageBatchRequest { queue_url: url.into(), entries: vec![entry] })
}

fn receive(url: &str) -> Request {
    Request::ReceiveMessage(ReceiveMessageRequest { queue_url: url.into(), ..Default::default() })
}

fn set_policy(url: &str, policy: &str) -> Request {
    Request::SetQueueAttributes(SetQueueAttributesRequest {
        queue_url: url.into(),
        attributes: [("Policy".to_owned(), policy.to_owned())].into(),
    })
}

fn create(name: &str, tags: Option<&[(&str, &str)]>) -> Request {
    Request::CreateQueue(CreateQueueRequest {
        queue_name: name.into(),
        attributes: None,
        tags: tags.map(|t| t.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
    })
}

async fn created(h: &Harness, who: &RequestContext, name: &str) -> String {
    match h.call_as(who, create(name, None)).await {
        Ok(Response::CreateQueue(r)) => r.queue_url.unwrap(),
        other => panic!("CreateQueue {name}: {other:?}"),
    }
}

fn code(result: Result<Response, holdfast_api::SqsError>) -> Option<ErrorCode> {
    result.err().map(|e| e.code)
}

fn queue_allows(principal: &str, action: &str, queue: &str) -> String {
    format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"sqs:{action}","Resource":"arn:aws:sqs:us-east-1:{queue}"}}]}}"#
    )
}

#[tokio::test(start_paused = true)]
async fn root_keys_own_their_account_and_nothing_else() {
    let h = Harness::new().await;
    let (home, other) = (caller(HOME, None, None), caller(OTHER, None, None));
    let ours = created(&h, &home, "q").await;
    let theirs = created(&h, &other, "q").await;
    assert_eq!((ours.as_str(), theirs.as_str()), ("http://sqs.test/000000000000/q", "http://sqs.test/444455556666/q"));
    assert_eq!(code(h.call_as(&home, send(&ours)).await), None);
    assert_eq!(code(h.call_as(&home, send(&theirs)).await), Some(ErrorCode::AccessDenied));
    assert_eq!(code(h.call_as(&other, receive(&ours)).await), Some(ErrorCode::AccessDenied));
    // A queue that does not exist in another account: refused the same way.
    let missing = "http://sqs.test/444455556666/missing";
    assert_eq!(code(h.call_as(&home, send(missing)).await), Some(ErrorCode::AccessDenied));
    assert_eq!(code(h.call_as(&other, send(missing)).await), Some(ErrorCode::QueueDoesNotExist));
    let listed = match h.call_as(&other, Request::ListQueues(Default::default())).await {
        Ok(Response::ListQueues(r)) => r.queue_urls.unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(listed, [theirs]);
}

#[tokio::test(start_paused = true)]
async fn identity_policies_limit_a_key_to_what_they_allow() {
    let h = Harness::new().await;
    let root = caller(HOME, None, None);
    let orders = created(&h, &root, "orders").await;
    let leads = created(&h, &root, "leads").await;
    let producer = caller(HOME, Some("producer"), Some(&identity(r#""sqs:SendMessage""#, "arn:aws:sqs:*:*:orders")));
    assert_eq!(code(h.call_as(&producer, send(&orders)).await), None);
    assert_eq!(code(h.call_as(&producer, send_batch(&orders)).await), None, "a batch needs its single form");
    assert_eq!(code(h.call_as(&producer, send(&leads)).await), Some(ErrorCode::AccessDenied));
    assert_eq!(code(h.call_as(&producer, receive(&orders)).await), Some(ErrorCode::AccessDenied));

    // Within the account, the queue's policy can allow what the identity policy does not.
    h.call_as(
        &root,
        set_policy(
            &leads,
            &queue_allows("arn:aws:iam::000000000000:user/producer", "SendMessage", "000000000000:leads"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(code(h.call_as(&producer, send(&leads)).await), None);

    // Tagging at creation needs TagQueue too.
    let creator = caller(HOME, Some("creator"), Some(&identity(r#""sqs:CreateQueue""#, "*")));
    assert_eq!(code(h.call_as(&creator, create("plain", None)).await), None);
    assert_eq!(
        code(h.call_as(&creator, create("tagged", Some(&[("team", "a")]))).await),
        Some(ErrorCode::AccessDenied)
    );
    let tagger = caller(HOME, Some("tagger"), Some(&identity(r#"["sqs:CreateQueue","sqs:TagQueue"]"#, "*")));
    assert_eq!(code(h.call_as(&tagger, create("tagged", Some(&[("team", "a")]))).await), None);

    // ListQueues is an action on no queue: only Resource "*" allows it.
    let lister = caller(HOME, Some("lister"), Some(&identity(r#""sqs:ListQueues""#, "arn:aws:sqs:*:*:*")));
    assert_eq!(code(h.call_as(&lister, Request::ListQueues(Default::default())).await), Some(ErrorCode::AccessDenied));
    let lister = caller(HOME, Some("lister"), Some(&identity(r#""sqs:ListQueues""#, "*")));
    assert_eq!(code(h.call_as(&lister, Request::ListQueues(Default::default())).await), None);
}

#[tokio::test(start_paused = true)]
async fn another_account_needs_the_queue_policy_and_its_own() {
    let h = Harness::new().await;
    let root = caller(HOME, None, None);
    let orders = created(&h, &root, "orders").await;
    let partner_root = caller(OTHER, None, None);
    let partner_user = caller(OTHER, Some("app"), Some(&identity(r#""sqs:ReceiveMessage""#, "*")));
    assert_eq!(code(h.call_as(&partner_root, send(&orders)).await), Some(ErrorCode::AccessDenied));

    h.call_as(&root, set_policy(&orders, &queue_allows(OTHER, "*", "000000000000:orders"))).await.unwrap();
    assert_eq!(code(h.call_as(&partner_root, send(&orders)).await), None, "the queue grants the account");
    assert_eq!(code(h.call_as(&partner_user, receive(&orders)).await), None, "both policies allow");
    assert_eq!(
        code(h.call_as(&partner_user, send(&orders)).await),
        Some(ErrorCode::AccessDenied),
        "the queue allows it, but the user's own policy does not"
    );
    let url = Request::GetQueueUrl(GetQueueUrlRequest {
        queue_name: "orders".into(),
        queue_owner_aws_account_id: Some(HOME.into()),
    });
    match h.call_as(&partner_root, url).await {
        Ok(Response::GetQueueUrl(r)) => assert_eq!(r.queue_url.as_deref(), Some(orders.as_str())),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn an_explicit_deny_anywhere_wins() {
    let h = Harness::new().await;
    let root = caller(HOME, None, None);
    let orders = created(&h, &root, "orders").await;
    let deny_receive = r#"{"Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"*"},{"Effect":"Deny","Action":"sqs:Receive*","Resource":"*"}]}"#;
    let user = caller(HOME, Some("u"), Some(deny_receive));
    h.call_as(&root, set_policy(&orders, &queue_allows("*", "*", "000000000000:orders"))).await.unwrap();
    assert_eq!(
        code(h.call_as(&user, receive(&orders)).await),
        Some(ErrorCode::AccessDenied),
        "identity deny beats queue allow"
    );
    assert_eq!(code(h.call_as(&user, send(&orders)).await), None);

    let deny_from_elsewhere = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"sqs:SendMessage","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;
    h.call_as(&root, set_policy(&orders, deny_from_elsewhere)).await.unwrap();
    assert_eq!(code(h.call_as(&root, send(&orders)).await), Some(ErrorCode::AccessDenied), "the root key too");
    let mut inside = root.clone();
    inside.transport.source_ip = Some("10.1.2.3".parse().unwrap());
    assert_eq!(code(h.call_as(&inside, send(&orders)).await), None);

    let over_tls_only = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"sqs:*Message","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#;
    h.call_as(&root, set_policy(&orders, over_tls_only)).await.unwrap();
    assert_eq!(code(h.call_as(&root, receive(&orders)).await), Some(ErrorCode::AccessDenied));
    let mut secure = root.clone();
    secure.transport.secure = true;
    assert_eq!(code(h.call_as(&secure, receive(&orders)).await), None);
}

#[tokio::test(start_paused = true)]
async fn a_move_task_needs_to_send_to_its_destination() {
    let h = Harness::new().await;
    let root = caller(HOME, None, None);
    let dlq = created(&h, &root, "dlq").await;
    let elsewhere = created(&h, &root, "elsewhere").await;
    let arn = |url: &str| format!("arn:aws:sqs:us-east-1:000000000000:{}", url.rsplit('/').next().unwrap());
    let mover = caller(HOME, Some("mover"), Some(&identity(r#""sqs:StartMessageMoveTask""#, "*")));
    let start = Request::StartMessageMoveTask(StartMessageMoveTaskRequest {
        source_arn: arn(&dlq),
        destination_arn: Some(arn(&elsewhere)),
        max_number_of_messages_per_second: None,
    });
    assert_eq!(code(h.call_as(&mover, start).await), Some(ErrorCode::AccessDenied));
}
