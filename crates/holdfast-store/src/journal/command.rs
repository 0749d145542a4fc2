//! What the journal records: one `Command` per `Store` call that can change state, with the
//! arguments it was called with. Replaying the commands in order against the memory engine
//! rebuilds the state, because that engine is deterministic: every time comes in as an argument
//! (`now`), ids come from counters, and leases from generators seeded in the state itself.

use std::collections::BTreeMap;

use holdfast_core::queue_metrics::QueueMinute;
use holdfast_core::store::{
    ChangeVisibility, DeadLetterTarget, Deduplication, Lease, Millis, MoveStep, MoveTask, NewMessage, QueueId,
    ReceiveParams, Store, StoreResult,
};
use serde::{Deserialize, Serialize};

use crate::memory::MemoryStore;

/// Field for field the arguments of the `Store` method of the same name. Variants are only ever
/// added at the end: the encoding numbers them in order.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Command {
    CreateQueue {
        account: String,
        region: String,
        name: String,
        attributes: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
        now: Millis,
        recreate_cooldown_ms: i64,
    },
    DeleteQueue {
        queue: QueueId,
        now: Millis,
    },
    SetQueueAttributes {
        queue: QueueId,
        attributes: BTreeMap<String, String>,
        now: Millis,
    },
    ReplaceQueueAttribute {
        queue: QueueId,
        name: String,
        expected: Option<String>,
        value: String,
        now: Millis,
    },
    TagQueue {
        queue: QueueId,
        tags: BTreeMap<String, String>,
    },
    UntagQueue {
        queue: QueueId,
        keys: Vec<String>,
    },
    PurgeQueue {
        queue: QueueId,
        now: Millis,
        cooldown_ms: i64,
    },
    SendMessages {
        queue: QueueId,
        messages: Vec<NewMessage>,
        dedup: Option<Deduplication>,
        now: Millis,
    },
    ReceiveMessages {
        queue: QueueId,
        params: ReceiveParams,
    },
    DeleteMessages {
        queue: QueueId,
        leases: Vec<Lease>,
        refuse_expired_at: Option<Millis>,
    },
    ChangeVisibility {
        queue: QueueId,
        changes: Vec<ChangeVisibility>,
        now: Millis,
        max_inflight_ms: i64,
    },
    DeadLetterExhausted {
        queue: QueueId,
        target: DeadLetterTarget,
        now: Millis,
        limit: usize,
    },
    ExpireMessages {
        queue: QueueId,
        sent_before: Millis,
    },
    PruneExpiredRecords {
        now: Millis,
    },
    StartMoveTask {
        task: MoveTask,
    },
    CancelMoveTask {
        handle: String,
    },
    AdvanceMoveTask {
        handle: String,
        step: MoveStep,
        now: Millis,
    },
    RecordQueueMinutes {
        minutes: Vec<QueueMinute>,
        forget_before: Millis,
    },
    /// Written first by every start: new lease generators, so that leases handed out by frames
    /// a crash lost (a standard receive answers before its frame is durable) are never handed
    /// out again.
    Reseed {
        seed: [u8; 32],
    },
}

impl Command {
    /// Whether the command changes queue records (what `get_queue` and `list_queues` read), so
    /// that those reads need only wait for the last such command to be durable.
    pub(super) fn changes_queue_records(&self) -> bool {
        matches!(
            self,
            Command::CreateQueue { .. }
                | Command::DeleteQueue { .. }
                | Command::SetQueueAttributes { .. }
                | Command::ReplaceQueueAttribute { .. }
                | Command::TagQueue { .. }
                | Command::UntagQueue { .. }
        )
    }

    /// Whether the command may add to what is stored (messages, queues, tasks, metrics): such
    /// commands are refused first when the disk is full, so that the rest can drain queues.
    pub(super) fn grows(&self) -> bool {
        !matches!(
            self,
            Command::ReceiveMessages { .. }
                | Command::DeleteMessages { .. }
                | Command::ChangeVisibility { .. }
                | Command::PurgeQueue { .. }
                | Command::DeleteQueue { .. }
                | Command::ExpireMessages { .. }
                | Command::PruneExpiredRecords { .. }
                | Command::CancelMoveTask { .. }
                | Command::UntagQueue { .. }
                | Command::Reseed { .. }
        )
    }

    /// Runs the command against `store` as the original call did, for replay. The result is
    /// dropped: the original caller had it; replay only needs the state it leaves. An error is
    /// not a replay failure either: the original call failed the same way (a queue deleted in
    /// the meantime, say) and changed nothing.
    pub(super) async fn replay(self, store: &MemoryStore) {
        let _: StoreResult<()> = match self {
            Command::CreateQueue { account, region, name, attributes, tags, now, recreate_cooldown_ms } => store
                .create_queue(&account, &region, &name, attributes, tags, now, recreate_cooldown_ms)
                .await
                .map(drop),
            Command::DeleteQueue { queue, now } => store.delete_queue(queue, now).await,
            Command::SetQueueAttributes { queue, attributes, now } => {
                store.set_queue_attributes(queue, attributes, now).await
            }
            Command::ReplaceQueueAttribute { queue, name, expected, value, now } => {
                store.replace_queue_attribute(queue, &name, expected.as_deref(), &value, now).await.map(drop)
            }
            Command::TagQueue { queue, tags } => store.tag_queue(queue, tags).await,
            Command::UntagQueue { queue, keys } => store.untag_queue(queue, keys).await,
            Command::PurgeQueue { queue, now, cooldown_ms } => {
                store.purge_queue(queue, now, cooldown_ms).await.map(drop)
            }
            Command::SendMessages { queue, messages, dedup, now } => {
                store.send_messages(queue, messages, dedup, now).await.map(drop)
            }
            Command::ReceiveMessages { queue, params } => store.receive_messages(queue, params).await.map(drop),
            Command::DeleteMessages { queue, leases, refuse_expired_at } => {
                store.delete_messages(queue, leases, refuse_expired_at).await.map(drop)
            }
            Command::ChangeVisibility { queue, changes, now, max_inflight_ms } => {
                store.change_visibility(queue, changes, now, max_inflight_ms).await.map(drop)
            }
            Command::DeadLetterExhausted { queue, target, now, limit } => {
                store.dead_letter_exhausted(queue, target, now, limit).await.map(drop)
            }
            Command::ExpireMessages { queue, sent_before } => store.expire_messages(queue, sent_before).await.map(drop),
            Command::PruneExpiredRecords { now } => store.prune_expired_records(now).await.map(drop),
            Command::StartMoveTask { task } => store.start_move_task(task).await.map(drop),
            Command::CancelMoveTask { handle } => store.cancel_move_task(&handle).await.map(drop),
            Command::AdvanceMoveTask { handle, step, now } => {
                store.advance_move_task(&handle, step, now).await.map(drop)
            }
            Command::RecordQueueMinutes { minutes, forget_before } => {
                store.record_queue_minutes(minutes, forget_before).await
            }
            Command::Reseed { seed } => store.reseed(seed),
        };
    }
}
