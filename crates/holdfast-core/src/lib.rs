//! Queue semantics of the SQS API, independent of wire formats and storage engines.
//!
//! Request path: the transport decodes a typed `holdfast_api::Request`, `Sqs::handle` dispatches it
//! to its action module in `actions/`, which validates it, makes one `Store` call per state change,
//! and answers a typed `holdfast_api::Response`.
//!
//! The public surface is what the binary and the storage engines need: `Sqs` and its settings,
//! the `Store` trait with its types, and the `Clock`. Everything else is this crate's own.

pub mod clock;
pub mod encryption;
pub mod policy;
pub mod store;

mod access;
mod actions;
pub mod cloudwatch;
mod fairness;
mod fifo;
mod in_flight;
mod message_attributes;
pub mod names;
mod queue_attributes;
pub mod queue_metrics;
mod receipt;
mod redrive;
mod service;
mod timer;
mod validate;
mod waiters;

pub use access::{Caller, Transport};
pub use clock::{Clock, ManualClock, SystemClock};
pub use fairness::FairQueueMetrics;
pub use service::{RequestContext, ServiceConfig, Sqs};
pub use store::Store;

/// The account a server serves when none is configured, as SQS emulators conventionally use.
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";

/// The MD5 digests SQS answers carry (`MD5OfMessageBody`, `MD5OfMessageAttributes`) and the
/// canonical attribute encoding they are computed over, for benchmarks and for clients that
/// check digests.
pub mod digest {
    pub use crate::message_attributes::{decode, encode, md5_hex, md5_of_attributes};
}
