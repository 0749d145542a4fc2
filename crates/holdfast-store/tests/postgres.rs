//! What only the PostgreSQL engine has: its schema's migrations, shared by nodes that start
//! together, and its refusal of a schema newer than itself.

use holdfast_core::store::Store;
use holdfast_store::postgres::ScratchSchema;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_start_together_migrate_once() {
    let Some(schema) = ScratchSchema::create().await else { return };
    let schema = std::sync::Arc::new(schema);
    let starts: Vec<_> = (0..6)
        .map(|_| {
            let schema = std::sync::Arc::clone(&schema);
            async move { schema.store().await }
        })
        .collect();
    let stores = futures_join(starts).await;
    // Every node works on the one schema: a queue created through one is found through all.
    let created = stores[0]
        .create_queue("000000000000", "us-east-1", "shared", Default::default(), Default::default(), 1, 0)
        .await
        .expect("create");
    assert!(matches!(created, holdfast_core::store::CreateQueueOutcome::Created(_)));
    for store in &stores {
        assert!(store.get_queue("000000000000", "us-east-1", "shared").await.unwrap().is_some());
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let Some(schema) = ScratchSchema::create().await else { return };
    drop(schema.store().await);
    let (client, connection) =
        tokio_postgres::connect(&schema.url().replace("%3D", "="), tokio_postgres::NoTls).await.expect("connect");
    let connection = tokio::spawn(connection);
    client.batch_execute("UPDATE holdfast_schema SET version = version + 1").await.expect("bump the version");
    drop(client);
    let _ = connection.await;
    let url = schema.url();
    let refused = holdfast_store::PostgresStore::connect(&url, Default::default()).await;
    let error = refused.expect_err("a schema from a newer holdfast is not opened").chain();
    assert!(error.contains("schema version"), "{error}");
}

/// Runs the futures at once and returns their outputs in order.
async fn futures_join<F: std::future::Future + Send + 'static>(futures: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.expect("task"));
    }
    outputs
}
