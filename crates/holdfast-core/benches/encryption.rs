//! What encryption at rest costs per message: sealing on send, opening on receive (the data key
//! already made and unwrapped, as for every message but a queue's first in a reuse period).
//! Figures only; nothing here asserts on time.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use holdfast_core::encryption::{Encryption, MasterKeys};
use holdfast_core::store::{NewMessage, StoredMessage};

fn message(body_size: usize) -> NewMessage {
    NewMessage {
        message_id: "5fea7756-0ea4-451a-a703-a558b933e274".into(),
        body: "x".repeat(body_size),
        attributes: vec![7; 64],
        system_attributes: Vec::new(),
        group_id: None,
        deduplication_id: None,
        sender_id: "000000000000".into(),
        sent_at: 0,
        visible_at: 0,
    }
}

fn stored(sealed: &NewMessage) -> StoredMessage {
    StoredMessage {
        seq: 1,
        message_id: sealed.message_id.clone(),
        body: sealed.body.clone(),
        attributes: sealed.attributes.clone(),
        system_attributes: sealed.system_attributes.clone(),
        group_id: None,
        deduplication_id: None,
        sender_id: sealed.sender_id.clone(),
        sent_at: 0,
        receive_count: 1,
        first_received_at: None,
        lease: 1,
        dead_letter_source_arn: None,
    }
}

fn bench(c: &mut Criterion) {
    let encryption = Encryption::new(MasterKeys::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap());
    let mut group = c.benchmark_group("encryption");
    group.throughput(Throughput::Elements(1));
    for size in [256, 256 * 1024] {
        let label = if size < 1024 { format!("{size} B") } else { format!("{} KiB", size / 1024) };
        let mut sealed = vec![message(size)];
        encryption.seal(1, 300_000, 0, &mut sealed);
        group.bench_function(format!("seal {label}"), |b| {
            b.iter(|| {
                let mut batch = vec![message(size)];
                encryption.seal(1, 300_000, 0, black_box(&mut batch));
                batch
            })
        });
        group.bench_function(format!("open {label}"), |b| {
            b.iter(|| {
                let mut one = stored(&sealed[0]);
                encryption.open(black_box(&mut one)).unwrap();
                one
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
