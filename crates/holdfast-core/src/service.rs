//! `Sqs`: the service. Takes typed requests, applies the SQS rules, makes one store call per
//! state change, and answers typed responses or `SqsError`s.
//!
//! Architecture Invariant: this module and `actions/` never see HTTP, JSON, XML or SQL.
//! Architecture Invariant: the dispatch in `Sqs::handle` is one exhaustive `match` with no
//! wildcard arm: a new action does not compile until it is handled.

use std::sync::{Arc, Mutex};

use holdfast_api::{sqs_error, Request, Response, SqsError};
use tokio::sync::watch;

use crate::access::{Caller, Transport};
use crate::actions;
use crate::clock::Clock;
use crate::encryption::Encryption;
use crate::fairness::{self, FairQueueMetrics, Fairness};
use crate::in_flight::InFlight;
use crate::names;
use crate::queue_metrics::{minute_of, FairGauges, Gauges, QueueMinute, Recorder, MINUTE_MS};
use crate::store::{Millis, QueueId, QueueRecord, Store, StoreError};
use crate::timer::{Due, QueueKey, Timer};
use crate::waiters::Waiters;

/// Deployment-wide settings the service needs.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub account_id: String,
    /// The server's region: where requests without a signing region act, and where queue URLs
    /// without a region point.
    pub region: String,
    /// How queue URLs name their region (`names::UrlStyle`).
    pub url_style: names::UrlStyle,
    /// Messages a queue may have in flight (`crate::in_flight`); AWS's quota is 120,000.
    pub max_in_flight: u64,
    /// AWS's 60-second rules: a deleted queue's name cannot be reused, and a queue cannot be
    /// purged again, for 60 s. Off for test suites that delete and recreate queues.
    pub cooldowns: bool,
    /// Seals every message before it is stored (`crate::encryption`); `None` stores them as sent.
    pub encryption: Option<Arc<Encryption>>,
    /// How long per-minute queue metrics are kept (`crate::queue_metrics`); 0 records none.
    pub metrics_retention_ms: i64,
}

/// CloudWatch keeps one-minute data for 15 days.
pub const DEFAULT_METRICS_RETENTION_MS: i64 = 15 * 24 * 3600 * 1000;

impl ServiceConfig {
    /// Whether per-minute queue metrics are recorded.
    pub fn record_metrics(&self) -> bool {
        self.metrics_retention_ms > 0
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            account_id: crate::DEFAULT_ACCOUNT_ID.into(),
            region: "us-east-1".into(),
            url_style: names::UrlStyle::Path,
            max_in_flight: holdfast_api::limits::MAX_IN_FLIGHT,
            cooldowns: true,
            encryption: None,
            metrics_retention_ms: DEFAULT_METRICS_RETENTION_MS,
        }
    }
}

/// Per-request facts from the transport.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    /// Scheme, host and port clients reach us by, e.g. `http://localhost:9324`; queue URLs in
    /// answers start with it.
    pub base_url: String,
    /// Who sent the request, reported as a message's `SenderId`: the verified caller when
    /// requests are authenticated; `None` (the account, as AWS reports its root) otherwise.
    pub sender_id: Option<String>,
    /// The verified caller. `None` when authentication is off: the request acts for the server's
    /// account and is not authorized against any policy.
    pub caller: Option<Arc<Caller>>,
    /// What policy conditions may test about the connection.
    pub transport: Transport,
    /// The `X-Amzn-Trace-Id` header, which becomes a sent message's `AWSTraceHeader`.
    pub trace_header: Option<String>,
    /// The region of the request's SigV4 credential scope, when it names one
    /// (`names::is_region`): the region the request acts in, as on AWS.
    pub region: Option<String>,
}

impl RequestContext {
    /// The account the request acts for: the caller's, or the server's without authentication.
    pub fn account<'a>(&'a self, sqs: &'a Sqs) -> &'a str {
        self.caller.as_deref().map_or(sqs.config.account_id.as_str(), |c| c.principal.account_id.as_str())
    }

    /// The region the request acts in: its signing region, else the server's.
    pub fn region<'a>(&'a self, sqs: &'a Sqs) -> &'a str {
        self.region.as_deref().unwrap_or(sqs.config.region.as_str())
    }
}

pub struct Sqs {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: ServiceConfig,
    pub(crate) waiters: Arc<Waiters>,
    /// With a store several nodes share: how often a waiting receive looks at the store again
    /// whatever it was told (`SharedStore::recheck`).
    pub(crate) recheck: Option<std::time::Duration>,
    pub(crate) timer: Timer,
    pub(crate) fairness: Fairness,
    pub(crate) in_flight: InFlight,
    /// What requests did to each queue in the minutes not yet stored.
    pub(crate) recorder: Recorder,
    /// Whether this node does the housekeeping (retention, dead-letter sweeps, pruning): always
    /// with a store of its own; with a shared store, only the node that leads it.
    housekeeping: std::sync::atomic::AtomicBool,
    /// Message move tasks running in this process, by handle.
    pub(crate) running_moves: Mutex<std::collections::HashSet<String>>,
    shutdown: watch::Receiver<bool>,
}

/// A queue resolved from a request; `settings()` gives its effective settings.
pub(crate) type Queue = QueueRecord;

impl Sqs {
    /// `shutdown` turns true when the server stops: waiting long polls then answer at once.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let shared = store.take_shared();
        let waiters = match &shared {
            Some(_) => Arc::new(Waiters::announcing_to(Arc::clone(&store))),
            None => Arc::default(),
        };
        let recheck = shared.as_ref().map(|s| s.recheck);
        if let Some(mut shared) = shared {
            // Other nodes' sends wake this node's long polls on the same queue.
            let waiters = Arc::clone(&waiters);
            tokio::spawn(async move {
                while let Some(queue) = shared.visible_elsewhere.recv().await {
                    waiters.visible_elsewhere(queue);
                }
            });
        }
        Sqs {
            store,
            clock,
            config,
            waiters,
            housekeeping: std::sync::atomic::AtomicBool::new(recheck.is_none()),
            running_moves: Mutex::default(),
            recheck,
            timer: Timer::default(),
            fairness: Fairness::default(),
            in_flight: InFlight::default(),
            recorder: Recorder::default(),
            shutdown,
        }
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether the service can serve: its store answers a round trip.
    pub async fn check(&self) -> Result<(), StoreError> {
        self.store.check().await
    }

    pub async fn handle(self: &Arc<Self>, ctx: &RequestContext, request: Request) -> Result<Response, SqsError> {
        use Request as R;
        self.authorize(ctx, &request).await?;
        Ok(match request {
            R::CreateQueue(r) => Response::CreateQueue(actions::queues::create_queue(self, ctx, r).await?),
            R::DeleteQueue(r) => Response::DeleteQueue(actions::queues::delete_queue(self, ctx, r).await?),
            R::GetQueueUrl(r) => Response::GetQueueUrl(actions::queues::get_queue_url(self, ctx, r).await?),
            R::ListQueues(r) => Response::ListQueues(actions::queues::list_queues(self, ctx, r).await?),
            R::GetQueueAttributes(r) => {
                Response::GetQueueAttributes(actions::queues::get_queue_attributes(self, ctx, r).await?)
            }
            R::SetQueueAttributes(r) => {
                Response::SetQueueAttributes(actions::queues::set_queue_attributes(self, ctx, r).await?)
            }
            R::PurgeQueue(r) => Response::PurgeQueue(actions::queues::purge_queue(self, ctx, r).await?),
            R::TagQueue(r) => Response::TagQueue(actions::tags::tag_queue(self, ctx, r).await?),
            R::UntagQueue(r) => Response::UntagQueue(actions::tags::untag_queue(self, ctx, r).await?),
            R::ListQueueTags(r) => Response::ListQueueTags(actions::tags::list_queue_tags(self, ctx, r).await?),
            R::SendMessage(r) => Response::SendMessage(actions::send::send_message(self, ctx, r).await?),
            R::SendMessageBatch(r) => {
                Response::SendMessageBatch(actions::send::send_message_batch(self, ctx, r).await?)
            }
            R::ReceiveMessage(r) => Response::ReceiveMessage(actions::receive::receive_message(self, ctx, r).await?),
            R::DeleteMessage(r) => Response::DeleteMessage(actions::delete::delete_message(self, ctx, r).await?),
            R::DeleteMessageBatch(r) => {
                Response::DeleteMessageBatch(actions::delete::delete_message_batch(self, ctx, r).await?)
            }
            R::ChangeMessageVisibility(r) => {
                Response::ChangeMessageVisibility(actions::visibility::change_message_visibility(self, ctx, r).await?)
            }
            R::ChangeMessageVisibilityBatch(r) => Response::ChangeMessageVisibilityBatch(
                actions::visibility::change_message_visibility_batch(self, ctx, r).await?,
            ),
            R::AddPermission(r) => Response::AddPermission(actions::permissions::add_permission(self, ctx, r).await?),
            R::RemovePermission(r) => {
                Response::RemovePermission(actions::permissions::remove_permission(self, ctx, r).await?)
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

    /// Every live queue, in (account, region, name) order.
    pub async fn queues(&self) -> Result<Vec<QueueRecord>, SqsError> {
        actions::dead_letters::all_queues(self).await
    }

    /// The queue's `ApproximateNumberOfMessages*` counts now.
    pub async fn queue_counts(&self, queue: &QueueRecord) -> Result<crate::store::QueueCounts, SqsError> {
        self.store.queue_counts(queue.id, self.now()).await.map_err(from_store)
    }

    /// The fair-queue figures of a standard queue whose messages carry group ids
    /// (`crate::fairness`); `None` for other queues.
    pub async fn fair_queue_metrics(&self, queue: &QueueRecord) -> Result<Option<FairQueueMetrics>, SqsError> {
        if queue.settings().fifo || !self.fairness.tracks(queue.id) {
            return Ok(None);
        }
        let now = self.now();
        let noisy_groups = self.fairness.noisy(queue.id);
        let mut noisy_with_backlog = 0;
        let mut noisy_counts = crate::store::QueueCounts::default();
        for group in &noisy_groups {
            let counts = self.store.group_counts(queue.id, vec![group.clone()], now).await.map_err(from_store)?;
            noisy_counts.visible += counts.visible;
            noisy_counts.in_flight += counts.in_flight;
            noisy_counts.delayed += counts.delayed;
            noisy_with_backlog += u64::from(counts.visible > 0);
        }
        let all = self.store.queue_counts(queue.id, now).await.map_err(from_store)?;
        let oldest =
            self.store.oldest_outside(queue.id, noisy_groups, fairness::OLDEST_QUIET_LOOK).await.map_err(from_store)?;
        Ok(Some(fairness::quiet_metrics(noisy_with_backlog, all, noisy_counts, oldest, now)))
    }

    /// A queue's gauges now: counts, the age of its oldest message, the fair-queue figures.
    pub async fn sample_gauges(&self, queue: &QueueRecord) -> Result<Gauges, SqsError> {
        let now = self.now();
        let counts = self.store.queue_counts(queue.id, now).await.map_err(from_store)?;
        let oldest = if counts.visible + counts.in_flight + counts.delayed == 0 {
            None
        } else {
            self.store.oldest_outside(queue.id, Vec::new(), 1).await.map_err(from_store)?
        };
        let fair = self.fair_queue_metrics(queue).await?.map(|f| FairGauges {
            noisy_groups: f.approximate_number_of_noisy_groups,
            visible_in_quiet_groups: f.approximate_number_of_messages_visible_in_quiet_groups,
            not_visible_in_quiet_groups: f.approximate_number_of_messages_not_visible_in_quiet_groups,
            delayed_in_quiet_groups: f.approximate_number_of_messages_delayed_in_quiet_groups,
            oldest_age_in_quiet_groups_seconds: f.approximate_age_of_oldest_message_in_quiet_groups,
        });
        Ok(Gauges {
            visible: counts.visible,
            not_visible: counts.in_flight,
            delayed: counts.delayed,
            oldest_age_seconds: oldest.map_or(0, |sent_at| u64::try_from((now - sent_at) / 1000).unwrap_or(0)),
            fair,
        })
    }

    /// What requests did to `queue` since the server started (for Prometheus counters).
    pub fn queue_totals(&self, queue: &QueueRecord) -> crate::queue_metrics::Totals {
        self.recorder.totals(queue.id)
    }

    /// Writes the queue metrics of every minute that has ended: the counters requests added,
    /// and, for the minute that just ended, each active queue's gauges sampled now. With
    /// `everything` (at shutdown) the open minute's counters are written too, without gauges,
    /// so a restart loses none of them.
    pub async fn close_minutes(&self, everything: bool) -> Result<(), SqsError> {
        if !self.config.record_metrics() {
            return Ok(());
        }
        let now = self.now();
        let open = minute_of(now);
        let just_ended = open - MINUTE_MS;
        let mut pending: std::collections::HashMap<QueueId, Vec<(Millis, crate::queue_metrics::Pending)>> =
            std::collections::HashMap::new();
        for (minute, counters) in self.recorder.take_before(if everything { open + MINUTE_MS } else { open }) {
            pending.entry(counters.key.id).or_default().push((minute, counters));
        }
        let mut rows: Vec<QueueMinute> = Vec::new();
        if !everything {
            // Only queues that may be active are sampled (an idle server with many empty queues
            // does no store work), except for a periodic look at all of them.
            let full_look = self.recorder.needs_full_look();
            let anything = full_look || !pending.is_empty() || self.recorder.any_active(now);
            for queue in if anything { self.queues().await? } else { Vec::new() } {
                let used = pending.contains_key(&queue.id) || self.recorder.recently_used(queue.id, now);
                if !used && !full_look && !self.recorder.was_holding(queue.id) {
                    continue;
                }
                let gauges = self.sample_gauges(&queue).await?;
                let holds_messages = gauges.visible + gauges.not_visible + gauges.delayed > 0;
                self.recorder.sampled(queue.id, holds_messages);
                if !used && !holds_messages {
                    continue;
                }
                let mut counters = pending.remove(&queue.id).unwrap_or_default();
                let mut gauges = Some(gauges);
                for (minute, counters) in counters.drain(..) {
                    let sampled = if minute == just_ended { gauges.take() } else { None };
                    rows.push(counters.into_minute(minute, sampled));
                }
                if let Some(gauges) = gauges {
                    rows.push(QueueMinute {
                        account: queue.account_id.clone(),
                        region: queue.region.clone(),
                        queue: queue.name.clone(),
                        minute: just_ended,
                        gauges: Some(gauges),
                        ..QueueMinute::default()
                    });
                }
            }
        }
        // Queues deleted since (and everything, at shutdown): their counters without gauges.
        rows.extend(pending.into_values().flatten().map(|(minute, counters)| counters.into_minute(minute, None)));
        let forget_before = now - self.config.metrics_retention_ms;
        let mut rows = self.recorder.take_unsaved().into_iter().chain(rows).collect::<Vec<_>>();
        rows.retain(|row| row.minute >= forget_before);
        match self.store.record_queue_minutes(rows.clone(), forget_before).await {
            Ok(()) => Ok(()),
            Err(error) => {
                // Kept for the next attempt, within a bound (`Recorder::keep_unsaved`).
                self.recorder.keep_unsaved(rows);
                Err(from_store(error))
            }
        }
    }

    /// Closes each minute a second after it ends, until shutdown.
    async fn run_metrics(self: Arc<Self>) {
        let mut shutdown = self.shutdown_signal();
        loop {
            let now = self.now();
            let next = minute_of(now) + MINUTE_MS + 1_000;
            let wait = std::time::Duration::from_millis(u64::try_from(next - now).unwrap_or(1_000).max(1));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            if let Err(error) = self.close_minutes(false).await {
                tracing::warn!(%error, "recording queue metrics failed; the counters are kept for the next minute");
            }
        }
    }

    pub(crate) fn now(&self) -> Millis {
        self.clock.now()
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// Resolves a `QueueUrl` to a live queue. (Whether the caller may use it was decided before
    /// the action ran: `Sqs::authorize`.)
    pub(crate) async fn queue(&self, ctx: &RequestContext, queue_url: &str) -> Result<Queue, SqsError> {
        let (account, region, name) = self.resolve(ctx, names::parse_queue_url(queue_url)?);
        self.queue_by_name(account, region, name).await
    }

    /// Completes a queue address: a bare name is the caller's, in the request's region; a URL
    /// without a region points at the server's region, where every queue lived before regions,
    /// so URLs handed out then keep working.
    pub(crate) fn resolve<'a>(
        &'a self,
        ctx: &'a RequestContext,
        address: names::QueueAddress<'a>,
    ) -> (&'a str, &'a str, &'a str) {
        let region = match (address.region, address.account) {
            (Some(region), _) => region,
            (None, Some(_)) => self.config.region.as_str(),
            (None, None) => ctx.region(self),
        };
        (address.account.unwrap_or(ctx.account(self)), region, address.name)
    }

    pub(crate) async fn queue_by_name(&self, account: &str, region: &str, name: &str) -> Result<Queue, SqsError> {
        self.store.get_queue(account, region, name).await.map_err(from_store)?.ok_or_else(does_not_exist)
    }

    pub(crate) fn queue_url(&self, ctx: &RequestContext, queue: &Queue) -> String {
        names::queue_url(self.config.url_style, &ctx.base_url, &self.config.region, queue)
    }

    pub(crate) fn queue_arn(&self, queue: &Queue) -> String {
        names::queue_arn(&queue.region, &queue.account_id, &queue.name)
    }

    /// Starts the service's own work: resumes message move tasks interrupted by a restart,
    /// schedules a first look at every queue (retention, exhausted messages), then serves the
    /// timer until shutdown. See `crate::timer`.
    pub fn spawn_background(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let sqs = Arc::clone(self);
        tokio::spawn(async move {
            if sqs.recheck.is_some() {
                tokio::spawn(Sqs::run_leadership(Arc::clone(&sqs)));
            } else {
                sqs.start_housekeeping().await;
            }
            if sqs.config.record_metrics() {
                tokio::spawn(Sqs::run_metrics(Arc::clone(&sqs)));
            }
            Sqs::run_timer(sqs).await;
        })
    }

    /// Resumes message move tasks and schedules a first look at every queue (retention, exhausted
    /// messages) and the pruning of expired records: at startup, or when this node takes over the
    /// housekeeping of a shared store.
    async fn start_housekeeping(self: &Arc<Self>) {
        if let Err(error) = actions::move_tasks::resume(self).await {
            tracing::warn!(%error, "resuming message move tasks failed");
        }
        match actions::dead_letters::all_queues(self).await {
            Ok(queues) => {
                let now = self.now();
                for queue in &queues {
                    self.timer.schedule(Due::Expire(queue.key()), now);
                    if queue.settings().redrive_policy.is_some() {
                        self.timer.schedule(Due::Visible(queue.key()), now);
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "listing queues for housekeeping failed"),
        }
        self.timer.schedule(Due::Prune, self.now());
    }

    fn leads_housekeeping(&self) -> bool {
        self.housekeeping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// With a shared store: asks every `LEADERSHIP_CHECK` whether this node leads the housekeeping
    /// (taking it over from a node that died), starts it when it becomes the leader and looks at
    /// every queue again every `HOUSEKEEPING_RESCAN` checks (queues other nodes created), and
    /// picks up move tasks that no node runs any more.
    async fn run_leadership(self: Arc<Self>) {
        let mut shutdown = self.shutdown_signal();
        for check in 0u64.. {
            let leads = match self.store.lead("housekeeping", self.now()).await {
                Ok(leads) => leads,
                Err(error) => {
                    tracing::warn!(error = %error.chain(), "cannot tell which node does the housekeeping");
                    false
                }
            };
            let was = self.housekeeping.swap(leads, std::sync::atomic::Ordering::SeqCst);
            if leads && (!was || check % HOUSEKEEPING_RESCAN == 0) {
                self.start_housekeeping().await;
            } else if let Err(error) = actions::move_tasks::resume(&self).await {
                tracing::debug!(%error, "looking for message move tasks to take over failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(LEADERSHIP_CHECK) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// The timer's task: hands what is due to tasks of its own (so one queue's slow store call
    /// never delays another queue's wake-up), then sleeps until the next deadline or until an
    /// earlier one is scheduled.
    async fn run_timer(self: Arc<Self>) {
        let mut shutdown = self.shutdown_signal();
        loop {
            for due in self.timer.take_due(self.now()) {
                let sqs = Arc::clone(&self);
                tokio::spawn(async move { sqs.fire(due).await });
            }
            // Everything due has been taken, so the next deadline is in the future.
            let sleep = self.timer.next_deadline().map(|at| {
                let distance = u64::try_from(at - self.now()).unwrap_or(0).max(1);
                tokio::time::Instant::now() + std::time::Duration::from_millis(distance)
            });
            tokio::select! {
                _ = self.timer.rearmed() => {}
                _ = async { tokio::time::sleep_until(sleep.expect("guarded")).await }, if sleep.is_some() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn fire(&self, due: Due) {
        let result = match &due {
            // Sweeps follow this node's own receives and sends (each event on one node), and are
            // safe to overlap; expiry and pruning are the housekeeper's, who schedules its own.
            Due::Visible(queue) => {
                self.waiters.wake_all(queue.id);
                actions::dead_letters::sweep_queue(self, queue).await
            }
            Due::Expire(_) | Due::Prune if !self.leads_housekeeping() => Ok(()),
            Due::Expire(queue) => self.expire_queue(queue).await,
            Due::Prune => self.prune_records().await,
        };
        if let Err(error) = result {
            // A failed step is tried again later rather than dropped: the store may recover (a
            // full disk, say). The store failure itself has been logged by `from_store`.
            tracing::debug!(?due, %error, "scheduled work failed; trying again later");
            self.timer.schedule(due, self.now() + RETRY_AFTER_MS);
        }
    }

    /// Removes the queue's messages past its retention period and schedules the next expiry.
    async fn expire_queue(&self, key: &QueueKey) -> Result<(), SqsError> {
        let Some(queue) = self.live_queue(key).await? else { return Ok(()) };
        let retention_ms = i64::from(queue.settings().message_retention_period) * 1000;
        let now = self.now();
        let outcome = match self.store.expire_messages(queue.id, now - retention_ms).await {
            Err(StoreError::QueueNotFound(_)) => return Ok(()),
            other => other.map_err(from_store)?,
        };
        if outcome.removed > 0 {
            tracing::info!(queue = %queue.name, removed = outcome.removed, "expired messages past their retention period");
        }
        if let Some(oldest) = outcome.oldest_sent_at {
            self.timer.schedule(Due::Expire(key.clone()), expires_at(oldest, retention_ms).max(now + COALESCE_MS));
        }
        Ok(())
    }

    async fn prune_records(&self) -> Result<(), SqsError> {
        let now = self.now();
        if let Some(next) = self.store.prune_expired_records(now).await.map_err(from_store)? {
            self.timer.schedule(Due::Prune, next.max(now + COALESCE_MS));
        }
        Ok(())
    }

    /// The queue a deadline was scheduled for, if it still exists (and is not a new queue that
    /// reuses the name).
    pub(crate) async fn live_queue(&self, key: &QueueKey) -> Result<Option<Queue>, SqsError> {
        let queue = self.store.get_queue(&key.account, &key.region, &key.name).await.map_err(from_store)?;
        Ok(queue.filter(|q| q.id == key.id))
    }
}

/// The first moment a message sent at `sent_at` is past its retention period: stores expire
/// messages sent strictly before `now - retention`.
pub(crate) fn expires_at(sent_at: Millis, retention_ms: i64) -> Millis {
    sent_at + retention_ms + 1
}

/// How long a failed piece of scheduled work waits before it is tried again.
const RETRY_AFTER_MS: Millis = 5_000;

/// How often a node sharing its store asks whether it leads the housekeeping: how long the
/// housekeeping pauses when its leader dies.
const LEADERSHIP_CHECK: std::time::Duration = std::time::Duration::from_secs(2);
/// Every this many leadership checks (a minute) the housekeeper looks at every queue again.
const HOUSEKEEPING_RESCAN: u64 = 30;
/// Expiry and pruning run at most this often per key: under a steady stream of messages each
/// run then removes a second's worth instead of waking for every message.
const COALESCE_MS: Millis = 1_000;

pub(crate) fn does_not_exist() -> SqsError {
    sqs_error!(QueueDoesNotExist, "The specified queue does not exist.")
}

/// A store failure as the client sees it. A queue deleted since the request resolved it is
/// `QueueDoesNotExist`; storage failures are logged with their cause chain and reported without it.
pub(crate) fn from_store(error: StoreError) -> SqsError {
    match &error {
        StoreError::QueueNotFound(_) => does_not_exist(),
        StoreError::Full(_) => {
            tracing::warn!(error = %error.chain(), "storage is full; refusing the request");
            sqs_error!(ServiceUnavailable, "The server is out of storage space; try again later.")
        }
        StoreError::Closed => sqs_error!(ServiceUnavailable, "The server is shutting down."),
        StoreError::Backend(_) => {
            tracing::warn!(error = %error.chain(), "storage failure");
            sqs_error!(InternalFailure, "The request processing has failed because of an unknown error.")
        }
    }
}
