//! Storage engines behind `holdfast_core::store::Store`, and the one conformance suite they pass.
//!
//! - `memory`: everything in one process's memory, for `--storage memory` and tests.
//! - `sqlite`: the durable default, one SQLite database written by one thread with group commit.
//! - `rules` (private): the few decisions both engines share (attribute merge, visibility change).
//! - `conformance`: every storage test, written once against `&dyn Store`; each engine stamps it
//!   out with `conformance_tests!` (see `tests/conformance.rs`).
//!
//! Architecture Invariant: this crate knows no SQS validation rule. It stores what the service
//! has already validated and enforces only the invariants `Store` documents (atomicity, lease
//! checks, `(visible_at, seq)` ordering, cooldowns by the durations it is given).

pub mod conformance;
pub mod memory;
mod rules;
pub mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;
