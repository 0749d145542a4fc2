//! What a worker measures: latency histograms, error tallies, and the shared counters the
//! progress line reads.
//!
//! Each worker owns its histograms and error tally and hands them back when it ends, so the hot
//! path takes no lock; only the progress counters are shared (relaxed atomics).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Values below this many microseconds get a bucket each.
const LINEAR: u64 = 128;
/// Mantissa bits of the logarithmic buckets above `LINEAR`: at most 1/64 (1.6%) relative error.
const MANTISSA_BITS: u32 = 6;

/// A log-linear histogram of microseconds. Buckets grow on demand, so an idle one is empty.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    sum_us: u64,
    max_us: u64,
}

fn bucket_of(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    let exponent = 63 - us.leading_zeros(); // >= 7
    let shift = exponent - MANTISSA_BITS;
    let mantissa = (us >> shift) & ((1 << MANTISSA_BITS) - 1);
    (LINEAR + u64::from(exponent - 7) * (1 << MANTISSA_BITS) + mantissa) as usize
}

/// The middle of bucket `index`, in microseconds.
fn value_of(index: usize) -> u64 {
    let index = index as u64;
    if index < LINEAR {
        return index;
    }
    let step = index - LINEAR;
    let exponent = 7 + (step >> MANTISSA_BITS) as u32;
    let mantissa = step & ((1 << MANTISSA_BITS) - 1);
    let shift = exponent - MANTISSA_BITS;
    let low = ((1 << MANTISSA_BITS) | mantissa) << shift;
    low + (1 << shift) / 2
}

impl Histogram {
    pub fn record(&mut self, elapsed: Duration) {
        self.record_us(elapsed.as_micros() as u64);
    }

    pub fn record_us(&mut self, us: u64) {
        let index = bucket_of(us);
        if index >= self.buckets.len() {
            self.buckets.resize(index + 1, 0);
        }
        self.buckets[index] += 1;
        self.count += 1;
        self.sum_us += us;
        self.max_us = self.max_us.max(us);
    }

    pub fn merge(&mut self, other: &Histogram) {
        if other.buckets.len() > self.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum_us += other.sum_us;
        self.max_us = self.max_us.max(other.max_us);
    }

    /// The value at quantile `q` (0..=1), in microseconds; the exact maximum for `q = 1`.
    fn quantile_us(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (index, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return value_of(index).min(self.max_us);
            }
        }
        self.max_us
    }

    pub fn summary(&self) -> Option<LatencySummary> {
        (self.count > 0).then(|| LatencySummary {
            count: self.count,
            mean_ms: self.sum_us as f64 / self.count as f64 / 1000.0,
            p50_ms: self.quantile_us(0.50) as f64 / 1000.0,
            p90_ms: self.quantile_us(0.90) as f64 / 1000.0,
            p99_ms: self.quantile_us(0.99) as f64 / 1000.0,
            max_ms: self.max_us as f64 / 1000.0,
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Errors by kind ("connect", "timeout", "HTTP 400 QueueDoesNotExist", ...), with the first
/// message seen for each kind so a summary can say what went wrong.
#[derive(Clone, Debug, Default)]
pub struct Errors {
    pub by_kind: BTreeMap<String, (u64, String)>,
}

impl Errors {
    pub fn record(&mut self, kind: String, message: impl FnOnce() -> String) {
        let entry = self.by_kind.entry(kind).or_insert_with(|| (0, message()));
        entry.0 += 1;
    }

    pub fn merge(&mut self, other: &Errors) {
        for (kind, (count, message)) in &other.by_kind {
            let entry = self.by_kind.entry(kind.clone()).or_insert_with(|| (0, message.clone()));
            entry.0 += count;
        }
    }

    pub fn total(&self) -> u64 {
        self.by_kind.values().map(|(count, _)| count).sum()
    }
}

/// Shared, lock-free counters for the progress line and the "everything fails" check.
#[derive(Debug, Default)]
pub struct Progress {
    /// The scenario's headline unit: messages sent, processed, or polls answered.
    pub messages: AtomicU64,
    pub successes: AtomicU64,
    pub errors: AtomicU64,
    /// Set when the run must end early (every request failed).
    pub abort: AtomicBool,
}

impl Progress {
    pub fn add_messages(&self, n: u64) {
        self.messages.fetch_add(n, Ordering::Relaxed);
    }
    pub fn success(&self) {
        self.successes.fetch_add(1, Ordering::Relaxed);
    }
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_close() {
        let mut last = 0;
        for us in [0u64, 1, 127, 128, 129, 200, 1000, 4999, 65_000, 1_000_000, 30_000_000] {
            let index = bucket_of(us);
            assert!(index >= last);
            last = index;
            let back = value_of(index);
            let error = (back as f64 - us as f64).abs() / (us.max(1) as f64);
            assert!(error <= 0.016, "{us} -> {back}");
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for us in 1..=1000 {
            h.record_us(us);
        }
        let s = h.summary().unwrap();
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 0.5).abs() < 0.01, "{}", s.p50_ms);
        assert!((s.p99_ms - 0.99).abs() < 0.02, "{}", s.p99_ms);
        assert_eq!(s.max_ms, 1.0);
    }
}
