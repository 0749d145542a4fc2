//! Property tests: whatever bytes a client sends, the decoders answer (a request or an SQS error)
//! without panicking, and what they accept is bounded. A short run is part of the test suite; a
//! long one is `PROPTEST_CASES=200000 cargo test --release -p holdfast-protocol --test properties`.

use holdfast_api::{Action, ErrorCode};
use holdfast_protocol::{decode, encode_error, sigv4, HttpRequest, Protocol};
use http::{HeaderMap, HeaderValue, Method, Uri};
use proptest::prelude::*;

fn request<'a>(uri: &'a Uri, headers: &'a HeaderMap, body: &'a [u8]) -> HttpRequest<'a> {
    static POST: Method = Method::POST;
    HttpRequest { method: &POST, uri, headers, body }
}

fn json_headers(action: Action) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-amz-target", HeaderValue::from_str(&format!("AmazonSQS.{}", action.name())).unwrap());
    headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.0"));
    headers
}

fn form_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
    headers
}

/// Parameter names made of the pieces SQS names are made of, so the generator reaches deep into
/// the Query reader instead of stopping at unknown names.
fn param_name() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("QueueUrl".to_string()),
        Just("MessageBody".to_string()),
        Just("Attribute".to_string()),
        Just("AttributeName".to_string()),
        Just("MessageAttribute".to_string()),
        Just("SendMessageBatchRequestEntry".to_string()),
        Just("DeleteMessageBatchRequestEntry".to_string()),
        Just("Name".to_string()),
        Just("Value".to_string()),
        Just("StringValue".to_string()),
        Just("BinaryValue".to_string()),
        Just("DataType".to_string()),
        Just("member".to_string()),
        Just("entry".to_string()),
        Just("Id".to_string()),
        (0u32..12).prop_map(|n| n.to_string()),
        "[A-Za-z%+.]{0,6}",
    ];
    prop::collection::vec(segment, 1..10).prop_map(|segments| segments.join("."))
}

fn form_body() -> impl Strategy<Value = Vec<u8>> {
    let action = prop::sample::select(Action::ALL.to_vec()).prop_map(|a| format!("Action={}", a.name()));
    let pair = (param_name(), "[ -~]{0,12}").prop_map(|(name, value)| format!("{name}={value}"));
    (action, prop::collection::vec(pair, 0..40), prop::collection::vec(any::<u8>(), 0..16)).prop_map(
        |(action, pairs, tail)| {
            let mut body = format!("{action}&{}", pairs.join("&")).into_bytes();
            body.push(b'&');
            body.extend(tail);
            body
        },
    )
}

/// JSON documents of the right general shape with arbitrary members and values.
fn json_body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[ -~]{0,16}".prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[A-Za-z]{1,12}", inner, 0..6)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    });
    let member = prop_oneof![
        Just("QueueUrl".to_string()),
        Just("QueueName".to_string()),
        Just("MessageBody".to_string()),
        Just("Entries".to_string()),
        Just("Attributes".to_string()),
        Just("MessageAttributes".to_string()),
        Just("ReceiptHandle".to_string()),
        Just("MaxNumberOfMessages".to_string()),
        "[A-Za-z]{1,12}",
    ];
    prop::collection::btree_map(member, value, 0..8)
        .prop_map(|map| serde_json::to_vec(&serde_json::Value::Object(map.into_iter().collect())).unwrap())
}

fn answer_is_renderable(protocol: Protocol, decoded: &holdfast_protocol::Decoded) {
    if let Err(error) = &decoded.request {
        let response = encode_error(protocol, error, "req-1");
        assert!(response.status().is_client_error(), "{error:?} answered {}", response.status());
    }
}

proptest! {
    #[test]
    fn query_bodies_never_panic(body in form_body()) {
        let uri: Uri = "/".parse().unwrap();
        let headers = form_headers();
        let decoded = decode(&request(&uri, &headers, &body));
        prop_assert_eq!(decoded.protocol, Protocol::Query);
        answer_is_renderable(Protocol::Query, &decoded);
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048), json in any::<bool>()) {
        let uri: Uri = "/000000000000/q?Action=SendMessage&MessageBody=x".parse().unwrap();
        let headers = if json { json_headers(Action::SendMessageBatch) } else { form_headers() };
        let decoded = decode(&request(&uri, &headers, &body));
        let protocol = if json { Protocol::Json } else { Protocol::Query };
        answer_is_renderable(protocol, &decoded);
    }

    #[test]
    fn json_bodies_never_panic(body in json_body(), action in prop::sample::select(Action::ALL.to_vec())) {
        let uri: Uri = "/".parse().unwrap();
        let headers = json_headers(action);
        let decoded = decode(&request(&uri, &headers, &body));
        prop_assert_eq!(decoded.action, Some(action));
        answer_is_renderable(Protocol::Json, &decoded);
        if let Ok(request) = &decoded.request {
            prop_assert_eq!(request.action(), action);
        }
    }

    #[test]
    fn authorization_headers_never_panic(header in "[ -~]{0,300}", date in proptest::option::of("[0-9TZ]{0,20}")) {
        let _ = sigv4::parse_authorization(&header, date.as_deref());
        let signed = format!("AWS4-HMAC-SHA256 {header}");
        let _ = sigv4::parse_authorization(&signed, date.as_deref());
    }

    #[test]
    fn presigned_queries_never_panic(query in "[ -~]{0,400}") {
        let _ = sigv4::parse_presigned(&query);
        let presigned = format!("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={query}&X-Amz-Signature=00");
        let _ = sigv4::parse_presigned(&presigned);
    }
}

/// The error a hostile Query request gets is the one a client can read, in XML.
#[test]
fn bounded_query_errors_render_in_xml() {
    let uri: Uri = "/".parse().unwrap();
    let headers = form_headers();
    let body = format!("Action=ListQueues&{}=1", ".".repeat(100_000));
    let decoded = decode(&request(&uri, &headers, body.as_bytes()));
    let error = decoded.request.expect_err("refused");
    assert_eq!(error.code, ErrorCode::MalformedQueryString);
    let response = encode_error(Protocol::Query, &error, "req-1");
    assert_eq!(response.status(), 400);
    let text = String::from_utf8(response.body().to_vec()).unwrap();
    assert!(text.contains("<Code>MalformedQueryString</Code>"), "{text}");
}
