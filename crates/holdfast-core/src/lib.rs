//! Queue semantics of the SQS API, independent of wire formats and storage engines.
//!
//! Request path: the transport decodes a typed `holdfast_api::Request`, `Sqs::handle` dispatches it
//! to its action module in `actions/`, which validates it, makes one `Store` call per state change,
//! and answers a typed `holdfast_api::Response`.

pub mod actions;
pub mod clock;
pub mod fifo;
pub mod message_attributes;
pub mod names;
pub mod queue_attributes;
pub mod receipt;
pub mod redrive;
pub mod service;
pub mod store;
pub mod validate;
pub mod waiters;

pub use clock::{Clock, ManualClock, SystemClock};
pub use service::{RequestContext, ServiceConfig, Sqs};
pub use store::Store;
