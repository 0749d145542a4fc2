//! Request authentication with `--credentials`: AWS Signature Version 4 against the keys of a
//! credentials file, every refusal with the error AWS answers, and keys reloaded on SIGHUP.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use aws_sdk_sqs::types::MessageSystemAttributeName;
use holdfast_protocol::{sigv4, HttpRequest};
use http::{HeaderMap, HeaderValue, Method, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{binary, create_queue, error_code, signed_client, unique, TestServer};

const CREDENTIALS: &str = r#"
[[key]]
access_key_id = "AKIDTEST"
secret_access_key = "secret"
user = "producer"

[[key]]
access_key_id = "AKIDROOT"
secret_access_key = "root-secret"
"#;

/// A server authenticating against `credentials`, written next to its data directory.
fn secured(credentials: &str) -> (TestServer, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials.toml");
    std::fs::write(&path, credentials).unwrap();
    let server = TestServer::start_with(&["--credentials", path.to_str().unwrap()]);
    (server, path, dir)
}

/// A raw JSON request signed with `secret` at `at`, with whatever `tamper` does to it after
/// signing. Returns the status and the body of the answer.
async fn signed_json(
    url: &str,
    target: &str,
    body: &str,
    (key, secret): (&str, &str),
    at: SystemTime,
    tamper: impl FnOnce(&mut HeaderMap, &mut String),
) -> (u16, String) {
    let host = url.trim_start_matches("http://");
    let date = sigv4::format_amz_date(at);
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_str(host).unwrap());
    headers.insert("x-amz-date", HeaderValue::from_str(&date).unwrap());
    headers.insert("x-amz-target", HeaderValue::from_str(&format!("AmazonSQS.{target}")).unwrap());
    headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.0"));
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()));
    headers.insert("x-amz-content-sha256", HeaderValue::from_str(&digest).unwrap());
    let signed: Vec<String> =
        ["content-type", "host", "x-amz-content-sha256", "x-amz-date", "x-amz-target"].map(String::from).to_vec();
    let uri: Uri = "/".parse().unwrap();
    let request = HttpRequest { method: &Method::POST, uri: &uri, headers: &headers, body: body.as_bytes() };
    let scope = format!("{}/us-east-1/sqs/aws4_request", &date[..8]);
    let to_sign = sigv4::string_to_sign(&date, &scope, &sigv4::canonical_request(&request, &signed));
    let signature = sigv4::signature(&sigv4::signing_key(secret, &date[..8], "us-east-1", "sqs"), &to_sign);
    let authorization =
        format!("AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={}, Signature={signature}", signed.join(";"));
    headers.insert("authorization", HeaderValue::from_str(&authorization).unwrap());
    let mut body = body.to_owned();
    tamper(&mut headers, &mut body);
    let mut raw = String::from("POST / HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in &headers {
        raw.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    exchange(host, raw.as_bytes()).await
}

async fn exchange(host: &str, request: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

#[tokio::test]
async fn a_known_key_is_served_and_its_user_is_the_sender() {
    let (server, _, _dir) = secured(CREDENTIALS);
    let producer = signed_client(&server.url, "AKIDTEST", "secret");
    let url = create_queue(&producer, &unique("signed")).await;
    producer.send_message().queue_url(&url).message_body("hello").send().await.unwrap();
    let received = signed_client(&server.url, "AKIDROOT", "root-secret")
        .receive_message()
        .queue_url(&url)
        .message_system_attribute_names(MessageSystemAttributeName::SenderId)
        .send()
        .await
        .unwrap();
    let message = received.messages.unwrap().remove(0);
    assert_eq!(message.attributes.unwrap()[&MessageSystemAttributeName::SenderId], "producer");
}

#[tokio::test]
async fn unknown_keys_and_wrong_secrets_are_refused() {
    let (server, _, _dir) = secured(CREDENTIALS);
    let unknown = signed_client(&server.url, "AKIDNOBODY", "secret").list_queues().send().await.unwrap_err();
    assert_eq!(error_code(unknown).as_deref(), Some("InvalidClientTokenId"));
    let wrong = signed_client(&server.url, "AKIDTEST", "not-the-secret").list_queues().send().await.unwrap_err();
    assert_eq!(error_code(wrong).as_deref(), Some("SignatureDoesNotMatch"));
}

#[tokio::test]
async fn each_bad_signature_gets_the_error_aws_answers() {
    let (server, _, _dir) = secured(CREDENTIALS);
    let host = server.url.trim_start_matches("http://").to_string();
    let now = SystemTime::now();
    let key = ("AKIDTEST", "secret");

    let (status, answer) = signed_json(&server.url, "ListQueues", "{}", key, now, |_, _| {}).await;
    assert_eq!(status, 200, "{answer}");

    // No signature at all, in either protocol.
    let unsigned = "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Amz-Target: AmazonSQS.ListQueues\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n{}";
    let (status, answer) = exchange(&host, unsigned.as_bytes()).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("MissingAuthenticationToken"), "{answer}");
    let query = "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 17\r\n\r\nAction=ListQueues";
    let (status, answer) = exchange(&host, query.as_bytes()).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("<Code>MissingAuthenticationToken</Code>"), "{answer}");

    // An Authorization header that does not parse.
    let (status, answer) = signed_json(&server.url, "ListQueues", "{}", key, now, |headers, _| {
        headers.insert("authorization", HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKIDTEST"));
    })
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("IncompleteSignature"), "{answer}");

    // Signed twenty minutes ago, or twenty minutes from now.
    for skew in [-1_200i64, 1_200] {
        let at = if skew < 0 { now - Duration::from_secs(1_200) } else { now + Duration::from_secs(1_200) };
        let (status, answer) = signed_json(&server.url, "ListQueues", "{}", key, at, |_, _| {}).await;
        assert_eq!(status, 400, "{skew}: {answer}");
        assert!(answer.contains("RequestExpired"), "{answer}");
    }

    // A body swapped after signing: its hash no longer matches the signed one.
    let body = r#"{"QueueName":"x"}"#;
    let (status, answer) = signed_json(&server.url, "GetQueueUrl", body, key, now, |_, body| {
        *body = r#"{"QueueName":"y"}"#.into();
    })
    .await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("SignatureDoesNotMatch"), "{answer}");

    // A signed header changed after signing.
    let (status, answer) = signed_json(&server.url, "ListQueues", "{}", key, now, |headers, _| {
        headers.insert("x-amz-target", HeaderValue::from_static("AmazonSQS.DeleteQueue"));
    })
    .await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("SignatureDoesNotMatch"), "{answer}");
}

/// A presigned Query GET, as kombu's own client and browsers use: valid until it expires.
#[tokio::test]
async fn presigned_urls_work_until_they_expire() {
    let (server, _, _dir) = secured(CREDENTIALS);
    let host = server.url.trim_start_matches("http://").to_string();
    let presign = |at: SystemTime, expires: u64| {
        let date = sigv4::format_amz_date(at);
        let scope = format!("{}/us-east-1/sqs/aws4_request", &date[..8]);
        let query = format!(
            "Action=ListQueues&Version=2012-11-05&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDTEST%2F{}&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host",
            scope.replace('/', "%2F")
        );
        let uri: Uri = format!("/?{query}").parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_str(&host).unwrap());
        let request = HttpRequest { method: &Method::GET, uri: &uri, headers: &headers, body: b"" };
        let canonical = sigv4::canonical_request(&request, &["host".to_string()]);
        let to_sign = sigv4::string_to_sign(&date, &scope, &canonical);
        let signature = sigv4::signature(&sigv4::signing_key("secret", &date[..8], "us-east-1", "sqs"), &to_sign);
        format!("GET /?{query}&X-Amz-Signature={signature} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    let (status, answer) = exchange(&host, presign(SystemTime::now(), 300).as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("<ListQueuesResponse"), "{answer}");
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3_600);
    let (status, answer) = exchange(&host, presign(an_hour_ago, 300).as_bytes()).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("RequestExpired"), "{answer}");
}

#[tokio::test]
async fn keys_are_reloaded_on_sighup() {
    let (server, path, _dir) = secured(CREDENTIALS);
    let newcomer = signed_client(&server.url, "AKIDNEW", "new-secret");
    let refused = newcomer.list_queues().send().await.unwrap_err();
    assert_eq!(error_code(refused).as_deref(), Some("InvalidClientTokenId"));

    std::fs::write(&path, "[[key]]\naccess_key_id = \"AKIDNEW\"\nsecret_access_key = \"new-secret\"\n").unwrap();
    let hangup = Command::new("kill").args(["-HUP", &server.pid().to_string()]).status().unwrap();
    assert!(hangup.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while newcomer.list_queues().send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the new key was never accepted\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let removed = signed_client(&server.url, "AKIDTEST", "secret").list_queues().send().await.unwrap_err();
    assert_eq!(error_code(removed).as_deref(), Some("InvalidClientTokenId"), "the old key is gone");

    // A broken file leaves the keys in force.
    std::fs::write(&path, "this is not toml [[").unwrap();
    Command::new("kill").args(["-HUP", &server.pid().to_string()]).status().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(newcomer.list_queues().send().await.is_ok());
}

#[test]
fn an_open_server_on_a_public_address_must_be_asked_for() {
    let refused = Command::new(binary())
        .args(["serve", "--bind", "0.0.0.0:0", "--storage", "memory"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("without authentication") && stderr.contains("--auth off"), "{stderr}");

    let mut open = Command::new(binary())
        .args(["serve", "--bind", "0.0.0.0:0", "--storage", "memory", "--auth", "off"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(open.stdout.take().unwrap()), &mut first).unwrap();
    let _ = open.kill();
    let _ = open.wait();
    assert!(first.starts_with("listening on http://0.0.0.0:"), "{first}");
}
