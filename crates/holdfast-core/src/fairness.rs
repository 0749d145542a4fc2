//! Fair queues (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues.html>):
//! on a standard queue, `MessageGroupId` names a tenant. A tenant that takes a disproportionate
//! share of the consumers is noisy, and the quiet tenants' messages are delivered first, so one
//! tenant's flood does not hold up everyone else's.
//!
//! As AWS words it, a tenant is noisy while it has sent within the last 5 minutes and either
//! holds more than 10% of the queue's in-flight messages and at least 30 of them (concurrency
//! share), or more than 10% of the recent processing time (messages' time in flight, which also
//! catches a tenant with few but slow messages). A noisy tenant whose backlog has drained has
//! nothing left to hold back. Among noisy tenants, the one with the fewest messages in flight goes
//! first. Messages without a group are each their own tenant, always quiet.
//!
//! The figures are approximate, as AWS's are: each queue's load is sampled from the store every
//! 100 ms to 1 s (`SAMPLE_EVERY_MS`), by the receives that need it, and kept in memory only (a restart forgets the
//! recent history; it is rebuilt within a minute). Only queues that have received grouped
//! messages since the server started are tracked, and a receive of an untracked queue, or one
//! without noisy tenants, takes the ordinary path. The store does the delivery order
//! (`store::FairOrder`) through indexes, never by stepping over a noisy tenant's backlog.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::store::{FairOrder, GroupLoad, Millis, QueueCounts, QueueId, StoredMessage};

/// A tenant above this share of in-flight messages (or of recent processing time) may be noisy.
const NOISY_SHARE: f64 = 0.10;
/// ...and by concurrency only with at least this many in flight.
const NOISY_MIN_IN_FLIGHT: u64 = 30;
/// A tenant that has not sent for this long is quiet again.
const QUIET_AFTER_MS: Millis = 5 * 60 * 1000;
/// How often a queue's load is sampled: every 100 ms while little is in flight, up to once a
/// second as the in-flight messages (what a sample reads) grow to 10,000, so sampling costs about
/// the same whatever the load, and a flood is noticed within a tenth of a second on a queue
/// with a modest number of consumers.
const SAMPLE_EVERY_MS: (Millis, Millis) = (100, 1_000);
/// In-flight messages per millisecond of sampling interval.
const SAMPLE_IN_FLIGHT_PER_MS: u64 = 10;
/// Recent processing time fades with this time constant (about a minute of history).
const PROCESSING_MEMORY_MS: f64 = 60_000.0;
/// A gap between samples counts as at most this long (an idle queue is not sampled).
const MAX_SAMPLE_GAP_MS: Millis = 10_000;
/// Tenants tracked per queue, and over all queues, at most; beyond, new tenants are not tracked
/// (and so are quiet). Bounds the memory a sender of endless new group ids can take: about a
/// hundred bytes a tenant.
const MAX_TENANTS: usize = 10_000;
const MAX_TENANTS_IN_ALL: usize = 100_000;
/// Messages looked at for `ApproximateAgeOfOldestMessageInQuietGroups`.
pub(crate) const OLDEST_QUIET_LOOK: usize = 10_000;

/// The fair-queue figures AWS publishes, for one queue.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FairQueueMetrics {
    pub approximate_number_of_noisy_groups: u64,
    pub approximate_number_of_messages_visible_in_quiet_groups: u64,
    pub approximate_number_of_messages_not_visible_in_quiet_groups: u64,
    pub approximate_number_of_messages_delayed_in_quiet_groups: u64,
    /// Seconds; `None` when no quiet message was found.
    pub approximate_age_of_oldest_message_in_quiet_groups: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Fairness {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    queues: HashMap<QueueId, Tenants>,
    /// Entries of every queue's `last_send` and `processing`, together.
    entries: usize,
}

#[derive(Debug, Default)]
struct Tenants {
    sampled_at: Option<Millis>,
    /// When the next sample is due after `sampled_at`.
    sample_every: Millis,
    last_send: HashMap<String, Millis>,
    /// Decayed time in flight, per tenant and in total (ms of in-flight message time).
    processing: HashMap<String, f64>,
    processing_total: f64,
    /// From the last sample: noisy tenants, fewest in flight first.
    noisy: Vec<String>,
    /// The last quiet tenant served: the next fair receive starts after it.
    start_after: Option<String>,
}

impl Tenants {
    fn entries(&self) -> usize {
        self.last_send.len() + self.processing.len()
    }
}

impl Fairness {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A standard queue received a message from `group`.
    pub(crate) fn sent(&self, queue: QueueId, group: &str, now: Millis) {
        let mut state = self.lock();
        let room = state.entries < MAX_TENANTS_IN_ALL;
        let tenants = state.queues.entry(queue).or_default();
        if let Some(at) = tenants.last_send.get_mut(group) {
            *at = now;
        } else if room && tenants.last_send.len() < MAX_TENANTS {
            tenants.last_send.insert(group.to_owned(), now);
            state.entries += 1;
        }
    }

    /// Whether `queue` has had grouped messages since the server started.
    pub(crate) fn tracks(&self, queue: QueueId) -> bool {
        self.lock().queues.contains_key(&queue)
    }

    pub(crate) fn forget(&self, queue: QueueId) {
        let mut state = self.lock();
        if let Some(tenants) = state.queues.remove(&queue) {
            state.entries -= tenants.entries();
        }
    }

    /// Whether `queue`'s load is due a new sample.
    pub(crate) fn needs_sample(&self, queue: QueueId, now: Millis) -> bool {
        self.lock().queues.get(&queue).is_some_and(|t| t.sampled_at.is_none_or(|at| now - at >= t.sample_every))
    }

    /// Folds a sample of the queue's load into its history and decides who is noisy.
    pub(crate) fn record(&self, queue: QueueId, load: &GroupLoad, now: Millis) {
        let mut state = self.lock();
        let State { queues, entries } = &mut *state;
        let Some(tenants) = queues.get_mut(&queue) else { return };
        let before = tenants.entries();
        let room = |tenants: &Tenants, map_len: usize| {
            map_len < MAX_TENANTS && *entries - before + tenants.entries() < MAX_TENANTS_IN_ALL
        };
        let gap = tenants.sampled_at.map_or(0, |at| (now - at).clamp(0, MAX_SAMPLE_GAP_MS));
        tenants.sampled_at = Some(now);
        let (fastest, slowest) = SAMPLE_EVERY_MS;
        tenants.sample_every = ((load.total_in_flight / SAMPLE_IN_FLIGHT_PER_MS) as Millis).clamp(fastest, slowest);
        let fade = (-(gap as f64) / PROCESSING_MEMORY_MS).exp();
        for time in tenants.processing.values_mut() {
            *time *= fade;
        }
        tenants.processing.retain(|_, time| *time >= 1.0);
        tenants.processing_total *= fade;
        let mut in_flight: HashMap<&str, u64> = HashMap::new();
        for (group, count) in &load.in_flight {
            in_flight.insert(group, *count);
            let time = (*count * gap as u64) as f64;
            if let Some(processing) = tenants.processing.get_mut(group) {
                *processing += time;
            } else if room(tenants, tenants.processing.len()) {
                tenants.processing.insert(group.clone(), time);
            }
            // A tenant in flight at startup counts as having sent just now.
            if !tenants.last_send.contains_key(group) && room(tenants, tenants.last_send.len()) {
                tenants.last_send.insert(group.clone(), now);
            }
        }
        tenants.processing_total += (load.total_in_flight * gap as u64) as f64;
        tenants.last_send.retain(|_, at| now - *at < QUIET_AFTER_MS);
        *entries = *entries - before + tenants.entries();

        let total = load.total_in_flight as f64;
        let mut noisy: Vec<(u64, String)> = tenants
            .last_send
            .keys()
            .filter_map(|group| {
                let count = in_flight.get(group.as_str()).copied().unwrap_or(0);
                let by_concurrency = count >= NOISY_MIN_IN_FLIGHT && count as f64 > NOISY_SHARE * total;
                let processing = tenants.processing.get(group).copied().unwrap_or(0.0);
                let by_processing =
                    tenants.processing_total > 0.0 && processing > NOISY_SHARE * tenants.processing_total;
                (by_concurrency || by_processing).then(|| (count, group.clone()))
            })
            .collect();
        noisy.sort();
        // A lone tenant has nobody to be fair to. (Ungrouped messages are tenants of their own.)
        let grouped: u64 = load.in_flight.iter().map(|(_, count)| count).sum();
        let tenant_count = tenants.last_send.len() + usize::from(load.total_in_flight > grouped);
        tenants.noisy = if tenant_count > 1 { noisy.into_iter().map(|(_, group)| group).collect() } else { Vec::new() };
    }

    /// How the next receive of `queue` should serve its tenants, if any is noisy.
    pub(crate) fn order(&self, queue: QueueId) -> Option<FairOrder> {
        let state = self.lock();
        let tenants = state.queues.get(&queue)?;
        (!tenants.noisy.is_empty())
            .then(|| FairOrder { noisy: tenants.noisy.clone(), start_after: tenants.start_after.clone() })
    }

    /// A fair receive returned `messages`: the next one starts after the last quiet tenant served.
    pub(crate) fn served(&self, queue: QueueId, order: &FairOrder, messages: &[StoredMessage]) {
        let last_quiet = messages
            .iter()
            .filter_map(|m| m.group_id.as_ref())
            .filter(|group| !order.noisy.contains(group))
            .max_by(|a, b| rotation_key(a, order).cmp(&rotation_key(b, order)));
        if let Some(group) = last_quiet {
            if let Some(tenants) = self.lock().queues.get_mut(&queue) {
                tenants.start_after = Some(group.clone());
            }
        }
    }

    /// The noisy tenants of the last sample that still have a backlog are what the metrics count.
    pub(crate) fn noisy(&self, queue: QueueId) -> Vec<String> {
        self.lock().queues.get(&queue).map(|t| t.noisy.clone()).unwrap_or_default()
    }
}

/// Groups are visited in name order from `start_after`, wrapping around: the last one visited is
/// the greatest in that rotation.
fn rotation_key<'a>(group: &'a str, order: &FairOrder) -> (bool, &'a str) {
    let after_start = order.start_after.as_deref().is_none_or(|start| group > start);
    (!after_start, group)
}

/// The quiet tenants' share of the queue's counts: the whole queue's, less the noisy tenants'.
pub(crate) fn quiet_metrics(
    noisy_with_backlog: u64,
    all: QueueCounts,
    noisy: QueueCounts,
    oldest_quiet_sent_at: Option<Millis>,
    now: Millis,
) -> FairQueueMetrics {
    FairQueueMetrics {
        approximate_number_of_noisy_groups: noisy_with_backlog,
        approximate_number_of_messages_visible_in_quiet_groups: all.visible.saturating_sub(noisy.visible),
        approximate_number_of_messages_not_visible_in_quiet_groups: all.in_flight.saturating_sub(noisy.in_flight),
        approximate_number_of_messages_delayed_in_quiet_groups: all.delayed.saturating_sub(noisy.delayed),
        approximate_age_of_oldest_message_in_quiet_groups: oldest_quiet_sent_at
            .map(|sent_at| ((now - sent_at).max(0) / 1000) as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(in_flight: &[(&str, u64)], ungrouped: u64) -> GroupLoad {
        GroupLoad {
            in_flight: in_flight.iter().map(|(g, n)| (g.to_string(), *n)).collect(),
            total_in_flight: in_flight.iter().map(|(_, n)| n).sum::<u64>() + ungrouped,
        }
    }

    fn tenants(groups: &[&str], now: Millis) -> Fairness {
        let fairness = Fairness::default();
        for group in groups {
            fairness.sent(1, group, now);
        }
        fairness
    }

    #[test]
    fn a_tenant_with_a_large_share_and_30_in_flight_is_noisy() {
        let now = 1_000_000;
        let fairness = tenants(&["flood", "a", "b"], now);
        fairness.record(1, &load(&[("flood", 30), ("a", 2), ("b", 2)], 0), now);
        assert_eq!(fairness.order(1).unwrap().noisy, ["flood"]);
        // Many in flight but not more than 10% of the queue's: quiet by concurrency.
        let fairness = tenants(&["flood", "a"], now);
        fairness.record(1, &load(&[("flood", 30)], 400), now);
        assert_eq!(fairness.order(1), None);
        // A large share but fewer than 30: quiet by concurrency.
        let fairness = tenants(&["few", "a"], now);
        fairness.record(1, &load(&[("few", 29), ("a", 1)], 0), now);
        assert_eq!(fairness.order(1), None);
    }

    #[test]
    fn recent_processing_time_counts_too() {
        let fairness = tenants(&["slow", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j"], 0);
        fairness.record(1, &load(&[], 0), 0);
        // "slow" keeps 5 messages in flight, the ten others 2 each, second after second.
        let others: Vec<(&str, u64)> =
            ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"].iter().map(|g| (*g, 2)).collect();
        let mut busy = others.clone();
        busy.push(("slow", 5));
        for second in 1..=30 {
            fairness.record(1, &load(&busy, 0), second * 1_000);
        }
        assert_eq!(fairness.order(1).unwrap().noisy, ["slow"], "5 of 25 in flight is 20% of the time");
    }

    #[test]
    fn noisy_tenants_go_fewest_in_flight_first_and_turn_quiet_without_sends() {
        let now = 1_000_000;
        let fairness = tenants(&["x", "y", "q"], now);
        fairness.record(1, &load(&[("x", 80), ("y", 40), ("q", 1)], 0), now);
        assert_eq!(fairness.order(1).unwrap().noisy, ["y", "x"]);
        // Five minutes without a send from y: quiet again, whatever it still holds.
        fairness.sent(1, "x", now + QUIET_AFTER_MS);
        fairness.sent(1, "q", now + QUIET_AFTER_MS);
        fairness.record(1, &load(&[("x", 80), ("y", 40), ("q", 1)], 0), now + QUIET_AFTER_MS);
        assert_eq!(fairness.order(1).unwrap().noisy, ["x"]);
    }

    #[test]
    fn a_lone_tenant_is_never_noisy() {
        let fairness = tenants(&["only"], 0);
        fairness.record(1, &load(&[("only", 100)], 0), 0);
        assert_eq!(fairness.order(1), None);
        assert!(!fairness.needs_sample(1, 50) && fairness.needs_sample(1, 100), "little in flight: 100 ms");
        fairness.record(1, &load(&[("only", 20_000)], 0), 100);
        assert!(!fairness.needs_sample(1, 1_000) && fairness.needs_sample(1, 1_100), "much in flight: 1 s");
        assert!(!fairness.needs_sample(2, 0), "untracked queues are not sampled");
    }

    #[test]
    fn endless_new_tenants_take_bounded_memory() {
        let fairness = Fairness::default();
        for i in 0..(MAX_TENANTS + 10) {
            fairness.sent(1, &format!("t{i}"), 0);
        }
        assert_eq!(fairness.lock().queues[&1].last_send.len(), MAX_TENANTS);
        for queue in 2..20 {
            for i in 0..MAX_TENANTS {
                fairness.sent(queue, &format!("t{i}"), 0);
            }
        }
        assert_eq!(fairness.lock().entries, MAX_TENANTS_IN_ALL);
        fairness.forget(1);
        assert_eq!(fairness.lock().entries, MAX_TENANTS_IN_ALL - MAX_TENANTS);
        // Five minutes later a sample forgets the tenants that stopped sending.
        fairness.record(2, &GroupLoad::default(), QUIET_AFTER_MS);
        assert_eq!(fairness.lock().entries, MAX_TENANTS_IN_ALL - 2 * MAX_TENANTS);
    }

    #[test]
    fn receives_rotate_over_the_quiet_tenants() {
        let fairness = tenants(&["a", "b", "c", "n"], 0);
        let order = FairOrder { noisy: vec!["n".into()], start_after: Some("b".into()) };
        let message = |group: &str| StoredMessage { group_id: Some(group.into()), ..Default::default() };
        // Visited c, then (wrapping) a: a was served last.
        fairness.served(1, &order, &[message("a"), message("c"), message("n")]);
        assert_eq!(fairness.lock().queues[&1].start_after.as_deref(), Some("a"));
    }
}
