//! `holdfast bench compare`: the side-by-side run. It starts each target on loopback, runs the
//! same scenarios against each in this process, and prints one table:
//!
//! - side by side: holdfast on its two durable engines (the journal and SQLite), holdfast in
//!   memory, the no-op baseline (the HTTP stack's ceiling) and, when asked, the other
//!   SQS-compatible servers (`peers`);
//! - cost growth: a roundtrip with a backlog of 0 / 100k / 1M messages, on both engines, and the
//!   restart time with the biggest backlog on disk;
//! - idle: an idle server's wakeups with 1,000 queues, and 10,000 queues holding 5,000 long polls;
//! - the disk's fsync latency at the start and the end, the floor of every durable commit.
//!
//! Raw results go to `<out>/<name>.json` (one `holdfast bench` report each), the tables to
//! `<out>/results.md`. `--tables-only` rebuilds the tables from the JSON already there.
//! Every server listens on 127.0.0.1 only and every run is bounded in time.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::{json, Value};

use crate::client::{self, Bodies, Client, Endpoint};
use crate::peers::{Peer, PeerList, PEERS};
use crate::{procfs, report, BacklogArgs, BenchArgs, CommonArgs, IdleArgs, LatencyArgs, RoundtripArgs, Scenario};

#[derive(Args, Clone, Debug)]
pub struct CompareArgs {
    /// Short runs (3 s; backlogs 0 / 10k / 100k; 1,000 queues and 500 polls): about 5 minutes.
    /// Without it: 10 s runs, backlogs up to 1M, 10,000 queues and 5,000 polls: 15-20 minutes.
    #[arg(long)]
    pub quick: bool,
    /// Skip the side-by-side section.
    #[arg(long)]
    pub no_side: bool,
    /// Also measure these SQS-compatible servers, comma-separated, or `all`: fauxqs, sqslite,
    /// fakecloud, moto, ministack. Each is installed under <out>/peers on first use.
    #[arg(long, value_name = "LIST", value_parser = crate::peers::parse)]
    pub peers: Option<PeerList>,
    /// The same as `--peers moto`.
    #[arg(long)]
    pub moto: bool,
    /// Skip the cost-growth section (backlogs and restart).
    #[arg(long)]
    pub no_cost: bool,
    /// Skip the idle section.
    #[arg(long)]
    pub no_idle: bool,
    /// Also measure the PostgreSQL engine, on one node and on two, against the raw SQL baseline
    /// (`holdfast bench postgres`) on this database. Each holdfast run gets a fresh schema.
    #[arg(long, value_name = "URL")]
    pub postgres_url: Option<String>,
    /// Only rebuild the tables from the results already in <out>.
    #[arg(long)]
    pub tables_only: bool,
    /// Where results go.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
    /// The holdfast binary to start as the server. Default: this one.
    #[arg(long)]
    pub server_binary: Option<PathBuf>,
}

/// Run lengths and sizes for one comparison.
struct Plan {
    duration: f64,
    moto_duration: f64,
    backlogs: Vec<u64>,
    queues: usize,
    polls: usize,
    idle_duration: f64,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                duration: 3.0,
                moto_duration: 2.0,
                backlogs: vec![0, 10_000, 100_000],
                queues: 1_000,
                polls: 500,
                idle_duration: 10.0,
            }
        } else {
            Plan {
                duration: 10.0,
                moto_duration: 5.0,
                backlogs: vec![0, 100_000, 1_000_000],
                queues: 10_000,
                polls: 5_000,
                idle_duration: 25.0,
            }
        }
    }
}

/// Producers and consumers per side-by-side run (the peers written in Python are much slower:
/// fewer).
const CONCURRENCY: usize = 32;
const MOTO_CONCURRENCY: usize = 4;
/// The durable engines, the default first: the side-by-side targets' names.
const DURABLE: [&str; 2] = ["journal", "sqlite"];
/// Queues of the quiet-idle run: the server's wakeups with this many queues and nothing to do.
const QUIET_QUEUES: usize = 1_000;
const QUIET_SECONDS: f64 = 20.0;

pub fn run(args: CompareArgs, common: CommonArgs) -> ExitCode {
    match compare(&args, &common) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("holdfast bench compare: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn compare(args: &CompareArgs, common: &CommonArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let plan = Plan::new(args.quick);
    if !args.tables_only {
        let binary = match &args.server_binary {
            Some(path) => path.clone(),
            None => std::env::current_exe().context("finding this binary")?,
        };
        let mut runner = Runner { out: args.out.clone(), binary, common: common.clone(), quiet_budget: 300 };
        runner
            .save("settings", &json!({"quick": args.quick, "duration": plan.duration, "concurrency": CONCURRENCY}))?;
        println!("== disk");
        runner.fsync_probe("start")?;
        if !args.no_side {
            runner.side_by_side(&plan)?;
        }
        let mut peers = args.peers.clone().unwrap_or_default().0;
        if args.moto && !peers.iter().any(|p| p.name == "moto") {
            peers.push(PEERS.into_iter().find(|p| p.name == "moto").expect("moto is a peer"));
        }
        for peer in peers {
            runner.peer(&plan, peer)?;
        }
        if let Some(url) = &args.postgres_url {
            runner.postgres(&plan, url)?;
        }
        if !args.no_cost {
            runner.cost_growth(&plan)?;
        }
        if !args.no_idle {
            runner.idle(&plan)?;
        }
        println!("== disk, again");
        runner.fsync_probe("end")?;
    }
    println!("== tables");
    let tables = tables(&args.out, &plan);
    print!("{tables}");
    std::fs::write(args.out.join("results.md"), tables).context("writing results.md")?;
    Ok(())
}

struct Runner {
    out: PathBuf,
    binary: PathBuf,
    common: CommonArgs,
    /// Seconds left for waiting on a quiet machine over the whole comparison.
    quiet_budget: u32,
}

/// Starts a fresh server for the named run: the server, and its data directory to delete after.
type StartServer<'a> = dyn FnMut(&Runner, &str) -> anyhow::Result<(Server, Option<String>)> + 'a;

/// A server started for one section, stopped (SIGTERM, then waited for) when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Runner {
    fn save(&self, name: &str, value: &impl serde::Serialize) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        std::fs::write(self.out.join(format!("{name}.json")), text).with_context(|| format!("writing {name}.json"))
    }

    /// Starts `holdfast serve ARGS` (or `baseline`) on a free loopback port and waits for its
    /// `listening on` line.
    fn start(&self, name: &str, args: &[&str]) -> anyhow::Result<Server> {
        let log = std::fs::File::create(self.out.join(format!("{name}.log")))?;
        let mut child = Command::new(&self.binary)
            .args(args)
            .args(["--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let url = listening_url(&mut child, Duration::from_secs(120));
        match url {
            Some(url) => Ok(Server { child, url }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("{name} did not start; see {}/{name}.log", self.out.display())
            }
        }
    }

    /// Other processes take CPU and disk from both sides and depress every figure. Waits (at
    /// most 60 s, and at most 300 s over the whole comparison) for a second in which the machine
    /// is less than 30% busy; each report records how busy the rest of the machine was anyway.
    fn wait_quiet(&mut self) {
        let mut waited = 0;
        while self.quiet_budget > 0 && waited < 60 {
            let (Some(a), Some(b)) = (procfs::machine(), {
                std::thread::sleep(Duration::from_secs(1));
                procfs::machine()
            }) else {
                return;
            };
            if (b.busy_seconds - a.busy_seconds) * 100.0 < 30.0 {
                return;
            }
            waited += 1;
            self.quiet_budget -= 1;
        }
        if waited > 0 {
            println!("   (the machine was still busy after waiting {waited} s; running anyway)");
        }
    }

    /// One `holdfast bench` run against `server`, saved as `<name>.json` and summarised in a line.
    fn bench(
        &mut self,
        name: &str,
        server: &Server,
        concurrency: usize,
        duration: f64,
        scenario: Scenario,
    ) -> anyhow::Result<()> {
        self.bench_adjusted(name, server, (concurrency, duration, scenario), |_| {})
    }

    /// `bench`, with `adjust` changing this run's options (a kept queue, a longer timeout).
    fn bench_adjusted(
        &mut self,
        name: &str,
        server: &Server,
        (concurrency, duration, scenario): (usize, f64, Scenario),
        adjust: impl FnOnce(&mut CommonArgs),
    ) -> anyhow::Result<()> {
        self.wait_quiet();
        let mut common = self.common.clone();
        common.endpoint_url = server.url.clone();
        common.server_pid = Some(server.child.id());
        common.concurrency = concurrency;
        common.duration = duration;
        common.json = true;
        adjust(&mut common);
        self.run_and_save(name, BenchArgs { scenario, common })
    }

    /// Runs one `holdfast bench`, saves its report (or its failure) as `<name>.json` and prints
    /// its summary line.
    fn run_and_save(&self, name: &str, args: BenchArgs) -> anyhow::Result<()> {
        let value = match crate::run_report(args) {
            Ok(report) => serde_json::to_value(report)?,
            Err(error) => json!({ "failed": format!("{error:#}") }),
        };
        self.save(name, &value)?;
        println!("   {}", summary_line(name, &value));
        Ok(())
    }

    /// The side-by-side scenarios for `target`, each against a server of its own from `start`
    /// (discarded after its run), so that no run inherits what the one before left behind: a
    /// million messages from send-batch would otherwise weigh on every run after it, differently
    /// on each engine.
    fn scenarios(
        &mut self,
        target: &str,
        concurrency: usize,
        duration: f64,
        start: &mut StartServer<'_>,
    ) -> anyhow::Result<()> {
        // The baseline's queue is never empty: it cannot be drained.
        let drain_timeout = if target == "baseline" { 0.0 } else { 30.0 };
        let roundtrip = |batch| RoundtripArgs { batch, delete_batch: batch, drain_timeout };
        let runs = [
            ("send", Scenario::Send),
            ("send-batch", Scenario::SendBatch),
            ("roundtrip", Scenario::Roundtrip(roundtrip(false))),
            ("roundtrip-batch", Scenario::Roundtrip(roundtrip(true))),
            ("latency", Scenario::Latency(LatencyArgs { rate: 1000.0, delete_batch: false })),
        ];
        for (scenario, args) in runs {
            let name = format!("{target}-{scenario}");
            let (server, data) = start(self, &name)?;
            self.bench(&name, &server, concurrency, duration, args)?;
            drop(server);
            if let Some(data) = data {
                std::fs::remove_dir_all(data).ok();
            }
        }
        Ok(())
    }

    fn side_by_side(&mut self, plan: &Plan) -> anyhow::Result<()> {
        println!(
            "== side by side: {CONCURRENCY} producers / {CONCURRENCY} consumers, {} s per run, a fresh server for each",
            plan.duration
        );
        for storage in DURABLE {
            println!("-- holdfast --storage {storage} (fresh data dir)");
            self.scenarios(storage, CONCURRENCY, plan.duration, &mut |runner, name| {
                let (server, data) = runner.serve_fresh(name, storage)?;
                Ok((server, Some(data)))
            })?;
        }

        println!("-- holdfast --storage memory");
        self.scenarios("memory", CONCURRENCY, plan.duration, &mut |runner, name| {
            Ok((runner.start(name, &["serve", "--storage", "memory"])?, None))
        })?;

        println!("-- baseline (no-op, canned answers)");
        self.scenarios("baseline", CONCURRENCY, plan.duration, &mut |runner, name| {
            Ok((runner.start(name, &["baseline"])?, None))
        })
    }

    /// The PostgreSQL section: the raw SQL baseline, then holdfast on PostgreSQL with one node and
    /// with two (the workers spread over both), each roundtrip single and batched.
    fn postgres(&mut self, plan: &Plan, url: &str) -> anyhow::Result<()> {
        println!("== PostgreSQL: raw SQL baseline, holdfast on 1 and 2 nodes, {CONCURRENCY} + {CONCURRENCY}");
        for batch in [false, true] {
            let name = if batch { "pg-raw-roundtrip-batch" } else { "pg-raw-roundtrip" };
            self.wait_quiet();
            let mut common = self.common.clone();
            (common.concurrency, common.duration, common.json) = (CONCURRENCY, plan.duration, true);
            let roundtrip = RoundtripArgs { batch, delete_batch: batch, drain_timeout: 30.0 };
            let scenario =
                Scenario::Postgres(crate::postgres::PostgresArgs { database_url: url.to_owned(), roundtrip });
            self.run_and_save(name, BenchArgs { scenario, common })?;
        }
        for nodes in [1, 2] {
            let schema = format!("holdfast_bench_{nodes}_nodes");
            fresh_schema(url, &schema)?;
            let separator = if url.contains('?') { '&' } else { '?' };
            let storage = format!("{url}{separator}options=-csearch_path%3D{schema}");
            let mut servers = Vec::new();
            for node in 0..nodes {
                let data = self.fresh_dir(&format!("data-pg{nodes}-{node}"))?;
                let args = ["serve", "--storage", storage.as_str(), "--data-dir", data.as_str()];
                servers.push(self.start(&format!("pg{nodes}-node{node}"), &args)?);
            }
            let endpoints = servers.iter().map(|s| s.url.clone()).collect::<Vec<_>>().join(",");
            for batch in [false, true] {
                let name = format!("pg{nodes}-roundtrip{}", if batch { "-batch" } else { "" });
                let scenario = Scenario::Roundtrip(RoundtripArgs { batch, delete_batch: batch, drain_timeout: 30.0 });
                let endpoints = endpoints.clone();
                self.bench_adjusted(&name, &servers[0], (CONCURRENCY, plan.duration, scenario), |common| {
                    common.endpoint_url = endpoints;
                })?;
            }
        }
        Ok(())
    }

    /// Installs (on first use), starts and measures one peer server, on the same scenarios.
    fn peer(&mut self, plan: &Plan, peer: Peer) -> anyhow::Result<()> {
        let (concurrency, duration) =
            if peer.slow { (MOTO_CONCURRENCY, plan.moto_duration) } else { (CONCURRENCY, plan.duration) };
        println!("-- {} ({concurrency} producers / {concurrency} consumers, {duration} s per run)", peer.label);
        let dir = self.out.join("peers");
        std::fs::create_dir_all(&dir)?;
        peer.install(&dir).with_context(|| format!("installing {}", peer.name))?;
        self.scenarios(peer.name, concurrency, duration, &mut |runner, name| {
            let port = free_port()?;
            let log = std::fs::File::create(runner.out.join(format!("{name}.log")))?;
            let child = peer
                .command(&dir, port)
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .spawn()
                .with_context(|| format!("starting {}", peer.name))?;
            let server = Server { child, url: format!("http://127.0.0.1:{port}") };
            let deadline = Instant::now() + Duration::from_secs(60);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                anyhow::ensure!(Instant::now() < deadline, "{} did not start; see {name}.log", peer.name);
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok((server, None))
        })
    }

    fn cost_growth(&mut self, plan: &Plan) -> anyhow::Result<()> {
        let biggest = plan.backlogs.iter().copied().max().unwrap_or(0);
        let mut kept = None;
        for storage in DURABLE.into_iter().chain(["memory"]) {
            println!("== cost growth ({storage}): roundtrip with a backlog of {:?} messages", plan.backlogs);
            for &backlog in &plan.backlogs {
                let name = format!("backlog-{storage}-{backlog}");
                let (server, data) = self.serve_fresh(&name, storage)?;
                // The default engine's biggest backlog stays on disk for the restart measurement.
                let keep = storage == DURABLE[0] && backlog == biggest;
                let scenario = Scenario::Backlog(BacklogArgs { backlog, batch: false, delete_batch: false });
                self.bench_adjusted(&name, &server, (CONCURRENCY, plan.duration, scenario), |common| {
                    if keep {
                        common.queue = Some("backlog".into());
                        common.keep = true;
                    }
                })?;
                if keep {
                    drop(server);
                    kept = Some(data);
                } else {
                    discard(server, &data);
                }
            }
        }
        if let Some(data) = kept {
            println!("== restart with {} messages on disk ({})", report::group(biggest), DURABLE[0]);
            let restart = self.restart(&data)?;
            println!("   {restart}");
            self.save("restart", &restart)?;
            std::fs::remove_dir_all(&data).ok();
        }
        Ok(())
    }

    /// Restarts a server on `data` and times it to `listening on` and to the first message
    /// received.
    fn restart(&self, data: &str) -> anyhow::Result<Value> {
        let started = Instant::now();
        let server = self.start("restart", &["serve", "--storage", DURABLE[0], "--data-dir", data])?;
        let listening_s = started.elapsed().as_secs_f64();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let endpoint = std::sync::Arc::new(Endpoint::parse(&server.url)?);
            let mut client = Client::new(endpoint, None);
            let queue_url = format!("{}/000000000000/backlog", server.url);
            let bodies = Bodies::new(&queue_url);
            let timeout = Duration::from_secs(30);
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                anyhow::ensure!(Instant::now() < deadline, "no message received within 60 s of the restart");
                let answer = client.call(holdfast_api::Action::ReceiveMessage, bodies.receive(1, 0), timeout).await;
                if let Ok(body) = answer {
                    let received: client::ReceiveAnswer = client::parse(&body).map_err(|e| anyhow::anyhow!("{e}"))?;
                    if !received.messages.is_empty() {
                        break;
                    }
                }
            }
            let first_receive_s = started.elapsed().as_secs_f64();
            let request = holdfast_api::types::GetQueueAttributesRequest {
                queue_url,
                attribute_names: Some(vec!["ApproximateNumberOfMessages".into()]),
            };
            let answer = client
                .call(holdfast_api::Action::GetQueueAttributes, client::body(&request), timeout)
                .await
                .map_err(|e| anyhow::anyhow!("GetQueueAttributes: {e}"))?;
            let attributes: Value = serde_json::from_slice(&answer)?;
            let on_disk =
                attributes["Attributes"]["ApproximateNumberOfMessages"].as_str().unwrap_or("0").parse::<u64>()?;
            Ok(json!({"listening_s": listening_s, "first_receive_s": first_receive_s, "messages_on_disk": on_disk}))
        })
    }

    fn idle(&mut self, plan: &Plan) -> anyhow::Result<()> {
        for storage in DURABLE.into_iter().chain(["memory"]) {
            println!("== idle ({storage}): {QUIET_QUEUES} queues and nothing to do, {QUIET_SECONDS} s");
            let name = format!("quiet-{storage}");
            let (server, data) = self.serve_fresh(&name, storage)?;
            let quiet = Scenario::Idle(IdleArgs { queues: QUIET_QUEUES, polls: 0 });
            self.bench(&name, &server, CONCURRENCY, QUIET_SECONDS, quiet)?;
            discard(server, &data);

            println!(
                "== idle ({storage}): {} queues, {} long polls held for {} s",
                plan.queues, plan.polls, plan.idle_duration
            );
            let name = format!("idle-{storage}");
            let (server, data) = self.serve_fresh(&name, storage)?;
            let held = Scenario::Idle(IdleArgs { queues: plan.queues, polls: plan.polls });
            // Each poll waits 20 s: give the requests time beyond that.
            self.bench_adjusted(&name, &server, (CONCURRENCY, plan.idle_duration, held), |common| {
                common.request_timeout = 30.0;
            })?;
            discard(server, &data);
        }
        Ok(())
    }

    /// `holdfast serve --storage STORAGE` on a data directory of its own, emptied first.
    fn serve_fresh(&self, name: &str, storage: &str) -> anyhow::Result<(Server, String)> {
        let data = self.fresh_dir(&format!("data-{name}"))?;
        let server = self.start(name, &["serve", "--storage", storage, "--data-dir", &data])?;
        Ok((server, data))
    }

    fn fresh_dir(&self, name: &str) -> anyhow::Result<String> {
        let path = self.out.join(name);
        if path.exists() {
            std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        Ok(path.to_string_lossy().into_owned())
    }

    /// 4 KiB fsync latency of the disk under `out`: appending and fsyncing (the file grows, so
    /// the filesystem journal commits too) and overwriting in place with fdatasync (what
    /// SQLite's WAL does once it has reached its size) cost very different amounts.
    fn fsync_probe(&self, when: &str) -> anyhow::Result<()> {
        let path = self.out.join("fsync.probe");
        let mut result = serde_json::Map::new();
        for mode in ["append_fsync", "overwrite_fdatasync"] {
            let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&path)?;
            file.write_all(&[b'x'; 65536 * 4])?;
            file.sync_all()?;
            let mut samples = Vec::with_capacity(200);
            for i in 0..200u64 {
                let started = if mode == "append_fsync" {
                    file.write_all(&[b'x'; 4096])?;
                    let started = Instant::now();
                    file.sync_all()?;
                    started
                } else {
                    file.write_all_at(&[b'y'; 4096], (i % 64) * 4096)?;
                    let started = Instant::now();
                    file.sync_data()?;
                    started
                };
                samples.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            samples.sort_by(f64::total_cmp);
            result.insert(mode.into(), json!({"p50_ms": samples[100], "p99_ms": samples[198]}));
        }
        std::fs::remove_file(&path).ok();
        let ms = |mode: &str, q: &str| result[mode][q].as_f64().unwrap_or(f64::NAN);
        println!(
            "   4 KiB append+fsync p50 {:.2} ms, p99 {:.2} ms; overwrite+fdatasync p50 {:.2} ms, p99 {:.2} ms",
            ms("append_fsync", "p50_ms"),
            ms("append_fsync", "p99_ms"),
            ms("overwrite_fdatasync", "p50_ms"),
            ms("overwrite_fdatasync", "p99_ms")
        );
        self.save(&format!("fsync-{when}"), &Value::Object(result))
    }
}

/// Stops a server and removes its data directory.
fn discard(server: Server, data: &str) {
    drop(server);
    std::fs::remove_dir_all(data).ok();
}

/// Reads the child's stdout until its `listening on http://…` line, within `timeout`.
fn listening_url(child: &mut Child, timeout: Duration) -> Option<String> {
    let stdout = child.stdout.take()?;
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = sender.send(url.trim().to_owned());
                break;
            }
        }
        // Keep draining so the server never blocks on a full pipe.
        for _ in lines {}
    });
    receiver.recv_timeout(timeout).ok()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

// ---- summaries and tables, from the saved JSON ----

fn num(value: &Value) -> Option<f64> {
    value.as_f64()
}

fn p99(report: &Value, op: &str) -> String {
    latency(report, op, "p99_ms")
}

fn latency(report: &Value, op: &str, quantile: &str) -> String {
    num(&report["latency_ms"][op][quantile]).map_or("-".into(), |ms| format!("{ms:.2}"))
}

fn rate(value: &Value) -> String {
    num(value).map_or("-".into(), report::group_f)
}

fn summary_line(name: &str, r: &Value) -> String {
    if let Some(failed) = r["failed"].as_str() {
        return format!("{name:<30} failed: {failed}");
    }
    let mut line = format!(
        "{name:<30} {:>9} msgs/s  errors {:<4} p99 ms send {} recv {} delivery {}  CPU server {:.0}% client {:.0}% others {:.0}%",
        rate(&r["messages_per_s"]),
        r["errors"],
        p99(r, "send"),
        p99(r, "receive"),
        p99(r, "delivery"),
        num(&r["server"]["cpu_pct"]).unwrap_or(0.0),
        num(&r["client"]["cpu_pct"]).unwrap_or(0.0),
        num(&r["machine"]["others_pct"]).unwrap_or(0.0),
    );
    if let Some(aborted) = r["aborted"].as_str() {
        let _ = write!(line, "  ABORTED: {aborted}");
    }
    if let Some(lost) = r["reconcile"]["lost"].as_u64().filter(|&lost| lost > 0) {
        let _ = write!(line, "  reconcile: {lost} lost");
    }
    if let Some(per_s) = num(&r["idle"]["server_wakeups_per_s"]) {
        let _ = write!(line, "  server wakeups {per_s:.2}/s");
    }
    line
}

/// Loads `<out>/<name>.json`, if a run saved it and it did not fail.
fn load(out: &Path, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(out.join(format!("{name}.json"))).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    value.get("failed").is_none().then_some(value)
}

fn cpu(r: &Value) -> String {
    format!("{:.0}% / {:.0}%", num(&r["server"]["cpu_pct"]).unwrap_or(0.0), num(&r["client"]["cpu_pct"]).unwrap_or(0.0))
}

fn tables(out: &Path, plan: &Plan) -> String {
    let mut t = String::new();
    fsync_table(&mut t, out);
    side_table(&mut t, out, plan);
    postgres_table(&mut t, out, plan);
    cost_table(&mut t, out, plan);
    idle_table(&mut t, out);
    targets_table(&mut t, out, plan);
    t
}

/// The PostgreSQL section: each holdfast target against the raw baseline of the same batching.
fn postgres_table(t: &mut String, out: &Path, plan: &Plan) {
    if load(out, "pg-raw-roundtrip").is_none() {
        return;
    }
    let _ = writeln!(
        t,
        "### PostgreSQL ({CONCURRENCY} producers + {CONCURRENCY} consumers, {} s per run; server CPU is the first node's)\n",
        plan.duration
    );
    let _ = writeln!(
        t,
        "| roundtrip, msgs/s processed | single calls | of raw | batches of 10 | of raw |\n|---|---:|---:|---:|---:|"
    );
    let raw = [load(out, "pg-raw-roundtrip"), load(out, "pg-raw-roundtrip-batch")];
    let per_s = |r: &Option<Value>| r.as_ref().and_then(|r| num(&r["messages_per_s"]));
    for (label, prefix) in [
        ("raw SQL baseline (bench postgres)", "pg-raw"),
        ("holdfast on PostgreSQL, 1 node", "pg1"),
        ("holdfast on PostgreSQL, 2 nodes", "pg2"),
        ("holdfast on SQLite", "sqlite"),
    ] {
        let runs = [load(out, &format!("{prefix}-roundtrip")), load(out, &format!("{prefix}-roundtrip-batch"))];
        if runs.iter().all(Option::is_none) {
            continue;
        }
        let mut row = format!("| {label} |");
        for (run, raw) in runs.iter().zip(&raw) {
            let share = match (per_s(run), per_s(raw)) {
                (Some(run), Some(raw)) if raw > 0.0 => format!("{:.0}%", run * 100.0 / raw),
                _ => "-".into(),
            };
            let _ = write!(row, " {} | {share} |", run.as_ref().map_or("-".into(), |r| rate(&r["messages_per_s"])));
        }
        let _ = writeln!(t, "{row}");
    }
    let _ = writeln!(t);
}

/// Drops and creates `schema` in the database at `url`, for a run that starts empty.
fn fresh_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        let connection = tokio::spawn(connection);
        client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")).await?;
        drop(client);
        let _ = connection.await;
        anyhow::Ok(())
    })
}

fn fsync_table(t: &mut String, out: &Path) {
    let probes: Vec<(&str, Value)> =
        ["start", "end"].into_iter().filter_map(|when| Some((when, load(out, &format!("fsync-{when}"))?))).collect();
    if probes.is_empty() {
        return;
    }
    let _ = writeln!(t, "4 KiB fsync latency on the disk under the results (the floor of a durable commit):\n");
    let _ = writeln!(t, "| when | append + fsync p50 / p99 | overwrite + fdatasync p50 / p99 |\n|---|---:|---:|");
    for (when, f) in probes {
        let ms = |mode: &str| {
            format!(
                "{:.2} / {:.2} ms",
                num(&f[mode]["p50_ms"]).unwrap_or(f64::NAN),
                num(&f[mode]["p99_ms"]).unwrap_or(f64::NAN)
            )
        };
        let _ = writeln!(t, "| {when} | {} | {} |", ms("append_fsync"), ms("overwrite_fdatasync"));
    }
    let _ = writeln!(t);
}

fn side_table(t: &mut String, out: &Path, plan: &Plan) {
    let targets: Vec<&str> = DURABLE
        .into_iter()
        .chain(["memory", "baseline"])
        .chain(PEERS.iter().map(|p| p.name))
        .filter(|target| load(out, &format!("{target}-send")).is_some())
        .collect();
    if targets.is_empty() {
        return;
    }
    let label = |target: &'static str| match target {
        "journal" => "holdfast journal",
        "sqlite" => "holdfast SQLite",
        "memory" => "holdfast memory",
        "baseline" => "no-op baseline",
        peer => PEERS.iter().find(|p| p.name == peer).map_or(peer, |p| p.label),
    };
    let _ = writeln!(
        t,
        "### Side by side ({CONCURRENCY} producers + {CONCURRENCY} consumers, {} s per run; moto and ministack: {MOTO_CONCURRENCY} + {MOTO_CONCURRENCY}, {} s)\n",
        plan.duration, plan.moto_duration
    );
    let _ = writeln!(t, "| scenario | {} |", targets.iter().map(|x| label(x)).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(t, "|---|{}", "---:|".repeat(targets.len()));
    type Cell = fn(&Value) -> String;
    let rows: [(&str, &str, Cell); 10] = [
        ("send: msgs/s", "send", |r| rate(&r["messages_per_s"])),
        ("send: p50 / p99 ms", "send", |r| format!("{} / {}", latency(r, "send", "p50_ms"), p99(r, "send"))),
        ("send-batch (10): msgs/s", "send-batch", |r| rate(&r["messages_per_s"])),
        ("roundtrip single: msgs/s processed", "roundtrip", |r| rate(&r["messages_per_s"])),
        ("roundtrip single: p99 send / receive / delete ms", "roundtrip", |r| {
            format!("{} / {} / {}", p99(r, "send"), p99(r, "receive"), p99(r, "delete"))
        }),
        ("roundtrip single: lost / duplicated", "roundtrip", |r| {
            format!("{} / {}", r["reconcile"]["lost"], r["reconcile"]["duplicates"])
        }),
        ("roundtrip batch+delete-batch: msgs/s processed", "roundtrip-batch", |r| rate(&r["messages_per_s"])),
        ("latency @1,000 msgs/s: delivery p50 / p99 ms", "latency", |r| {
            format!("{} / {}", latency(r, "delivery", "p50_ms"), p99(r, "delivery"))
        }),
        ("roundtrip single: CPU server / client", "roundtrip", cpu),
        ("roundtrip batch: CPU server / client", "roundtrip-batch", cpu),
    ];
    for (title, scenario, cell) in rows {
        let cells: Vec<String> = targets
            .iter()
            .map(|target| {
                let canned = *target == "baseline" && (scenario == "latency" || title.contains("lost"));
                match load(out, &format!("{target}-{scenario}")) {
                    _ if canned => "n/a (canned answers)".into(),
                    Some(r) => cell(&r),
                    None => "-".into(),
                }
            })
            .collect();
        let _ = writeln!(t, "| {title} | {} |", cells.join(" | "));
    }
    let errors: Vec<String> = targets
        .iter()
        .map(|target| {
            let total: u64 = ["send", "send-batch", "roundtrip", "roundtrip-batch", "latency"]
                .iter()
                .filter_map(|s| load(out, &format!("{target}-{s}")))
                .map(|r| r["errors"].as_u64().unwrap_or(0))
                .sum();
            total.to_string()
        })
        .collect();
    let _ = writeln!(t, "| errors (all runs) | {} |", errors.join(" | "));
    for peer in PEERS {
        let failed = std::fs::read_to_string(out.join(format!("{}-send.json", peer.name)))
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|r| r["failed"].as_str().map(str::to_owned));
        if let Some(failed) = failed {
            let _ = writeln!(t, "\n{} could not be measured: {failed}", peer.label);
        }
    }
}

fn cost_table(t: &mut String, out: &Path, plan: &Plan) {
    let rows: Vec<(&str, u64, Value)> = DURABLE
        .into_iter()
        .chain(["memory"])
        .flat_map(|s| plan.backlogs.iter().filter_map(move |&b| Some((s, b, load(out, &format!("backlog-{s}-{b}"))?))))
        .collect();
    if !rows.is_empty() {
        let _ =
            writeln!(t, "\n### Cost growth: roundtrip (single calls, {CONCURRENCY} + {CONCURRENCY}) with a backlog\n");
        let _ = writeln!(
            t,
            "| storage | backlog | preload msgs/s | roundtrip msgs/s | vs empty | receive p50 / p99 ms | server RSS after preload MiB | RSS per queued message |"
        );
        let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for (storage, backlog, r) in &rows {
            let empty = load(out, &format!("backlog-{storage}-0"));
            let vs = match (empty.as_ref().and_then(|e| num(&e["messages_per_s"])), num(&r["messages_per_s"])) {
                (Some(e), Some(x)) if e > 0.0 => format!("{:.0}%", 100.0 * x / e),
                _ => "-".into(),
            };
            let preload = &r["preload"];
            let per_message = num(&preload["server_rss_bytes_per_message"])
                .filter(|_| *backlog > 0)
                .map_or("-".into(), |b| format!("{b:.0} B"));
            let _ = writeln!(
                t,
                "| {storage} | {} | {} | {} | {vs} | {} / {} | {:.0} | {per_message} |",
                report::group(*backlog),
                if *backlog > 0 { rate(&preload["messages_per_s"]) } else { "-".into() },
                rate(&r["messages_per_s"]),
                latency(r, "receive", "p50_ms"),
                p99(r, "receive"),
                num(&preload["server_rss_mib_after"]).unwrap_or(0.0),
            );
        }
    }
    if let Some(restart) = load(out, "restart") {
        let _ = writeln!(
            t,
            "\n### Restart with {} messages on disk ({})\n\n| to `listening on` | to first successful receive |\n|---:|---:|",
            report::group(restart["messages_on_disk"].as_u64().unwrap_or(0)),
            DURABLE[0]
        );
        let _ = writeln!(
            t,
            "| {:.2} s | {:.2} s |",
            num(&restart["listening_s"]).unwrap_or(f64::NAN),
            num(&restart["first_receive_s"]).unwrap_or(f64::NAN)
        );
    }
}

fn idle_table(t: &mut String, out: &Path) {
    let runs: Vec<(String, Value)> = ["quiet", "idle"]
        .into_iter()
        .flat_map(|kind| DURABLE.into_iter().chain(["memory"]).map(move |s| format!("{kind}-{s}")))
        .filter_map(|name| Some((name.clone(), load(out, &name)?)))
        .collect();
    if runs.is_empty() {
        return;
    }
    let _ = writeln!(t, "\n### Idle: queues, long polls held, and how often the server wakes\n");
    let _ = writeln!(
        t,
        "| run | queues | long polls | server wakeups/s | server CPU | server RSS | client CPU | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (name, r) in runs {
        let idle = &r["idle"];
        let _ = writeln!(
            t,
            "| {name} | {} | {} | {} | {:.1}% | {:.0} MiB | {:.1}% | {} |",
            report::group(idle["queues"].as_u64().unwrap_or(0)),
            report::group(idle["polls"].as_u64().unwrap_or(0)),
            num(&idle["server_wakeups_per_s"]).map_or("-".into(), |w| format!("{w:.2}")),
            num(&r["server"]["cpu_pct"]).unwrap_or(0.0),
            num(&r["server"]["rss_mib_end"]).unwrap_or(0.0),
            num(&r["client"]["cpu_pct"]).unwrap_or(0.0),
            r["errors"],
        );
    }
}

fn targets_table(t: &mut String, out: &Path, plan: &Plan) {
    let _ = writeln!(t, "\n### Targets\n\n| target | measured | met |\n|---|---:|:-:|");
    let mut target = |name: String, value: String, met: bool| {
        let _ = writeln!(t, "| {name} | {value} | {} |", if met { "yes" } else { "**no**" });
    };
    let per_s = |name: &str| load(out, name).and_then(|r| num(&r["messages_per_s"]));
    let durable = DURABLE[0];
    let per_s_of = |scenario: &str| per_s(&format!("{durable}-{scenario}"));
    if let Some(x) = per_s_of("roundtrip") {
        target(
            format!("{durable}: roundtrip, single calls, 32+32: ≥ 10,000 msgs/s"),
            report::group_f(x),
            x >= 10_000.0,
        );
    }
    if let Some(x) = per_s_of("roundtrip-batch") {
        target(format!("{durable}: roundtrip, batches of 10: ≥ 50,000 msgs/s"), report::group_f(x), x >= 50_000.0);
    }
    if let (Some(durable_rate), Some(memory)) = (per_s_of("roundtrip"), per_s("memory-roundtrip")) {
        let ratio = durable_rate / memory;
        target(
            format!("{durable}: ≥ 70% of in-memory (roundtrip, single)"),
            format!("{:.0}%", 100.0 * ratio),
            ratio >= 0.7,
        );
    }
    for (scenario, what) in [
        ("send", "send"),
        ("send-batch", "send, batches of 10"),
        ("roundtrip", "roundtrip, single calls"),
        ("roundtrip-batch", "roundtrip, batches of 10"),
    ] {
        let (Some(ours), Some((best, theirs))) = (
            per_s_of(scenario),
            PEERS
                .iter()
                .filter_map(|p| Some((p.label, per_s(&format!("{}-{scenario}", p.name))?)))
                .max_by(|a, b| a.1.total_cmp(&b.1)),
        ) else {
            continue;
        };
        target(
            format!("{durable} ahead of every peer: {what} (best peer: {best}, {})", report::group_f(theirs)),
            format!("{} ({:.0}%)", report::group_f(ours), 100.0 * ours / theirs),
            ours > theirs,
        );
    }
    let biggest = plan.backlogs.iter().copied().max().unwrap_or(0);
    if let (Some(empty), Some(full)) =
        (per_s(&format!("backlog-{durable}-0")), per_s(&format!("backlog-{durable}-{biggest}")))
    {
        let ratio = full / empty;
        target(
            format!("{durable}: throughput with a {} backlog ≥ 80% of empty", report::group(biggest)),
            format!("{:.0}%", 100.0 * ratio),
            ratio >= 0.8,
        );
    }
    let delivery_p99 = |name: &str| load(out, name).and_then(|r| num(&r["latency_ms"]["delivery"]["p99_ms"]));
    let best_peer = PEERS
        .iter()
        .filter_map(|p| Some((p.label, delivery_p99(&format!("{}-latency", p.name))?)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    if let (Some(ours), Some((best, theirs))) = (delivery_p99(&format!("{durable}-latency")), best_peer) {
        target(
            format!("{durable} ahead of every peer: p99 delivery at 1,000 msgs/s (best peer: {best}, {theirs:.2} ms)"),
            format!("{ours:.2} ms"),
            ours < theirs,
        );
    }
    if let Some(p99) =
        load(out, &format!("{durable}-latency")).and_then(|r| num(&r["latency_ms"]["delivery"]["p99_ms"]))
    {
        target(
            format!("{durable}: p99 delivery to a waiting long poll at 1,000 msgs/s < 5 ms"),
            format!("{p99:.2} ms"),
            p99 < 5.0,
        );
    }
    if let Some(s) = load(out, "restart").and_then(|r| num(&r["first_receive_s"])) {
        target(
            format!("restart with {} messages < 10 s (first receive)", report::group(biggest)),
            format!("{s:.2} s"),
            s < 10.0,
        );
    }
    for storage in DURABLE.into_iter().chain(["memory"]) {
        if let Some(w) = load(out, &format!("quiet-{storage}")).and_then(|r| num(&r["idle"]["server_wakeups_per_s"])) {
            target(
                format!("idle server with {} queues ({storage}): ≤ 2 wakeups/s", report::group(QUIET_QUEUES as u64)),
                format!("{w:.2}/s"),
                w <= 2.0,
            );
        }
    }
}
