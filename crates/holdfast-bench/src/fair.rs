//! `holdfast bench fair`: what one tenant's flood does to the other tenants of a standard queue.
//!
//! Quiet tenants (`--tenants`, MessageGroupId `quiet-N`) each send at a steady rate
//! (`--quiet-rate` per second); consumers (`--concurrency`) receive up to 10, spend `--work-ms`
//! per message as a real handler would, and delete them. The measure is the quiet tenants'
//! delivery latency (send to receive), in three runs of `--duration` seconds each, every one on a
//! fresh queue:
//!
//! - `quiet only`: no flood, the reference;
//! - `flood, grouped`: one tenant sends `--flood` messages at once with its own MessageGroupId,
//!   so the server can tell it is noisy (fair queues);
//! - `flood, ungrouped`: the same flood without a MessageGroupId, which any queue must serve in
//!   arrival order.
//!
//! The flood is far more than the consumers process in the run, so the difference between the
//! last two is what fair queues buy the quiet tenants.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use holdfast_api::types::{SendMessageBatchRequest, SendMessageBatchRequestEntry, SendMessageRequest};
use holdfast_api::Action;
use serde::Serialize;
use tokio::task::JoinSet;

use super::client::{self, Bodies, Client, Endpoint, Signer};
use super::stats::{Histogram, LatencySummary};
use super::CommonArgs;

#[derive(Args, Clone, Debug)]
pub struct FairArgs {
    /// Quiet tenants.
    #[arg(long, default_value_t = 9)]
    pub tenants: usize,
    /// Messages per second each quiet tenant sends.
    #[arg(long, default_value_t = 20.0)]
    pub quiet_rate: f64,
    /// Messages the noisy tenant sends at the start of a flooded run.
    #[arg(long, default_value_t = 50_000)]
    pub flood: usize,
    /// Milliseconds a consumer spends on each message before deleting it.
    #[arg(long, default_value_t = 2.0)]
    pub work_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct FairRun {
    pub run: &'static str,
    pub quiet_sent: u64,
    /// Quiet messages received within the run.
    pub quiet_received: u64,
    pub quiet_delivery: Option<LatencySummary>,
    pub flood_delivered: u64,
}

#[derive(Debug, Serialize)]
pub struct FairReport {
    pub endpoint: String,
    pub consumers: usize,
    pub tenants: usize,
    pub quiet_rate: f64,
    pub flood: usize,
    pub work_ms: f64,
    pub seconds: f64,
    pub runs: Vec<FairRun>,
}

impl FairReport {
    pub fn table(&self) -> String {
        let mut out = format!(
            "fair queues at {}: {} quiet tenants x {}/s, {} consumers x {} ms per message, {} s per run\n\n",
            self.endpoint, self.tenants, self.quiet_rate, self.consumers, self.work_ms, self.seconds
        );
        out.push_str(&format!(
            "{:<18} {:>10} {:>14} {:>10} {:>10} {:>10} {:>14}\n",
            "run", "quiet sent", "quiet received", "p50 ms", "p99 ms", "max ms", "flood handled"
        ));
        for run in &self.runs {
            let (p50, p99, max) = run.quiet_delivery.as_ref().map_or(("-".into(), "-".into(), "-".into()), |s| {
                (format!("{:.1}", s.p50_ms), format!("{:.1}", s.p99_ms), format!("{:.1}", s.max_ms))
            });
            out.push_str(&format!(
                "{:<18} {:>10} {:>14} {:>10} {:>10} {:>10} {:>14}\n",
                run.run, run.quiet_sent, run.quiet_received, p50, p99, max, run.flood_delivered
            ));
        }
        out.push_str(
            "\nquiet delivery latency: from a quiet tenant's send to its receive (the flood is sent before the\n\
             run starts; a quiet message still waiting when the run ends is not counted).\n",
        );
        out
    }
}

struct Setup {
    endpoint: Arc<Endpoint>,
    signer: Option<Arc<Signer>>,
    timeout: Duration,
    base: Instant,
}

impl Setup {
    fn client(&self) -> Client {
        Client::new(Arc::clone(&self.endpoint), self.signer.clone())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flood {
    None,
    Grouped,
    Ungrouped,
}

pub async fn run(common: &CommonArgs, args: &FairArgs) -> anyhow::Result<FairReport> {
    anyhow::ensure!(args.tenants > 0 && args.quiet_rate > 0.0, "--tenants and --quiet-rate must be positive");
    anyhow::ensure!(common.concurrency > 0, "--concurrency must be at least 1");
    let setup = Setup {
        endpoint: Arc::new(Endpoint::with_ca(&common.endpoint_url, common.ca_cert.as_deref())?),
        signer: if common.sign { Some(Arc::new(Signer::from_env(&common.region)?)) } else { None },
        timeout: common.request_timeout(),
        base: Instant::now(),
    };
    let setup = Arc::new(setup);
    let mut runs = Vec::new();
    for (name, flood) in
        [("quiet only", Flood::None), ("flood, grouped", Flood::Grouped), ("flood, ungrouped", Flood::Ungrouped)]
    {
        eprintln!("holdfast bench fair: {name}...");
        runs.push(one_run(&setup, common, args, name, flood).await?);
    }
    Ok(FairReport {
        endpoint: common.endpoint_url.clone(),
        consumers: common.concurrency,
        tenants: args.tenants,
        quiet_rate: args.quiet_rate,
        flood: args.flood,
        work_ms: args.work_ms,
        seconds: common.duration,
        runs,
    })
}

async fn one_run(
    setup: &Arc<Setup>,
    common: &CommonArgs,
    args: &FairArgs,
    name: &'static str,
    flood: Flood,
) -> anyhow::Result<FairRun> {
    let queue = format!("bench-fair-{}-{}", std::process::id(), setup.base.elapsed().as_micros());
    let mut client = setup.client();
    let created = client
        .call(Action::CreateQueue, client::create_queue_body(&queue), setup.timeout)
        .await
        .map_err(|e| anyhow::anyhow!("creating {queue}: {e}"))?;
    let url = client::parse::<client::QueueUrlAnswer>(&created).map_err(|e| anyhow::anyhow!("{e}"))?.queue_url;
    let bodies = Bodies::new(&url);
    if flood != Flood::None {
        send_flood(setup, &url, args.flood, flood == Flood::Grouped).await?;
    }
    let deadline = Instant::now() + Duration::from_secs_f64(common.duration);
    let mut producers = JoinSet::new();
    for tenant in 0..args.tenants {
        producers.spawn(produce_quiet(Arc::clone(setup), url.clone(), tenant, args.quiet_rate, deadline));
    }
    let mut consumers = JoinSet::new();
    for _ in 0..common.concurrency {
        consumers.spawn(consume(Arc::clone(setup), bodies.clone(), args.work_ms, deadline));
    }
    let mut quiet_sent = 0;
    while let Some(sent) = producers.join_next().await {
        quiet_sent += sent?;
    }
    let (mut delivery, mut flood_delivered) = (Histogram::default(), 0);
    while let Some(tally) = consumers.join_next().await {
        let (histogram, floods) = tally?;
        delivery.merge(&histogram);
        flood_delivered += floods;
    }
    let _ = client.call(Action::DeleteQueue, bodies.delete_queue(), setup.timeout * 6).await;
    let quiet_delivery = delivery.summary();
    let quiet_received = quiet_delivery.as_ref().map_or(0, |s| s.count);
    Ok(FairRun { run: name, quiet_sent, quiet_received, quiet_delivery, flood_delivered })
}

/// Sends the noisy tenant's messages as fast as 8 connections allow, before the run starts.
async fn send_flood(setup: &Arc<Setup>, url: &str, count: usize, grouped: bool) -> anyhow::Result<()> {
    let batch = |index: usize| -> Bytes {
        let entries = (0..10)
            .map(|i| SendMessageBatchRequestEntry {
                id: i.to_string(),
                message_body: format!("flood-{index}-{i}"),
                message_group_id: grouped.then(|| "noisy".to_owned()),
                ..Default::default()
            })
            .collect();
        client::body(&SendMessageBatchRequest { queue_url: url.to_owned(), entries })
    };
    let batches = count.div_ceil(10);
    let mut set = JoinSet::new();
    for worker in 0..8 {
        let setup = Arc::clone(setup);
        let requests: Vec<Bytes> = (worker..batches).step_by(8).map(batch).collect();
        set.spawn(async move {
            let mut client = setup.client();
            for request in requests {
                client.call(Action::SendMessageBatch, request, setup.timeout).await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = set.join_next().await {
        done?.map_err(|e| anyhow::anyhow!("sending the flood: {e}"))?;
    }
    Ok(())
}

/// One quiet tenant: a message every 1/rate seconds until the deadline, its send time in the
/// body. Returns how many it sent.
async fn produce_quiet(setup: Arc<Setup>, url: String, tenant: usize, rate: f64, deadline: Instant) -> u64 {
    let mut client = setup.client();
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut next = Instant::now() + period.mul_f64(tenant as f64 / 9.0 % 1.0);
    let mut sent = 0;
    while next < deadline {
        tokio::time::sleep_until(next.into()).await;
        next += period;
        let stamp = setup.base.elapsed().as_micros();
        let request = client::body(&SendMessageRequest {
            queue_url: url.clone(),
            message_body: format!("{stamp}|quiet-{tenant}"),
            message_group_id: Some(format!("quiet-{tenant}")),
            ..Default::default()
        });
        if client.call(Action::SendMessage, request, setup.timeout).await.is_ok() {
            sent += 1;
        }
    }
    sent
}

/// A consumer: receives, works on each message, deletes. Returns the quiet tenants' delivery
/// latencies and how many flood messages it handled.
async fn consume(setup: Arc<Setup>, bodies: Bodies, work_ms: f64, deadline: Instant) -> (Histogram, u64) {
    let mut client = setup.client();
    let (mut delivery, mut floods) = (Histogram::default(), 0);
    let receive = bodies.receive(10, 1);
    while Instant::now() < deadline {
        let Ok(answer) = client.call(Action::ReceiveMessage, receive.clone(), setup.timeout * 2).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let arrived = setup.base.elapsed().as_micros() as u64;
        let Ok(parsed) = client::parse::<client::ReceiveAnswer<'_>>(&answer) else { continue };
        if parsed.messages.is_empty() {
            continue;
        }
        for message in &parsed.messages {
            match message.body.split_once('|').and_then(|(stamp, _)| stamp.parse::<u64>().ok()) {
                Some(sent_at) => delivery.record_us(arrived.saturating_sub(sent_at)),
                None => floods += 1,
            }
        }
        tokio::time::sleep(Duration::from_secs_f64(work_ms * parsed.messages.len() as f64 / 1000.0)).await;
        let handles = parsed.messages.iter().map(|m| m.receipt_handle.as_ref());
        let _ = client.call(Action::DeleteMessageBatch, bodies.delete_batch(handles), setup.timeout).await;
    }
    (delivery, floods)
}
