//! `holdfast bench postgres`: the raw SQL baseline for a PostgreSQL-backed queue. The same
//! roundtrip as `holdfast bench roundtrip` (C producers, C consumers that take up to 10 messages
//! and delete them), but issued directly to PostgreSQL with the statements a queue on SQL comes
//! down to, with no queue server in between:
//!
//! - send: one `INSERT` (or ten in one statement with `--batch`), committed;
//! - receive: one `UPDATE … WHERE id IN (SELECT … ORDER BY visible_at, id LIMIT 10 FOR UPDATE
//!   SKIP LOCKED) RETURNING id`, the lease written in the same statement;
//! - delete: one `DELETE` per message (or one for all ten with `--delete-batch`).
//!
//! Each worker has its own connection and prepared statements; commits are durable
//! (`synchronous_commit` as the server has it, on by default). Its messages/s is what PostgreSQL
//! on this machine allows a queue at most, the figure a queue server on it is measured against.
//! The table is created for the run and dropped at the end; every inserted id is reconciled
//! against the deleted ones, as the roundtrip reconciles message ids.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_postgres::{Client, NoTls, Statement};

use super::report::{Monitor, Report};
use super::scenarios::{join_all, Merge};
use super::stats::{Errors, Histogram, Progress};
use super::{CommonArgs, RoundtripArgs};

#[derive(Args, Clone, Debug)]
pub struct PostgresArgs {
    /// The database to run in, e.g. postgres://user:password@127.0.0.1:5432/db. A table named
    /// holdfast_bench_<pid>_<n> is created there and dropped at the end.
    #[arg(long, env = "HOLDFAST_BENCH_DATABASE_URL")]
    pub database_url: String,
    /// `--batch`: 10 rows per insert; `--delete-batch`: one delete for all received;
    /// `--drain-timeout`: as the roundtrip's.
    #[command(flatten)]
    pub roundtrip: RoundtripArgs,
}

/// How long a consumer that found nothing waits before it looks again (the queue server's long
/// poll would wake it instead).
const EMPTY_WAIT: Duration = Duration::from_millis(2);
/// Messages one receive takes, as SQS's MaxNumberOfMessages.
const RECEIVE_MAX: i64 = 10;
/// How long a worker waits after a failed statement, so a database that is gone is not hammered.
const ERROR_WAIT: Duration = Duration::from_millis(20);
/// How long a received message stays leased (milliseconds), as a visibility timeout.
const LEASE_MS: i64 = 30_000;

/// The URL without its password, for the report.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}{user}:…@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

async fn connect(url: &str) -> anyhow::Result<Client> {
    let (client, connection) =
        tokio_postgres::connect(url, NoTls).await.with_context(|| format!("connecting to {}", redacted(url)))?;
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away; the client's calls report it.
        let _ = connection.await;
    });
    Ok(client)
}

/// What a worker hands back.
#[derive(Default)]
struct Tally {
    send: Histogram,
    receive: Histogram,
    delete: Histogram,
    errors: Errors,
    requests: u64,
    sent_ids: Vec<i64>,
    deleted_ids: Vec<i64>,
    processed_in_window: u64,
}

impl Merge for Tally {
    fn errors(&mut self) -> &mut Errors {
        &mut self.errors
    }

    fn merge(&mut self, other: Tally) {
        self.send.merge(&other.send);
        self.receive.merge(&other.receive);
        self.delete.merge(&other.delete);
        self.errors.merge(&other.errors);
        self.requests += other.requests;
        self.sent_ids.extend(other.sent_ids);
        self.deleted_ids.extend(other.deleted_ids);
        self.processed_in_window += other.processed_in_window;
    }
}

impl Tally {
    fn error(&mut self, progress: &Progress, error: &tokio_postgres::Error) {
        progress.error();
        let kind = error.code().map(|c| format!("SQLSTATE {}", c.code())).unwrap_or_else(|| "connection".into());
        self.errors.record(kind, || error.to_string());
    }
}

struct Plan {
    url: String,
    table: String,
    body: String,
    batch: bool,
    delete_batch: bool,
    window_end: Instant,
    hard_stop: Instant,
    producers_done: AtomicBool,
    progress: Arc<Progress>,
}

/// A worker's connection, or the failure recorded in its tally.
async fn worker_connection(url: &str, tally: &mut Tally) -> Option<Client> {
    match connect(url).await {
        Ok(client) => Some(client),
        Err(error) => {
            tally.errors.record("connect".into(), || format!("{error:#}"));
            None
        }
    }
}

async fn produce(plan: Arc<Plan>) -> Tally {
    let mut tally = Tally::default();
    let Some(client) = worker_connection(&plan.url, &mut tally).await else { return tally };
    let sql = if plan.batch {
        format!("INSERT INTO {} (body, visible_at) SELECT unnest($1::text[]), $2 RETURNING id", plan.table)
    } else {
        format!("INSERT INTO {} (body, visible_at) VALUES ($1, $2) RETURNING id", plan.table)
    };
    let Ok(insert) = client.prepare(&sql).await else { return tally };
    let bodies: Vec<&str> = vec![plan.body.as_str(); if plan.batch { 10 } else { 1 }];
    while Instant::now() < plan.window_end && !plan.progress.aborted() {
        let started = Instant::now();
        let result = if plan.batch {
            client.query(&insert, &[&bodies, &now_ms()]).await
        } else {
            client.query(&insert, &[&bodies[0], &now_ms()]).await
        };
        tally.requests += 1;
        match result {
            Ok(rows) => {
                tally.send.record(started.elapsed());
                plan.progress.success();
                tally.sent_ids.extend(rows.iter().map(|row| row.get::<_, i64>(0)));
            }
            Err(error) => {
                tally.error(&plan.progress, &error);
                tokio::time::sleep(ERROR_WAIT).await;
            }
        }
    }
    tally
}

async fn consume(plan: Arc<Plan>) -> Tally {
    let mut tally = Tally::default();
    let Some(client) = worker_connection(&plan.url, &mut tally).await else { return tally };
    let receive_sql = format!(
        "UPDATE {t} SET visible_at = $1, receive_count = receive_count + 1 WHERE id IN \
         (SELECT id FROM {t} WHERE visible_at <= $2 ORDER BY visible_at, id LIMIT {RECEIVE_MAX} FOR UPDATE SKIP LOCKED) \
         RETURNING id",
        t = plan.table
    );
    let delete_sql = if plan.delete_batch {
        format!("DELETE FROM {} WHERE id = ANY($1)", plan.table)
    } else {
        format!("DELETE FROM {} WHERE id = $1", plan.table)
    };
    let (Ok(receive), Ok(delete)) = (client.prepare(&receive_sql).await, client.prepare(&delete_sql).await) else {
        return tally;
    };
    loop {
        let now = Instant::now();
        if now >= plan.hard_stop || plan.progress.aborted() {
            break;
        }
        let started = Instant::now();
        let at = now_ms();
        let received = client.query(&receive, &[&(at + LEASE_MS), &at]).await;
        tally.requests += 1;
        let ids: Vec<i64> = match received {
            Ok(rows) => {
                tally.receive.record(started.elapsed());
                rows.iter().map(|row| row.get(0)).collect()
            }
            Err(error) => {
                tally.error(&plan.progress, &error);
                tokio::time::sleep(ERROR_WAIT).await;
                continue;
            }
        };
        if ids.is_empty() {
            // Drained once the producers are done: nothing is leased for long in this run.
            if plan.producers_done.load(Ordering::Relaxed) {
                break;
            }
            tokio::time::sleep(EMPTY_WAIT).await;
            continue;
        }
        let deleted = delete_all(&client, &delete, &ids, plan.delete_batch, &mut tally).await;
        match deleted {
            Ok(()) => {
                plan.progress.success();
                if Instant::now() <= plan.window_end {
                    tally.processed_in_window += ids.len() as u64;
                    plan.progress.add_messages(ids.len() as u64);
                }
                tally.deleted_ids.extend(ids);
            }
            Err(error) => {
                tally.error(&plan.progress, &error);
                tokio::time::sleep(ERROR_WAIT).await;
            }
        }
    }
    tally
}

async fn delete_all(
    client: &Client,
    delete: &Statement,
    ids: &[i64],
    batch: bool,
    tally: &mut Tally,
) -> Result<(), tokio_postgres::Error> {
    if batch {
        let started = Instant::now();
        tally.requests += 1;
        client.execute(delete, &[&ids]).await?;
        tally.delete.record(started.elapsed());
        return Ok(());
    }
    for id in ids {
        let started = Instant::now();
        tally.requests += 1;
        client.execute(delete, &[id]).await?;
        tally.delete.record(started.elapsed());
    }
    Ok(())
}

pub async fn run(common: &CommonArgs, args: &PostgresArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(common.concurrency > 0, "--concurrency must be at least 1");
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let table = format!("holdfast_bench_{}_{nanos:x}", std::process::id());
    let admin = connect(&args.database_url).await?;
    admin
        .batch_execute(&format!(
            "CREATE TABLE {table} (id bigserial PRIMARY KEY, body text NOT NULL, visible_at bigint NOT NULL, \
             receive_count integer NOT NULL DEFAULT 0);
             CREATE INDEX ON {table} (visible_at, id);"
        ))
        .await
        .with_context(|| format!("creating table {table}"))?;
    let result = measure(common, args, &table).await;
    if let Err(error) = admin.batch_execute(&format!("DROP TABLE IF EXISTS {table}")).await {
        eprintln!("holdfast bench: dropping table {table} failed: {error}");
    }
    result
}

async fn measure(common: &CommonArgs, args: &PostgresArgs, table: &str) -> anyhow::Result<Report> {
    let progress = Arc::new(Progress::default());
    let (stop, _) = watch::channel(false);
    let monitor = Monitor::start(Arc::clone(&progress), stop, common.server_pid, "msgs");
    let started = Instant::now();
    let window_end = started + Duration::from_secs_f64(common.duration.max(0.0));
    let plan = Arc::new(Plan {
        url: args.database_url.clone(),
        table: table.to_owned(),
        body: "x".repeat(common.body_size),
        batch: args.roundtrip.batch,
        delete_batch: args.roundtrip.delete_batch,
        window_end,
        hard_stop: window_end + Duration::from_secs_f64(args.roundtrip.drain_timeout.max(0.0)),
        producers_done: AtomicBool::new(false),
        progress,
    });
    let mut producers = JoinSet::new();
    let mut consumers = JoinSet::new();
    for _ in 0..common.concurrency {
        producers.spawn(produce(Arc::clone(&plan)));
        consumers.spawn(consume(Arc::clone(&plan)));
    }
    let mut tally = join_all(producers).await;
    plan.producers_done.store(true, Ordering::Relaxed);
    let phase = monitor.finish().await;
    let wall = phase.wall;
    let drain_started = Instant::now();
    tally.merge(join_all(consumers).await);
    let drain_s = drain_started.elapsed().as_secs_f64();

    let mut report = Report {
        scenario: "postgres".into(),
        endpoint: redacted(&args.database_url),
        queue: table.to_owned(),
        concurrency: common.concurrency,
        body_size: common.body_size,
        ..Default::default()
    };
    report.set_errors(&tally.errors);
    for (name, histogram) in [("send", &tally.send), ("receive", &tally.receive), ("delete", &tally.delete)] {
        if let Some(summary) = histogram.summary() {
            report.latency_ms.insert(name.to_owned(), summary);
        }
    }
    report.messages = tally.processed_in_window;
    report.messages_per_s = tally.processed_in_window as f64 / wall;
    report.sent = tally.sent_ids.len() as u64;
    report.sent_per_s = report.sent as f64 / wall;
    report.requests = tally.requests;
    report.requests_per_s = tally.requests as f64 / (wall + drain_s);
    phase.fill(&mut report);
    let as_u128 = |ids: Vec<i64>| ids.into_iter().map(|id| id as u128).collect();
    report.reconcile = Some(super::scenarios::reconcile(as_u128(tally.sent_ids), as_u128(tally.deleted_ids), drain_s));
    if plan.progress.aborted() {
        report.aborted = Some("every statement failed for two seconds".into());
    }
    report.notes.push(format!(
        "raw SQL baseline: sends insert {} per statement; receives lease up to {RECEIVE_MAX} with FOR UPDATE SKIP LOCKED; deletes {}",
        if args.roundtrip.batch { "10 rows" } else { "1 row" },
        if args.roundtrip.delete_batch { "all received in one statement" } else { "one statement per message" }
    ));
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_stay_out_of_reports() {
        assert_eq!(super::redacted("postgres://u:secret@127.0.0.1:5432/db"), "postgres://u:…@127.0.0.1:5432/db");
        assert_eq!(super::redacted("postgres://127.0.0.1/db"), "postgres://127.0.0.1/db");
    }
}
