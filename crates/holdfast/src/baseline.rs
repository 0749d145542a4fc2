//! `holdfast baseline` (hidden): an SQS endpoint that does nothing. It accepts connections with
//! the same hyper HTTP/1.1 stack and connection settings as `holdfast serve` and answers every
//! JSON request with a canned, valid answer for its `X-Amz-Target`, so `holdfast bench` against
//! it measures the ceiling of the HTTP stack (and of the load generator) on this machine.
//!
//! Canned answers: CreateQueue/GetQueueUrl a queue URL for the name asked; SendMessage a fixed
//! MD5 and MessageId; the batch actions echo every entry Id as successful; ReceiveMessage as many
//! fixed messages as MaxNumberOfMessages asks (default 1), so a roundtrip moves as many messages
//! per request as against a real queue; everything else `{}`. Nothing is stored and no MD5 is computed, so SDKs that
//! check MD5s reject the answers: use it with `holdfast bench` only.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;

#[derive(Args, Clone, Debug)]
pub struct BaselineArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9324")]
    pub bind: SocketAddr,
    /// Seconds a connection may take to send a request header (as `serve --idle-timeout`).
    #[arg(long, default_value_t = 30)]
    pub idle_timeout: u64,
}

const MAX_BODY: usize = 4 * 1024 * 1024;
const SEND_ANSWER: &[u8] =
    br#"{"MD5OfMessageBody":"d41d8cd98f00b204e9800998ecf8427e","MessageId":"00000000-0000-4000-8000-000000000000"}"#;

/// ReceiveMessage answers with 1..=10 canned messages, built once.
fn receive_answer(count: usize) -> Bytes {
    static ANSWERS: OnceLock<Vec<Bytes>> = OnceLock::new();
    let answers = ANSWERS.get_or_init(|| {
        (1..=10)
            .map(|n| {
                let messages: Vec<String> = (0..n)
                    .map(|i| {
                        format!(
                            r#"{{"MessageId":"00000000-0000-4000-8000-{i:012}","ReceiptHandle":"baseline-receipt-handle-{i}","MD5OfBody":"d41d8cd98f00b204e9800998ecf8427e","Body":""}}"#
                        )
                    })
                    .collect();
                Bytes::from(format!("{{\"Messages\":[{}]}}", messages.join(",")))
            })
            .collect()
    });
    answers[count.clamp(1, 10) - 1].clone()
}

pub fn run(args: BaselineArgs) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("holdfast baseline: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: BaselineArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.bind).await?;
    let local_addr = listener.local_addr()?;
    println!("listening on http://{local_addr}");
    let idle_timeout = Duration::from_secs(args.idle_timeout);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let connection = crate::server::http1_builder(idle_timeout)
                    .serve_connection(TokioIo::new(stream), service_fn(move |request| answer(request, local_addr)));
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

#[derive(Deserialize)]
struct Entries {
    #[serde(rename = "Entries", default)]
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "Id", default)]
    id: String,
}

#[derive(Deserialize)]
struct Receive {
    #[serde(rename = "MaxNumberOfMessages", default)]
    max_number_of_messages: Option<usize>,
}

#[derive(Deserialize)]
struct QueueName {
    #[serde(rename = "QueueName", default)]
    queue_name: String,
}

async fn answer(
    request: hyper::Request<Incoming>,
    local_addr: SocketAddr,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let target = request.headers().get("x-amz-target").cloned();
    let op = target.as_ref().and_then(|t| t.to_str().ok()).and_then(|t| t.strip_prefix("AmazonSQS.")).unwrap_or("");
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let answer = match op {
        "SendMessage" => Bytes::from_static(SEND_ANSWER),
        "ReceiveMessage" => {
            let max = serde_json::from_slice::<Receive>(&body).ok().and_then(|r| r.max_number_of_messages);
            receive_answer(max.unwrap_or(1))
        }
        "CreateQueue" | "GetQueueUrl" => {
            let name = serde_json::from_slice::<QueueName>(&body).map(|q| q.queue_name).unwrap_or_default();
            let url = serde_json::to_string(&format!("http://{local_addr}/000000000000/{name}")).expect("string");
            Bytes::from(format!("{{\"QueueUrl\":{url}}}"))
        }
        "SendMessageBatch" | "DeleteMessageBatch" | "ChangeMessageVisibilityBatch" => {
            let entries = serde_json::from_slice::<Entries>(&body).map(|e| e.entries).unwrap_or_default();
            let mut out = String::from("{\"Successful\":[");
            for (i, entry) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let id = serde_json::to_string(&entry.id).expect("string");
                if op == "SendMessageBatch" {
                    out.push_str(&format!(
                        "{{\"Id\":{id},\"MessageId\":\"00000000-0000-4000-8000-{i:012}\",\"MD5OfMessageBody\":\"d41d8cd98f00b204e9800998ecf8427e\"}}"
                    ));
                } else {
                    out.push_str(&format!("{{\"Id\":{id}}}"));
                }
            }
            out.push_str("],\"Failed\":[]}");
            Bytes::from(out)
        }
        _ => Bytes::from_static(b"{}"),
    };
    let mut response = hyper::Response::new(Full::new(answer));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.0"));
    headers.insert("x-amzn-requestid", HeaderValue::from_static("00000000-0000-4000-8000-000000000000"));
    Ok(response)
}
