//! MD5 digests and the canonical message-attribute encoding, per message. Figures only.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use holdfast_api::types::{MessageAttributeMap, MessageAttributeValue};
use holdfast_api::Blob;
use holdfast_core::digest::{decode, encode, md5_hex, md5_of_attributes};

fn ten_attributes() -> MessageAttributeMap {
    (0..10)
        .map(|i| {
            let value = match i % 3 {
                0 => MessageAttributeValue {
                    data_type: "String".into(),
                    string_value: Some(format!("value number {i}")),
                    ..Default::default()
                },
                1 => MessageAttributeValue {
                    data_type: "Number".into(),
                    string_value: Some(format!("{}", i * 1000 + 7)),
                    ..Default::default()
                },
                _ => MessageAttributeValue {
                    data_type: "Binary".into(),
                    binary_value: Some(Blob(vec![i as u8; 32])),
                    ..Default::default()
                },
            };
            (format!("attribute-{i}"), value)
        })
        .collect()
}

fn bench_md5(c: &mut Criterion) {
    let mut group = c.benchmark_group("md5");
    for (name, size) in [("body 256 B", 256usize), ("body 256 KiB", 256 * 1024)] {
        let body = vec![b'x'; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(name, |b| b.iter(|| black_box(md5_hex(black_box(&body)))));
    }
    group.finish();

    let attributes = ten_attributes();
    let encoded = encode(&attributes);
    let mut group = c.benchmark_group("message attributes (10)");
    group.bench_function("MD5OfMessageAttributes", |b| b.iter(|| black_box(md5_of_attributes(black_box(&attributes)))));
    group.bench_function("encode", |b| b.iter(|| black_box(encode(black_box(&attributes)))));
    group.bench_function("decode", |b| b.iter(|| black_box(decode(black_box(&encoded)))));
    group.finish();
}

criterion_group!(benches, bench_md5);
criterion_main!(benches);
