//! The summary of a run: one struct, serialized for `--json` and rendered as a table otherwise,
//! and the monitor that samples CPU, RSS and progress while a phase runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use super::procfs;
use super::stats::{Errors, LatencySummary, Progress};

const MIB: f64 = 1024.0 * 1024.0;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub scenario: String,
    pub endpoint: String,
    pub queue: String,
    pub concurrency: usize,
    pub body_size: usize,
    /// Wall time of the measured phase, seconds.
    pub duration_s: f64,
    /// The headline unit: messages sent (send scenarios) or fully processed (received and
    /// deleted) in the measured phase.
    pub messages: u64,
    pub messages_per_s: f64,
    pub sent: u64,
    pub sent_per_s: f64,
    pub requests: u64,
    pub requests_per_s: f64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, ErrorEntry>,
    /// Per-operation request latency, and `delivery` (send to receive, end to end).
    pub latency_ms: BTreeMap<String, LatencySummary>,
    pub client: Usage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<Usage>,
    pub machine: Machine,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<Reconcile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preload: Option<Preload>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered: Option<Offered>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<Idle>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ErrorEntry {
    pub count: u64,
    pub example: String,
}

/// CPU and memory of one process over the measured phase.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Usage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    pub cpu_s: f64,
    /// CPU seconds per wall second, in percent of one core.
    pub cpu_pct: f64,
    pub rss_mib_start: f64,
    pub rss_mib_end: f64,
    pub rss_mib_max: f64,
    /// Peak RSS of the process's whole life (VmHWM).
    pub rss_mib_peak: f64,
    /// CPU per thread name, in percent of one core ("holdfast-sqlite" is the SQLite writer).
    pub threads_cpu_pct: BTreeMap<String, f64>,
}

/// The whole machine over the measured phase, in percent of one core (100 per busy core): what
/// the server and this process used, and what everything else on the machine did meanwhile.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub busy_pct: f64,
    pub iowait_pct: f64,
    /// Busy time not spent in the server or the load generator: other load on the machine.
    pub others_pct: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct Reconcile {
    /// Messages whose send was acknowledged with a MessageId.
    pub sent: u64,
    /// Receives, counting repeats.
    pub received: u64,
    pub received_unique: u64,
    /// Acknowledged sends never received.
    pub lost: u64,
    /// Receives of a message already received.
    pub duplicates: u64,
    /// Received ids that no acknowledged send returned (sends that timed out, or messages that
    /// were in the queue before the run).
    pub unexpected: u64,
    pub drain_s: f64,
    pub verdict: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Preload {
    pub messages: u64,
    pub seconds: f64,
    pub messages_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss_mib_before: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss_mib_after: Option<f64>,
    /// Server RSS growth per preloaded message, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss_bytes_per_message: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Offered {
    pub rate: f64,
    pub achieved_send_rate: f64,
    pub received: u64,
    /// Received bodies without a timestamp this run wrote (another run's, or a canned answer).
    pub foreign: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Idle {
    pub queues: usize,
    pub queue_create_s: f64,
    pub polls: usize,
    /// Long polls that returned (empty after their 20 s, or with a message) and were re-issued.
    pub polls_completed: u64,
    /// The server's voluntary context switches during the measured phase (with --server-pid):
    /// about how often its threads were woken.
    pub server_wakeups: Option<u64>,
    pub server_wakeups_per_s: Option<f64>,
}

impl Report {
    pub fn set_errors(&mut self, errors: &Errors) {
        self.errors = errors.total();
        self.errors_by_kind = errors
            .by_kind
            .iter()
            .map(|(kind, (count, example))| (kind.clone(), ErrorEntry { count: *count, example: example.clone() }))
            .collect();
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nholdfast bench {} -> {} (queue {}, concurrency {}, {:.1} s, {} B bodies)\n",
            self.scenario, self.endpoint, self.queue, self.concurrency, self.duration_s, self.body_size
        );
        let row = |out: &mut String, label: &str, value: String| {
            let _ = writeln!(out, "  {label:<14}{value}");
        };
        if let Some(p) = &self.preload {
            let mut text =
                format!("{} messages in {:.1} s = {} msgs/s", group(p.messages), p.seconds, group_f(p.messages_per_s));
            if let (Some(before), Some(after)) = (p.server_rss_mib_before, p.server_rss_mib_after) {
                let _ = write!(text, "; server RSS {before:.1} -> {after:.1} MiB");
            }
            if let Some(per) = p.server_rss_bytes_per_message {
                let _ = write!(text, " ({per:.0} B/message)");
            }
            row(&mut out, "preload", text);
        }
        if let Some(idle) = &self.idle {
            row(
                &mut out,
                "idle",
                format!(
                    "{} queues (created in {:.1} s), {} long polls held, {} completed and re-issued",
                    group(idle.queues as u64),
                    idle.queue_create_s,
                    group(idle.polls as u64),
                    group(idle.polls_completed)
                ),
            );
            if let (Some(wakeups), Some(per_s)) = (idle.server_wakeups, idle.server_wakeups_per_s) {
                row(
                    &mut out,
                    "wakeups",
                    format!("server: {} voluntary context switches, {per_s:.2} per second", group(wakeups)),
                );
            }
        } else {
            let what = match self.scenario.as_str() {
                "send" | "send-batch" => "msgs/s sent",
                "latency" => "msgs/s received and deleted",
                _ => "msgs/s fully processed (received + deleted)",
            };
            row(
                &mut out,
                "throughput",
                format!("{} {what} ({} messages)", group_f(self.messages_per_s), group(self.messages)),
            );
            if self.sent != self.messages {
                row(&mut out, "sent", format!("{} msgs/s ({} messages)", group_f(self.sent_per_s), group(self.sent)));
            }
        }
        if let Some(o) = &self.offered {
            row(
                &mut out,
                "offered",
                format!(
                    "{} msgs/s, achieved {} msgs/s; {} received ({} foreign)",
                    group_f(o.rate),
                    group_f(o.achieved_send_rate),
                    group(o.received),
                    o.foreign
                ),
            );
        }
        row(&mut out, "requests", format!("{} /s ({} requests)", group_f(self.requests_per_s), group(self.requests)));
        row(&mut out, "errors", group(self.errors));
        for (kind, entry) in &self.errors_by_kind {
            let _ = writeln!(out, "    {:>8} x {kind}: {}", group(entry.count), entry.example);
        }
        if !self.latency_ms.is_empty() {
            let _ = writeln!(
                out,
                "\n  {:<14}{:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "latency (ms)", "count", "mean", "p50", "p90", "p99", "max"
            );
            for (op, s) in &self.latency_ms {
                let _ = writeln!(
                    out,
                    "  {op:<14}{:>10} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                    group(s.count),
                    s.mean_ms,
                    s.p50_ms,
                    s.p90_ms,
                    s.p99_ms,
                    s.max_ms
                );
            }
        }
        out.push('\n');
        row(&mut out, "client", usage_text(&self.client));
        if let Some(server) = &self.server {
            row(&mut out, "server", usage_text(server));
            let threads: Vec<String> = server
                .threads_cpu_pct
                .iter()
                .filter(|(_, pct)| **pct >= 0.5)
                .map(|(name, pct)| format!("{name} {pct:.0}%"))
                .collect();
            if !threads.is_empty() {
                row(&mut out, "", format!("by thread: {}", threads.join(", ")));
            }
        }
        let m = &self.machine;
        row(
            &mut out,
            "machine",
            format!(
                "{} cores, busy {:.0}% of a core (iowait {:.0}%), of which other processes {:.0}%",
                m.cores, m.busy_pct, m.iowait_pct, m.others_pct
            ),
        );
        if let Some(r) = &self.reconcile {
            row(&mut out, "reconcile", r.verdict.clone());
            row(
                &mut out,
                "",
                format!(
                    "{} sent, {} received ({} unique), {} lost, {} duplicates, {} unexpected; drained in {:.1} s",
                    group(r.sent),
                    group(r.received),
                    group(r.received_unique),
                    group(r.lost),
                    group(r.duplicates),
                    group(r.unexpected),
                    r.drain_s
                ),
            );
        }
        for note in &self.notes {
            row(&mut out, "note", note.clone());
        }
        if let Some(reason) = &self.aborted {
            row(&mut out, "ABORTED", reason.clone());
        }
        out
    }
}

fn usage_text(u: &Usage) -> String {
    let mut text = format!("CPU {:.2} s ({:.0}% of a core)", u.cpu_s, u.cpu_pct);
    if u.rss_mib_max > 0.0 {
        let _ = write!(text, ", RSS {:.1} -> {:.1} MiB (max {:.1})", u.rss_mib_start, u.rss_mib_end, u.rss_mib_max);
    }
    text
}

/// `1234567` -> `1,234,567`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn group_f(x: f64) -> String {
    group(x.round().max(0.0) as u64)
}

/// Samples this process and the server while a phase runs, prints the progress line, and
/// aborts the run when every request fails.
pub struct Monitor {
    started: Instant,
    client_start: procfs::Sample,
    server_start: Option<procfs::Sample>,
    server_pid: Option<u32>,
    server_threads: BTreeMap<String, f64>,
    machine_start: procfs::MachineSample,
    done: watch::Sender<bool>,
    task: tokio::task::JoinHandle<f64>,
}

impl Monitor {
    /// `unit` names the headline counter on the progress line ("msgs", "polls").
    pub fn start(
        progress: Arc<Progress>,
        stop: watch::Sender<bool>,
        server_pid: Option<u32>,
        unit: &'static str,
    ) -> Monitor {
        let started = Instant::now();
        let client_start = procfs::sample("self").unwrap_or_default();
        let server_start = server_pid.and_then(|pid| procfs::sample(&pid.to_string()));
        let server_threads = server_pid.map(|pid| procfs::threads(&pid.to_string())).unwrap_or_default();
        let machine_start = procfs::machine().unwrap_or_default();
        let (done, mut done_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut max_rss = server_start.map(|s| s.rss_bytes).unwrap_or(0) as f64;
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            ticker.tick().await;
            let (mut last_messages, mut last_successes, mut last_errors) = (0, 0, 0);
            let mut failing_ticks = 0;
            let mut stderr = std::io::stderr();
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = done_rx.changed() => break,
                }
                let messages = progress.messages.load(Ordering::Relaxed);
                let successes = progress.successes.load(Ordering::Relaxed);
                let errors = progress.errors.load(Ordering::Relaxed);
                let mut line = format!(
                    "\r  {:>5.0}s  {:>9} {unit}/s  {:>11} {unit}  errors {}",
                    started.elapsed().as_secs_f64(),
                    group(messages - last_messages),
                    group(messages),
                    group(errors)
                );
                if let Some(sample) = server_pid.and_then(|pid| procfs::sample(&pid.to_string())) {
                    max_rss = max_rss.max(sample.rss_bytes as f64);
                    let _ = write!(line, "  server RSS {:.0} MiB", sample.rss_bytes as f64 / MIB);
                }
                let _ = write!(stderr, "{line}   ");
                let _ = stderr.flush();
                // Two seconds in a row with errors and not one success: the endpoint is wrong or
                // down, and the figures would mean nothing.
                if successes == last_successes && errors > last_errors {
                    failing_ticks += 1;
                } else {
                    failing_ticks = 0;
                }
                if failing_ticks >= 2 && !progress.aborted() {
                    progress.abort.store(true, Ordering::Relaxed);
                    let _ = stop.send(true);
                }
                (last_messages, last_successes, last_errors) = (messages, successes, errors);
            }
            let _ = writeln!(stderr);
            max_rss
        });
        Monitor { started, client_start, server_start, server_pid, server_threads, machine_start, done, task }
    }

    /// Ends the phase: wall seconds, this process's usage, the server's and the machine's.
    pub async fn finish(self) -> Phase {
        let wall = self.started.elapsed().as_secs_f64();
        let client_end = procfs::sample("self").unwrap_or_default();
        let server_end = self.server_pid.and_then(|pid| procfs::sample(&pid.to_string()));
        let server_threads = self.server_pid.map(|pid| procfs::threads(&pid.to_string())).unwrap_or_default();
        let machine_end = procfs::machine().unwrap_or_default();
        let _ = self.done.send(true);
        let max_rss = self.task.await.unwrap_or(0.0);
        let usage = |start: procfs::Sample, end: procfs::Sample, max: f64, pid: Option<u32>| {
            let cpu = end.cpu_seconds - start.cpu_seconds;
            Usage {
                pid,
                cpu_s: cpu,
                cpu_pct: 100.0 * cpu / wall.max(1e-9),
                rss_mib_start: start.rss_bytes as f64 / MIB,
                rss_mib_end: end.rss_bytes as f64 / MIB,
                rss_mib_max: max.max(end.rss_bytes as f64) / MIB,
                rss_mib_peak: end.peak_rss_bytes as f64 / MIB,
                threads_cpu_pct: BTreeMap::new(),
            }
        };
        let client = usage(self.client_start, client_end, client_end.rss_bytes as f64, None);
        let mut server = match (self.server_start, server_end) {
            (Some(start), Some(end)) => Some(usage(start, end, max_rss, self.server_pid)),
            _ => None,
        };
        if let Some(server) = &mut server {
            server.threads_cpu_pct = server_threads
                .iter()
                .map(|(name, end)| {
                    let start = self.server_threads.get(name).copied().unwrap_or(0.0);
                    (name.clone(), 100.0 * (end - start) / wall.max(1e-9))
                })
                .collect();
        }
        let pct = |seconds: f64| 100.0 * seconds / wall.max(1e-9);
        let busy = pct(machine_end.busy_seconds - self.machine_start.busy_seconds);
        let ours = client.cpu_pct + server.as_ref().map_or(0.0, |s| s.cpu_pct);
        let machine = Machine {
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            busy_pct: busy,
            iowait_pct: pct(machine_end.iowait_seconds - self.machine_start.iowait_seconds),
            others_pct: (busy - ours).max(0.0),
        };
        Phase { wall, client, server, machine }
    }
}

/// What a monitored phase measured.
pub struct Phase {
    pub wall: f64,
    pub client: Usage,
    pub server: Option<Usage>,
    pub machine: Machine,
}

impl Phase {
    /// Records the phase's wall time and usage in `report`.
    pub fn fill(self, report: &mut Report) {
        report.duration_s = self.wall;
        report.client = self.client;
        report.server = self.server;
        report.machine = self.machine;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn grouping() {
        assert_eq!(super::group(0), "0");
        assert_eq!(super::group(999), "999");
        assert_eq!(super::group(1000), "1,000");
        assert_eq!(super::group(1234567), "1,234,567");
    }
}
