//! Engine-internal tests that need the writer's connection: a full database.

use super::*;
use holdfast_core::store::StoreError;

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
    let CreateQueueOutcome::Created(q) = store.create_queue("q", BTreeMap::new(), BTreeMap::new(), 0, 0).await.unwrap()
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
            Ok(Some(_)) => sent += 1,
            Ok(None) => panic!("queue vanished"),
            Err(err) => break err,
        }
        assert!(sent < 1_000, "the page limit never bit");
    };
    assert!(matches!(full, StoreError::Full(_)), "{full:?}");
    // Reads and calls that need no new page still work while full.
    assert_eq!(store.queue_counts(q.id, 0).await.unwrap().visible, sent);

    store.call(|c| c.query_row("PRAGMA max_page_count = 1000000", [], |_| Ok(()))).await.unwrap();
    assert!(store.send_messages(q.id, vec![message("after", 3_000)], None, 0).await.unwrap().is_some());
    let params = ReceiveParams::new(10, 1_000, 1 << 40, 1);
    let got = store.receive_messages(q.id, params).await.unwrap().unwrap();
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
    let CreateQueueOutcome::Created(q) = store.create_queue("q", BTreeMap::new(), BTreeMap::new(), 0, 0).await.unwrap()
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
