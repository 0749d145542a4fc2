//! One HTTP request in, one HTTP response out: read the body (bounded in size and time), decode it
//! with `holdfast_protocol`, hand the typed request to the service, encode the answer in the
//! protocol the request came in.
//!
//! Architecture Invariant: no SQS rule is decided here; this module only moves bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use holdfast_api::{sqs_error, SqsError};
use holdfast_core::{RequestContext, Sqs, Transport};
use holdfast_protocol::HttpRequest;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use tokio::sync::watch;

use crate::auth::Authenticator;

pub struct App {
    pub sqs: Arc<Sqs>,
    /// Who may send requests (SigV4 against the credentials file, or anyone).
    pub auth: Arc<Authenticator>,
    /// Overrides the Host header as the base of queue URLs.
    pub public_url: Option<String>,
    pub max_request_bytes: usize,
    /// How long a client may take to send its body.
    pub body_timeout: Duration,
    /// True once the server is shutting down: `/ready` then turns load balancers away.
    pub shutdown: watch::Receiver<bool>,
    /// The memory large responses may hold until their clients have read them, in KiB.
    pub response_memory: ResponseMemory,
    /// Whether `GET /metrics` answers (`crate::metrics`).
    pub metrics: bool,
    /// Whether every request acts in the server's region, whatever it signs for.
    pub single_region: bool,
    /// The init hooks' progress (`crate::init`): `/ready` waits for them.
    pub init: watch::Receiver<crate::init::InitState>,
    /// Requests served and their latency, for `/metrics`.
    pub requests: crate::metrics::RequestMetrics,
    /// Where request spans go, when traces are exported (`crate::otlp`).
    pub traces: Option<crate::otlp::Exporter>,
    /// Whether `/console` answers (`crate::console`).
    pub console: bool,
    /// The console's signed-in sessions.
    pub console_sessions: crate::console::Sessions,
}

/// A budget for the bytes of large responses not yet delivered. A response holds its share until
/// the last copy of its bytes is dropped: once written to the socket, or when its connection is
/// dropped (a client that does not read is dropped after the write timeout). A response that
/// finds the budget spent waits for room, and after `RESPONSE_MEMORY_WAIT` gives up with
/// ServiceUnavailable, so memory stays bounded however many clients stop reading at once.
#[derive(Clone)]
pub struct ResponseMemory {
    kib: Arc<tokio::sync::Semaphore>,
    max_kib: u32,
}

impl ResponseMemory {
    pub fn new(max_bytes: usize) -> Self {
        let max_kib = u32::try_from(max_bytes / 1024).unwrap_or(u32::MAX).max(1);
        ResponseMemory { kib: Arc::new(tokio::sync::Semaphore::new(max_kib as usize)), max_kib }
    }

    /// `body`, holding its share of the budget for as long as it lives.
    async fn hold(&self, body: Bytes) -> Option<Bytes> {
        if body.len() < ACCOUNTED_RESPONSE_BYTES {
            return Some(body);
        }
        // A response larger than the whole budget takes all of it.
        let kib = u32::try_from(body.len().div_ceil(1024)).unwrap_or(u32::MAX).min(self.max_kib);
        let acquire = Arc::clone(&self.kib).acquire_many_owned(kib);
        let permit = tokio::time::timeout(RESPONSE_MEMORY_WAIT, acquire).await.ok()?.ok()?;
        Some(Bytes::from_owner(Held { bytes: body, _permit: permit }))
    }
}

/// Response bytes with their share of the budget.
struct Held {
    bytes: Bytes,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Responses smaller than this are not counted: they are many, and small next to the budget.
const ACCOUNTED_RESPONSE_BYTES: usize = 64 * 1024;
/// How long a large response waits for room in the budget before the request fails.
const RESPONSE_MEMORY_WAIT: Duration = Duration::from_secs(10);

/// How long `/health` and `/ready` wait for the store to answer before calling it unavailable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

pub type HttpResponse = hyper::Response<Full<Bytes>>;

/// The two ends of a connection.
#[derive(Clone, Copy, Debug)]
pub struct Endpoints {
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// Whether the connection is TLS (queue URLs then say https; `aws:SecureTransport`).
    pub secure: bool,
}

/// Answers one request.
pub async fn handle(app: &App, request: hyper::Request<Incoming>, endpoints: Endpoints) -> HttpResponse {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();

    if parts.method == hyper::Method::GET && parts.uri.query().is_none() {
        match parts.uri.path() {
            "/health" => return probe(app, false).await,
            "/ready" => return probe(app, true).await,
            "/metrics" if app.metrics => return metrics(app).await,
            _ => {}
        }
    }
    // Until the body is decoded, the protocol is known from the headers alone.
    let early_protocol = holdfast_protocol::protocol_of(&parts.headers);
    let body = match read_body(body, app.max_request_bytes, app.body_timeout).await {
        Ok(body) => body,
        Err(error) => {
            tracing::debug!(%error, "request body rejected");
            app.requests.record(None, Some(error.code), started.elapsed());
            return holdfast_protocol::encode_error(early_protocol, &error, &request_id).map(Full::new);
        }
    };

    if app.console && crate::console::owns(parts.uri.path()) {
        return crate::console::handle(app, &parts, &body, endpoints).await;
    }
    let request = HttpRequest { method: &parts.method, uri: &parts.uri, headers: &parts.headers, body: &body };
    let signed_for = holdfast_protocol::sigv4::parse(&request).map(|credential| credential.service);
    if let Some(protocol) = holdfast_protocol::cloudwatch::protocol_of(&request, signed_for.as_deref()) {
        return cloudwatch(app, &parts, &body, protocol, endpoints, (started, &request_id)).await;
    }
    // Authentication comes before any parsing of the body, so an unsigned request gets nothing
    // from the server but its error.
    let caller = match app.auth.authenticate(&request, std::time::SystemTime::now(), "sqs") {
        Ok(caller) => caller,
        Err(error) => {
            tracing::debug!(%request_id, code = error.code.query_code(), "request not authenticated");
            // Before the body is decoded: which action it asked for is not known (nor trusted).
            app.requests.record(None, Some(error.code), started.elapsed());
            return holdfast_protocol::encode_error(early_protocol, &error, &request_id).map(Full::new);
        }
    };
    let (parts, decoded) = decode(parts, body).await;
    let context = request_context(app, &parts, endpoints, caller, decoded.credentials.clone());
    let action = decoded.action.map(|a| a.name()).unwrap_or("-");
    let span_start = app.traces.as_ref().map(|_| std::time::SystemTime::now() - started.elapsed());
    let mut span_facts = None;
    let result = match decoded.request {
        Ok(request) => {
            if app.traces.is_some() {
                span_facts = Some(crate::otlp::facts_of(&request));
            }
            app.sqs.handle(&context, request).await
        }
        Err(error) => Err(error),
    };
    if let (Some(traces), Some(start)) = (&app.traces, span_start) {
        let facts = span_facts.unwrap_or_default();
        traces.record(crate::otlp::sqs_span(decoded.action, &parts.headers, facts, &result, (start, &request_id)));
    }
    let response = match &result {
        Ok(response) => holdfast_protocol::encode_response(decoded.protocol, response, &request_id),
        Err(error) => holdfast_protocol::encode_error(decoded.protocol, error, &request_id),
    };
    let elapsed = started.elapsed();
    app.requests.record(decoded.action, result.as_ref().err().map(|e| e.code), elapsed);
    let elapsed_us = elapsed.as_micros() as u64;
    match &result {
        Err(error) if !error.code.sender_fault() => {
            tracing::warn!(%request_id, action, code = error.code.query_code(), message = %error.message, elapsed_us, "request failed")
        }
        Err(error) => {
            tracing::debug!(%request_id, action, status = response.status().as_u16(), code = error.code.query_code(), elapsed_us, "request")
        }
        Ok(_) => tracing::debug!(%request_id, action, status = response.status().as_u16(), elapsed_us, "request"),
    }
    let (head, body) = response.into_parts();
    match app.response_memory.hold(body).await {
        Some(body) => hyper::Response::from_parts(head, Full::new(body)),
        None => {
            tracing::warn!(%request_id, action, "too much response data is waiting for slow clients; refusing this one");
            let error = sqs_error!(ServiceUnavailable, "The server is busy sending large responses; try again later.");
            holdfast_protocol::encode_error(decoded.protocol, &error, &request_id).map(Full::new)
        }
    }
}

/// What the service needs to know of a request besides its parameters.
pub(crate) fn request_context(
    app: &App,
    parts: &http::request::Parts,
    endpoints: Endpoints,
    caller: Option<Arc<holdfast_core::Caller>>,
    credentials: Option<holdfast_protocol::sigv4::Credential>,
) -> RequestContext {
    RequestContext {
        base_url: base_url(app, parts, endpoints.local, endpoints.secure),
        sender_id: caller.as_ref().map(|caller| caller.sender_id().to_owned()),
        caller,
        transport: Transport { source_ip: Some(endpoints.peer.ip()), secure: endpoints.secure },
        trace_header: parts.headers.get("x-amzn-trace-id").and_then(|v| v.to_str().ok()).map(str::to_owned),
        // Verified with the signature when requests are authenticated; either way a client acts
        // in the region it signs for, as on AWS.
        region: credentials
            .map(|c| c.region)
            .filter(|region| !app.single_region && holdfast_core::names::is_region(region)),
    }
}

/// Answers a CloudWatch request (`holdfast_protocol::cloudwatch`): the same authentication as
/// SQS, signed for `monitoring`, and the answer in the request's protocol.
async fn cloudwatch(
    app: &App,
    parts: &http::request::Parts,
    body: &Bytes,
    protocol: holdfast_protocol::cloudwatch::Protocol,
    endpoints: Endpoints,
    (started, request_id): (Instant, &str),
) -> HttpResponse {
    use holdfast_api::cloudwatch::CloudWatchError;
    use holdfast_protocol::cloudwatch as wire;
    let request = HttpRequest { method: &parts.method, uri: &parts.uri, headers: &parts.headers, body };
    let caller = match app.auth.authenticate(&request, std::time::SystemTime::now(), wire::SIGNING_NAME) {
        Ok(caller) => caller,
        Err(error) => {
            app.requests.record_named(None, Some(error.code.query_code()), started.elapsed());
            return wire::encode_error(protocol, &CloudWatchError::from_sqs(&error), request_id).map(Full::new);
        }
    };
    let decoded = wire::decode(&request, protocol);
    let credentials = holdfast_protocol::sigv4::parse(&request);
    let context = request_context(app, parts, endpoints, caller, credentials);
    let result = match decoded.request {
        Ok(request) => app.sqs.cloudwatch(&context, request).await,
        Err(error) => Err(error),
    };
    let operation = decoded.operation.map(|op| op.name());
    app.requests.record_named(operation, result.as_ref().err().map(|e| e.code), started.elapsed());
    if let Some(traces) = &app.traces {
        let method = operation.unwrap_or("Unknown");
        traces.record(crate::otlp::Span {
            name: format!("CloudWatch.{method}"),
            parent: crate::otlp::parent_of(&parts.headers),
            links: Vec::new(),
            start: std::time::SystemTime::now() - started.elapsed(),
            end: std::time::SystemTime::now(),
            attributes: vec![
                ("rpc.system", serde_json::json!("aws-api")),
                ("rpc.service", serde_json::json!("CloudWatch")),
                ("rpc.method", serde_json::json!(method)),
                ("aws.request_id", serde_json::json!(request_id)),
            ],
            error: result.as_ref().err().map(|e| e.code.to_owned()),
        });
    }
    let response = match &result {
        Ok(response) => wire::encode_response(protocol, response, request_id),
        Err(error) => {
            tracing::debug!(%request_id, action = operation.unwrap_or("-"), code = error.code, message = %error.message, "CloudWatch request failed");
            wire::encode_error(protocol, error, request_id)
        }
    };
    response.map(Full::new)
}

/// `/health` (liveness: the store answers a round trip) and `/ready` (readiness: that, and the
/// server is not shutting down). 200 with `ok`/`ready`, or 503 with the reason.
async fn probe(app: &App, readiness: bool) -> HttpResponse {
    let answer = |status: hyper::StatusCode, text: String| {
        let mut response = hyper::Response::new(Full::new(Bytes::from(text)));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
        response
    };
    if readiness && *app.shutdown.borrow() {
        return answer(hyper::StatusCode::SERVICE_UNAVAILABLE, "unavailable: shutting down\n".into());
    }
    if readiness {
        if let crate::init::InitState::Running(step) = &*app.init.borrow() {
            return answer(hyper::StatusCode::SERVICE_UNAVAILABLE, format!("unavailable: running init {step}\n"));
        }
    }
    match tokio::time::timeout(PROBE_TIMEOUT, app.sqs.check()).await {
        Ok(Ok(())) => answer(hyper::StatusCode::OK, if readiness { "ready\n" } else { "ok\n" }.into()),
        Ok(Err(error)) => {
            tracing::warn!(error = %error.chain(), "health check: the store is unavailable");
            answer(hyper::StatusCode::SERVICE_UNAVAILABLE, format!("unavailable: {error}\n"))
        }
        Err(_) => answer(
            hyper::StatusCode::SERVICE_UNAVAILABLE,
            format!("unavailable: the store did not answer within {} seconds\n", PROBE_TIMEOUT.as_secs()),
        ),
    }
}

async fn metrics(app: &App) -> HttpResponse {
    let (status, text) = match crate::metrics::render(&app.sqs, &app.requests).await {
        Ok(text) => (hyper::StatusCode::OK, text),
        Err(error) => (hyper::StatusCode::SERVICE_UNAVAILABLE, format!("unavailable: {}\n", error.message)),
    };
    let mut response = hyper::Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// Bodies larger than this are decoded on the blocking pool: decoding is linear in the body's
/// size, but a few MiB of parameters is still milliseconds of CPU that must not hold up the
/// async workers (and every other connection with them).
const DECODE_INLINE_MAX_BYTES: usize = 64 * 1024;

async fn decode(parts: http::request::Parts, body: Bytes) -> (http::request::Parts, holdfast_protocol::Decoded) {
    let large = body.len() > DECODE_INLINE_MAX_BYTES;
    let run = move || {
        let decoded = holdfast_protocol::decode(&HttpRequest {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            body: &body,
        });
        (parts, decoded)
    };
    if large {
        tokio::task::spawn_blocking(run).await.expect("decoding does not panic")
    } else {
        run()
    }
}

async fn read_body(body: Incoming, max_bytes: usize, timeout: Duration) -> Result<Bytes, SqsError> {
    match tokio::time::timeout(timeout, Limited::new(body, max_bytes).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            Err(sqs_error!(RequestEntityTooLarge, "The request body is larger than {max_bytes} bytes."))
        }
        Ok(Err(error)) => Err(sqs_error!(MalformedQueryString, "The request body could not be read: {error}.")),
        Err(_) => {
            Err(sqs_error!(RequestExpired, "The request body was not received within {} seconds.", timeout.as_secs()))
        }
    }
}

/// The scheme, host and port queue URLs in answers start with: `--public-url`, else the request's
/// `Host` header (or, over HTTP/2, its `:authority`).
fn base_url(app: &App, parts: &http::request::Parts, local_addr: SocketAddr, secure: bool) -> String {
    if let Some(url) = &app.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let scheme = if secure { "https" } else { "http" };
    let host = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).filter(|h| !h.is_empty());
    match host.or_else(|| parts.uri.authority().map(|a| a.as_str())) {
        Some(host) => format!("{scheme}://{host}"),
        None => format!("{scheme}://{local_addr}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_core::{ServiceConfig, SystemClock};
    use holdfast_store::MemoryStore;

    fn app(shutting_down: bool) -> (App, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        let (_, shutdown) = watch::channel(shutting_down);
        let sqs = Sqs::new(store.clone(), Arc::new(SystemClock), ServiceConfig::default(), shutdown.clone());
        let app = App {
            sqs: Arc::new(sqs),
            auth: Arc::new(Authenticator::off()),
            public_url: None,
            max_request_bytes: 1024,
            body_timeout: Duration::from_secs(1),
            shutdown,
            response_memory: ResponseMemory::new(1 << 20),
            metrics: true,
            single_region: false,
            init: watch::channel(crate::init::InitState::Done).1,
            requests: Default::default(),
            console: true,
            console_sessions: Default::default(),
            traces: None,
        };
        (app, store)
    }

    async fn answer(response: HttpResponse) -> (u16, String) {
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.expect("a body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn health_and_readiness_follow_the_store_and_shutdown() {
        let (serving, store) = app(false);
        assert_eq!(answer(probe(&serving, false).await).await, (200, "ok\n".into()));
        assert_eq!(answer(probe(&serving, true).await).await, (200, "ready\n".into()));

        let (draining, _) = app(true);
        assert_eq!(answer(probe(&draining, false).await).await.0, 200, "alive while draining");
        let (status, body) = answer(probe(&draining, true).await).await;
        assert_eq!((status, body.as_str()), (503, "unavailable: shutting down\n"));

        holdfast_core::Store::close(store.as_ref()).await.unwrap();
        for readiness in [false, true] {
            let (status, body) = answer(probe(&serving, readiness).await).await;
            assert_eq!(status, 503, "a closed store is unhealthy: {body}");
            assert!(body.starts_with("unavailable: "), "{body}");
        }
    }
}
