//! The storage conformance suite: every behaviour `Store` promises, written once against
//! `&dyn Store` so every engine is held to exactly the same tests.
//!
//! Each case is a `pub async fn(&dyn Store)` that starts from an empty store and panics on the
//! first broken promise. An engine runs them all with one line per engine:
//!
//! ```text
//! mod memory {
//!     holdfast_store::conformance_tests!(|| async { Some((Box::new(MemoryStore::new()) as Box<dyn Store>, ())) });
//! }
//! ```
//!
//! which stamps out one `#[tokio::test]` per case, named after it, so a failure names the case and
//! the engine. The closure returns the store and anything that must outlive it (a temp dir).
//!
//! Time is driven by hand: every case passes explicit `now` values and never sleeps.
//!
//! - this module: queues and standard-queue messages;
//! - `fifo`: deduplication, FIFO delivery and the group lock, receive attempts;
//! - `redrive`: dead-letter queues, message moves and move tasks.

mod fifo;
mod redrive;

pub use fifo::*;
pub use redrive::*;

use std::collections::BTreeMap;

use holdfast_core::store::{
    ChangeVisibility, ChangeVisibilityOutcome, CreateQueueOutcome, DeadLetterTarget, DeleteOutcome, ExpiryOutcome,
    Lease, Millis, NewMessage, PurgeOutcome, QueueCounts, QueueRecord, ReceiveOutcome, ReceiveParams, Store,
    StoreError, StoreResult, StoredMessage,
};

/// Stamps out one `#[tokio::test]` per conformance case. `$make` is a closure returning a future
/// of `Some((Box<dyn Store>, keep))`; `keep` is dropped after the store (e.g. the store's temp
/// dir). `None` skips the case (an engine whose database is not there; see `ScratchSchema`).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            create_get_list,
            accounts_have_their_own_names,
            regions_have_their_own_names,
            create_existing_queue,
            delete_queue_and_recreate_cooldown,
            queue_ids_never_reused,
            set_queue_attributes_merges,
            tag_and_untag,
            purge_and_cooldown,
            send_and_receive_in_order,
            receive_returns_enqueue_order,
            a_redelivered_message_goes_back_near_its_place,
            max_messages_respected,
            visibility_timeout_hides_then_reexposes,
            stale_lease_cannot_touch_redelivered_message,
            delete_outcomes,
            expired_leases_refused_when_asked,
            change_visibility_outcomes,
            delayed_messages,
            counts_follow_state_and_clock,
            next_visible_at,
            retention_expiry_on_receive,
            expire_messages,
            unknown_queue,
            queues_are_isolated,
            delete_queue_removes_messages,
            close_then_closed,
            queue_minutes_are_kept_merged_and_forgotten,
            // fifo
            dedup_reports_the_first_message,
            dedup_outlives_the_message,
            purge_forgets_deduplication_ids,
            dedup_scope_queue_or_group,
            dedup_within_one_batch,
            fifo_order_within_group,
            fifo_receive_takes_a_group_together,
            fifo_group_lock,
            fifo_change_visibility_and_group_lock,
            fifo_redelivery_keeps_group_order,
            fifo_next_visible_at,
            fifo_expired_heads_are_removed,
            fifo_groups_queue_up_when_they_become_available,
            fair_receive_serves_quiet_tenants_first,
            group_load_and_counts,
            standard_delivery_ignores_groups,
            receive_attempt_retries,
            receive_attempt_after_redelivery_or_empty,
            delete_queue_clears_dedup_and_attempts,
            // redrive
            dead_letter_on_receive,
            dead_letter_does_not_count_toward_max,
            dead_letter_fifo_resets_sent_at,
            dead_letter_target_deleted,
            dead_letter_exhausted_sweep,
            movable_and_move_messages,
            move_tasks_saved_and_listed,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let Some((store, keep)) = ($make)().await else { return };
                $crate::conformance::$case(&*store).await;
                drop(store);
                drop(keep);
            }
        )*
    };
}

/// The account the cases' queues belong to.
const ACCOUNT: &str = "000000000000";
/// Another account, for the cases about accounts.
const OTHER_ACCOUNT: &str = "111122223333";
/// The region the cases' queues live in.
const REGION: &str = "us-east-1";
/// Another region, for the cases about regions.
const OTHER_REGION: &str = "eu-west-1";

/// An arbitrary epoch-ms origin; cases add offsets to it.
const T0: Millis = 1_700_000_000_000;
const COOLDOWN: i64 = 60_000;
const RETENTION: i64 = 4 * 24 * 3_600_000;
const MAX_INFLIGHT: i64 = 12 * 3_600_000;
const VT: i64 = 30_000;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn message(id: &str, sent_at: Millis) -> NewMessage {
    delayed(id, sent_at, sent_at)
}

fn delayed(id: &str, sent_at: Millis, visible_at: Millis) -> NewMessage {
    NewMessage {
        message_id: id.to_owned(),
        body: format!("body of {id}"),
        attributes: id.as_bytes().to_vec(),
        system_attributes: Vec::new(),
        group_id: None,
        deduplication_id: None,
        sender_id: "AIDASENDER".to_owned(),
        sent_at,
        visible_at,
    }
}

fn params(max_messages: usize, visibility_timeout_ms: i64, now: Millis) -> ReceiveParams {
    ReceiveParams::new(max_messages, visibility_timeout_ms, RETENTION, now)
}

fn lease(m: &StoredMessage) -> Lease {
    Lease { seq: m.seq, lease: m.lease }
}

fn ids(outcome: &ReceiveOutcome) -> Vec<&str> {
    outcome.messages.iter().map(|m| m.message_id.as_str()).collect()
}

fn names(queues: &[QueueRecord]) -> Vec<&str> {
    queues.iter().map(|q| q.name.as_str()).collect()
}

fn counts(visible: u64, in_flight: u64, delayed: u64) -> QueueCounts {
    QueueCounts { visible, in_flight, delayed }
}

async fn create(store: &dyn Store, name: &str, now: Millis) -> QueueRecord {
    match store.create_queue(ACCOUNT, REGION, name, BTreeMap::new(), BTreeMap::new(), now, COOLDOWN).await.unwrap() {
        CreateQueueOutcome::Created(q) => q,
        other => panic!("creating {name}: {other:?}"),
    }
}

/// The one answer every per-queue call gives for a queue that no longer exists.
#[track_caller]
fn assert_gone<T: std::fmt::Debug>(result: StoreResult<T>) {
    match result {
        Err(StoreError::QueueNotFound(_)) => {}
        other => panic!("expected QueueNotFound, got {other:?}"),
    }
}

async fn send(store: &dyn Store, queue: &QueueRecord, messages: Vec<NewMessage>) -> Vec<i64> {
    store.send_messages(queue.id, messages, None, 0).await.unwrap().iter().map(|o| o.seq).collect()
}

async fn receive(store: &dyn Store, queue: &QueueRecord, p: ReceiveParams) -> ReceiveOutcome {
    store.receive_messages(queue.id, p).await.unwrap()
}

async fn delete(store: &dyn Store, queue: &QueueRecord, leases: Vec<Lease>) -> Vec<DeleteOutcome> {
    store.delete_messages(queue.id, leases, None).await.unwrap()
}

async fn change(
    store: &dyn Store,
    queue: &QueueRecord,
    m: &StoredMessage,
    timeout: i64,
    now: Millis,
) -> ChangeVisibilityOutcome {
    let change = ChangeVisibility { lease: lease(m), visibility_timeout_ms: timeout };
    let outcomes = store.change_visibility(queue.id, vec![change], now, MAX_INFLIGHT).await.unwrap();
    outcomes[0]
}

async fn queue_counts(store: &dyn Store, queue: &QueueRecord, now: Millis) -> QueueCounts {
    store.queue_counts(queue.id, now).await.unwrap()
}

pub async fn create_get_list(store: &dyn Store) {
    let attributes = map(&[("VisibilityTimeout", "60"), ("DelaySeconds", "5")]);
    let tags = map(&[("team", "core")]);
    let created =
        store.create_queue(ACCOUNT, REGION, "beta", attributes.clone(), tags.clone(), T0, COOLDOWN).await.unwrap();
    let CreateQueueOutcome::Created(beta) = created else { panic!("{created:?}") };
    assert_eq!(beta.name, "beta");
    assert_eq!(beta.attributes, attributes);
    assert_eq!(beta.tags, tags);
    assert_eq!((beta.created_at, beta.last_modified_at), (T0, T0));
    for name in ["alpha", "alpha-2", "alpha_1", "gamma", "al"] {
        create(store, name, T0 + 1).await;
    }

    assert_eq!(store.get_queue(ACCOUNT, REGION, "beta").await.unwrap(), Some(beta.clone()));
    assert_eq!(store.get_queue(ACCOUNT, REGION, "Beta").await.unwrap(), None, "names are case-sensitive");
    assert_eq!(store.get_queue(ACCOUNT, REGION, "missing").await.unwrap(), None);

    let all = store.list_queues(ACCOUNT, REGION, "", None, 1000).await.unwrap();
    assert_eq!(names(&all), ["al", "alpha", "alpha-2", "alpha_1", "beta", "gamma"]);
    assert_eq!(all[4], beta);
    let alpha = store.list_queues(ACCOUNT, REGION, "alpha", None, 1000).await.unwrap();
    assert_eq!(names(&alpha), ["alpha", "alpha-2", "alpha_1"]);
    assert!(store.list_queues(ACCOUNT, REGION, "zeta", None, 1000).await.unwrap().is_empty());
    assert!(store.list_queues(ACCOUNT, REGION, "", None, 0).await.unwrap().is_empty());

    // Paging: `after` is exclusive, `limit` caps each page, and the prefix holds across pages.
    let page = store.list_queues(ACCOUNT, REGION, "al", None, 2).await.unwrap();
    assert_eq!(names(&page), ["al", "alpha"]);
    let page = store.list_queues(ACCOUNT, REGION, "al", Some("alpha"), 2).await.unwrap();
    assert_eq!(names(&page), ["alpha-2", "alpha_1"]);
    let page = store.list_queues(ACCOUNT, REGION, "al", Some("alpha_1"), 2).await.unwrap();
    assert!(page.is_empty());
    // An `after` that sorts before the prefix does not widen the listing.
    let page = store.list_queues(ACCOUNT, REGION, "b", Some("a"), 10).await.unwrap();
    assert_eq!(names(&page), ["beta"]);
    let page = store.list_queues(ACCOUNT, REGION, "", Some("beta"), 10).await.unwrap();
    assert_eq!(names(&page), ["gamma"]);
}

/// Two accounts may each have a queue of the same name; each sees only its own in lookups and
/// listings, and deleting one leaves the other (and its cooldown is its own).
pub async fn accounts_have_their_own_names(store: &dyn Store) {
    let mine = create(store, "orders", T0).await;
    create(store, "leads", T0).await;
    let created = store
        .create_queue(OTHER_ACCOUNT, REGION, "orders", BTreeMap::new(), BTreeMap::new(), T0, COOLDOWN)
        .await
        .unwrap();
    let CreateQueueOutcome::Created(theirs) = created else { panic!("{created:?}") };
    assert_ne!(mine.id, theirs.id);
    assert_eq!((theirs.account_id.as_str(), theirs.name.as_str()), (OTHER_ACCOUNT, "orders"));
    assert_eq!(store.get_queue(OTHER_ACCOUNT, REGION, "orders").await.unwrap(), Some(theirs.clone()));
    assert_eq!(store.get_queue(ACCOUNT, REGION, "orders").await.unwrap(), Some(mine.clone()));
    assert_eq!(store.get_queue(OTHER_ACCOUNT, REGION, "leads").await.unwrap(), None);
    assert_eq!(names(&store.list_queues(OTHER_ACCOUNT, REGION, "", None, 10).await.unwrap()), ["orders"]);
    assert_eq!(names(&store.list_queues(ACCOUNT, REGION, "", None, 10).await.unwrap()), ["leads", "orders"]);
    assert_eq!(store.list_namespaces().await.unwrap(), [namespace(ACCOUNT, REGION), namespace(OTHER_ACCOUNT, REGION)]);

    store.delete_queue(theirs.id, T0 + 1).await.unwrap();
    assert_eq!(
        store.get_queue(ACCOUNT, REGION, "orders").await.unwrap(),
        Some(mine),
        "the other account's queue stays"
    );
    let again = store
        .create_queue(OTHER_ACCOUNT, REGION, "orders", BTreeMap::new(), BTreeMap::new(), T0 + 2, COOLDOWN)
        .await
        .unwrap();
    assert_eq!(again, CreateQueueOutcome::DeletedRecently);
    assert_eq!(store.list_namespaces().await.unwrap(), [namespace(ACCOUNT, REGION)]);
}

fn namespace(account: &str, region: &str) -> (String, String) {
    (account.to_owned(), region.to_owned())
}

pub async fn regions_have_their_own_names(store: &dyn Store) {
    // As on AWS, `orders` in two regions of one account is two queues.
    let create = |region: &'static str, at: Millis| {
        store.create_queue(ACCOUNT, region, "orders", BTreeMap::new(), BTreeMap::new(), at, COOLDOWN)
    };
    let CreateQueueOutcome::Created(home) = create(REGION, T0).await.unwrap() else { panic!() };
    let CreateQueueOutcome::Created(away) = create(OTHER_REGION, T0).await.unwrap() else { panic!() };
    assert_ne!(home.id, away.id);
    assert_eq!(away.region, OTHER_REGION);
    assert_eq!(store.get_queue(ACCOUNT, OTHER_REGION, "orders").await.unwrap(), Some(away.clone()));
    assert_eq!(store.get_queue(ACCOUNT, "ap-south-1", "orders").await.unwrap(), None);
    assert_eq!(names(&store.list_queues(ACCOUNT, OTHER_REGION, "", None, 10).await.unwrap()), ["orders"]);
    assert_eq!(store.list_namespaces().await.unwrap(), [namespace(ACCOUNT, OTHER_REGION), namespace(ACCOUNT, REGION)]);
    // Deleting one starts the cooldown of that region's name only.
    store.delete_queue(away.id, T0 + 1).await.unwrap();
    assert_eq!(create(OTHER_REGION, T0 + 2).await.unwrap(), CreateQueueOutcome::DeletedRecently);
    assert_eq!(create(REGION, T0 + 2).await.unwrap(), CreateQueueOutcome::Exists(home));
}

pub async fn create_existing_queue(store: &dyn Store) {
    let attributes = map(&[("VisibilityTimeout", "60")]);
    let created = store.create_queue(ACCOUNT, REGION, "q", attributes, map(&[("a", "1")]), T0, COOLDOWN).await.unwrap();
    let CreateQueueOutcome::Created(original) = created else { panic!("{created:?}") };
    let again = store
        .create_queue(ACCOUNT, REGION, "q", map(&[("VisibilityTimeout", "10")]), BTreeMap::new(), T0 + 5, COOLDOWN)
        .await
        .unwrap();
    assert_eq!(again, CreateQueueOutcome::Exists(original.clone()));
    assert_eq!(
        store.get_queue(ACCOUNT, REGION, "q").await.unwrap(),
        Some(original),
        "an existing queue is left unchanged"
    );
    assert_eq!(store.list_queues(ACCOUNT, REGION, "", None, 10).await.unwrap().len(), 1);
}

pub async fn delete_queue_and_recreate_cooldown(store: &dyn Store) {
    let q = create(store, "q", T0).await;
    create(store, "other", T0).await;
    let deleted_at = T0 + 1_000;
    store.delete_queue(q.id, deleted_at).await.unwrap();
    assert_gone(store.delete_queue(q.id, deleted_at).await);
    assert_eq!(store.get_queue(ACCOUNT, REGION, "q").await.unwrap(), None);
    assert_eq!(names(&store.list_queues(ACCOUNT, REGION, "", None, 10).await.unwrap()), ["other"]);

    for now in [deleted_at, deleted_at + COOLDOWN - 1] {
        let outcome =
            store.create_queue(ACCOUNT, REGION, "q", BTreeMap::new(), BTreeMap::new(), now, COOLDOWN).await.unwrap();
        assert_eq!(outcome, CreateQueueOutcome::DeletedRecently, "at +{}", now - deleted_at);
    }
    assert_eq!(store.get_queue(ACCOUNT, REGION, "q").await.unwrap(), None);
    // Other names are not affected by the cooldown.
    create(store, "q2", deleted_at + 1).await;

    let recreated = create(store, "q", deleted_at + COOLDOWN).await;
    assert_ne!(recreated.id, q.id, "a re-created queue is a new queue");
    assert_eq!(recreated.created_at, deleted_at + COOLDOWN);
    assert_eq!(store.get_queue(ACCOUNT, REGION, "q").await.unwrap(), Some(recreated.clone()));
    // The old id stays dead.
    assert_gone(store.delete_queue(q.id, deleted_at + COOLDOWN).await);
    assert_gone(store.send_messages(q.id, vec![message("m", T0)], None, 0).await);
    assert!(store.get_queue(ACCOUNT, REGION, "other").await.unwrap().is_some());
}

pub async fn queue_ids_never_reused(store: &dyn Store) {
    let a = create(store, "a", T0).await;
    let b = create(store, "b", T0).await;
    assert!(b.id > a.id);
    store.delete_queue(b.id, T0).await.unwrap();
    let c = create(store, "c", T0).await;
    assert!(c.id > b.id, "the id of the deleted newest queue is not handed out again");
}

pub async fn set_queue_attributes_merges(store: &dyn Store) {
    let attributes = map(&[("VisibilityTimeout", "60"), ("DelaySeconds", "5")]);
    let CreateQueueOutcome::Created(q) =
        store.create_queue(ACCOUNT, REGION, "q", attributes, BTreeMap::new(), T0, COOLDOWN).await.unwrap()
    else {
        panic!("not created")
    };
    let changes = map(&[("DelaySeconds", ""), ("MessageRetentionPeriod", "60"), ("VisibilityTimeout", "10")]);
    store.set_queue_attributes(q.id, changes, T0 + 7).await.unwrap();
    let after = store.get_queue(ACCOUNT, REGION, "q").await.unwrap().unwrap();
    assert_eq!(after.attributes, map(&[("MessageRetentionPeriod", "60"), ("VisibilityTimeout", "10")]));
    assert_eq!(after.last_modified_at, T0 + 7);
    assert_eq!(after.created_at, T0);
    // Removing an attribute that is not set is harmless.
    store.set_queue_attributes(q.id, map(&[("Policy", "")]), T0 + 8).await.unwrap();
    assert_eq!(store.get_queue(ACCOUNT, REGION, "q").await.unwrap().unwrap().attributes.len(), 2);
    assert_gone(store.set_queue_attributes(q.id + 1_000, map(&[("DelaySeconds", "1")]), T0).await);
}

pub async fn tag_and_untag(store: &dyn Store) {
    let CreateQueueOutcome::Created(q) = store
        .create_queue(ACCOUNT, REGION, "q", BTreeMap::new(), map(&[("a", "1"), ("b", "2")]), T0, COOLDOWN)
        .await
        .unwrap()
    else {
        panic!("not created")
    };
    store.tag_queue(q.id, map(&[("b", "20"), ("c", "")])).await.unwrap();
    assert_eq!(
        store.get_queue(ACCOUNT, REGION, "q").await.unwrap().unwrap().tags,
        map(&[("a", "1"), ("b", "20"), ("c", "")])
    );
    store.untag_queue(q.id, vec!["a".into(), "missing".into()]).await.unwrap();
    let after = store.get_queue(ACCOUNT, REGION, "q").await.unwrap().unwrap();
    assert_eq!(after.tags, map(&[("b", "20"), ("c", "")]));
    assert!(after.attributes.is_empty(), "tags do not leak into attributes");
    assert_gone(store.tag_queue(q.id + 1_000, map(&[("a", "1")])).await);
    assert_gone(store.untag_queue(q.id + 1_000, vec!["a".into()]).await);
}

pub async fn purge_and_cooldown(store: &dyn Store) {
    let q = create(store, "q", T0).await;
    send(store, &q, vec![message("a", T0), message("b", T0), delayed("c", T0, T0 + 60_000)]).await;
    let got = receive(store, &q, params(1, VT, T0)).await;
    assert_eq!(ids(&got), ["a"]);
    assert_eq!(queue_counts(store, &q, T0).await, counts(1, 1, 1));

    let purged_at = T0 + 1;
    let outcome = store.purge_queue(q.id, purged_at, COOLDOWN).await.unwrap();
    assert_eq!(outcome, PurgeOutcome::Purged { removed: 3 }, "visible, in-flight and delayed all go");
    assert_eq!(queue_counts(store, &q, purged_at).await, counts(0, 0, 0));
    assert!(receive(store, &q, params(10, VT, T0 + 120_000)).await.messages.is_empty());
    assert_eq!(delete(store, &q, vec![lease(&got.messages[0])]).await, [DeleteOutcome::NotCurrent]);

    send(store, &q, vec![message("d", purged_at + 10)]).await;
    let outcome = store.purge_queue(q.id, purged_at + COOLDOWN - 1, COOLDOWN).await.unwrap();
    assert_eq!(outcome, PurgeOutcome::InProgress);
    assert_eq!(queue_counts(store, &q, purged_at + 20).await, counts(1, 0, 0), "a refused purge removes nothing");

    let outcome = store.purge_queue(q.id, purged_at + COOLDOWN, COOLDOWN).await.unwrap();
    assert_eq!(outcome, PurgeOutcome::Purged { removed: 1 });
    let outcome = store.purge_queue(q.id, purged_at + COOLDOWN + 1, COOLDOWN).await.unwrap();
    assert_eq!(outcome, PurgeOutcome::InProgress, "the cooldown restarts at each purge");
    assert_gone(store.purge_queue(q.id + 1_000, T0, COOLDOWN).await);
}

pub async fn send_and_receive_in_order(store: &dyn Store) {
    let q = create(store, "q", T0).await;
    assert_eq!(send(store, &q, Vec::new()).await, Vec::<i64>::new());
    let mut first = message("m1", T0);
    first.system_attributes = b"trace".to_vec();
    first.group_id = Some("g".into());
    first.deduplication_id = Some("d".into());
    let seqs = send(store, &q, vec![first.clone(), message("m2", T0), message("m3", T0)]).await;
    assert_eq!(seqs.len(), 3);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seqs grow in send order: {seqs:?}");
    let more = send(store, &q, vec![message("m4", T0 + 1), message("m5", T0 + 1)]).await;
    assert!(more[0] > seqs[2]);

    let now = T0 + 10;
    let got = receive(store, &q, params(10, VT, now)).await;
    assert_eq!(ids(&got), ["m1", "m2", "m3", "m4", "m5"]);
    let m = &got.messages[0];
    assert_eq!(m.seq, seqs[0]);
    assert_eq!(m.body, first.body);
    assert_eq!(m.attributes, first.attributes);
    assert_eq!(m.system_attributes, b"trace");
    assert_eq!(m.group_id.as_deref(), Some("g"));
    assert_eq!(m.deduplication_id.as_deref(), Some("d"));
    assert_eq!(m.sender_id, first.sender_id);
    assert_eq!(m.sent_at, T0);
    assert_eq!(m.receive_count, 1);
    assert_eq!(m.first_received_at, Some(now));
    assert_eq!(got.messages[4].sent_at, T0 + 1);
    assert_eq!(got.messages[1].group_id, None);
    let leases: std::collections::HashSet<u64> = got.messages.iter().map(|m| m.lease).collect();
    assert_eq!(leases.len(), 5, "each message gets its own lease");
    assert_eq!(got.next_visible_at, Some(now + VT));
}

/// Receive picks by `(visible_at, seq)` but answers in enqueue order.
pub async fn receive_returns_enqueue_order(store: &dyn Store) {
    let q = create(store, "q", T0).await;
    send(store, &q, vec![delayed("late", T0, T0 + 100), message("early", T0 + 1)]).await;
    // At +100 both are visible: the older one goes first, though it became visible later.
    let got = receive(store, &q, params(1, VT, T0 + 100)).await;
    assert_eq!(ids(&got), ["late"]);
    // When both are taken they come back in enqueue order.
    let q2 = create(store, "q2", T0).await;
    send(store, &q2, vec![delayed("late", T0, T0 + 100), message("early", T0 + 1)]).await;
    let got = receive(store, &q2, params(10, VT, T0 + 100)).await;
    assert_eq!(ids(&got), ["late", "early"]);
}

pub async fn a_redelivered_message_goes_back_near_its_place(store: &dyn Store) {
    // m0 is received and its timeout runs out while m1..m5 arrive: it competes with them on its
    // age, not behind them all.
    let q = create(store, "q", T0).await;
    send(store, &q, vec![message("m0", T0)]).await;
    assert_eq!(ids(&receive(store, &q, params(1, VT, T0)).await), ["m0"]);
    let later: Vec<NewMessage> = (1..=5).map(|i| message(&format!("m{i}"), T0 + i)).collect();
    send(store, &q, later).await;
    assert_eq!(ids(&receive(store, &q, params(1, VT, T0 + VT)).await), ["m0"]);
    // The look is bounded: behind more than max + STANDARD_LOOKAHEAD visible messages, a
    // redelivered message waits its turn in visibility order.
    let q = create(store, "q2", T0).await;
    send(store, &q, vec![message("old", T0)]).await;
    assert_eq!(ids(&receive(store, &q, params(1, VT, T0)).await), ["old"]);
    let many = holdfast_core::store::STANDARD_LOOKAHEAD as i64 + 1;
    let later: Vec<NewMessage> = (1..=many).map(|i| message(&format!("n{i}"), T0 + i)).collect();
    send(store, &q, later).await;
    assert_eq!(ids(&receive(store, &q, params(1, VT, T0 + VT)).await), ["n1"]);
}

pub async fn max_messages_respected(store: &dyn Store) {
    let q = create(store, "q", T0).await;
    let batch = (1..=5).map(|i| message(&format!("m{i}"), T0)).collect();
    send(store, &q, batch).await;
    assert_eq!(ids(&receive(store, &q, params(2, VT, T0)).await), ["m1", "m2"]);
    assert_eq!(ids(&receive(store, &q, params(2, VT, T0)).await), ["m3", "m4"]);
    assert_eq!(ids(&receive(store, &q, params(2, VT, T0)).await), ["m5"]);
    assert!(receive(store, &q, params(2, VT, T0)).await.messages.is_empty());
    assert!(receive(store, &q, params(0, VT, T0 + VT)).await.messages.is_empty());
    assert_eq!(queue_counts(store, &q, T0 + VT).await, counts(5, 0, 0), "max 0 leases nothing");
}

pub async fn visibility_timeout_hides_then_reexposes(store: &dyn Store) {
    let q = create(store, "q", T0).await;
    send(store, &q, vec![message("m", T0)]).await;
    let first = receive(store, &q, params(10, VT, T0 + 5)).await;
    assert_eq!(ids(&first), ["m"]);
    let hidden = receive(store, &q, params(10, VT, T0 + 5 + VT - 1)).await;
    assert!(hidden.messages.is_empty(), "hidden until the timeout");
    assert_eq!(hidden.next_visible_at, Some(T0 + 5 + VT));

    let second = receive(store, &q, params(10, 1_000, T0 + 5 + VT)).await;
    assert_eq!(ids(&second), ["m"], "visible again exactly at the timeout");
    let (a, b) = (&first.messages[0], &second.messages[0]);
    assert_eq!(b.seq, a.seq);
    assert_eq!(b.receive_count, 2);
    assert_eq!(b.first_received_at, Some(T0 + 5), "first_received_at is kept");
    assert_ne!(b.lease, a.lease, "each receive draws a new lease");

    // A zero timeout leaves the message visible at once.
    let third = receive(store, &q, params(10, 0, T0 + 5 + VT + 1_000)).await;
    assert_eq!(third.messages[0].receive_count, 3);
    let fourth = receive(store, &q, params(10, 0, T0 + 5 + VT + 1_000)).await;
    assert_eq!(fourth.messages[0].receive_count, 4);
}

pub async fn stale_lease_cannot_touch_redelivered_message(store: &dyn Store) {
    let q = create(store, "q", T0).await;
    send(store, &q, vec![message("m", T0)]).await;
    let old = receive(store, &q, params(1, VT, T0)).await.messages.remove(0);
    let new = receive(store, &q, params(1, VT, T0 + VT)).await.messages.remove(0);
    assert_eq!(new.seq, old.seq);

    assert_eq!(delete(store, &q, vec![lease(&old)]).await, [DeleteOutcome::NotCurrent]);
    let refused = store.delete_messages(q.id, vec![lease(&old)], Some(T0 + VT + 1)).await.unwrap();
    assert_eq!(refused, [DeleteOutcome::Expired], "refusing expired leases, a stale one is refused");
    assert_eq!(change(store, &q, &old, 0, T0 + VT + 1).await, ChangeVisibilityOutcome::Stale);
    // Untouched: still in flight under the new lease, which still works.
    assert_eq!(queue_counts(store, &q, T0 + VT + 1).await, counts(0, 1, 0));
    assert!(receive(store, &q, params(1, VT, T0 + VT + 1)).await.messages.is_empty());
    assert_eq!(change(store, &q, &new, 100, T0 + VT + 1).await, ChangeVisibilityOutcome::Changed);
    assert_eq!(delete(store, &q, vec![lease(&new)]).await, [DeleteOutcome::Deleted]);
    assert_eq!(queue_counts(store, &q, T0 + VT + 1).await, counts(0, 0, 0));
}

pub async fn delete_outcomes(store: &dyn Store) {
    let q = create(store, "q", T0).await;
    send(store, &q, vec![message("a", T0), message("b", T0), message("c", T0), message("never", T0)]).await;
    let got = receive(store, &q, params(3, VT, T0)).await;
    let [a, b, c] = [&got.messages[0], &got.messages[1], &got.messages[2]];

    let forged = Lease { seq: a.seq, lease: a.lease.wrapping_add(1) };
    let unknown = Lease { seq: c.seq + 1_000, lease: 7 };
    let outcomes = delete(store, &q, vec![lease(a), forged, lease(a), unknown, lease(b)]).await;
    use DeleteOutcome::{Deleted, NotCurrent};
    assert_eq!(outcomes, [Deleted, NotCurrent, NotCurrent, NotCurrent, Deleted], "one outcome per input, in order");

    // A never-received message matches no lease, not even 0.
    let never_seq = c.seq + 1;
    assert_eq!(delete(store, &q, vec![Lease { seq: never_seq, lease: 0 }]).await, [NotCurrent]);
    // The current lease deletes whatever the visibility state (delete takes no time).
    assert_eq!(delete(store, &q, vec![lease(c)]).await, [Deleted]);
    assert_eq!(delete(store, &q, Vec::new()).await, Vec::<DeleteOutcome>::new());
    let left = receive(store, &q, params(10, VT, T0 + 2 * VT)).await;
    assert_eq!(ids(&left), ["never"]);
}

pub async fn expired_leases_refused_when_asked(store: &dyn Store) {
    let q = create(store, "q", T0).await;
    send(store, &q, vec![message("a", T0), message("b", T0)]).await;
    let got = receive(store, &q, params(2, VT, T0)).await;
    let [a, b] = [&got.messages[0], &got.messages[1]];
    // Once a's timeout has run out, a delete refusing expired leases keeps it; b is still held.
    let now = T0 + VT;
    let outcomes = store.delete_messages(q.id, vec![lease(a), lease(b)], Some(now - 1)).await.unwrap();
    assert_eq!(outcomes, [DeleteOutcome::Deleted, DeleteOutcome::Deleted]);
    send(store, &q, vec![message("c", now)]).await;
    let c = receive(store, &q, params(1, VT, now)).await.messages.remove(0);
    let refused = store.delete_messages(q.id, vec![lease(&c)], Some(now + VT)).await.unwrap();
    assert_eq!(refused, [DeleteOutcome::Expired]);
    assert_eq!(queue_counts(store, &q, now + VT).await, counts(1, 0, 0), "an expired lease deletes nothing");
    // Without the rule (standard queues) the same lease still deletes, as nobody received c since.
    assert_eq!(delete(store, &q, vec![lease(&c)]).await, [DeleteOutcome::Deleted]);
    let gone = store.delete_messages(q.id, vec![lease(&c)], Some(now + VT)).await.unwrap();
    assert_eq!(gone, [DeleteOutcome::NotCurrent], "a message already gone is not an error");
}

pub async fn change_visibility_outcomes(store: &dyn Store) {
    use ChangeVisibilityOutcome::{Changed, ExceedsMaximum, Gone, Stale};
    let q = create(store, "q", T0).await;
    send(store, &q, vec![message("a", T0), message("b", T0), message("c", T0)]).await;
    let got = receive(store, &q, params(3, VT, T0)).await;
    let [a, b, c] = [&got.messages[0], &got.messages[1], &got.messages[2]];

    // The timeout may reach exactly max_inflight after the receive, not beyond.
    let now = T0 + 1_000;
    assert_eq!(change(store, &q, c, MAX_INFLIGHT - 1_000 + 1, now).await, ExceedsMaximum);
    assert_eq!(queue_counts(store, &q, now).await, counts(0, 3, 0), "a refused change leaves the message as it was");
    assert_eq!(change(store, &q, c, MAX_INFLIGHT - 1_000, now).await, Changed);

    // Zero makes the message visible at once; until someone receives it again, its lease can
    // still hide it again.
    assert_eq!(change(store, &q, b, 0, T0 + 1).await, Changed);
    assert_eq!(queue_counts(store, &q, T0 + 1).await, counts(1, 2, 0));
    assert_eq!(change(store, &q, b, 10, T0 + 1).await, Changed);
    assert_eq!(queue_counts(store, &q, T0 + 1).await, counts(0, 3, 0));
    assert_eq!(change(store, &q, b, 0, T0 + 2).await, Changed);

    // Extending: hidden until now + the new timeout, counted from the call, not the receive.
    assert_eq!(change(store, &q, a, 60_000, T0 + 10_000).await, Changed);
    let early = receive(store, &q, params(10, VT, T0 + 69_999)).await;
    assert_eq!(ids(&early), ["b"], "a is hidden by its change, c by its long one");
    let late = receive(store, &q, params(10, VT, T0 + 70_000)).await;
    assert_eq!(ids(&late), ["a"]);
    let a2 = &late.messages[0];

    // After its timeout ran out (visible again, not re-received) a lease is still current, but
    // the maximum still counts from its receive.
    assert_eq!(change(store, &q, c, 10, T0 + MAX_INFLIGHT).await, ExceedsMaximum);

    // Deleted: Gone; received again since: Stale. One outcome per input, in order.
    assert_eq!(delete(store, &q, vec![lease(c)]).await, [DeleteOutcome::Deleted]);
    let changes = vec![
        ChangeVisibility { lease: lease(c), visibility_timeout_ms: 10 },
        ChangeVisibility { lease: lease(a), visibility_timeout_ms: 10 },
        ChangeVisibility { lease: lease(a2), visibility_timeout_ms: 10 },
    ];
    let outcomes = store.change_visibility(q.id, changes, T0 + 70_001, MAX_INFLIGHT).await.unwrap();
    assert_eq!(outcomes, [Gone, Stale, Changed]);
    let empty = store.change_visibility(q.id, Vec::new(), T0, MAX_INFLIGHT).await.unwrap();
    assert_eq!(empty, Vec::new());
}

pub async fn delayed_messages(store: &dyn Store) {
    let q = create(store, "q", T0).await;
    send(store, &q, vec![delayed("d", T0, T0 + 10_000), message("now", T0)]).await;
    let got = receive(store, &q, params(10, VT, T0)).await;
    assert_eq!(ids(&got), ["now"]);
    assert_eq!(got.next_visible_at, Some(T0 + 10_000));
    assert_eq!(queue_counts(store, &q, T0).await, counts(0, 1, 1));
    assert!(receive(store, &q, params(10, VT, T0 + 9_999)).await.messages.is_empty());
    let got = receive(store, &q, params(10, VT, T0 + 10_000)).await;
    assert_eq!(ids(&got), ["d"]);
    assert_eq!(got.messages[0].receive_count, 1);
    assert_eq!(queue_counts(store, &q, T0 + 10_000).await, counts(0, 2, 0), "once received, no longer delayed");
}

pub async fn counts_follow_state_and_clock(store: &dyn Store) {
    let q = create(store, "q", T0).await;
    assert_eq!(queue_counts(store, &q, T0).await, counts(0, 0, 0));
    let batch = vec![message("a", T0), message("b", T0), message("c", T0), delayed("d", T0, T0 + 5_000)];
    send(store, &q, batch).await;
    assert_eq!(queue_counts(store, &q, T0).await, counts(3, 0, 1));
    let got = receive(store, &q, params(1, VT, T0)).await;
    assert_eq!(queue_counts(store, &q, T0).await, counts(2, 1, 1));
    // Counts follow the clock: the delay ends, then the visibility timeout.
    assert_eq!(queue_counts(store, &q, T0 + 5_000).await, counts(3, 1, 0));
    assert_eq!(queue_counts(store, &q, T0 + VT).await, counts(4, 0, 0));
    assert_eq!(delete(store, &q, vec![lease(&got.messages[0])]).await, [DeleteOutcome::Deleted]);
    assert_eq!(queue_counts(store, &q, T0).await, counts(2, 0, 1));
    assert_gone(store.queue_counts(q.id + 1_000, T0).await);
}

pub async fn next_visible_at(store: &dyn Store) {
    let q = create(store, "q", T0).await;
    assert_eq!(receive(store, &q, params(10, VT, T0)).await.next_visible_at, None, "empty queue");
    send(store, &q, vec![message("a", T0)]).await;
    assert_eq!(receive(store, &q, params(10, VT, T0)).await.next_visible_at, Some(T0 + VT));
    send(store, &q, vec![delayed("b", T0, T0 + 1_000)]).await;
    let got = receive(store, &q, params(10, VT, T0 + 1)).await;
    assert!(got.messages.is_empty());
    assert_eq!(got.next_visible_at, Some(T0 + 1_000), "the earliest of delayed and in-flight");
    let got = receive(store, &q, params(10, 0, T0 + 1_000)).await;
    assert_eq!(ids(&got), ["b"]);
    assert_eq!(got.next_visible_at, Some(T0 + VT), "a message leased with timeout 0 is visible, not pending");
}

pub async fn retention_expiry_on_receive(store: &dyn Store) {
    let q = create(store, "q", T0).await;
    let retention = 60_000;
    send(store, &q, vec![message("old", T0), message("edge", T0 + 500), message("new", T0 + 1_000)]).await;
    // At T0 + 500 + retention: "old" was sent before now - retention, "edge" exactly at it.
    let now = T0 + 500 + retention;
    let p = ReceiveParams::new(10, VT, retention, now);
    let got = receive(store, &q, p).await;
    assert_eq!(ids(&got), ["edge", "new"]);
    assert_eq!(queue_counts(store, &q, now).await, counts(0, 2, 0), "the expired message is gone");

    // Expiry is by age: messages that were received expire too, when receive meets them again.
    let later = T0 + 1_000 + retention + VT;
    let p = ReceiveParams::new(10, VT, retention, later);
    let got = receive(store, &q, p).await;
    assert!(got.messages.is_empty(), "both expired by {later}: {:?}", ids(&got));
    assert_eq!(queue_counts(store, &q, later).await, counts(0, 0, 0));
}

pub async fn expire_messages(store: &dyn Store) {
    let short = create(store, "short", T0).await;
    let long = create(store, "long", T0).await;
    let untouched = create(store, "untouched", T0).await;
    for q in [&short, &long, &untouched] {
        send(store, q, vec![message("a", T0), message("b", T0 + 1_000), delayed("c", T0 + 2_000, T0 + 900_000)]).await;
    }
    receive(store, &short, params(1, VT, T0 + 1)).await;
    let now = T0 + 61_500;
    let expired = store.expire_messages(short.id, now - 60_000).await.unwrap();
    assert_eq!(expired.removed, 2, "short's in-flight a and visible b are expired, delayed c is not");
    assert_eq!(expired.oldest_sent_at, Some(T0 + 2_000), "c is the oldest left");
    let kept = store.expire_messages(long.id, now - 3_600_000).await.unwrap();
    assert_eq!(kept, ExpiryOutcome { removed: 0, oldest_sent_at: Some(T0) });
    assert_eq!(queue_counts(store, &short, now).await, counts(0, 0, 1));
    assert_eq!(queue_counts(store, &long, now).await, counts(2, 0, 1));
    assert_eq!(queue_counts(store, &untouched, now).await, counts(2, 0, 1));
    assert_eq!(store.expire_messages(short.id, now - 60_000).await.unwrap().removed, 0);
    // The last message gone, there is nothing left to expire.
    let emptied = store.expire_messages(long.id, T0 + 2_001).await.unwrap();
    assert_eq!(emptied, ExpiryOutcome { removed: 3, oldest_sent_at: None });
    // The queue goes on working after expiry.
    let got = receive(store, &short, params(10, VT, T0 + 900_000)).await;
    assert_eq!(ids(&got), ["c"]);
}

pub async fn unknown_queue(store: &dyn Store) {
    let gone = create(store, "gone", T0).await;
    send(store, &gone, vec![message("m", T0)]).await;
    let m = receive(store, &gone, params(1, VT, T0)).await.messages.remove(0);
    store.delete_queue(gone.id, T0).await.unwrap();
    let fresh_id = create(store, "other", T0).await.id;
    for id in [gone.id, gone.id + 1_000 + fresh_id] {
        assert_gone(store.send_messages(id, vec![message("x", T0)], None, 0).await);
        assert_gone(store.receive_messages(id, params(10, VT, T0 + VT)).await);
        assert_gone(store.delete_messages(id, vec![lease(&m)], None).await);
        let change = ChangeVisibility { lease: lease(&m), visibility_timeout_ms: 0 };
        assert_gone(store.change_visibility(id, vec![change], T0, MAX_INFLIGHT).await);
        assert_gone(store.purge_queue(id, T0, COOLDOWN).await);
        assert_gone(store.set_queue_attributes(id, map(&[("DelaySeconds", "1")]), T0).await);
        assert_gone(store.tag_queue(id, map(&[("a", "1")])).await);
        assert_gone(store.untag_queue(id, vec!["a".into()]).await);
        assert_gone(store.delete_queue(id, T0).await);
        assert_gone(store.queue_counts(id, T0).await);
        assert_gone(store.expire_messages(id, T0 + VT).await);
        assert_gone(store.replace_queue_attribute(id, "Policy", None, "{}", T0).await);
        let target =
            DeadLetterTarget { queue: fresh_id, max_receive_count: 1, source_arn: String::new(), reset_sent_at: false };
        assert_gone(store.dead_letter_exhausted(id, target, T0, 10).await);
    }
    // A send to a missing queue enqueued nothing anywhere.
    let fresh = create(store, "fresh", T0).await;
    assert!(receive(store, &fresh, params(10, VT, T0 + VT)).await.messages.is_empty());
}

pub async fn queues_are_isolated(store: &dyn Store) {
    let a = create(store, "a", T0).await;
    let b = create(store, "b", T0).await;
    send(store, &a, vec![message("a1", T0), message("a2", T0)]).await;
    send(store, &b, vec![message("b1", T0)]).await;
    let from_a = receive(store, &a, params(10, VT, T0)).await;
    assert_eq!(ids(&from_a), ["a1", "a2"]);
    assert_eq!(queue_counts(store, &b, T0).await, counts(1, 0, 0));
    let a1 = &from_a.messages[0];

    // A lease of queue a, presented to queue b, touches nothing.
    assert_eq!(delete(store, &b, vec![lease(a1)]).await, [DeleteOutcome::NotCurrent]);
    let change = ChangeVisibility { lease: lease(a1), visibility_timeout_ms: 0 };
    let outcomes = store.change_visibility(b.id, vec![change], T0 + 1, MAX_INFLIGHT).await.unwrap();
    assert_eq!(outcomes, [ChangeVisibilityOutcome::Gone]);
    assert_eq!(queue_counts(store, &a, T0 + 1).await, counts(0, 2, 0));

    let from_b = receive(store, &b, params(10, VT, T0)).await;
    assert_eq!(ids(&from_b), ["b1"]);
    assert_eq!(store.purge_queue(a.id, T0, COOLDOWN).await.unwrap(), PurgeOutcome::Purged { removed: 2 });
    assert_eq!(queue_counts(store, &b, T0).await, counts(0, 1, 0));
    store.delete_queue(b.id, T0).await.unwrap();
    send(store, &a, vec![message("a3", T0)]).await;
    assert_eq!(ids(&receive(store, &a, params(10, VT, T0)).await), ["a3"]);
}

pub async fn delete_queue_removes_messages(store: &dyn Store) {
    let q = create(store, "q", T0).await;
    send(store, &q, vec![message("a", T0), message("b", T0)]).await;
    let got = receive(store, &q, params(1, VT, T0)).await;
    store.delete_queue(q.id, T0).await.unwrap();
    let again = create(store, "q", T0 + COOLDOWN).await;
    assert_eq!(queue_counts(store, &again, T0 + COOLDOWN).await, counts(0, 0, 0));
    assert!(receive(store, &again, params(10, VT, T0 + COOLDOWN + VT)).await.messages.is_empty());
    assert_eq!(delete(store, &again, vec![lease(&got.messages[0])]).await, [DeleteOutcome::NotCurrent]);
    let seqs = send(store, &again, vec![message("c", T0 + COOLDOWN)]).await;
    assert!(seqs[0] > got.messages[0].seq, "seqs are never reused");
}

pub async fn close_then_closed(store: &dyn Store) {
    let q = create(store, "q", T0).await;
    send(store, &q, vec![message("m", T0)]).await;
    store.close().await.unwrap();
    assert!(matches!(store.get_queue(ACCOUNT, REGION, "q").await, Err(StoreError::Closed)));
    assert!(matches!(store.send_messages(q.id, vec![message("n", T0)], None, 0).await, Err(StoreError::Closed)));
    assert!(matches!(store.receive_messages(q.id, params(1, VT, T0)).await, Err(StoreError::Closed)));
    assert!(matches!(store.close().await, Err(StoreError::Closed)));
}

pub async fn queue_minutes_are_kept_merged_and_forgotten(store: &dyn Store) {
    use holdfast_core::queue_metrics::{Distribution, FairGauges, Gauges, QueueMinute, MINUTE_MS};
    let row = |queue: &str, minute: Millis, sent: u64, gauges: Option<Gauges>| {
        let mut sent_size = Distribution::default();
        for size in 0..sent {
            sent_size.add(100.0 * (size + 1) as f64);
        }
        QueueMinute {
            account: ACCOUNT.into(),
            region: REGION.into(),
            queue: queue.into(),
            minute,
            gauges,
            sent,
            received: 2,
            deleted: 1,
            empty_receives: 4,
            sent_size,
        }
    };
    let fair = Gauges {
        visible: 5,
        not_visible: 1,
        delayed: 0,
        oldest_age_seconds: 9,
        fair: Some(FairGauges { noisy_groups: 1, oldest_age_in_quiet_groups_seconds: None, ..FairGauges::default() }),
    };
    let m0 = T0 - T0 % MINUTE_MS;
    let rows = vec![
        row("a", m0, 3, Some(fair.clone())),
        row("a", m0 + MINUTE_MS, 0, None),
        row("b", m0, 1, Some(Gauges::default())),
        QueueMinute { account: OTHER_ACCOUNT.into(), ..row("a", m0, 7, None) },
    ];
    store.record_queue_minutes(rows.clone(), 0).await.unwrap();
    let a = store.queue_minutes(ACCOUNT, REGION, "a", m0, m0 + 2 * MINUTE_MS).await.unwrap();
    assert_eq!(a, rows[..2].to_vec(), "rows come back whole, in minute order");
    assert_eq!(store.queue_minutes(ACCOUNT, REGION, "a", m0 + MINUTE_MS, m0 + 2 * MINUTE_MS).await.unwrap().len(), 1);
    assert!(store.queue_minutes(ACCOUNT, OTHER_REGION, "a", 0, i64::MAX).await.unwrap().is_empty());

    let listed = store.metric_queues(ACCOUNT, REGION, 0).await.unwrap();
    let names: Vec<(&str, Millis, bool)> = listed.iter().map(|q| (q.name.as_str(), q.last_minute, q.fair)).collect();
    assert_eq!(names, vec![("a", m0 + MINUTE_MS, true), ("b", m0, false)]);
    assert_eq!(store.metric_queues(ACCOUNT, REGION, m0 + 1).await.unwrap().len(), 1);

    // The same minute written again adds up; a later gauge sample replaces the earlier one.
    let later = Gauges { visible: 6, ..Gauges::default() };
    store.record_queue_minutes(vec![row("b", m0, 2, Some(later.clone()))], 0).await.unwrap();
    let b = store.queue_minutes(ACCOUNT, REGION, "b", 0, i64::MAX).await.unwrap();
    assert_eq!((b.len(), b[0].sent, b[0].received, b[0].empty_receives), (1, 3, 4, 8));
    assert_eq!((b[0].sent_size.count, b[0].sent_size.sum, b[0].sent_size.max), (3, 400.0, 200.0));
    assert_eq!(b[0].gauges, Some(later));

    // Forgetting: rows (and listings) before the cutoff go, in the same call.
    store.record_queue_minutes(vec![row("c", m0 + 2 * MINUTE_MS, 1, None)], m0 + MINUTE_MS).await.unwrap();
    assert_eq!(store.queue_minutes(ACCOUNT, REGION, "a", 0, i64::MAX).await.unwrap().len(), 1);
    assert!(store.queue_minutes(ACCOUNT, REGION, "b", 0, i64::MAX).await.unwrap().is_empty());
    let names: Vec<String> =
        store.metric_queues(ACCOUNT, REGION, 0).await.unwrap().into_iter().map(|q| q.name).collect();
    assert_eq!(names, vec!["a", "c"]);
}
