//! Long polling: a waiting receive answers the moment a message can be had, and not before.

use holdfast_api::types::DeleteQueueRequest;
use holdfast_api::{ErrorCode, Request};

use crate::harness::*;

#[tokio::test(start_paused = true)]
async fn a_send_wakes_a_waiting_receive_at_once() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[]).await;
    let poll = h.long_poll(&url, 30, 20).await;
    assert!(!answered(&poll));
    h.send(&url, "m").await;
    h.settle().await;
    assert!(answered(&poll), "no time passed, yet the poll has its message");
    assert_eq!(bodies(&poll.await.unwrap().unwrap()), ["m"]);
}

#[tokio::test(start_paused = true)]
async fn an_empty_poll_answers_when_its_wait_ends() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[]).await;
    let poll = h.long_poll(&url, 30, 20).await;
    h.advance(19_999).await;
    assert!(!answered(&poll));
    h.advance(1).await;
    assert!(answered(&poll));
    assert!(poll.await.unwrap().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_waiting_receive_wakes_when_a_hidden_message_reappears() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[]).await;
    h.send(&url, "m").await;
    h.receive(&url, 1, 10).await;
    let poll = h.long_poll(&url, 30, 20).await;
    h.advance(9_999).await;
    assert!(!answered(&poll), "the message is still in flight");
    h.advance(1).await;
    assert!(answered(&poll), "woken by the timer exactly when the visibility timeout ran out");
    assert_eq!(bodies(&poll.await.unwrap().unwrap()), ["m"]);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_receive_wakes_when_a_delay_ends() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[]).await;
    let poll = h.long_poll(&url, 30, 20).await;
    h.send_delayed(&url, "later", 7).await;
    h.advance(6_999).await;
    assert!(!answered(&poll));
    h.advance(1).await;
    assert!(answered(&poll));
    assert_eq!(bodies(&poll.await.unwrap().unwrap()), ["later"]);
}

#[tokio::test(start_paused = true)]
async fn one_message_wakes_one_of_many_waiters_and_the_rest_keep_waiting() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[]).await;
    let mut polls = Vec::new();
    for _ in 0..3 {
        polls.push(h.long_poll(&url, 30, 20).await);
    }
    h.send(&url, "only").await;
    h.settle().await;
    assert_eq!(polls.iter().filter(|p| answered(p)).count(), 1);
    h.advance(20_000).await;
    let mut received = 0;
    for poll in polls {
        received += poll.await.unwrap().unwrap().len();
    }
    assert_eq!(received, 1, "the message went to exactly one waiter");
}

#[tokio::test(start_paused = true)]
async fn deleting_the_queue_ends_its_long_polls() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[]).await;
    let poll = h.long_poll(&url, 30, 20).await;
    h.call(Request::DeleteQueue(DeleteQueueRequest { queue_url: url.clone() })).await.unwrap();
    h.settle().await;
    assert!(answered(&poll), "the waiter noticed without its wait running out");
    assert_code(poll.await.unwrap(), ErrorCode::QueueDoesNotExist);
}
