//! A schema of its own for each test that runs against PostgreSQL, dropped when the test ends, so
//! tests run in parallel on one database without seeing each other's queues.

use std::str::FromStr;

use super::{PostgresOptions, PostgresStore};

/// The variable naming the database tests use.
pub const TEST_DATABASE_VARIABLE: &str = "HOLDFAST_TEST_POSTGRES_URL";

/// A fresh schema in the test database; dropped (with everything in it) on drop.
pub struct ScratchSchema {
    url: String,
    name: String,
}

impl ScratchSchema {
    /// A new schema in the database `HOLDFAST_TEST_POSTGRES_URL` names. Without that variable
    /// `None` (the caller skips), except under CI (`CI` set), where a missing database fails.
    pub async fn create() -> Option<ScratchSchema> {
        let Ok(url) = std::env::var(TEST_DATABASE_VARIABLE) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{TEST_DATABASE_VARIABLE} is not set: the PostgreSQL tests cannot run (scripts/forms-deps.sh starts a \
                 database)"
            );
            eprintln!("skipped: {TEST_DATABASE_VARIABLE} is not set");
            return None;
        };
        let name = format!("holdfast_test_{:016x}", rand::random::<u64>());
        let (client, connection) =
            tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect to the test database");
        let connection = tokio::spawn(connection);
        client.batch_execute(&format!("CREATE SCHEMA {name}")).await.expect("create a test schema");
        drop(client);
        let _ = connection.await;
        Some(ScratchSchema { url, name })
    }

    /// The database URL, with this schema as the search path.
    pub fn url(&self) -> String {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{separator}options=-csearch_path%3D{}", self.url, self.name)
    }

    /// A store on this schema.
    pub async fn store(&self) -> PostgresStore {
        let mut config = tokio_postgres::Config::from_str(&self.url).expect("a valid test database URL");
        config.options(format!("-csearch_path={}", self.name));
        let options = PostgresOptions { pool_size: 4, ..PostgresOptions::default() };
        PostgresStore::connect_with(config, options).await.expect("open a PostgreSQL store")
    }
}

impl Drop for ScratchSchema {
    /// Drops the schema from a thread of its own: drop cannot await, and the test's runtime may be
    /// the single-threaded one that is running this drop.
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.ok()?;
                let connection = tokio::spawn(connection);
                client.batch_execute(&format!("DROP SCHEMA {name} CASCADE")).await.ok()?;
                drop(client);
                let _ = connection.await;
                Some(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop the test schema {}", self.name);
        }
    }
}
