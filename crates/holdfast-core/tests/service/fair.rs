//! Fair queues: one tenant's flood does not hold up the others.

use holdfast_api::types::SendMessageRequest;

use crate::harness::{bodies, Harness};

async fn send_as(h: &Harness, url: &str, tenant: &str, body: &str) {
    let request = SendMessageRequest {
        queue_url: url.into(),
        message_body: body.into(),
        message_group_id: Some(tenant.into()),
        ..Default::default()
    };
    h.send_with(request).await;
}

#[tokio::test(start_paused = true)]
async fn quiet_tenants_are_served_before_a_flood() {
    let h = Harness::new().await;
    let url = h.create_queue("tenants", &[]).await;
    for i in 0..200 {
        send_as(&h, &url, "flood", &format!("flood-{i}")).await;
    }
    for tenant in ["a", "b", "c"] {
        send_as(&h, &url, tenant, &format!("{tenant}-1")).await;
    }
    // Oldest first while nobody is known to be noisy: the consumers take up the flood.
    for _ in 0..4 {
        let got = h.receive(&url, 10, 300).await;
        assert!(bodies(&got).iter().all(|b| b.starts_with("flood")));
    }
    // A second later the load is sampled: "flood" holds 40 of 40 in flight, so it is noisy, and
    // the quiet tenants' messages, sent after the flood, come first.
    h.advance(1_000).await;
    let got = h.receive(&url, 10, 300).await;
    let mut got = bodies(&got);
    got.sort_unstable();
    assert_eq!(&got[..3], ["a-1", "b-1", "c-1"]);
    assert!(got[3..].iter().all(|b| b.starts_with("flood")), "the flood fills what is left: {got:?}");

    let queues = h.sqs.queues().await.unwrap();
    let record = queues.iter().find(|q| q.name == "tenants").unwrap();
    let metrics = h.sqs.fair_queue_metrics(record).await.unwrap().expect("a fair queue");
    assert_eq!(metrics.approximate_number_of_noisy_groups, 1);
    assert_eq!(metrics.approximate_number_of_messages_not_visible_in_quiet_groups, 3);
    assert_eq!(metrics.approximate_number_of_messages_visible_in_quiet_groups, 0);

    // Five minutes without a send from the flood: it is quiet again, and oldest-first returns.
    h.advance(5 * 60 * 1000).await;
    send_as(&h, &url, "a", "a-2").await;
    let got = h.receive(&url, 1, 300).await;
    assert!(bodies(&got)[0].starts_with("flood"), "{:?}", bodies(&got));
}
