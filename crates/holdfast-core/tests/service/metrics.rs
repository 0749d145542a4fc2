//! Queue metrics by the minute: what the background task stores, what the CloudWatch API
//! answers from it, activity, retention, and the last minute at shutdown.

use holdfast_api::cloudwatch::{
    CloudWatchRequest, CloudWatchResponse, Dimension, GetMetricStatisticsRequest, ListMetricsRequest, Metric,
};
use holdfast_core::queue_metrics::{minute_of, MINUTE_MS};
use holdfast_core::{RequestContext, ServiceConfig};

use crate::harness::*;

const ACCOUNT: &str = holdfast_core::DEFAULT_ACCOUNT_ID;
const REGION: &str = "us-east-1";

/// Advances to a second past the end of the current minute: the background task has closed it.
async fn past_minute_end(h: &Harness) {
    let now = holdfast_core::Clock::now(h.clock.as_ref());
    h.advance(minute_of(now) + MINUTE_MS + 1_500 - now).await;
}

async fn statistics(h: &Harness, queue: &str, metric: &str, from: i64, to: i64, period: i64) -> Vec<(i64, f64, f64)> {
    let request = CloudWatchRequest::GetMetricStatistics(GetMetricStatisticsRequest {
        metric: Metric {
            namespace: Some("AWS/SQS".into()),
            metric_name: Some(metric.into()),
            dimensions: vec![Dimension { name: "QueueName".into(), value: queue.into() }],
        },
        start_time: from,
        end_time: to,
        period,
        statistics: vec!["Sum".into(), "SampleCount".into()],
        extended_statistics: vec![],
        unit: None,
    });
    match h.sqs.cloudwatch(&RequestContext::default(), request).await {
        Ok(CloudWatchResponse::GetMetricStatistics(r)) => {
            r.datapoints.into_iter().map(|p| (p.timestamp, p.sum.unwrap(), p.sample_count.unwrap())).collect()
        }
        other => panic!("GetMetricStatistics: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn each_minute_is_stored_with_its_counters_and_gauges() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[]).await;
    let first_minute = minute_of(holdfast_core::Clock::now(h.clock.as_ref()));
    for body in ["a", "bb", "ccc"] {
        h.send(&url, body).await;
    }
    let received = h.receive(&url, 2, 300).await;
    h.delete(&url, &received[0]).await.unwrap();
    past_minute_end(&h).await;

    let rows = h.sqs.store().queue_minutes(ACCOUNT, REGION, "q", 0, i64::MAX).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row.minute, first_minute);
    assert_eq!((row.sent, row.received, row.deleted, row.empty_receives), (3, 2, 1, 0));
    assert_eq!((row.sent_size.count, row.sent_size.sum), (3, 6.0));
    let gauges = row.gauges.as_ref().expect("sampled at the minute's end");
    assert_eq!((gauges.visible, gauges.not_visible, gauges.delayed), (1, 1, 0));
    assert!(gauges.oldest_age_seconds >= 1);

    // A queue holding messages gets a row every minute, zero counters included.
    past_minute_end(&h).await;
    past_minute_end(&h).await;
    let sent = statistics(&h, "q", "NumberOfMessagesSent", first_minute, first_minute + 3 * MINUTE_MS, 60).await;
    assert_eq!(
        sent,
        vec![(first_minute, 3.0, 1.0), (first_minute + MINUTE_MS, 0.0, 1.0), (first_minute + 2 * MINUTE_MS, 0.0, 1.0)]
    );
    // Five-minute periods add the minutes up.
    let five = statistics(&h, "q", "NumberOfMessagesSent", first_minute, first_minute + 3 * MINUTE_MS, 300).await;
    assert_eq!(five.iter().map(|p| p.1).sum::<f64>(), 3.0);
    assert_eq!(five.iter().map(|p| p.2).sum::<f64>(), 3.0, "one sample per minute");
    let sizes = statistics(&h, "q", "SentMessageSize", first_minute, first_minute + 3 * MINUTE_MS, 60).await;
    assert_eq!(sizes, vec![(first_minute, 6.0, 3.0)], "one sample per message, none in minutes without sends");
}

#[tokio::test(start_paused = true)]
async fn an_idle_empty_queue_stops_getting_rows_after_six_hours() {
    let h = Harness::new().await;
    let url = h.create_queue("idle", &[]).await;
    let untouched = h.create_queue("untouched", &[]).await;
    h.send(&url, "m").await;
    let message = h.receive(&url, 1, 30).await.pop().unwrap();
    h.delete(&url, &message).await.unwrap();
    past_minute_end(&h).await;
    let count = |name: &'static str| {
        let store = h.sqs.store().clone();
        async move { store.queue_minutes(ACCOUNT, REGION, name, 0, i64::MAX).await.unwrap().len() }
    };
    assert_eq!(count("idle").await, 1);
    for _ in 0..10 {
        past_minute_end(&h).await;
    }
    assert_eq!(count("idle").await, 11, "used within six hours: a row every minute");
    assert_eq!(count("untouched").await, 0, "never used and empty: no rows at all");
    h.advance(6 * 3600 * 1000).await;
    let after = count("idle").await;
    past_minute_end(&h).await;
    past_minute_end(&h).await;
    assert_eq!(count("idle").await, after, "inactive now");
    let _ = untouched;
}

#[tokio::test(start_paused = true)]
async fn minutes_past_the_retention_are_forgotten() {
    let config = ServiceConfig { metrics_retention_ms: 5 * MINUTE_MS, ..ServiceConfig::default() };
    let h = Harness::with_config(config).await;
    let url = h.create_queue("q", &[]).await;
    h.send(&url, "kept in the queue, so the queue stays active").await;
    for _ in 0..12 {
        past_minute_end(&h).await;
    }
    let rows = h.sqs.store().queue_minutes(ACCOUNT, REGION, "q", 0, i64::MAX).await.unwrap();
    let now = holdfast_core::Clock::now(h.clock.as_ref());
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r.minute >= now - 5 * MINUTE_MS),
        "{:?}",
        rows.iter().map(|r| now - r.minute).collect::<Vec<_>>()
    );
    assert!(rows.len() <= 6);
}

#[tokio::test(start_paused = true)]
async fn recording_can_be_switched_off() {
    let h = Harness::with_config(ServiceConfig { metrics_retention_ms: 0, ..ServiceConfig::default() }).await;
    let url = h.create_queue("q", &[]).await;
    h.send(&url, "m").await;
    past_minute_end(&h).await;
    assert!(h.sqs.store().queue_minutes(ACCOUNT, REGION, "q", 0, i64::MAX).await.unwrap().is_empty());
    let now = holdfast_core::Clock::now(h.clock.as_ref());
    assert!(statistics(&h, "q", "NumberOfMessagesSent", now - 600_000, now + 60_000, 60).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_open_minute_is_answered_and_written_at_shutdown() {
    let h = Harness::new().await;
    let url = h.create_queue("q", &[]).await;
    h.send(&url, "m").await;
    let now = holdfast_core::Clock::now(h.clock.as_ref());
    // Not stored yet, but answered from memory, with the gauges sampled now.
    assert!(h.sqs.store().queue_minutes(ACCOUNT, REGION, "q", 0, i64::MAX).await.unwrap().is_empty());
    assert_eq!(
        statistics(&h, "q", "NumberOfMessagesSent", now - 600_000, now + 60_000, 60).await,
        vec![(minute_of(now), 1.0, 1.0)]
    );
    assert_eq!(
        statistics(&h, "q", "ApproximateNumberOfMessagesVisible", now - 600_000, now + 60_000, 60).await.len(),
        1
    );
    let listed = match h
        .sqs
        .cloudwatch(&RequestContext::default(), CloudWatchRequest::ListMetrics(ListMetricsRequest::default()))
        .await
    {
        Ok(CloudWatchResponse::ListMetrics(r)) => r.metrics,
        other => panic!("{other:?}"),
    };
    assert!(
        listed.iter().any(|m| m.metric_name.as_deref() == Some("NumberOfMessagesSent")),
        "listed before its first row"
    );

    h.sqs.close_minutes(true).await.unwrap();
    let rows = h.sqs.store().queue_minutes(ACCOUNT, REGION, "q", 0, i64::MAX).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].sent, rows[0].gauges.is_none()), (1, true));
    // Written twice (a restart within the minute), a minute's counters add up.
    h.send(&url, "again").await;
    h.sqs.close_minutes(true).await.unwrap();
    let rows = h.sqs.store().queue_minutes(ACCOUNT, REGION, "q", 0, i64::MAX).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.sent).sum::<u64>(), 2);
}
