//! Server-level behaviour: configuration file, request limits, protocol sniffing on the wire.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::TestServer;
use aws_sdk_sqs::types::QueueAttributeName;

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Sends raw bytes and returns the raw response (until the server closes or `limit` bytes).
fn raw_exchange(url: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(host_port(url)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = stream.write_all(request);
    let mut response = Vec::new();
    let mut buffer = [0u8; 8192];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buffer[..n]);
        if response.windows(4).any(|w| w == b"\r\n\r\n")
            && String::from_utf8_lossy(&response).contains("</ErrorResponse>")
        {
            break;
        }
        if response.windows(4).any(|w| w == b"\r\n\r\n") && response.ends_with(b"}") {
            break;
        }
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn config_file_declares_queues_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("holdfast.toml");
    std::fs::write(
        &config,
        r#"
account_id = "123456789012"
region = "eu-west-1"

[[queue]]
name = "leads"
attributes = { VisibilityTimeout = 120, ReceiveMessageWaitTimeSeconds = 5 }
tags = { app = "forms" }

[[queue]]
name = "orders"
"#,
    )
    .unwrap();
    let server = TestServer::start_with(&["--config", config.to_str().unwrap()]);
    let client = server.client();
    let urls = client.list_queues().send().await.unwrap().queue_urls.unwrap();
    assert_eq!(urls, vec![format!("{}/123456789012/leads", server.url), format!("{}/123456789012/orders", server.url)]);
    let attributes = client
        .get_queue_attributes()
        .queue_url(&urls[0])
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(attributes[&QueueAttributeName::VisibilityTimeout], "120");
    assert_eq!(attributes[&QueueAttributeName::ReceiveMessageWaitTimeSeconds], "5");
    assert_eq!(attributes[&QueueAttributeName::QueueArn], "arn:aws:sqs:eu-west-1:123456789012:leads");
    assert_eq!(client.list_queue_tags().queue_url(&urls[0]).send().await.unwrap().tags.unwrap()["app"], "forms");
}

#[test]
fn oversized_bodies_are_refused_before_they_are_read_whole() {
    let server = TestServer::start_with(&["--max-request-bytes", "65536"]);
    let body = vec![b'a'; 200_000];
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonSQS.ListQueues\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let response = raw_exchange(&server.url, &request);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("RequestEntityTooLarge"), "{response}");
}

#[test]
fn idle_connections_are_closed() {
    let server = TestServer::start_with(&["--idle-timeout", "1"]);
    let mut stream = TcpStream::connect(host_port(&server.url)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n").unwrap(); // and never finish the headers
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 1024];
    let read = stream.read(&mut buffer);
    assert!(started.elapsed() < Duration::from_secs(15), "the half-sent request was cut off, not left waiting");
    match read {
        Ok(0) => {}
        Ok(n) => assert!(buffer[..n].starts_with(b"HTTP/1.1 408"), "{}", String::from_utf8_lossy(&buffer[..n])),
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}"),
    }
}

#[test]
fn errors_answer_in_the_protocol_of_the_request() {
    let server = TestServer::start();
    let json = raw_exchange(
        &server.url,
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonSQS.GetQueueUrl\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 21\r\n\r\n{\"QueueName\":\"nope1\"}",
    );
    assert!(json.starts_with("HTTP/1.1 400"), "{json}");
    assert!(
        json.to_ascii_lowercase().contains("x-amzn-query-error: aws.simplequeueservice.nonexistentqueue;sender"),
        "{json}"
    );
    assert!(json.contains("com.amazonaws.sqs#QueueDoesNotExist"), "{json}");

    let body = "Action=GetQueueUrl&QueueName=nope1";
    let query = raw_exchange(
        &server.url,
        format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
    );
    assert!(query.starts_with("HTTP/1.1 400"), "{query}");
    assert!(query.contains("<Code>AWS.SimpleQueueService.NonExistentQueue</Code>"), "{query}");
}
