//! What recording the per-queue metrics costs a request: one message sent, received and deleted
//! through `Sqs` over the memory engine (so the figure is the service's own CPU, with no disk and
//! no HTTP), with recording on (the default 15-day retention) and off (`0`), side by side.
//! Figures only; nothing here asserts on time.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use holdfast_api::types::{CreateQueueRequest, DeleteMessageRequest, ReceiveMessageRequest, SendMessageRequest};
use holdfast_api::{Request, Response};
use holdfast_core::{RequestContext, ServiceConfig, Sqs, SystemClock};
use holdfast_store::MemoryStore;

fn service(retention_ms: i64, runtime: &tokio::runtime::Runtime) -> (Arc<Sqs>, RequestContext, String) {
    let (_, shutdown) = tokio::sync::watch::channel(false);
    let config = ServiceConfig { metrics_retention_ms: retention_ms, ..ServiceConfig::default() };
    let sqs = Arc::new(Sqs::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock), config, shutdown));
    let ctx = RequestContext { base_url: "http://bench".into(), ..Default::default() };
    let create = Request::CreateQueue(CreateQueueRequest { queue_name: "bench".into(), ..Default::default() });
    let url = match runtime.block_on(sqs.handle(&ctx, create)) {
        Ok(Response::CreateQueue(created)) => created.queue_url.unwrap(),
        other => panic!("{other:?}"),
    };
    (sqs, ctx, url)
}

async fn roundtrip(sqs: &Arc<Sqs>, ctx: &RequestContext, url: &str) {
    let send = SendMessageRequest { queue_url: url.into(), message_body: "x".repeat(256), ..Default::default() };
    sqs.handle(ctx, Request::SendMessage(send)).await.unwrap();
    let receive = ReceiveMessageRequest { queue_url: url.into(), ..Default::default() };
    let Ok(Response::ReceiveMessage(received)) = sqs.handle(ctx, Request::ReceiveMessage(receive)).await else {
        panic!("receive")
    };
    let message = received.messages.unwrap().pop().unwrap();
    let delete = DeleteMessageRequest { queue_url: url.into(), receipt_handle: message.receipt_handle };
    sqs.handle(ctx, Request::DeleteMessage(delete)).await.unwrap();
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("metrics");
    group.throughput(Throughput::Elements(1));
    for (label, retention_ms) in [("recorded", 15 * 24 * 3_600_000), ("not recorded", 0)] {
        let (sqs, ctx, url) = service(retention_ms, &runtime);
        group.bench_function(format!("send+receive+delete, {label}"), |b| {
            b.iter(|| runtime.block_on(roundtrip(&sqs, &ctx, &url)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
