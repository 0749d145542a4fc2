//! Engine-internal tests that need the writer's connection: a full database.

use super::*;

const ACCOUNT: &str = "000000000000";
use holdfast_core::store::{
    ChangeVisibility, Delivery, MessageMove, MoveStep, MoveTaskStatus, ReceiveAttempt, StoreError,
};
const REGION: &str = "us-east-1";

fn message(id: &str, body_len: usize) -> NewMessage {
    NewMessage {
        message_id: id.into(),
        body: "x".repeat(body_len),
        attributes: Vec::new(),
        system_attributes: Vec::new(),
        group_id: None,
        deduplication_id: None,
        sender_id: "s".into(),
        sent_at: 0,
        visible_at: 0,
    }
}

/// `max_page_count` makes SQLite answer SQLITE_FULL exactly as a full disk does. The store must
/// report `Full`, keep nothing of the failed call, and work again once there is room.
#[tokio::test]
async fn full_database_fails_cleanly_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let CreateQueueOutcome::Created(q) =
        store.create_queue(ACCOUNT, REGION, "q", BTreeMap::new(), BTreeMap::new(), 0, 0).await.unwrap()
    else {
        panic!("not created")
    };
    let pages: i64 = store
        .call(|c| {
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            c.query_row(&format!("PRAGMA max_page_count = {}", pages + 32), [], |r| r.get(0))
        })
        .await
        .unwrap();
    assert!(pages > 1);

    let mut sent = 0;
    let full = loop {
        match store.send_messages(q.id, vec![message(&format!("m{sent}"), 3_000)], None, 0).await {
            Ok(_) => sent += 1,
            Err(err) => break err,
        }
        assert!(sent < 1_000, "the page limit never bit");
    };
    assert!(matches!(full, StoreError::Full(_)), "{full:?}");
    // Reads and calls that need no new page still work while full.
    assert_eq!(store.queue_counts(q.id, 0).await.unwrap().visible, sent);

    store.call(|c| c.query_row("PRAGMA max_page_count = 1000000", [], |_| Ok(()))).await.unwrap();
    assert_eq!(store.send_messages(q.id, vec![message("after", 3_000)], None, 0).await.unwrap().len(), 1);
    let params = ReceiveParams::new(10, 1_000, 1 << 40, 1);
    let got = store.receive_messages(q.id, params).await.unwrap();
    let received = got.messages.len() as u64;
    assert_eq!(received, (sent + 1).min(10));
    assert_eq!(store.queue_counts(q.id, 1).await.unwrap().visible + received, sent + 1);
    store.close().await.unwrap();
}

/// A command that fails rolls back only its own savepoint: the other commands of its batch commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_command_does_not_spoil_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(dir.path()).unwrap());
    let CreateQueueOutcome::Created(q) =
        store.create_queue(ACCOUNT, REGION, "q", BTreeMap::new(), BTreeMap::new(), 0, 0).await.unwrap()
    else {
        panic!("not created")
    };
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                // Writes a row, then fails: the row must not survive.
                store
                    .call(move |c| {
                        c.execute("UPDATE queues SET message_count = message_count + 1000 WHERE id = ?1", [q.id])?;
                        c.execute("INSERT INTO no_such_table VALUES (1)", [])
                    })
                    .await
                    .map(drop)
            } else {
                store.send_messages(q.id, vec![message(&format!("m{i}"), 10)], None, 0).await.map(drop)
            }
        }));
    }
    let mut failures = 0;
    for task in tasks {
        if let Err(err) = task.await.unwrap() {
            assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
            failures += 1;
        }
    }
    assert_eq!(failures, 16);
    assert_eq!(store.queue_counts(q.id, 0).await.unwrap().visible, 48);
}

async fn create(store: &SqliteStore, name: &str) -> holdfast_core::store::QueueRecord {
    match store.create_queue(ACCOUNT, REGION, name, BTreeMap::new(), BTreeMap::new(), 0, 0).await.unwrap() {
        CreateQueueOutcome::Created(q) => q,
        other => panic!("{other:?}"),
    }
}

async fn rows(store: &SqliteStore, table: &'static str) -> i64 {
    store.call(move |c| c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))).await.unwrap()
}

fn grouped(id: &str, group: &str, dedup_id: &str) -> NewMessage {
    NewMessage { group_id: Some(group.into()), deduplication_id: Some(dedup_id.into()), ..message(id, 10) }
}

/// The sweep must seek straight to the exhausted messages: with many received but not exhausted
/// messages, the statement's VM steps stay those of the few it returns (a plan seeking on
/// `receive_count > 0` instead would step over all 2,000).
#[tokio::test]
async fn sweep_reads_only_exhausted_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let q = create(&store, "q").await;
    let batch = (0..2_000).map(|i| message(&format!("m{i}"), 10)).collect();
    store.send_messages(q.id, batch, None, 0).await.unwrap();
    // Everything received once and visible again; two messages received twice.
    store.receive_messages(q.id, ReceiveParams::new(2_000, 0, 1 << 40, 1)).await.unwrap();
    for now in 2..=3 {
        store.receive_messages(q.id, ReceiveParams::new(1, 0, 1 << 40, now)).await.unwrap();
    }
    let (found, steps) = store
        .call(move |c| {
            let mut stmt = c.prepare(moves::SWEEP)?;
            let found = stmt.query_map(rusqlite::params![q.id, 2, 10, 100], |r| r.get::<_, i64>(0))?.count();
            Ok((found, stmt.get_status(rusqlite::StatementStatus::VmStep)))
        })
        .await
        .unwrap();
    assert_eq!(found, 2);
    assert!(steps < 200, "the sweep stepped {steps} times for two messages");
}

/// A version-1 file (holdfast 0.1) opens under the current version with everything in place:
/// queues (now the server's account's, ids and AUTOINCREMENT kept), messages, leases, and the
/// message groups the FIFO receive needs, derived from the messages.
#[tokio::test]
async fn migrates_a_version_1_database() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())).unwrap();
        conn.execute_batch(&format!("BEGIN; {} PRAGMA user_version = 1; COMMIT;", schema::SCHEMA_V1)).unwrap();
        // Written as holdfast 0.1's SQL wrote them: one standard queue, one with groups where
        // m1 is in flight under lease 42.
        conn.execute_batch(
            "INSERT INTO queues (name, attributes, tags, created_at, last_modified_at, message_count)
                 VALUES ('std', '{}', '{\"team\":\"a\"}', 1, 1, 1), ('f.fifo', '{\"FifoQueue\":\"true\"}', '{}', 1, 1, 3);
             INSERT INTO messages (queue_id, message_id, body, attributes, system_attributes, group_id, dedup_id,
                                   sender_id, sent_at, visible_at, receive_count, first_received_at, lease, leased_at)
             VALUES (1, 'm3', 'body 3', x'01', x'', NULL, NULL, 's', 1000, 1000, 0, NULL, NULL, NULL),
                    (2, 'm1', 'body 1', x'', x'', 'g', 'd1', 's', 1000, 31000, 1, 1000, 42, 1000),
                    (2, 'm2', 'body 2', x'', x'', 'g', 'd2', 's', 1000, 1000, 0, NULL, NULL, NULL),
                    (2, 'm4', 'body 4', x'', x'', 'h', 'd4', 's', 1000, 1000, 0, NULL, NULL, NULL);",
        )
        .unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    }
    let home = "123456789012";
    let store = SqliteStore::open_for_home(dir.path(), &Home { account: home, region: "eu-west-1" }).unwrap();
    let version: i64 = store.call(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0))).await.unwrap();
    assert_eq!(version, schema::SCHEMA_VERSION);
    assert_eq!(
        store.get_queue(ACCOUNT, "eu-west-1", "std").await.unwrap(),
        None,
        "old queues are the server's account's"
    );
    assert_eq!(store.get_queue(home, "us-east-1", "std").await.unwrap(), None, "and in the server's region");
    const REGION: &str = "eu-west-1";
    let std = store.get_queue(home, REGION, "std").await.unwrap().expect("queue kept");
    assert_eq!((std.id, std.tags.get("team").map(String::as_str)), (1, Some("a")));
    let fifo = store.get_queue(home, REGION, "f.fifo").await.unwrap().expect("queue kept");
    assert_eq!(fifo.id, 2);
    // Ids still never come back: a new queue continues after the highest ever handed out.
    let CreateQueueOutcome::Created(new) =
        store.create_queue(home, REGION, "new", BTreeMap::new(), BTreeMap::new(), 2000, 0).await.unwrap()
    else {
        panic!("created")
    };
    assert_eq!(new.id, 3);
    assert_eq!(store.queue_counts(fifo.id, 2000).await.unwrap(), QueueCounts { visible: 2, in_flight: 1, delayed: 0 });

    // The groups were derived from the messages: g is locked by m1, h flows.
    let fifo_params = |now| ReceiveParams { delivery: Delivery::Fifo, ..ReceiveParams::new(10, 30_000, 1 << 40, now) };
    let got = store.receive_messages(fifo.id, fifo_params(2000)).await.unwrap();
    assert_eq!(got.messages.iter().map(|m| m.message_id.as_str()).collect::<Vec<_>>(), ["m4"]);
    assert_eq!(got.next_visible_at, Some(31000));
    // m1's lease survived; deleting it opens g.
    let deleted = store.delete_messages(fifo.id, vec![Lease { seq: 2, lease: 42 }], None).await.unwrap();
    assert_eq!(deleted, [DeleteOutcome::Deleted]);
    let got = store.receive_messages(fifo.id, fifo_params(2001)).await.unwrap();
    let m2 = &got.messages[0];
    assert_eq!(
        (m2.message_id.as_str(), m2.body.as_str(), m2.dead_letter_source_arn.as_deref()),
        ("m2", "body 2", None)
    );
    let got = store.receive_messages(std.id, ReceiveParams::new(10, 30_000, 1 << 40, 2000)).await.unwrap();
    assert_eq!(got.messages[0].message_id, "m3");
    assert_eq!(got.messages[0].attributes, [1]);
    // New rows continue after the old seqs.
    let seqs = store.send_messages(std.id, vec![message("new", 0)], None, 0).await.unwrap();
    assert_eq!(seqs[0].seq, 5);
    store.close().await.unwrap();

    // Reopened as version 2, it passes the checks and keeps the state.
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.queue_counts(fifo.id, 2002).await.unwrap(), QueueCounts { visible: 0, in_flight: 2, delayed: 0 });
    store.close().await.unwrap();
}

/// Deleting a queue removes its deduplication records, receive attempts and groups (the
/// conformance suite can only see that they no longer apply); move tasks stay.
#[tokio::test]
async fn queue_deletion_removes_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let q = create(&store, "q.fifo").await;
    let keep = create(&store, "keep.fifo").await;
    let dedup = Some(Deduplication { window_ms: 300_000, per_group: false });
    for queue in [&q, &keep] {
        let batch = vec![grouped("a", "g1", "d1"), grouped("b", "g2", "d2")];
        store.send_messages(queue.id, batch, dedup, 10).await.unwrap();
        let attempt = Some(ReceiveAttempt { id: "x".into(), window_ms: 300_000 });
        let p = ReceiveParams { delivery: Delivery::Fifo, attempt, ..ReceiveParams::new(1, 30_000, 1 << 40, 10) };
        assert_eq!(store.receive_messages(queue.id, p).await.unwrap().messages.len(), 1);
    }
    store
        .start_move_task(MoveTask {
            handle: "h".into(),
            source_queue: q.id,
            source_arn: "arn".into(),
            destination_arn: None,
            max_per_second: None,
            status: MoveTaskStatus::Running,
            moved: 0,
            to_move: 0,
            started_at: 0,
            failure_reason: None,
        })
        .await
        .unwrap();
    let counts = |store| async move {
        [rows(store, "dedup_records").await, rows(store, "receive_attempts").await, rows(store, "fifo_groups").await]
    };
    assert_eq!(counts(&store).await, [4, 2, 4]);
    store.delete_queue(q.id, 20).await.unwrap();
    assert_eq!(counts(&store).await, [2, 1, 2], "only the other queue's records are left");
    assert_eq!(rows(&store, "move_tasks").await, 1);
}

/// Expired deduplication records and attempts are pruned a few per call that adds one, and all
/// at once by `prune_expired_records`, so the tables hold about their live records.
#[tokio::test]
async fn expired_records_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let q = create(&store, "q.fifo").await;
    let short = Some(Deduplication { window_ms: 10, per_group: true });
    let batch = (0..40).map(|i| grouped(&format!("m{i}"), "g", &format!("d{i}"))).collect();
    store.send_messages(q.id, batch, short, 100).await.unwrap();
    assert_eq!(rows(&store, "dedup_records").await, 40);
    store.send_messages(q.id, vec![grouped("n", "g", "n")], short, 110).await.unwrap();
    let left = 40 - crate::rules::PRUNE_PER_CALL as i64 + 1;
    assert_eq!(rows(&store, "dedup_records").await, left, "a send prunes a bounded number of expired records");
    for (i, now) in [(0, 110), (1, 111)] {
        let attempt = Some(ReceiveAttempt { id: format!("a{i}"), window_ms: 10 });
        let p = ReceiveParams { attempt, ..ReceiveParams::new(1, 0, 1 << 40, now) };
        store.receive_messages(q.id, p).await.unwrap();
    }
    assert_eq!(rows(&store, "receive_attempts").await, 2);
    let next = store.prune_expired_records(120).await.unwrap();
    assert_eq!(rows(&store, "dedup_records").await, 0);
    assert_eq!(rows(&store, "receive_attempts").await, 1, "the attempt live until 121 stays");
    assert_eq!(next, Some(121), "the next record to expire");
    assert_eq!(store.prune_expired_records(121).await.unwrap(), None);
    assert_eq!(rows(&store, "receive_attempts").await, 0);
}

/// `(queue_id, group_id, head_seq, head_visible_at)`.
type GroupRow = (i64, String, i64, i64);

/// `fifo_groups` is maintained by triggers; after a mix of every kind of change to grouped
/// messages it must equal what the messages say: one row per group, its lowest seq as head,
/// and `ready` only for heads that are visible.
#[tokio::test]
async fn fifo_groups_follow_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let q = create(&store, "q.fifo").await;
    let dlq = create(&store, "dlq.fifo").await;
    let target =
        DeadLetterTarget { queue: dlq.id, max_receive_count: 2, source_arn: "arn".into(), reset_sent_at: true };
    let fifo = |max, vt, now| ReceiveParams {
        delivery: Delivery::Fifo,
        dead_letter: Some(target.clone()),
        ..ReceiveParams::new(max, vt, 1_000, now)
    };
    let back = MoveTask {
        handle: "back".into(),
        source_queue: dlq.id,
        source_arn: "arn".into(),
        destination_arn: None,
        max_per_second: None,
        status: MoveTaskStatus::Running,
        moved: 0,
        to_move: u64::MAX,
        started_at: 0,
        failure_reason: None,
    };
    store.start_move_task(back).await.unwrap();
    let mut leases = Vec::new();
    let mut now = 100;
    for round in 0..30_i64 {
        now += 7;
        let batch = (0..3).map(|i| grouped(&format!("m{round}-{i}"), &format!("g{}", (round + i) % 4), "d")).collect();
        store.send_messages(q.id, batch, None, now).await.unwrap();
        let got = store.receive_messages(q.id, fifo(2 + (round as usize % 3), 20 * (round % 2), now)).await.unwrap();
        leases.extend(got.messages.iter().map(|m| Lease { seq: m.seq, lease: m.lease }));
        match round % 5 {
            0 => drop(store.delete_messages(q.id, leases.drain(..leases.len() / 2).collect(), None).await.unwrap()),
            1 => {
                let changes =
                    leases.iter().map(|&lease| ChangeVisibility { lease, visibility_timeout_ms: 0 }).collect();
                store.change_visibility(q.id, changes, now, 1 << 40).await.unwrap();
            }
            2 => drop(store.expire_messages(q.id, now - 50).await.unwrap()),
            3 => {
                let movable = store.movable_messages(dlq.id, now, 2).await.unwrap();
                let moves = movable.iter().map(|m| MessageMove { seq: m.seq, destination: q.id, reset_sent_at: true });
                store.advance_move_task("back", MoveStep::Moved(moves.collect()), now).await.unwrap();
            }
            _ => drop(store.dead_letter_exhausted(q.id, target.clone(), now, 3).await.unwrap()),
        }
        store.receive_messages(dlq.id, fifo(1, 5, now)).await.unwrap();
        let (stored, derived, wrong_ready): (Vec<GroupRow>, Vec<GroupRow>, i64) = store
            .call(move |c| {
                let read = |sql: &str| -> rusqlite::Result<Vec<GroupRow>> {
                    c.prepare(sql)?.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect()
                };
                let stored =
                    read("SELECT queue_id, group_id, head_seq, head_visible_at FROM fifo_groups ORDER BY 1, 2")?;
                let derived = read(
                    "SELECT queue_id, group_id, min(seq), visible_at FROM messages WHERE group_id IS NOT NULL
                     GROUP BY queue_id, group_id ORDER BY 1, 2",
                )?;
                let wrong_ready = c.query_row(
                    "SELECT count(*) FROM fifo_groups WHERE ready = 1 AND head_visible_at > ?1",
                    [now],
                    |r| r.get(0),
                )?;
                Ok((stored, derived, wrong_ready))
            })
            .await
            .unwrap();
        assert_eq!(stored, derived, "round {round}");
        assert_eq!(wrong_ready, 0, "round {round}: a ready head that is not visible");
    }
    assert!(matches!(store.purge_queue(q.id, now, 0).await.unwrap(), PurgeOutcome::Purged { .. }));
    store.delete_queue(dlq.id, now).await.unwrap();
    assert_eq!(rows(&store, "fifo_groups").await, 0);
}

/// A command that panics fails its batch and nothing else: the writer thread lives on, the
/// batch's other effects are rolled back, and the next call is served.
#[tokio::test]
async fn a_panicking_command_fails_its_batch_and_the_writer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let q = create(&store, "q").await;
    let panicked = store.call(|_| -> rusqlite::Result<()> { panic!("boom") }).await.unwrap_err();
    assert!(matches!(panicked, StoreError::Backend(_)), "{panicked:?}");
    assert!(panicked.chain().contains("boom"), "{}", panicked.chain());
    store.check().await.expect("the writer still answers");
    assert_eq!(store.send_messages(q.id, vec![message("after", 10)], None, 0).await.unwrap().len(), 1);

    // A batch that holds a panicking command loses every effect, its other commands' too.
    let (a, b, c) = tokio::join!(
        store.send_messages(q.id, vec![message("a", 10)], None, 0),
        store.call(|_| -> rusqlite::Result<()> { panic!("boom") }),
        store.send_messages(q.id, vec![message("c", 10)], None, 0),
    );
    assert!(b.is_err());
    let delivered = [a.is_ok(), c.is_ok()].iter().filter(|ok| **ok).count() as u64;
    assert_eq!(store.queue_counts(q.id, 0).await.unwrap().visible, 1 + delivered, "only acknowledged sends are kept");
    store.close().await.unwrap();
}

/// A database too large to check before serving is checked right after, in the background:
/// damage it finds makes the store unhealthy instead of going unnoticed.
#[tokio::test]
async fn a_large_database_is_checked_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let q = create(&store, "q").await;
    for i in 0..200 {
        store.send_messages(q.id, vec![message(&format!("m{i}"), 4_000)], None, 0).await.unwrap();
    }
    store.close().await.unwrap();
    drop(store);

    // Sound: the background check passes and the store stays healthy.
    let store = SqliteStore::open_checking(dir.path(), 0, &Home { account: ACCOUNT, region: REGION }).unwrap();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    store.check().await.expect("a sound database is healthy");
    store.close().await.unwrap();
    drop(store);

    // Damaged pages near the end of the file (the message bodies), found only by reading them.
    let path = dir.path().join(DB_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    for byte in &mut bytes[len - 64 * 1024..len - 16 * 1024] {
        *byte = 0xA5;
    }
    std::fs::write(&path, bytes).unwrap();
    let store = SqliteStore::open_checking(dir.path(), 0, &Home { account: ACCOUNT, region: REGION })
        .expect("the structural checks at open pass");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let error = loop {
        if let Err(error) = store.check().await {
            break error;
        }
        assert!(std::time::Instant::now() < deadline, "the damage was never found");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(error.chain().contains("damaged"), "{}", error.chain());
}

/// Bytes changed inside a stored message, or a body that is no longer text, do not reach a client
/// and do not wedge the queue: the damaged message is quarantined, the others are delivered.
#[tokio::test]
async fn damaged_messages_are_quarantined_not_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let q = create(&store, "q").await;
    let messages = ["m1", "m2", "m3", "m4"].map(|id| message(id, 100)).to_vec();
    store.send_messages(q.id, messages, None, 0).await.unwrap();
    store.close().await.unwrap();
    drop(store);
    {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        // A changed byte in m2's body (its digest stays as it was), and m3's body made invalid UTF-8.
        conn.execute("UPDATE messages SET body = 'X' || substr(body, 2) WHERE message_id = 'm2'", []).unwrap();
        conn.execute("UPDATE messages SET body = CAST(x'ff00ff' AS TEXT) WHERE message_id = 'm3'", []).unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let got = store.receive_messages(q.id, ReceiveParams::new(10, 30_000, 1 << 40, 1)).await.unwrap();
    let ids: Vec<&str> = got.messages.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids, ["m1", "m4"], "the damaged ones are held back, the sound ones delivered");
    assert_eq!(store.queue_counts(q.id, 1).await.unwrap(), QueueCounts { visible: 0, in_flight: 2, delayed: 0 });
    let quarantined: Vec<(Vec<u8>, String)> = store
        .call(|c| {
            c.prepare("SELECT message_id, reason FROM quarantined_messages ORDER BY seq")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .await
        .unwrap();
    assert_eq!(quarantined.len(), 2, "{quarantined:?}");
    assert_eq!(quarantined[0].0, b"m2");
    assert!(quarantined[0].1.contains("digest"), "{}", quarantined[0].1);
    assert!(quarantined[1].1.contains("cannot be read"), "{}", quarantined[1].1);
    // The queue goes on as usual.
    store.send_messages(q.id, vec![message("m5", 10)], None, 2).await.unwrap();
    let next = store.receive_messages(q.id, ReceiveParams::new(10, 30_000, 1 << 40, 3)).await.unwrap();
    assert_eq!(next.messages.len(), 1);
    store.close().await.unwrap();
}
