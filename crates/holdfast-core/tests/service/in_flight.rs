//! The in-flight limit (AWS: 120,000 per queue), made small here.

use holdfast_api::{ErrorCode, Request};
use holdfast_core::ServiceConfig;

use crate::harness::*;

async fn limited(limit: u64) -> Harness {
    Harness::with_config(ServiceConfig { max_in_flight: limit, ..ServiceConfig::default() }).await
}

#[tokio::test(start_paused = true)]
async fn a_standard_queue_at_the_limit_answers_over_limit() {
    let h = limited(5).await;
    let url = h.create_queue("q", &[]).await;
    for i in 0..8 {
        h.send(&url, &format!("m{i}")).await;
    }
    let held = h.receive(&url, 3, 60).await;
    assert_eq!(held.len(), 3);
    assert_eq!(h.receive(&url, 10, 60).await.len(), 2, "no more than the room left");
    let refused = h.call(Request::ReceiveMessage(Harness::receive_request(&url, 1, 60, 0))).await;
    let error = refused.expect_err("at the limit");
    assert_eq!(error.code, ErrorCode::OverLimit);
    assert!(error.message.starts_with("Too many messages have been received without being deleted."));
    // Deleting one makes room for one.
    h.delete(&url, &held[0]).await.unwrap();
    assert_eq!(h.receive(&url, 10, 60).await.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn room_comes_back_as_messages_are_deleted_or_time_out() {
    let h = limited(2).await;
    let url = h.create_queue("q", &[]).await;
    for i in 0..4 {
        h.send(&url, &format!("m{i}")).await;
    }
    let held = h.receive(&url, 2, 60).await;
    assert_eq!(held.len(), 2);
    h.delete(&url, &held[0]).await.unwrap();
    assert_eq!(bodies(&h.receive(&url, 10, 60).await), ["m2"]);
    // Both held messages time out: room for two again.
    h.advance(60_000).await;
    assert_eq!(h.receive(&url, 10, 60).await.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_fifo_queue_at_the_limit_returns_nothing_without_an_error() {
    let h = limited(2).await;
    let url = h.create_queue("q.fifo", &[("FifoQueue", "true")]).await;
    for (body, group) in [("a1", "a"), ("b1", "b"), ("c1", "c")] {
        h.send_fifo(&url, body, group).await;
    }
    assert_eq!(h.receive(&url, 10, 60).await.len(), 2);
    assert!(h.receive(&url, 10, 60).await.is_empty(), "AWS returns nothing rather than an error");
}
