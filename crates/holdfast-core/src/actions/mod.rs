//! One module per action family. Each function takes the service and the typed request and
//! returns the typed response; batch forms sit beside their single forms and reuse their checks.

pub mod dead_letters;
pub mod delete;
pub mod move_tasks;
pub mod permissions;
pub mod queues;
pub mod receive;
pub mod send;
pub mod tags;
pub mod visibility;

use holdfast_api::SqsError;

/// Turns a store "queue does not exist" (`None`/`false`) into the SQS error.
pub(crate) fn exists<T>(value: Option<T>) -> Result<T, SqsError> {
    value.ok_or_else(crate::service::does_not_exist)
}
