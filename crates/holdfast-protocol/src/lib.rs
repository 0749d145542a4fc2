//! Bytes to typed SQS requests and typed responses back to bytes.
//!
//! Holdfast answers both SQS wire protocols on one endpoint (docs/compatibility.md, "Wire protocols"): AWS JSON 1.0
//! (`X-Amz-Target: AmazonSQS.<Op>`, [`json`]) and the legacy Query protocol (`Action=<Op>` in
//! the form body or URL query string, XML answers, [`query`] and [`xml`]). [`decode`] routes a
//! request, decodes it into a `holdfast_api::Request` and reports the protocol to answer in;
//! [`encode_response`] and [`encode_error`] render in that protocol. [`sigv4`] parses and
//! verifies AWS Signature Version 4.
//!
//! Architecture Invariant: this crate knows the wire formats and nothing of queue semantics or
//! storage. It checks only what the wire formats define (member presence and types from the
//! botocore model); value ranges and names are `holdfast-core`'s to validate.
//!
//! Architecture Invariant: the JSON fast path deserializes the typed request directly from the
//! body; the service model is parsed once per process ([`model`]).
//!
//! Queue addressing (docs/compatibility.md, "Queue URLs and regions"): when a request has no `QueueUrl` and its path is
//! `/<account-id>/<queue-name>` (Java v1, kombu), `QueueUrl` is set to that path, e.g.
//! `/000000000000/q1`; the service reads the last two path segments of any `QueueUrl`.

pub mod cloudwatch;
mod form;
mod json;
mod model;
mod query;
pub mod sigv4;
mod xml;

use std::borrow::Cow;

use bytes::Bytes;
use holdfast_api::{sqs_error, Action, Request, Response, SqsError};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;

/// The wire protocol a request arrived in, and so the one its answer is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// AWS JSON 1.0 (botocore >= 1.34.90, aws-sdk-rust, JS v3, ...).
    Json,
    /// The Query protocol with XML responses (older botocore, Java v1, kombu).
    Query,
}

/// Everything the protocol layer needs from an HTTP request.
#[derive(Clone, Copy, Debug)]
pub struct HttpRequest<'a> {
    pub method: &'a http::Method,
    pub uri: &'a http::Uri,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

/// A routed and decoded request.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// Which protocol to answer in: JSON if `X-Amz-Target` is present, else Query.
    pub protocol: Protocol,
    /// The action named by the request, when it names a known one.
    pub action: Option<Action>,
    /// The typed request, or the error to answer with (`MissingAction`, `InvalidAction`,
    /// `MissingParameter`, `InvalidParameterValue`, `SerializationException`).
    pub request: Result<Request, SqsError>,
    /// The SigV4 credential from the `Authorization` header or presigned query parameters;
    /// `None` when absent or malformed. Not verified here: see [`sigv4::verify`].
    pub credentials: Option<sigv4::Credential>,
}

/// The JSON protocol's content type (requests may also say `application/json`).
pub const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// The Query protocol's response content type.
pub const XML_CONTENT_TYPE: &str = "text/xml";
const TARGET_PREFIX: &str = "AmazonSQS";

/// The protocol a request speaks, from its headers alone: what an error must be written in
/// before the body has been read (a body too large, or too slow to arrive).
pub fn protocol_of(headers: &http::HeaderMap) -> Protocol {
    if headers.contains_key("x-amz-target") {
        Protocol::Json
    } else {
        Protocol::Query
    }
}

/// Routes and decodes `req` (docs/compatibility.md, "Wire protocols", docs/compatibility.md, "Queue URLs and regions").
pub fn decode(req: &HttpRequest<'_>) -> Decoded {
    let credentials = sigv4::parse(req);
    let path_queue_url = queue_url_from_path(req.uri.path());
    if let Some(target) = req.headers.get("x-amz-target") {
        let action = target.to_str().ok().and_then(|target| {
            let (prefix, op) = target.trim().split_once('.')?;
            (prefix == TARGET_PREFIX).then(|| Action::from_name(op)).flatten()
        });
        let request = match action {
            Some(action) => json::decode(action, req.body, path_queue_url),
            None => Err(invalid_action(&String::from_utf8_lossy(target.as_bytes()))),
        };
        return Decoded { protocol: Protocol::Json, action, request, credentials };
    }

    let params = match query_params(req) {
        Ok(params) => params,
        Err(error) => return Decoded { protocol: Protocol::Query, action: None, request: Err(error), credentials },
    };
    let action_name = params.iter().rev().find(|(key, _)| key == "Action").map(|(_, value)| value.as_ref());
    let (action, request) = match action_name {
        None | Some("") if req.method == http::Method::GET => {
            (None, Err(sqs_error!(UnknownOperation, "The request names no operation.")))
        }
        None | Some("") => (None, Err(sqs_error!(MissingAction, "The request must contain the parameter Action."))),
        Some(name) => match Action::from_name(name) {
            None => (None, Err(invalid_action(name))),
            // A queue's URL is the endpoint of that queue's actions only, as on AWS.
            Some(action @ (Action::CreateQueue | Action::ListQueues)) if path_queue_url.is_some() => {
                (Some(action), Err(invalid_action(name)))
            }
            Some(action) => {
                let tree = query::Node::build(&params);
                let input = model::model().operation(action).input;
                let request = query::read_input(&tree, input, path_queue_url).and_then(|value| {
                    Request::deserialize_for(action, value)
                        .map_err(|err| sqs_error!(InvalidParameterValue, "The request could not be decoded: {err}"))
                });
                (Some(action), request)
            }
        },
    };
    Decoded { protocol: Protocol::Query, action, request, credentials }
}

/// The Query parameters of the URL query string, then of a form body. Both are bounded and
/// strictly decoded (`form`); an `Action` in both must agree, or the request is refused rather
/// than one silently winning.
pub(crate) fn query_params<'a>(req: &HttpRequest<'a>) -> Result<form::Params<'a>, SqsError> {
    let mut params = form::Params::new();
    if let Some(query) = req.uri.query() {
        form::parse_into(query.as_bytes(), &mut params)?;
    }
    let in_url = params.len();
    if is_form_body(req) {
        form::parse_into(req.body, &mut params)?;
    }
    let action_of = |params: &[(Cow<'_, str>, Cow<'_, str>)]| {
        params.iter().rev().find(|(key, _)| key == "Action").map(|(_, value)| value.to_string())
    };
    if let (Some(url), Some(body)) = (action_of(&params[..in_url]), action_of(&params[in_url..])) {
        if url != body {
            return Err(sqs_error!(
                MalformedQueryString,
                "The request names two actions: {url} in the URL and {body} in the body."
            ));
        }
    }
    Ok(params)
}

fn invalid_action(name: &str) -> SqsError {
    sqs_error!(InvalidAction, "The action {name} is not valid for this endpoint.")
}

/// Form bodies are read when labelled as such, or unlabelled (lenient with hand-built clients).
fn is_form_body(req: &HttpRequest<'_>) -> bool {
    match req.headers.get(CONTENT_TYPE) {
        Some(value) => {
            let value = value.as_bytes();
            const FORM: &[u8] = b"application/x-www-form-urlencoded";
            value.len() >= FORM.len() && value[..FORM.len()].eq_ignore_ascii_case(FORM)
        }
        None => !req.body.is_empty(),
    }
}

/// A queue's path, `/<account-id>/<queue-name>` or `/<region>/<account-id>/<queue-name>`
/// (optionally with a trailing `/`), without the slash; `None` for any other path. Which
/// segment is what is for the service to read (`holdfast_core::names::parse_queue_url`).
fn queue_url_from_path(path: &str) -> Option<&str> {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let segments = trimmed.strip_prefix('/')?.split('/');
    let (count, all_named) = segments.fold((0, true), |(n, ok), s| (n + 1, ok && !s.is_empty()));
    (all_named && (2..=3).contains(&count)).then_some(trimmed)
}

/// The HTTP response for a successful `response` in `protocol`.
pub fn encode_response(protocol: Protocol, response: &Response, request_id: &str) -> http::Response<Bytes> {
    match protocol {
        Protocol::Json => build(StatusCode::OK, JSON_CONTENT_TYPE, request_id, None, json::response_body(response)),
        Protocol::Query => {
            let body = xml::response_document(response, request_id).into_bytes();
            build(StatusCode::OK, XML_CONTENT_TYPE, request_id, None, body)
        }
    }
}

/// The HTTP response for `error` in `protocol`, with the code's HTTP status.
pub fn encode_error(protocol: Protocol, error: &SqsError, request_id: &str) -> http::Response<Bytes> {
    let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match protocol {
        Protocol::Json => {
            // aws-sdk-rust types errors by this header only; botocore reads the legacy code from
            // it (the API reference, common errors <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html>).
            let query_error = format!("{};{}", error.code.query_code(), error.code.fault().as_str());
            build(status, JSON_CONTENT_TYPE, request_id, Some(&query_error), json::error_body(error))
        }
        Protocol::Query => {
            let body = xml::error_document(error, request_id).into_bytes();
            build(status, XML_CONTENT_TYPE, request_id, None, body)
        }
    }
}

fn build(
    status: StatusCode,
    content_type: &'static str,
    request_id: &str,
    query_error: Option<&str>,
    body: Vec<u8>,
) -> http::Response<Bytes> {
    let mut response = http::Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    if let Some(Ok(value)) = query_error.map(HeaderValue::from_str) {
        headers.insert("x-amzn-query-error", value);
    }
    response
}

#[cfg(test)]
mod tests;
