//! Dead-letter queues, redrive policies and message move tasks through aws-sdk-sqs, on every
//! storage engine.

use std::time::{Duration, Instant};

use crate::common::{create_queue, create_queue_with, error_code, queue_arn, unique, TestServer};
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};

on_every_engine!(
    redrive_policy_is_validated,
    redrive_allow_policy_is_enforced,
    exhausted_messages_move_on_the_next_receive,
    exhausted_messages_move_when_nobody_receives,
    fifo_dead_letter_queues_restart_retention,
    list_dead_letter_source_queues_pages,
    move_task_returns_messages_to_their_source,
    move_task_to_a_destination_honours_its_rate_and_can_be_cancelled,
    move_task_rules,
);

fn redrive(target_arn: &str, max: &str) -> String {
    format!(r#"{{"deadLetterTargetArn":"{target_arn}","maxReceiveCount":"{max}"}}"#)
}

async fn set_redrive(client: &aws_sdk_sqs::Client, url: &str, target_arn: &str, max: &str) {
    client
        .set_queue_attributes()
        .queue_url(url)
        .attributes(QueueAttributeName::RedrivePolicy, redrive(target_arn, max))
        .send()
        .await
        .unwrap();
}

/// A source queue whose messages move to a fresh dead-letter queue after `max` receives.
pub(crate) async fn source_and_dead_letter_queue(client: &aws_sdk_sqs::Client, max: &str) -> (String, String, String) {
    let dlq = create_queue(client, &unique("dlq")).await;
    let dlq_arn = queue_arn(client, &dlq).await;
    let source = create_queue(client, &unique("src")).await;
    set_redrive(client, &source, &dlq_arn, max).await;
    (source, dlq, dlq_arn)
}

async fn receive_all(
    client: &aws_sdk_sqs::Client,
    url: &str,
    visibility: i32,
    wait: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(visibility)
        .wait_time_seconds(wait)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

async fn count(client: &aws_sdk_sqs::Client, url: &str) -> String {
    let attributes = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    attributes[&QueueAttributeName::ApproximateNumberOfMessages].clone()
}

async fn redrive_policy_is_validated(server: TestServer) {
    let client = server.client();
    let source = create_queue(&client, &unique("src")).await;
    let missing = client
        .set_queue_attributes()
        .queue_url(&source)
        .attributes(QueueAttributeName::RedrivePolicy, redrive("arn:aws:sqs:us-east-1:000000000000:no-such-queue", "3"))
        .send()
        .await;
    assert_eq!(error_code(missing.unwrap_err()).as_deref(), Some("InvalidParameterValue"));
    let fifo_dlq = create_queue_with(&client, &(unique("fdlq") + ".fifo"), &[("FifoQueue", "true")]).await;
    let fifo_arn = queue_arn(&client, &fifo_dlq).await;
    let mismatch = client
        .set_queue_attributes()
        .queue_url(&source)
        .attributes(QueueAttributeName::RedrivePolicy, redrive(&fifo_arn, "3"))
        .send()
        .await;
    assert_eq!(
        error_code(mismatch.unwrap_err()).as_deref(),
        Some("InvalidParameterValue"),
        "a standard queue needs a standard DLQ"
    );
    let dlq = create_queue(&client, &unique("dlq")).await;
    let dlq_arn = queue_arn(&client, &dlq).await;
    let zero = client
        .set_queue_attributes()
        .queue_url(&source)
        .attributes(QueueAttributeName::RedrivePolicy, redrive(&dlq_arn, "0"))
        .send()
        .await;
    assert_eq!(error_code(zero.unwrap_err()).as_deref(), Some("InvalidParameterValue"));
    set_redrive(&client, &source, &dlq_arn, "5").await;
    let stored = client
        .get_queue_attributes()
        .queue_url(&source)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    let policy: serde_json::Value =
        serde_json::from_str(&stored.attributes.unwrap()[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(policy, serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5 }));
    // Removing the policy.
    client
        .set_queue_attributes()
        .queue_url(&source)
        .attributes(QueueAttributeName::RedrivePolicy, "")
        .send()
        .await
        .unwrap();
    let cleared =
        client.get_queue_attributes().queue_url(&source).attribute_names(QueueAttributeName::All).send().await.unwrap();
    assert!(!cleared.attributes.unwrap().contains_key(&QueueAttributeName::RedrivePolicy));
}

async fn redrive_allow_policy_is_enforced(server: TestServer) {
    let client = server.client();
    let dlq = create_queue(&client, &unique("dlq")).await;
    let dlq_arn = queue_arn(&client, &dlq).await;
    let allowed = create_queue(&client, &unique("allowed")).await;
    let allowed_arn = queue_arn(&client, &allowed).await;
    let other = create_queue(&client, &unique("other")).await;
    let policy = format!(r#"{{"redrivePermission":"byQueue","sourceQueueArns":["{allowed_arn}"]}}"#);
    client
        .set_queue_attributes()
        .queue_url(&dlq)
        .attributes(QueueAttributeName::RedriveAllowPolicy, policy)
        .send()
        .await
        .unwrap();
    set_redrive(&client, &allowed, &dlq_arn, "2").await;
    let denied = client
        .set_queue_attributes()
        .queue_url(&other)
        .attributes(QueueAttributeName::RedrivePolicy, redrive(&dlq_arn, "2"))
        .send()
        .await;
    assert_eq!(error_code(denied.unwrap_err()).as_deref(), Some("InvalidParameterValue"));
    client
        .set_queue_attributes()
        .queue_url(&dlq)
        .attributes(QueueAttributeName::RedriveAllowPolicy, r#"{"redrivePermission":"denyAll"}"#)
        .send()
        .await
        .unwrap();
    let denied_all = client
        .create_queue()
        .queue_name(unique("late"))
        .attributes(QueueAttributeName::RedrivePolicy, redrive(&dlq_arn, "2"))
        .send()
        .await;
    assert_eq!(error_code(denied_all.unwrap_err()).as_deref(), Some("InvalidParameterValue"));
}

async fn exhausted_messages_move_on_the_next_receive(server: TestServer) {
    let client = server.client();
    let (source, dlq, _) = source_and_dead_letter_queue(&client, "2").await;
    let source_arn = queue_arn(&client, &source).await;
    let sent = client
        .send_message()
        .queue_url(&source)
        .message_body("poison")
        .message_attributes(
            "kind",
            MessageAttributeValue::builder().data_type("String").string_value("bad").build().unwrap(),
        )
        .send()
        .await
        .unwrap();
    let original_sent_at = {
        let first = receive_all(&client, &source, 0, 0).await;
        assert_eq!(first.len(), 1, "receive 1 of 2 delivers");
        first[0].attributes.as_ref().unwrap()[&MessageSystemAttributeName::SentTimestamp].clone()
    };
    assert_eq!(receive_all(&client, &source, 0, 0).await.len(), 1, "receive 2 of 2 delivers");
    assert!(receive_all(&client, &source, 0, 0).await.is_empty(), "the third receive moves it instead");
    let moved = receive_all(&client, &dlq, 30, 5).await;
    assert_eq!(moved.len(), 1);
    let message = &moved[0];
    assert_eq!(message.message_id, sent.message_id, "the moved message keeps its id");
    assert_eq!(message.body.as_deref(), Some("poison"));
    assert_eq!(message.message_attributes.as_ref().unwrap()["kind"].string_value.as_deref(), Some("bad"));
    let attributes = message.attributes.as_ref().unwrap();
    assert_eq!(attributes[&MessageSystemAttributeName::DeadLetterQueueSourceArn], source_arn);
    assert_eq!(
        attributes[&MessageSystemAttributeName::SentTimestamp],
        original_sent_at,
        "standard DLQs keep the enqueue time"
    );
    assert_eq!(count(&client, &source).await, "0");
}

async fn exhausted_messages_move_when_nobody_receives(server: TestServer) {
    let client = server.client();
    let (source, dlq, _) = source_and_dead_letter_queue(&client, "1").await;
    client.send_message().queue_url(&source).message_body("stuck").send().await.unwrap();
    assert_eq!(receive_all(&client, &source, 1, 0).await.len(), 1);
    // Nobody receives from the source again: the message must still reach the DLQ.
    let started = Instant::now();
    let mut moved = Vec::new();
    while moved.is_empty() && started.elapsed() < Duration::from_secs(20) {
        moved = receive_all(&client, &dlq, 30, 2).await;
    }
    assert_eq!(moved.len(), 1, "moved by the background sweep");
    assert_eq!(moved[0].body.as_deref(), Some("stuck"));
}

async fn fifo_dead_letter_queues_restart_retention(server: TestServer) {
    let client = server.client();
    let dlq = create_queue_with(&client, &(unique("fdlq") + ".fifo"), &[("FifoQueue", "true")]).await;
    let dlq_arn = queue_arn(&client, &dlq).await;
    let policy = redrive(&dlq_arn, "1");
    let source = create_queue_with(
        &client,
        &(unique("fsrc") + ".fifo"),
        &[("FifoQueue", "true"), ("ContentBasedDeduplication", "true"), ("RedrivePolicy", &policy)],
    )
    .await;
    for body in ["a", "b"] {
        client.send_message().queue_url(&source).message_body(body).message_group_id("g").send().await.unwrap();
    }
    let first = client
        .receive_message()
        .queue_url(&source)
        .max_number_of_messages(1)
        .visibility_timeout(0)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap();
    assert_eq!(first[0].body.as_deref(), Some("a"));
    let sent_at: i64 =
        first[0].attributes.as_ref().unwrap()[&MessageSystemAttributeName::SentTimestamp].parse().unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = receive_all(&client, &source, 30, 0).await;
    assert_eq!(
        second.iter().map(|m| m.body.clone().unwrap()).collect::<Vec<_>>(),
        vec!["b"],
        "a moved; b is next in its group"
    );
    let moved = receive_all(&client, &dlq, 30, 5).await;
    assert_eq!(moved[0].body.as_deref(), Some("a"));
    let moved_sent_at: i64 =
        moved[0].attributes.as_ref().unwrap()[&MessageSystemAttributeName::SentTimestamp].parse().unwrap();
    assert!(moved_sent_at > sent_at, "FIFO dead-letter queues restart the retention clock");
}

async fn list_dead_letter_source_queues_pages(server: TestServer) {
    let client = server.client();
    let dlq = create_queue(&client, &unique("dlq")).await;
    let dlq_arn = queue_arn(&client, &dlq).await;
    let mut sources = Vec::new();
    for i in 0..3 {
        let url = create_queue(&client, &format!("{}-{i}", unique("s"))).await;
        set_redrive(&client, &url, &dlq_arn, "3").await;
        sources.push(url);
    }
    create_queue(&client, &unique("unrelated")).await;
    let all = client.list_dead_letter_source_queues().queue_url(&dlq).send().await.unwrap();
    let mut listed = all.queue_urls.clone();
    listed.sort();
    sources.sort();
    assert_eq!(listed, sources);
    assert!(all.next_token.is_none());
    let page = client.list_dead_letter_source_queues().queue_url(&dlq).max_results(2).send().await.unwrap();
    assert_eq!(page.queue_urls.len(), 2);
    let rest = client
        .list_dead_letter_source_queues()
        .queue_url(&dlq)
        .max_results(2)
        .next_token(page.next_token.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.queue_urls.len(), 1);
    assert!(rest.next_token.is_none());
}

/// Sends `count` messages to `source` and lets each be received once and dead-lettered.
pub(crate) async fn fill_dead_letter_queue(
    client: &aws_sdk_sqs::Client,
    source: &str,
    dlq: &str,
    count: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        ids.push(
            client
                .send_message()
                .queue_url(source)
                .message_body(format!("m{i}"))
                .send()
                .await
                .unwrap()
                .message_id
                .unwrap(),
        );
    }
    while !receive_all(client, source, 0, 0).await.is_empty() {}
    let started = Instant::now();
    while count_of(client, dlq).await < count && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(count_of(client, dlq).await, count);
    ids.sort();
    ids
}

pub(crate) async fn count_of(client: &aws_sdk_sqs::Client, url: &str) -> usize {
    count(client, url).await.parse().unwrap()
}

pub(crate) async fn wait_for_task(
    client: &aws_sdk_sqs::Client,
    dlq_arn: &str,
    done: &[&str],
) -> aws_sdk_sqs::types::ListMessageMoveTasksResultEntry {
    let started = Instant::now();
    loop {
        let tasks = client.list_message_move_tasks().source_arn(dlq_arn).send().await.unwrap().results.unwrap();
        let task = tasks.into_iter().next().expect("a task is listed");
        if done.contains(&task.status.as_deref().unwrap()) || started.elapsed() > Duration::from_secs(30) {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn move_task_returns_messages_to_their_source(server: TestServer) {
    let client = server.client();
    let (source, dlq, dlq_arn) = source_and_dead_letter_queue(&client, "1").await;
    let ids = fill_dead_letter_queue(&client, &source, &dlq, 5).await;
    let handle = client.start_message_move_task().source_arn(&dlq_arn).send().await.unwrap().task_handle.unwrap();
    assert!(!handle.is_empty());
    let task = wait_for_task(&client, &dlq_arn, &["COMPLETED", "FAILED"]).await;
    assert_eq!(task.status.as_deref(), Some("COMPLETED"), "{task:?}");
    assert_eq!(task.approximate_number_of_messages_moved, 5);
    assert_eq!(task.approximate_number_of_messages_to_move, Some(5));
    assert!(task.task_handle.is_none(), "handles are listed only for running tasks");
    assert_eq!(count_of(&client, &dlq).await, 0);
    let returned = receive_all(&client, &source, 30, 0).await;
    let mut returned_ids: Vec<String> = returned.iter().map(|m| m.message_id.clone().unwrap()).collect();
    returned_ids.sort();
    assert_eq!(returned_ids, ids, "the same messages are back in their source queue");
    assert!(returned.iter().all(|m| !m
        .attributes
        .as_ref()
        .unwrap()
        .contains_key(&MessageSystemAttributeName::DeadLetterQueueSourceArn)));
}

async fn move_task_to_a_destination_honours_its_rate_and_can_be_cancelled(server: TestServer) {
    let client = server.client();
    let (source, dlq, dlq_arn) = source_and_dead_letter_queue(&client, "1").await;
    fill_dead_letter_queue(&client, &source, &dlq, 8).await;
    let destination = create_queue(&client, &unique("dest")).await;
    let destination_arn = queue_arn(&client, &destination).await;
    let handle = client
        .start_message_move_task()
        .source_arn(&dlq_arn)
        .destination_arn(&destination_arn)
        .max_number_of_messages_per_second(2)
        .send()
        .await
        .unwrap()
        .task_handle
        .unwrap();
    let second = client.start_message_move_task().source_arn(&dlq_arn).send().await;
    assert_eq!(error_code(second.unwrap_err()).as_deref(), Some("InvalidParameterValue"), "one active task per source");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let running = client.list_message_move_tasks().source_arn(&dlq_arn).send().await.unwrap().results.unwrap();
    assert_eq!(running[0].status.as_deref(), Some("RUNNING"));
    assert_eq!(running[0].task_handle.as_deref(), Some(handle.as_str()));
    assert_eq!(running[0].max_number_of_messages_per_second, Some(2));
    let cancelled = client.cancel_message_move_task().task_handle(&handle).send().await.unwrap();
    let moved_at_cancel = cancelled.approximate_number_of_messages_moved;
    assert!(moved_at_cancel < 8, "2 per second cannot have moved all 8 yet ({moved_at_cancel})");
    let task = wait_for_task(&client, &dlq_arn, &["CANCELLED"]).await;
    assert_eq!(task.status.as_deref(), Some("CANCELLED"));
    let moved = task.approximate_number_of_messages_moved as usize;
    assert_eq!(
        count_of(&client, &destination).await + count_of(&client, &dlq).await,
        8,
        "nothing lost, nothing doubled"
    );
    assert_eq!(count_of(&client, &destination).await, moved);
    let again = client.cancel_message_move_task().task_handle(&handle).send().await;
    assert_eq!(error_code(again.unwrap_err()).as_deref(), Some("InvalidParameterValue"));
}

async fn move_task_rules(server: TestServer) {
    let client = server.client();
    let plain = create_queue(&client, &unique("plain")).await;
    let plain_arn = queue_arn(&client, &plain).await;
    let not_dlq = client.start_message_move_task().source_arn(&plain_arn).send().await;
    assert_eq!(error_code(not_dlq.unwrap_err()).as_deref(), Some("InvalidParameterValue"));
    let missing = client.start_message_move_task().source_arn("arn:aws:sqs:us-east-1:000000000000:nope").send().await;
    assert_eq!(error_code(missing.unwrap_err()).as_deref(), Some("ResourceNotFoundException"));
    let (_, _, dlq_arn) = source_and_dead_letter_queue(&client, "1").await;
    let too_fast =
        client.start_message_move_task().source_arn(&dlq_arn).max_number_of_messages_per_second(501).send().await;
    assert_eq!(error_code(too_fast.unwrap_err()).as_deref(), Some("InvalidParameterValue"));
    // AWS's three answers: not a handle at all, a handle naming no queue, no such task.
    let bad_handle = client.cancel_message_move_task().task_handle("bm90IGEgaGFuZGxl").send().await;
    assert_eq!(error_code(bad_handle.unwrap_err()).as_deref(), Some("InvalidParameterValue"));
    let handle = |source: &str| {
        use base64::Engine as _;
        let document = format!(r#"{{"taskId":"00000000-0000-4000-8000-000000000000","sourceArn":"{source}"}}"#);
        base64::engine::general_purpose::STANDARD.encode(document)
    };
    let no_queue = client
        .cancel_message_move_task()
        .task_handle(handle("arn:aws:sqs:us-east-1:000000000000:nope"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(no_queue).as_deref(), Some("ResourceNotFoundException"));
    let no_task = client.cancel_message_move_task().task_handle(handle(&dlq_arn)).send().await.unwrap_err();
    let no_task = no_task.into_service_error();
    assert_eq!(no_task.meta().message(), Some("Task does not exist."));
}
