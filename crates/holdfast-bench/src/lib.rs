//! `holdfast bench`: a load generator for any SQS endpoint (holdfast, another SQS-compatible
//! server, AWS over http). Its runs are compared with those against `holdfast baseline`, the
//! server's own HTTP stack answering canned responses (in the `holdfast` crate, beside the
//! server it measures).
//!
//! It speaks AWS JSON 1.0 directly over lean keep-alive HTTP/1.1 connections ([`client`]), one
//! per worker, on one tokio runtime. It usually shares the machine with the server it measures,
//! so it reports its own CPU time next to the server's (`--server-pid`).
//!
//! Output: a progress line on stderr (rewritten every second), a summary table on stdout, or
//! with `--json` one JSON object on stdout. Exit status 1 when the run was aborted (every request
//! failed) or a roundtrip lost messages.

mod client;
mod compare;
mod fair;
mod peers;
mod postgres;
pub mod procfs;
mod report;

/// `1234567` → `1,234,567`, as the reports print counts (the CLI's summaries use it too).
pub use report::group;
mod scenarios;
mod stats;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

#[derive(Args, Clone, Debug)]
#[command(about = "Load-test an SQS endpoint: throughput, latency, backlog cost, idle long polls")]
pub struct BenchArgs {
    #[command(subcommand)]
    pub scenario: Scenario,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Options every scenario takes (before or after the scenario name).
#[derive(Args, Clone, Debug)]
pub struct CommonArgs {
    /// The SQS endpoint: http:// or https://. Several nodes of one cluster, comma-separated: the
    /// workers are spread over them in turn.
    #[arg(long, global = true, env = "HOLDFAST_ENDPOINT_URL", default_value = "http://127.0.0.1:9324")]
    pub endpoint_url: String,
    /// For https: also trust the PEM certificate(s) in this file (a self-signed or private-CA
    /// server); the system's roots are always trusted.
    #[arg(long, global = true, env = "AWS_CA_BUNDLE", value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Queue to use, created if missing and kept at the end. Default: a fresh uniquely named
    /// queue, deleted at the end unless --keep. For `idle`, the prefix of the queue names.
    #[arg(long, global = true, value_name = "NAME")]
    pub queue: Option<String>,
    /// Concurrent workers: producers, and as many consumers where a scenario consumes. Each
    /// worker has its own keep-alive connection.
    #[arg(long, short = 'c', global = true, default_value_t = 32)]
    pub concurrency: usize,
    /// Seconds to run the measured phase for (fractions allowed).
    #[arg(long, short = 'd', global = true, default_value_t = 10.0)]
    pub duration: f64,
    /// Size of each message body, in bytes.
    #[arg(long, global = true, default_value_t = 256)]
    pub body_size: usize,
    /// Print the summary as one JSON object on stdout instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// The server's process id, to report its CPU seconds and RSS (from /proc) for the run.
    #[arg(long, global = true, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Keep the queue(s) the run created instead of deleting them at the end.
    #[arg(long, global = true)]
    pub keep: bool,
    /// Sign requests with SigV4, with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
    /// AWS_SESSION_TOKEN from the environment. Without it, requests carry a fixed dummy
    /// Authorization header (holdfast accepts any).
    #[arg(long, global = true)]
    pub sign: bool,
    /// Region to sign for.
    #[arg(long, global = true, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Tokio worker threads of the load generator. 1 leaves the other cores to a local server.
    #[arg(long, global = true, default_value_t = 1)]
    pub threads: usize,
    /// Seconds before a request without an answer counts as a timeout error (long polls get
    /// their wait time on top).
    #[arg(long, global = true, default_value_t = 10.0)]
    pub request_timeout: f64,
}

impl CommonArgs {
    fn request_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.request_timeout.max(0.001))
    }
}

#[derive(Subcommand, Clone, Debug)]
pub enum Scenario {
    /// C producers call SendMessage for D seconds: messages/s and send latency.
    Send,
    /// C producers call SendMessageBatch (10 messages each) for D seconds.
    SendBatch,
    /// C producers and C consumers (receive up to 10 with WaitTimeSeconds=1, then delete) for D
    /// seconds: fully processed (received and deleted) messages/s. Afterwards the queue is
    /// drained and every sent MessageId is checked off: lost and duplicate messages are reported.
    Roundtrip(RoundtripArgs),
    /// A fixed offered rate with C long-polling consumers (WaitTimeSeconds=20): end-to-end
    /// delivery latency (send timestamp embedded in each body) and per-request latency.
    Latency(LatencyArgs),
    /// Preload N messages (SendMessageBatch, C in parallel), then run the roundtrip with that
    /// backlog present (without the final drain): preload rate, throughput, receive latency.
    /// With --duration 0 it only preloads.
    Backlog(BacklogArgs),
    /// Create Q queues and hold P concurrent idle long polls (WaitTimeSeconds=20, re-issued) for D
    /// seconds while measuring the server's CPU and RSS (use --server-pid). Each poll holds a
    /// connection: raise the file descriptor limit (ulimit -n) of both processes first.
    Idle(IdleArgs),
    /// Fair queues: quiet tenants' delivery latency with no flood, with one tenant flooding under
    /// its own MessageGroupId, and with the same flood ungrouped (each run on a fresh queue).
    Fair(fair::FairArgs),
    /// The raw SQL baseline for a queue on PostgreSQL: the roundtrip's sends, SKIP LOCKED receives
    /// and deletes issued directly to the database named by --database-url, with no queue server
    /// in between. Its messages/s is the most a queue on that PostgreSQL can do.
    Postgres(postgres::PostgresArgs),
    /// Run every scenario side by side against holdfast (SQLite and memory), the no-op baseline
    /// and optionally moto, plus backlog growth, restart time and idle cost, each server started
    /// here on loopback; prints the tables and writes them to <out>/results.md.
    Compare(compare::CompareArgs),
}

#[derive(Args, Clone, Debug)]
pub struct RoundtripArgs {
    /// Producers send with SendMessageBatch (10 per call) instead of SendMessage.
    #[arg(long)]
    pub batch: bool,
    /// Consumers delete what they received with one DeleteMessageBatch instead of one
    /// DeleteMessage per message.
    #[arg(long)]
    pub delete_batch: bool,
    /// Upper bound, in seconds, on draining the queue after the producers stop.
    #[arg(long, default_value_t = 30.0)]
    pub drain_timeout: f64,
}

#[derive(Args, Clone, Debug)]
pub struct LatencyArgs {
    /// Offered rate in messages per second, spread evenly over C producers (open loop: a late
    /// send does not delay the next one's schedule).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Delete with DeleteMessageBatch instead of one DeleteMessage per message.
    #[arg(long)]
    pub delete_batch: bool,
}

#[derive(Args, Clone, Debug)]
pub struct BacklogArgs {
    /// Messages to preload before the roundtrip.
    #[arg(long, default_value_t = 100_000)]
    pub backlog: u64,
    /// Producers send with SendMessageBatch during the roundtrip.
    #[arg(long)]
    pub batch: bool,
    /// Consumers delete with DeleteMessageBatch.
    #[arg(long)]
    pub delete_batch: bool,
}

#[derive(Args, Clone, Debug)]
pub struct IdleArgs {
    /// Queues to create.
    #[arg(long, default_value_t = 10_000)]
    pub queues: usize,
    /// Concurrent long polls to hold, spread round-robin over the queues.
    #[arg(long, default_value_t = 5_000)]
    pub polls: usize,
}

/// Runs one scenario on its own runtime and returns its report.
pub(crate) fn run_report(args: BenchArgs) -> anyhow::Result<report::Report> {
    let threads = args.common.threads.max(1);
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    }?;
    let result = runtime.block_on(scenarios::run(args));
    // Long polls may still be parked on their connections: do not wait for them.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

pub fn run(args: BenchArgs) -> ExitCode {
    if let Scenario::Compare(compare) = args.scenario {
        return compare::run(compare, args.common);
    }
    if let Scenario::Fair(fair) = &args.scenario {
        return run_fair(&args.common, fair);
    }
    let json = args.common.json;
    let result = run_report(args);
    match result {
        Ok(report) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
            } else {
                print!("{}", report.table());
            }
            if let Some(reason) = &report.aborted {
                eprintln!("holdfast bench: run aborted: {reason}");
                return ExitCode::FAILURE;
            }
            if report.reconcile.as_ref().is_some_and(|r| r.lost > 0) {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("holdfast bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_fair(common: &CommonArgs, args: &fair::FairArgs) -> ExitCode {
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(common.threads.max(1)).enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("holdfast bench: {error}");
                return ExitCode::FAILURE;
            }
        };
    match runtime.block_on(fair::run(common, args)) {
        Ok(report) if common.json => {
            println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{}", report.table());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("holdfast bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
