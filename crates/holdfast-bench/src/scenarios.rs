//! The scenarios: workers (producers, consumers, pollers) and how each scenario composes them.
//!
//! Every worker owns one [`Client`] (one connection), its histograms and its error tally, and
//! returns them when it ends; the scenario merges them into the [`Report`]. Workers stop at
//! their deadline, when the run is aborted, or (long polls) when the stop signal fires, which
//! drops the request in flight.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinSet;

use holdfast_api::Action;

use super::client::{self, Bodies, CallError, Client, Endpoint, Signer};
use super::report::{self, Idle, Monitor, Offered, Preload, Reconcile, Report};
use super::stats::{Errors, Histogram, Progress};
use super::{procfs, BenchArgs, CommonArgs, Scenario};

/// Long-poll wait of the roundtrip consumers.
const ROUNDTRIP_WAIT_SECONDS: u32 = 1;
/// Long-poll wait of the latency consumers and idle pollers.
const LONG_POLL_SECONDS: u32 = 20;
/// How long latency consumers keep collecting after the producers stop.
const LATENCY_GRACE: Duration = Duration::from_secs(2);

struct Ctx {
    args: CommonArgs,
    /// The first endpoint (the report names it); `endpoints` holds every one.
    endpoint: Arc<Endpoint>,
    /// Several nodes of one cluster: each new client (one per worker) takes the next in turn.
    endpoints: Vec<Arc<Endpoint>>,
    next_endpoint: std::sync::atomic::AtomicUsize,
    signer: Option<Arc<Signer>>,
    progress: Arc<Progress>,
    /// Fires when long polls must give up (end of phase, or abort).
    stop: watch::Sender<bool>,
}

impl Ctx {
    fn client(&self) -> Client {
        let turn = self.next_endpoint.fetch_add(1, Ordering::Relaxed) % self.endpoints.len();
        Client::new(Arc::clone(&self.endpoints[turn]), self.signer.clone())
    }

    fn timeout(&self) -> Duration {
        self.args.request_timeout()
    }

    fn long_poll_timeout(&self, wait_seconds: u32) -> Duration {
        self.timeout() + Duration::from_secs(u64::from(wait_seconds))
    }

    fn monitor(&self, unit: &'static str) -> Monitor {
        Monitor::start(Arc::clone(&self.progress), self.stop.clone(), self.args.server_pid, unit)
    }

    fn new_phase(&self) {
        self.progress.messages.store(0, Ordering::Relaxed);
        let _ = self.stop.send(false);
    }
}

/// What a worker hands back.
#[derive(Default)]
struct Tally {
    send: Histogram,
    receive: Histogram,
    delete: Histogram,
    delivery: Histogram,
    errors: Errors,
    requests: u64,
    sent: u64,
    /// Messages deleted while the measured window was open.
    processed_in_window: u64,
    processed: u64,
    received: u64,
    foreign: u64,
    polls_completed: u64,
    sent_ids: Vec<u128>,
    received_ids: Vec<u128>,
}

impl Tally {
    fn error(&mut self, progress: &Progress, error: &CallError) {
        progress.error();
        self.errors.record(error.kind(), || error.to_string());
    }

    fn fill(&self, report: &mut Report) {
        report.set_errors(&self.errors);
        for (name, histogram) in
            [("send", &self.send), ("receive", &self.receive), ("delete", &self.delete), ("delivery", &self.delivery)]
        {
            if let Some(summary) = histogram.summary() {
                report.latency_ms.insert(name.to_owned(), summary);
            }
        }
    }
}

/// What a kind of worker hands back, merged over all the workers of a phase.
pub(crate) trait Merge: Default + Send + 'static {
    fn merge(&mut self, other: Self);
    fn errors(&mut self) -> &mut Errors;
}

impl Merge for Tally {
    fn merge(&mut self, other: Tally) {
        self.send.merge(&other.send);
        self.receive.merge(&other.receive);
        self.delete.merge(&other.delete);
        self.delivery.merge(&other.delivery);
        self.errors.merge(&other.errors);
        self.requests += other.requests;
        self.sent += other.sent;
        self.processed_in_window += other.processed_in_window;
        self.processed += other.processed;
        self.received += other.received;
        self.foreign += other.foreign;
        self.polls_completed += other.polls_completed;
        self.sent_ids.extend(other.sent_ids);
        self.received_ids.extend(other.received_ids);
    }

    fn errors(&mut self) -> &mut Errors {
        &mut self.errors
    }
}

/// Waits for every worker of `set` and merges what they hand back.
pub(crate) async fn join_all<T: Merge>(mut set: JoinSet<T>) -> T {
    let mut total = T::default();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(tally) => total.merge(tally),
            Err(error) => total.errors().record("worker panicked".into(), || error.to_string()),
        }
    }
    total
}

/// A message body of `size` bytes, starting with `prefix`.
fn payload(prefix: &str, size: usize) -> String {
    let mut body = String::with_capacity(size.max(prefix.len()));
    body.push_str(prefix);
    while body.len() < size {
        body.push((b'a' + (body.len() % 26) as u8) as char);
    }
    body
}

/// After a connection-level failure, wait a little instead of spinning.
async fn back_off(error: &CallError) {
    if matches!(error, CallError::Connect(_) | CallError::Http(_)) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    if let Scenario::Postgres(postgres) = &args.scenario {
        return super::postgres::run(&args.common, postgres).await;
    }
    let common = args.common.clone();
    anyhow::ensure!(common.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(common.duration >= 0.0, "--duration must not be negative");
    let endpoints = common
        .endpoint_url
        .split(',')
        .map(|url| Endpoint::with_ca(url.trim(), common.ca_cert.as_deref()).map(Arc::new))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let endpoint = Arc::clone(&endpoints[0]);
    let signer = if common.sign { Some(Arc::new(Signer::from_env(&common.region)?)) } else { None };
    let (stop, _) = watch::channel(false);
    let ctx = Arc::new(Ctx {
        args: common.clone(),
        endpoint,
        endpoints,
        next_endpoint: Default::default(),
        signer,
        progress: Arc::default(),
        stop,
    });
    let mut report = Report {
        scenario: scenario_name(&args.scenario).to_owned(),
        endpoint: common.endpoint_url.clone(),
        concurrency: common.concurrency,
        body_size: common.body_size,
        ..Default::default()
    };
    if let Scenario::Idle(idle) = &args.scenario {
        run_idle(&ctx, idle.queues, idle.polls, &mut report).await?;
        return Ok(finish(&ctx, report));
    }

    let (queue_name, fresh) = match &common.queue {
        Some(name) => (name.clone(), false),
        None => (fresh_name(), true),
    };
    let queue_url = ensure_queue(&ctx, &queue_name).await?;
    report.queue = queue_name;
    let bodies = Bodies::new(&queue_url);
    let result = match &args.scenario {
        Scenario::Send => run_send(&ctx, &bodies, false, &mut report).await,
        Scenario::SendBatch => run_send(&ctx, &bodies, true, &mut report).await,
        Scenario::Roundtrip(r) => {
            let plan = Roundtrip { batch: r.batch, delete_batch: r.delete_batch, drain: Some(r.drain_timeout) };
            run_roundtrip(&ctx, &bodies, plan, &mut report).await
        }
        Scenario::Latency(l) => run_latency(&ctx, &bodies, l.rate, l.delete_batch, &mut report).await,
        Scenario::Backlog(b) => run_backlog(&ctx, &bodies, b, &mut report).await,
        Scenario::Idle(_) => unreachable!("handled above"),
        Scenario::Compare(_) => anyhow::bail!("compare runs scenarios; it is not one"),
        Scenario::Fair(_) => anyhow::bail!("fair has a report of its own"),
        Scenario::Postgres(_) => unreachable!("handled above"),
    };
    if fresh && !common.keep {
        if let Err(error) = delete_queue(&ctx, &queue_url).await {
            report.notes.push(format!("deleting queue {} failed: {error}", report.queue));
        }
    }
    result?;
    Ok(finish(&ctx, report))
}

fn finish(ctx: &Ctx, mut report: Report) -> Report {
    if ctx.progress.aborted() {
        let example =
            report.errors_by_kind.iter().max_by_key(|(_, e)| e.count).map(|(kind, e)| format!("{kind}: {}", e.example));
        report.aborted = Some(format!(
            "every request failed for two seconds ({})",
            example.unwrap_or_else(|| "no error recorded".into())
        ));
    }
    report
}

fn scenario_name(scenario: &Scenario) -> &'static str {
    match scenario {
        Scenario::Send => "send",
        Scenario::SendBatch => "send-batch",
        Scenario::Roundtrip(_) => "roundtrip",
        Scenario::Latency(_) => "latency",
        Scenario::Backlog(_) => "backlog",
        Scenario::Idle(_) => "idle",
        Scenario::Compare(_) => "compare",
        Scenario::Fair(_) => "fair",
        Scenario::Postgres(_) => "postgres",
    }
}

fn fresh_name() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("bench-{}-{nanos:x}", std::process::id())
}

/// The queue's URL, creating it if it does not exist.
async fn ensure_queue(ctx: &Ctx, name: &str) -> anyhow::Result<String> {
    let mut client = ctx.client();
    let answer = match client.call(Action::GetQueueUrl, client::get_queue_url_body(name), ctx.timeout()).await {
        Ok(answer) => answer,
        Err(CallError::Service { code, .. })
            if code.contains("QueueDoesNotExist") || code.contains("NonExistentQueue") =>
        {
            client
                .call(Action::CreateQueue, client::create_queue_body(name), ctx.timeout())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("creating queue {name} at {}", ctx.endpoint.url))?
        }
        Err(error) => {
            return Err(anyhow::anyhow!("{error}"))
                .with_context(|| format!("looking up queue {name} at {}", ctx.endpoint.url))
        }
    };
    let answer: client::QueueUrlAnswer = client::parse(&answer).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(answer.queue_url)
}

async fn delete_queue(ctx: &Ctx, queue_url: &str) -> Result<(), CallError> {
    let body = Bodies::new(queue_url).delete_queue();
    ctx.client().call(Action::DeleteQueue, body, ctx.timeout() * 6).await.map(drop)
}

// ---- producers ----

/// Sends `request` (a SendMessage or a SendMessageBatch body) until `deadline`. `headline`: the
/// messages sent are what the progress line counts (not in a roundtrip, which counts deletes).
async fn produce(
    ctx: Arc<Ctx>,
    request: Bytes,
    batch: bool,
    keep_ids: bool,
    headline: bool,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut client = ctx.client();
    let op = if batch { Action::SendMessageBatch } else { Action::SendMessage };
    while Instant::now() < deadline && !ctx.progress.aborted() {
        let started = Instant::now();
        let result = client.call(op, request.clone(), ctx.timeout()).await;
        tally.requests += 1;
        match result {
            Ok(answer) => {
                tally.send.record(started.elapsed());
                let sent = record_send(&ctx, &mut tally, &answer, batch, keep_ids);
                tally.sent += sent;
                if headline {
                    ctx.progress.add_messages(sent);
                }
            }
            Err(error) => {
                tally.error(&ctx.progress, &error);
                back_off(&error).await;
            }
        }
    }
    tally
}

/// Counts a send's acknowledged messages (and failed batch entries as errors); keeps their ids.
fn record_send(ctx: &Ctx, tally: &mut Tally, answer: &[u8], batch: bool, keep_ids: bool) -> u64 {
    if !batch {
        if keep_ids {
            match client::parse::<client::SendAnswer<'_>>(answer) {
                Ok(sent) => tally.sent_ids.push(client::id_key(&sent.message_id)),
                Err(error) => {
                    tally.error(&ctx.progress, &error);
                    return 0;
                }
            }
        }
        ctx.progress.success();
        return 1;
    }
    match client::parse::<client::BatchAnswer<'_>>(answer) {
        Ok(batch) => {
            for failed in &batch.failed {
                ctx.progress.error();
                let code = failed.code.as_deref().unwrap_or("-");
                tally
                    .errors
                    .record(format!("batch entry {code}"), || failed.message.as_deref().unwrap_or("").to_owned());
            }
            if keep_ids {
                tally
                    .sent_ids
                    .extend(batch.successful.iter().filter_map(|e| e.message_id.as_deref()).map(client::id_key));
            }
            ctx.progress.success();
            batch.successful.len() as u64
        }
        Err(error) => {
            tally.error(&ctx.progress, &error);
            0
        }
    }
}

fn send_request(ctx: &Ctx, bodies: &Bodies, batch: bool) -> Bytes {
    let message = payload("", ctx.args.body_size);
    if batch {
        bodies.send_batch(std::iter::repeat_n(message.as_str(), 10))
    } else {
        bodies.send(&message)
    }
}

async fn run_send(ctx: &Arc<Ctx>, bodies: &Bodies, batch: bool, report: &mut Report) -> anyhow::Result<()> {
    let request = send_request(ctx, bodies, batch);
    let monitor = ctx.monitor("msgs");
    let deadline = Instant::now() + Duration::from_secs_f64(ctx.args.duration);
    let mut set = JoinSet::new();
    for _ in 0..ctx.args.concurrency {
        set.spawn(produce(Arc::clone(ctx), request.clone(), batch, false, true, deadline));
    }
    let tally = join_all(set).await;
    let phase = monitor.finish().await;
    let wall = phase.wall;
    tally.fill(report);
    report.messages = tally.sent;
    report.messages_per_s = tally.sent as f64 / wall;
    report.sent = tally.sent;
    report.sent_per_s = report.messages_per_s;
    report.requests = tally.requests;
    report.requests_per_s = tally.requests as f64 / wall;
    phase.fill(report);
    Ok(())
}

// ---- consumers ----

#[derive(Clone, Copy)]
struct Roundtrip {
    batch: bool,
    delete_batch: bool,
    /// Drain the queue afterwards (bounded by this many seconds) and reconcile ids.
    drain: Option<f64>,
}

/// When consumers stop.
struct ConsumerPlan {
    /// Deletes completing before this count toward the measured throughput.
    window_end: Instant,
    /// Set once the producers are done: from then on an empty receive means the queue is empty.
    producers_done: Arc<AtomicBool>,
    /// Stop regardless.
    hard_stop: Instant,
    keep_ids: bool,
    delete_batch: bool,
}

/// Receives (up to 10, waiting `ROUNDTRIP_WAIT_SECONDS`) and deletes until the plan says stop.
async fn consume(ctx: Arc<Ctx>, bodies: Bodies, plan: Arc<ConsumerPlan>) -> Tally {
    let mut tally = Tally::default();
    let mut client = ctx.client();
    let receive = bodies.receive(10, ROUNDTRIP_WAIT_SECONDS);
    let timeout = ctx.long_poll_timeout(ROUNDTRIP_WAIT_SECONDS);
    loop {
        let now = Instant::now();
        if now >= plan.hard_stop || ctx.progress.aborted() {
            break;
        }
        let done_before_receive = plan.producers_done.load(Ordering::Relaxed);
        let result = client.call(Action::ReceiveMessage, receive.clone(), timeout).await;
        tally.requests += 1;
        let answer = match result {
            Ok(answer) => answer,
            Err(error) => {
                tally.error(&ctx.progress, &error);
                back_off(&error).await;
                continue;
            }
        };
        tally.receive.record(now.elapsed());
        let messages = match client::parse::<client::ReceiveAnswer<'_>>(&answer) {
            Ok(parsed) => parsed.messages,
            Err(error) => {
                tally.error(&ctx.progress, &error);
                continue;
            }
        };
        ctx.progress.success();
        if messages.is_empty() {
            if done_before_receive {
                break;
            }
            continue;
        }
        tally.received += messages.len() as u64;
        if plan.keep_ids {
            tally.received_ids.extend(messages.iter().map(|m| client::id_key(&m.message_id)));
        }
        let deleted = delete(&ctx, &mut client, &bodies, &mut tally, &messages, plan.delete_batch).await;
        tally.processed += deleted;
        if Instant::now() <= plan.window_end {
            tally.processed_in_window += deleted;
            ctx.progress.add_messages(deleted);
        }
    }
    tally
}

/// Deletes `messages`; the number deleted.
async fn delete(
    ctx: &Ctx,
    client: &mut Client,
    bodies: &Bodies,
    tally: &mut Tally,
    messages: &[client::ReceivedMessage<'_>],
    batch: bool,
) -> u64 {
    if batch {
        let started = Instant::now();
        let request = bodies.delete_batch(messages.iter().map(|m| m.receipt_handle.as_ref()));
        tally.requests += 1;
        match client.call(Action::DeleteMessageBatch, request, ctx.timeout()).await {
            Ok(answer) => {
                tally.delete.record(started.elapsed());
                match client::parse::<client::BatchAnswer<'_>>(&answer) {
                    Ok(result) => {
                        ctx.progress.success();
                        for failed in &result.failed {
                            ctx.progress.error();
                            let code = failed.code.as_deref().unwrap_or("-");
                            tally.errors.record(format!("delete entry {code}"), || {
                                failed.message.as_deref().unwrap_or("").to_owned()
                            });
                        }
                        result.successful.len() as u64
                    }
                    Err(error) => {
                        tally.error(&ctx.progress, &error);
                        0
                    }
                }
            }
            Err(error) => {
                tally.error(&ctx.progress, &error);
                0
            }
        }
    } else {
        let mut deleted = 0;
        for message in messages {
            let started = Instant::now();
            tally.requests += 1;
            match client.call(Action::DeleteMessage, bodies.delete(&message.receipt_handle), ctx.timeout()).await {
                Ok(_) => {
                    tally.delete.record(started.elapsed());
                    ctx.progress.success();
                    deleted += 1;
                }
                Err(error) => tally.error(&ctx.progress, &error),
            }
        }
        deleted
    }
}

async fn run_roundtrip(ctx: &Arc<Ctx>, bodies: &Bodies, plan: Roundtrip, report: &mut Report) -> anyhow::Result<()> {
    ctx.new_phase();
    let request = send_request(ctx, bodies, plan.batch);
    let keep_ids = plan.drain.is_some();
    let duration = Duration::from_secs_f64(ctx.args.duration);
    let monitor = ctx.monitor("msgs");
    let started = Instant::now();
    let window_end = started + duration;
    let consumer_plan = Arc::new(ConsumerPlan {
        window_end,
        producers_done: Arc::new(AtomicBool::new(false)),
        hard_stop: window_end + Duration::from_secs_f64(plan.drain.unwrap_or(0.0)),
        keep_ids,
        delete_batch: plan.delete_batch,
    });
    let mut producers = JoinSet::new();
    let mut consumers = JoinSet::new();
    for _ in 0..ctx.args.concurrency {
        producers.spawn(produce(Arc::clone(ctx), request.clone(), plan.batch, keep_ids, false, window_end));
        consumers.spawn(consume(Arc::clone(ctx), bodies.clone(), Arc::clone(&consumer_plan)));
    }
    let mut tally = join_all(producers).await;
    consumer_plan.producers_done.store(true, Ordering::Relaxed);
    // The measured window closes with the producers; consumers go on draining.
    let phase = monitor.finish().await;
    let wall = phase.wall;
    let drain_started = Instant::now();
    let consumed = join_all(consumers).await;
    let drain_s = drain_started.elapsed().as_secs_f64();
    tally.merge(consumed);
    tally.fill(report);
    report.messages = tally.processed_in_window;
    report.messages_per_s = tally.processed_in_window as f64 / wall;
    report.sent = tally.sent;
    report.sent_per_s = tally.sent as f64 / wall;
    report.requests = tally.requests;
    report.requests_per_s = tally.requests as f64 / (wall + drain_s);
    phase.fill(report);
    if keep_ids {
        report.reconcile =
            Some(reconcile(std::mem::take(&mut tally.sent_ids), std::mem::take(&mut tally.received_ids), drain_s));
    }
    Ok(())
}

pub(crate) fn reconcile(mut sent: Vec<u128>, mut received: Vec<u128>, drain_s: f64) -> Reconcile {
    sent.sort_unstable();
    sent.dedup();
    received.sort_unstable();
    let received_total = received.len() as u64;
    received.dedup();
    let lost = sent.iter().filter(|id| received.binary_search(id).is_err()).count() as u64;
    let unexpected = received.iter().filter(|id| sent.binary_search(id).is_err()).count() as u64;
    let duplicates = received_total - received.len() as u64;
    let verdict = match (lost, duplicates) {
        (0, 0) => "OK: every acknowledged message was received exactly once".to_owned(),
        (0, d) => format!("OK: every acknowledged message was received; {d} delivered more than once (at-least-once)"),
        (l, _) => format!("LOST {l} acknowledged messages (not received within the drain timeout)"),
    };
    Reconcile {
        sent: sent.len() as u64,
        received: received_total,
        received_unique: received.len() as u64,
        lost,
        duplicates,
        unexpected,
        drain_s,
        verdict,
    }
}

// ---- latency ----

/// Sends at `rate / producers` msgs/s on a fixed schedule from `start`, each body starting with
/// the send time in microseconds since `base` (the consumers' clock).
async fn produce_paced(
    ctx: Arc<Ctx>,
    bodies: Bodies,
    index: usize,
    period: Duration,
    (base, start, deadline): (Instant, Instant, Instant),
) -> Tally {
    let mut tally = Tally::default();
    let mut client = ctx.client();
    let producers = ctx.args.concurrency as u32;
    let mut next = start + period * index as u32 / producers;
    while next < deadline && !ctx.progress.aborted() {
        tokio::time::sleep_until(next.into()).await;
        next += period;
        let started = Instant::now();
        let stamp = format!("{}|", started.duration_since(base).as_micros());
        let request = bodies.send(&payload(&stamp, ctx.args.body_size));
        tally.requests += 1;
        match client.call(Action::SendMessage, request, ctx.timeout()).await {
            Ok(_) => {
                tally.send.record(started.elapsed());
                ctx.progress.success();
                tally.sent += 1;
            }
            Err(error) => tally.error(&ctx.progress, &error),
        }
    }
    tally
}

/// Long-polls (WaitTimeSeconds=20) and deletes until stopped; records delivery latency.
async fn consume_latency(ctx: Arc<Ctx>, bodies: Bodies, base: Instant, delete_batch: bool) -> Tally {
    let mut tally = Tally::default();
    let mut client = ctx.client();
    let mut stop = ctx.stop.subscribe();
    let receive = bodies.receive(10, LONG_POLL_SECONDS);
    let timeout = ctx.long_poll_timeout(LONG_POLL_SECONDS);
    while !*stop.borrow() && !ctx.progress.aborted() {
        let started = Instant::now();
        let result = tokio::select! {
            result = client.call(Action::ReceiveMessage, receive.clone(), timeout) => result,
            _ = stop.changed() => break,
        };
        tally.requests += 1;
        let answer = match result {
            Ok(answer) => answer,
            Err(error) => {
                tally.error(&ctx.progress, &error);
                back_off(&error).await;
                continue;
            }
        };
        let arrived = base.elapsed().as_micros() as u64;
        tally.receive.record(started.elapsed());
        let messages = match client::parse::<client::ReceiveAnswer<'_>>(&answer) {
            Ok(parsed) => parsed.messages,
            Err(error) => {
                tally.error(&ctx.progress, &error);
                continue;
            }
        };
        ctx.progress.success();
        for message in &messages {
            tally.received += 1;
            match message.body.split_once('|').and_then(|(stamp, _)| stamp.parse::<u64>().ok()) {
                Some(sent_at) if sent_at <= arrived => tally.delivery.record_us(arrived - sent_at),
                _ => tally.foreign += 1,
            }
        }
        if !messages.is_empty() {
            let deleted = delete(&ctx, &mut client, &bodies, &mut tally, &messages, delete_batch).await;
            tally.processed += deleted;
            ctx.progress.add_messages(deleted);
        }
    }
    tally
}

async fn run_latency(
    ctx: &Arc<Ctx>,
    bodies: &Bodies,
    rate: f64,
    delete_batch: bool,
    report: &mut Report,
) -> anyhow::Result<()> {
    anyhow::ensure!(rate > 0.0, "--rate must be positive");
    ctx.new_phase();
    let producers = ctx.args.concurrency;
    let period = Duration::from_secs_f64(producers as f64 / rate);
    let monitor = ctx.monitor("msgs");
    let mut consumers = JoinSet::new();
    let base = Instant::now();
    for _ in 0..ctx.args.concurrency {
        consumers.spawn(consume_latency(Arc::clone(ctx), bodies.clone(), base, delete_batch));
    }
    // Let the consumers park their long polls before the first send.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(ctx.args.duration);
    let mut set = JoinSet::new();
    for index in 0..producers {
        set.spawn(produce_paced(Arc::clone(ctx), bodies.clone(), index, period, (base, start, deadline)));
    }
    let mut tally = join_all(set).await;
    let send_wall = start.elapsed().as_secs_f64();
    // Collect what is still in flight, then release the parked long polls.
    let grace_end = Instant::now() + LATENCY_GRACE;
    while Instant::now() < grace_end && ctx.progress.messages.load(Ordering::Relaxed) < tally.sent {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = ctx.stop.send(true);
    let phase = monitor.finish().await;
    let wall = phase.wall;
    tally.merge(join_all(consumers).await);
    tally.fill(report);
    report.messages = tally.processed;
    report.messages_per_s = tally.processed as f64 / send_wall;
    report.sent = tally.sent;
    report.sent_per_s = tally.sent as f64 / send_wall;
    report.requests = tally.requests;
    report.requests_per_s = tally.requests as f64 / wall;
    phase.fill(report);
    report.offered =
        Some(Offered { rate, achieved_send_rate: report.sent_per_s, received: tally.received, foreign: tally.foreign });
    report.notes.push("receive latency includes the long-poll wait (up to 20 s when idle); see delivery".into());
    Ok(())
}

// ---- backlog ----

async fn preload_worker(ctx: Arc<Ctx>, request: Bytes, next_batch: Arc<AtomicU64>, batches: u64) -> Tally {
    let mut tally = Tally::default();
    let mut client = ctx.client();
    while next_batch.fetch_add(1, Ordering::Relaxed) < batches && !ctx.progress.aborted() {
        let started = Instant::now();
        tally.requests += 1;
        match client.call(Action::SendMessageBatch, request.clone(), ctx.timeout()).await {
            Ok(answer) => {
                tally.send.record(started.elapsed());
                let sent = record_send(&ctx, &mut tally, &answer, true, false);
                tally.sent += sent;
                ctx.progress.add_messages(sent);
            }
            Err(error) => {
                tally.error(&ctx.progress, &error);
                back_off(&error).await;
            }
        }
    }
    tally
}

async fn run_backlog(
    ctx: &Arc<Ctx>,
    bodies: &Bodies,
    args: &super::BacklogArgs,
    report: &mut Report,
) -> anyhow::Result<()> {
    let rss = || ctx.args.server_pid.and_then(|pid| procfs::sample(&pid.to_string())).map(|s| s.rss_bytes as f64);
    let rss_before = rss();
    let request = send_request(ctx, bodies, true);
    let batches = args.backlog.div_ceil(10);
    let next_batch = Arc::new(AtomicU64::new(0));
    eprintln!("preloading {} messages", report::group(batches * 10));
    let monitor = ctx.monitor("msgs");
    let started = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..ctx.args.concurrency {
        set.spawn(preload_worker(Arc::clone(ctx), request.clone(), Arc::clone(&next_batch), batches));
    }
    let preload = join_all(set).await;
    let seconds = started.elapsed().as_secs_f64();
    let _ = monitor.finish().await;
    if ctx.progress.aborted() {
        preload.fill(report);
        return Ok(());
    }
    // Let the allocator settle before reading RSS.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = rss();
    let mib = |bytes: Option<f64>| bytes.map(|b| b / (1024.0 * 1024.0));
    report.preload = Some(Preload {
        messages: preload.sent,
        seconds,
        messages_per_s: preload.sent as f64 / seconds,
        server_rss_mib_before: mib(rss_before),
        server_rss_mib_after: mib(rss_after),
        server_rss_bytes_per_message: match (rss_before, rss_after) {
            (Some(before), Some(after)) if preload.sent > 0 => Some((after - before) / preload.sent as f64),
            _ => None,
        },
    });
    if preload.errors.total() > 0 {
        report.notes.push(format!("{} errors during the preload", preload.errors.total()));
    }
    if ctx.args.duration > 0.0 {
        let plan = Roundtrip { batch: args.batch, delete_batch: args.delete_batch, drain: None };
        run_roundtrip(ctx, bodies, plan, report).await?;
        let mut merged = preload.errors;
        for (kind, entry) in std::mem::take(&mut report.errors_by_kind) {
            merged.by_kind.entry(kind).or_insert((0, entry.example)).0 += entry.count;
        }
        report.set_errors(&merged);
    } else {
        preload.fill(report);
        report.duration_s = seconds;
    }
    Ok(())
}

// ---- idle ----

/// Holds one long poll on `request`'s queue, re-issuing it, until stopped.
async fn poll_idle(ctx: Arc<Ctx>, request: Bytes) -> Tally {
    let mut tally = Tally::default();
    let mut client = ctx.client();
    let mut stop = ctx.stop.subscribe();
    let timeout = ctx.long_poll_timeout(LONG_POLL_SECONDS);
    while !*stop.borrow() && !ctx.progress.aborted() {
        let started = Instant::now();
        let result = tokio::select! {
            result = client.call(Action::ReceiveMessage, request.clone(), timeout) => result,
            _ = stop.changed() => break,
        };
        tally.requests += 1;
        match result {
            Ok(_) => {
                tally.receive.record(started.elapsed());
                tally.polls_completed += 1;
                ctx.progress.success();
                ctx.progress.add_messages(1);
            }
            Err(error) => {
                tally.error(&ctx.progress, &error);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    tally
}

/// Runs `count` queue calls on `concurrency` connections; the urls in index order.
async fn for_queues(
    ctx: &Arc<Ctx>,
    count: usize,
    make: impl Fn(usize) -> (Action, Bytes),
) -> (Vec<Option<String>>, Errors) {
    let next = Arc::new(AtomicU64::new(0));
    let calls: Arc<Vec<(Action, Bytes)>> = Arc::new((0..count).map(make).collect());
    let mut set = JoinSet::new();
    for _ in 0..ctx.args.concurrency.min(count.max(1)) {
        let (ctx, next, calls) = (Arc::clone(ctx), Arc::clone(&next), Arc::clone(&calls));
        set.spawn(async move {
            let mut client = ctx.client();
            let mut out = Vec::new();
            let mut errors = Errors::default();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed) as usize;
                if index >= calls.len() {
                    break;
                }
                let (op, body) = &calls[index];
                match client.call(*op, body.clone(), ctx.timeout()).await {
                    Ok(answer) => {
                        out.push((index, client::parse::<client::QueueUrlAnswer>(&answer).ok().map(|a| a.queue_url)))
                    }
                    Err(error) => {
                        errors.record(error.kind(), || error.to_string());
                        out.push((index, None));
                    }
                }
            }
            (out, errors)
        });
    }
    let mut urls = vec![None; count];
    let mut errors = Errors::default();
    while let Some(Ok((out, worker_errors))) = set.join_next().await {
        for (index, url) in out {
            urls[index] = url;
        }
        errors.merge(&worker_errors);
    }
    (urls, errors)
}

async fn run_idle(ctx: &Arc<Ctx>, queues: usize, polls: usize, report: &mut Report) -> anyhow::Result<()> {
    anyhow::ensure!(queues > 0, "--queues must be at least 1");
    let (prefix, fresh) = match &ctx.args.queue {
        Some(name) => (name.clone(), false),
        None => (fresh_name(), true),
    };
    report.queue = format!("{prefix}-0..{prefix}-{}", queues - 1);
    eprintln!("creating {} queues", report::group(queues as u64));
    let started = Instant::now();
    let (urls, create_errors) =
        for_queues(ctx, queues, |i| (Action::CreateQueue, client::create_queue_body(&format!("{prefix}-{i}")))).await;
    let queue_create_s = started.elapsed().as_secs_f64();
    let urls: Vec<String> = urls.into_iter().flatten().collect();
    if urls.is_empty() {
        let example = create_errors.by_kind.iter().next().map(|(k, (_, m))| format!("{k}: {m}")).unwrap_or_default();
        anyhow::bail!("no queue could be created at {} ({example})", ctx.endpoint.url);
    }
    eprintln!("holding {} long polls", report::group(polls as u64));
    ctx.new_phase();
    let mut set = JoinSet::new();
    for i in 0..polls {
        let request = Bodies::new(&urls[i % urls.len()]).receive(1, LONG_POLL_SECONDS);
        set.spawn(poll_idle(Arc::clone(ctx), request));
    }
    // Measure once the polls are parked: connecting 5,000 sockets is not idling.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server = ctx.args.server_pid.map(|pid| pid.to_string());
    let switches = || server.as_deref().and_then(procfs::voluntary_context_switches);
    let switches_before = switches();
    let monitor = ctx.monitor("polls");
    tokio::time::sleep(Duration::from_secs_f64(ctx.args.duration)).await;
    let phase = monitor.finish().await;
    let server_wakeups = switches().zip(switches_before).map(|(after, before)| after.saturating_sub(before));
    let wall = phase.wall;
    let _ = ctx.stop.send(true);
    let mut tally = join_all(set).await;
    tally.errors.merge(&create_errors);
    tally.fill(report);
    report.requests = tally.requests;
    report.requests_per_s = tally.requests as f64 / wall;
    phase.fill(report);
    report.idle = Some(Idle {
        queues: urls.len(),
        queue_create_s,
        polls,
        polls_completed: tally.polls_completed,
        server_wakeups,
        server_wakeups_per_s: server_wakeups.map(|w| w as f64 / wall),
    });
    if report.server.is_none() {
        report.notes.push("no --server-pid: the server's CPU and RSS were not measured".into());
    }
    if fresh && !ctx.args.keep {
        eprintln!("deleting {} queues", report::group(urls.len() as u64));
        let (_, delete_errors) =
            for_queues(ctx, urls.len(), |i| (Action::DeleteQueue, Bodies::new(&urls[i]).delete_queue())).await;
        if delete_errors.total() > 0 {
            report.notes.push(format!("{} queues could not be deleted", delete_errors.total()));
        }
    }
    Ok(())
}
