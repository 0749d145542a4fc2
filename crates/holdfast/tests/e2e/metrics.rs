//! `/metrics`: the server's own work (requests by action and outcome, latency histograms, the
//! process's figures) next to the queues' gauges, in a well-formed Prometheus text exposition.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::Duration;

use crate::common::{unique, TestServer};

fn scrape(url: &str) -> String {
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer.split_once("\r\n\r\n").unwrap().1.to_string()
}

fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The exposition format's rules that a scraper (and `promtool check metrics`) holds a server to:
/// every sample belongs to a family announced once with HELP and TYPE before its samples, names
/// and values parse, and a histogram's buckets are cumulative and end with `+Inf` = `_count`.
fn assert_well_formed(metrics: &str) {
    let mut announced = BTreeSet::new();
    let mut typed = std::collections::BTreeMap::new();
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split_whitespace().next().unwrap();
            assert!(announced.insert(name.to_string()), "HELP for {name} twice");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(typed.insert(name.to_string(), kind.to_string()).is_none(), "TYPE for {name} twice");
        } else {
            let (series, number) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
            number.parse::<f64>().unwrap_or_else(|_| panic!("bad value: {line}"));
            let name = series.split('{').next().unwrap();
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    name.strip_suffix(suffix).filter(|base| typed.get(*base).is_some_and(|k| k == "histogram"))
                })
                .unwrap_or(name);
            assert!(typed.contains_key(family) && announced.contains(family), "sample before its family: {line}");
        }
    }
}

#[tokio::test]
async fn requests_are_counted_by_action_and_outcome_and_timed() {
    let server = TestServer::start();
    let client = server.client();
    let name = unique("metrics");
    let url = client.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    for i in 0..3 {
        client.send_message().queue_url(&url).message_body(format!("m{i}")).send().await.unwrap();
    }
    client.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
    let missing = client.get_queue_url().queue_name(unique("missing")).send().await;
    assert!(missing.is_err());

    let metrics = scrape(&server.url);
    assert_well_formed(&metrics);
    assert_eq!(value(&metrics, r#"holdfast_requests_total{action="SendMessage",outcome="ok"}"#), Some(3.0));
    assert_eq!(value(&metrics, r#"holdfast_requests_total{action="CreateQueue",outcome="ok"}"#), Some(1.0));
    assert_eq!(
        value(
            &metrics,
            r#"holdfast_requests_total{action="GetQueueUrl",outcome="AWS.SimpleQueueService.NonExistentQueue"}"#
        ),
        Some(1.0)
    );
    assert_eq!(value(&metrics, r#"holdfast_request_duration_seconds_count{action="SendMessage"}"#), Some(3.0));
    assert_eq!(
        value(&metrics, r#"holdfast_request_duration_seconds_bucket{action="SendMessage",le="+Inf"}"#),
        Some(3.0)
    );
    let buckets: Vec<f64> = metrics
        .lines()
        .filter(|l| l.starts_with(r#"holdfast_request_duration_seconds_bucket{action="SendMessage""#))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "cumulative: {buckets:?}");
    assert!(value(&metrics, "process_resident_memory_bytes").unwrap() > 1e6);
    // The durable engine's own figures: its size on disk and its group commits.
    assert!(value(&metrics, "holdfast_store_size_bytes").unwrap() > 4096.0);
    let commits = value(&metrics, "holdfast_store_commit_seconds_count").unwrap();
    assert!(commits >= 5.0, "every write so far was committed: {commits}");
    assert_eq!(value(&metrics, r#"holdfast_store_commit_batch_size_bucket{le="+Inf"}"#), Some(commits));
    assert!(value(&metrics, "holdfast_store_commit_batch_size_sum").unwrap() >= commits);
    let labels = format!(r#"{{account="000000000000",region="us-east-1",queue="{name}"}}"#);
    assert_eq!(value(&metrics, &format!("sqs_number_of_messages_sent_total{labels}")), Some(3.0));
    assert_eq!(value(&metrics, &format!("sqs_sent_message_size_bytes_total{labels}")), Some(6.0));
    assert_eq!(value(&metrics, &format!("sqs_number_of_messages_received_total{labels}")), Some(3.0));
    assert_eq!(value(&metrics, &format!("sqs_number_of_empty_receives_total{labels}")), Some(0.0));
    assert!(value(&metrics, &format!("sqs_approximate_age_of_oldest_message_seconds{labels}")).is_some());
    assert!(value(&metrics, "process_open_fds").unwrap() >= 3.0);
    assert_eq!(
        value(
            &metrics,
            &format!(
                r#"sqs_approximate_number_of_messages_not_visible{{account="000000000000",region="us-east-1",queue="{name}"}}"#
            )
        ),
        Some(3.0)
    );
}
