//! `Sqs` itself, over the memory engine, with time under the test's control: a `ManualClock` for
//! the service and paused tokio time for its timer and long polls, moved together by
//! `Harness::advance`. Nothing sleeps and nothing depends on the machine's speed, so every
//! case is fast and gives the same answer every run. The wire protocols and the durable engine
//! are tested end to end elsewhere (`crates/holdfast/tests/e2e`).

mod access;
mod dead_letters;
mod fair;
mod fifo;
mod harness;
mod in_flight;
mod long_poll;
mod metrics;
mod move_tasks;
mod permissions;
mod retention;
mod visibility;
