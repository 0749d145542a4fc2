//! Queue metrics on PostgreSQL: one row per queue and minute in `queue_minutes`, one per queue in
//! `metric_queues`, as in the SQLite engine.
//!
//! Invariant: several nodes record the same queue and minute (each counts the requests it served),
//! so a row is read with its lock and merged (`QueueMinute::absorb`), or inserted if there is none;
//! an insert that loses a race to another node's merges into the winner's row instead.

use holdfast_core::queue_metrics::{Distribution, Gauges, QueueMinute};
use holdfast_core::store::{MetricQueue, Millis};
use tokio_postgres::Row;

use super::ops::{exec, row, rows};
use super::{Fail, Tx};

const COLUMNS: &str = "account, region, queue, minute, visible, not_visible, delayed, oldest_age, noisy_groups,
    quiet_visible, quiet_not_visible, quiet_delayed, quiet_oldest_age, sent, received, deleted, empty_receives,
    size_count, size_sum, size_min, size_max, size_buckets";

const VALUES: &str =
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22";

pub(super) async fn record_queue_minutes(
    tx: &Tx<'_>,
    minutes: Vec<QueueMinute>,
    forget_before: Millis,
) -> Result<(), Fail> {
    exec(tx, "DELETE FROM queue_minutes WHERE minute < $1", &[&forget_before]).await?;
    exec(tx, "DELETE FROM metric_queues WHERE last_minute < $1", &[&forget_before]).await?;
    for minute in minutes.into_iter().filter(|row| row.minute >= forget_before) {
        let fair = minute.gauges.as_ref().is_some_and(|g| g.fair.is_some());
        store_minute(tx, minute.clone()).await?;
        exec(
            tx,
            "INSERT INTO metric_queues (account, region, queue, last_minute, fair) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (account, region, queue) DO UPDATE
             SET last_minute = greatest(metric_queues.last_minute, EXCLUDED.last_minute),
                 fair = metric_queues.fair OR EXCLUDED.fair",
            &[&minute.account, &minute.region, &minute.queue, &minute.minute, &fair],
        )
        .await?;
    }
    Ok(())
}

/// Merges one minute into its stored row, or stores it.
async fn store_minute(tx: &Tx<'_>, minute: QueueMinute) -> Result<(), Fail> {
    let select = format!(
        "SELECT {COLUMNS} FROM queue_minutes
         WHERE account = $1 AND region = $2 AND queue = $3 AND minute = $4 FOR UPDATE"
    );
    // Twice at most: a row inserted by another node between our read and our insert is there
    // the second time round.
    for _ in 0..2 {
        let stored = row(tx, &select, &[&minute.account, &minute.region, &minute.queue, &minute.minute]).await?;
        if let Some(stored) = stored {
            let mut merged = read_row(&stored)?;
            merged.absorb(&minute);
            let sql = format!(
                "UPDATE queue_minutes SET ({COLUMNS}) = ({VALUES})
                 WHERE account = $1 AND region = $2 AND queue = $3 AND minute = $4"
            );
            write_row(tx, &sql, &merged).await?;
            return Ok(());
        }
        let sql = format!("INSERT INTO queue_minutes ({COLUMNS}) VALUES ({VALUES}) ON CONFLICT DO NOTHING");
        if write_row(tx, &sql, &minute).await? == 1 {
            return Ok(());
        }
    }
    Err(Fail::Data(format!(
        "the metrics row of {} at {} could be neither read nor written",
        minute.queue, minute.minute
    )))
}

async fn write_row(tx: &Tx<'_>, sql: &str, row: &QueueMinute) -> Result<u64, Fail> {
    let int = |value: Option<u64>| value.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    let g = Gauges::to_columns(row.gauges.as_ref()).map(int);
    let whole = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    exec(
        tx,
        sql,
        &[
            &row.account,
            &row.region,
            &row.queue,
            &row.minute,
            &g[0],
            &g[1],
            &g[2],
            &g[3],
            &g[4],
            &g[5],
            &g[6],
            &g[7],
            &g[8],
            &whole(row.sent),
            &whole(row.received),
            &whole(row.deleted),
            &whole(row.empty_receives),
            &whole(row.sent_size.count),
            &row.sent_size.sum,
            &row.sent_size.min,
            &row.sent_size.max,
            &row.sent_size.encode_buckets(),
        ],
    )
    .await
}

fn read_row(row: &Row) -> Result<QueueMinute, Fail> {
    let count = |i: usize| -> Result<u64, Fail> { Ok(row.try_get::<_, i64>(i)?.max(0) as u64) };
    let maybe =
        |i: usize| -> Result<Option<u64>, Fail> { Ok(row.try_get::<_, Option<i64>>(i)?.map(|v| v.max(0) as u64)) };
    let mut columns = [None; 9];
    for (i, column) in columns.iter_mut().enumerate() {
        *column = maybe(4 + i)?;
    }
    let gauges = Gauges::from_columns(columns);
    let buckets: Vec<u8> = row.try_get(21)?;
    Ok(QueueMinute {
        account: row.try_get(0)?,
        region: row.try_get(1)?,
        queue: row.try_get(2)?,
        minute: row.try_get(3)?,
        gauges,
        sent: count(13)?,
        received: count(14)?,
        deleted: count(15)?,
        empty_receives: count(16)?,
        sent_size: Distribution::decode(count(17)?, row.try_get(18)?, row.try_get(19)?, row.try_get(20)?, &buckets),
    })
}

pub(super) async fn queue_minutes(
    tx: &Tx<'_>,
    account: &str,
    region: &str,
    queue: &str,
    from: Millis,
    to: Millis,
) -> Result<Vec<QueueMinute>, Fail> {
    let found = rows(
        tx,
        &format!(
            "SELECT {COLUMNS} FROM queue_minutes
             WHERE account = $1 AND region = $2 AND queue = $3 AND minute >= $4 AND minute < $5 ORDER BY minute"
        ),
        &[&account, &region, &queue, &from, &to],
    )
    .await?;
    found.iter().map(read_row).collect()
}

pub(super) async fn metric_queues(
    tx: &Tx<'_>,
    account: &str,
    region: &str,
    since: Millis,
) -> Result<Vec<MetricQueue>, Fail> {
    let found = rows(
        tx,
        "SELECT queue, last_minute, fair FROM metric_queues
         WHERE account = $1 AND region = $2 AND last_minute >= $3 ORDER BY queue",
        &[&account, &region, &since],
    )
    .await?;
    found
        .iter()
        .map(|r| Ok(MetricQueue { name: r.try_get(0)?, last_minute: r.try_get(1)?, fair: r.try_get(2)? }))
        .collect()
}
