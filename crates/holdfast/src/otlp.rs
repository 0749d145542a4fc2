//! OpenTelemetry traces of requests, exported over OTLP/HTTP (JSON encoding) when
//! `--otlp-endpoint` is set.
//!
//! Each SQS and CloudWatch request becomes one server span named after its action
//! (`SQS.SendMessage`), with the RPC and messaging attributes of OpenTelemetry's semantic
//! conventions. Its parent is the caller's context: a W3C `traceparent` header, else an X-Ray
//! `X-Amzn-Trace-Id` header, else (for a single send) the message's `AWSTraceHeader` system
//! attribute. Producer and consumer meet through that attribute: a message keeps the
//! `AWSTraceHeader` it was sent with, and the span of the receive that returns it links to it, so
//! a trace viewer shows the consumer's work next to the producer's.
//!
//! Exporting never holds up a request: spans go through a bounded channel (when it is full they
//! are dropped and counted), and one task posts them in batches. A collector that is down costs a
//! warning a minute, not memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use holdfast_api::{Action, Request, Response, SqsError};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::RngCore;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Spans waiting to be exported; past this, new ones are dropped.
const QUEUE_CAPACITY: usize = 8_192;
/// The most spans in one export request.
const BATCH_SIZE: usize = 512;
/// How long a span waits for its batch to fill.
const BATCH_DELAY: Duration = Duration::from_secs(1);
/// How long one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// A span context: a trace, and the span within it (absent when only the trace is known).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: [u8; 16],
    pub span_id: Option<[u8; 8]>,
    pub sampled: bool,
}

impl SpanContext {
    /// A W3C `traceparent`: `00-<32 hex trace>-<16 hex span>-<2 hex flags>`.
    pub fn from_traceparent(text: &str) -> Option<SpanContext> {
        let mut parts = text.trim().split('-');
        let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let trace_id: [u8; 16] = hex::decode(trace).ok()?.try_into().ok()?;
        let span_id: [u8; 8] = hex::decode(span).ok()?.try_into().ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        let valid = trace_id != [0; 16] && span_id != [0; 8];
        valid.then_some(SpanContext { trace_id, span_id: Some(span_id), sampled: flags & 1 == 1 })
    }

    /// An X-Ray trace header, as `X-Amzn-Trace-Id` and `AWSTraceHeader` carry it:
    /// `Root=1-<8 hex epoch>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>`. The X-Ray trace id maps to
    /// an OpenTelemetry one by dropping the version and dashes, as the X-Ray propagator does.
    pub fn from_xray(text: &str) -> Option<SpanContext> {
        let mut trace_id = None;
        let mut span_id = None;
        let mut sampled = true;
        for field in text.split(';') {
            let (key, value) = field.trim().split_once('=')?;
            match key {
                "Root" => {
                    let mut parts = value.split('-');
                    let (version, time, rest) = (parts.next()?, parts.next()?, parts.next()?);
                    if version != "1" || time.len() != 8 || rest.len() != 24 || parts.next().is_some() {
                        return None;
                    }
                    trace_id = Some(hex::decode(format!("{time}{rest}")).ok()?.try_into().ok()?);
                }
                "Parent" => span_id = Some(hex::decode(value).ok()?.try_into().ok()?),
                "Sampled" => sampled = value != "0",
                _ => {}
            }
        }
        Some(SpanContext { trace_id: trace_id?, span_id, sampled })
    }
}

/// The caller's context from a request's headers: `traceparent` first, then `X-Amzn-Trace-Id`.
pub fn parent_of(headers: &http::HeaderMap) -> Option<SpanContext> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header("traceparent")
        .and_then(SpanContext::from_traceparent)
        .or_else(|| header("x-amzn-trace-id").and_then(SpanContext::from_xray))
}

/// One finished request, as a span.
pub struct Span {
    pub name: String,
    pub parent: Option<SpanContext>,
    pub links: Vec<SpanContext>,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(&'static str, Value)>,
    /// The error code, when the request failed.
    pub error: Option<String>,
}

/// The exporter: a handle requests record spans through.
pub struct Exporter {
    spans: mpsc::Sender<Value>,
    dropped: Arc<AtomicU64>,
}

impl Exporter {
    /// Starts the export task, posting to `endpoint` (a base URL; `/v1/traces` is appended
    /// unless the path already ends with it). Returns the exporter and the task, which ends once
    /// `stop` turns true and the spans queued by then are sent.
    pub fn start(
        endpoint: &str,
        service_name: &str,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<(Exporter, tokio::task::JoinHandle<()>)> {
        let url = traces_url(endpoint)?;
        let (spans, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        let resource = json!({"attributes": [
            attribute("service.name", json!(service_name)),
            attribute("service.version", json!(env!("CARGO_PKG_VERSION"))),
        ]});
        let task = tokio::spawn(export_loop(url, resource, receiver, Arc::clone(&dropped), stop));
        Ok((Exporter { spans, dropped }, task))
    }

    /// Queues a finished span for export; never waits. A span whose parent was not sampled is
    /// not recorded, as the caller asked.
    pub fn record(&self, span: Span) {
        if span.parent.is_some_and(|p| !p.sampled) {
            return;
        }
        if self.spans.try_send(encode(span)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What a request's span needs to know of it before the service takes it.
#[derive(Default)]
pub struct RequestFacts {
    queue_url: Option<String>,
    /// The `AWSTraceHeader` system attributes the request's messages were sent with.
    message_contexts: Vec<SpanContext>,
}

fn trace_attribute(attributes: Option<&holdfast_api::types::MessageAttributeMap>) -> Option<SpanContext> {
    let header = attributes?.get("AWSTraceHeader")?.string_value.as_deref()?;
    SpanContext::from_xray(header)
}

pub fn facts_of(request: &Request) -> RequestFacts {
    let (queue_url, message_contexts) = match request {
        Request::SendMessage(r) => {
            (&r.queue_url, trace_attribute(r.message_system_attributes.as_ref()).into_iter().collect())
        }
        Request::SendMessageBatch(r) => (
            &r.queue_url,
            r.entries.iter().filter_map(|e| trace_attribute(e.message_system_attributes.as_ref())).collect(),
        ),
        Request::ReceiveMessage(r) => (&r.queue_url, Vec::new()),
        Request::DeleteMessage(r) => (&r.queue_url, Vec::new()),
        Request::DeleteMessageBatch(r) => (&r.queue_url, Vec::new()),
        Request::ChangeMessageVisibility(r) => (&r.queue_url, Vec::new()),
        Request::ChangeMessageVisibilityBatch(r) => (&r.queue_url, Vec::new()),
        Request::GetQueueAttributes(r) => (&r.queue_url, Vec::new()),
        Request::SetQueueAttributes(r) => (&r.queue_url, Vec::new()),
        Request::PurgeQueue(r) => (&r.queue_url, Vec::new()),
        Request::DeleteQueue(r) => (&r.queue_url, Vec::new()),
        _ => return RequestFacts::default(),
    };
    RequestFacts { queue_url: Some(queue_url.clone()), message_contexts }
}

/// The span of one SQS request.
pub fn sqs_span(
    action: Option<Action>,
    headers: &http::HeaderMap,
    facts: RequestFacts,
    result: &Result<Response, SqsError>,
    (start, request_id): (SystemTime, &str),
) -> Span {
    let method = action.map(|a| a.name()).unwrap_or("Unknown");
    let mut attributes = vec![
        ("rpc.system", json!("aws-api")),
        ("rpc.service", json!("SQS")),
        ("rpc.method", json!(method)),
        ("messaging.system", json!("aws_sqs")),
        ("aws.request_id", json!(request_id)),
    ];
    if let Some(url) = &facts.queue_url {
        attributes.push(("aws.sqs.queue_url", json!(url)));
        attributes.push(("messaging.destination.name", json!(url.rsplit('/').next().unwrap_or(url))));
    }
    // A single send with no context in its headers continues the trace its message carries.
    let mut parent = parent_of(headers);
    let mut links = Vec::new();
    match (action, result) {
        (Some(Action::SendMessage), Ok(Response::SendMessage(sent))) => {
            if parent.is_none() {
                parent = facts.message_contexts.first().copied();
            }
            if let Some(id) = &sent.message_id {
                attributes.push(("messaging.message.id", json!(id)));
            }
        }
        (Some(Action::SendMessageBatch), _) => {
            links = facts.message_contexts;
        }
        (Some(Action::ReceiveMessage), Ok(Response::ReceiveMessage(received))) => {
            let messages = received.messages.as_deref().unwrap_or(&[]);
            attributes.push(("messaging.batch.message_count", json!(messages.len())));
            links = messages
                .iter()
                .filter_map(|m| m.attributes.as_ref()?.get("AWSTraceHeader"))
                .filter_map(|header| SpanContext::from_xray(header))
                .collect();
        }
        _ => {}
    }
    Span {
        name: format!("SQS.{method}"),
        parent,
        links,
        start,
        end: SystemTime::now(),
        attributes,
        error: result.as_ref().err().map(|e| e.code.query_code().to_owned()),
    }
}

fn traces_url(endpoint: &str) -> anyhow::Result<http::Uri> {
    let trimmed = endpoint.trim_end_matches('/');
    let url = if trimmed.ends_with("/v1/traces") { trimmed.to_owned() } else { format!("{trimmed}/v1/traces") };
    let uri: http::Uri = url.parse().map_err(|error| anyhow::anyhow!("--otlp-endpoint {endpoint:?}: {error}"))?;
    anyhow::ensure!(
        uri.scheme_str() == Some("http") && uri.host().is_some(),
        "--otlp-endpoint {endpoint:?}: expected http://HOST:PORT (a collector's OTLP/HTTP port, usually 4318)"
    );
    Ok(uri)
}

fn attribute(key: &str, value: Value) -> Value {
    let value = match value {
        Value::String(s) => json!({"stringValue": s}),
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"intValue": n.to_string()}),
        Value::Number(n) => json!({"doubleValue": n}),
        other => json!({"stringValue": other.to_string()}),
    };
    json!({"key": key, "value": value})
}

fn nanos(at: SystemTime) -> String {
    at.duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0).to_string()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    while bytes == [0u8; N] {
        rand::thread_rng().fill_bytes(&mut bytes);
    }
    bytes
}

/// A span in OTLP's JSON encoding (ids in hex, times in nanoseconds as strings).
fn encode(span: Span) -> Value {
    let trace_id = span.parent.map(|p| p.trace_id).unwrap_or_else(random_bytes::<16>);
    let mut out = json!({
        "traceId": hex::encode(trace_id),
        "spanId": hex::encode(random_bytes::<8>()),
        "name": span.name,
        "kind": 2, // SPAN_KIND_SERVER
        "startTimeUnixNano": nanos(span.start),
        "endTimeUnixNano": nanos(span.end),
        "attributes": span.attributes.into_iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>(),
        "status": match &span.error {
            Some(code) => json!({"code": 2, "message": code}), // STATUS_CODE_ERROR
            None => json!({"code": 0}),
        },
    });
    if let Some(parent) = span.parent.and_then(|p| p.span_id) {
        out["parentSpanId"] = json!(hex::encode(parent));
    }
    let links: Vec<Value> = span
        .links
        .iter()
        .filter_map(|link| {
            let span_id = link.span_id?;
            Some(json!({"traceId": hex::encode(link.trace_id), "spanId": hex::encode(span_id)}))
        })
        .collect();
    if !links.is_empty() {
        out["links"] = json!(links);
    }
    out
}

async fn export_loop(
    url: http::Uri,
    resource: Value,
    mut spans: mpsc::Receiver<Value>,
    dropped: Arc<AtomicU64>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut last_warning: Option<std::time::Instant> = None;
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    let mut stopping = false;
    loop {
        if stopping {
            // Whatever was queued before the stop, then done.
            while batch.len() < BATCH_SIZE {
                match spans.try_recv() {
                    Ok(span) => batch.push(span),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                break;
            }
        } else {
            tokio::select! {
                span = spans.recv() => match span {
                    Some(span) => batch.push(span),
                    None => break,
                },
                _ = stop.wait_for(|stop| *stop) => { stopping = true; continue; }
            }
            let deadline = tokio::time::Instant::now() + BATCH_DELAY;
            while batch.len() < BATCH_SIZE {
                match tokio::time::timeout_at(deadline, spans.recv()).await {
                    Ok(Some(span)) => batch.push(span),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        let body = json!({"resourceSpans": [{
            "resource": resource,
            "scopeSpans": [{"scope": {"name": "holdfast", "version": env!("CARGO_PKG_VERSION")}, "spans": batch.split_off(0)}],
        }]});
        if let Err(error) = post(&client, &url, body).await {
            let now = std::time::Instant::now();
            if last_warning.is_none_or(|at| now.duration_since(at) > Duration::from_secs(60)) {
                let dropped = dropped.load(Ordering::Relaxed);
                tracing::warn!(%error, %url, dropped, "could not export traces; spans are dropped until the collector answers");
                last_warning = Some(now);
            }
        }
    }
}

async fn post(client: &Client<HttpConnector, Full<Bytes>>, url: &http::Uri, body: Value) -> Result<(), String> {
    let request = http::Request::post(url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let send = async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        // Read the answer so the connection can be reused.
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the collector answered {status}"))
        }
    };
    tokio::time::timeout(EXPORT_TIMEOUT, send).await.map_err(|_| "the collector did not answer in time".to_owned())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_contexts_are_read_from_both_header_formats() {
        let w3c = SpanContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(hex::encode(w3c.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(w3c.span_id.map(hex::encode).as_deref(), Some("00f067aa0ba902b7"));
        assert!(w3c.sampled);
        assert!(
            !SpanContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap().sampled
        );
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-xyz-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(SpanContext::from_traceparent(bad).is_none(), "{bad}");
        }

        let xray = SpanContext::from_xray("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
            .unwrap();
        assert_eq!(hex::encode(xray.trace_id), "5759e988bd862e3fe1be46a994272793");
        assert_eq!(xray.span_id.map(hex::encode).as_deref(), Some("53995c3f42cd8ad8"));
        let root_only = SpanContext::from_xray("Root=1-5759e988-bd862e3fe1be46a994272793").unwrap();
        assert!(root_only.span_id.is_none() && root_only.sampled);
        assert!(!SpanContext::from_xray("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0").unwrap().sampled);
        for bad in ["", "Root=2-5759e988-bd862e3fe1be46a994272793", "Root=1-5759e988-bd86", "Parent=53995c3f42cd8ad8"] {
            assert!(SpanContext::from_xray(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn spans_encode_as_otlp_json() {
        let parent =
            SpanContext::from_xray("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8").unwrap();
        let at = UNIX_EPOCH + Duration::from_secs(1);
        let span = encode(Span {
            name: "SQS.ReceiveMessage".into(),
            parent: Some(parent),
            links: vec![parent],
            start: at,
            end: at + Duration::from_millis(2),
            attributes: vec![("rpc.method", json!("ReceiveMessage")), ("messaging.batch.message_count", json!(3))],
            error: Some("QueueDoesNotExist".into()),
        });
        assert_eq!(span["traceId"], "5759e988bd862e3fe1be46a994272793");
        assert_eq!(span["parentSpanId"], "53995c3f42cd8ad8");
        assert_eq!(span["startTimeUnixNano"], "1000000000");
        assert_eq!(span["endTimeUnixNano"], "1002000000");
        assert_eq!(span["attributes"][1], json!({"key": "messaging.batch.message_count", "value": {"intValue": "3"}}));
        assert_eq!(span["links"][0]["spanId"], "53995c3f42cd8ad8");
        assert_eq!(span["status"], json!({"code": 2, "message": "QueueDoesNotExist"}));
        assert_eq!(span["spanId"].as_str().unwrap().len(), 16);
    }

    #[test]
    fn endpoints_get_the_traces_path() {
        assert_eq!(traces_url("http://collector:4318").unwrap().to_string(), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/v1/traces").unwrap().to_string(), "http://c:4318/v1/traces");
        assert!(traces_url("collector:4318").is_err());
    }
}
