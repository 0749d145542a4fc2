//! Sending, receiving, deleting and hiding messages through aws-sdk-sqs, against the real binary.

use std::time::{Duration, Instant};

use crate::common::{create_queue, unique, TestServer};
use aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityError;
use aws_sdk_sqs::operation::delete_message::DeleteMessageError;
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageAttributeValue,
    MessageSystemAttributeName, MessageSystemAttributeValue, QueueAttributeName, SendMessageBatchRequestEntry,
};
use md5::{Digest, Md5};

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

fn string_attribute(data_type: &str, value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type(data_type).string_value(value).build().unwrap()
}

#[tokio::test]
async fn round_trip_with_attributes_and_digests() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &unique("rt")).await;
    let body = "héllo ✓ \r\n <&> \"quoted\"";
    let sent = client
        .send_message()
        .queue_url(&url)
        .message_body(body)
        .message_attributes("b", string_attribute("Number", "42"))
        .message_attributes("a", string_attribute("String", "hi"))
        .message_attributes(
            "c",
            MessageAttributeValue::builder()
                .data_type("Binary.png")
                .binary_value(Blob::new(vec![0, 255]))
                .build()
                .unwrap(),
        )
        .message_system_attributes(
            aws_sdk_sqs::types::MessageSystemAttributeNameForSends::AwsTraceHeader,
            MessageSystemAttributeValue::builder()
                .data_type("String")
                .string_value("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(sent.md5_of_message_body.as_deref(), Some(md5_hex(body.as_bytes()).as_str()));
    assert_eq!(sent.md5_of_message_attributes.as_deref(), Some("b536df4a44b21b4124ef7ed21374564e"));
    assert_eq!(sent.md5_of_message_system_attributes.as_deref(), Some("5ae4d5d7636402d80f4eb6d213245a88"));

    let received = client
        .receive_message()
        .queue_url(&url)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let messages = received.messages.unwrap();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message.body.as_deref(), Some(body));
    assert_eq!(message.message_id, sent.message_id);
    assert_eq!(message.md5_of_body.as_deref(), Some(md5_hex(body.as_bytes()).as_str()));
    assert_eq!(message.md5_of_message_attributes.as_deref(), Some("b536df4a44b21b4124ef7ed21374564e"));
    let attributes = message.attributes.as_ref().unwrap();
    assert_eq!(attributes[&MessageSystemAttributeName::ApproximateReceiveCount], "1");
    // Without authentication every request acts as the server's account root, as AWS reports it.
    assert_eq!(attributes[&MessageSystemAttributeName::SenderId], "000000000000");
    assert!(attributes[&MessageSystemAttributeName::AwsTraceHeader].starts_with("Root=1-5759e988"));
    let sent_at: i64 = attributes[&MessageSystemAttributeName::SentTimestamp].parse().unwrap();
    assert!(sent_at > 1_600_000_000_000, "SentTimestamp is epoch milliseconds");
    let user = message.message_attributes.as_ref().unwrap();
    assert_eq!(user["c"].binary_value.as_ref().unwrap().as_ref(), &[0, 255]);
    assert_eq!(user["c"].data_type, "Binary.png");

    client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(message.receipt_handle.clone().unwrap())
        .send()
        .await
        .unwrap();
    let again = client.receive_message().queue_url(&url).send().await.unwrap();
    assert!(again.messages.is_none(), "an empty receive has no Messages member");
}

#[tokio::test]
async fn attribute_digest_covers_exactly_the_returned_subset() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &unique("subset")).await;
    client
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .message_attributes("trace.id", string_attribute("String", "t1"))
        .message_attributes("trace.span", string_attribute("String", "s1"))
        .message_attributes("other", string_attribute("String", "o"))
        .send()
        .await
        .unwrap();
    let received = client
        .receive_message()
        .queue_url(&url)
        .message_attribute_names("trace.*")
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    let message = &received.messages.unwrap()[0];
    let names: Vec<_> = message
        .message_attributes
        .as_ref()
        .unwrap()
        .keys()
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(names, vec!["trace.id", "trace.span"]);
    let mut buffer = Vec::new();
    for (name, value) in [("trace.id", "t1"), ("trace.span", "s1")] {
        for part in [name.as_bytes(), b"String"] {
            buffer.extend_from_slice(&(part.len() as u32).to_be_bytes());
            buffer.extend_from_slice(part);
        }
        buffer.push(1);
        buffer.extend_from_slice(&(value.len() as u32).to_be_bytes());
        buffer.extend_from_slice(value.as_bytes());
    }
    assert_eq!(message.md5_of_message_attributes.as_deref(), Some(md5_hex(&buffer).as_str()));

    let none = client.receive_message().queue_url(&url).send().await.unwrap();
    let message = &none.messages.unwrap()[0];
    assert!(message.message_attributes.is_none() && message.md5_of_message_attributes.is_none());
}

#[tokio::test]
async fn visibility_timeout_redelivers_and_stale_handles_do_nothing() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &unique("vis")).await;
    client.send_message().queue_url(&url).message_body("once").send().await.unwrap();

    let first = client.receive_message().queue_url(&url).visibility_timeout(1).send().await.unwrap().messages.unwrap();
    let stale_handle = first[0].receipt_handle.clone().unwrap();
    assert!(
        client.receive_message().queue_url(&url).send().await.unwrap().messages.is_none(),
        "hidden while in flight"
    );

    // A long poll wakes when the visibility timeout ends.
    let started = Instant::now();
    let second = client
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(10)
        .visibility_timeout(30)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(8), "woke when the message became visible");
    let fresh_handle = second[0].receipt_handle.clone().unwrap();
    assert_ne!(fresh_handle, stale_handle);
    assert_eq!(second[0].attributes.as_ref().unwrap()[&MessageSystemAttributeName::ApproximateReceiveCount], "2");

    // The stale handle's delete succeeds, as SQS documents, but must not delete the redelivery.
    client.delete_message().queue_url(&url).receipt_handle(&stale_handle).send().await.unwrap();
    let error = client
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(&stale_handle)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.into_service_error().meta().code(), Some("ReceiptHandleIsInvalid"));
    let counts = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(counts[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible], "1");

    // Making it visible again through the current handle works.
    client
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(&fresh_handle)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    let third = client.receive_message().queue_url(&url).send().await.unwrap().messages.unwrap();
    client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(third[0].receipt_handle.clone().unwrap())
        .send()
        .await
        .unwrap();
    let counts = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(counts[&QueueAttributeName::ApproximateNumberOfMessages], "0");
    assert_eq!(counts[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible], "0");
}

#[tokio::test]
async fn malformed_receipt_handles_are_rejected() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &unique("bad-rh")).await;
    let error = client.delete_message().queue_url(&url).receipt_handle("not-a-handle").send().await.unwrap_err();
    assert!(matches!(error.into_service_error(), DeleteMessageError::ReceiptHandleIsInvalid(_)));
    let error = client
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle("nope")
        .visibility_timeout(1)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(error.into_service_error(), ChangeMessageVisibilityError::ReceiptHandleIsInvalid(_)));
}

#[tokio::test]
async fn an_expired_handle_nobody_replaced_still_changes_visibility() {
    // AWS accepts it and hides the message again; once deleted, the handle is an invalid value.
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &unique("expired")).await;
    client.send_message().queue_url(&url).message_body("m").send().await.unwrap();
    let handle = client.receive_message().queue_url(&url).visibility_timeout(1).send().await.unwrap().messages.unwrap()
        [0]
    .receipt_handle
    .clone()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let change = |timeout: i32| {
        client.change_message_visibility().queue_url(&url).receipt_handle(&handle).visibility_timeout(timeout).send()
    };
    change(30).await.expect("nobody received the message since");
    let hidden = client.receive_message().queue_url(&url).send().await.unwrap();
    assert!(hidden.messages.unwrap_or_default().is_empty(), "hidden again by the change");
    client.delete_message().queue_url(&url).receipt_handle(&handle).send().await.unwrap();
    let error = change(30).await.unwrap_err().into_service_error();
    assert_eq!(error.meta().code(), Some("InvalidParameterValue"));
    assert!(error
        .meta()
        .message()
        .unwrap()
        .ends_with("Message does not exist or is not available for visibility timeout change."));
}

#[tokio::test]
async fn long_poll_wakes_on_send_and_times_out_empty() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &unique("poll")).await;

    let started = Instant::now();
    let empty = client.receive_message().queue_url(&url).wait_time_seconds(1).send().await.unwrap();
    assert!(empty.messages.is_none());
    assert!(started.elapsed() >= Duration::from_millis(900), "waited for the full WaitTimeSeconds");

    let waiter = {
        let client = client.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let received = client.receive_message().queue_url(&url).wait_time_seconds(20).send().await.unwrap();
            (started.elapsed(), received.messages.unwrap_or_default())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    client.send_message().queue_url(&url).message_body("wake").send().await.unwrap();
    let (elapsed, messages) = waiter.await.unwrap();
    assert_eq!(messages.len(), 1);
    assert!(elapsed < Duration::from_secs(10), "the long poll returned when the message arrived, not at its deadline");
}

#[tokio::test]
async fn delayed_messages_appear_after_their_delay() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &unique("delay")).await;
    client.send_message().queue_url(&url).message_body("later").delay_seconds(2).send().await.unwrap();
    let counts = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(counts[&QueueAttributeName::ApproximateNumberOfMessagesDelayed], "1");
    assert!(client.receive_message().queue_url(&url).send().await.unwrap().messages.is_none());
    let started = Instant::now();
    let messages =
        client.receive_message().queue_url(&url).wait_time_seconds(10).send().await.unwrap().messages.unwrap();
    assert_eq!(messages[0].body.as_deref(), Some("later"));
    assert!(started.elapsed() < Duration::from_secs(6));

    // Queue-level delay applies when the message has none.
    client
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::DelaySeconds, "1")
        .send()
        .await
        .unwrap();
    client.send_message().queue_url(&url).message_body("queue-delayed").send().await.unwrap();
    assert!(client.receive_message().queue_url(&url).send().await.unwrap().messages.is_none());
    let messages =
        client.receive_message().queue_url(&url).wait_time_seconds(5).send().await.unwrap().messages.unwrap();
    assert_eq!(messages[0].body.as_deref(), Some("queue-delayed"));
}

#[tokio::test]
async fn batches_report_each_entry() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &unique("batch")).await;
    let entry =
        |id: &str, body: &str| SendMessageBatchRequestEntry::builder().id(id).message_body(body).build().unwrap();
    let sent = client
        .send_message_batch()
        .queue_url(&url)
        .entries(entry("ok1", "one"))
        .entries(entry("bad", "\u{0}"))
        .entries(entry("ok2", "two"))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.successful.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["ok1", "ok2"]);
    assert_eq!(sent.failed.len(), 1);
    assert_eq!(sent.failed[0].id, "bad");
    assert_eq!(sent.failed[0].code, "InvalidMessageContents");
    assert!(sent.failed[0].sender_fault);

    let messages =
        client.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap().messages.unwrap();
    let mut bodies: Vec<_> = messages.iter().map(|m| m.body.clone().unwrap()).collect();
    bodies.sort();
    assert_eq!(bodies, vec!["one", "two"]);

    let changed = client
        .change_message_visibility_batch()
        .queue_url(&url)
        .entries(
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id("a")
                .receipt_handle(messages[0].receipt_handle.clone().unwrap())
                .visibility_timeout(60)
                .build()
                .unwrap(),
        )
        .entries(
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id("b")
                .receipt_handle("garbage")
                .visibility_timeout(60)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(changed.successful.len(), 1);
    assert_eq!(changed.failed[0].code, "ReceiptHandleIsInvalid");

    let mut deletes = client.delete_message_batch().queue_url(&url);
    for (i, message) in messages.iter().enumerate() {
        deletes = deletes.entries(
            DeleteMessageBatchRequestEntry::builder()
                .id(format!("d{i}"))
                .receipt_handle(message.receipt_handle.clone().unwrap())
                .build()
                .unwrap(),
        );
    }
    let deleted = deletes.send().await.unwrap();
    assert_eq!(deleted.successful.len(), 2);
    assert!(deleted.failed.is_empty());

    let error = client
        .send_message_batch()
        .queue_url(&url)
        .entries(entry("x", "1"))
        .entries(entry("x", "2"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.into_service_error().meta().code(), Some("AWS.SimpleQueueService.BatchEntryIdsNotDistinct"));
    let mut too_many = client.send_message_batch().queue_url(&url);
    for i in 0..11 {
        too_many = too_many.entries(entry(&format!("e{i}"), "b"));
    }
    let error = too_many.send().await.unwrap_err();
    assert_eq!(error.into_service_error().meta().code(), Some("AWS.SimpleQueueService.TooManyEntriesInBatchRequest"));
    let error = client.send_message_batch().queue_url(&url).set_entries(Some(vec![])).send().await.unwrap_err();
    assert_eq!(error.into_service_error().meta().code(), Some("AWS.SimpleQueueService.EmptyBatchRequest"));
}

/// The error code a service error carries, whatever the operation.
fn code<E, R>(error: aws_sdk_sqs::error::SdkError<E, R>) -> Option<String>
where
    aws_sdk_sqs::Error: From<aws_sdk_sqs::error::SdkError<E, R>>,
{
    let error: aws_sdk_sqs::Error = error.into();
    aws_sdk_sqs::error::ProvideErrorMetadata::code(&error).map(str::to_string)
}

#[tokio::test]
async fn limits_are_enforced_with_sqs_error_codes() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &unique("limits")).await;
    let too_big = "x".repeat(1_048_577);
    let error = client.send_message().queue_url(&url).message_body(too_big).send().await.unwrap_err();
    assert_eq!(code(error).as_deref(), Some("InvalidParameterValue"));
    let exactly_max = "x".repeat(1_048_576);
    client.send_message().queue_url(&url).message_body(exactly_max).send().await.expect("a 1 MiB body is allowed");
    let error = client.send_message().queue_url(&url).message_body("bad \u{FFFF}").send().await.unwrap_err();
    assert_eq!(code(error).as_deref(), Some("InvalidMessageContents"));
    let error = client.send_message().queue_url(&url).message_body("x").delay_seconds(901).send().await.unwrap_err();
    assert_eq!(code(error).as_deref(), Some("InvalidParameterValue"));
    let error = client.receive_message().queue_url(&url).max_number_of_messages(11).send().await.unwrap_err();
    assert_eq!(code(error).as_deref(), Some("InvalidParameterValue"));
    let error = client.receive_message().queue_url(&url).wait_time_seconds(21).send().await.unwrap_err();
    assert_eq!(code(error).as_deref(), Some("InvalidParameterValue"));
    let mut send = client.send_message().queue_url(&url).message_body("x");
    for i in 0..11 {
        send = send.message_attributes(format!("a{i}"), string_attribute("String", "v"));
    }
    assert_eq!(code(send.send().await.unwrap_err()).as_deref(), Some("InvalidParameterValue"));
    let error = client
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .message_attributes("AWS.reserved", string_attribute("String", "v"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(error).as_deref(), Some("InvalidParameterValue"));
    let error = client
        .send_message()
        .queue_url(format!("{}/000000000000/no-such-queue", server.url))
        .message_body("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(error).as_deref(), Some("AWS.SimpleQueueService.NonExistentQueue"));
}

#[tokio::test]
async fn message_group_id_on_a_standard_queue_is_kept() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &unique("fair")).await;
    client
        .send_message()
        .queue_url(&url)
        .message_body("tenant message")
        .message_group_id("tenant-7")
        .send()
        .await
        .unwrap();
    let messages = client
        .receive_message()
        .queue_url(&url)
        .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap();
    assert_eq!(messages[0].attributes.as_ref().unwrap()[&MessageSystemAttributeName::MessageGroupId], "tenant-7");
}

#[tokio::test]
async fn in_memory_storage_serves_the_same_api() {
    let server = TestServer::start_with(&["--storage", "memory"]);
    let client = server.client();
    let url = create_queue(&client, &unique("mem")).await;
    client.send_message().queue_url(&url).message_body("m").send().await.unwrap();
    let messages = client.receive_message().queue_url(&url).send().await.unwrap().messages.unwrap();
    assert_eq!(messages[0].body.as_deref(), Some("m"));
}

#[tokio::test]
async fn receiving_beyond_the_in_flight_limit_is_over_limit() {
    let server = TestServer::start_with(&["--max-in-flight", "3"]);
    let client = server.client();
    let url = create_queue(&client, &unique("limit")).await;
    for i in 0..5 {
        client.send_message().queue_url(&url).message_body(format!("m{i}")).send().await.unwrap();
    }
    let got = client.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
    assert_eq!(got.messages.unwrap().len(), 3, "no more than the limit");
    let error = client.receive_message().queue_url(&url).send().await.unwrap_err().into_service_error();
    assert!(matches!(error, aws_sdk_sqs::operation::receive_message::ReceiveMessageError::OverLimit(_)), "{error:?}");
}
