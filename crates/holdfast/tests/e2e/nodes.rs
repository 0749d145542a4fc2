//! Several nodes on one PostgreSQL database: any node answers for any queue, a receipt handle from
//! one node works on another, settings changed on one apply on all at once, and a send on one node wakes a
//! long poll waiting on another at once (LISTEN/NOTIFY), or within the re-check without it.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;

use crate::common::{client_for, unique, TestServer};

/// Two nodes on a fresh schema (`None`: no test database outside CI).
async fn two_nodes(extra: &[&str]) -> Option<(Vec<TestServer>, holdfast_store::postgres::ScratchSchema)> {
    let schema = holdfast_store::postgres::ScratchSchema::create().await?;
    let url = schema.url();
    let mut args = vec!["--storage", url.as_str()];
    args.extend_from_slice(extra);
    let nodes = (0..2).map(|_| TestServer::start_with(&args)).collect();
    Some((nodes, schema))
}

async fn queue_url(client: &aws_sdk_sqs::Client, name: &str) -> String {
    client.get_queue_url().queue_name(name).send().await.expect("GetQueueUrl").queue_url.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_is_served_by_every_node() {
    let Some((nodes, _schema)) = two_nodes(&[]).await else { return };
    let (a, b) = (client_for(&nodes[0].url), client_for(&nodes[1].url));
    let name = unique("shared");
    let on_a = crate::common::create_queue(&a, &name).await;
    let on_b = queue_url(&b, &name).await;

    a.send_message().queue_url(&on_a).message_body("from a").send().await.unwrap();
    let received = b.receive_message().queue_url(&on_b).visibility_timeout(30).send().await.unwrap();
    let message = &received.messages.unwrap()[0];
    assert_eq!(message.body.as_deref(), Some("from a"));
    // The receipt handle from node B deletes through node A.
    a.delete_message().queue_url(&on_a).receipt_handle(message.receipt_handle.clone().unwrap()).send().await.unwrap();
    let counts = b
        .get_queue_attributes()
        .queue_url(&on_b)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(counts[&QueueAttributeName::ApproximateNumberOfMessages], "0");
    assert_eq!(counts[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible], "0");

    // A setting changed on A is what B applies next.
    a.set_queue_attributes()
        .queue_url(&on_a)
        .attributes(QueueAttributeName::VisibilityTimeout, "0")
        .send()
        .await
        .unwrap();
    a.send_message().queue_url(&on_a).message_body("again").send().await.unwrap();
    let first = b.receive_message().queue_url(&on_b).send().await.unwrap().messages.unwrap_or_default();
    let second = b.receive_message().queue_url(&on_b).send().await.unwrap().messages.unwrap_or_default();
    assert_eq!((first.len(), second.len()), (1, 1), "with VisibilityTimeout 0 set on A, B delivers it again");

    // Deleted on B, gone on A.
    b.delete_queue().queue_url(&on_b).send().await.unwrap();
    let gone = a.send_message().queue_url(&on_a).message_body("x").send().await;
    assert_eq!(
        crate::common::error_code(gone.unwrap_err()).as_deref(),
        Some("AWS.SimpleQueueService.NonExistentQueue")
    );
}

/// How long a long poll on node B takes to return a message sent through node A.
async fn cross_node_wake(extra: &[&str]) -> Option<Duration> {
    let (nodes, _schema) = two_nodes(extra).await?;
    let (a, b) = (client_for(&nodes[0].url), client_for(&nodes[1].url));
    let name = unique("wake");
    let on_a = crate::common::create_queue(&a, &name).await;
    let on_b = queue_url(&b, &name).await;
    let mut slowest = Duration::ZERO;
    for round in 0..3 {
        let waiting = {
            let (b, on_b) = (b.clone(), on_b.clone());
            tokio::spawn(async move { b.receive_message().queue_url(on_b).wait_time_seconds(20).send().await })
        };
        // Let the receive reach node B and start waiting.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = Instant::now();
        a.send_message().queue_url(&on_a).message_body(format!("round {round}")).send().await.unwrap();
        let got = waiting.await.unwrap().unwrap().messages.unwrap_or_default();
        let took = sent.elapsed();
        assert_eq!(got.len(), 1, "the long poll on B returns A's message");
        a.delete_message()
            .queue_url(&on_a)
            .receipt_handle(got[0].receipt_handle.clone().unwrap())
            .send()
            .await
            .unwrap();
        slowest = slowest.max(took);
    }
    Some(slowest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_on_one_node_wakes_a_long_poll_on_another() {
    let Some(slowest) = cross_node_wake(&[]).await else { return };
    println!("slowest cross-node wake with LISTEN/NOTIFY: {slowest:?}");
    // Well under the 1 s re-check: the notification did it.
    assert!(slowest < Duration::from_millis(800), "woken after {slowest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_notify_the_recheck_still_finds_the_message() {
    let Some(slowest) = cross_node_wake(&["--postgres-notify", "off"]).await else { return };
    println!("slowest cross-node wake by re-check alone: {slowest:?}");
    assert!(slowest < Duration::from_secs(5), "woken after {slowest:?}");
}

/// A message move task started on a node that then dies is finished by the other node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_task_is_taken_over_when_its_node_dies() {
    use crate::dead_letters::{count_of, fill_dead_letter_queue, source_and_dead_letter_queue, wait_for_task};
    let Some((mut nodes, _schema)) = two_nodes(&[]).await else { return };
    let (a, b) = (client_for(&nodes[0].url), client_for(&nodes[1].url));
    let (source, dlq, dlq_arn) = source_and_dead_letter_queue(&a, "1").await;
    fill_dead_letter_queue(&a, &source, &dlq, 12).await;
    a.start_message_move_task()
        .source_arn(&dlq_arn)
        .max_number_of_messages_per_second(4)
        .send()
        .await
        .expect("StartMessageMoveTask on node A");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    nodes[0].kill9();
    let task = wait_for_task(&b, &dlq_arn, &["COMPLETED", "FAILED"]).await;
    assert_eq!(task.status.as_deref(), Some("COMPLETED"), "node B finished the task: {task:?}");
    assert_eq!(task.approximate_number_of_messages_moved, 12);
    let on_b = queue_url(&b, dlq.rsplit('/').next().unwrap()).await;
    assert_eq!(count_of(&b, &on_b).await, 0);
}
