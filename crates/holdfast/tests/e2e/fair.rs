//! Fair queues over the wire: a flood from one tenant (MessageGroupId) of a standard queue, and
//! the figures /metrics publishes about it.

use std::time::Duration;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{create_queue, unique, TestServer};

async fn get(url: &str, path: &str) -> String {
    let host = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

fn gauge(metrics: &str, name: &str, queue: &str) -> Option<u64> {
    let prefix = format!("{name}{{account=\"000000000000\",region=\"us-east-1\",queue=\"{queue}\"}} ");
    metrics.lines().find_map(|line| line.strip_prefix(prefix.as_str())).map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn a_flooding_tenant_waits_behind_the_quiet_ones() {
    let server = TestServer::start();
    let client = server.client();
    let name = unique("tenants");
    let url = create_queue(&client, &name).await;
    let send = |tenant: &'static str, count: usize| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            for chunk in (0..count).collect::<Vec<_>>().chunks(10) {
                let entries = chunk.iter().map(|i| {
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("e{i}"))
                        .message_body(format!("{tenant}-{i}"))
                        .message_group_id(tenant)
                        .build()
                        .unwrap()
                });
                client.send_message_batch().queue_url(&url).set_entries(Some(entries.collect())).send().await.unwrap();
            }
        }
    };
    send("flood", 300).await;
    send("quiet-a", 2).await;
    send("quiet-b", 2).await;
    // Consumers take up the flood first: oldest first while nobody is known to be noisy.
    for _ in 0..5 {
        let got =
            client.receive_message().queue_url(&url).max_number_of_messages(10).visibility_timeout(300).send().await;
        assert!(got.unwrap().messages.unwrap().iter().all(|m| m.body().unwrap().starts_with("flood")));
    }
    // Once the load is sampled, "flood" holds 50 of 50 in flight: noisy. The quiet tenants'
    // messages come next though 250 flood messages were sent before them.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let got = client.receive_message().queue_url(&url).max_number_of_messages(10).visibility_timeout(300).send().await;
    let bodies: Vec<String> = got.unwrap().messages.unwrap().iter().map(|m| m.body().unwrap().to_owned()).collect();
    let quiet: Vec<&String> = bodies.iter().filter(|b| b.starts_with("quiet")).collect();
    assert_eq!(quiet.len(), 4, "{bodies:?}");

    let metrics = get(&server.url, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert_eq!(gauge(&metrics, "sqs_approximate_number_of_noisy_groups", &name), Some(1));
    assert_eq!(gauge(&metrics, "sqs_approximate_number_of_messages_not_visible_in_quiet_groups", &name), Some(4));
    assert_eq!(gauge(&metrics, "sqs_approximate_number_of_messages_visible_in_quiet_groups", &name), Some(0));
    assert_eq!(gauge(&metrics, "sqs_approximate_number_of_messages_visible", &name), Some(244));
    assert_eq!(gauge(&metrics, "sqs_approximate_number_of_messages_not_visible", &name), Some(60));
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let server = TestServer::start_with(&["--metrics", "false"]);
    let answer = get(&server.url, "/metrics").await;
    assert!(answer.starts_with("HTTP/1.1 404"), "then it is just a GET without an action: {answer}");
}
