//! The consumer engine under `holdfast form work` and `holdfast sink`: long-poll a queue, hand
//! each batch to a [`Destination`], delete what it stored, and scale the number of pollers with
//! the backlog.
//!
//! Invariants:
//! - A message is deleted only after the destination reported it stored (or already stored). A
//!   crash at any moment, `kill -9` included, therefore loses nothing: what was not deleted comes
//!   back after its visibility timeout, and the destination's idempotency turns the second
//!   delivery into a no-op.
//! - When the destination is unavailable, the engine stops receiving (so messages do not use up
//!   their receive count while nothing can store them), releases what it holds, and probes the
//!   destination with backoff; it logs one line when it goes down and one when it is back.
//! - A message the destination rejects (not JSON, missing fields, a 4xx answer) is left in the
//!   queue; after the queue's `maxReceiveCount` receives SQS moves it to the dead-letter queue, and
//!   on a queue without one it is delivered again until its retention period ends (the log says
//!   which, per queue). The engine never deletes what it did not store.
//! - Shutdown (SIGTERM, Ctrl-C) stops receiving, lets every batch in hand finish storing and
//!   deleting, then returns. A long poll still waiting is abandoned: any message it would have
//!   returned stays in the queue.
//!
//! Scaling follows the "scale consumers on queue depth" pattern: every `--scale-interval` the
//! engine reads `ApproximateNumberOfMessages` and runs `ceil(backlog / --backlog-per-consumer)`
//! pollers, within `--min-consumers..=--max-consumers`; it grows at once and shrinks one poller
//! per interval, so a dip in the backlog does not make it thrash.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageSystemAttributeName,
};
use clap::Args;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::sqs;

/// How the engine consumes; shared by `form work` and `sink`.
#[derive(Args, Clone, Debug)]
pub struct ConsumerArgs {
    /// Fewest pollers, even with an empty queue.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub min_consumers: u32,
    /// Most pollers, however long the backlog.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub max_consumers: u32,
    /// Backlog (visible messages) each poller is expected to handle; more starts another poller.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub backlog_per_consumer: u64,
    /// Seconds between backlog checks for scaling.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub scale_interval: u64,
    /// Seconds each long poll waits for messages (0 to 20).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i32).range(0..=20))]
    pub wait_time: i32,
    /// Seconds between progress lines (rate and backlog); only printed when something happened.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub report_interval: u64,
    /// Seconds before a rejected message is delivered again (its visibility is set to this), on
    /// its way to the dead-letter queue; without it, the queue's visibility timeout applies.
    #[arg(long)]
    pub retry_rejected_after: Option<i32>,
    /// Longest wait, in seconds, between two probes of an unavailable destination.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_backoff: u64,
    /// Stop once the queue is empty and nothing is in flight (for batch jobs and tests).
    #[arg(long)]
    pub exit_when_empty: bool,
    /// Fault injection for crash tests: wait this long between storing a batch and deleting it.
    #[arg(long, hide = true, default_value_t = 0)]
    pub fault_delay_before_delete_ms: u64,
}

/// One received message, as a destination sees it.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub message_id: String,
    pub body: String,
    /// How many times SQS has delivered it, this time included.
    pub receive_count: u32,
    receipt_handle: String,
}

impl Delivery {
    #[cfg(test)]
    pub(crate) fn for_test(message_id: &str, body: &str) -> Delivery {
        Delivery { message_id: message_id.into(), body: body.into(), receive_count: 1, receipt_handle: String::new() }
    }
}

/// What happened to one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stored now: delete it.
    Stored,
    /// Stored by an earlier delivery: delete it.
    Duplicate,
    /// It can never be stored as it is (the reason says why): leave it for the dead-letter queue.
    Rejected(String),
    /// The destination is unavailable (the reason says why): release it and pause.
    Unavailable(String),
}

/// A failure that retrying cannot fix (a misconfiguration): the engine stops with it.
#[derive(Debug)]
pub struct Fatal(pub String);

/// Where messages go: a database table, an HTTP back end, or anything else.
pub trait Destination: Send + Sync + 'static {
    /// For log lines: what and where.
    fn describe(&self) -> String;
    /// Gets ready and checks the destination can take messages now (connect, create a table).
    /// `Ok(Err(reason))`: unavailable for now; `Err`: never going to work.
    fn prepare(&self) -> impl Future<Output = Result<Result<(), String>, Fatal>> + Send;
    /// Stores a batch; one outcome per delivery, in order.
    fn store(&self, batch: &[Delivery]) -> impl Future<Output = Vec<Outcome>> + Send;
}

/// Counters since start; the reporter turns them into rates.
#[derive(Default)]
struct Stats {
    received: AtomicU64,
    stored: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    released: AtomicU64,
}

/// The counters when the engine stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub received: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub released: u64,
}

impl Stats {
    fn summary(&self) -> Summary {
        Summary {
            received: self.received.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            released: self.released.load(Ordering::Relaxed),
        }
    }

    fn line(&self) -> String {
        format!(
            "stored {}, already stored {}, rejected {}, released {}",
            self.stored.load(Ordering::Relaxed),
            self.duplicates.load(Ordering::Relaxed),
            self.rejected.load(Ordering::Relaxed),
            self.released.load(Ordering::Relaxed)
        )
    }
}

/// Whether the destination can take messages now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Health {
    Up,
    Down,
}

struct Shared<D> {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    destination: D,
    args: ConsumerArgs,
    stats: Stats,
    health: watch::Sender<Health>,
    /// Pollers with an index at or above this stop after their current batch.
    desired: watch::Sender<usize>,
    /// Set when the engine stops (shutdown requested, or drained with `--exit-when-empty`):
    /// pollers abandon a waiting long poll and finish the batch they hold.
    stop: watch::Sender<bool>,
    /// Whether the last SQS call worked, so an outage is logged once, not once per call.
    queue_ok: Mutex<bool>,
    /// Pollers currently holding a batch: with an empty queue, tells `--exit-when-empty` it is done.
    busy: AtomicU64,
    /// What happens to a rejected message on this queue, for the log (see `sqs::rejection_fate`).
    rejection_fate: String,
}

/// Consumes `queue_url` into `destination` until `shutdown` turns true (or, with
/// `--exit-when-empty`, the queue is drained). Returns the final counters.
pub async fn run<D: Destination>(
    client: aws_sdk_sqs::Client,
    queue_url: String,
    destination: D,
    args: ConsumerArgs,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Summary, Fatal> {
    let min = args.min_consumers.min(args.max_consumers) as usize;
    let rejection_fate = sqs::rejection_fate(&client, &queue_url, args.retry_rejected_after).await;
    let shared = Arc::new(Shared {
        rejection_fate,
        client,
        queue_url,
        destination,
        stats: Stats::default(),
        health: watch::Sender::new(Health::Down),
        desired: watch::Sender::new(min),
        stop: watch::Sender::new(false),
        queue_ok: Mutex::new(true),
        busy: AtomicU64::new(0),
        args,
    });
    tracing::info!(
        "consuming {} into {} with {}..={} pollers",
        shared.queue_url,
        shared.destination.describe(),
        min,
        shared.args.max_consumers
    );
    let started = Instant::now();
    let mut pollers: Vec<Option<tokio::task::JoinHandle<()>>> = Vec::new();
    let mut recovery: JoinSet<Result<(), Fatal>> = JoinSet::new();
    recovery.spawn(recover(shared.clone(), true));
    let mut scale_tick = tokio::time::interval(Duration::from_secs(shared.args.scale_interval));
    let mut report_tick = tokio::time::interval(Duration::from_secs(shared.args.report_interval));
    report_tick.tick().await;
    let mut health = shared.health.subscribe();
    let mut last_report = (Instant::now(), 0u64);
    let mut last_rejected = 0u64;
    let mut empty_checks = 0;
    loop {
        // Keep `desired` pollers alive; those above it finish their batch and stop by themselves.
        let desired = *shared.desired.borrow();
        for index in 0..desired {
            if pollers.len() <= index {
                pollers.push(None);
            }
            if pollers[index].as_ref().is_none_or(|handle| handle.is_finished()) {
                pollers[index] = Some(tokio::spawn(poll(shared.clone(), index)));
            }
        }
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            Some(result) = recovery.join_next() => {
                if let Ok(Err(fatal)) = result {
                    return Err(fatal);
                }
            }
            changed = health.changed() => {
                // Collect a probe that already finished, so a new outage always gets a new probe.
                while let Some(result) = recovery.try_join_next() {
                    if let Ok(Err(fatal)) = result {
                        return Err(fatal);
                    }
                }
                if changed.is_ok() && *health.borrow_and_update() == Health::Down && recovery.is_empty() {
                    recovery.spawn(recover(shared.clone(), false));
                }
            }
            _ = scale_tick.tick() => {
                let backlog = backlog(&shared).await;
                if let Some((visible, in_flight)) = backlog {
                    scale(&shared, visible);
                    if shared.args.exit_when_empty {
                        let idle = visible == 0 && in_flight == 0 && shared.busy.load(Ordering::SeqCst) == 0;
                        empty_checks = if idle { empty_checks + 1 } else { 0 };
                        // Twice in a row: the counts are approximate.
                        if empty_checks >= 2 {
                            tracing::info!("queue is empty; exiting");
                            break;
                        }
                    }
                }
            }
            _ = report_tick.tick() => {
                let done = shared.stats.stored.load(Ordering::Relaxed) + shared.stats.duplicates.load(Ordering::Relaxed);
                let rejected = shared.stats.rejected.load(Ordering::Relaxed);
                let (visible, in_flight) = backlog(&shared).await.unwrap_or((0, 0));
                // Rejections count as something happening: a worker that only rejects must say so.
                if done != last_report.1 || rejected != last_rejected || visible > 0 {
                    let rate = (done - last_report.1) as f64 / last_report.0.elapsed().as_secs_f64().max(0.001);
                    tracing::info!(
                        "{rate:.1} messages/s; backlog ~{visible} waiting, ~{in_flight} in flight; {} pollers; {}",
                        *shared.desired.borrow(),
                        shared.stats.line()
                    );
                }
                last_report = (Instant::now(), done);
                last_rejected = rejected;
            }
        }
    }
    // Stop: no poller starts another receive; each finishes the batch it holds.
    shared.stop.send_replace(true);
    recovery.abort_all();
    for handle in pollers.into_iter().flatten() {
        let _ = handle.await;
    }
    let elapsed = started.elapsed();
    let done = shared.stats.stored.load(Ordering::Relaxed) + shared.stats.duplicates.load(Ordering::Relaxed);
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    tracing::info!("stopped after {elapsed:.0?} ({rate:.1} messages/s): {}", shared.stats.line());
    Ok(shared.stats.summary())
}

/// Resolves once shutdown is requested. (A helper, so no watch guard is held across an await and
/// the futures stay `Send`.)
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn healthy(health: &mut watch::Receiver<Health>) {
    let _ = health.wait_for(|health| *health == Health::Up).await;
}

/// The queue's backlog, bounded in time so an unreachable queue cannot hold up the engine's loop
/// (and with it, shutdown).
async fn backlog<D>(shared: &Shared<D>) -> Option<(u64, u64)> {
    tokio::time::timeout(Duration::from_secs(5), sqs::backlog(&shared.client, &shared.queue_url)).await.ok().flatten()
}

/// Sets the number of pollers for a backlog of `visible` messages.
fn scale<D>(shared: &Shared<D>, visible: u64) {
    let min = shared.args.min_consumers.min(shared.args.max_consumers) as usize;
    let max = shared.args.max_consumers as usize;
    let wanted = (visible.div_ceil(shared.args.backlog_per_consumer) as usize).clamp(min, max);
    let current = *shared.desired.borrow();
    let next = if wanted > current {
        wanted
    } else if wanted < current {
        current - 1
    } else {
        current
    };
    if next != current {
        tracing::info!("pollers {current} -> {next} (backlog ~{visible})");
        shared.desired.send_replace(next);
    }
}

/// Probes an unavailable destination with exponential backoff until it answers.
async fn recover<D: Destination>(shared: Arc<Shared<D>>, first: bool) -> Result<(), Fatal> {
    let down_since = Instant::now();
    let mut delay = Duration::from_millis(250);
    let mut logged = !first;
    loop {
        match shared.destination.prepare().await? {
            Ok(()) => {
                if first && !logged {
                    tracing::info!("{} is ready", shared.destination.describe());
                } else {
                    tracing::info!(
                        "{} is available again after {:.0?}; resuming",
                        shared.destination.describe(),
                        down_since.elapsed()
                    );
                }
                shared.health.send_replace(Health::Up);
                return Ok(());
            }
            Err(reason) => {
                if !logged {
                    tracing::warn!(
                        "{} is unavailable ({reason}); waiting for it, messages stay in the queue",
                        shared.destination.describe()
                    );
                    logged = true;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(shared.args.max_backoff));
    }
}

/// One poller: receive a batch, store it, delete what was stored; until told to stop.
async fn poll<D: Destination>(shared: Arc<Shared<D>>, index: usize) {
    let mut shutdown = shared.stop.subscribe();
    let mut health = shared.health.subscribe();
    let mut backoff = Duration::from_millis(250);
    loop {
        if *shutdown.borrow() || index >= *shared.desired.borrow() {
            return;
        }
        // Receive nothing while the destination cannot store it.
        if *health.borrow() == Health::Down {
            tokio::select! {
                _ = healthy(&mut health) => {}
                _ = stopped(&mut shutdown) => return,
            }
            continue;
        }
        let receive = shared
            .client
            .receive_message()
            .queue_url(&shared.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(shared.args.wait_time)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send();
        let output = tokio::select! {
            output = receive => output,
            _ = stopped(&mut shutdown) => return,
        };
        let messages = match output {
            Ok(output) => {
                queue_state(&shared, None);
                backoff = Duration::from_millis(250);
                output.messages.unwrap_or_default()
            }
            Err(error) => {
                queue_state(&shared, Some(sqs::describe(&error)));
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped(&mut shutdown) => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(shared.args.max_backoff));
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        shared.busy.fetch_add(1, Ordering::SeqCst);
        let batch: Vec<Delivery> = messages
            .into_iter()
            .filter_map(|message| {
                let receive_count = message
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|count| count.parse().ok())
                    .unwrap_or(1);
                Some(Delivery {
                    message_id: message.message_id.unwrap_or_default(),
                    body: message.body.unwrap_or_default(),
                    receive_count,
                    receipt_handle: message.receipt_handle?,
                })
            })
            .collect();
        shared.stats.received.fetch_add(batch.len() as u64, Ordering::Relaxed);
        // From here on the batch is in hand: shutdown waits for it.
        let outcomes = shared.destination.store(&batch).await;
        settle(&shared, &batch, &outcomes).await;
        shared.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Deletes what was stored, releases what could not be, and leaves what was rejected.
async fn settle<D: Destination>(shared: &Shared<D>, batch: &[Delivery], outcomes: &[Outcome]) {
    let mut delete = Vec::new();
    let mut release = Vec::new();
    let mut rejected = Vec::new();
    for (delivery, outcome) in batch.iter().zip(outcomes) {
        match outcome {
            Outcome::Stored => {
                shared.stats.stored.fetch_add(1, Ordering::Relaxed);
                delete.push(delivery);
            }
            Outcome::Duplicate => {
                shared.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                delete.push(delivery);
            }
            Outcome::Rejected(reason) => {
                shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
                // One line when a message is first rejected, not one per redelivery.
                if delivery.receive_count <= 1 {
                    tracing::warn!(
                        "message {} cannot be stored ({reason}); {}",
                        delivery.message_id,
                        shared.rejection_fate
                    );
                }
                rejected.push(delivery);
            }
            Outcome::Unavailable(reason) => {
                shared.stats.released.fetch_add(1, Ordering::Relaxed);
                release.push(delivery);
                if shared.health.send_if_modified(|health| std::mem::replace(health, Health::Down) == Health::Up) {
                    tracing::warn!(
                        "{} is unavailable ({reason}); pausing, messages stay in the queue",
                        shared.destination.describe()
                    );
                }
            }
        }
    }
    if shared.args.fault_delay_before_delete_ms > 0 && !delete.is_empty() {
        tokio::time::sleep(Duration::from_millis(shared.args.fault_delay_before_delete_ms)).await;
    }
    if !delete.is_empty() {
        delete_batch(shared, &delete).await;
    }
    // Make released messages visible now, so they are first in line when the destination is back.
    if !release.is_empty() {
        change_visibility(shared, &release, 0).await;
    }
    if let (Some(seconds), false) = (shared.args.retry_rejected_after, rejected.is_empty()) {
        change_visibility(shared, &rejected, seconds.clamp(0, 43_200)).await;
    }
}

async fn delete_batch<D>(shared: &Shared<D>, deliveries: &[&Delivery]) {
    let entries: Vec<DeleteMessageBatchRequestEntry> = deliveries
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(&d.receipt_handle).build().ok()
        })
        .collect();
    // A few tries: the message is stored, so a failed delete only costs a redelivery that the
    // destination will recognise as a duplicate, but it is cheaper to delete now.
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=4 {
        match shared
            .client
            .delete_message_batch()
            .queue_url(&shared.queue_url)
            .set_entries(Some(entries.clone()))
            .send()
            .await
        {
            Ok(output) => {
                queue_state(shared, None);
                for failure in output.failed {
                    tracing::warn!(
                        "delete of stored message failed ({}: {}); it will be delivered again and recognised as a duplicate",
                        failure.code,
                        failure.message.unwrap_or_default()
                    );
                }
                return;
            }
            Err(error) if attempt == 4 => {
                queue_state(shared, Some(sqs::describe(&error)));
                tracing::warn!(
                    "could not delete {} stored messages; they will be delivered again and recognised as duplicates",
                    entries.len()
                );
            }
            Err(error) => {
                queue_state(shared, Some(sqs::describe(&error)));
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
}

async fn change_visibility<D>(shared: &Shared<D>, deliveries: &[&Delivery], seconds: i32) {
    let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = deliveries
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(&d.receipt_handle)
                .visibility_timeout(seconds)
                .build()
                .ok()
        })
        .collect();
    // Best effort: if this fails the visibility timeout returns the messages anyway.
    let _ = shared
        .client
        .change_message_visibility_batch()
        .queue_url(&shared.queue_url)
        .set_entries(Some(entries))
        .send()
        .await;
}

/// Logs the queue endpoint going away and coming back, once each.
fn queue_state<D>(shared: &Shared<D>, error: Option<String>) {
    let mut ok = shared.queue_ok.lock().expect("queue state lock");
    match (error, *ok) {
        (Some(error), true) => {
            tracing::warn!("queue unreachable ({error}); retrying with backoff");
            *ok = false;
        }
        (None, false) => {
            tracing::info!("queue reachable again");
            *ok = true;
        }
        _ => {}
    }
}
