//! The engines agree on long random histories: the same seeded workload of every `Store` call
//! runs against each (memory, SQLite, the journal, and PostgreSQL when its test database is
//! there), and every answer (apart from the random leases themselves) and every queue's counts
//! must match after each step. Then the journal is opened again twice, once by replaying its
//! frames and once from the snapshot written at close, and both must hold exactly what the live
//! store held: the live store's leases delete the same messages in both, and the rest drains
//! out the same. The conformance suite pins each rule down by hand;
//! this catches the interactions between rules that no hand-written case thought of.

use holdfast_core::store::{
    ChangeVisibility, DeadLetterTarget, Deduplication, Delivery, FairOrder, Lease, MessageMove, Millis, MoveStep,
    MoveTask, MoveTaskStatus, NewMessage, QueueId, ReceiveAttempt, ReceiveOutcome, ReceiveParams, Store, StoreError,
    StoreResult,
};
use holdfast_core::DEFAULT_ACCOUNT_ID;
use holdfast_store::postgres::ScratchSchema;
use holdfast_store::{JournalStore, MemoryStore, SqliteStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T0: Millis = 1_700_000_000_000;
const STEPS: usize = 250;
const SEEDS: u64 = 6;

/// Queues by index: a FIFO queue and its FIFO DLQ, a standard queue and its standard DLQ.
const QUEUES: [(&str, Delivery); 4] = [
    ("a.fifo", Delivery::Fifo),
    ("a-dlq.fifo", Delivery::Fifo),
    ("b", Delivery::Standard),
    ("b-dlq", Delivery::Standard),
];
const REGION: &str = "us-east-1";

struct Engine {
    name: &'static str,
    store: Box<dyn Store>,
    /// Leases this engine handed out, in the same order for both engines (receive answers list
    /// the same seqs in the same order), so an index picks the same message in both.
    held: Vec<(usize, Lease)>,
    _dir: Option<tempfile::TempDir>,
    _schema: Option<ScratchSchema>,
}

/// Every engine gave the first engine's answer.
#[track_caller]
fn agree<T: PartialEq + std::fmt::Debug>(answers: &[T], engines: &[Engine], context: &str) {
    for (answer, engine) in answers.iter().zip(engines).skip(1) {
        assert_eq!(&answers[0], answer, "{context}: {} vs {}", engines[0].name, engine.name);
    }
}

/// An answer, with a queue that is gone as `None`; any other failure fails the test.
fn answer<T>(result: StoreResult<T>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(StoreError::QueueNotFound(_)) => None,
        Err(other) => panic!("store failed: {}", other.chain()),
    }
}

/// A receive answer without the leases, which are random per engine.
fn comparable(outcome: &Option<ReceiveOutcome>) -> Option<(Vec<String>, Option<Millis>, u64)> {
    outcome.as_ref().map(|o| {
        let messages = o
            .messages
            .iter()
            .map(|m| {
                format!(
                    "{}:{}:{:?}:{}:{}:{:?}:{:?}:{:?}",
                    m.seq,
                    m.message_id,
                    m.group_id,
                    m.receive_count,
                    m.sent_at,
                    m.first_received_at,
                    m.dead_letter_source_arn,
                    m.deduplication_id
                )
            })
            .collect();
        (messages, o.next_visible_at, o.dead_lettered)
    })
}

fn dead_letter_for(queue: usize) -> Option<DeadLetterTarget> {
    match queue {
        0 => Some(DeadLetterTarget { queue: 2, max_receive_count: 2, source_arn: "arn:a".into(), reset_sent_at: true }),
        2 => {
            Some(DeadLetterTarget { queue: 4, max_receive_count: 3, source_arn: "arn:b".into(), reset_sent_at: false })
        }
        _ => None,
    }
}

async fn run(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path()).unwrap();
    let mut engines = vec![
        Engine { name: "memory", store: Box::new(MemoryStore::new()), held: Vec::new(), _dir: None, _schema: None },
        Engine { name: "sqlite", store: Box::new(sqlite), held: Vec::new(), _dir: Some(dir), _schema: None },
    ];
    let journal_dir = tempfile::tempdir().unwrap();
    let journal = Box::new(JournalStore::open(journal_dir.path()).unwrap());
    engines.push(Engine { name: "journal", store: journal, held: Vec::new(), _dir: None, _schema: None });
    if let Some(schema) = ScratchSchema::create().await {
        let store = Box::new(schema.store().await);
        engines.push(Engine { name: "postgres", store, held: Vec::new(), _dir: None, _schema: Some(schema) });
    }
    for e in &engines {
        for (name, _) in QUEUES {
            e.store
                .create_queue(DEFAULT_ACCOUNT_ID, REGION, name, Default::default(), Default::default(), T0, 0)
                .await
                .unwrap();
        }
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut now = T0;
    let mut next_id = 0;
    for step in 0..STEPS {
        now += rng.gen_range(0..40);
        let queue = rng.gen_range(0..QUEUES.len());
        let id: QueueId = queue as QueueId + 1;
        let delivery = QUEUES[queue].1;
        let what = rng.gen_range(0..100);
        let context = format!("seed {seed} step {step} op {what} queue {queue}");
        match what {
            // Sends: FIFO queues deduplicate (scope picked per call), standard ones may delay.
            0..=29 => {
                let n = rng.gen_range(1..=3);
                let batch: Vec<NewMessage> = (0..n)
                    .map(|_| {
                        next_id += 1;
                        let delay =
                            if delivery == Delivery::Standard && rng.gen_bool(0.2) { rng.gen_range(1..100) } else { 0 };
                        NewMessage {
                            message_id: format!("m{next_id}"),
                            body: format!("body {next_id}"),
                            attributes: vec![next_id as u8],
                            system_attributes: Vec::new(),
                            group_id: Some(format!("g{}", rng.gen_range(0..4))),
                            deduplication_id: Some(format!("d{}", rng.gen_range(0..30))),
                            sender_id: "s".into(),
                            sent_at: now,
                            visible_at: now + delay,
                        }
                    })
                    .collect();
                let dedup = (delivery == Delivery::Fifo)
                    .then(|| Deduplication { window_ms: rng.gen_range(50..400), per_group: rng.gen_bool(0.5) });
                let mut answers = Vec::new();
                for e in &engines {
                    answers.push(e.store.send_messages(id, batch.clone(), dedup, now).await.unwrap());
                }
                agree(&answers, &engines, &context);
            }
            30..=59 => {
                let attempt = (delivery == Delivery::Fifo && rng.gen_bool(0.3))
                    .then(|| ReceiveAttempt { id: format!("attempt{}", rng.gen_range(0..3)), window_ms: 200 });
                let p = ReceiveParams {
                    max_messages: rng.gen_range(0..=4),
                    visibility_timeout_ms: [0, 30, 120][rng.gen_range(0..3)],
                    retention_ms: 1_500,
                    now,
                    delivery,
                    dead_letter: dead_letter_for(queue).filter(|_| rng.gen_bool(0.8)),
                    attempt,
                    // Fair-queue receives with some groups noisy, from some starting group.
                    fair: (delivery == Delivery::Standard && rng.gen_bool(0.4)).then(|| FairOrder {
                        noisy: (0..rng.gen_range(0..3)).map(|_| format!("g{}", rng.gen_range(0..4))).collect(),
                        start_after: rng.gen_bool(0.5).then(|| format!("g{}", rng.gen_range(0..4))),
                    }),
                };
                let mut answers = Vec::new();
                for e in &mut engines {
                    let got = answer(e.store.receive_messages(id, p.clone()).await);
                    if let Some(got) = &got {
                        e.held.extend(got.messages.iter().map(|m| (queue, Lease { seq: m.seq, lease: m.lease })));
                    }
                    answers.push(comparable(&got));
                }
                agree(&answers, &engines, &context);
            }
            60..=71 => {
                let picks: Vec<usize> = (0..rng.gen_range(1..=3)).map(|_| rng.gen_range(0..usize::MAX)).collect();
                let mut answers = Vec::new();
                for e in &mut engines {
                    if e.held.is_empty() {
                        continue;
                    }
                    let leases: Vec<Lease> = picks.iter().map(|p| e.held[p % e.held.len()]).map(|(_, l)| l).collect();
                    let refuse_expired_at = (delivery == Delivery::Fifo).then_some(now);
                    answers.push(answer(e.store.delete_messages(id, leases, refuse_expired_at).await));
                }
                agree(&answers, &engines, &context);
            }
            72..=81 => {
                let pick = rng.gen_range(0..usize::MAX);
                let timeout = [0, 10, 60, 100_000][rng.gen_range(0..4)];
                let mut answers = Vec::new();
                for e in &mut engines {
                    if e.held.is_empty() {
                        continue;
                    }
                    let (_, lease) = e.held[pick % e.held.len()];
                    let change = vec![ChangeVisibility { lease, visibility_timeout_ms: timeout }];
                    answers.push(answer(e.store.change_visibility(id, change, now, 1_000).await));
                }
                agree(&answers, &engines, &context);
            }
            82..=84 => {
                let mut answers = Vec::new();
                for e in &engines {
                    answers.push(answer(e.store.expire_messages(id, now - 1_500).await));
                }
                agree(&answers, &engines, &context);
            }
            85..=86 => {
                // What fair queues read about their tenants.
                let groups: Vec<String> = (0..rng.gen_range(0..3)).map(|g| format!("g{g}")).collect();
                let mut answers = Vec::new();
                for e in &engines {
                    let load = answer(e.store.group_load(id, now).await);
                    let counts = answer(e.store.group_counts(id, groups.clone(), now).await);
                    let oldest = answer(e.store.oldest_outside(id, groups.clone(), 5).await);
                    answers.push((load, counts, oldest));
                }
                agree(&answers, &engines, &context);
            }
            87..=91 => {
                let Some(target) = dead_letter_for(queue) else { continue };
                let limit = rng.gen_range(0..4);
                let mut answers = Vec::new();
                for e in &engines {
                    answers.push(answer(e.store.dead_letter_exhausted(id, target.clone(), now, limit).await));
                }
                agree(&answers, &engines, &context);
            }
            92..=98 => {
                // A move task's step: list movable messages, send them back to the queue each
                // came from (by its source ARN), or elsewhere.
                let limit = rng.gen_range(0..4);
                let mut answers = Vec::new();
                for e in &engines {
                    let Some(movable) = answer(e.store.movable_messages(id, now, limit).await) else {
                        answers.push(None);
                        continue;
                    };
                    let moves: Vec<MessageMove> = movable
                        .iter()
                        .map(|m| MessageMove {
                            seq: m.seq,
                            destination: match m.dead_letter_source_arn.as_deref() {
                                Some("arn:a") => 1,
                                Some(_) => 3,
                                None => (id % 4) + 1,
                            },
                            reset_sent_at: m.seq % 2 == 0,
                        })
                        .collect();
                    // One long-running task per source queue carries every step.
                    let handle = format!("task-{id}");
                    let task = MoveTask {
                        handle: handle.clone(),
                        source_queue: id,
                        source_arn: format!("arn:q{id}"),
                        destination_arn: None,
                        max_per_second: None,
                        status: MoveTaskStatus::Running,
                        moved: 0,
                        to_move: u64::MAX,
                        started_at: now,
                        failure_reason: None,
                    };
                    e.store.start_move_task(task).await.unwrap();
                    let before = e.store.move_tasks(Some(id)).await.unwrap()[0].moved;
                    let after = e.store.advance_move_task(&handle, MoveStep::Moved(moves), now).await.unwrap();
                    answers.push(Some((movable, after.map(|t| t.moved - before))));
                }
                agree(&answers, &engines, &context);
            }
            _ => {
                let mut answers = Vec::new();
                for e in &engines {
                    answers.push(answer(e.store.purge_queue(id, now, 500).await));
                }
                agree(&answers, &engines, &context);
            }
        }
        for q in 1..=4 {
            let mut counts = Vec::new();
            for e in &engines {
                counts.push(e.store.queue_counts(q, now).await.unwrap());
            }
            agree(&counts, &engines, &format!("{context}: counts of queue {q}"));
        }
    }
    let journal = engines.iter().position(|e| e.name == "journal").unwrap();
    let journal = engines.remove(journal);
    for e in &engines {
        e.store.close().await.unwrap();
    }
    journal_reopens_as_it_was(journal.store, &journal.held, journal_dir, now, seed).await;
}

/// A copy of the journal taken while the store is open replays to the same state, and so does
/// the store reopened from the snapshot its close wrote: compared by deleting with every lease
/// the live store handed out (replay must have handed out the same ones), then by draining every
/// queue from both (every field of every message but the new leases, which each start draws
/// afresh) and by their move tasks.
async fn journal_reopens_as_it_was(
    live: Box<dyn Store>,
    held: &[(usize, Lease)],
    dir: tempfile::TempDir,
    now: Millis,
    seed: u64,
) {
    let copy = tempfile::tempdir().unwrap();
    let copied = copy.path().join("journal");
    std::fs::create_dir_all(&copied).unwrap();
    for entry in std::fs::read_dir(dir.path().join("journal")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "lock" {
            std::fs::copy(entry.path(), copied.join(entry.file_name())).unwrap();
        }
    }
    live.close().await.unwrap();
    drop(live);
    let replayed = JournalStore::open(copy.path()).unwrap();
    let reopened = JournalStore::open(dir.path()).unwrap();
    let context = format!("seed {seed}: journal replayed vs reopened from its snapshot");
    let mut deleted = 0;
    for &(queue, lease) in held {
        let q = queue as QueueId + 1;
        let a = replayed.delete_messages(q, vec![lease], None).await.unwrap();
        let b = reopened.delete_messages(q, vec![lease], None).await.unwrap();
        assert_eq!(a, b, "{context}: deleting {lease:?} from queue {q}");
        deleted += a.iter().filter(|o| **o == holdfast_core::store::DeleteOutcome::Deleted).count();
    }
    assert!(deleted > 0, "{context}: no held lease was still current, so none was checked");
    let without_leases = |mut o: ReceiveOutcome| {
        o.messages.iter_mut().for_each(|m| m.lease = 0);
        o
    };
    for q in 1..=QUEUES.len() as QueueId {
        assert_eq!(
            replayed.move_tasks(Some(q)).await.unwrap(),
            reopened.move_tasks(Some(q)).await.unwrap(),
            "{context}"
        );
        let later = now + 1_000_000;
        loop {
            let params = ReceiveParams::new(10, 1_000_000_000, i64::MAX / 4, later);
            let a = without_leases(replayed.receive_messages(q, params.clone()).await.unwrap());
            let b = without_leases(reopened.receive_messages(q, params).await.unwrap());
            assert_eq!(a, b, "{context}: queue {q}");
            if a.messages.is_empty() {
                break;
            }
        }
        assert_eq!(replayed.queue_counts(q, later).await.unwrap(), reopened.queue_counts(q, later).await.unwrap());
    }
}

#[tokio::test]
async fn engines_agree_on_random_histories() {
    for seed in 0..SEEDS {
        run(seed).await;
    }
}
