//! End-to-end tests: the real `holdfast` binary, driven over HTTP by aws-sdk-sqs (and by raw
//! sockets where a client would not misbehave enough). One test binary for all of them, so the
//! SDK is linked once. Queue semantics in detail are tested against `Sqs` itself
//! (`crates/holdfast-core/tests/service`); these check what only the whole process shows: the
//! wire, durability across `kill -9`, faults from outside, the CLI.

// First, so its macros are in scope for the rest.
#[macro_use]
mod common;

mod auth;
mod bench_postgres;
mod cli;
mod cloudwatch;
mod crash;
mod crash_fifo_dlq;
mod dead_letters;
mod durability;
mod encryption;
mod fair;
mod faults;
mod fifo;
mod init;
mod messages;
mod metrics;
mod nodes;
mod policies;
mod queues;
mod regions;
mod server;
mod tls;
mod traces;
