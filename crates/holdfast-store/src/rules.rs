//! The few decisions both engines make the same way, kept in one place so they cannot drift
//! apart: each engine only finds the data, these functions decide.

use std::collections::BTreeMap;

use holdfast_core::store::{ChangeVisibilityOutcome, Millis};

/// Merges SetQueueAttributes into the explicit attributes: an empty value removes the attribute
/// (so it falls back to its default), any other value sets it.
pub(crate) fn merge_attributes(current: &mut BTreeMap<String, String>, changes: BTreeMap<String, String>) {
    for (name, value) in changes {
        if value.is_empty() {
            current.remove(&name);
        } else {
            current.insert(name, value);
        }
    }
}

/// Decides ChangeMessageVisibility for a message whose lease is current. A message whose timeout
/// already ran out is `NotInFlight` whatever the new timeout (SQS answers MessageNotInflight
/// before looking at the value); the maximum counts from the receive that took the lease.
pub(crate) fn visibility_outcome(
    visible_at: Millis,
    leased_at: Millis,
    new_visible_at: Millis,
    now: Millis,
    max_inflight_ms: i64,
) -> ChangeVisibilityOutcome {
    if visible_at <= now {
        ChangeVisibilityOutcome::NotInFlight
    } else if new_visible_at > leased_at + max_inflight_ms {
        ChangeVisibilityOutcome::ExceedsMaximum
    } else {
        ChangeVisibilityOutcome::Changed
    }
}
