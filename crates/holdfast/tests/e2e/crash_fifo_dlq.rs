//! `kill -9` against FIFO order and dead-letter moves.
//!
//! - FIFO: one producer per message group sends numbered messages in order while a consumer
//!   receives and deletes; the server is killed mid-stream and restarted on the same data. Per
//!   group, messages must first be delivered in the order they were sent, and every acknowledged
//!   send must be delivered.
//! - Dead letters: consumers keep receiving without deleting, so messages move to the dead-letter
//!   queue on their second receive, while the server is killed. After the restart every
//!   acknowledged message must be in exactly one of the two queues.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{client_without_retries, unique, TestServer};
use aws_sdk_sqs::types::QueueAttributeName;

const GROUPS: usize = 4;

/// `g{group}-{index}` → (group, index).
fn parse(body: &str) -> (usize, u64) {
    let (group, index) = body.trim_start_matches('g').split_once('-').expect("g<group>-<index>");
    (group.parse().unwrap(), index.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_order_per_group_survives_kill_9() {
    fifo_order_per_group_survives_kill_9_on(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_order_per_group_survives_kill_9_on_the_journal() {
    fifo_order_per_group_survives_kill_9_on(&["--storage", "journal"]).await;
}

async fn fifo_order_per_group_survives_kill_9_on(storage: &[&str]) {
    let mut server = TestServer::start_with(storage);
    let client = client_without_retries(&server.url);
    let name = unique("crash") + ".fifo";
    client
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
        .send()
        .await
        .unwrap();
    let url = client.get_queue_url().queue_name(&name).send().await.unwrap().queue_url.unwrap();

    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let deliveries: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for group in 0..GROUPS {
        let (client, url, acked, stop) = (client.clone(), url.clone(), acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            for index in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let body = format!("g{group}-{index}");
                let sent = client
                    .send_message()
                    .queue_url(&url)
                    .message_body(&body)
                    .message_group_id(format!("g{group}"))
                    .send();
                match tokio::time::timeout(Duration::from_secs(10), sent).await {
                    Ok(Ok(_)) => {
                        acked.lock().unwrap().insert(body);
                    }
                    _ => break,
                }
            }
        }));
    }
    {
        let (client, url, deliveries, stop) = (client.clone(), url.clone(), deliveries.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            // Some messages are abandoned once (not deleted), so redelivery happens mid-stream.
            let mut abandoned = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                let receive =
                    client.receive_message().queue_url(&url).max_number_of_messages(10).visibility_timeout(1).send();
                let Ok(Ok(received)) = tokio::time::timeout(Duration::from_secs(10), receive).await else { break };
                for message in received.messages.unwrap_or_default() {
                    let body = message.body.clone().unwrap();
                    deliveries.lock().unwrap().push(body.clone());
                    if parse(&body).1 % 20 == 7 && abandoned.insert(body) {
                        continue;
                    }
                    let delete =
                        client.delete_message().queue_url(&url).receipt_handle(message.receipt_handle.unwrap()).send();
                    if !matches!(tokio::time::timeout(Duration::from_secs(10), delete).await, Ok(Ok(_))) {
                        return;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }

    server.restart();
    let client = client_without_retries(&server.url);
    // Leases taken before the crash run out after their 1 s visibility timeout.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut idle_rounds = 0;
    while Instant::now() < deadline && idle_rounds < 3 {
        let received = client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            idle_rounds += 1;
            continue;
        }
        idle_rounds = 0;
        for message in messages {
            deliveries.lock().unwrap().push(message.body.clone().unwrap());
            client
                .delete_message()
                .queue_url(&url)
                .receipt_handle(message.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }

    let acked = acked.lock().unwrap().clone();
    let deliveries = deliveries.lock().unwrap().clone();
    assert!(acked.len() > 20, "the load ran ({} sends acknowledged)", acked.len());
    let delivered: HashSet<&String> = deliveries.iter().collect();
    let lost: Vec<_> = acked.iter().filter(|b| !delivered.contains(b)).collect();
    assert!(lost.is_empty(), "acknowledged sends never delivered: {lost:?}");
    // First deliveries per group must follow the send order.
    let mut first_seen: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for body in &deliveries {
        if seen.insert(body.clone()) {
            let (group, index) = parse(body);
            first_seen.entry(group).or_default().push(index);
        }
    }
    for (group, indexes) in &first_seen {
        assert!(indexes.windows(2).all(|w| w[0] < w[1]), "group g{group} delivered out of order: {indexes:?}");
    }
    println!(
        "fifo crash test: {} sends acknowledged, {} deliveries ({} redelivered), order kept in {} groups",
        acked.len(),
        deliveries.len(),
        deliveries.len() - seen.len(),
        first_seen.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_message_is_in_exactly_one_queue_after_kill_9() {
    a_dead_lettered_message_is_in_exactly_one_queue_after_kill_9_on(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_message_is_in_exactly_one_queue_after_kill_9_on_the_journal() {
    a_dead_lettered_message_is_in_exactly_one_queue_after_kill_9_on(&["--storage", "journal"]).await;
}

async fn a_dead_lettered_message_is_in_exactly_one_queue_after_kill_9_on(storage: &[&str]) {
    let mut server = TestServer::start_with(storage);
    let client = client_without_retries(&server.url);
    let dlq_name = unique("dlq");
    client.create_queue().queue_name(&dlq_name).send().await.unwrap();
    let source_name = unique("src");
    let policy =
        format!(r#"{{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:{dlq_name}","maxReceiveCount":1}}"#);
    client
        .create_queue()
        .queue_name(&source_name)
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .send()
        .await
        .unwrap();
    let source = client.get_queue_url().queue_name(&source_name).send().await.unwrap().queue_url.unwrap();

    let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for producer in 0..2 {
        let (client, source, acked, stop) = (client.clone(), source.clone(), acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let body = format!("p{producer}-{i}");
                let sent = client.send_message().queue_url(&source).message_body(&body).send();
                match tokio::time::timeout(Duration::from_secs(10), sent).await {
                    Ok(Ok(output)) => {
                        acked.lock().unwrap().insert(output.message_id.unwrap(), body);
                    }
                    _ => break,
                }
            }
        }));
    }
    for _ in 0..2 {
        let (client, source, stop) = (client.clone(), source.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            // Visibility 0: every message is visible again at once, so its next receive moves it.
            while !stop.load(Ordering::Relaxed) {
                let receive =
                    client.receive_message().queue_url(&source).max_number_of_messages(10).visibility_timeout(0).send();
                if !matches!(tokio::time::timeout(Duration::from_secs(10), receive).await, Ok(Ok(_))) {
                    break;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }

    server.restart();
    let client = client_without_retries(&server.url);
    let dlq = client.get_queue_url().queue_name(&dlq_name).send().await.unwrap().queue_url.unwrap();
    // Drain both queues without deleting (a long visibility keeps each message counted once).
    let mut found: HashMap<String, Vec<&str>> = HashMap::new();
    for (queue, label) in [(&source, "source"), (&dlq, "dead-letter queue")] {
        loop {
            let received = client
                .receive_message()
                .queue_url(queue)
                .max_number_of_messages(10)
                .visibility_timeout(600)
                .send()
                .await
                .unwrap();
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for message in messages {
                found.entry(message.message_id.unwrap()).or_default().push(label);
            }
        }
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "the load ran ({} sends acknowledged)", acked.len());
    let moved = found.values().filter(|places| places.contains(&"dead-letter queue")).count();
    assert!(moved > 0, "some messages were dead-lettered before the crash");
    for (id, body) in &acked {
        let places = found.get(id).cloned().unwrap_or_default();
        assert_eq!(places.len(), 1, "message {body} ({id}) must be in exactly one queue, found in {places:?}");
    }
    println!(
        "dead-letter crash test: {} sends acknowledged, {moved} in the dead-letter queue, each in exactly one queue",
        acked.len()
    );
}
