//! The CloudWatch wire protocols on the same endpoint as SQS. botocore's CloudWatch model lists
//! three, and clients pick the first they support, so each is answered:
//!
//! - Smithy RPC v2 CBOR (current botocore and AWS CLI, aws-sdk-rust): `POST
//!   /service/GraniteServiceVersion20100801/operation/<Op>`, `smithy-protocol: rpc-v2-cbor`;
//! - AWS JSON 1.0: `X-Amz-Target: GraniteServiceVersion20100801.<Op>`;
//! - Query: `Action=<Op>&Version=2010-08-01`, answered in XML.
//!
//! Each is decoded into one JSON-like tree (`serde_json::Value`; Query keys such as
//! `Dimensions.member.1.Name` become arrays and objects, CBOR timestamps epoch seconds), read
//! into `holdfast_api::cloudwatch` types by [`read`], and answered from one output tree ([`Out`])
//! by each protocol's encoder. CloudWatch is `awsQueryCompatible`, so JSON and CBOR errors carry
//! the Query error code in `x-amzn-query-error`, which SDKs prefer.

mod cbor;
mod read;

use std::borrow::Cow;

use bytes::Bytes;
use holdfast_api::cloudwatch::{
    CloudWatchError, CloudWatchRequest, CloudWatchResponse, Datapoint, Metric, MetricDataResult, Operation,
};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;
use serde_json::Value;

use crate::HttpRequest;

pub const TARGET_PREFIX: &str = "GraniteServiceVersion20100801";
const CBOR_PATH_PREFIX: &str = "/service/GraniteServiceVersion20100801/operation/";
pub const API_VERSION: &str = "2010-08-01";
const XML_NAMESPACE: &str = "http://monitoring.amazonaws.com/doc/2010-08-01/";
/// The SigV4 service name CloudWatch requests are signed for.
pub const SIGNING_NAME: &str = "monitoring";

/// The CloudWatch protocol a request speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Cbor,
    Json,
    Query,
}

/// Whether a request is for CloudWatch, and in which protocol, from its headers, path, signing
/// scope and (for Query requests that say nothing else) its `Version` or `Action` parameter.
pub fn protocol_of(req: &HttpRequest<'_>, signed_for: Option<&str>) -> Option<Protocol> {
    if req.uri.path().starts_with(CBOR_PATH_PREFIX) {
        return Some(Protocol::Cbor);
    }
    if let Some(target) = req.headers.get("x-amz-target") {
        let is_ours = target.to_str().is_ok_and(|t| t.trim().starts_with(&format!("{TARGET_PREFIX}.")));
        return is_ours.then_some(Protocol::Json);
    }
    match signed_for {
        Some(SIGNING_NAME) => return Some(Protocol::Query),
        Some(_) => return None,
        None => {}
    }
    // Unsigned Query requests (authentication off): look at the parameters.
    let params = crate::query_params(req).ok()?;
    let param = |name: &str| params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_ref());
    let cloudwatch = param("Version") == Some(API_VERSION)
        || param("Action").is_some_and(|action| Operation::from_name(action).is_some());
    cloudwatch.then_some(Protocol::Query)
}

/// A decoded CloudWatch request: the operation it names (when it names one this server
/// answers) and the typed request or the error to answer with.
#[derive(Debug)]
pub struct Decoded {
    pub protocol: Protocol,
    pub operation: Option<Operation>,
    pub request: Result<CloudWatchRequest, CloudWatchError>,
}

pub fn decode(req: &HttpRequest<'_>, protocol: Protocol) -> Decoded {
    let (name, tree): (Cow<'_, str>, Result<Value, CloudWatchError>) = match protocol {
        Protocol::Cbor => {
            let name = req.uri.path().trim_start_matches(CBOR_PATH_PREFIX).to_owned();
            let tree = if req.body.is_empty() {
                Ok(Value::Object(Default::default()))
            } else {
                cbor::decode(req.body)
                    .map_err(|e| CloudWatchError::serialization(format!("The body is not valid CBOR: {}.", e.0)))
            };
            (name.into(), tree)
        }
        Protocol::Json => {
            let target = req.headers.get("x-amz-target").and_then(|t| t.to_str().ok()).unwrap_or_default();
            let name = target.trim().trim_start_matches(TARGET_PREFIX).trim_start_matches('.').to_owned();
            let tree = if req.body.is_empty() {
                Ok(Value::Object(Default::default()))
            } else {
                serde_json::from_slice(req.body)
                    .map_err(|e| CloudWatchError::serialization(format!("The body is not valid JSON: {e}.")))
            };
            (name.into(), tree)
        }
        Protocol::Query => match crate::query_params(req) {
            Ok(params) => {
                let action = params.iter().rev().find(|(k, _)| k == "Action").map(|(_, v)| v.to_string());
                (action.unwrap_or_default().into(), read::query_tree(&params))
            }
            Err(error) => ("".into(), Err(CloudWatchError::from_sqs(&error))),
        },
    };
    let operation = Operation::from_name(&name);
    let request = match (operation, tree) {
        (_, Err(error)) => Err(error),
        (None, _) if name.is_empty() => Err(CloudWatchError::missing_parameter("The request must name an action.")),
        (None, _) => Err(CloudWatchError::invalid_action(&name)),
        (Some(operation), Ok(tree)) => read::request(operation, &tree, protocol == Protocol::Query),
    };
    Decoded { protocol, operation, request }
}

/// An answer as every protocol sees it: structures with member names, lists, string-keyed maps
/// and scalars.
#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    Struct(Vec<(&'static str, Out)>),
    List(Vec<Out>),
    Map(Vec<(String, Out)>),
    Str(String),
    Double(f64),
    /// Epoch milliseconds.
    Time(i64),
}

fn metric_out(metric: &Metric) -> Out {
    let mut fields = Vec::new();
    if let Some(namespace) = &metric.namespace {
        fields.push(("Namespace", Out::Str(namespace.clone())));
    }
    if let Some(name) = &metric.metric_name {
        fields.push(("MetricName", Out::Str(name.clone())));
    }
    let dimensions = metric
        .dimensions
        .iter()
        .map(|d| Out::Struct(vec![("Name", Out::Str(d.name.clone())), ("Value", Out::Str(d.value.clone()))]))
        .collect();
    fields.push(("Dimensions", Out::List(dimensions)));
    Out::Struct(fields)
}

fn datapoint_out(point: &Datapoint) -> Out {
    let mut fields = vec![("Timestamp", Out::Time(point.timestamp))];
    for (name, value) in [
        ("SampleCount", point.sample_count),
        ("Average", point.average),
        ("Sum", point.sum),
        ("Minimum", point.minimum),
        ("Maximum", point.maximum),
    ] {
        if let Some(value) = value {
            fields.push((name, Out::Double(value)));
        }
    }
    if let Some(unit) = &point.unit {
        fields.push(("Unit", Out::Str(unit.clone())));
    }
    if !point.extended_statistics.is_empty() {
        let map = point.extended_statistics.iter().map(|(k, v)| (k.clone(), Out::Double(*v))).collect();
        fields.push(("ExtendedStatistics", Out::Map(map)));
    }
    Out::Struct(fields)
}

fn result_out(result: &MetricDataResult) -> Out {
    Out::Struct(vec![
        ("Id", Out::Str(result.id.clone())),
        ("Label", Out::Str(result.label.clone())),
        ("Timestamps", Out::List(result.timestamps.iter().map(|t| Out::Time(*t)).collect())),
        ("Values", Out::List(result.values.iter().map(|v| Out::Double(*v)).collect())),
        ("StatusCode", Out::Str(result.status_code.clone())),
    ])
}

/// The output structure of a response.
fn response_out(response: &CloudWatchResponse) -> Out {
    match response {
        CloudWatchResponse::GetMetricStatistics(r) => Out::Struct(vec![
            ("Label", Out::Str(r.label.clone())),
            ("Datapoints", Out::List(r.datapoints.iter().map(datapoint_out).collect())),
        ]),
        CloudWatchResponse::GetMetricData(r) => {
            let mut fields = vec![
                ("MetricDataResults", Out::List(r.results.iter().map(result_out).collect())),
                ("Messages", Out::List(Vec::new())),
            ];
            if let Some(token) = &r.next_token {
                fields.push(("NextToken", Out::Str(token.clone())));
            }
            Out::Struct(fields)
        }
        CloudWatchResponse::ListMetrics(r) => {
            let mut fields = vec![("Metrics", Out::List(r.metrics.iter().map(metric_out).collect()))];
            if let Some(token) = &r.next_token {
                fields.push(("NextToken", Out::Str(token.clone())));
            }
            Out::Struct(fields)
        }
    }
}

fn operation_of(response: &CloudWatchResponse) -> Operation {
    match response {
        CloudWatchResponse::GetMetricStatistics(_) => Operation::GetMetricStatistics,
        CloudWatchResponse::GetMetricData(_) => Operation::GetMetricData,
        CloudWatchResponse::ListMetrics(_) => Operation::ListMetrics,
    }
}

pub fn encode_response(protocol: Protocol, response: &CloudWatchResponse, request_id: &str) -> http::Response<Bytes> {
    let out = response_out(response);
    match protocol {
        Protocol::Cbor => {
            let mut writer = cbor::Writer::default();
            write_cbor(&mut writer, &out);
            build(StatusCode::OK, protocol, request_id, None, writer.out)
        }
        Protocol::Json => build(StatusCode::OK, protocol, request_id, None, json(&out).to_string().into_bytes()),
        Protocol::Query => {
            let name = operation_of(response).name();
            let mut doc = format!("<{name}Response xmlns=\"{XML_NAMESPACE}\"><{name}Result>");
            if let Out::Struct(fields) = &out {
                for (field, value) in fields {
                    write_xml(&mut doc, field, value);
                }
            }
            doc.push_str(&format!(
                "</{name}Result><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{name}Response>"
            ));
            build(StatusCode::OK, protocol, request_id, None, doc.into_bytes())
        }
    }
}

pub fn encode_error(protocol: Protocol, error: &CloudWatchError, request_id: &str) -> http::Response<Bytes> {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let fault = if error.sender_fault { "Sender" } else { "Receiver" };
    let query_error = format!("{};{fault}", error.code);
    let shape = format!("com.amazonaws.cloudwatch#{}", error.shape);
    match protocol {
        Protocol::Cbor => {
            let mut writer = cbor::Writer::default();
            writer.map(2);
            writer.text("__type");
            writer.text(&shape);
            writer.text("message");
            writer.text(&error.message);
            build(status, protocol, request_id, Some(&query_error), writer.out)
        }
        Protocol::Json => {
            let body = serde_json::json!({"__type": shape, "message": error.message});
            build(status, protocol, request_id, Some(&query_error), body.to_string().into_bytes())
        }
        Protocol::Query => {
            let mut doc = format!("<ErrorResponse xmlns=\"{XML_NAMESPACE}\"><Error><Type>{fault}</Type><Code>");
            crate::xml::escape_into(&mut doc, error.code);
            doc.push_str("</Code><Message>");
            crate::xml::escape_into(&mut doc, &error.message);
            doc.push_str(&format!("</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"));
            build(status, protocol, request_id, None, doc.into_bytes())
        }
    }
}

fn build(
    status: StatusCode,
    protocol: Protocol,
    request_id: &str,
    query_error: Option<&str>,
    body: Vec<u8>,
) -> http::Response<Bytes> {
    let mut response = http::Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let content_type = match protocol {
        Protocol::Cbor => "application/cbor",
        Protocol::Json => crate::JSON_CONTENT_TYPE,
        Protocol::Query => crate::XML_CONTENT_TYPE,
    };
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if protocol == Protocol::Cbor {
        headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    }
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    if let Some(Ok(value)) = query_error.map(HeaderValue::from_str) {
        headers.insert("x-amzn-query-error", value);
    }
    response
}

fn json(out: &Out) -> Value {
    match out {
        Out::Struct(fields) => Value::Object(fields.iter().map(|(k, v)| ((*k).to_owned(), json(v))).collect()),
        Out::List(items) => Value::Array(items.iter().map(json).collect()),
        Out::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (k.clone(), json(v))).collect()),
        Out::Str(text) => Value::String(text.clone()),
        Out::Double(value) => serde_json::Number::from_f64(*value).map(Value::Number).unwrap_or(Value::Null),
        Out::Time(millis) => {
            serde_json::Number::from_f64(*millis as f64 / 1000.0).map(Value::Number).unwrap_or(Value::Null)
        }
    }
}

fn write_cbor(writer: &mut cbor::Writer, out: &Out) {
    match out {
        Out::Struct(fields) => {
            writer.map(fields.len());
            for (name, value) in fields {
                writer.text(name);
                write_cbor(writer, value);
            }
        }
        Out::List(items) => {
            writer.array(items.len());
            for item in items {
                write_cbor(writer, item);
            }
        }
        Out::Map(entries) => {
            writer.map(entries.len());
            for (key, value) in entries {
                writer.text(key);
                write_cbor(writer, value);
            }
        }
        Out::Str(text) => writer.text(text),
        Out::Double(value) => writer.double(*value),
        Out::Time(millis) => writer.timestamp(*millis),
    }
}

/// One member as Query XML writes it: lists as `<member>` elements, maps as `<entry>` with `<key>`
/// and `<value>`.
fn write_xml(doc: &mut String, name: &str, out: &Out) {
    doc.push('<');
    doc.push_str(name);
    doc.push('>');
    match out {
        Out::Struct(fields) => {
            for (field, value) in fields {
                write_xml(doc, field, value);
            }
        }
        Out::List(items) => {
            for item in items {
                write_xml(doc, "member", item);
            }
        }
        Out::Map(entries) => {
            for (key, value) in entries {
                doc.push_str("<entry><key>");
                crate::xml::escape_into(doc, key);
                doc.push_str("</key>");
                write_xml(doc, "value", value);
                doc.push_str("</entry>");
            }
        }
        Out::Str(text) => crate::xml::escape_into(doc, text),
        Out::Double(value) => doc.push_str(&format_double(*value)),
        Out::Time(millis) => doc.push_str(&holdfast_api::calendar::format_iso8601_millis(*millis)),
    }
    doc.push_str("</");
    doc.push_str(name);
    doc.push('>');
}

/// A double as CloudWatch's XML writes one: `1.0`, `0.5`, `1.0E7`-free decimal text.
fn format_double(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.1}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests;
