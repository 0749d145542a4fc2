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
    // Declared queues live in the server's region, so a client there sees them.
    let client = crate::common::client_in_region(&server.url, "eu-west-1");
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

/// An HTTP/1.1 request on an open connection, keep-alive.
fn list_queues_request() -> &'static [u8] {
    b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonSQS.ListQueues\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n{}"
}

/// Reads one response's head and body (by Content-Length) off `stream`.
fn read_response(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        response.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&response).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    response.extend_from_slice(&body);
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[test]
fn connections_beyond_the_cap_wait_until_one_closes() {
    let server = TestServer::start_with(&["--max-connections", "3"]);
    let mut open: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(host_port(&server.url)).unwrap()).collect();
    for stream in &mut open {
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream.write_all(list_queues_request()).unwrap();
        assert!(read_response(stream).unwrap().starts_with("HTTP/1.1 200"));
    }
    // A fourth connection is accepted by the kernel but not served while three are open.
    let mut waiting = TcpStream::connect(host_port(&server.url)).unwrap();
    waiting.write_all(list_queues_request()).unwrap();
    waiting.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let early = read_response(&mut waiting);
    assert!(early.is_err(), "served beyond the cap: {early:?}");
    // One closes: the waiting one is served.
    drop(open.pop());
    waiting.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let served = read_response(&mut waiting).expect("served once a connection closed");
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    assert!(server.log().contains("connection limit reached"), "{}", server.log());
}

#[test]
fn a_busy_connection_is_closed_at_its_maximum_age() {
    let server = TestServer::start_with(&["--max-connection-age", "1"]);
    let mut stream = TcpStream::connect(host_port(&server.url)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = std::time::Instant::now();
    // A trickle of requests, each well inside the idle timeout, for up to 20 s.
    let mut answered = 0;
    let closed = loop {
        if stream.write_all(list_queues_request()).is_err() {
            break true;
        }
        match read_response(&mut stream) {
            Ok(response) => {
                assert!(response.starts_with("HTTP/1.1 200"), "{response}");
                answered += 1;
            }
            Err(_) => break true,
        }
        if started.elapsed() > Duration::from_secs(20) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(closed, "the connection outlived its maximum age ({answered} requests answered)");
    assert!(answered >= 1, "the requests before the maximum age were answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_its_response_is_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = TestServer::start_with(&["--write-timeout", "2"]);
    let client = server.client();
    let queue = crate::common::create_queue(&client, &crate::common::unique("unread")).await;
    // Ten messages whose bodies the Query protocol escapes six-fold: a ~15 MB XML answer, more
    // than any socket buffer holds.
    let body = "\"".repeat(250_000);
    for _ in 0..10 {
        client.send_message().queue_url(&queue).message_body(&body).send().await.unwrap();
    }
    let form = format!(
        "Action=ReceiveMessage&MaxNumberOfMessages=10&VisibilityTimeout=60&QueueUrl={}",
        queue.replace(':', "%3A").replace('/', "%2F")
    );
    let request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let address: std::net::SocketAddr = host_port(&server.url).parse().unwrap();
    let mut stream = socket.connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    // Read nothing for longer than the write timeout, then see what arrived.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the server still held the connection open");
    let complete = String::from_utf8_lossy(&received).trim_end().ends_with("</ReceiveMessageResponse>");
    assert!(!complete, "the whole answer arrived ({} bytes): nothing was dropped", received.len());
    assert!(received.len() < 6 * 10 * body.len(), "{} bytes", received.len());
    // Everyone else is served as before, and the messages are still there once visible again.
    assert!(client.list_queues().send().await.is_ok());
}

/// Large responses waiting for clients that do not read them are bounded in memory: with a budget
/// smaller than two such answers, the second waits until the first is dropped (the write timeout)
/// and is then delivered whole; small requests are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_unread_responses_are_bounded_in_memory() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = TestServer::start_with(&["--write-timeout", "3", "--max-response-memory", "20000000"]);
    let client = server.client();
    let body = "\"".repeat(250_000);
    let mut queues = Vec::new();
    for name in ["first", "second"] {
        let queue = crate::common::create_queue(&client, &crate::common::unique(name)).await;
        for _ in 0..10 {
            client.send_message().queue_url(&queue).message_body(&body).send().await.unwrap();
        }
        queues.push(queue);
    }
    let receive = |queue: &str| {
        let form = format!(
            "Action=ReceiveMessage&MaxNumberOfMessages=10&VisibilityTimeout=60&QueueUrl={}",
            queue.replace(':', "%3A").replace('/', "%2F")
        );
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
    };
    let address: std::net::SocketAddr = host_port(&server.url).parse().unwrap();
    // The first client asks for a ~15 MB answer and reads none of it.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket.connect(address).await.unwrap();
    stuck.write_all(receive(&queues[0]).as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The second asks for another and reads it all: it must wait for the first to be dropped.
    let started = std::time::Instant::now();
    let mut reader = tokio::net::TcpStream::connect(address).await.unwrap();
    reader.write_all(receive(&queues[1]).as_bytes()).await.unwrap();
    let waiting = tokio::spawn(async move {
        let mut answer = Vec::new();
        reader.read_to_end(&mut answer).await.unwrap();
        (answer, started.elapsed())
    });
    // Small requests are not held up meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(client.list_queues().send().await.is_ok());
    assert!(!waiting.is_finished(), "the second large answer was sent while the first still held the budget");

    let (answer, elapsed) = tokio::time::timeout(Duration::from_secs(60), waiting).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{}", &text[..text.len().min(300)]);
    assert!(text.trim_end().ends_with("</ReceiveMessageResponse>"), "the second answer arrived whole");
    assert!(elapsed >= Duration::from_secs(2), "it waited for the first to be dropped ({elapsed:?})");
    drop(stuck);
}

#[tokio::test]
async fn declared_queues_may_name_a_dead_letter_queue_declared_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("holdfast.toml");
    std::fs::write(
        &config,
        r#"
[[queue]]
name = "leads"
attributes = { RedrivePolicy = { deadLetterTargetArn = "arn:aws:sqs:us-east-1:000000000000:leads-dlq", maxReceiveCount = 3 } }

[[queue]]
name = "leads-dlq"
"#,
    )
    .unwrap();
    let server = TestServer::start_with(&["--config", config.to_str().unwrap()]);
    let client = server.client();
    let url = client.get_queue_url().queue_name("leads").send().await.unwrap().queue_url.unwrap();
    let attributes = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let policy: serde_json::Value = serde_json::from_str(&attributes[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(policy["maxReceiveCount"], 3);
    assert!(policy["deadLetterTargetArn"].as_str().unwrap().ends_with(":leads-dlq"));
}

#[test]
fn a_server_that_cannot_bind_says_so_once_and_creates_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let output = std::process::Command::new(crate::common::binary())
        .args(["serve", "--bind", &address, "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("binding").count(), 1, "the reason, once: {err}");
    assert!(!data.exists(), "no data directory for a server that never started");
}
