//! Store calls one at a time, as the service makes them: send one message, receive one and
//! delete it, on each engine, with 0 and 100,000 messages already queued. A lone caller gets no
//! group commit, so each SQLite call here includes its own fsync. Figures only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use holdfast_core::store::{CreateQueueOutcome, Lease, NewMessage, QueueId, ReceiveParams, Store};
use holdfast_core::DEFAULT_ACCOUNT_ID as ACCOUNT;
use holdfast_store::{MemoryStore, SqliteStore};

const BACKLOGS: [usize; 2] = [0, 100_000];
const RETENTION_MS: i64 = 4 * 24 * 3600 * 1000;
const REGION: &str = "us-east-1";

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn message(i: usize) -> NewMessage {
    let now = now();
    NewMessage {
        message_id: format!("00000000-0000-4000-8000-{i:012}"),
        body: "x".repeat(256),
        attributes: Vec::new(),
        system_attributes: Vec::new(),
        group_id: None,
        deduplication_id: None,
        sender_id: "000000000000".into(),
        sent_at: now,
        visible_at: now,
    }
}

async fn queue(store: &dyn Store, name: &str) -> QueueId {
    match store.create_queue(ACCOUNT, REGION, name, BTreeMap::new(), BTreeMap::new(), now(), 0).await.unwrap() {
        CreateQueueOutcome::Created(record) | CreateQueueOutcome::Exists(record) => record.id,
        CreateQueueOutcome::DeletedRecently => panic!("queue {name} deleted recently"),
    }
}

/// Enqueues `count` messages in calls of 1,000 (untimed setup).
async fn fill(store: &dyn Store, queue: QueueId, count: usize) {
    let mut sent = 0;
    while sent < count {
        let n = (count - sent).min(1000);
        store.send_messages(queue, (sent..sent + n).map(message).collect(), None, now()).await.unwrap();
        sent += n;
    }
}

fn engines(dir: &std::path::Path) -> Vec<(&'static str, Arc<dyn Store>)> {
    vec![
        ("memory", Arc::new(MemoryStore::new()) as Arc<dyn Store>),
        ("sqlite", Arc::new(SqliteStore::open(dir).unwrap()) as Arc<dyn Store>),
    ]
}

fn bench_store(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()) {
        let mut group = c.benchmark_group(format!("store/{engine}"));
        if engine == "sqlite" {
            group.sample_size(20).measurement_time(Duration::from_secs(3));
        }
        for backlog in BACKLOGS {
            // One queue per bench, so the sends of one do not change the backlog of the other.
            let [send_queue, receive_queue] = ["send", "receive"].map(|what| {
                runtime.block_on(async {
                    let q = queue(store.as_ref(), &format!("bench-{what}-{backlog}")).await;
                    fill(store.as_ref(), q, backlog).await;
                    q
                })
            });
            group.bench_function(format!("send 1 (backlog {backlog})"), |b| {
                let mut i = 0;
                b.iter(|| {
                    i += 1;
                    runtime.block_on(store.send_messages(send_queue, vec![message(i)], None, now())).unwrap()
                })
            });
            group.bench_function(format!("receive 1 + delete it (backlog {backlog})"), |b| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        // Untimed: enough visible messages for every iteration.
                        fill(store.as_ref(), receive_queue, iters as usize).await;
                        let started = Instant::now();
                        for _ in 0..iters {
                            let params = ReceiveParams::new(1, 30_000, RETENTION_MS, now());
                            let outcome = store.receive_messages(receive_queue, params).await.unwrap();
                            let leases: Vec<Lease> =
                                outcome.messages.iter().map(|m| Lease { seq: m.seq, lease: m.lease }).collect();
                            store.delete_messages(receive_queue, leases, None).await.unwrap();
                        }
                        started.elapsed()
                    })
                })
            });
        }
        group.finish();
        runtime.block_on(store.close()).unwrap();
    }
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
