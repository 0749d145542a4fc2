//! Request traces over OTLP/HTTP: a collector on loopback (a plain HTTP listener that keeps what
//! is posted to `/v1/traces`) receives a span per request, with the caller's trace context from
//! `X-Amzn-Trace-Id` or `traceparent`, and the receive that returns a traced message linked to the
//! trace it was sent in.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{MessageSystemAttributeName, MessageSystemAttributeNameForSends, MessageSystemAttributeValue};
use serde_json::Value;

use crate::common::{unique, TestServer};

const XRAY: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const XRAY_TRACE: &str = "5759e988bd862e3fe1be46a994272793";
const W3C: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A collector: every span posted to it, in arrival order.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Value>>>,
}

impl Collector {
    fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&spans);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = Arc::clone(&kept);
                std::thread::spawn(move || serve(stream, &kept));
            }
        });
        Collector { url, spans }
    }

    /// Waits until a span satisfies `matches`, and returns it.
    fn wait_for(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(span) = self.spans.lock().unwrap().iter().find(|s| matches(s)) {
                return span.clone();
            }
            assert!(Instant::now() < deadline, "no span {what}; got {:#?}", self.spans.lock().unwrap());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn names(&self) -> Vec<String> {
        self.spans.lock().unwrap().iter().map(|s| s["name"].as_str().unwrap_or("").to_owned()).collect()
    }
}

/// Answers OTLP/HTTP posts on one connection (keep-alive), keeping their spans.
fn serve(stream: std::net::TcpStream, kept: &Mutex<Vec<Value>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        let mut content_type = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "content-type" => content_type = value.trim().to_owned(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        assert!(request_line.starts_with("POST /v1/traces "), "{request_line}");
        assert_eq!(content_type, "application/json");
        let export: Value = serde_json::from_slice(&body).expect("OTLP JSON");
        let resource = &export["resourceSpans"][0];
        assert_eq!(resource["resource"]["attributes"][0]["value"]["stringValue"], "holdfast");
        for scope in resource["scopeSpans"].as_array().unwrap() {
            kept.lock().unwrap().extend(scope["spans"].as_array().unwrap().iter().cloned());
        }
        writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}").unwrap();
    }
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"].as_array()?.iter().find(|a| a["key"] == key).map(|a| &a["value"])
}

/// SendMessage with one extra HTTP header, as a traced producer's SDK adds it.
async fn send_with_header(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    body: &str,
    header: &'static str,
    value: &'static str,
) -> aws_sdk_sqs::operation::send_message::SendMessageOutput {
    sqs.send_message()
        .queue_url(url)
        .message_body(body)
        .customize()
        .mutate_request(move |request| {
            request.headers_mut().insert(header, value);
        })
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn requests_are_traced_from_producer_to_consumer() {
    let collector = Collector::start();
    let mut server = TestServer::start_with(&["--otlp-endpoint", &collector.url]);
    let sqs = server.client();
    let name = unique("traced");
    let url = sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();

    // A producer in an X-Ray trace: the header becomes the message's AWSTraceHeader.
    let sent = send_with_header(&sqs, &url, "lead", "x-amzn-trace-id", XRAY).await;
    let send_span =
        collector.wait_for("for the X-Ray send", |s| s["name"] == "SQS.SendMessage" && s["traceId"] == XRAY_TRACE);
    assert_eq!(send_span["parentSpanId"], "53995c3f42cd8ad8");
    assert_eq!(send_span["kind"], 2);
    assert_eq!(attribute(&send_span, "messaging.destination.name").unwrap()["stringValue"], name.as_str());
    assert_eq!(attribute(&send_span, "messaging.message.id").unwrap()["stringValue"], sent.message_id().unwrap());
    assert_eq!(attribute(&send_span, "rpc.method").unwrap()["stringValue"], "SendMessage");
    assert_eq!(send_span["status"]["code"], 0);

    // A producer with W3C context, and one that carries its context in the message itself.
    send_with_header(&sqs, &url, "w3c", "traceparent", W3C).await;
    collector.wait_for("for the W3C send", |s| {
        s["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736" && s["parentSpanId"] == "00f067aa0ba902b7"
    });
    let attribute_trace = "Root=1-6759e988-cd862e3fe1be46a994272793;Parent=63995c3f42cd8ad8;Sampled=1";
    sqs.send_message()
        .queue_url(&url)
        .message_body("attribute")
        .message_system_attributes(
            MessageSystemAttributeNameForSends::AwsTraceHeader,
            MessageSystemAttributeValue::builder().data_type("String").string_value(attribute_trace).build().unwrap(),
        )
        .send()
        .await
        .unwrap();
    collector.wait_for("for the send traced by its message", |s| s["traceId"] == "6759e988cd862e3fe1be46a994272793");

    // The consumer: the receive that returns the messages links to their producers' traces.
    let received = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::AwsTraceHeader)
        .send()
        .await
        .unwrap();
    let lead = received.messages().iter().find(|m| m.body() == Some("lead")).expect("the lead");
    assert_eq!(lead.attributes().unwrap()[&MessageSystemAttributeName::AwsTraceHeader], XRAY);
    let receive_span = collector.wait_for("for the receive", |s| s["name"] == "SQS.ReceiveMessage");
    let linked: Vec<&str> =
        receive_span["links"].as_array().expect("links").iter().map(|l| l["traceId"].as_str().unwrap()).collect();
    assert!(linked.contains(&XRAY_TRACE), "{linked:?}");
    assert!(linked.contains(&"6759e988cd862e3fe1be46a994272793"), "{linked:?}");

    // A caller that asks not to be sampled is not recorded; a failure is marked as one.
    sqs.get_queue_url()
        .queue_name(&name)
        .customize()
        .mutate_request(|request| {
            request.headers_mut().insert("x-amzn-trace-id", "Root=1-7759e988-bd862e3fe1be46a994272793;Sampled=0");
        })
        .send()
        .await
        .unwrap();
    let missing = sqs.get_queue_url().queue_name(unique("missing")).send().await;
    assert!(missing.is_err());
    let failed = collector.wait_for("for the failure", |s| s["name"] == "SQS.GetQueueUrl" && s["status"]["code"] == 2);
    assert_eq!(failed["status"]["message"], "AWS.SimpleQueueService.NonExistentQueue");
    assert!(!collector.spans.lock().unwrap().iter().any(|s| s["traceId"] == "7759e988bd862e3fe1be46a994272793"));

    // Shutting down sends what is still queued.
    sqs.list_queues().send().await.unwrap();
    assert!(server.terminate().success());
    collector.wait_for("for the last request", |s| s["name"] == "SQS.ListQueues");
    assert!(collector.names().iter().all(|n| n.starts_with("SQS.")), "{:?}", collector.names());
}

#[tokio::test]
async fn a_collector_that_is_down_costs_nothing_but_a_warning() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = TestServer::start_with(&["--otlp-endpoint", &format!("http://127.0.0.1:{port}")]);
    let sqs = server.client();
    let url = sqs.create_queue().queue_name(unique("untraced")).send().await.unwrap().queue_url.unwrap();
    for i in 0..50 {
        sqs.send_message().queue_url(&url).message_body(format!("m{i}")).send().await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("could not export traces") {
        assert!(Instant::now() < deadline, "no warning: {}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}
