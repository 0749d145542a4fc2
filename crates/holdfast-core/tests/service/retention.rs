//! Retention: messages leave when their retention period ends, whether or not anyone receives.

use crate::harness::*;

#[tokio::test(start_paused = true)]
async fn messages_expire_when_their_retention_ends_without_any_receive() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[("MessageRetentionPeriod", "60")]).await;
    h.send(&url, "first").await;
    h.advance(30_000).await;
    h.send(&url, "second").await;
    // A message is gone once more than its retention period has passed since it was sent.
    h.advance(30_000).await;
    assert_eq!(h.counts(&url).await, (2, 0, 0));
    h.advance(1).await;
    assert_eq!(h.counts(&url).await, (1, 0, 0), "the first expired on time, by the timer alone");
    h.advance(29_999).await;
    assert_eq!(h.counts(&url).await, (1, 0, 0));
    h.advance(1).await;
    assert_eq!(h.counts(&url).await, (0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn in_flight_messages_expire_too() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[("MessageRetentionPeriod", "60")]).await;
    h.send(&url, "m").await;
    h.receive(&url, 1, 43_200).await;
    h.advance(60_001).await;
    assert_eq!(h.counts(&url).await, (0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn shortening_the_retention_period_expires_old_messages_at_once() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[]).await;
    h.send(&url, "old").await;
    h.advance(120_000).await;
    h.send(&url, "new").await;
    assert_eq!(h.counts(&url).await, (2, 0, 0), "the default period is four days");
    h.set_attributes(&url, &[("MessageRetentionPeriod", "60")]).await;
    h.settle().await;
    assert_eq!(bodies(&h.receive(&url, 10, 30).await), ["new"]);
}
