//! `GET /metrics`: the queues' current figures in the Prometheus text format, named after the
//! AWS/SQS CloudWatch metrics they mirror, with `account`, `region` and `queue` labels.
//!
//! Every queue: `sqs_approximate_number_of_messages_visible`, `..._not_visible` and
//! `..._delayed`. Standard queues whose messages carry group ids (fair queues) also:
//! `sqs_approximate_number_of_noisy_groups`,
//! `sqs_approximate_number_of_messages_{visible,not_visible,delayed}_in_quiet_groups` and
//! `sqs_approximate_age_of_oldest_message_in_quiet_groups_seconds`.

use std::fmt::Write as _;

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

pub async fn render(sqs: &Sqs) -> Result<String, holdfast_api::SqsError> {
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
    Ok(out)
}
