//! `holdfast send`, `receive`, `peek` and `message delete|change-visibility`: the producer and
//! consumer scripts people write around a queue.

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Read};

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message, MessageAttributeValue,
    MessageSystemAttributeName, SendMessageBatchRequestEntry,
};
use clap::{Args, Subcommand};
use futures_util::StreamExt;

use super::output::{messages, thousands, Format, Progress, Table};
use super::{client, key_value, queue_url, ClientArgs, CommandResult, Failure};

#[derive(Args, Debug)]
pub struct SendArgs {
    /// Queue name or URL.
    queue: String,
    /// The message body. Without it, each line of standard input is one message (blank lines are
    /// skipped), sent in batches of up to 10 messages.
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
    /// With text output: end each body with a NUL byte instead of a newline, unescaped (for
    /// `xargs -0` and bodies with line breaks).
    #[arg(long, short = '0')]
    null: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
pub struct PeekArgs {
    /// Queue name or URL.
    queue: String,
    /// How many messages to look at, at most.
    #[arg(long, short = 'n', default_value_t = 10)]
    count: usize,
    /// With text output: end each body with a NUL byte instead of a newline, unescaped.
    #[arg(long, short = '0')]
    null: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
pub struct MessageCommand {
    #[command(subcommand)]
    action: MessageAction,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand, Debug)]
enum MessageAction {
    /// Delete received messages by receipt handle (`-` reads one handle per line of standard
    /// input, e.g. from `holdfast receive Q --json | jq -r .ReceiptHandle`).
    Delete {
        /// Queue name or URL.
        queue: String,
        /// Receipt handles, or `-` for standard input.
        #[arg(required = true)]
        handles: Vec<String>,
    },
    /// Change how long received messages stay hidden (0 makes them visible again at once).
    ChangeVisibility {
        /// Queue name or URL.
        queue: String,
        /// The new visibility timeout, in seconds from now (0–43200).
        #[arg(long)]
        timeout: i32,
        /// Receipt handles, or `-` for standard input.
        #[arg(required = true)]
        handles: Vec<String>,
    },
}

fn string_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().expect("data type is set")
}

/// The largest batch (bodies and attributes) the CLI sends: 256 KiB, SQS's limit before it rose to
/// 1 MiB in 2025 and still the limit of other SQS-compatible servers. A longer line goes alone.
const MAX_BATCH_BYTES: usize = 262_144;
/// SQS's largest message body (1 MiB, also its largest MaximumMessageSize).
const MAX_LINE_BYTES: usize = 1_048_576;
const BATCH_TOO_LONG: &str = "AWS.SimpleQueueService.BatchRequestTooLong";
/// Batches in flight at once for a standard queue. A FIFO queue gets one, so lines keep their order.
const CONCURRENT_BATCHES: usize = 8;

pub async fn send(args: SendArgs) -> CommandResult {
    let client = client(&args.client).await;
    let url = queue_url(&client, &args.queue).await?;
    let format = args.client.format();
    if let Some(body) = &args.body {
        let mut request = client.send_message().queue_url(&url).message_body(body).set_delay_seconds(args.delay);
        request =
            request.set_message_group_id(args.group_id.clone()).set_message_deduplication_id(args.dedup_id.clone());
        for (name, value) in &args.attributes {
            request = request.message_attributes(name, string_attribute(value));
        }
        let output = request.send().await?;
        let id = output.message_id.unwrap_or_default();
        match format {
            Format::Json => {
                out!("{}", serde_json::json!({ "MessageId": id, "SequenceNumber": output.sequence_number }))
            }
            Format::Table => {
                let mut table = Table::new(&["MessageId"]);
                table.row(vec![id]);
                table.print();
            }
            Format::Text => out!("{id}"),
        }
        return Ok(());
    }
    send_lines(&client, &url, &args, format).await
}

/// One line of standard input, on its way into a batch.
struct Line {
    number: u64,
    body: String,
}

/// Reads standard input into batches of at most 10 messages and 256 KiB. Stops at the first line
/// that is not UTF-8 (SQS bodies are text), naming it.
struct Batches<R> {
    input: R,
    line_number: u64,
    bytes_read: u64,
    skipped_blank: u64,
    /// Lines longer than any SQS message, reported and skipped without being held in memory.
    oversized: u64,
    /// A line read that did not fit in the previous batch.
    carried: Option<Line>,
    attribute_bytes: usize,
    error: Option<Failure>,
}

impl<R: BufRead> Batches<R> {
    fn new(input: R, attribute_bytes: usize) -> Self {
        Batches {
            input,
            line_number: 0,
            bytes_read: 0,
            skipped_blank: 0,
            oversized: 0,
            carried: None,
            attribute_bytes,
            error: None,
        }
    }

    fn next_line(&mut self) -> Option<Line> {
        if let Some(line) = self.carried.take() {
            return Some(line);
        }
        if self.error.is_some() {
            return None;
        }
        let mut raw = Vec::new();
        loop {
            raw.clear();
            // At most one byte more than the longest message: a longer line is never held whole.
            match (&mut self.input).take(MAX_LINE_BYTES as u64 + 1).read_until(b'\n', &mut raw) {
                Ok(0) => return None,
                Ok(n) => self.bytes_read += n as u64,
                Err(error) => {
                    self.error = Some(Failure { message: format!("reading standard input: {error}"), exit_code: 1 });
                    return None;
                }
            }
            self.line_number += 1;
            if raw.len() > MAX_LINE_BYTES && !raw.ends_with(b"\n") {
                if let Err(error) = self.skip_rest_of_line() {
                    self.error = Some(Failure { message: format!("reading standard input: {error}"), exit_code: 1 });
                    return None;
                }
                self.oversized += 1;
                eprintln!(
                    "holdfast: line {} not sent: longer than {} bytes, the most an SQS message holds",
                    self.line_number, MAX_LINE_BYTES
                );
                continue;
            }
            if raw.ends_with(b"\n") {
                raw.pop();
                if raw.ends_with(b"\r") {
                    raw.pop();
                }
            }
            if raw.iter().all(u8::is_ascii_whitespace) {
                self.skipped_blank += 1;
                continue;
            }
            return match String::from_utf8(std::mem::take(&mut raw)) {
                Ok(body) => Some(Line { number: self.line_number, body }),
                Err(error) => {
                    let at = error.utf8_error().valid_up_to();
                    self.error = Some(Failure {
                        message: format!(
                            "line {} is not valid UTF-8 (at byte {}); it and the lines after it were not sent",
                            self.line_number,
                            at + 1
                        ),
                        exit_code: 1,
                    });
                    None
                }
            };
        }
    }

    /// Reads past the rest of the current line, a buffer at a time, keeping none of it.
    fn skip_rest_of_line(&mut self) -> std::io::Result<()> {
        loop {
            let buffer = self.input.fill_buf()?;
            if buffer.is_empty() {
                return Ok(());
            }
            let (used, done) = match buffer.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buffer.len(), false),
            };
            self.input.consume(used);
            self.bytes_read += used as u64;
            if done {
                return Ok(());
            }
        }
    }

    fn next_batch(&mut self) -> Option<Vec<Line>> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < 10 {
            let Some(line) = self.next_line() else { break };
            let size = line.body.len() + self.attribute_bytes;
            // A line too large for any batch goes alone, and SQS says why it refuses it.
            if !batch.is_empty() && bytes + size > MAX_BATCH_BYTES {
                self.carried = Some(line);
                break;
            }
            bytes += size;
            batch.push(line);
        }
        (!batch.is_empty()).then_some(batch)
    }
}

async fn send_lines(client: &aws_sdk_sqs::Client, url: &str, args: &SendArgs, format: Format) -> CommandResult {
    let stdin = std::io::stdin();
    // A file on standard input has a size, which gives the bar a total; a pipe does not.
    let total_bytes = std::fs::File::open("/dev/stdin")
        .and_then(|file| file.metadata())
        .ok()
        .filter(|meta| meta.is_file())
        .map(|meta| meta.len());
    let progress = match total_bytes {
        Some(total) => Progress::new(Some(total), "bytes", args.client.quiet),
        None => Progress::new(None, "messages", args.client.quiet),
    };
    // Ids are results: printed to a pipe or file, or with --output json/table; on a terminal,
    // 100,000 of them would bury the summary.
    let print_ids = !args.client.quiet && (format != Format::Text || !std::io::stdout().is_terminal());
    let attribute_bytes: usize = args.attributes.iter().map(|(k, v)| k.len() + v.len() + "String".len()).sum();
    let mut batches = Batches::new(stdin.lock(), attribute_bytes);
    let concurrency = if url.ends_with(".fifo") { 1 } else { CONCURRENT_BATCHES };

    let mut table = Table::new(&["Line", "MessageId"]);
    let mut sent = 0u64;
    let mut failures = 0u64;
    let mut service_error: Option<Failure> = None;
    let requests = std::iter::from_fn(|| {
        let batch = batches.next_batch()?;
        let position = batches.bytes_read;
        let entries: Vec<SendMessageBatchRequestEntry> = batch
            .iter()
            .map(|line| {
                let mut entry = SendMessageBatchRequestEntry::builder()
                    .id(format!("line{}", line.number))
                    .message_body(&line.body)
                    .set_delay_seconds(args.delay)
                    .set_message_group_id(args.group_id.clone())
                    .set_message_deduplication_id(args.dedup_id.as_ref().map(|id| format!("{id}-{}", line.number)));
                for (name, value) in &args.attributes {
                    entry = entry.message_attributes(name, string_attribute(value));
                }
                entry.build().expect("id and body are set")
            })
            .collect();
        let request = client.send_message_batch().queue_url(url).set_entries(Some(entries));
        let first_line = batch[0].number;
        Some(async move { (first_line, batch.len(), position, request.send().await) })
    });
    let mut answers = futures_util::stream::iter(requests).buffered(concurrency);
    while let Some((first_line, lines, position, answer)) = answers.next().await {
        let output = match answer {
            Ok(output) => output,
            // A line that is a batch of its own and still too long: that line fails, not the rest.
            Err(error) if lines == 1 && error.as_service_error().and_then(|e| e.code()) == Some(BATCH_TOO_LONG) => {
                failures += 1;
                progress.note(&format!("holdfast: line {first_line} not sent: {}", Failure::from(error).message));
                continue;
            }
            Err(error) => {
                // The whole batch failed (the server is gone, or refused the request): stop.
                service_error = Some(Failure::from(error));
                break;
            }
        };
        let mut successful = output.successful;
        successful.sort_by_key(|entry| line_of(&entry.id));
        for entry in &successful {
            sent += 1;
            if print_ids {
                match format {
                    Format::Json => {
                        out!("{}", serde_json::json!({ "Line": line_of(&entry.id), "MessageId": entry.message_id }))
                    }
                    Format::Table => table.row(vec![line_of(&entry.id).to_string(), entry.message_id.clone()]),
                    Format::Text => out!("{}", entry.message_id),
                }
            }
        }
        for failed in &output.failed {
            failures += 1;
            progress.note(&format!(
                "holdfast: line {} not sent: {}: {}",
                line_of(&failed.id),
                failed.code,
                failed.message.as_deref().unwrap_or("")
            ));
        }
        match total_bytes {
            Some(_) => progress.set_position(position),
            None => progress.advance(lines as u64),
        }
    }
    drop(answers);
    failures += batches.oversized;
    if format == Format::Table && print_ids {
        table.print();
    }
    let mut summary = format!("sent {}", messages(sent));
    if failures > 0 {
        summary.push_str(&format!(", {} not sent", thousands(failures)));
    }
    if batches.skipped_blank > 0 {
        summary.push_str(&format!(", {} blank lines skipped", thousands(batches.skipped_blank)));
    }
    progress.finish(&summary);
    if let Some(failure) = service_error.or(batches.error.take()) {
        return Err(failure);
    }
    if failures > 0 {
        return Err(Failure { message: format!("{} were not sent", messages(failures)), exit_code: 1 });
    }
    Ok(())
}

/// The line number in a batch entry id (`line12` → 12).
fn line_of(id: &str) -> u64 {
    id.trim_start_matches("line").parse().unwrap_or(0)
}

/// How received messages are printed, one at a time as they arrive (a table waits for all).
struct Printer {
    format: Format,
    null: bool,
    table: Table,
}

impl Printer {
    fn new(format: Format, null: bool) -> Printer {
        Printer { format, null, table: Table::new(&["MessageId", "Receives", "Body"]) }
    }

    fn print(&mut self, message: &Message) {
        let body = message.body.as_deref().unwrap_or_default();
        match self.format {
            Format::Json => out!("{}", message_json(message)),
            Format::Table => {
                let receives = message
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .cloned()
                    .unwrap_or_default();
                self.table.row(vec![message.message_id.clone().unwrap_or_default(), receives, body.to_string()]);
            }
            Format::Text if self.null => super::write_raw(body.as_bytes(), b"\0"),
            Format::Text => out!("{}", text_line(body)),
        }
    }

    fn finish(&self) {
        if self.format == Format::Table {
            self.table.print();
        }
    }
}

/// A body as one line of text output: as it is, unless that would be ambiguous. A body with a
/// line break (which would read as several messages) or starting with `"` is printed as a JSON
/// string, so every output line is exactly one message and a line that starts with `"` is
/// JSON-encoded.
fn text_line(body: &str) -> std::borrow::Cow<'_, str> {
    if body.contains(['\n', '\r']) || body.starts_with('"') {
        serde_json::Value::from(body).to_string().into()
    } else {
        body.into()
    }
}

fn message_json(message: &Message) -> serde_json::Value {
    use aws_sdk_sqs::primitives::Blob;
    let attributes: serde_json::Map<String, serde_json::Value> = message
        .attributes
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str().to_string(), serde_json::Value::from(v.as_str())))
        .collect();
    let base64 = |blob: &Blob| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(blob.as_ref())
    };
    let message_attributes: serde_json::Map<String, serde_json::Value> = message
        .message_attributes
        .iter()
        .flatten()
        .map(|(k, v)| {
            let mut value = serde_json::json!({ "DataType": v.data_type });
            if let Some(text) = &v.string_value {
                value["StringValue"] = text.clone().into();
            }
            if let Some(blob) = &v.binary_value {
                value["BinaryValue"] = base64(blob).into();
            }
            (k.clone(), value)
        })
        .collect();
    serde_json::json!({
        "MessageId": message.message_id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": message.md5_of_body,
        "Body": message.body,
        "Attributes": attributes,
        "MessageAttributes": message_attributes,
    })
}

pub async fn receive(args: ReceiveArgs) -> CommandResult {
    let client = client(&args.client).await;
    let url = queue_url(&client, &args.queue).await?;
    let progress = Progress::new((args.count > 1).then_some(args.count as u64), "messages", args.client.quiet);
    let mut printer = Printer::new(args.client.format(), args.null);
    let mut received = 0usize;
    let mut deleted = 0u64;
    let result = async {
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
            progress.advance(messages.len() as u64);
            messages.iter().for_each(|message| printer.print(message));
            if args.delete {
                let handles: Vec<String> = messages.iter().filter_map(|m| m.receipt_handle.clone()).collect();
                deleted += delete_handles(&client, &url, &handles).await?;
            }
        }
        Ok::<(), Failure>(())
    }
    .await;
    printer.finish();
    if result.is_err() {
        progress.abandon();
        return result;
    }
    let mut summary = format!("received {}", messages(received as u64));
    if args.delete {
        summary.push_str(&format!(", deleted {}", thousands(deleted)));
    }
    progress.finish(&summary);
    Ok(())
}

/// Seconds a peeked message stays hidden while the peek collects more; released at the end.
const PEEK_HOLD_SECONDS: i32 = 30;

/// Receives up to `count` messages and makes them visible again at once: a look at what is
/// waiting. Each peek counts as a receive (SQS has no other way to read a message), so it moves
/// ApproximateReceiveCount, and with it a message's way to a dead-letter queue.
pub async fn peek(args: PeekArgs) -> CommandResult {
    let client = client(&args.client).await;
    let url = queue_url(&client, &args.queue).await?;
    let mut printer = Printer::new(args.client.format(), args.null);
    let mut seen = HashSet::new();
    let mut handles = Vec::new();
    let result = async {
        while seen.len() < args.count {
            let batch = (args.count - seen.len()).min(10) as i32;
            let output = client
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(batch)
                .visibility_timeout(PEEK_HOLD_SECONDS)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await?;
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            let mut fresh = false;
            for message in &messages {
                handles.extend(message.receipt_handle.clone());
                if seen.insert(message.message_id.clone()) {
                    fresh = true;
                    printer.print(message);
                }
            }
            // Only messages already shown (their hold ran out while the peek went on): done.
            if !fresh {
                break;
            }
        }
        Ok::<(), Failure>(())
    }
    .await;
    printer.finish();
    // Release what was taken even when a later receive failed.
    let released = change_visibility_handles(&client, &url, &handles, 0).await;
    result?;
    released?;
    if !args.client.quiet {
        eprintln!("peeked at {} (visible again)", messages(seen.len() as u64));
    }
    Ok(())
}

pub async fn message(command: MessageCommand) -> CommandResult {
    let client = client(&command.client).await;
    let (queue, handles) = match &command.action {
        MessageAction::Delete { queue, handles } | MessageAction::ChangeVisibility { queue, handles, .. } => {
            (queue, handles)
        }
    };
    let url = queue_url(&client, queue).await?;
    let handles = read_handles(handles)?;
    let quiet = command.client.quiet;
    let json = command.client.format() == Format::Json;
    let (verb, done) = match command.action {
        MessageAction::Delete { .. } => ("deleted", delete_handles(&client, &url, &handles).await?),
        MessageAction::ChangeVisibility { timeout, .. } => {
            ("changed", change_visibility_handles(&client, &url, &handles, timeout).await?)
        }
    };
    if json {
        out!("{}", serde_json::json!({ "QueueUrl": url, verb: done }));
    } else if !quiet {
        eprintln!("{verb} {}", messages(done));
    }
    Ok(())
}

/// The handles given as arguments, with `-` replaced by the lines of standard input.
fn read_handles(arguments: &[String]) -> Result<Vec<String>, Failure> {
    let mut handles = Vec::new();
    for argument in arguments {
        if argument == "-" {
            for line in std::io::stdin().lock().lines() {
                let line =
                    line.map_err(|e| Failure { message: format!("reading standard input: {e}"), exit_code: 1 })?;
                if !line.trim().is_empty() {
                    handles.push(line.trim().to_string());
                }
            }
        } else {
            handles.push(argument.clone());
        }
    }
    Ok(handles)
}

/// Deletes by receipt handle in batches of 10; every handle that fails is reported, and any failure
/// fails the command once all were tried. Returns how many were deleted.
async fn delete_handles(client: &aws_sdk_sqs::Client, url: &str, handles: &[String]) -> Result<u64, Failure> {
    let mut done = 0;
    let mut failed = 0;
    for chunk in handles.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, handle)| {
                DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(handle).build().expect("set")
            })
            .collect();
        let output = client.delete_message_batch().queue_url(url).set_entries(Some(entries)).send().await?;
        done += output.successful.len() as u64;
        failed += report_failures("delete", chunk, output.failed.iter().map(|f| (&f.id, &f.code, &f.message)));
    }
    batch_result(done, failed, "deleted")
}

async fn change_visibility_handles(
    client: &aws_sdk_sqs::Client,
    url: &str,
    handles: &[String],
    timeout: i32,
) -> Result<u64, Failure> {
    let mut done = 0;
    let mut failed = 0;
    for chunk in handles.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, handle)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .visibility_timeout(timeout)
                    .build()
                    .expect("set")
            })
            .collect();
        let output = client.change_message_visibility_batch().queue_url(url).set_entries(Some(entries)).send().await?;
        done += output.successful.len() as u64;
        failed += report_failures(
            "change the visibility of",
            chunk,
            output.failed.iter().map(|f| (&f.id, &f.code, &f.message)),
        );
    }
    batch_result(done, failed, "changed")
}

fn report_failures<'a>(
    what: &str,
    chunk: &[String],
    failures: impl Iterator<Item = (&'a String, &'a String, &'a Option<String>)>,
) -> u64 {
    let mut count = 0;
    for (id, code, message) in failures {
        count += 1;
        let handle = id.parse::<usize>().ok().and_then(|i| chunk.get(i)).map(String::as_str).unwrap_or("?");
        let short: String = handle.chars().take(24).collect();
        eprintln!("holdfast: could not {what} {short}…: {code}: {}", message.as_deref().unwrap_or(""));
    }
    count
}

fn batch_result(done: u64, failed: u64, verb: &str) -> Result<u64, Failure> {
    if failed == 0 {
        Ok(done)
    } else {
        Err(Failure { message: format!("{verb} {}, {} failed", messages(done), thousands(failed)), exit_code: 1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Numbered = Vec<(u64, String)>;

    fn batches(input: &[u8]) -> (Vec<Numbered>, Option<String>, u64) {
        let mut reader = Batches::new(input, 0);
        let mut all = Vec::new();
        while let Some(batch) = reader.next_batch() {
            all.push(batch.into_iter().map(|line| (line.number, line.body)).collect());
        }
        (all, reader.error.map(|e| e.message), reader.skipped_blank)
    }

    #[test]
    fn lines_become_batches_of_ten_and_blank_lines_are_skipped() {
        let input: String = (1..=12).map(|i| format!("m{i}\r\n")).collect::<String>() + "\n  \nlast";
        let (all, error, blank) = batches(input.as_bytes());
        assert_eq!(error, None);
        assert_eq!(blank, 2);
        assert_eq!(all.iter().map(Vec::len).collect::<Vec<_>>(), [10, 3]);
        assert_eq!(all[0][0], (1, "m1".to_string()));
        assert_eq!(all[1][2], (15, "last".to_string()));
    }

    #[test]
    fn a_batch_stays_under_256_kib() {
        let big = "x".repeat(100_000);
        let input = format!("{big}\n{big}\n{big}\nsmall\n");
        let (all, _, _) = batches(input.as_bytes());
        assert_eq!(all.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2]);
    }

    #[test]
    fn a_line_longer_than_any_message_is_skipped_without_being_kept() {
        let huge = "x".repeat(MAX_LINE_BYTES * 3);
        let exactly = "y".repeat(MAX_LINE_BYTES);
        let input = format!("before\n{huge}\n{exactly}\nafter");
        let mut reader = Batches::new(input.as_bytes(), 0);
        let mut lines = Vec::new();
        while let Some(batch) = reader.next_batch() {
            lines.extend(batch.into_iter().map(|line| (line.number, line.body.len())));
        }
        assert_eq!(lines, [(1, 6), (3, MAX_LINE_BYTES), (4, 5)], "line 2 skipped, the limit itself allowed");
        assert_eq!(reader.oversized, 1);
        assert_eq!(reader.bytes_read, input.len() as u64);
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let (all, error, _) = batches(b"good\nalso good\nbad \xff here\nnever read\nnor this\n");
        assert_eq!(all, [vec![(1, "good".to_string()), (2, "also good".to_string())]]);
        let error = error.unwrap();
        assert!(error.starts_with("line 3 is not valid UTF-8 (at byte 5)"), "{error}");
    }

    #[test]
    fn text_output_keeps_one_message_per_line() {
        assert_eq!(text_line("plain body"), "plain body");
        assert_eq!(text_line("two\nlines"), r#""two\nlines""#);
        assert_eq!(text_line("\"quoted\""), r#""\"quoted\"""#);
        assert_eq!(text_line("{\"json\":1}"), "{\"json\":1}");
    }
}
