//! AddPermission and RemovePermission edit the queue's Policy without losing concurrent edits,
//! and within the policy size limit.

use holdfast_api::types::{AddPermissionRequest, RemovePermissionRequest, SetQueueAttributesRequest};
use holdfast_api::{ErrorCode, Request};

use crate::harness::*;

fn add(url: &str, label: &str) -> Request {
    Request::AddPermission(AddPermissionRequest {
        queue_url: url.into(),
        label: label.into(),
        aws_account_ids: vec!["111122223333".into()],
        actions: vec!["SendMessage".into(), "ReceiveMessage".into()],
    })
}

fn statement_ids(policy: &str) -> Vec<String> {
    let policy: serde_json::Value = serde_json::from_str(policy).unwrap();
    let mut ids: Vec<String> =
        policy["Statement"].as_array().unwrap().iter().map(|s| s["Sid"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    ids
}

#[tokio::test(start_paused = true)]
async fn concurrent_edits_all_land() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[]).await;
    let edits: Vec<_> = (0..8)
        .map(|i| {
            let (sqs, request) = (h.sqs.clone(), add(&url, &format!("label{i}")));
            tokio::spawn(async move { sqs.handle(&Default::default(), request).await })
        })
        .collect();
    for edit in edits {
        edit.await.unwrap().unwrap();
    }
    let labels: Vec<String> = (0..8).map(|i| format!("label{i}")).collect();
    assert_eq!(statement_ids(&h.attribute(&url, "Policy").await), labels);

    let remove = RemovePermissionRequest { queue_url: url.clone(), label: "label3".into() };
    h.call(Request::RemovePermission(remove.clone())).await.unwrap();
    assert_eq!(statement_ids(&h.attribute(&url, "Policy").await).len(), 7);
    assert_code(h.call(Request::RemovePermission(remove)).await, ErrorCode::InvalidParameterValue);
}

#[tokio::test(start_paused = true)]
async fn a_policy_stays_within_its_size_limit() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[]).await;
    let mut added = 0;
    let refused = loop {
        match h.call(add(&url, &format!("a-rather-long-label-for-statement-number-{added:04}"))).await {
            Ok(_) => added += 1,
            Err(error) => break error,
        }
        assert!(added < 1_000, "the policy never hit its limit");
    };
    assert_eq!(refused.code, ErrorCode::OverLimit, "{refused:?}");
    let policy = h.attribute(&url, "Policy").await;
    assert!(policy.len() <= holdfast_api::limits::MAX_POLICY_BYTES, "{} bytes", policy.len());
    assert_eq!(statement_ids(&policy).len(), added);
}

#[tokio::test(start_paused = true)]
async fn a_queue_holds_at_most_20_permissions() {
    // The policy quotas: 20 statements (and 50 principals, 10 conditions, 7 actions each).
    let h = Harness::new().await;
    let url = h.create_queue("q", &[]).await;
    for i in 0..20 {
        h.call(add(&url, &format!("p{i}"))).await.unwrap();
    }
    let refused = h.call(add(&url, "p20")).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::OverLimit, "{refused:?}");
    assert_eq!(statement_ids(&h.attribute(&url, "Policy").await).len(), 20);

    let statement = |i: usize| {
        format!(r#"{{"Sid":"s{i}","Effect":"Allow","Principal":"*","Action":"sqs:SendMessage","Resource":"*"}}"#)
    };
    let policy = |n: usize| format!(r#"{{"Statement":[{}]}}"#, (0..n).map(statement).collect::<Vec<_>>().join(","));
    let set = |text: String| {
        let request = SetQueueAttributesRequest {
            queue_url: url.clone(),
            attributes: [("Policy".to_string(), text)].into_iter().collect(),
        };
        h.call(Request::SetQueueAttributes(request))
    };
    set(policy(20)).await.expect("20 statements");
    assert_code(set(policy(21)).await, ErrorCode::InvalidAttributeValue);
}
