//! Runs the conformance suite (`holdfast_store::conformance`) against every engine: one test per
//! case per engine, named `<engine>::<case>`.

use holdfast_core::store::Store;
use holdfast_store::{MemoryStore, SqliteStore};

mod memory {
    use super::*;

    holdfast_store::conformance_tests!(|| (Box::new(MemoryStore::new()) as Box<dyn Store>, ()));
}

mod sqlite {
    use super::*;

    holdfast_store::conformance_tests!(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("open a fresh store");
        (Box::new(store) as Box<dyn Store>, dir)
    });
}
