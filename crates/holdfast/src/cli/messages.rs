//! `holdfast send` and `holdfast receive`: the classic producer and consumer scripts.

use std::io::BufRead;

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};
use clap::Args;

use super::{client, key_value, queue_url, ClientArgs, CommandResult, Failure};

#[derive(Args, Debug)]
pub struct SendArgs {
    /// Queue name or URL.
    queue: String,
    /// The message body. Without it, each line of standard input is one message, sent in batches
    /// of 10.
    body: Option<String>,
    /// Seconds before the message can be received.
    #[arg(long)]
    delay: Option<i32>,
    /// A String message attribute, e.g. source=web (repeatable).
    #[arg(short = 'a', long = "attribute", value_parser = key_value)]
    attributes: Vec<(String, String)>,
    /// Message group id (FIFO queues, or tenants of a fair queue).
    #[arg(long)]
    group_id: Option<String>,
    /// Message deduplication id (FIFO queues without content-based deduplication). With
    /// messages from standard input, line N is sent with ID-N.
    #[arg(long)]
    dedup_id: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
pub struct ReceiveArgs {
    /// Queue name or URL.
    queue: String,
    /// How many messages to receive at most; stops earlier when the queue has no more.
    #[arg(long, short = 'n', default_value_t = 1)]
    count: usize,
    /// Seconds each receive waits for messages (long polling, 0–20).
    #[arg(long, default_value_t = 1)]
    wait: i32,
    /// Visibility timeout for the received messages, in seconds (default: the queue's).
    #[arg(long)]
    visibility: Option<i32>,
    /// Delete each message once it has been printed.
    #[arg(long)]
    delete: bool,
    #[command(flatten)]
    client: ClientArgs,
}

fn string_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().expect("data type is set")
}

pub async fn send(args: SendArgs) -> CommandResult {
    let client = client(&args.client).await;
    let url = queue_url(&client, &args.queue).await?;
    if let Some(body) = &args.body {
        let mut request = client.send_message().queue_url(&url).message_body(body).set_delay_seconds(args.delay);
        request =
            request.set_message_group_id(args.group_id.clone()).set_message_deduplication_id(args.dedup_id.clone());
        for (name, value) in &args.attributes {
            request = request.message_attributes(name, string_attribute(value));
        }
        let output = request.send().await?;
        report_sent(args.client.json, output.message_id.as_deref().unwrap_or_default(), 1);
        return Ok(());
    }

    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut line_number = 0usize;
    let mut failures = 0usize;
    loop {
        let mut entries = Vec::new();
        for line in lines.by_ref().take(10) {
            let body = line.map_err(|e| Failure { message: format!("reading standard input: {e}"), exit_code: 1 })?;
            line_number += 1;
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(format!("line{line_number}"))
                .message_body(body)
                .set_delay_seconds(args.delay)
                .set_message_group_id(args.group_id.clone())
                .set_message_deduplication_id(args.dedup_id.as_ref().map(|id| format!("{id}-{line_number}")));
            for (name, value) in &args.attributes {
                entry = entry.message_attributes(name, string_attribute(value));
            }
            entries.push(entry.build().expect("id and body are set"));
        }
        if entries.is_empty() {
            break;
        }
        let output = client.send_message_batch().queue_url(&url).set_entries(Some(entries)).send().await?;
        for sent in &output.successful {
            let line = sent.id.trim_start_matches("line").parse().unwrap_or(0);
            report_sent(args.client.json, &sent.message_id, line);
        }
        for failed in &output.failed {
            failures += 1;
            let line = failed.id.trim_start_matches("line");
            eprintln!("holdfast: line {line} not sent: {}: {}", failed.code, failed.message.as_deref().unwrap_or(""));
        }
    }
    if failures > 0 {
        return Err(Failure { message: format!("{failures} message(s) were not sent"), exit_code: 1 });
    }
    Ok(())
}

fn report_sent(json: bool, message_id: &str, line: usize) {
    if json {
        out!("{}", serde_json::json!({ "MessageId": message_id, "Line": line }));
    } else {
        out!("{message_id}");
    }
}

pub async fn receive(args: ReceiveArgs) -> CommandResult {
    let client = client(&args.client).await;
    let url = queue_url(&client, &args.queue).await?;
    let mut received = 0usize;
    while received < args.count {
        let batch = (args.count - received).min(10) as i32;
        let output = client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(batch)
            .wait_time_seconds(args.wait)
            .set_visibility_timeout(args.visibility)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await?;
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        received += messages.len();
        let mut deletions = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            if args.client.json {
                let attributes: serde_json::Map<String, serde_json::Value> = message
                    .attributes
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str().to_string(), serde_json::Value::from(v.as_str())))
                    .collect();
                let message_attributes: serde_json::Map<String, serde_json::Value> = message
                    .message_attributes
                    .iter()
                    .flatten()
                    .map(|(k, v)| {
                        (k.clone(), serde_json::json!({ "DataType": v.data_type, "StringValue": v.string_value }))
                    })
                    .collect();
                out!(
                    "{}",
                    serde_json::json!({
                        "MessageId": message.message_id,
                        "ReceiptHandle": message.receipt_handle,
                        "Body": message.body,
                        "Attributes": attributes,
                        "MessageAttributes": message_attributes,
                    })
                );
            } else {
                out!("{}", message.body.as_deref().unwrap_or_default());
            }
            if let Some(handle) = &message.receipt_handle {
                deletions.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(format!("m{index}"))
                        .receipt_handle(handle)
                        .build()
                        .expect("set"),
                );
            }
        }
        if args.delete && !deletions.is_empty() {
            let output = client.delete_message_batch().queue_url(&url).set_entries(Some(deletions)).send().await?;
            if let Some(failed) = output.failed.first() {
                return Err(Failure {
                    message: format!("delete failed: {}: {}", failed.code, failed.message.as_deref().unwrap_or("")),
                    exit_code: 1,
                });
            }
        }
    }
    Ok(())
}
