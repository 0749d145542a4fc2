//! Message move tasks (dead-letter queue redrive).

use holdfast_api::types::*;
use holdfast_api::{ErrorCode, Request, Response};

use crate::harness::*;

async fn dead_lettered(h: &Harness, count: usize) -> (String, String) {
    let dlq = h.create_queue("dlq", &[]).await;
    let policy = format!(r#"{{"deadLetterTargetArn":"{}","maxReceiveCount":1}}"#, h.arn(&dlq).await);
    let source = h.create_queue("source", &[("RedrivePolicy", &policy)]).await;
    for i in 0..count {
        h.send(&source, &format!("m{i}")).await;
    }
    h.receive(&source, 10, 0).await;
    assert!(h.receive(&source, 10, 0).await.is_empty(), "every message moved on its second receive");
    assert_eq!(h.counts(&dlq).await, (count as u64, 0, 0));
    (source, dlq)
}

async fn start(h: &Harness, dlq: &str, rate: Option<i64>) -> Result<String, holdfast_api::SqsError> {
    let request = StartMessageMoveTaskRequest {
        source_arn: h.arn(dlq).await,
        destination_arn: None,
        max_number_of_messages_per_second: rate,
    };
    match h.call(Request::StartMessageMoveTask(request)).await? {
        Response::StartMessageMoveTask(r) => Ok(r.task_handle.expect("a task handle")),
        other => panic!("{other:?}"),
    }
}

async fn tasks(h: &Harness, dlq: &str) -> Vec<ListMessageMoveTasksResultEntry> {
    let request = ListMessageMoveTasksRequest { source_arn: h.arn(dlq).await, max_results: Some(10) };
    match h.call(Request::ListMessageMoveTasks(request)).await {
        Ok(Response::ListMessageMoveTasks(r)) => r.results.unwrap_or_default(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_move_task_returns_messages_to_their_source_queue() {
    let h = Harness::new().await;
    let (source, dlq) = dead_lettered(&h, 3).await;
    start(&h, &dlq, None).await.unwrap();
    h.settle().await;
    assert_eq!(h.counts(&dlq).await, (0, 0, 0));
    assert_eq!(h.counts(&source).await, (3, 0, 0));
    let listed = tasks(&h, &dlq).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status.as_deref(), Some("COMPLETED"));
    assert_eq!(listed[0].approximate_number_of_messages_moved, Some(3));
    assert_eq!(listed[0].task_handle, None, "only a running task lists its handle");
    let back = h.receive(&source, 10, 30).await;
    assert_eq!(bodies(&back), ["m0", "m1", "m2"]);
    assert_eq!(system(&back[0], "ApproximateReceiveCount"), "1", "a moved message starts over");
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_task_moves_at_its_rate_and_stops_when_cancelled() {
    let h = Harness::new().await;
    let (source, dlq) = dead_lettered(&h, 5).await;
    let handle = start(&h, &dlq, Some(1)).await.unwrap();
    h.settle().await;
    assert_eq!(h.counts(&source).await.0, 1, "one message in the first second");
    assert_code(start(&h, &dlq, None).await, ErrorCode::InvalidParameterValue);
    h.advance(1_000).await;
    assert_eq!(h.counts(&source).await.0, 2);

    let cancel = CancelMessageMoveTaskRequest { task_handle: handle.clone() };
    match h.call(Request::CancelMessageMoveTask(cancel.clone())).await.unwrap() {
        Response::CancelMessageMoveTask(r) => assert_eq!(r.approximate_number_of_messages_moved, Some(2)),
        other => panic!("{other:?}"),
    }
    h.advance(10_000).await;
    assert_eq!(h.counts(&source).await.0, 2, "nothing moves after the cancellation");
    assert_eq!(h.counts(&dlq).await.0, 3);
    assert_eq!(tasks(&h, &dlq).await[0].status.as_deref(), Some("CANCELLED"));
    assert_code(h.call(Request::CancelMessageMoveTask(cancel)).await, ErrorCode::InvalidParameterValue);
    // The source is free for a new task.
    start(&h, &dlq, None).await.unwrap();
}
