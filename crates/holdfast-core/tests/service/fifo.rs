//! FIFO queues: order within a group, group locks, deduplication windows.

use holdfast_api::types::SendMessageRequest;

use crate::harness::*;

#[tokio::test(start_paused = true)]
async fn a_group_in_flight_is_locked_until_its_head_comes_back_or_goes() {
    let h = Harness::new().await;
    let url = h.create_queue("q.fifo", &[("FifoQueue", "true")]).await;
    for (body, group) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
        h.send_fifo(&url, body, group).await;
    }
    let first = h.receive(&url, 1, 10).await;
    assert_eq!(bodies(&first), ["a1"]);
    assert_eq!(bodies(&h.receive(&url, 10, 60).await), ["b1"], "group a is locked while a1 is in flight");
    assert!(h.receive(&url, 10, 10).await.is_empty());

    // a1's timeout runs out: it comes back first, ahead of a2.
    h.advance(10_000).await;
    let again = h.receive(&url, 1, 10).await;
    assert_eq!(bodies(&again), ["a1"]);
    assert_eq!(system(&again[0], "ApproximateReceiveCount"), "2");
    h.delete(&url, &again[0]).await.unwrap();
    assert_eq!(bodies(&h.receive(&url, 10, 10).await), ["a2"], "deleting the head unlocks the group");
}

#[tokio::test(start_paused = true)]
async fn one_receive_takes_a_groups_messages_in_order() {
    let h = Harness::new().await;
    let url = h.create_queue("q.fifo", &[("FifoQueue", "true")]).await;
    for i in 1..=4 {
        h.send_fifo(&url, &format!("m{i}"), "g").await;
    }
    let got = h.receive(&url, 10, 30).await;
    assert_eq!(bodies(&got), ["m1", "m2", "m3", "m4"]);
    let numbers: Vec<u128> = got.iter().map(|m| system(m, "SequenceNumber").parse().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "sequence numbers grow: {numbers:?}");
}

#[tokio::test(start_paused = true)]
async fn a_deduplication_id_is_remembered_for_five_minutes_even_after_delete() {
    let h = Harness::new().await;
    let url = h.create_queue("q.fifo", &[("FifoQueue", "true")]).await;
    let send = |body: &str| SendMessageRequest {
        queue_url: url.clone(),
        message_body: body.into(),
        message_group_id: Some("g".into()),
        message_deduplication_id: Some("same".into()),
        ..Default::default()
    };
    let first = h.send_with(send("one")).await;
    let m = h.receive(&url, 1, 30).await.remove(0);
    h.delete(&url, &m).await.unwrap();
    h.advance(299_999).await;
    assert_eq!(h.send_with(send("two")).await, first, "a duplicate reports the first message's id");
    assert!(h.receive(&url, 10, 30).await.is_empty(), "and enqueues nothing");
    h.advance(1).await;
    let third = h.send_with(send("three")).await;
    assert_ne!(third, first, "the window has passed: a new message");
    assert_eq!(bodies(&h.receive(&url, 10, 30).await), ["three"]);
}
