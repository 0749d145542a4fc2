//! Runs the conformance suite (`holdfast_store::conformance`) against every engine: one test per
//! case per engine, named `<engine>::<case>`.

use holdfast_core::store::Store;
use holdfast_store::{MemoryStore, SqliteStore};

mod memory {
    use super::*;

    holdfast_store::conformance_tests!(|| async { Some((Box::new(MemoryStore::new()) as Box<dyn Store>, ())) });
}

mod sqlite {
    use super::*;

    holdfast_store::conformance_tests!(|| async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("open a fresh store");
        Some((Box::new(store) as Box<dyn Store>, dir))
    });
}

/// Each case in a schema of its own in `HOLDFAST_TEST_POSTGRES_URL`'s database.
mod postgres {
    use super::*;
    use holdfast_store::postgres::ScratchSchema;

    holdfast_store::conformance_tests!(|| async {
        let schema = ScratchSchema::create().await?;
        let store = schema.store().await;
        Some((Box::new(store) as Box<dyn Store>, schema))
    });
}

/// The journaled engine, in a fresh data directory per case.
mod journal {
    use super::*;
    use holdfast_store::JournalStore;

    holdfast_store::conformance_tests!(|| async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = JournalStore::open(dir.path()).expect("open a fresh journal");
        Some((Box::new(store) as Box<dyn Store>, dir))
    });
}
