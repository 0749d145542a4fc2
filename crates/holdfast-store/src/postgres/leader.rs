//! Leaders for background jobs that must run once across all nodes (housekeeping, each message
//! move task): a session-level advisory lock per job, held on one connection of the node's own.
//!
//! The lock lives as long as that connection: a node that dies (or loses its database) lets go of
//! every job at once, and the next node that asks takes them over. A node that finds its
//! connection closed has lost its jobs; it reconnects and asks again like any other. Between a
//! connection breaking and the node noticing, two nodes may both run a job; every job holdfast
//! runs this way is safe to run twice (each step is a store call that locks what it changes), so
//! leadership only keeps the work from being done N times over, never correctness.
//! `job_leaders` records who leads what, for operators.

use std::collections::HashSet;

use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

use super::Fail;

/// A job's lock key, computed by PostgreSQL from the schema and the job's name: the same on every
/// node of a cluster, apart for clusters in different schemas of one database.
const KEY: &str = "hashtextextended(current_schema() || ':holdfast-job:' || $1, 0)";

pub(super) struct Leadership {
    config: tokio_postgres::Config,
    node: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    client: Option<Client>,
    /// Jobs this node leads on `client`'s session.
    held: HashSet<String>,
}

impl Leadership {
    pub(super) fn new(config: tokio_postgres::Config, node: u64) -> Self {
        Leadership { config, node: format!("{node:016x}"), state: Mutex::default() }
    }

    /// Whether this node leads `job`, taking the lead if it is free.
    pub(super) async fn lead(&self, job: &str, now: i64) -> Result<bool, Fail> {
        let mut state = self.state.lock().await;
        if state.client.as_ref().is_none_or(Client::is_closed) {
            if state.client.take().is_some() && !state.held.is_empty() {
                tracing::warn!(
                    "the leadership connection to PostgreSQL closed; background jobs go to whichever node asks next"
                );
            }
            state.held.clear();
            let (client, connection) = self.config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "the leadership connection ended");
                }
            });
            state.client = Some(client);
        }
        if state.held.contains(job) {
            return Ok(true);
        }
        let State { client, held } = &mut *state;
        let client = client.as_ref().expect("connected above");
        let taken: bool = client.query_one(&format!("SELECT pg_try_advisory_lock({KEY})"), &[&job]).await?.get(0);
        if taken {
            held.insert(job.to_owned());
            client
                .execute(
                    "INSERT INTO job_leaders (job, node, since) VALUES ($1, $2, $3)
                     ON CONFLICT (job) DO UPDATE SET node = EXCLUDED.node, since = EXCLUDED.since",
                    &[&job, &self.node, &now],
                )
                .await?;
            tracing::info!(job, "leading a background job");
        }
        Ok(taken)
    }

    /// Lets go of `job`, if this node leads it.
    pub(super) async fn release(&self, job: &str) -> Result<(), Fail> {
        let mut state = self.state.lock().await;
        if state.held.remove(job) {
            if let Some(client) = state.client.as_ref().filter(|c| !c.is_closed()) {
                client.execute(&format!("SELECT pg_advisory_unlock({KEY})"), &[&job]).await?;
                client.execute("DELETE FROM job_leaders WHERE job = $1 AND node = $2", &[&job, &self.node]).await?;
            }
        }
        Ok(())
    }

    /// Lets go of everything (the node is stopping).
    pub(super) async fn close(&self) {
        let mut state = self.state.lock().await;
        state.held.clear();
        state.client = None;
    }
}
