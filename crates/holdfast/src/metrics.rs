//! `GET /metrics`: the queues' current figures in the Prometheus text format, named after the
//! AWS/SQS CloudWatch metrics they mirror, with `account`, `region` and `queue` labels.
//!
//! Every queue ([`QUEUE_FAMILIES`]): the gauges `sqs_approximate_number_of_messages_visible`,
//! `..._not_visible`, `..._delayed` and `sqs_approximate_age_of_oldest_message_seconds`, and the
//! counters since the server started `sqs_number_of_messages_{sent,received,deleted}_total`,
//! `sqs_number_of_empty_receives_total` and `sqs_sent_message_size_bytes_total`. Standard queues
//! whose messages carry group ids (fair queues) also the fair-queue gauges. The store's own
//! figures: `holdfast_store_size_bytes`, `holdfast_store_commit_batch_size` and
//! `holdfast_store_commit_seconds` (histograms).
//!
//! The server's own work ([`RequestMetrics`]): `holdfast_requests_total` by action and outcome,
//! `holdfast_request_duration_seconds` (a histogram per action), and the standard `process_*`
//! figures (CPU, resident memory, open file descriptors, start time).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use holdfast_api::{Action, ErrorCode};
use holdfast_core::store::{EngineFigures, QueueRecord};
use holdfast_core::Sqs;

fn labels(queue: &QueueRecord) -> String {
    format!(
        r#"account="{}",region="{}",queue="{}""#,
        escape(&queue.account_id),
        escape(&queue.region),
        escape(&queue.name)
    )
}

/// Label values escape backslashes, quotes and newlines. (Queue names cannot hold any; this
/// keeps the output well-formed whatever a store returns.)
fn escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', r#"\""#).replace('\n', r"\n")
}

/// The per-queue families: gauges sampled now, counters since the server started.
const QUEUE_FAMILIES: [(&str, &str, &str); 14] = [
    ("sqs_approximate_number_of_messages_visible", "gauge", "Messages available for retrieval."),
    ("sqs_approximate_number_of_messages_not_visible", "gauge", "Messages in flight: received, not yet deleted."),
    ("sqs_approximate_number_of_messages_delayed", "gauge", "Messages not yet available: delayed."),
    (
        "sqs_approximate_age_of_oldest_message_seconds",
        "gauge",
        "Age of the oldest message in the queue (0 when empty).",
    ),
    ("sqs_number_of_messages_sent_total", "counter", "Messages sent since the server started."),
    ("sqs_sent_message_size_bytes_total", "counter", "Bytes of the messages sent since the server started."),
    (
        "sqs_number_of_messages_received_total",
        "counter",
        "Messages returned by ReceiveMessage since the server started.",
    ),
    (
        "sqs_number_of_messages_deleted_total",
        "counter",
        "Successful deletes (with a valid receipt handle) since the server started.",
    ),
    (
        "sqs_number_of_empty_receives_total",
        "counter",
        "ReceiveMessage calls that returned no message since the server started.",
    ),
    ("sqs_approximate_number_of_noisy_groups", "gauge", "Fair queues: noisy tenants with a backlog."),
    (
        "sqs_approximate_number_of_messages_visible_in_quiet_groups",
        "gauge",
        "Fair queues: available messages of quiet tenants.",
    ),
    (
        "sqs_approximate_number_of_messages_not_visible_in_quiet_groups",
        "gauge",
        "Fair queues: in-flight messages of quiet tenants.",
    ),
    (
        "sqs_approximate_number_of_messages_delayed_in_quiet_groups",
        "gauge",
        "Fair queues: delayed messages of quiet tenants.",
    ),
    (
        "sqs_approximate_age_of_oldest_message_in_quiet_groups_seconds",
        "gauge",
        "Fair queues: age of the oldest message of a quiet tenant.",
    ),
];

pub async fn render(sqs: &Sqs, requests: &RequestMetrics) -> Result<String, holdfast_api::SqsError> {
    let mut samples: Vec<Vec<(String, u64)>> = vec![Vec::new(); QUEUE_FAMILIES.len()];
    for queue in sqs.queues().await? {
        let labels = labels(&queue);
        let gauges = sqs.sample_gauges(&queue).await?;
        let totals = sqs.queue_totals(&queue);
        let mut values = vec![
            Some(gauges.visible),
            Some(gauges.not_visible),
            Some(gauges.delayed),
            Some(gauges.oldest_age_seconds),
            Some(totals.sent),
            Some(totals.sent_bytes),
            Some(totals.received),
            Some(totals.deleted),
            Some(totals.empty_receives),
        ];
        match &gauges.fair {
            Some(fair) => values.extend([
                Some(fair.noisy_groups),
                Some(fair.visible_in_quiet_groups),
                Some(fair.not_visible_in_quiet_groups),
                Some(fair.delayed_in_quiet_groups),
                fair.oldest_age_in_quiet_groups_seconds,
            ]),
            None => values.extend([None; 5]),
        }
        for (family, value) in samples.iter_mut().zip(values) {
            if let Some(value) = value {
                family.push((labels.clone(), value));
            }
        }
    }
    let mut out = String::new();
    for ((name, kind, help), samples) in QUEUE_FAMILIES.iter().zip(samples) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
    render_store(&mut out, &sqs.store().figures());
    requests.render(&mut out);
    Ok(out)
}

/// The storage engine's own figures, as far as it measures them.
fn render_store(out: &mut String, figures: &EngineFigures) {
    if let Some(bytes) = figures.database_bytes {
        let _ = writeln!(
            out,
            "# HELP holdfast_store_size_bytes Bytes the store's files take on disk (database and write-ahead log).\n# TYPE holdfast_store_size_bytes gauge\nholdfast_store_size_bytes {bytes}"
        );
    }
    let histograms = [
        (
            "holdfast_store_commit_batch_size",
            "Store calls committed together in one transaction (group commit).",
            &figures.commit_batch_size,
        ),
        ("holdfast_store_commit_seconds", "Time to commit one transaction, fsync included.", &figures.commit_seconds),
    ];
    for (name, help, histogram) in histograms {
        let Some(histogram) = histogram else { continue };
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in histogram.bounds.iter().zip(&histogram.counts) {
            cumulative += count;
            let _ = writeln!(out, r#"{name}_bucket{{le="{bound}"}} {cumulative}"#);
        }
        let total: u64 = histogram.counts.iter().sum();
        let _ = writeln!(out, r#"{name}_bucket{{le="+Inf"}} {total}"#);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {total}", histogram.sum);
    }
}

/// Upper bounds of the request-latency buckets, in seconds. Long polls wait up to 20 s, so the
/// buckets reach past that.
const LATENCY_BUCKETS: [f64; 15] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0];

/// One action's latency histogram: cumulative counts are computed when rendered.
#[derive(Default)]
struct Histogram {
    /// Requests per bucket (not cumulative), plus one for those above the last bound.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

/// What the server itself did since it started: requests per action and outcome, their latency,
/// and the process's own figures. Recording is a map update under a short lock and three atomic
/// additions per request.
pub struct RequestMetrics {
    /// (action, outcome) → requests; outcome is `ok` or the SQS error code. Both sets are finite.
    outcomes: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Per action, in `Action::ALL` order, then one for requests that named no valid action.
    latency: Vec<Histogram>,
    started_unix_seconds: f64,
}

/// Every action name a request can be counted under: SQS's, then CloudWatch's.
fn action_names() -> impl Iterator<Item = &'static str> {
    Action::ALL.iter().map(|a| a.name()).chain(holdfast_api::cloudwatch::Operation::ALL.iter().map(|op| op.name()))
}

impl Default for RequestMetrics {
    fn default() -> Self {
        RequestMetrics {
            outcomes: Mutex::new(BTreeMap::new()),
            latency: (0..=action_names().count()).map(|_| Histogram::default()).collect(),
            started_unix_seconds: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        }
    }
}

impl RequestMetrics {
    /// Records one answered SQS request: its action (if it named a valid one), its error code
    /// (if it failed) and how long it took.
    pub fn record(&self, action: Option<Action>, error: Option<ErrorCode>, elapsed: Duration) {
        self.record_named(action.map(Action::name), error.map(ErrorCode::query_code), elapsed);
    }

    /// Records one answered request by action name (SQS's or CloudWatch's) and error code.
    pub fn record_named(&self, action: Option<&'static str>, error: Option<&'static str>, elapsed: Duration) {
        let name = action.unwrap_or("-");
        let outcome = error.unwrap_or("ok");
        *self.outcomes.lock().expect("metrics lock").entry((name, outcome)).or_default() += 1;
        let index = action.and_then(|a| action_names().position(|b| b == a)).unwrap_or(self.latency.len() - 1);
        let histogram = &self.latency[index];
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(LATENCY_BUCKETS.len());
        histogram.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        histogram.sum_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// The request families and the process's figures, in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP holdfast_requests_total SQS requests answered, by action and outcome (ok or the error code).\n# TYPE holdfast_requests_total counter"
        );
        for ((action, outcome), count) in self.outcomes.lock().expect("metrics lock").iter() {
            let _ =
                writeln!(out, r#"holdfast_requests_total{{action="{action}",outcome="{}"}} {count}"#, escape(outcome));
        }
        let _ = writeln!(
            out,
            "# HELP holdfast_request_duration_seconds Time from a request's arrival to its answer, by action (long polls included).\n# TYPE holdfast_request_duration_seconds histogram"
        );
        let names = action_names().chain(std::iter::once("-"));
        for (histogram, action) in self.latency.iter().zip(names) {
            let counts: Vec<u64> = histogram.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
            let total: u64 = counts.iter().sum();
            if total == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (bound, count) in LATENCY_BUCKETS.iter().zip(&counts) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    r#"holdfast_request_duration_seconds_bucket{{action="{action}",le="{bound}"}} {cumulative}"#
                );
            }
            let _ = writeln!(out, r#"holdfast_request_duration_seconds_bucket{{action="{action}",le="+Inf"}} {total}"#);
            let sum = histogram.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, r#"holdfast_request_duration_seconds_sum{{action="{action}"}} {sum}"#);
            let _ = writeln!(out, r#"holdfast_request_duration_seconds_count{{action="{action}"}} {total}"#);
        }
        // The standard process figures, as Prometheus client libraries name them.
        if let Some(sample) = holdfast_bench::procfs::sample("self") {
            let _ = writeln!(
                out,
                "# HELP process_cpu_seconds_total User and system CPU time spent, in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}",
                sample.cpu_seconds
            );
            let _ = writeln!(
                out,
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}",
                sample.rss_bytes
            );
        }
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            let _ = writeln!(
                out,
                "# HELP process_open_fds Open file descriptors (each connection holds one).\n# TYPE process_open_fds gauge\nprocess_open_fds {}",
                entries.count()
            );
        }
        let _ = writeln!(
            out,
            "# HELP process_start_time_seconds Start time of the process since the Unix epoch, in seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {}",
            self.started_unix_seconds
        );
    }
}
