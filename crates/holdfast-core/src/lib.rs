//! Queue semantics of the SQS API, independent of wire formats and storage engines.

pub mod store;
