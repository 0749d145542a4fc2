//! Dead-letter queues: an exhausted message moves when it becomes due, not when someone polls.

use crate::harness::*;

async fn with_dead_letter_queue(h: &Harness, max_receive_count: u32) -> (String, String) {
    let dlq = h.create_queue("dlq", &[]).await;
    let policy = format!(r#"{{"deadLetterTargetArn":"{}","maxReceiveCount":{max_receive_count}}}"#, h.arn(&dlq).await);
    let source = h.create_queue("source", &[("RedrivePolicy", &policy)]).await;
    (source, dlq)
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_message_moves_when_its_visibility_runs_out_with_nobody_receiving() {
    let h = Harness::new().await;
    let (source, dlq) = with_dead_letter_queue(&h, 2).await;
    h.send(&source, "poison").await;
    h.receive(&source, 1, 10).await;
    h.advance(10_000).await;
    assert_eq!(h.counts(&source).await, (1, 0, 0), "received once: not exhausted");
    h.receive(&source, 1, 10).await;
    h.advance(9_999).await;
    assert_eq!(h.counts(&dlq).await, (0, 0, 0));
    h.advance(1).await;
    assert_eq!(h.counts(&source).await, (0, 0, 0));
    assert_eq!(h.counts(&dlq).await, (1, 0, 0), "moved by the timer the moment it became visible");
    let moved = h.receive(&dlq, 1, 30).await.remove(0);
    assert_eq!(moved.body, "poison");
    assert_eq!(system(&moved, "DeadLetterQueueSourceArn"), h.arn(&source).await);
    assert_eq!(system(&moved, "ApproximateReceiveCount"), "3");
}

#[tokio::test(start_paused = true)]
async fn a_receive_moves_exhausted_messages_instead_of_returning_them() {
    let h = Harness::new().await;
    let (source, dlq) = with_dead_letter_queue(&h, 1).await;
    h.send(&source, "a").await;
    h.send(&source, "b").await;
    let first = h.receive(&source, 1, 0).await;
    assert_eq!(bodies(&first), ["a"]);
    let next = h.receive(&source, 10, 30).await;
    assert_eq!(bodies(&next), ["b"], "a was received once already: it went to the dead-letter queue");
    assert_eq!(h.counts(&dlq).await, (1, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_new_redrive_policy_moves_messages_already_exhausted() {
    let h = Harness::new().await;
    let dlq = h.create_queue("dlq", &[]).await;
    let source = h.create_queue("source", &[]).await;
    h.send(&source, "m").await;
    for _ in 0..3 {
        h.receive(&source, 1, 0).await;
    }
    assert_eq!(h.counts(&source).await, (1, 0, 0));
    let policy = format!(r#"{{"deadLetterTargetArn":"{}","maxReceiveCount":2}}"#, h.arn(&dlq).await);
    h.set_attributes(&source, &[("RedrivePolicy", &policy)]).await;
    h.settle().await;
    assert_eq!(h.counts(&source).await, (0, 0, 0));
    assert_eq!(h.counts(&dlq).await, (1, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_queue_may_be_its_own_dead_letter_queue() {
    // AWS accepts it; the messages then never move anywhere and keep being delivered.
    let h = Harness::new().await;
    let url = h.create_queue("self", &[]).await;
    let arn = h.arn(&url).await;
    let policy = format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"1"}}"#);
    h.set_attributes(&url, &[("RedrivePolicy", policy.as_str())]).await;
    h.send(&url, "m").await;
    for _ in 0..3 {
        assert_eq!(bodies(&h.receive(&url, 1, 0).await), ["m"]);
    }
}
