//! Nothing acknowledged is lost: restarts, `kill -9` in the middle of traffic, graceful shutdown.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{create_queue, unique, TestServer};
use aws_sdk_sqs::types::QueueAttributeName;

#[tokio::test]
async fn queues_and_messages_survive_a_restart() {
    queues_and_messages_survive_a_restart_on(&[]).await;
}

#[tokio::test]
async fn queues_and_messages_survive_a_restart_on_the_journal() {
    queues_and_messages_survive_a_restart_on(&["--storage", "journal"]).await;
}

async fn queues_and_messages_survive_a_restart_on(storage: &[&str]) {
    let mut server = TestServer::start_with(storage);
    let client = server.client();
    let name = unique("restart");
    let url = client
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::VisibilityTimeout, "7")
        .tags("team", "web")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for body in ["a", "b", "c"] {
        client.send_message().queue_url(&url).message_body(body).send().await.unwrap();
    }
    let first = client.receive_message().queue_url(&url).send().await.unwrap().messages.unwrap();
    client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(first[0].receipt_handle.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert!(server.terminate().success(), "graceful shutdown exits 0");

    server.restart();
    let client = server.client();
    let url = client.get_queue_url().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let attributes =
        client.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::All).send().await.unwrap();
    assert_eq!(attributes.attributes.unwrap()[&QueueAttributeName::VisibilityTimeout], "7");
    assert_eq!(client.list_queue_tags().queue_url(&url).send().await.unwrap().tags.unwrap()["team"], "web");
    let messages =
        client.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap().messages.unwrap();
    let mut bodies: Vec<_> = messages.iter().map(|m| m.body.clone().unwrap()).collect();
    bodies.sort();
    let expected: Vec<String> =
        ["a", "b", "c"].iter().filter(|b| **b != first[0].body.as_deref().unwrap()).map(|b| b.to_string()).collect();
    assert_eq!(bodies, expected, "the deleted message stays deleted, the others are back");
}

#[tokio::test]
async fn shutdown_answers_waiting_long_polls_and_exits_cleanly() {
    let mut server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &unique("shutdown")).await;
    let poll = tokio::spawn(async move { client.receive_message().queue_url(&url).wait_time_seconds(20).send().await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        drop(server);
        status
    })
    .await
    .unwrap();
    assert!(status.success(), "exit status {status:?}");
    let answer = poll.await.unwrap().expect("the long poll got an answer, not a dropped connection");
    assert!(answer.messages.is_none());
    assert!(started.elapsed() < Duration::from_secs(10), "shutdown did not wait for the long poll's deadline");
}

/// Concurrent senders and deleters; the server is killed with SIGKILL mid-stream and restarted on
/// the same data directory. Every acknowledged send must be there (unless a delete of it was
/// attempted), and no acknowledged delete may come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_loses_no_acknowledged_send_and_revives_no_acknowledged_delete() {
    kill_9_loses_no_acknowledged_send_and_revives_no_acknowledged_delete_on(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_loses_no_acknowledged_send_and_revives_no_acknowledged_delete_on_the_journal() {
    kill_9_loses_no_acknowledged_send_and_revives_no_acknowledged_delete_on(&["--storage", "journal"]).await;
}

async fn kill_9_loses_no_acknowledged_send_and_revives_no_acknowledged_delete_on(storage: &[&str]) {
    let mut server = TestServer::start_with(storage);
    let client = server.client();
    let name = unique("crash");
    let url = create_queue(&client, &name).await;

    let acked_sends = Arc::new(Mutex::new(HashSet::new()));
    let attempted_deletes = Arc::new(Mutex::new(HashSet::new()));
    let acked_deletes = Arc::new(Mutex::new(HashSet::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for sender in 0..8 {
        let (client, url, acked, stop) = (client.clone(), url.clone(), acked_sends.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let body = format!("s{sender}-{i}");
                match client.send_message().queue_url(&url).message_body(&body).send().await {
                    Ok(_) => {
                        acked.lock().unwrap().insert(body);
                    }
                    Err(_) => break,
                }
            }
        }));
    }
    for _ in 0..4 {
        let (client, url, attempted, acked, stop) =
            (client.clone(), url.clone(), attempted_deletes.clone(), acked_deletes.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(received) = client
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .visibility_timeout(1)
                    .send()
                    .await
                else {
                    break;
                };
                for message in received.messages.unwrap_or_default() {
                    let body = message.body.unwrap();
                    attempted.lock().unwrap().insert(body.clone());
                    match client
                        .delete_message()
                        .queue_url(&url)
                        .receipt_handle(message.receipt_handle.unwrap())
                        .send()
                        .await
                    {
                        Ok(_) => {
                            acked.lock().unwrap().insert(body);
                        }
                        Err(_) => return,
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }
    let acked_sends = acked_sends.lock().unwrap().clone();
    let attempted_deletes = attempted_deletes.lock().unwrap().clone();
    let acked_deletes = acked_deletes.lock().unwrap().clone();
    assert!(acked_sends.len() > 50, "the load ran ({} sends acknowledged)", acked_sends.len());
    assert!(!acked_deletes.is_empty(), "the deleters ran");

    server.restart();
    let client = server.client();
    let url = client.get_queue_url().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    // Messages leased by the deleters become visible again after their 1 s visibility timeout.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut present = HashSet::new();
    loop {
        let received = client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            assert!(present.insert(message.body.unwrap()), "no message is delivered twice while hidden");
        }
    }
    let lost: Vec<_> =
        acked_sends.iter().filter(|b| !present.contains(*b) && !attempted_deletes.contains(*b)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged sends were lost, e.g. {:?}",
        lost.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
    let revived: Vec<_> = acked_deletes.iter().filter(|b| present.contains(*b)).collect();
    assert!(
        revived.is_empty(),
        "{} acknowledged deletes came back, e.g. {:?}",
        revived.len(),
        revived.iter().take(5).collect::<Vec<_>>()
    );
    println!(
        "crash test: {} sends acknowledged, {} deletes acknowledged, {} messages present after restart",
        acked_sends.len(),
        acked_deletes.len(),
        present.len()
    );
}

/// A message move task interrupted by a restart resumes and completes; nothing is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_tasks_survive_a_restart() {
    move_tasks_survive_a_restart_on(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_tasks_survive_a_restart_on_the_journal() {
    move_tasks_survive_a_restart_on(&["--storage", "journal"]).await;
}

async fn move_tasks_survive_a_restart_on(storage: &[&str]) {
    let mut server = TestServer::start_with(storage);
    let client = server.client();
    let dlq_name = unique("dlq");
    let dlq = create_queue(&client, &dlq_name).await;
    let dlq_arn = format!("arn:aws:sqs:us-east-1:000000000000:{dlq_name}");
    let source_name = unique("src");
    let source = client
        .create_queue()
        .queue_name(&source_name)
        .attributes(
            QueueAttributeName::RedrivePolicy,
            format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":1}}"#),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for i in 0..6 {
        client.send_message().queue_url(&source).message_body(format!("m{i}")).send().await.unwrap();
    }
    while client
        .receive_message()
        .queue_url(&source)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap()
        .messages
        .is_some()
    {}
    let count = |client: aws_sdk_sqs::Client, url: String| async move {
        let attributes = client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        attributes.attributes.unwrap()[&QueueAttributeName::ApproximateNumberOfMessages].parse::<usize>().unwrap()
    };
    assert_eq!(count(client.clone(), dlq.clone()).await, 6);
    client.start_message_move_task().source_arn(&dlq_arn).max_number_of_messages_per_second(2).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.kill9();

    server.restart();
    let client = server.client();
    let dlq = client.get_queue_url().queue_name(&dlq_name).send().await.unwrap().queue_url.unwrap();
    let source = client.get_queue_url().queue_name(&source_name).send().await.unwrap().queue_url.unwrap();
    let started = Instant::now();
    let status = loop {
        let tasks = client.list_message_move_tasks().source_arn(&dlq_arn).send().await.unwrap().results.unwrap();
        let status = tasks[0].status.clone().unwrap();
        if status != "RUNNING" || started.elapsed() > Duration::from_secs(30) {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status, "COMPLETED");
    assert_eq!(count(client.clone(), source).await, 6, "every message is back in its source");
    assert_eq!(count(client.clone(), dlq).await, 0);
}
