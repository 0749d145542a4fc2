//! Storage engines behind `holdfast_core::store::Store`, and the one conformance suite they pass.
//!
//! - `memory`: everything in one process's memory, for `--storage memory` and tests.
//! - `journal`: the memory engine's state, with every state-changing call appended to a journal
//!   on disk (group commit, snapshots, replay at start): durable, and faster than SQLite.
//! - `sqlite`: the durable default, one SQLite database written by one thread with group commit.
//! - `postgres`: several nodes on one PostgreSQL database.
//! - `rules` (private): the decisions every engine shares (attribute merge, visibility change,
//!   deduplication keys and windows, expire / dead-letter / deliver for each message receive
//!   meets, what a moved message keeps, move-task order), so the engines only differ in how they
//!   find data.
//! - `conformance`: every storage test, written once against `&dyn Store`; each engine stamps it
//!   out with `conformance_tests!` (see `tests/conformance.rs`).
//!
//! Both engines implement FIFO delivery the same way: per message group, the head (lowest seq)
//! decides whether the group is available, and available groups are found through a "ready" set
//! ordered by head seq, refilled from a "waiting" set ordered by head visibility. Messages
//! without a group id are not in any group, so a FIFO receive never sees them; the service sets
//! a group id on every FIFO message (FIFO queues <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fifo-queues.html>).
//!
//! Architecture Invariant: this crate knows no SQS validation rule. It stores what the service
//! has already validated and enforces only the invariants `Store` documents (atomicity, lease
//! checks, `(visible_at, seq)` ordering, cooldowns by the durations it is given).

pub mod conformance;
pub mod journal;
pub mod memory;
pub mod postgres;
mod rules;
pub mod sqlite;

pub use journal::{JournalOptions, JournalStore};
pub use memory::MemoryStore;
pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::{Home, SqliteStore};
