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
