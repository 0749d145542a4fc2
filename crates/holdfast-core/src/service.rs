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
    /// Serialises changes to message move tasks (the runner's progress and cancellations).
    pub(crate) move_tasks_lock: tokio::sync::Mutex<()>,
    /// Serialises AddPermission and RemovePermission, which read, edit and write back the Policy
    /// document: two at once must not lose one's statement.
    pub(crate) permissions_lock: tokio::sync::Mutex<()>,
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
        Sqs {
            store,
            clock,
            config,
            waiters,
            move_tasks_lock: tokio::sync::Mutex::new(()),
            permissions_lock: tokio::sync::Mutex::new(()),
            shutdown,
        }
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub async fn handle(self: &Arc<Self>, ctx: &RequestContext, request: Request) -> Result<Response, SqsError> {
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
            R::RemovePermission(r) => {
                Response::RemovePermission(actions::permissions::remove_permission(self, r).await?)
            }
            R::ListDeadLetterSourceQueues(r) => Response::ListDeadLetterSourceQueues(
                actions::dead_letters::list_dead_letter_source_queues(self, ctx, r).await?,
            ),
            R::StartMessageMoveTask(r) => {
                Response::StartMessageMoveTask(actions::move_tasks::start_message_move_task(self, r).await?)
            }
            R::CancelMessageMoveTask(r) => {
                Response::CancelMessageMoveTask(actions::move_tasks::cancel_message_move_task(self, r).await?)
            }
            R::ListMessageMoveTasks(r) => {
                Response::ListMessageMoveTasks(actions::move_tasks::list_message_move_tasks(self, r).await?)
            }
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

    /// Starts the service's own work: resumes message move tasks interrupted by a restart, then
    /// periodically dead-letters exhausted messages of queues nobody receives from and removes
    /// messages past their retention period. Runs until the task is aborted.
    pub fn spawn_background(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let sqs = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(error) = actions::move_tasks::resume(&sqs).await {
                tracing::warn!(%error, "resuming message move tasks failed");
            }
            let mut ticks: u64 = 0;
            let mut interval = tokio::time::interval(HOUSEKEEPING_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                match actions::dead_letters::sweep(&sqs).await {
                    Ok(0) => {}
                    Ok(moved) => tracing::info!(moved, "moved exhausted messages to their dead-letter queues"),
                    Err(error) => tracing::warn!(%error, "dead-letter sweep failed"),
                }
                if ticks.is_multiple_of(EXPIRY_EVERY_TICKS) {
                    match sqs.expire_messages().await {
                        Ok(0) => {}
                        Ok(removed) => tracing::info!(removed, "expired messages past their retention period"),
                        Err(error) => tracing::warn!(%error, "expiring messages failed"),
                    }
                }
                ticks += 1;
            }
        })
    }

    /// Removes expired messages of every queue, so retention holds even for queues nobody
    /// receives from.
    pub async fn expire_messages(&self) -> Result<u64, SqsError> {
        let retention: Vec<(i64, i64)> = actions::dead_letters::all_queues(self)
            .await?
            .iter()
            .map(|q| (q.id, i64::from(QueueSettings::from_attributes(&q.attributes).message_retention_period) * 1000))
            .collect();
        self.store.expire_messages(&retention, self.now()).await.map_err(internal)
    }
}

/// How often exhausted messages are dead-lettered when nobody receives them.
const HOUSEKEEPING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
/// Retention expiry runs every this many housekeeping ticks (30 s).
const EXPIRY_EVERY_TICKS: u64 = 15;

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
