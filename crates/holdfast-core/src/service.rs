//! `Sqs`: the service. Takes typed requests, applies the SQS rules, makes one store call per
//! state change, and answers typed responses or `SqsError`s.
//!
//! Architecture Invariant: this module and `actions/` never see HTTP, JSON, XML or SQL.
//! Architecture Invariant: the dispatch in `Sqs::handle` is one exhaustive `match` with no
//! wildcard arm: a new action does not compile until it is handled.

use std::sync::Arc;

use holdfast_api::{sqs_error, Request, Response, SqsError};
use tokio::sync::watch;

use crate::actions;
use crate::clock::Clock;
use crate::names;
use crate::queue_attributes::QueueSettings;
use crate::store::{Millis, QueueRecord, Store, StoreError};
use crate::waiters::Waiters;

/// Deployment-wide settings the service needs.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub account_id: String,
    pub region: String,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig { account_id: "000000000000".into(), region: "us-east-1".into() }
    }
}

/// Per-request facts from the transport.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    /// Scheme, host and port clients reach us by, e.g. `http://localhost:9324`; queue URLs in
    /// answers start with it.
    pub base_url: String,
    /// The access key of the request's credentials, if it carried any; reported as `SenderId`.
    pub access_key_id: Option<String>,
}

pub struct Sqs {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: ServiceConfig,
    pub(crate) waiters: Waiters,
    shutdown: watch::Receiver<bool>,
}

/// A queue resolved from a request, with its effective settings.
pub(crate) struct Queue {
    pub record: QueueRecord,
    pub settings: QueueSettings,
}

impl Sqs {
    /// `shutdown` turns true when the server stops: waiting long polls then answer at once.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let waiters = Waiters::new(Arc::clone(&clock));
        Sqs { store, clock, config, waiters, shutdown }
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub async fn handle(&self, ctx: &RequestContext, request: Request) -> Result<Response, SqsError> {
        use Request as R;
        Ok(match request {
            R::CreateQueue(r) => Response::CreateQueue(actions::queues::create_queue(self, ctx, r).await?),
            R::DeleteQueue(r) => Response::DeleteQueue(actions::queues::delete_queue(self, r).await?),
            R::GetQueueUrl(r) => Response::GetQueueUrl(actions::queues::get_queue_url(self, ctx, r).await?),
            R::ListQueues(r) => Response::ListQueues(actions::queues::list_queues(self, ctx, r).await?),
            R::GetQueueAttributes(r) => {
                Response::GetQueueAttributes(actions::queues::get_queue_attributes(self, r).await?)
            }
            R::SetQueueAttributes(r) => {
                Response::SetQueueAttributes(actions::queues::set_queue_attributes(self, r).await?)
            }
            R::PurgeQueue(r) => Response::PurgeQueue(actions::queues::purge_queue(self, r).await?),
            R::TagQueue(r) => Response::TagQueue(actions::tags::tag_queue(self, r).await?),
            R::UntagQueue(r) => Response::UntagQueue(actions::tags::untag_queue(self, r).await?),
            R::ListQueueTags(r) => Response::ListQueueTags(actions::tags::list_queue_tags(self, r).await?),
            R::SendMessage(r) => Response::SendMessage(actions::send::send_message(self, ctx, r).await?),
            R::SendMessageBatch(r) => {
                Response::SendMessageBatch(actions::send::send_message_batch(self, ctx, r).await?)
            }
            R::ReceiveMessage(r) => Response::ReceiveMessage(actions::receive::receive_message(self, r).await?),
            R::DeleteMessage(r) => Response::DeleteMessage(actions::delete::delete_message(self, r).await?),
            R::DeleteMessageBatch(r) => {
                Response::DeleteMessageBatch(actions::delete::delete_message_batch(self, r).await?)
            }
            R::ChangeMessageVisibility(r) => {
                Response::ChangeMessageVisibility(actions::visibility::change_message_visibility(self, r).await?)
            }
            R::ChangeMessageVisibilityBatch(r) => Response::ChangeMessageVisibilityBatch(
                actions::visibility::change_message_visibility_batch(self, r).await?,
            ),
            R::AddPermission(r) => Response::AddPermission(actions::permissions::add_permission(self, r).await?),
            R::RemovePermission(r) => Response::RemovePermission(actions::permissions::remove_permission(self, r).await?),
            R::ListDeadLetterSourceQueues(_) => {
                return Err(actions::not_yet("ListDeadLetterSourceQueues (dead-letter queues)"))
            }
            R::StartMessageMoveTask(_) => return Err(actions::not_yet("StartMessageMoveTask (message move tasks)")),
            R::CancelMessageMoveTask(_) => return Err(actions::not_yet("CancelMessageMoveTask (message move tasks)")),
            R::ListMessageMoveTasks(_) => return Err(actions::not_yet("ListMessageMoveTasks (message move tasks)")),
        })
    }

    pub(crate) fn now(&self) -> Millis {
        self.clock.now()
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// Resolves a `QueueUrl` to a live queue of this account.
    pub(crate) async fn queue(&self, queue_url: &str) -> Result<Queue, SqsError> {
        let (account, name) = names::parse_queue_url(queue_url)?;
        if account != self.config.account_id {
            return Err(does_not_exist());
        }
        self.queue_by_name(name).await
    }

    pub(crate) async fn queue_by_name(&self, name: &str) -> Result<Queue, SqsError> {
        let record = self.store.get_queue(name).await.map_err(internal)?.ok_or_else(does_not_exist)?;
        let settings = QueueSettings::from_attributes(&record.attributes);
        Ok(Queue { record, settings })
    }

    pub(crate) fn queue_url(&self, ctx: &RequestContext, name: &str) -> String {
        names::queue_url(&ctx.base_url, &self.config.account_id, name)
    }

    pub(crate) fn queue_arn(&self, name: &str) -> String {
        names::queue_arn(&self.config.region, &self.config.account_id, name)
    }

    /// Removes expired messages of every queue. Run periodically by the server so retention holds
    /// even for queues nobody receives from.
    pub async fn expire_messages(&self) -> Result<u64, StoreError> {
        let mut retention = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list_queues("", after.as_deref(), 1000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.name.clone());
            retention.extend(page.iter().map(|q| {
                let settings = QueueSettings::from_attributes(&q.attributes);
                (q.id, i64::from(settings.message_retention_period) * 1000)
            }));
        }
        self.store.expire_messages(&retention, self.now()).await
    }
}

pub(crate) fn does_not_exist() -> SqsError {
    sqs_error!(QueueDoesNotExist, "The specified queue does not exist.")
}

/// Storage failures are logged with their cause and reported without it.
pub(crate) fn internal(error: StoreError) -> SqsError {
    match error {
        StoreError::Full(cause) => {
            tracing::warn!(%cause, "storage is full; refusing the request");
            sqs_error!(ServiceUnavailable, "The server is out of storage space; try again later.")
        }
        StoreError::Closed => sqs_error!(ServiceUnavailable, "The server is shutting down."),
        StoreError::Backend(cause) => {
            tracing::warn!(%cause, "storage failure");
            sqs_error!(InternalFailure, "The request processing has failed because of an unknown error.")
        }
    }
}
