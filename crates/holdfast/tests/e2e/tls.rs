//! TLS: HTTP/1.1 and HTTP/2 by ALPN over a rustls connection, queue URLs in https, a plain-HTTP
//! client refused without harm, and the certificate reloaded on SIGHUP.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::TestServer;

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files in `dir`.
fn certificate(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf, CertificateDer<'static>) {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
    (cert, key, generated.cert.der().clone())
}

/// A server on TLS with a fresh certificate in `dir`, plus `extra_args`: the server, its
/// `host:port`, and the certificate to trust.
fn tls_server(dir: &std::path::Path, extra_args: &[&str]) -> (TestServer, String, CertificateDer<'static>) {
    let (cert, key, root) = certificate(dir, "server");
    let mut args = vec!["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()];
    args.extend_from_slice(extra_args);
    let server = TestServer::start_with(&args);
    let address = server.url.trim_start_matches("https://").to_string();
    (server, address, root)
}

/// A TLS connection to `address` trusting only `root`; returns it and the negotiated protocol.
async fn connect(
    address: &str,
    root: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> std::io::Result<(tokio_rustls::client::TlsStream<tokio::net::TcpStream>, Option<Vec<u8>>)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await?;
    let stream = connector.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await?;
    let negotiated = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    Ok((stream, negotiated))
}

fn create_queue_request(name: &str) -> hyper::Request<Full<Bytes>> {
    hyper::Request::builder()
        .method("POST")
        .uri("https://127.0.0.1/")
        .header("x-amz-target", "AmazonSQS.CreateQueue")
        .header("content-type", "application/x-amz-json-1.0")
        .body(Full::new(Bytes::from(format!("{{\"QueueName\":\"{name}\"}}"))))
        .unwrap()
}

async fn body_of(response: hyper::Response<hyper::body::Incoming>) -> (u16, String) {
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_http1_and_http2_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = certificate(dir.path(), "server");
    let server = TestServer::start_with(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let address = server.url.trim_start_matches("https://").to_string();

    // HTTP/1.1.
    let (stream, negotiated) = connect(&address, &root, &[b"http/1.1"]).await.unwrap();
    assert_eq!(negotiated.as_deref(), Some(&b"http/1.1"[..]));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let (status, body) = body_of(sender.send_request(create_queue_request("over-http1")).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"QueueUrl\":\"https://"), "queue URLs say https: {body}");

    // HTTP/2, chosen by ALPN.
    let (stream, negotiated) = connect(&address, &root, &[b"h2", b"http/1.1"]).await.unwrap();
    assert_eq!(negotiated.as_deref(), Some(&b"h2"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let (status, body) = body_of(sender.send_request(create_queue_request("over-http2")).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("/000000000000/over-http2"), "{body}");

    // Plain HTTP to the TLS port gets no answer, and harms nothing.
    let mut plain = tokio::net::TcpStream::connect(&address).await.unwrap();
    plain.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), plain.read_to_end(&mut answer)).await;
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));
    let (stream, _) = connect(&address, &root, &[b"http/1.1"]).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let (status, _) = body_of(sender.send_request(create_queue_request("after-plain")).await.unwrap()).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_is_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, first) = certificate(dir.path(), "server");
    let server = TestServer::start_with(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let address = server.url.trim_start_matches("https://").to_string();
    assert!(connect(&address, &first, &[b"http/1.1"]).await.is_ok());

    // A new certificate in the same files, then SIGHUP.
    let (new_cert, new_key, second) = certificate(dir.path(), "next");
    std::fs::rename(new_cert, &cert).unwrap();
    std::fs::rename(new_key, &key).unwrap();
    let status = std::process::Command::new("kill").args(["-HUP", &server.pid().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while connect(&address, &second, &[b"http/1.1"]).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the new certificate was never served\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(connect(&address, &first, &[b"http/1.1"]).await.is_err(), "the old certificate is gone");
}

/// A client that opens a connection to the TLS port and never finishes (or starts) the handshake
/// is dropped after the idle timeout, like one that never finishes its request header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = certificate(dir.path(), "server");
    let server = TestServer::start_with(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--idle-timeout",
        "1",
    ]);
    let address = server.url.trim_start_matches("https://").to_string();
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    // Half a ClientHello record header, then silence.
    stalled.write_all(&[0x16, 0x03]).await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), stalled.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the stalled handshake was still open after 20 s");
    assert!(connect(&address, &root, &[b"http/1.1"]).await.is_ok(), "others still connect");
}

/// An HTTP/2 connection has no header read timeout between requests, so the server closes it
/// itself once it has answered nothing for `--idle-timeout`; a request in flight (a long poll
/// longer than the idle timeout) keeps it open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (server, address, root) = tls_server(dir.path(), &["--idle-timeout", "2"]);
    let (stream, negotiated) = connect(&address, &root, &[b"h2"]).await.unwrap();
    assert_eq!(negotiated.as_deref(), Some(&b"h2"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    let connection = tokio::spawn(connection);
    let (status, body) = body_of(sender.send_request(create_queue_request("idle-h2")).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");

    // A long poll of 3 s, longer than the idle timeout, is answered on the same connection.
    let started = std::time::Instant::now();
    let poll = hyper::Request::builder()
        .method("POST")
        .uri("https://127.0.0.1/")
        .header("x-amz-target", "AmazonSQS.ReceiveMessage")
        .header("content-type", "application/x-amz-json-1.0")
        .body(Full::new(Bytes::from(format!(
            "{{\"QueueUrl\":\"{}/000000000000/idle-h2\",\"WaitTimeSeconds\":3}}",
            server.url
        ))))
        .unwrap();
    let (status, body) = body_of(sender.send_request(poll).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() >= Duration::from_millis(2_900), "the poll waited");

    // Then nothing: the server closes the connection about 2 s later.
    let closed = tokio::time::timeout(Duration::from_secs(20), connection).await;
    assert!(closed.is_ok(), "the idle HTTP/2 connection was still open after 20 s");
}

/// One HTTP/2 connection may have at most 256 requests in flight: the server says so in its
/// SETTINGS, and a client that opens more waits for a free stream instead of each one costing the
/// server a task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_connections_are_capped_at_256_streams() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, address, root) = tls_server(dir.path(), &[]);
    let (stream, _) = connect(&address, &root, &[b"h2"]).await.unwrap();
    let (client, connection) = h2::client::handshake(stream).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::builder()
        .method("POST")
        .uri("https://127.0.0.1/")
        .header("x-amz-target", "AmazonSQS.ListQueues")
        .header("content-type", "application/x-amz-json-1.0")
        .body(())
        .unwrap();
    let (response, mut body) = client.send_request(request, false).unwrap();
    body.send_data(Bytes::from_static(b"{}"), true).unwrap();
    assert_eq!(response.await.unwrap().status(), 200);
    assert_eq!(client.current_max_send_streams(), 256, "the server's SETTINGS_MAX_CONCURRENT_STREAMS");
}

#[test]
fn the_load_generator_measures_an_https_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _, _) = tls_server(dir.path(), &[]);
    let bench = |extra: &[&str]| {
        std::process::Command::new(crate::common::binary())
            .args(["bench", "send", "--endpoint-url", &server.url, "-c", "2", "-d", "0.5", "--json"])
            .args(extra)
            .env_remove("AWS_CA_BUNDLE")
            .output()
            .unwrap()
    };
    let trusted = bench(&["--ca-cert", dir.path().join("server.pem").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&trusted.stderr);
    assert!(trusted.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&trusted.stdout).unwrap();
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["sent"].as_u64().unwrap() > 0, "{report}");

    // Without the certificate the self-signed server is not trusted, and the run says so.
    let untrusted = bench(&[]);
    let output =
        format!("{}{}", String::from_utf8_lossy(&untrusted.stdout), String::from_utf8_lossy(&untrusted.stderr));
    assert!(!untrusted.status.success() || output.contains("certificate"), "{output}");
}

#[test]
fn the_health_command_checks_an_https_server() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _, _) = tls_server(dir.path(), &[]);
    let health = |extra: &[&str]| {
        std::process::Command::new(crate::common::binary())
            .args(["health", "--url", &server.url, "--ready"])
            .args(extra)
            .env_remove("AWS_CA_BUNDLE")
            .output()
            .unwrap()
    };
    let trusted = health(&["--ca-cert", dir.path().join("server.pem").to_str().unwrap()]);
    assert_eq!(trusted.status.code(), Some(0), "{}", String::from_utf8_lossy(&trusted.stderr));
    assert_eq!(String::from_utf8_lossy(&trusted.stdout).trim(), "ready");
    let untrusted = health(&[]);
    assert_eq!(untrusted.status.code(), Some(3), "an unknown certificate is not an answer");
}
