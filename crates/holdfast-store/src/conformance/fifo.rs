//! Conformance cases for FIFO queues (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fifo-queues.html>): deduplication, delivery order and the group
//! lock, receive attempts.

use holdfast_core::store::{Deduplication, Delivery, FairOrder, GroupLoad, ReceiveAttempt, Sent};

use super::*;

pub(super) const WINDOW: i64 = 300_000;
const QUEUE_SCOPE: Deduplication = Deduplication { window_ms: WINDOW, per_group: false };
const GROUP_SCOPE: Deduplication = Deduplication { window_ms: WINDOW, per_group: true };

/// A FIFO message: in `group`, deduplicated on its own id unless `dedup_as` says otherwise.
pub(super) fn fifo(id: &str, group: &str, sent_at: Millis) -> NewMessage {
    NewMessage {
        group_id: Some(group.to_owned()),
        deduplication_id: Some(format!("dedup-{id}")),
        ..message(id, sent_at)
    }
}

fn dedup_as(m: NewMessage, dedup_id: &str) -> NewMessage {
    NewMessage { deduplication_id: Some(dedup_id.to_owned()), ..m }
}

pub(super) fn fifo_params(max_messages: usize, visibility_timeout_ms: i64, now: Millis) -> ReceiveParams {
    ReceiveParams { delivery: Delivery::Fifo, ..params(max_messages, visibility_timeout_ms, now) }
}

fn with_attempt(p: ReceiveParams, id: &str) -> ReceiveParams {
    ReceiveParams { attempt: Some(ReceiveAttempt { id: id.to_owned(), window_ms: WINDOW }), ..p }
}

async fn send_with(
    store: &dyn Store,
    queue: &QueueRecord,
    messages: Vec<NewMessage>,
    dedup: Deduplication,
    now: Millis,
) -> Vec<Sent> {
    store.send_messages(queue.id, messages, Some(dedup), now).await.unwrap()
}

/// Sends with queue-scoped deduplication at `T0`; every message must be enqueued.
pub(super) async fn send_fifo(store: &dyn Store, queue: &QueueRecord, messages: Vec<NewMessage>) -> Vec<i64> {
    let outcomes = send_with(store, queue, messages, QUEUE_SCOPE, T0).await;
    outcomes
        .iter()
        .map(|o| match o {
            Sent { seq, duplicate: false, .. } => *seq,
            other => panic!("expected every message enqueued: {other:?}"),
        })
        .collect()
}

fn enqueued(outcomes: &[Sent]) -> i64 {
    match outcomes {
        [Sent { seq, duplicate: false, .. }] => *seq,
        other => panic!("expected one enqueued message: {other:?}"),
    }
}

fn duplicate_of(seq: i64, message_id: &str) -> Sent {
    Sent { message_id: message_id.to_owned(), seq, duplicate: true }
}

pub async fn dedup_reports_the_first_message(store: &dyn Store) {
    let q = create(store, "q.fifo", T0).await;
    let first = enqueued(&send_with(store, &q, vec![dedup_as(fifo("m1", "g", T0), "d")], QUEUE_SCOPE, T0).await);
    let again = send_with(store, &q, vec![dedup_as(fifo("m2", "g", T0), "d")], QUEUE_SCOPE, T0 + WINDOW - 1).await;
    assert_eq!(again, [duplicate_of(first, "m1")], "the first message's seq and id, not the duplicate's");
    assert_eq!(queue_counts(store, &q, T0).await, counts(1, 0, 0), "a duplicate enqueues nothing");
    let other = send_with(store, &q, vec![dedup_as(fifo("m3", "g", T0), "other")], QUEUE_SCOPE, T0 + 1).await;
    assert!(enqueued(&other) > first, "another id is not a duplicate");

    // The window counts from the first send (a duplicate does not extend it) and is half-open.
    let later =
        enqueued(&send_with(store, &q, vec![dedup_as(fifo("m4", "g", T0), "d")], QUEUE_SCOPE, T0 + WINDOW).await);
    assert!(later > first);
    let again = send_with(store, &q, vec![dedup_as(fifo("m5", "g", T0), "d")], QUEUE_SCOPE, T0 + WINDOW + 1).await;
    assert_eq!(again, [duplicate_of(later, "m4")], "the new message opened a new window");

    // Without deduplication (standard queues) ids mean nothing to the store.
    let plain = send(store, &q, vec![dedup_as(fifo("m6", "g", T0), "d")]).await;
    assert_eq!(plain.len(), 1);
    let got = receive(store, &q, fifo_params(10, VT, T0 + WINDOW + 2)).await;
    assert_eq!(ids(&got), ["m1", "m3", "m4", "m6"]);
}

/// A purge forgets the queue's deduplication ids, as SQS does: the same id sent right after is a
/// new message.
pub async fn purge_forgets_deduplication_ids(store: &dyn Store) {
    let q = create(store, "q.fifo", T0).await;
    let first = send_fifo(store, &q, vec![dedup_as(fifo("m1", "g", T0), "d")]).await[0];
    assert_eq!(store.purge_queue(q.id, T0 + 1, 60_000).await.unwrap(), PurgeOutcome::Purged { removed: 1 });
    let again = send_with(store, &q, vec![dedup_as(fifo("m2", "g", T0), "d")], QUEUE_SCOPE, T0 + 2).await;
    assert!(enqueued(&again) > first, "a new message, not a duplicate of the purged one");
    let got = receive(store, &q, fifo_params(10, VT, T0 + 3)).await;
    assert_eq!(ids(&got), ["m2"]);
}

pub async fn dedup_outlives_the_message(store: &dyn Store) {
    let q = create(store, "q.fifo", T0).await;
    let first = send_fifo(store, &q, vec![dedup_as(fifo("m1", "g", T0), "d")]).await[0];
    let got = receive(store, &q, fifo_params(10, VT, T0 + 1)).await;
    assert_eq!(delete(store, &q, vec![lease(&got.messages[0])]).await, [DeleteOutcome::Deleted]);
    let again = send_with(store, &q, vec![dedup_as(fifo("m2", "g", T0), "d")], QUEUE_SCOPE, T0 + 2).await;
    assert_eq!(again, [duplicate_of(first, "m1")], "deleting the message does not forget its id");
    assert_eq!(queue_counts(store, &q, T0 + 2).await, counts(0, 0, 0));
    // (A purge does forget it: `purge_forgets_deduplication_ids`.)
}

pub async fn dedup_scope_queue_or_group(store: &dyn Store) {
    // Queue scope: one id per queue, whatever the group.
    let q = create(store, "queue-scope.fifo", T0).await;
    let a = enqueued(&send_with(store, &q, vec![dedup_as(fifo("a", "g1", T0), "d")], QUEUE_SCOPE, T0).await);
    let b = send_with(store, &q, vec![dedup_as(fifo("b", "g2", T0), "d")], QUEUE_SCOPE, T0).await;
    assert_eq!(b, [duplicate_of(a, "a")]);

    // Group scope: one id per group.
    let q = create(store, "group-scope.fifo", T0).await;
    let a = enqueued(&send_with(store, &q, vec![dedup_as(fifo("a", "g1", T0), "d")], GROUP_SCOPE, T0).await);
    let b = enqueued(&send_with(store, &q, vec![dedup_as(fifo("b", "g2", T0), "d")], GROUP_SCOPE, T0).await);
    let again = send_with(
        store,
        &q,
        vec![dedup_as(fifo("c", "g1", T0), "d"), dedup_as(fifo("d", "g2", T0), "d")],
        GROUP_SCOPE,
        T0 + 1,
    )
    .await;
    assert_eq!(again, [duplicate_of(a, "a"), duplicate_of(b, "b")]);
    assert_eq!(queue_counts(store, &q, T0 + 1).await, counts(2, 0, 0));

    // Queues never share records.
    let other = create(store, "other.fifo", T0).await;
    send_fifo(store, &other, vec![dedup_as(fifo("a", "g1", T0), "d")]).await;
}

pub async fn dedup_within_one_batch(store: &dyn Store) {
    let q = create(store, "q.fifo", T0).await;
    let batch = vec![
        dedup_as(fifo("a", "g1", T0), "d1"),
        dedup_as(fifo("b", "g1", T0), "d2"),
        dedup_as(fifo("c", "g2", T0), "d1"),
    ];
    let outcomes = send_with(store, &q, batch, QUEUE_SCOPE, T0).await;
    let (Sent { seq: a, duplicate: false, .. }, Sent { seq: b, duplicate: false, .. }) = (&outcomes[0], &outcomes[1])
    else {
        panic!("{outcomes:?}")
    };
    assert!(b > a);
    assert_eq!(outcomes[2], duplicate_of(*a, "a"));

    let q = create(store, "group.fifo", T0).await;
    let batch = vec![
        dedup_as(fifo("x", "g1", T0), "d"),
        dedup_as(fifo("y", "g2", T0), "d"),
        dedup_as(fifo("z", "g1", T0), "d"),
    ];
    let outcomes = send_with(store, &q, batch, GROUP_SCOPE, T0).await;
    let Sent { seq: x, duplicate: false, .. } = outcomes[0] else { panic!("{outcomes:?}") };
    assert!(matches!(outcomes[1], Sent { duplicate: false, .. }), "{outcomes:?}");
    assert_eq!(outcomes[2], duplicate_of(x, "x"));
    let got = receive(store, &q, fifo_params(10, VT, T0)).await;
    assert_eq!(ids(&got), ["x", "y"]);
}

pub async fn fifo_order_within_group(store: &dyn Store) {
    let q = create(store, "q.fifo", T0).await;
    let batch =
        vec![fifo("a1", "a", T0), fifo("b1", "b", T0), fifo("a2", "a", T0), fifo("b2", "b", T0), fifo("a3", "a", T0)];
    send_fifo(store, &q, batch).await;
    let mut order = Vec::new();
    for i in 0..6 {
        let got = receive(store, &q, fifo_params(1, VT, T0 + i)).await;
        for m in &got.messages {
            order.push(m.message_id.clone());
            assert_eq!(delete(store, &q, vec![lease(m)]).await, [DeleteOutcome::Deleted]);
        }
    }
    assert_eq!(order, ["a1", "b1", "a2", "b2", "a3"], "groups in order of their first message, each in order");
}

pub async fn fifo_receive_takes_a_group_together(store: &dyn Store) {
    let q = create(store, "q.fifo", T0).await;
    send_fifo(store, &q, vec![fifo("a1", "a", T0), fifo("b1", "b", T0), fifo("a2", "a", T0), fifo("a3", "a", T0)])
        .await;
    let got = receive(store, &q, fifo_params(3, VT, T0)).await;
    assert_eq!(ids(&got), ["a1", "a2", "a3"], "as many of one group as fit, before the next group");
    assert_eq!(ids(&receive(store, &q, fifo_params(10, VT, T0)).await), ["b1"]);

    // When several groups fit, each is taken whole, oldest group first, and answered group by
    // group (as AWS answers), not in seq order.
    let q = create(store, "q2.fifo", T0).await;
    let batch =
        vec![fifo("a1", "a", T0), fifo("b1", "b", T0), fifo("c1", "c", T0), fifo("a2", "a", T0), fifo("b2", "b", T0)];
    send_fifo(store, &q, batch).await;
    let got = receive(store, &q, fifo_params(4, VT, T0)).await;
    assert_eq!(ids(&got), ["a1", "a2", "b1", "b2"]);
    assert_eq!(ids(&receive(store, &q, fifo_params(10, VT, T0)).await), ["c1"]);
}

pub async fn fifo_group_lock(store: &dyn Store) {
    let q = create(store, "q.fifo", T0).await;
    send_fifo(store, &q, vec![fifo("a", "g1", T0), fifo("b", "g1", T0), fifo("x", "g2", T0)]).await;
    let first = receive(store, &q, fifo_params(1, VT, T0)).await;
    assert_eq!(ids(&first), ["a"]);
    let got = receive(store, &q, fifo_params(10, VT, T0)).await;
    assert_eq!(ids(&got), ["x"], "g1 is locked while a is in flight; other groups flow");
    let got = receive(store, &q, fifo_params(10, VT, T0 + 1)).await;
    assert!(got.messages.is_empty(), "b waits behind a: {:?}", ids(&got));
    assert_eq!(got.next_visible_at, Some(T0 + VT));
    assert_eq!(queue_counts(store, &q, T0 + 1).await, counts(1, 2, 0), "b counts as visible, though locked");

    // Deleting the head releases the group.
    assert_eq!(delete(store, &q, vec![lease(&first.messages[0])]).await, [DeleteOutcome::Deleted]);
    let b = receive(store, &q, fifo_params(10, VT, T0 + 2)).await;
    assert_eq!(ids(&b), ["b"]);

    // So does the head's visibility timeout running out.
    assert_eq!(ids(&receive(store, &q, fifo_params(10, VT, T0 + VT)).await), ["x"], "x's timeout ran out first");
    assert!(receive(store, &q, fifo_params(10, VT, T0 + 1 + VT)).await.messages.is_empty());
    let again = receive(store, &q, fifo_params(10, VT, T0 + 2 + VT)).await;
    assert_eq!(ids(&again), ["b"]);
    assert_eq!(again.messages[0].receive_count, 2);
}

pub async fn fifo_change_visibility_and_group_lock(store: &dyn Store) {
    let q = create(store, "q.fifo", T0).await;
    send_fifo(store, &q, vec![fifo("a", "g", T0), fifo("b", "g", T0), fifo("c", "g", T0)]).await;
    let got = receive(store, &q, fifo_params(2, VT, T0)).await;
    assert_eq!(ids(&got), ["a", "b"]);
    let (a, b) = (&got.messages[0], &got.messages[1]);
    assert!(receive(store, &q, fifo_params(10, VT, T0)).await.messages.is_empty());

    // Making a later message visible does not release the group: its head is still in flight.
    assert_eq!(change(store, &q, b, 0, T0 + 1).await, ChangeVisibilityOutcome::Changed);
    let got = receive(store, &q, fifo_params(10, VT, T0 + 1)).await;
    assert!(got.messages.is_empty(), "{:?}", ids(&got));
    assert_eq!(got.next_visible_at, Some(T0 + VT), "the group opens when its head does");

    // Making the head visible does, and the group is delivered from its head, in order.
    assert_eq!(change(store, &q, a, 0, T0 + 2).await, ChangeVisibilityOutcome::Changed);
    let got = receive(store, &q, fifo_params(10, VT, T0 + 2)).await;
    assert_eq!(ids(&got), ["a", "b", "c"]);
    let rounds: Vec<u32> = got.messages.iter().map(|m| m.receive_count).collect();
    assert_eq!(rounds, [2, 2, 1]);
}

pub async fn fifo_redelivery_keeps_group_order(store: &dyn Store) {
    let q = create(store, "q.fifo", T0).await;
    send_fifo(store, &q, vec![fifo("a", "g", T0), fifo("b", "g", T0), fifo("c", "g", T0)]).await;
    assert_eq!(ids(&receive(store, &q, fifo_params(1, VT, T0)).await), ["a"]);
    // At T0 + VT, a has been visible for no time, b and c since T0; FIFO still starts with a.
    let got = receive(store, &q, fifo_params(2, VT, T0 + VT)).await;
    assert_eq!(ids(&got), ["a", "b"]);
    assert_eq!(got.messages[0].receive_count, 2);
}

pub async fn fifo_next_visible_at(store: &dyn Store) {
    let q = create(store, "q.fifo", T0).await;
    assert_eq!(receive(store, &q, fifo_params(10, VT, T0)).await.next_visible_at, None, "empty queue");
    let later = NewMessage { visible_at: T0 + 5_000, ..fifo("x", "g2", T0) };
    send_fifo(store, &q, vec![fifo("a", "g1", T0), fifo("b", "g1", T0), later]).await;
    let got = receive(store, &q, fifo_params(1, VT, T0)).await;
    assert_eq!(ids(&got), ["a"]);
    assert_eq!(got.next_visible_at, Some(T0 + 5_000), "the delayed group opens before a's timeout ends");
    let got = receive(store, &q, fifo_params(10, VT, T0 + 5_000)).await;
    assert_eq!(ids(&got), ["x"], "b is visible but locked");
    assert_eq!(got.next_visible_at, Some(T0 + VT), "b's group opens with its head a, not when b became visible");

    // A hidden message behind an in-flight head does not open its group: only the head counts.
    let q = create(store, "q2.fifo", T0).await;
    send_fifo(store, &q, vec![fifo("a", "g", T0), fifo("b", "g", T0)]).await;
    let got = receive(store, &q, fifo_params(2, VT, T0)).await;
    assert_eq!(change(store, &q, &got.messages[1], 1_000, T0 + 1).await, ChangeVisibilityOutcome::Changed);
    let got = receive(store, &q, fifo_params(10, VT, T0 + 2)).await;
    assert_eq!(got.next_visible_at, Some(T0 + VT), "not b's T0 + 1001");
}

pub async fn fifo_expired_heads_are_removed(store: &dyn Store) {
    let q = create(store, "q.fifo", T0).await;
    let retention = 60_000;
    send_fifo(store, &q, vec![fifo("old", "g", T0), fifo("older-group", "h", T0), fifo("new", "g", T0 + 1_000)]).await;
    let now = T0 + 500 + retention;
    let got =
        receive(store, &q, ReceiveParams { delivery: Delivery::Fifo, ..ReceiveParams::new(10, VT, retention, now) })
            .await;
    assert_eq!(ids(&got), ["new"], "expired heads are removed and their groups go on");
    assert_eq!(queue_counts(store, &q, now).await, counts(0, 1, 0));
}

pub async fn fifo_groups_queue_up_when_they_become_available(store: &dyn Store) {
    // AWS serves groups in the order they became available: a group whose lock ends (timeout
    // run out, or changed) queues behind groups that were waiting meanwhile.
    let q = create(store, "q.fifo", T0).await;
    send_fifo(store, &q, vec![fifo("g1-m1", "g1", T0), fifo("g1-m2", "g1", T0), fifo("g2-m1", "g2", T0 + 1)]).await;
    let got = receive(store, &q, fifo_params(2, VT, T0 + 2)).await;
    assert_eq!(ids(&got), ["g1-m1", "g1-m2"]);
    // Ending the head's timeout makes g1 available again, behind g2; g1-m2 is still in flight.
    assert_eq!(change(store, &q, &got.messages[0], 0, T0 + 3).await, ChangeVisibilityOutcome::Changed);
    assert_eq!(ids(&receive(store, &q, fifo_params(3, VT, T0 + 4)).await), ["g2-m1", "g1-m1"]);

    // Received with a zero timeout, groups stay available, re-queued in the order they were served.
    let q = create(store, "q2.fifo", T0).await;
    let batch = vec![
        fifo("g1-m1", "g1", T0),
        fifo("g2-m1", "g2", T0 + 1),
        fifo("g2-m2", "g2", T0 + 2),
        fifo("g3-m1", "g3", T0 + 3),
        fifo("g1-m2", "g1", T0 + 4),
    ];
    send_fifo(store, &q, batch).await;
    assert_eq!(ids(&receive(store, &q, fifo_params(3, 0, T0 + 10)).await), ["g1-m1", "g1-m2", "g2-m1"]);
    let all = receive(store, &q, fifo_params(10, 0, T0 + 11)).await;
    assert_eq!(ids(&all), ["g3-m1", "g1-m1", "g1-m2", "g2-m1", "g2-m2"]);
}

pub async fn fair_receive_serves_quiet_tenants_first(store: &dyn Store) {
    let q = create(store, "fair", T0).await;
    // A flood from tenant "big" ahead of everyone else, then the quiet tenants and one message
    // without a group.
    let flood: Vec<NewMessage> = (0..50).map(|i| fifo(&format!("big{i}"), "big", T0)).collect();
    send(store, &q, flood).await;
    send(store, &q, vec![fifo("a1", "a", T0 + 1), fifo("b1", "b", T0 + 1), fifo("a2", "a", T0 + 2)]).await;
    send(store, &q, vec![message("solo", T0 + 3)]).await;
    let fair = |max, start_after: Option<&str>, noisy: &[&str]| ReceiveParams {
        fair: Some(FairOrder {
            noisy: noisy.iter().map(|g| g.to_string()).collect(),
            start_after: start_after.map(str::to_owned),
        }),
        ..params(max, VT, T0 + 10)
    };
    // The ungrouped message first, then the quiet groups from the start; answered in seq order.
    let got = receive(store, &q, fair(3, None, &["big"])).await;
    assert_eq!(ids(&got), ["a1", "a2", "solo"]);
    // Round robin: starting after "a" reaches "b" first; the noisy tenant fills what is left.
    let got = receive(store, &q, fair(3, Some("a"), &["big"])).await;
    assert_eq!(ids(&got), ["big0", "big1", "b1"]);
    // Among noisy tenants, the order given (fewest in flight first).
    send(store, &q, vec![fifo("c1", "c", T0 + 4), fifo("c2", "c", T0 + 4)]).await;
    let got = receive(store, &q, fair(3, None, &["c", "big"])).await;
    assert_eq!(ids(&got), ["big2", "c1", "c2"]);
    // Without noisy tenants nothing changes: oldest visible first.
    let got = receive(store, &q, params(2, VT, T0 + 10)).await;
    assert_eq!(ids(&got), ["big3", "big4"]);
}

pub async fn group_load_and_counts(store: &dyn Store) {
    let q = create(store, "load", T0).await;
    send(store, &q, vec![fifo("a1", "a", T0), fifo("a2", "a", T0), fifo("b1", "b", T0), message("solo", T0)]).await;
    send(store, &q, vec![fifo("late", "b", T0 + 60_000)]).await;
    let mut delayed = fifo("delayed", "a", T0);
    delayed.visible_at = T0 + 60_000;
    send(store, &q, vec![delayed]).await;
    let got = receive(store, &q, params(3, VT, T0 + 1)).await;
    assert_eq!(ids(&got), ["a1", "a2", "b1"]);
    let load = store.group_load(q.id, T0 + 2).await.unwrap();
    assert_eq!(load, GroupLoad { in_flight: vec![("a".into(), 2), ("b".into(), 1)], total_in_flight: 3 });
    let counts = store.group_counts(q.id, vec!["a".into()], T0 + 2).await.unwrap();
    assert_eq!(counts, QueueCounts { visible: 0, in_flight: 2, delayed: 1 });
    assert_eq!(store.oldest_outside(q.id, vec!["a".into(), "b".into()], 10).await.unwrap(), Some(T0));
    assert_eq!(store.oldest_outside(q.id, vec!["a".into(), "b".into()], 2).await.unwrap(), None, "past the look");
}

pub async fn standard_delivery_ignores_groups(store: &dyn Store) {
    // Fair queues (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues.html>): standard queues accept group ids but lock nothing.
    let q = create(store, "q", T0).await;
    send(store, &q, vec![fifo("a", "g", T0), fifo("b", "g", T0)]).await;
    assert_eq!(ids(&receive(store, &q, params(1, VT, T0)).await), ["a"]);
    assert_eq!(ids(&receive(store, &q, params(1, VT, T0)).await), ["b"]);
}

pub async fn receive_attempt_retries(store: &dyn Store) {
    let q = create(store, "q.fifo", T0).await;
    send_fifo(store, &q, vec![fifo("a", "g1", T0), fifo("b", "g1", T0), fifo("c", "g2", T0)]).await;
    let first = receive(store, &q, with_attempt(fifo_params(2, VT, T0), "attempt")).await;
    assert_eq!(ids(&first), ["a", "b"]);

    // A retry returns the same messages with the same leases, leasing nothing new...
    let retry = receive(store, &q, with_attempt(fifo_params(10, VT, T0 + 10), "attempt")).await;
    assert_eq!(retry.messages, first.messages, "same seqs, leases and receive counts");
    assert_eq!(retry.dead_lettered, 0);
    assert_eq!(ids(&receive(store, &q, fifo_params(10, VT, T0 + 10)).await), ["c"], "c was not taken by the retry");
    // ...and restarts their visibility timeout.
    assert!(
        receive(store, &q, fifo_params(10, VT, T0 + VT)).await.messages.is_empty(),
        "hidden past the first timeout"
    );
    assert_eq!(
        queue_counts(store, &q, T0 + VT + 1).await,
        counts(0, 3, 0),
        "a, b (and c) in flight until T0 + 10 + VT"
    );

    // Once one of them is deleted, a retry returns the rest.
    assert_eq!(delete(store, &q, vec![lease(&first.messages[0])]).await, [DeleteOutcome::Deleted]);
    let retry = receive(store, &q, with_attempt(fifo_params(10, VT, T0 + 20), "attempt")).await;
    assert_eq!(retry.messages, first.messages[1..]);

    // After the window the id starts a new receive. g2 became available again (c's timeout ran
    // out) before g1 (b's timeout was restarted by the retry), so g2 comes first.
    let after = receive(store, &q, with_attempt(fifo_params(10, VT, T0 + WINDOW), "attempt")).await;
    assert_eq!(ids(&after), ["c", "b"]);
    assert_ne!(after.messages[1].lease, first.messages[1].lease);
    assert_eq!(after.messages[1].receive_count, 2);
}

pub async fn receive_attempt_after_redelivery_or_empty(store: &dyn Store) {
    let q = create(store, "q.fifo", T0).await;
    // An empty receive records nothing: the same id later receives what has arrived since.
    assert!(receive(store, &q, with_attempt(fifo_params(10, VT, T0), "empty")).await.messages.is_empty());
    send_fifo(store, &q, vec![fifo("m", "g", T0)]).await;
    let first = receive(store, &q, with_attempt(fifo_params(10, VT, T0 + 1), "empty")).await;
    assert_eq!(ids(&first), ["m"]);

    // The message's timeout ran out and another receive took it: its lease is no longer the
    // attempt's, so a retry within the window returns nothing and takes nothing.
    let other = receive(store, &q, fifo_params(10, VT, T0 + 1 + VT)).await;
    assert_eq!(ids(&other), ["m"]);
    let retry = receive(store, &q, with_attempt(fifo_params(10, VT, T0 + 2 + VT), "empty")).await;
    assert!(retry.messages.is_empty(), "{:?}", ids(&retry));
    assert_eq!(queue_counts(store, &q, T0 + 2 + VT).await, counts(0, 1, 0));
    // The other receive's lease is untouched.
    assert_eq!(delete(store, &q, vec![lease(&other.messages[0])]).await, [DeleteOutcome::Deleted]);

    // Attempts belong to their queue.
    let q2 = create(store, "q2.fifo", T0).await;
    send_fifo(store, &q2, vec![fifo("n", "g", T0)]).await;
    let got = receive(store, &q2, with_attempt(fifo_params(10, VT, T0 + 3 + VT), "empty")).await;
    assert_eq!(ids(&got), ["n"]);
}

pub async fn delete_queue_clears_dedup_and_attempts(store: &dyn Store) {
    let q = create(store, "q.fifo", T0).await;
    send_fifo(store, &q, vec![dedup_as(fifo("m", "g", T0), "d")]).await;
    let got = receive(store, &q, with_attempt(fifo_params(10, VT, T0), "attempt")).await;
    assert_eq!(ids(&got), ["m"]);
    store.delete_queue(q.id, T0 + 1).await.unwrap();
    assert_gone(store.send_messages(q.id, vec![fifo("x", "g", T0)], Some(QUEUE_SCOPE), T0 + 1).await);
    assert_gone(store.receive_messages(q.id, with_attempt(fifo_params(10, VT, T0 + 1), "attempt")).await);

    // The re-created queue is a new queue: none of the old records apply to it.
    let later = T0 + 1 + COOLDOWN;
    let again = create(store, "q.fifo", later).await;
    let outcome = send_with(store, &again, vec![dedup_as(fifo("n", "g", T0), "d")], QUEUE_SCOPE, later).await;
    enqueued(&outcome);
    let got = receive(store, &again, with_attempt(fifo_params(10, VT, later), "attempt")).await;
    assert_eq!(ids(&got), ["n"]);
    assert_eq!(got.messages[0].receive_count, 1);
}
