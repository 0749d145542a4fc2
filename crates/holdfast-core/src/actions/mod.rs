//! One module per action family. Each function takes the service and the typed request and
//! returns the typed response; batch forms sit beside their single forms and reuse their checks.

pub mod delete;
pub mod permissions;
pub mod queues;
pub mod receive;
pub mod send;
pub mod tags;
pub mod visibility;

use holdfast_api::{sqs_error, SqsError};

/// Actions of the API that this release does not implement yet: a clear error, never a silent
/// wrong answer.
pub(crate) fn not_yet(what: &str) -> SqsError {
    sqs_error!(UnsupportedOperation, "{what} is not supported by this server yet.")
}

/// Turns a store "queue does not exist" (`None`/`false`) into the SQS error.
pub(crate) fn exists<T>(value: Option<T>) -> Result<T, SqsError> {
    value.ok_or_else(crate::service::does_not_exist)
}
