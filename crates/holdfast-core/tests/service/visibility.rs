//! Visibility timeouts, ChangeMessageVisibility, receipt handles and delays.

use holdfast_api::ErrorCode;

use crate::harness::*;

#[tokio::test(start_paused = true)]
async fn a_received_message_is_hidden_until_its_timeout_ends() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[]).await;
    h.send(&url, "m").await;
    let first = h.receive(&url, 10, 30).await;
    assert_eq!(bodies(&first), ["m"]);
    assert_eq!(system(&first[0], "ApproximateReceiveCount"), "1");
    assert_eq!(h.counts(&url).await, (0, 1, 0));

    h.advance(29_999).await;
    assert!(h.receive(&url, 10, 30).await.is_empty(), "still in flight a millisecond before the timeout");
    h.advance(1).await;
    assert_eq!(h.counts(&url).await, (1, 0, 0));
    let again = h.receive(&url, 10, 30).await;
    assert_eq!(bodies(&again), ["m"]);
    assert_eq!(system(&again[0], "ApproximateReceiveCount"), "2");
    assert_eq!(system(&again[0], "ApproximateFirstReceiveTimestamp"), T0.to_string());
}

#[tokio::test(start_paused = true)]
async fn a_stale_receipt_handle_touches_nothing() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[]).await;
    h.send(&url, "m").await;
    let first = h.receive(&url, 1, 10).await.remove(0);
    h.advance(10_000).await;
    let second = h.receive(&url, 1, 10).await.remove(0);
    // SQS answers success for a stale handle, and the message stays.
    h.delete(&url, &first).await.expect("DeleteMessage with a stale handle succeeds");
    assert_eq!(h.counts(&url).await, (0, 1, 0));
    assert_code(h.change_visibility(&url, &first, 0).await, ErrorCode::ReceiptHandleIsInvalid);
    h.delete(&url, &second).await.unwrap();
    assert_eq!(h.counts(&url).await, (0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn change_visibility_moves_the_moment_a_message_reappears() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[]).await;
    h.send(&url, "m").await;
    let m = h.receive(&url, 1, 30).await.remove(0);
    h.change_visibility(&url, &m, 100).await.unwrap();
    h.advance(99_999).await;
    assert_eq!(h.counts(&url).await, (0, 1, 0));
    h.advance(1).await;
    assert_eq!(h.counts(&url).await, (1, 0, 0));
    // Visible again but received by nobody since: its lease can still hide it, as on AWS.
    h.change_visibility(&url, &m, 60).await.expect("an expired lease nobody replaced still works");
    assert_eq!(h.counts(&url).await, (0, 1, 0));
    h.change_visibility(&url, &m, 0).await.unwrap();
    h.delete(&url, &m).await.unwrap();
    assert_code(h.change_visibility(&url, &m, 60).await, ErrorCode::InvalidParameterValue);
    h.send(&url, "m").await;

    let m = h.receive(&url, 1, 30).await.remove(0);
    h.change_visibility(&url, &m, 0).await.unwrap();
    assert_eq!(h.counts(&url).await, (1, 0, 0), "a zero timeout makes it visible at once");
    // The total stays under 12 hours from the receive.
    let m = h.receive(&url, 1, 7_200).await.remove(0);
    h.advance(3_600_000).await;
    assert_code(h.change_visibility(&url, &m, 43_200).await, ErrorCode::InvalidParameterValue);
}

#[tokio::test(start_paused = true)]
async fn a_fifo_handle_whose_timeout_ran_out_cannot_delete() {
    let h = Harness::new().await;
    let url = h.create_queue("q.fifo", &[("FifoQueue", "true"), ("ContentBasedDeduplication", "true")]).await;
    h.send_fifo(&url, "m", "g").await;
    let m = h.receive(&url, 1, 10).await.remove(0);
    h.advance(10_000).await;
    // AWS refuses it: the group may already be another consumer's.
    assert_code(h.delete(&url, &m).await, ErrorCode::InvalidParameterValue);
    assert_eq!(h.counts(&url).await, (1, 0, 0), "the message stays");
    let again = h.receive(&url, 1, 10).await.remove(0);
    h.delete(&url, &again).await.expect("a handle still in flight deletes");
    h.delete(&url, &again).await.expect("deleting twice is not an error");
}

#[tokio::test(start_paused = true)]
async fn delayed_messages_become_visible_when_their_delay_ends() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[("DelaySeconds", "5")]).await;
    h.send(&url, "queue delay").await;
    h.send_delayed(&url, "own delay", 20).await;
    h.send_delayed(&url, "no delay", 0).await;
    assert_eq!(h.counts(&url).await, (1, 0, 2));
    assert_eq!(bodies(&h.receive(&url, 10, 60).await), ["no delay"]);
    h.advance(4_999).await;
    assert!(h.receive(&url, 10, 60).await.is_empty());
    h.advance(1).await;
    assert_eq!(bodies(&h.receive(&url, 10, 60).await), ["queue delay"]);
    h.advance(15_000).await;
    assert_eq!(bodies(&h.receive(&url, 10, 60).await), ["own delay"]);
}
