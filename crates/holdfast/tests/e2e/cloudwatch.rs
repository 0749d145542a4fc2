//! The CloudWatch API through the Rust SDK's own client (`aws-sdk-cloudwatch`, which speaks
//! Smithy RPC v2 CBOR), and the queue metrics surviving a restart of the durable server.

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, Statistic};

use crate::common::{unique, TestServer};

fn cloudwatch(url: &str) -> aws_sdk_cloudwatch::Client {
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .build();
    aws_sdk_cloudwatch::Client::from_conf(config)
}

fn queue_dimension(name: &str) -> Dimension {
    Dimension::builder().name("QueueName").value(name).build()
}

/// The last ten minutes and the next one.
fn window() -> (DateTime, DateTime) {
    let now = SystemTime::now();
    (DateTime::from(now - Duration::from_secs(600)), DateTime::from(now + Duration::from_secs(60)))
}

async fn sum_of(client: &aws_sdk_cloudwatch::Client, queue: &str, metric: &str) -> f64 {
    let (start, end) = window();
    let answer = client
        .get_metric_statistics()
        .namespace("AWS/SQS")
        .metric_name(metric)
        .dimensions(queue_dimension(queue))
        .start_time(start)
        .end_time(end)
        .period(60)
        .statistics(Statistic::Sum)
        .send()
        .await
        .expect("GetMetricStatistics");
    assert_eq!(answer.label(), Some(metric));
    answer.datapoints().iter().map(|p| p.sum().unwrap()).sum()
}

#[tokio::test]
async fn the_rust_sdk_reads_queue_metrics() {
    let server = TestServer::start();
    let sqs = server.client();
    let name = unique("cw");
    let url = sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    for i in 0..4 {
        sqs.send_message().queue_url(&url).message_body(format!("message {i}")).send().await.unwrap();
    }
    let client = cloudwatch(&server.url);
    assert_eq!(sum_of(&client, &name, "NumberOfMessagesSent").await, 4.0);
    assert_eq!(sum_of(&client, &name, "SentMessageSize").await, 4.0 * 9.0);

    let (start, end) = window();
    let stat = MetricStat::builder()
        .metric(
            Metric::builder()
                .namespace("AWS/SQS")
                .metric_name("ApproximateNumberOfMessagesVisible")
                .dimensions(queue_dimension(&name))
                .build(),
        )
        .period(60)
        .stat("Maximum")
        .build();
    let data = client
        .get_metric_data()
        .metric_data_queries(MetricDataQuery::builder().id("visible").metric_stat(stat).build())
        .start_time(start)
        .end_time(end)
        .send()
        .await
        .expect("GetMetricData");
    let result = &data.metric_data_results()[0];
    assert_eq!(result.id(), Some("visible"));
    assert_eq!(result.values().first(), Some(&4.0), "the open minute's gauge, sampled now");
    assert_eq!(result.timestamps().len(), result.values().len());

    let listed = client.list_metrics().namespace("AWS/SQS").send().await.expect("ListMetrics");
    assert!(listed.metrics().iter().any(|m| m.metric_name() == Some("NumberOfMessagesSent")
        && m.dimensions().first().and_then(|d| d.value()) == Some(name.as_str())));

    let error = client.list_metrics().next_token("forged").send().await.unwrap_err();
    assert_eq!(aws_sdk_cloudwatch::error::ProvideErrorMetadata::code(&error), Some("InvalidNextToken"));
}

#[tokio::test]
async fn counts_written_at_shutdown_are_there_after_a_restart() {
    let mut server = TestServer::start();
    let sqs = server.client();
    let name = unique("cw-restart");
    let url = sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    for _ in 0..2 {
        sqs.send_message().queue_url(&url).message_body("kept").send().await.unwrap();
    }
    assert!(server.terminate().success());
    server.restart();
    assert_eq!(sum_of(&cloudwatch(&server.url), &name, "NumberOfMessagesSent").await, 2.0);
}
