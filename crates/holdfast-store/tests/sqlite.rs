//! SQLite-only behaviour: durability across reopening, refusing damaged files, and many
//! concurrent callers sharing the writer's group commit.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use holdfast_core::store::{
    CreateQueueOutcome, DeadLetterTarget, Deduplication, DeleteOutcome, Delivery, Lease, MoveTask, MoveTaskStatus,
    NewMessage, QueueCounts, QueueRecord, ReceiveAttempt, ReceiveParams, Sent, Store, StoreError,
};
use holdfast_core::DEFAULT_ACCOUNT_ID;
use holdfast_store::sqlite::DB_FILE;
use holdfast_store::SqliteStore;

const T0: i64 = 1_700_000_000_000;
const VT: i64 = 30_000;
const REGION: &str = "us-east-1";

fn message(id: &str, sent_at: i64) -> NewMessage {
    NewMessage {
        message_id: id.into(),
        body: format!("body of {id}"),
        attributes: vec![1, 2, 3],
        system_attributes: Vec::new(),
        group_id: Some("g".into()),
        deduplication_id: None,
        sender_id: "sender".into(),
        sent_at,
        visible_at: sent_at,
    }
}

fn params(max_messages: usize, now: i64) -> ReceiveParams {
    ReceiveParams::new(max_messages, VT, 1 << 40, now)
}

async fn create(store: &dyn Store, name: &str) -> QueueRecord {
    let attributes = BTreeMap::from([("VisibilityTimeout".to_string(), "60".to_string())]);
    let tags = BTreeMap::from([("env".to_string(), "test".to_string())]);
    match store.create_queue(DEFAULT_ACCOUNT_ID, REGION, name, attributes, tags, T0, 60_000).await.unwrap() {
        CreateQueueOutcome::Created(q) => q,
        other => panic!("{other:?}"),
    }
}

fn open_error(dir: &Path) -> String {
    match SqliteStore::open(dir) {
        Ok(_) => panic!("opened a damaged store"),
        Err(error @ StoreError::Backend(_)) => error.chain(),
        Err(other) => panic!("unexpected error kind: {other:?}"),
    }
}

/// Writes a store with a little of everything, returns what a reopened store must show.
async fn populate(dir: &Path) -> (QueueRecord, Lease, Lease) {
    let store = SqliteStore::open(dir).unwrap();
    let kept = create(&store, "kept").await;
    let gone = create(&store, "gone").await;
    store.send_messages(gone.id, vec![message("g1", T0)], None, 0).await.unwrap();
    store.delete_queue(gone.id, T0 + 1).await.unwrap();
    store.send_messages(kept.id, (1..=4).map(|i| message(&format!("m{i}"), T0)).collect(), None, 0).await.unwrap();
    let got = store.receive_messages(kept.id, params(2, T0)).await.unwrap();
    let leases: Vec<Lease> = got.messages.iter().map(|m| Lease { seq: m.seq, lease: m.lease }).collect();
    let deleted = store.delete_messages(kept.id, vec![leases[0]], None).await.unwrap();
    assert_eq!(deleted, [DeleteOutcome::Deleted]);
    (kept, leases[0], leases[1])
}

async fn check_reopened(dir: &Path, kept: &QueueRecord, deleted: Lease, in_flight: Lease) {
    let store = SqliteStore::open(dir).unwrap();
    assert_eq!(store.get_queue(DEFAULT_ACCOUNT_ID, REGION, "kept").await.unwrap().as_ref(), Some(kept));
    assert_eq!(
        store.get_queue(DEFAULT_ACCOUNT_ID, REGION, "gone").await.unwrap(),
        None,
        "a deleted queue stays deleted"
    );
    let again = store
        .create_queue(DEFAULT_ACCOUNT_ID, REGION, "gone", BTreeMap::new(), BTreeMap::new(), T0 + 2, 60_000)
        .await
        .unwrap();
    assert_eq!(again, CreateQueueOutcome::DeletedRecently, "the cooldown survives a restart");
    let counts = store.queue_counts(kept.id, T0).await.unwrap();
    assert_eq!(counts, QueueCounts { visible: 2, in_flight: 1, delayed: 0 });
    // Leases are durable: the in-flight message's receipt still works, the deleted one stays gone.
    let outcomes = store.delete_messages(kept.id, vec![deleted, in_flight], None).await.unwrap();
    assert_eq!(outcomes, [DeleteOutcome::NotCurrent, DeleteOutcome::Deleted]);
    let got = store.receive_messages(kept.id, params(10, T0 + VT)).await.unwrap();
    let ids: Vec<&str> = got.messages.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids, ["m3", "m4"]);
    assert_eq!(got.messages[0].attributes, [1, 2, 3]);
    assert_eq!(got.messages[0].group_id.as_deref(), Some("g"));
    // Ids and seqs continue after the old ones instead of being reused.
    let newer = create(&store, "newer").await;
    assert!(newer.id > kept.id + 1);
    let seqs = store.send_messages(newer.id, vec![message("n", T0)], None, 0).await.unwrap();
    assert!(seqs[0].seq > got.messages[1].seq);
    store.close().await.unwrap();
}

#[tokio::test]
async fn reopen_after_close_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (kept, deleted, in_flight) = populate(dir.path()).await;
    check_reopened(dir.path(), &kept, deleted, in_flight).await;
}

#[tokio::test]
async fn reopen_after_drop_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    // `populate` drops its store without `close`: the WAL is left for the next open to replay.
    let (kept, deleted, in_flight) = populate(dir.path()).await;
    check_reopened(dir.path(), &kept, deleted, in_flight).await;
}

#[tokio::test]
async fn open_creates_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    let store = SqliteStore::open(&nested).unwrap();
    assert!(nested.join(DB_FILE).is_file());
    store.close().await.unwrap();
}

#[test]
fn garbage_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), vec![0x5a; 8192]).unwrap();
    let reason = open_error(dir.path());
    assert!(reason.contains("not a database"), "{reason}");
    assert!(reason.contains(DB_FILE), "the error names the file: {reason}");
}

#[test]
fn empty_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), b"").unwrap();
    let reason = open_error(dir.path());
    assert!(reason.contains("empty"), "{reason}");
}

#[test]
fn wal_without_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(format!("{DB_FILE}-wal")), vec![1; 4096]).unwrap();
    let reason = open_error(dir.path());
    assert!(reason.contains("WAL"), "{reason}");
}

#[tokio::test]
async fn truncated_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        let q = create(&store, "q").await;
        let batch = (0..200).map(|i| message(&format!("m{i}"), T0)).collect();
        store.send_messages(q.id, batch, None, 0).await.unwrap();
        store.close().await.unwrap();
    }
    let path = dir.path().join(DB_FILE);
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 4 * 4096, "the test needs a multi-page file, got {len} bytes");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    let reason = open_error(dir.path());
    assert!(reason.contains("truncated") || reason.contains("malformed"), "{reason}");
}

#[tokio::test]
async fn overwritten_page_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        let q = create(&store, "q").await;
        let batch = (0..200).map(|i| message(&format!("m{i}"), T0)).collect();
        store.send_messages(q.id, batch, None, 0).await.unwrap();
        store.close().await.unwrap();
    }
    // Scribble over the middle of the file, past the header, as a bad sector or stray write would.
    let path = dir.path().join(DB_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 4096].fill(0xa5);
    std::fs::write(&path, bytes).unwrap();
    let reason = open_error(dir.path());
    assert!(reason.contains(DB_FILE), "{reason}");
}

#[test]
fn foreign_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');").unwrap();
    drop(conn);
    let reason = open_error(dir.path());
    assert!(reason.contains("not a holdfast"), "{reason}");
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    SqliteStore::open(dir.path()).unwrap().close().await.unwrap();
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let reason = open_error(dir.path());
    assert!(reason.contains("newer"), "{reason}");
}

/// Many tasks sending at once: every call succeeds, and every message is received exactly once.
/// With one writer thread this only performs if calls share transactions (group commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_senders_all_land_exactly_once() {
    const TASKS: usize = 64;
    const PER_TASK: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let q = create(store.as_ref(), "q").await;
    let mut senders = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        senders.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                let seqs = store.send_messages(q.id, vec![message(&format!("{t}-{i}"), T0)], None, 0).await.unwrap();
                assert_eq!(seqs.len(), 1);
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let total = (TASKS * PER_TASK) as u64;
    assert_eq!(store.queue_counts(q.id, T0).await.unwrap().visible, total);

    // Concurrent receivers too: a message leased by one receive is never handed to another.
    let mut receivers = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        receivers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let got = store.receive_messages(q.id, params(10, T0)).await.unwrap();
                if got.messages.is_empty() {
                    return ids;
                }
                let leases = got.messages.iter().map(|m| Lease { seq: m.seq, lease: m.lease }).collect();
                let outcomes = store.delete_messages(q.id, leases, None).await.unwrap();
                assert!(outcomes.iter().all(|o| *o == DeleteOutcome::Deleted));
                ids.extend(got.messages.into_iter().map(|m| m.message_id));
            }
        }));
    }
    let mut seen = HashSet::new();
    for receiver in receivers {
        for id in receiver.await.unwrap() {
            assert!(seen.insert(id.clone()), "{id} received twice");
        }
    }
    assert_eq!(seen.len() as u64, total);
    assert_eq!(store.queue_counts(q.id, T0).await.unwrap(), QueueCounts::default());
}

/// FIFO state is durable: deduplication records (even of deleted messages), receive attempts,
/// group locks, dead-lettered messages with their source, and move tasks all survive a restart.
#[tokio::test]
async fn fifo_and_move_task_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let dedup = Some(Deduplication { window_ms: 300_000, per_group: false });
    let fifo = |now| ReceiveParams { delivery: Delivery::Fifo, ..params(1, now) };
    let deduplicated =
        |id: &str, dedup_id: &str| NewMessage { deduplication_id: Some(dedup_id.into()), ..message(id, T0) };
    let attempt = || Some(ReceiveAttempt { id: "attempt".into(), window_ms: 300_000 });
    let task = MoveTask {
        handle: "task-1".into(),
        source_queue: 0,
        source_arn: "arn:aws:sqs:us-east-1:000000000000:dlq.fifo".into(),
        destination_arn: Some("arn:aws:sqs:us-east-1:000000000000:q.fifo".into()),
        max_per_second: Some(10),
        status: MoveTaskStatus::Running,
        moved: 3,
        to_move: 9,
        started_at: T0,
        failure_reason: None,
    };
    let (q, dlq, first, leased) = {
        let store = SqliteStore::open(dir.path()).unwrap();
        let q = create(&store, "q.fifo").await;
        let dlq = create(&store, "dlq.fifo").await;
        let batch = vec![deduplicated("a", "a"), deduplicated("b", "b"), deduplicated("c", "c")];
        let sent = store.send_messages(q.id, batch, dedup, T0).await.unwrap();
        // a is received once and deleted; its id must still deduplicate after the restart.
        let a = store.receive_messages(q.id, fifo(T0)).await.unwrap().messages.remove(0);
        let deleted = store.delete_messages(q.id, vec![Lease { seq: a.seq, lease: a.lease }], None).await.unwrap();
        assert_eq!(deleted, [DeleteOutcome::Deleted]);
        // b is leased under an attempt id; it locks the group.
        let p = ReceiveParams { attempt: attempt(), ..fifo(T0 + 1) };
        let b = store.receive_messages(q.id, p).await.unwrap().messages.remove(0);
        assert_eq!(b.message_id, "b");
        store.start_move_task(MoveTask { source_queue: dlq.id, ..task.clone() }).await.unwrap();
        store.close().await.unwrap();
        (q, dlq, sent[0].clone(), b)
    };
    let store = SqliteStore::open(dir.path()).unwrap();
    let again = store.send_messages(q.id, vec![deduplicated("a2", "a")], dedup, T0 + 2).await.unwrap();
    assert_eq!(again, [Sent { seq: first.seq, message_id: "a".into(), duplicate: true }]);
    let retry = ReceiveParams { attempt: attempt(), ..fifo(T0 + 3) };
    assert_eq!(store.receive_messages(q.id, retry).await.unwrap().messages, std::slice::from_ref(&leased));
    let locked = store.receive_messages(q.id, fifo(T0 + 3)).await.unwrap();
    assert!(locked.messages.is_empty(), "c stays behind the in-flight b");
    assert_eq!(locked.next_visible_at, Some(T0 + 3 + VT));
    let tasks = store.move_tasks(Some(dlq.id)).await.unwrap();
    assert_eq!(tasks, [MoveTask { source_queue: dlq.id, ..task }]);

    // Dead-lettered after the restart, then reopened again: the source ARN is kept.
    let target =
        DeadLetterTarget { queue: dlq.id, max_receive_count: 1, source_arn: "arn:q".into(), reset_sent_at: true };
    assert_eq!(store.dead_letter_exhausted(q.id, target, T0 + 3 + VT, 10).await.unwrap().moved, 1);
    store.close().await.unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let moved = store.receive_messages(dlq.id, fifo(T0 + 4 + VT)).await.unwrap().messages.remove(0);
    assert_eq!((moved.message_id.as_str(), moved.dead_letter_source_arn.as_deref()), ("b", Some("arn:q")));
    assert_eq!(moved.sent_at, T0 + 3 + VT);
    let c = store.receive_messages(q.id, fifo(T0 + 4 + VT)).await.unwrap().messages.remove(0);
    assert_eq!(c.message_id, "c", "the group opened when its head left");
    store.close().await.unwrap();
}
