//! `holdfast queue …`: create, list, inspect, change, tag, purge, redrive and delete queues.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use clap::{Args, Subcommand};

use super::output::{messages, Format, Progress, Table};
use super::{client, key_value, queue_url, ClientArgs, CommandResult, Failure};

#[derive(Args, Debug)]
pub struct QueueCommand {
    #[command(subcommand)]
    action: QueueAction,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand, Debug)]
enum QueueAction {
    /// Create a queue (or return the existing one with the same attributes); prints its URL.
    Create {
        name: String,
        /// A queue attribute, e.g. VisibilityTimeout=60 (repeatable).
        #[arg(short = 'a', long = "attribute", value_parser = key_value)]
        attributes: Vec<(String, String)>,
        /// A tag, e.g. team=web (repeatable).
        #[arg(short = 't', long = "tag", value_parser = key_value)]
        tags: Vec<(String, String)>,
    },
    /// List queue URLs.
    List {
        /// Only queues whose name starts with this.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Print a queue's URL.
    Url { name: String },
    /// Delete a queue and its messages.
    Delete { queue: String },
    /// Show all attributes and tags of a queue (or set attributes with --set, as `queue set`).
    Attributes {
        queue: String,
        /// Set an attribute, e.g. --set VisibilityTimeout=60 (repeatable).
        #[arg(long = "set", value_parser = key_value)]
        set: Vec<(String, String)>,
    },
    /// Set queue attributes, e.g. `holdfast queue set jobs VisibilityTimeout=60 DelaySeconds=5`.
    Set {
        queue: String,
        /// NAME=VALUE pairs.
        #[arg(required = true, value_parser = key_value)]
        attributes: Vec<(String, String)>,
    },
    /// Add or change tags, e.g. `holdfast queue tag jobs team=web env=prod`.
    Tag {
        queue: String,
        /// KEY=VALUE pairs.
        #[arg(required = true, value_parser = key_value)]
        tags: Vec<(String, String)>,
    },
    /// Remove tags by key.
    Untag {
        queue: String,
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Delete every message in a queue.
    Purge { queue: String },
    /// Move the messages of a dead-letter queue back to where they came from (or to --to), and
    /// follow the move to its end. Ctrl-C stops following; the move goes on (see --cancel).
    Redrive {
        /// The dead-letter queue.
        queue: String,
        /// Destination queue (name, URL or ARN); default: each message's original source queue.
        #[arg(long)]
        to: Option<String>,
        /// At most this many messages per second (1–500); default: as fast as possible.
        #[arg(long)]
        rate: Option<i32>,
        /// Start the move and return at once.
        #[arg(long)]
        detach: bool,
        /// Show the queue's recent move tasks instead.
        #[arg(long, conflicts_with_all = ["to", "rate", "detach", "cancel"])]
        status: bool,
        /// Cancel the queue's running move task instead.
        #[arg(long, conflicts_with_all = ["to", "rate", "detach"])]
        cancel: bool,
    },
}

pub async fn run(command: QueueCommand) -> CommandResult {
    let format = command.client.format();
    let quiet = command.client.quiet;
    let client = client(&command.client).await;
    match command.action {
        QueueAction::Create { name, attributes, tags } => {
            let mut request = client.create_queue().queue_name(&name);
            for (key, value) in attributes {
                request = request.attributes(QueueAttributeName::from(key.as_str()), value);
            }
            for (key, value) in tags {
                request = request.tags(key, value);
            }
            let url = request.send().await?.queue_url.unwrap_or_default();
            print_value(format, "QueueUrl", &url);
        }
        QueueAction::List { prefix } => {
            let mut urls = Vec::new();
            let mut pages =
                client.list_queues().set_queue_name_prefix(prefix).max_results(1000).into_paginator().send();
            while let Some(page) = pages.next().await {
                urls.extend(page?.queue_urls.unwrap_or_default());
            }
            match format {
                Format::Json => out!("{}", serde_json::json!({ "QueueUrls": urls })),
                Format::Table => {
                    let mut table = Table::new(&["QueueUrl"]);
                    urls.into_iter().for_each(|url| table.row(vec![url]));
                    table.print();
                }
                Format::Text => urls.iter().for_each(|url| out!("{url}")),
            }
        }
        QueueAction::Url { name } => {
            let url = queue_url(&client, &name).await?;
            print_value(format, "QueueUrl", &url);
        }
        QueueAction::Delete { queue } => {
            let url = queue_url(&client, &queue).await?;
            client.delete_queue().queue_url(&url).send().await?;
            print_done(format, "Deleted", &url);
        }
        QueueAction::Attributes { queue, set } if set.is_empty() => {
            let url = queue_url(&client, &queue).await?;
            show_attributes(&client, &url, format).await?;
        }
        QueueAction::Attributes { queue, set: attributes } | QueueAction::Set { queue, attributes } => {
            let url = queue_url(&client, &queue).await?;
            let mut request = client.set_queue_attributes().queue_url(&url);
            for (key, value) in attributes {
                request = request.attributes(QueueAttributeName::from(key.as_str()), value);
            }
            request.send().await?;
            print_done(format, "Updated", &url);
        }
        QueueAction::Tag { queue, tags } => {
            let url = queue_url(&client, &queue).await?;
            client.tag_queue().queue_url(&url).set_tags(Some(tags.into_iter().collect())).send().await?;
            print_done(format, "Tagged", &url);
        }
        QueueAction::Untag { queue, keys } => {
            let url = queue_url(&client, &queue).await?;
            client.untag_queue().queue_url(&url).set_tag_keys(Some(keys)).send().await?;
            print_done(format, "Untagged", &url);
        }
        QueueAction::Purge { queue } => {
            let url = queue_url(&client, &queue).await?;
            let waiting = approximate_messages(&client, &url).await?;
            let progress = Progress::new(None, "…", quiet);
            client.purge_queue().queue_url(&url).send().await.inspect_err(|_| progress.abandon())?;
            progress.finish(&format!("purged {} ({} waiting before)", queue, messages(waiting)));
            print_done(format, "Purged", &url);
        }
        QueueAction::Redrive { queue, to, rate, detach, status, cancel } => {
            let url = queue_url(&client, &queue).await?;
            let source_arn = queue_arn(&client, &url).await?;
            if status {
                return show_move_tasks(&client, &source_arn, format).await;
            }
            if cancel {
                return cancel_move_task(&client, &source_arn, format).await;
            }
            let destination = match to {
                Some(to) if to.starts_with("arn:") => Some(to),
                Some(to) => Some(queue_arn(&client, &queue_url(&client, &to).await?).await?),
                None => None,
            };
            let started = client
                .start_message_move_task()
                .source_arn(&source_arn)
                .set_destination_arn(destination)
                .set_max_number_of_messages_per_second(rate)
                .send()
                .await?;
            let handle = started.task_handle.unwrap_or_default();
            if detach {
                print_value(format, "TaskHandle", &handle);
                if !quiet && format == Format::Text {
                    eprintln!("started; follow it with `holdfast queue redrive {queue} --status`");
                }
                return Ok(());
            }
            follow_move_task(&client, &source_arn, &handle, format, quiet).await?;
        }
    }
    Ok(())
}

async fn show_attributes(client: &aws_sdk_sqs::Client, url: &str, format: Format) -> CommandResult {
    let output = client.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::All).send().await?;
    let attributes: BTreeMap<String, String> =
        output.attributes.unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_string(), v)).collect();
    let tags: BTreeMap<String, String> =
        client.list_queue_tags().queue_url(url).send().await?.tags.unwrap_or_default().into_iter().collect();
    match format {
        Format::Json => out!("{}", serde_json::json!({ "Attributes": attributes, "Tags": tags })),
        Format::Table => {
            let mut table = Table::new(&["Attribute", "Value"]);
            attributes.into_iter().for_each(|(k, v)| table.row(vec![k, v]));
            tags.into_iter().for_each(|(k, v)| table.row(vec![format!("tag:{k}"), v]));
            table.print();
        }
        Format::Text => {
            attributes.iter().for_each(|(k, v)| out!("{k}={v}"));
            // Tags after the attributes, marked so a script can tell them apart.
            tags.iter().for_each(|(k, v)| out!("tag:{k}={v}"));
        }
    }
    Ok(())
}

async fn queue_attribute(
    client: &aws_sdk_sqs::Client,
    url: &str,
    name: QueueAttributeName,
) -> Result<Option<String>, Failure> {
    let output = client.get_queue_attributes().queue_url(url).attribute_names(name.clone()).send().await?;
    Ok(output.attributes.and_then(|mut attributes| attributes.remove(&name)))
}

async fn queue_arn(client: &aws_sdk_sqs::Client, url: &str) -> Result<String, Failure> {
    queue_attribute(client, url, QueueAttributeName::QueueArn)
        .await?
        .ok_or_else(|| Failure { message: format!("{url} has no QueueArn attribute"), exit_code: 3 })
}

async fn approximate_messages(client: &aws_sdk_sqs::Client, url: &str) -> Result<u64, Failure> {
    let count = queue_attribute(client, url, QueueAttributeName::ApproximateNumberOfMessages).await?;
    Ok(count.and_then(|n| n.parse().ok()).unwrap_or(0))
}

async fn show_move_tasks(client: &aws_sdk_sqs::Client, source_arn: &str, format: Format) -> CommandResult {
    let tasks = client.list_message_move_tasks().source_arn(source_arn).max_results(10).send().await?.results;
    let tasks = tasks.unwrap_or_default();
    match format {
        Format::Json => {
            let rows: Vec<serde_json::Value> = tasks
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "TaskHandle": t.task_handle,
                        "Status": t.status,
                        "SourceArn": t.source_arn,
                        "DestinationArn": t.destination_arn,
                        "MaxNumberOfMessagesPerSecond": t.max_number_of_messages_per_second,
                        "ApproximateNumberOfMessagesMoved": t.approximate_number_of_messages_moved,
                        "ApproximateNumberOfMessagesToMove": t.approximate_number_of_messages_to_move,
                        "FailureReason": t.failure_reason,
                        "StartedTimestamp": t.started_timestamp,
                    })
                })
                .collect();
            out!("{}", serde_json::json!({ "Results": rows }));
        }
        Format::Table | Format::Text => {
            let mut table = Table::new(&["Status", "Moved", "ToMove", "Destination", "Failure"]);
            for t in &tasks {
                table.row(vec![
                    t.status.clone().unwrap_or_default(),
                    t.approximate_number_of_messages_moved.to_string(),
                    t.approximate_number_of_messages_to_move.map(|n| n.to_string()).unwrap_or_default(),
                    t.destination_arn.clone().unwrap_or_else(|| "(original sources)".into()),
                    t.failure_reason.clone().unwrap_or_default(),
                ]);
            }
            if format == Format::Table {
                table.print();
            } else {
                for t in &tasks {
                    out!(
                        "{} moved={} to_move={} destination={}{}",
                        t.status.as_deref().unwrap_or("?"),
                        t.approximate_number_of_messages_moved,
                        t.approximate_number_of_messages_to_move.map(|n| n.to_string()).unwrap_or_default(),
                        t.destination_arn.as_deref().unwrap_or("(original sources)"),
                        t.failure_reason.as_deref().map(|r| format!(" failure={r}")).unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}

async fn cancel_move_task(client: &aws_sdk_sqs::Client, source_arn: &str, format: Format) -> CommandResult {
    let tasks = client.list_message_move_tasks().source_arn(source_arn).max_results(1).send().await?.results;
    let running = tasks
        .unwrap_or_default()
        .into_iter()
        .find(|t| t.status.as_deref() == Some("RUNNING"))
        .and_then(|t| t.task_handle)
        .ok_or_else(|| Failure { message: "no move task is running for this queue".into(), exit_code: 1 })?;
    let output = client.cancel_message_move_task().task_handle(&running).send().await?;
    let moved = output.approximate_number_of_messages_moved;
    match format {
        Format::Json => out!("{}", serde_json::json!({ "Cancelled": true, "ApproximateNumberOfMessagesMoved": moved })),
        _ => out!("cancelled after {} moved", messages(moved.max(0) as u64)),
    }
    Ok(())
}

/// Polls the move task until it ends, with a progress bar; fails unless it completed.
async fn follow_move_task(
    client: &aws_sdk_sqs::Client,
    source_arn: &str,
    handle: &str,
    format: Format,
    quiet: bool,
) -> CommandResult {
    let progress = Progress::new(Some(0), "messages", quiet);
    loop {
        let tasks = client.list_message_move_tasks().source_arn(source_arn).max_results(10).send().await;
        let tasks = tasks.inspect_err(|_| progress.abandon())?.results.unwrap_or_default();
        // ListMessageMoveTasks names only the running task's handle; the newest task is ours.
        let task = tasks
            .iter()
            .find(|t| t.task_handle.as_deref() == Some(handle))
            .or_else(|| tasks.first())
            .ok_or_else(|| Failure { message: "the move task disappeared".into(), exit_code: 1 })?;
        let moved = task.approximate_number_of_messages_moved.max(0) as u64;
        if let Some(total) = task.approximate_number_of_messages_to_move {
            progress.set_total(total.max(0) as u64);
        }
        progress.set_position(moved);
        let status = task.status.clone().unwrap_or_default();
        if status != "RUNNING" {
            progress.finish(&format!("{} moved ({})", messages(moved), status.to_lowercase()));
            if format == Format::Json {
                out!("{}", serde_json::json!({ "Status": status, "ApproximateNumberOfMessagesMoved": moved }));
            }
            return match status.as_str() {
                "COMPLETED" => Ok(()),
                _ => Err(Failure {
                    message: format!(
                        "the move ended {status}{}",
                        task.failure_reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
                    ),
                    exit_code: 1,
                }),
            };
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What a command that changes a queue did: with --output json one object, else nothing (as the
/// AWS CLI prints nothing for these).
fn print_done(format: Format, what: &str, queue_url: &str) {
    if format == Format::Json {
        out!("{}", serde_json::json!({ what: true, "QueueUrl": queue_url }));
    }
}

fn print_value(format: Format, key: &str, value: &str) {
    match format {
        Format::Json => out!("{}", serde_json::json!({ key: value })),
        Format::Table => {
            let mut table = Table::new(&[key]);
            table.row(vec![value.to_string()]);
            table.print();
        }
        Format::Text => out!("{value}"),
    }
}
