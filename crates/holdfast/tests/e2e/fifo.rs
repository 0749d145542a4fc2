//! FIFO queues through aws-sdk-sqs on every storage engine: creation rules, deduplication,
//! sequence numbers, strict order per group, group locks, receive-attempt retries.

use std::time::Duration;

use crate::common::{create_queue_with, error_code, unique, TestServer};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry};

on_every_engine!(
    creation_rules,
    sends_need_a_group_and_a_deduplication_id,
    duplicates_are_accepted_but_not_enqueued,
    content_based_and_per_group_deduplication,
    order_within_a_group_and_group_locks,
    visibility_expiry_redelivers_the_head_first,
    receive_request_attempt_id_returns_the_same_messages,
);

fn fifo_name(prefix: &str) -> String {
    unique(prefix) + ".fifo"
}

async fn fifo_queue(client: &aws_sdk_sqs::Client, extra: &[(&str, &str)]) -> String {
    let mut attributes = vec![("FifoQueue", "true")];
    attributes.extend_from_slice(extra);
    create_queue_with(client, &fifo_name("f"), &attributes).await
}

async fn send(
    client: &aws_sdk_sqs::Client,
    url: &str,
    group: &str,
    body: &str,
) -> aws_sdk_sqs::operation::send_message::SendMessageOutput {
    client
        .send_message()
        .queue_url(url)
        .message_body(body)
        .message_group_id(group)
        .message_deduplication_id(body)
        .send()
        .await
        .unwrap()
}

async fn receive(
    client: &aws_sdk_sqs::Client,
    url: &str,
    max: i32,
    visibility: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(max)
        .visibility_timeout(visibility)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

fn bodies(messages: &[aws_sdk_sqs::types::Message]) -> Vec<String> {
    messages.iter().map(|m| m.body.clone().unwrap()).collect()
}

async fn creation_rules(server: TestServer) {
    let client = server.client();
    let missing_attribute = client.create_queue().queue_name(fifo_name("noattr")).send().await.unwrap_err();
    assert_eq!(error_code(missing_attribute).as_deref(), Some("InvalidParameterValue"));
    let not_fifo_name = client
        .create_queue()
        .queue_name(unique("plain"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await;
    assert_eq!(error_code(not_fifo_name.unwrap_err()).as_deref(), Some("InvalidParameterValue"));
    let fifo_attribute_on_standard = client
        .create_queue()
        .queue_name(unique("std"))
        .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
        .send()
        .await;
    assert_eq!(error_code(fifo_attribute_on_standard.unwrap_err()).as_deref(), Some("InvalidAttributeName"));

    let url = fifo_queue(&client, &[]).await;
    let all =
        client.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::All).send().await.unwrap();
    let all = all.attributes.unwrap();
    assert_eq!(all[&QueueAttributeName::FifoQueue], "true");
    assert_eq!(all[&QueueAttributeName::ContentBasedDeduplication], "false");
    assert_eq!(all[&QueueAttributeName::DeduplicationScope], "queue");
    assert_eq!(all[&QueueAttributeName::FifoThroughputLimit], "perQueue");
    let change_type =
        client.set_queue_attributes().queue_url(&url).attributes(QueueAttributeName::FifoQueue, "false").send().await;
    assert_eq!(error_code(change_type.unwrap_err()).as_deref(), Some("InvalidAttributeValue"), "a change of type");
    let high_throughput_without_group_scope = client
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::FifoThroughputLimit, "perMessageGroupId")
        .send()
        .await;
    assert_eq!(error_code(high_throughput_without_group_scope.unwrap_err()).as_deref(), Some("InvalidAttributeValue"));
    client
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::FifoThroughputLimit, "perMessageGroupId")
        .attributes(QueueAttributeName::DeduplicationScope, "messageGroup")
        .send()
        .await
        .unwrap();
}

async fn sends_need_a_group_and_a_deduplication_id(server: TestServer) {
    let client = server.client();
    let url = fifo_queue(&client, &[]).await;
    let no_group = client.send_message().queue_url(&url).message_body("x").message_deduplication_id("d").send().await;
    assert_eq!(error_code(no_group.unwrap_err()).as_deref(), Some("MissingParameter"));
    let no_dedup = client.send_message().queue_url(&url).message_body("x").message_group_id("g").send().await;
    assert_eq!(error_code(no_dedup.unwrap_err()).as_deref(), Some("InvalidParameterValue"));
    let per_message_delay = client
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .message_group_id("g")
        .message_deduplication_id("d")
        .delay_seconds(5)
        .send()
        .await;
    assert_eq!(error_code(per_message_delay.unwrap_err()).as_deref(), Some("InvalidParameterValue"));
}

async fn duplicates_are_accepted_but_not_enqueued(server: TestServer) {
    let client = server.client();
    let url = fifo_queue(&client, &[]).await;
    let first = send(&client, &url, "g", "one").await;
    let again = send(&client, &url, "g", "one").await;
    assert_eq!(again.message_id, first.message_id, "a duplicate reports the first message");
    let sequence: u128 = first.sequence_number.clone().expect("FIFO sends report a SequenceNumber").parse().unwrap();
    assert!(sequence >= 10u128.pow(19), "a large number");
    let second = send(&client, &url, "g", "two").await;
    assert!(second.sequence_number.unwrap().parse::<u128>().unwrap() > sequence);

    let messages = receive(&client, &url, 10, 30).await;
    assert_eq!(bodies(&messages), vec!["one", "two"]);
    let attributes = messages[0].attributes.as_ref().unwrap();
    assert_eq!(attributes[&MessageSystemAttributeName::MessageGroupId], "g");
    assert_eq!(attributes[&MessageSystemAttributeName::MessageDeduplicationId], "one");
    assert_eq!(attributes[&MessageSystemAttributeName::SequenceNumber], first.sequence_number.unwrap());

    // The deduplication id is remembered after the message is deleted.
    for message in &messages {
        client
            .delete_message()
            .queue_url(&url)
            .receipt_handle(message.receipt_handle.clone().unwrap())
            .send()
            .await
            .unwrap();
    }
    send(&client, &url, "g", "one").await;
    assert!(receive(&client, &url, 10, 30).await.is_empty(), "deduplicated within 5 minutes even after delete");

    let batch = client
        .send_message_batch()
        .queue_url(&url)
        .entries(
            SendMessageBatchRequestEntry::builder()
                .id("a")
                .message_body("b1")
                .message_group_id("g")
                .message_deduplication_id("same")
                .build()
                .unwrap(),
        )
        .entries(
            SendMessageBatchRequestEntry::builder()
                .id("b")
                .message_body("b2")
                .message_group_id("g")
                .message_deduplication_id("same")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(batch.successful.len(), 2);
    assert_eq!(batch.successful[0].message_id, batch.successful[1].message_id);
    assert_eq!(bodies(&receive(&client, &url, 10, 30).await), vec!["b1"]);
}

async fn content_based_and_per_group_deduplication(server: TestServer) {
    let client = server.client();
    let url = fifo_queue(&client, &[("ContentBasedDeduplication", "true")]).await;
    for _ in 0..2 {
        client.send_message().queue_url(&url).message_body("same body").message_group_id("g").send().await.unwrap();
    }
    let messages = receive(&client, &url, 10, 30).await;
    assert_eq!(bodies(&messages), vec!["same body"]);
    assert_eq!(
        messages[0].attributes.as_ref().unwrap()[&MessageSystemAttributeName::MessageDeduplicationId],
        hex_sha256("same body"),
        "the content-based id is the SHA-256 of the body"
    );

    let url = fifo_queue(&client, &[("DeduplicationScope", "messageGroup")]).await;
    for group in ["a", "b", "a"] {
        client
            .send_message()
            .queue_url(&url)
            .message_body(group)
            .message_group_id(group)
            .message_deduplication_id("id")
            .send()
            .await
            .unwrap();
    }
    let mut received = bodies(&receive(&client, &url, 10, 30).await);
    received.sort();
    assert_eq!(received, vec!["a", "b"], "ids are unique per group with messageGroup scope");
}

fn hex_sha256(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

async fn order_within_a_group_and_group_locks(server: TestServer) {
    let client = server.client();
    let url = fifo_queue(&client, &[]).await;
    for (group, body) in [("g1", "g1-1"), ("g2", "g2-1"), ("g1", "g1-2"), ("g1", "g1-3"), ("g2", "g2-2")] {
        send(&client, &url, group, body).await;
    }
    let first = receive(&client, &url, 1, 30).await;
    assert_eq!(bodies(&first), vec!["g1-1"]);
    let second = receive(&client, &url, 10, 30).await;
    assert_eq!(bodies(&second), vec!["g2-1", "g2-2"], "g1 is locked while g1-1 is in flight; g2 flows");
    assert!(receive(&client, &url, 10, 30).await.is_empty(), "both groups are locked");
    client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(first[0].receipt_handle.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        bodies(&receive(&client, &url, 10, 30).await),
        vec!["g1-2", "g1-3"],
        "as many of one group as possible, in order"
    );
}

async fn visibility_expiry_redelivers_the_head_first(server: TestServer) {
    let client = server.client();
    let url = fifo_queue(&client, &[]).await;
    for body in ["m1", "m2", "m3"] {
        send(&client, &url, "g", body).await;
    }
    let first = receive(&client, &url, 1, 1).await;
    assert_eq!(bodies(&first), vec!["m1"]);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let again = receive(&client, &url, 10, 30).await;
    assert_eq!(bodies(&again), vec!["m1", "m2", "m3"]);
    assert_eq!(again[0].attributes.as_ref().unwrap()[&MessageSystemAttributeName::ApproximateReceiveCount], "2");
}

async fn receive_request_attempt_id_returns_the_same_messages(server: TestServer) {
    let client = server.client();
    let url = fifo_queue(&client, &[]).await;
    for body in ["a", "b"] {
        send(&client, &url, "g", body).await;
    }
    let attempt = |id: &'static str| {
        client.receive_message().queue_url(&url).max_number_of_messages(10).receive_request_attempt_id(id).send()
    };
    let first = attempt("retry-1").await.unwrap().messages.unwrap();
    let retried = attempt("retry-1").await.unwrap().messages.unwrap();
    assert_eq!(bodies(&first), bodies(&retried));
    let handles =
        |m: &[aws_sdk_sqs::types::Message]| m.iter().map(|m| m.receipt_handle.clone().unwrap()).collect::<Vec<_>>();
    assert_eq!(handles(&first), handles(&retried), "the same receipt handles");
    assert!(attempt("another").await.unwrap().messages.is_none(), "a new attempt finds the group locked");
}
