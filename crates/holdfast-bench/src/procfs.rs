//! CPU time and memory of a process, from `/proc/PID/stat` and `/proc/PID/status` (Linux).
//!
//! The load generator shares the machine with the server under test, so it reports the CPU it
//! used itself as well as the server's. `unsafe` is forbidden here, so the clock-tick rate comes
//! from `getconf CLK_TCK` (100 on every Linux this runs on) rather than `sysconf`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// One reading of a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// User plus system CPU seconds since the process started.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Peak resident set size (VmHWM), bytes.
    pub peak_rss_bytes: u64,
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Reads `pid` ("self" for this process). `None` when the process is gone or this is not Linux.
pub fn sample(pid: &str) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some(Sample {
        cpu_seconds: (utime + stime) / clock_ticks_per_second(),
        rss_bytes: kib("VmRSS:") * 1024,
        peak_rss_bytes: kib("VmHWM:") * 1024,
    })
}

/// CPU seconds per thread name of `pid` (threads of one name summed: "tokio-runtime-w",
/// "holdfast-sqlite", ...). Empty when unreadable.
pub fn threads(pid: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let (Some(Ok(utime)), Some(Ok(stime))) =
            (fields.get(11).map(|f| f.parse::<f64>()), fields.get(12).map(|f| f.parse::<f64>()))
        else {
            continue;
        };
        *out.entry(name).or_insert(0.0) += (utime + stime) / clock_ticks_per_second();
    }
    out
}

/// Voluntary context switches of every thread of `pid`, summed: how often its threads went to
/// sleep waiting for something, and so (give or take) how often they were woken. An idle server
/// should barely add to it. `None` when unreadable.
pub fn voluntary_context_switches(pid: &str) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
        total += status
            .lines()
            .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|value| value.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(total)
}

/// Machine-wide CPU time from `/proc/stat`, in seconds summed over all cores.
#[derive(Clone, Copy, Debug, Default)]
pub struct MachineSample {
    pub busy_seconds: f64,
    pub iowait_seconds: f64,
}

pub fn machine() -> Option<MachineSample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<f64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: f64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0.0);
    let iowait = ticks.get(4).copied().unwrap_or(0.0);
    let hz = clock_ticks_per_second();
    Some(MachineSample { busy_seconds: (total - idle - iowait) / hz, iowait_seconds: iowait / hz })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_itself() {
        if let Some(sample) = super::sample("self") {
            assert!(sample.rss_bytes > 0);
            assert!(sample.cpu_seconds >= 0.0);
            assert!(!super::threads("self").is_empty());
            assert!(super::voluntary_context_switches("self").is_some());
        }
        if let Some(machine) = super::machine() {
            assert!(machine.busy_seconds >= 0.0 && machine.iowait_seconds >= 0.0);
        }
    }
}
