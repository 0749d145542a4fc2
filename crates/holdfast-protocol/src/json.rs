//! AWS JSON 1.0 requests and responses (the AWS JSON protocol <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-making-api-requests-json.html>).
//!
//! Decoding is a fast path and a slow path. The fast path deserializes the typed request
//! straight from the body bytes: no intermediate `Value`, which matters at tens of thousands of
//! requests per second. Only when that fails (or when the queue must be taken from the request
//! path) is the body parsed into a `Value` and walked against the model to say precisely what is
//! wrong: malformed JSON is `SerializationException`, an absent or `null` required member
//! (recursively, e.g. a batch entry's `Id`) is `MissingParameter`, a value of the wrong type is
//! `InvalidParameterValue`. Explicit `null` counts as absent (the AWS JSON protocol) and unknown members are
//! ignored.

use base64::Engine;
use holdfast_api::{sqs_error, Action, Request, Response, SqsError};
use serde_json::Value;

use crate::model::{model, Shape, ShapeId};
use crate::query::{invalid, missing};

/// Decodes the JSON body of `action`. `default_queue_url` fills `QueueUrl` when the body has
/// none (the queue taken from the request path: docs/compatibility.md, "Queue URLs and regions").
pub(crate) fn decode(action: Action, body: &[u8], default_queue_url: Option<&str>) -> Result<Request, SqsError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    if default_queue_url.is_none() {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        if let Ok(request) = Request::deserialize_for(action, &mut deserializer) {
            if deserializer.end().is_ok() {
                return Ok(request);
            }
        }
    }
    decode_slow(action, body, default_queue_url)
}

fn decode_slow(action: Action, body: &[u8], default_queue_url: Option<&str>) -> Result<Request, SqsError> {
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|err| sqs_error!(SerializationException, "The request body is not valid JSON: {err}"))?;
    let Value::Object(object) = &mut value else {
        return Err(sqs_error!(SerializationException, "The request body must be a JSON object."));
    };
    let input = model().operation(action).input;
    if let (Some(url), Shape::Struct(shape)) = (default_queue_url, model().shape(input)) {
        let absent = object.get("QueueUrl").unwrap_or(&Value::Null).is_null();
        if absent && shape.members.iter().any(|m| m.name == "QueueUrl") {
            object.insert("QueueUrl".to_owned(), Value::String(url.to_owned()));
        }
    }
    check(&value, input, "")?;
    Request::deserialize_for(action, value)
        .map_err(|err| sqs_error!(SerializationException, "The request could not be decoded: {err}"))
}

/// Checks `value` against model shape `shape`; `path` names it (`Entries.2.Id`) for errors.
pub(crate) fn check(value: &Value, shape: ShapeId, path: &str) -> Result<(), SqsError> {
    let bad = |reason: &str| Err(invalid(&display_value(value), path, reason));
    match model().shape(shape) {
        Shape::Str if value.is_string() => Ok(()),
        Shape::Str => bad("must be a string."),
        Shape::Int if value.is_i64() => Ok(()),
        Shape::Int => bad("must be an integer."),
        Shape::Bool if value.is_boolean() => Ok(()),
        Shape::Bool => bad("must be a boolean."),
        Shape::Blob => match value.as_str() {
            Some(text) if is_base64(text) => Ok(()),
            _ => bad("must be base64-encoded binary data."),
        },
        Shape::List(list) => {
            let Some(items) = value.as_array() else { return bad("must be a list.") };
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}.{}", i + 1);
                if item.is_null() {
                    return Err(invalid("null", &item_path, "list elements must not be null."));
                }
                check(item, list.member, &item_path)?;
            }
            Ok(())
        }
        Shape::Map(map) => {
            let Some(entries) = value.as_object() else { return bad("must be a map.") };
            for (key, item) in entries {
                let item_path = format!("{path}.{key}");
                if item.is_null() {
                    return Err(invalid("null", &item_path, "map values must not be null."));
                }
                check(item, map.value, &item_path)?;
            }
            Ok(())
        }
        Shape::Struct(structure) => {
            let Some(object) = value.as_object() else { return bad("must be a structure.") };
            for member in &structure.members {
                let member_path = if path.is_empty() { member.name.clone() } else { format!("{path}.{}", member.name) };
                match object.get(&member.name) {
                    None | Some(Value::Null) if member.required => return Err(missing(&member_path)),
                    None | Some(Value::Null) => {}
                    Some(member_value) => check(member_value, member.shape, &member_path)?,
                }
            }
            Ok(())
        }
    }
}

/// Whether `text` is standard base64, as the api crate's `Blob` will decode it.
pub(crate) fn is_base64(text: &str) -> bool {
    base64::engine::general_purpose::STANDARD.decode(text.trim()).is_ok()
}

/// A value as shown in an error message: strings bare, anything else as compact JSON, cut
/// short so a huge body is not echoed back.
fn display_value(value: &Value) -> String {
    const MAX: usize = 100;
    let text = match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// The JSON body of a successful response (`{}` for actions without output).
pub(crate) fn response_body(response: &Response) -> Vec<u8> {
    // Serializing plain data structs into a Vec cannot fail.
    serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec())
}

/// `{"__type": …, "message": …}`.
pub(crate) fn error_body(error: &SqsError) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        __type: &'a str,
        message: &'a str,
    }
    serde_json::to_vec(&Body { __type: error.code.json_type(), message: &error.message })
        .unwrap_or_else(|_| b"{}".to_vec())
}
