//! Wire-format costs per request: decoding JSON and Query requests, encoding answers and errors,
//! verifying a SigV4 signature.
//! Figures only; nothing here asserts on time.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use holdfast_api::types::{Message, MessageAttributeValue, ReceiveMessageResponse};
use holdfast_api::{sqs_error, Response};
use holdfast_protocol::{decode, encode_error, encode_response, sigv4, HttpRequest, Protocol};
use http::{HeaderMap, HeaderValue, Method, Uri};

const QUEUE_URL: &str = "http://127.0.0.1:9324/000000000000/bench";
const RID: &str = "5fea7756-0ea4-451a-a703-a558b933e274";

fn body_256() -> String {
    "x".repeat(256)
}

fn json_headers(target: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.0"));
    headers.insert("x-amz-target", HeaderValue::from_str(target).unwrap());
    headers.insert(
        "authorization",
        HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/sqs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ),
    );
    headers.insert("x-amz-date", HeaderValue::from_static("20240101T000000Z"));
    headers
}

fn bench_decode(c: &mut Criterion) {
    let method = Method::POST;
    let uri: Uri = "/".parse().unwrap();
    let mut group = c.benchmark_group("decode");

    let send = serde_json::json!({"QueueUrl": QUEUE_URL, "MessageBody": body_256()}).to_string();
    let headers = json_headers("AmazonSQS.SendMessage");
    group.throughput(Throughput::Elements(1));
    group.bench_function("json SendMessage 256 B", |b| {
        b.iter(|| {
            let decoded = decode(&HttpRequest {
                method: &method,
                uri: &uri,
                headers: &headers,
                body: black_box(send.as_bytes()),
            });
            black_box(decoded.request.unwrap());
        })
    });

    let receive = serde_json::json!({
        "QueueUrl": QUEUE_URL, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 20,
        "MessageAttributeNames": ["All"], "MessageSystemAttributeNames": ["All"]
    })
    .to_string();
    let headers = json_headers("AmazonSQS.ReceiveMessage");
    group.bench_function("json ReceiveMessage", |b| {
        b.iter(|| {
            let decoded = decode(&HttpRequest {
                method: &method,
                uri: &uri,
                headers: &headers,
                body: black_box(receive.as_bytes()),
            });
            black_box(decoded.request.unwrap());
        })
    });

    let entries: Vec<_> =
        (0..10).map(|i| serde_json::json!({"Id": i.to_string(), "MessageBody": body_256()})).collect();
    let batch = serde_json::json!({"QueueUrl": QUEUE_URL, "Entries": entries}).to_string();
    let headers = json_headers("AmazonSQS.SendMessageBatch");
    group.bench_function("json SendMessageBatch 10 x 256 B", |b| {
        b.iter(|| {
            let decoded = decode(&HttpRequest {
                method: &method,
                uri: &uri,
                headers: &headers,
                body: black_box(batch.as_bytes()),
            });
            black_box(decoded.request.unwrap());
        })
    });

    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "SendMessage")
        .append_pair("Version", "2012-11-05")
        .append_pair("QueueUrl", QUEUE_URL)
        .append_pair("MessageBody", &body_256())
        .append_pair("MessageAttribute.1.Name", "source")
        .append_pair("MessageAttribute.1.Value.DataType", "String")
        .append_pair("MessageAttribute.1.Value.StringValue", "web")
        .finish();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"));
    group.bench_function("query SendMessage 256 B + 1 attribute", |b| {
        b.iter(|| {
            let decoded = decode(&HttpRequest {
                method: &method,
                uri: &uri,
                headers: &headers,
                body: black_box(form.as_bytes()),
            });
            black_box(decoded.request.unwrap());
        })
    });
    group.finish();
}

fn receive_response() -> Response {
    let messages = (0..10)
        .map(|i| Message {
            message_id: format!("5fea7756-0ea4-451a-a703-a558b933e{i:03}"),
            receipt_handle: format!("AQEB{}{i}", "r".repeat(160)),
            md5_of_body: "fafb00f5732ab283681e124bf8747ed1".into(),
            body: body_256(),
            attributes: Some(
                [("SentTimestamp", "1704067200000"), ("ApproximateReceiveCount", "1")]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            md5_of_message_attributes: Some("a3a1b2c3d4e5f60718293a4b5c6d7e8f".into()),
            message_attributes: Some(
                [(
                    "source".to_string(),
                    MessageAttributeValue {
                        data_type: "String".into(),
                        string_value: Some("web".into()),
                        ..Default::default()
                    },
                )]
                .into_iter()
                .collect(),
            ),
        })
        .collect();
    Response::ReceiveMessage(ReceiveMessageResponse { messages: Some(messages) })
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    let response = receive_response();
    group.bench_function("json ReceiveMessage 10 messages", |b| {
        b.iter(|| black_box(encode_response(Protocol::Json, black_box(&response), RID)))
    });
    group.bench_function("xml ReceiveMessage 10 messages", |b| {
        b.iter(|| black_box(encode_response(Protocol::Query, black_box(&response), RID)))
    });
    let error = sqs_error!(QueueDoesNotExist, "The specified queue does not exist.");
    group.bench_function("json error", |b| b.iter(|| black_box(encode_error(Protocol::Json, black_box(&error), RID))));
    group.bench_function("xml error", |b| b.iter(|| black_box(encode_error(Protocol::Query, black_box(&error), RID))));
    group.finish();
}

/// A SendMessage signed as an SDK signs it, verified whole, and its parts.
fn bench_sigv4(c: &mut Criterion) {
    let method = Method::POST;
    let uri: Uri = "/".parse().unwrap();
    let body = serde_json::json!({"QueueUrl": QUEUE_URL, "MessageBody": body_256()}).to_string();
    let mut headers = json_headers("AmazonSQS.SendMessage");
    headers.insert("host", HeaderValue::from_static("127.0.0.1:9324"));
    let signed: Vec<String> = ["content-type", "host", "x-amz-date", "x-amz-target"].map(String::from).to_vec();
    let request = HttpRequest { method: &method, uri: &uri, headers: &headers, body: body.as_bytes() };
    let scope = "20240101/us-east-1/sqs/aws4_request";
    let to_sign = sigv4::string_to_sign("20240101T000000Z", scope, &sigv4::canonical_request(&request, &signed));
    let signature = sigv4::signature(&sigv4::signing_key("secret", "20240101", "us-east-1", "sqs"), &to_sign);
    let authorization =
        format!("AWS4-HMAC-SHA256 Credential=test/{scope}, SignedHeaders={}, Signature={signature}", signed.join(";"));
    headers.insert("authorization", HeaderValue::from_str(&authorization).unwrap());
    let request = HttpRequest { method: &method, uri: &uri, headers: &headers, body: body.as_bytes() };
    let credential = sigv4::parse(&request).expect("parses");
    assert!(sigv4::verify(&request, &credential, "secret"));

    let mut group = c.benchmark_group("sigv4");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse the Authorization header", |b| b.iter(|| black_box(sigv4::parse(black_box(&request)))));
    group.bench_function("verify SendMessage 256 B", |b| {
        b.iter(|| black_box(sigv4::verify(black_box(&request), &credential, "secret")))
    });
    group.bench_function("derive the signing key", |b| {
        b.iter(|| black_box(sigv4::signing_key(black_box("secret"), "20240101", "us-east-1", "sqs")))
    });
    group.bench_function("canonical request", |b| {
        b.iter(|| black_box(sigv4::canonical_request(black_box(&request), &credential.signed_headers)))
    });
    group.finish();
}

criterion_group!(benches, bench_decode, bench_encode, bench_sigv4);
criterion_main!(benches);
