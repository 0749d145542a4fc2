//! The SQS vocabulary (API version 2012-11-05), independent of any wire format or storage.
//!
//! Names follow the botocore service model exactly: each action's request and response is a
//! struct whose serde names are the model's member names, so both wire protocols can map onto
//! them without a translation table of their own. This crate does no I/O and knows nothing of
//! HTTP, JSON or SQL; serde derives only record the member names.

pub mod action;
pub mod blob;
pub mod calendar;
pub mod cloudwatch;
pub mod error;
pub mod limits;
pub mod types;

pub use action::{Action, NoOutput, Request, Response};
pub use blob::Blob;
pub use error::{ErrorCode, Fault, SqsError};
