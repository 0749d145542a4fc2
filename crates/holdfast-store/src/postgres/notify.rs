//! Waking long polls across nodes: LISTEN/NOTIFY as the hint, the service's re-check as the bound.
//!
//! - The announcer: sends of visible messages on this node queue their queue id here; one task
//!   drains whatever has gathered into a single `pg_notify` on the channel `holdfast_visible`
//!   (payload `<node>:<id>,<id>,...`), outside any message transaction. Under load one NOTIFY
//!   carries many sends, and no send waits for it or holds PostgreSQL's notification lock.
//! - The listener: one connection of its own that LISTENs and forwards the ids other nodes
//!   announce. It reconnects after a failure; notifications sent meanwhile are lost, which the
//!   re-check (`SharedStore::recheck`) turns into a delay, never a stranded message.
//!
//! Engines without LISTEN/NOTIFY (CockroachDB) run with `PostgresOptions::notify` off: no announcer,
//! no listener, only the re-check.

use std::collections::BTreeSet;
use std::time::Duration;

use deadpool_postgres::Pool;
use holdfast_core::store::QueueId;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

const CHANNEL: &str = "holdfast_visible";
/// NOTIFY payloads must stay under 8000 bytes.
const MAX_PAYLOAD: usize = 7000;
/// How long the listener waits before connecting again after a failure.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// Ids queued for the announcer at most; past this a hint is dropped (the re-check covers it).
const ANNOUNCE_BACKLOG: usize = 4096;

/// Starts the announcer; returns where to queue ids.
pub(super) fn announcer(pool: Pool, node: u64) -> mpsc::Sender<QueueId> {
    let (sender, mut queued) = mpsc::channel::<QueueId>(ANNOUNCE_BACKLOG);
    tokio::spawn(async move {
        while let Some(first) = queued.recv().await {
            let mut ids = BTreeSet::from([first]);
            while let Ok(more) = queued.try_recv() {
                ids.insert(more);
            }
            for payload in payloads(node, &ids) {
                let sent = match pool.get().await {
                    Ok(client) => client.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]).await.map(drop),
                    Err(error) => {
                        tracing::debug!(%error, "no connection to announce visible messages");
                        continue;
                    }
                };
                if let Err(error) = sent {
                    tracing::debug!(%error, "announcing visible messages failed");
                }
            }
        }
    });
    sender
}

/// `<node>:<id>,<id>,...`, split so no payload passes `MAX_PAYLOAD`.
fn payloads(node: u64, ids: &BTreeSet<QueueId>) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut current = String::new();
    for id in ids {
        if current.len() > MAX_PAYLOAD {
            payloads.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            current = format!("{node:x}:{id}");
        } else {
            current.push_str(&format!(",{id}"));
        }
    }
    if !current.is_empty() {
        payloads.push(current);
    }
    payloads
}

/// The ids of a payload another node sent; nothing for this node's own or a malformed one.
fn parse(payload: &str, node: u64) -> Vec<QueueId> {
    let Some((from, ids)) = payload.split_once(':') else { return Vec::new() };
    if u64::from_str_radix(from, 16).ok() == Some(node) {
        return Vec::new();
    }
    ids.split(',').filter_map(|id| id.parse().ok()).collect()
}

/// Starts the listener; returns the feed of other nodes' announcements. Ends when the feed's
/// receiver is dropped.
pub(super) fn listener(config: tokio_postgres::Config, node: u64) -> mpsc::Receiver<QueueId> {
    let (forward, feed) = mpsc::channel(ANNOUNCE_BACKLOG);
    tokio::spawn(async move {
        while !forward.is_closed() {
            match listen(&config, node, &forward).await {
                Ok(()) => return,
                Err(error) => tracing::warn!(%error, "the PostgreSQL LISTEN connection failed; reconnecting"),
            }
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    });
    feed
}

/// One LISTEN connection, until it fails (`Err`) or nobody reads the feed any more (`Ok`).
async fn listen(
    config: &tokio_postgres::Config,
    node: u64,
    forward: &mpsc::Sender<QueueId>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (messages, mut incoming) = mpsc::unbounded_channel();
    // The connection must be polled for the LISTEN below to complete, and for notifications.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(message)) => {
                    if messages.send(Ok(message)).is_err() {
                        return;
                    }
                }
                Some(Err(error)) => {
                    let _ = messages.send(Err(error));
                    return;
                }
                None => return,
            }
        }
    });
    let outcome = async {
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        loop {
            tokio::select! {
                message = incoming.recv() => match message {
                    Some(Ok(AsyncMessage::Notification(n))) if n.channel() == CHANNEL => {
                        for queue in parse(n.payload(), node) {
                            // A full feed means the service is behind; the re-check covers a drop.
                            let _ = forward.try_send(queue);
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(error),
                    None => {
                        // The connection ended without an error: treat it as one, so we reconnect.
                        client.simple_query("SELECT 1").await?;
                        return Ok(());
                    }
                },
                _ = forward.closed() => return Ok(()),
            }
        }
    }
    .await;
    driver.abort();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_skip_own_node() {
        let ids: BTreeSet<QueueId> = (1..=3000).collect();
        let sent = payloads(0xabc, &ids);
        assert!(sent.len() > 1, "long id lists are split");
        assert!(sent.iter().all(|p| p.len() < 8000));
        let received: Vec<QueueId> = sent.iter().flat_map(|p| parse(p, 0x123)).collect();
        assert_eq!(received, ids.iter().copied().collect::<Vec<_>>());
        assert!(sent.iter().all(|p| parse(p, 0xabc).is_empty()), "a node ignores its own announcements");
        assert!(parse("garbage", 1).is_empty());
        assert_eq!(parse("ff:1,x,2", 1), [1, 2]);
    }
}
