//! `GET /metrics`: the queues' current figures in the Prometheus text format, named after the
//! AWS/SQS CloudWatch metrics they mirror, with `account`, `region` and `queue` labels.
//!
//! Every queue: `sqs_approximate_number_of_messages_visible`, `..._not_visible` and
//! `..._delayed`. Standard queues whose messages carry group ids (fair queues) also:
//! `sqs_approximate_number_of_noisy_groups`,
//! `sqs_approximate_number_of_messages_{visible,not_visible,delayed}_in_quiet_groups` and
//! `sqs_approximate_age_of_oldest_message_in_quiet_groups_seconds`.
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
use holdfast_core::store::QueueRecord;
use holdfast_core::Sqs;

/// One gauge family: its help line and the queues' samples.
struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<(String, u64)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str) -> Self {
        Family { name, help, samples: Vec::new() }
    }
}

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

pub async fn render(sqs: &Sqs, requests: &RequestMetrics) -> Result<String, holdfast_api::SqsError> {
    let mut visible = Family::new("sqs_approximate_number_of_messages_visible", "Messages available for retrieval.");
    let mut not_visible =
        Family::new("sqs_approximate_number_of_messages_not_visible", "Messages in flight: received, not yet deleted.");
    let mut delayed = Family::new("sqs_approximate_number_of_messages_delayed", "Messages not yet available: delayed.");
    let mut noisy = Family::new("sqs_approximate_number_of_noisy_groups", "Fair queues: noisy tenants with a backlog.");
    let mut quiet_visible = Family::new(
        "sqs_approximate_number_of_messages_visible_in_quiet_groups",
        "Fair queues: available messages of quiet tenants.",
    );
    let mut quiet_not_visible = Family::new(
        "sqs_approximate_number_of_messages_not_visible_in_quiet_groups",
        "Fair queues: in-flight messages of quiet tenants.",
    );
    let mut quiet_delayed = Family::new(
        "sqs_approximate_number_of_messages_delayed_in_quiet_groups",
        "Fair queues: delayed messages of quiet tenants.",
    );
    let mut quiet_age = Family::new(
        "sqs_approximate_age_of_oldest_message_in_quiet_groups_seconds",
        "Fair queues: age of the oldest message of a quiet tenant.",
    );
    for queue in sqs.queues().await? {
        let labels = labels(&queue);
        let counts = sqs.queue_counts(&queue).await?;
        visible.samples.push((labels.clone(), counts.visible));
        not_visible.samples.push((labels.clone(), counts.in_flight));
        delayed.samples.push((labels.clone(), counts.delayed));
        if let Some(fair) = sqs.fair_queue_metrics(&queue).await? {
            noisy.samples.push((labels.clone(), fair.approximate_number_of_noisy_groups));
            quiet_visible.samples.push((labels.clone(), fair.approximate_number_of_messages_visible_in_quiet_groups));
            quiet_not_visible
                .samples
                .push((labels.clone(), fair.approximate_number_of_messages_not_visible_in_quiet_groups));
            quiet_delayed.samples.push((labels.clone(), fair.approximate_number_of_messages_delayed_in_quiet_groups));
            if let Some(age) = fair.approximate_age_of_oldest_message_in_quiet_groups {
                quiet_age.samples.push((labels, age));
            }
        }
    }
    let mut out = String::new();
    for family in [visible, not_visible, delayed, noisy, quiet_visible, quiet_not_visible, quiet_delayed, quiet_age] {
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} gauge", family.name, family.help, family.name);
        for (labels, value) in family.samples {
            let _ = writeln!(out, "{}{{{labels}}} {value}", family.name);
        }
    }
    requests.render(&mut out);
    Ok(out)
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

impl Default for RequestMetrics {
    fn default() -> Self {
        RequestMetrics {
            outcomes: Mutex::new(BTreeMap::new()),
            latency: (0..=Action::ALL.len()).map(|_| Histogram::default()).collect(),
            started_unix_seconds: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        }
    }
}

impl RequestMetrics {
    /// Records one answered request: its action (if it named a valid one), its error code (if it
    /// failed) and how long it took.
    pub fn record(&self, action: Option<Action>, error: Option<ErrorCode>, elapsed: Duration) {
        let name = action.map(Action::name).unwrap_or("-");
        let outcome = error.map(ErrorCode::query_code).unwrap_or("ok");
        *self.outcomes.lock().expect("metrics lock").entry((name, outcome)).or_default() += 1;
        let index = action.and_then(|a| Action::ALL.iter().position(|b| *b == a)).unwrap_or(Action::ALL.len());
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
        let names = Action::ALL.iter().map(|a| a.name()).chain(std::iter::once("-"));
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
