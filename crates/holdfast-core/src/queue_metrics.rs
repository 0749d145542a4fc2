//! Per-queue figures by the minute, as CloudWatch publishes them for SQS in the `AWS/SQS`
//! namespace (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html>).
//!
//! Requests add to in-memory counters ([`Recorder`]), one short lock per request and never a
//! store write. Once a minute the service closes the minutes that have ended: it samples each
//! active queue's gauges (visible, in flight, delayed, oldest age, the fair-queue figures), and
//! writes one [`QueueMinute`] per queue in a single store call, which also forgets minutes past
//! the retention period. Queries read the stored minutes and add the minute still open, so the
//! current minute shows within seconds (`crate::cloudwatch`).
//!
//! As on AWS, a queue is *active* (and gets a row every minute, zeros included) while it holds
//! messages or has been used in the last six hours; an idle, empty queue costs nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::store::{Millis, QueueId};
use crate::timer::QueueKey;

pub const MINUTE_MS: Millis = 60_000;

/// How long after its last use an empty queue keeps getting rows, as AWS does.
pub const ACTIVE_FOR_MS: Millis = 6 * 3600 * 1000;

/// The start of the minute `at` falls in.
pub fn minute_of(at: Millis) -> Millis {
    at.div_euclid(MINUTE_MS) * MINUTE_MS
}

/// Samples of one metric: count, sum, extremes, and a log-scale histogram for percentiles
/// (eight buckets per doubling, so a percentile is within about 4.5% of the true value, and
/// exact when all samples in its bucket are equal to the minimum or maximum).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Distribution {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Bucket index (`bucket_of`) → samples in it.
    pub buckets: BTreeMap<u16, u64>,
}

const BUCKETS_PER_DOUBLING: f64 = 8.0;
/// Covers values up to 2^80, far beyond any size, count or age.
const MAX_BUCKET: u16 = 640;

fn bucket_of(value: f64) -> u16 {
    if value < 1.0 {
        return 0;
    }
    (1.0 + (value.log2() * BUCKETS_PER_DOUBLING).floor()).min(f64::from(MAX_BUCKET)) as u16
}

/// A bucket's representative value: the geometric middle of its range.
fn bucket_value(bucket: u16) -> f64 {
    if bucket == 0 {
        return 0.0;
    }
    ((f64::from(bucket) - 1.0 + 0.5) / BUCKETS_PER_DOUBLING).exp2()
}

impl Distribution {
    pub fn single(value: f64) -> Self {
        let mut distribution = Distribution::default();
        distribution.add(value);
        distribution
    }

    pub fn add(&mut self, value: f64) {
        if self.count == 0 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.count += 1;
        self.sum += value;
        *self.buckets.entry(bucket_of(value)).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Distribution) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            self.min = other.min;
            self.max = other.max;
        } else {
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
        }
        self.count += other.count;
        self.sum += other.sum;
        for (bucket, count) in &other.buckets {
            *self.buckets.entry(*bucket).or_default() += count;
        }
    }

    /// The `p`th percentile (0–100) of the samples, `None` without samples.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        if p <= 0.0 {
            return Some(self.min);
        }
        if p >= 100.0 {
            return Some(self.max);
        }
        let rank = ((p / 100.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, count) in &self.buckets {
            seen += count;
            if seen >= rank {
                return Some(bucket_value(*bucket).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// The histogram as stored: LEB128 pairs of (bucket, count).
    pub fn encode_buckets(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buckets.len() * 3);
        for (bucket, count) in &self.buckets {
            write_varint(&mut out, u64::from(*bucket));
            write_varint(&mut out, *count);
        }
        out
    }

    /// Rebuilds a distribution from its stored columns; a damaged histogram is dropped (the
    /// count, sum and extremes still answer every statistic but percentiles).
    pub fn decode(count: u64, sum: f64, min: f64, max: f64, buckets: &[u8]) -> Self {
        let mut decoded = BTreeMap::new();
        let mut rest = buckets;
        while !rest.is_empty() {
            let (Some(bucket), Some(n)) = (read_varint(&mut rest), read_varint(&mut rest)) else {
                decoded.clear();
                break;
            };
            let Ok(bucket) = u16::try_from(bucket) else {
                decoded.clear();
                break;
            };
            *decoded.entry(bucket.min(MAX_BUCKET)).or_default() += n;
        }
        Distribution { count, sum, min, max, buckets: decoded }
    }
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// A queue's gauges, sampled once at the end of a minute.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Gauges {
    pub visible: u64,
    pub not_visible: u64,
    pub delayed: u64,
    /// Seconds since the oldest message still in the queue was sent; 0 for an empty queue.
    pub oldest_age_seconds: u64,
    /// Fair queues only (`crate::fairness`).
    pub fair: Option<FairGauges>,
}

impl Gauges {
    /// The gauges as engines store them, nine nullable columns in this order: visible,
    /// not visible, delayed, oldest age, noisy groups, quiet visible, quiet not visible, quiet
    /// delayed, quiet oldest age. `visible` is NULL for a minute not sampled, `noisy groups` for a
    /// queue that was not fair.
    pub fn to_columns(gauges: Option<&Gauges>) -> [Option<u64>; 9] {
        let fair = gauges.and_then(|g| g.fair.as_ref());
        [
            gauges.map(|g| g.visible),
            gauges.map(|g| g.not_visible),
            gauges.map(|g| g.delayed),
            gauges.map(|g| g.oldest_age_seconds),
            fair.map(|f| f.noisy_groups),
            fair.map(|f| f.visible_in_quiet_groups),
            fair.map(|f| f.not_visible_in_quiet_groups),
            fair.map(|f| f.delayed_in_quiet_groups),
            fair.and_then(|f| f.oldest_age_in_quiet_groups_seconds),
        ]
    }

    /// The gauges back from `to_columns`' columns.
    pub fn from_columns(columns: [Option<u64>; 9]) -> Option<Gauges> {
        let [visible, not_visible, delayed, oldest_age, noisy, quiet_visible, quiet_not_visible, quiet_delayed, quiet_oldest] =
            columns;
        Some(Gauges {
            visible: visible?,
            not_visible: not_visible.unwrap_or(0),
            delayed: delayed.unwrap_or(0),
            oldest_age_seconds: oldest_age.unwrap_or(0),
            fair: noisy.map(|noisy_groups| FairGauges {
                noisy_groups,
                visible_in_quiet_groups: quiet_visible.unwrap_or(0),
                not_visible_in_quiet_groups: quiet_not_visible.unwrap_or(0),
                delayed_in_quiet_groups: quiet_delayed.unwrap_or(0),
                oldest_age_in_quiet_groups_seconds: quiet_oldest,
            }),
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FairGauges {
    pub noisy_groups: u64,
    pub visible_in_quiet_groups: u64,
    pub not_visible_in_quiet_groups: u64,
    pub delayed_in_quiet_groups: u64,
    pub oldest_age_in_quiet_groups_seconds: Option<u64>,
}

/// One queue's figures for one minute: what the store keeps.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QueueMinute {
    pub account: String,
    pub region: String,
    pub queue: String,
    /// The minute's start, epoch milliseconds (a multiple of `MINUTE_MS`).
    pub minute: Millis,
    /// `None` when the minute's end was not sampled (the server was down, say).
    pub gauges: Option<Gauges>,
    pub sent: u64,
    pub received: u64,
    pub deleted: u64,
    pub empty_receives: u64,
    /// Bytes per sent message.
    pub sent_size: Distribution,
}

impl QueueMinute {
    /// Adds `later` (the same queue and minute, written again) to this one: counters add up,
    /// the later gauge sample wins.
    pub fn absorb(&mut self, later: &QueueMinute) {
        self.sent += later.sent;
        self.received += later.received;
        self.deleted += later.deleted;
        self.empty_receives += later.empty_receives;
        self.sent_size.merge(&later.sent_size);
        if later.gauges.is_some() {
            self.gauges.clone_from(&later.gauges);
        }
    }
}

/// The counters of one queue for one minute, not yet stored.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub key: QueueKey,
    pub sent: u64,
    pub received: u64,
    pub deleted: u64,
    pub empty_receives: u64,
    pub sent_size: Distribution,
}

impl Pending {
    pub fn into_minute(self, minute: Millis, gauges: Option<Gauges>) -> QueueMinute {
        QueueMinute {
            account: self.key.account.to_string(),
            region: self.key.region.to_string(),
            queue: self.key.name.to_string(),
            minute,
            gauges,
            sent: self.sent,
            received: self.received,
            deleted: self.deleted,
            empty_receives: self.empty_receives,
            sent_size: self.sent_size,
        }
    }
}

/// What requests did to each queue in the minutes not yet written.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    /// (queue, minute) → counters. Holds at most the open minute and the one being closed for
    /// each queue in use, since every minute is taken once it ends.
    pending: Mutex<HashMap<(QueueId, Millis), Pending>>,
    /// When each queue was last used, for "active" (`ACTIVE_FOR_MS`).
    last_used: Mutex<HashMap<QueueId, Millis>>,
    /// Rows a failed store write left behind, written with the next minute's.
    unsaved: Mutex<Vec<QueueMinute>>,
    /// Counts since the server started, per queue, for Prometheus counters (`/metrics`).
    totals: Mutex<HashMap<QueueId, Totals>>,
    /// Queues that held messages when last sampled.
    holding: Mutex<std::collections::HashSet<QueueId>>,
    /// Minutes closed since the last look at every queue (`needs_full_look`).
    closes_since_full_look: std::sync::atomic::AtomicU32,
}

/// Every this many minutes (and at the first) every queue is sampled, not only those known to be
/// in use: a safety net for messages that arrived by a path nobody recorded.
const FULL_LOOK_EVERY: u32 = 15;

/// What requests did to one queue since the server started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub sent: u64,
    pub sent_bytes: u64,
    pub received: u64,
    pub deleted: u64,
    pub empty_receives: u64,
}

/// The most rows kept after failed writes: a day of a hundred active queues. Past it the oldest
/// are dropped (and said so), so a store that stays down does not grow memory without bound.
const MAX_UNSAVED_ROWS: usize = 144_000;

impl Recorder {
    fn with<F: FnOnce(&mut Pending, &mut Totals)>(&self, key: &QueueKey, now: Millis, change: F) {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = pending.entry((key.id, minute_of(now))).or_insert_with(|| Pending {
            key: key.clone(),
            sent: 0,
            received: 0,
            deleted: 0,
            empty_receives: 0,
            sent_size: Distribution::default(),
        });
        // Taken while `pending` is held, always in this order.
        let mut totals = self.totals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        change(entry, totals.entry(key.id).or_default());
    }

    /// What requests did to `queue` since the server started.
    pub fn totals(&self, queue: QueueId) -> Totals {
        self.totals.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&queue).copied().unwrap_or_default()
    }

    pub fn sent(&self, key: &QueueKey, now: Millis, sizes: impl Iterator<Item = usize>) {
        self.with(key, now, |p, t| {
            for size in sizes {
                p.sent += 1;
                p.sent_size.add(size as f64);
                t.sent += 1;
                t.sent_bytes += size as u64;
            }
        });
    }

    /// A ReceiveMessage call that returned `messages` (0: an empty receive).
    pub fn received(&self, key: &QueueKey, now: Millis, messages: usize) {
        self.with(key, now, |p, t| match messages {
            0 => {
                p.empty_receives += 1;
                t.empty_receives += 1;
            }
            n => {
                p.received += n as u64;
                t.received += n as u64;
            }
        });
    }

    pub fn deleted(&self, key: &QueueKey, now: Millis, messages: usize) {
        if messages > 0 {
            self.with(key, now, |p, t| {
                p.deleted += messages as u64;
                t.deleted += messages as u64;
            });
        }
    }

    /// Takes the counters of every minute that started before `minute`, and notes their queues
    /// as used then.
    pub fn take_before(&self, minute: Millis) -> Vec<(Millis, Pending)> {
        let taken: Vec<(Millis, Pending)> = {
            let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let closed: Vec<(QueueId, Millis)> = pending.keys().filter(|(_, m)| *m < minute).copied().collect();
            closed.into_iter().filter_map(|k| pending.remove(&k).map(|p| (k.1, p))).collect()
        };
        let mut last_used = self.last_used.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (at, pending) in &taken {
            let used = last_used.entry(pending.key.id).or_insert(*at);
            *used = (*used).max(*at);
        }
        taken
    }

    /// The queues with counters not yet stored.
    pub fn pending_queues(&self) -> Vec<QueueKey> {
        let pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.values().map(|p| p.key.clone()).collect()
    }

    /// The counters of `queue`'s open minute, if it has any.
    pub fn open_minute(&self, queue: QueueId, minute: Millis) -> Option<Pending> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&(queue, minute)).cloned()
    }

    pub fn take_unsaved(&self) -> Vec<QueueMinute> {
        std::mem::take(&mut *self.unsaved.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    pub fn keep_unsaved(&self, mut rows: Vec<QueueMinute>) {
        if rows.len() > MAX_UNSAVED_ROWS {
            let dropped = rows.len() - MAX_UNSAVED_ROWS;
            tracing::warn!(dropped, "queue metrics could not be stored for too long; dropping the oldest minutes");
            rows.sort_by_key(|row| row.minute);
            rows.drain(..dropped);
        }
        *self.unsaved.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = rows;
    }

    /// Marks `queue` used at `now` without counting anything: messages arrived by a move.
    pub fn touch(&self, queue: QueueId, now: Millis) {
        let mut last_used = self.last_used.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let used = last_used.entry(queue).or_insert(now);
        *used = (*used).max(now);
    }

    /// Whether this minute's close should sample every queue rather than the candidates only.
    pub fn needs_full_look(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.closes_since_full_look.fetch_add(1, Ordering::Relaxed).is_multiple_of(FULL_LOOK_EVERY)
    }

    /// Whether any queue was used within `ACTIVE_FOR_MS` or held messages when last sampled.
    pub fn any_active(&self, now: Millis) -> bool {
        let mut last_used = self.last_used.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        last_used.retain(|_, at| now - *at < ACTIVE_FOR_MS);
        !last_used.is_empty() || !self.holding.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty()
    }

    /// Whether `queue` held messages when last sampled.
    pub fn was_holding(&self, queue: QueueId) -> bool {
        self.holding.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&queue)
    }

    pub fn sampled(&self, queue: QueueId, holds_messages: bool) {
        let mut holding = self.holding.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if holds_messages {
            holding.insert(queue);
        } else {
            holding.remove(&queue);
        }
    }

    /// Whether `queue` was used within `ACTIVE_FOR_MS` before `now`.
    pub fn recently_used(&self, queue: QueueId, now: Millis) -> bool {
        let mut last_used = self.last_used.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        last_used.retain(|_, at| now - *at < ACTIVE_FOR_MS);
        last_used.contains_key(&queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_close_and_exact_at_the_ends() {
        let mut d = Distribution::default();
        for v in 1..=1000 {
            d.add(f64::from(v));
        }
        assert_eq!(d.percentile(0.0), Some(1.0));
        assert_eq!(d.percentile(100.0), Some(1000.0));
        for (p, want) in [(50.0, 500.0), (90.0, 900.0), (99.0, 990.0)] {
            let got = d.percentile(p).unwrap();
            assert!((got - want).abs() / want < 0.05, "p{p}: {got} vs {want}");
        }
        assert_eq!(Distribution::single(42.0).percentile(99.0), Some(42.0));
        assert_eq!(Distribution::default().percentile(50.0), None);
    }

    #[test]
    fn the_histogram_survives_encoding_and_damage_is_dropped() {
        let mut d = Distribution::default();
        for v in [0.0, 3.0, 3.0, 70_000.0, 1e12] {
            d.add(v);
        }
        let back = Distribution::decode(d.count, d.sum, d.min, d.max, &d.encode_buckets());
        assert_eq!(back, d);
        let damaged = Distribution::decode(1, 2.0, 2.0, 2.0, &[0x80]);
        assert!(damaged.buckets.is_empty());
        assert_eq!(damaged.percentile(50.0), Some(2.0), "with no histogram, the extremes bound the answer");
    }

    #[test]
    fn merging_adds_counts_and_keeps_extremes() {
        let mut a = Distribution::single(5.0);
        a.merge(&Distribution::single(1.0));
        a.merge(&Distribution::default());
        assert_eq!((a.count, a.sum, a.min, a.max), (2, 6.0, 1.0, 5.0));
    }

    #[test]
    fn the_recorder_closes_only_ended_minutes() {
        let recorder = Recorder::default();
        let key = QueueKey::new(7, "000000000000", "us-east-1", "q");
        recorder.sent(&key, 60_500, [10, 20].into_iter());
        recorder.received(&key, 61_000, 0);
        recorder.received(&key, 119_999, 2);
        recorder.deleted(&key, 120_000, 1);
        let closed = recorder.take_before(120_000);
        assert_eq!(closed.len(), 1);
        let (minute, pending) = &closed[0];
        assert_eq!((*minute, pending.sent, pending.empty_receives, pending.received), (60_000, 2, 1, 2));
        assert_eq!(pending.sent_size.sum, 30.0);
        assert_eq!(recorder.open_minute(7, 120_000).map(|p| p.deleted), Some(1));
        assert!(recorder.recently_used(7, 120_000 + ACTIVE_FOR_MS - 60_001));
        assert!(!recorder.recently_used(7, 60_000 + ACTIVE_FOR_MS));
    }
}
