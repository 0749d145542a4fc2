//! The SQL of queue metrics: one row per queue and minute in `queue_minutes`, one per queue in
//! `metric_queues` (schema version 8).

use holdfast_core::queue_metrics::{Distribution, Gauges, QueueMinute};
use holdfast_core::store::{MetricQueue, Millis};
use rusqlite::{params, Connection, OptionalExtension, Result, Row};

const COLUMNS: &str = "account, region, queue, minute, visible, not_visible, delayed, oldest_age, noisy_groups,
    quiet_visible, quiet_not_visible, quiet_delayed, quiet_oldest_age, sent, received, deleted, empty_receives,
    size_count, size_sum, size_min, size_max, size_buckets";

pub(super) fn record_queue_minutes(conn: &Connection, minutes: Vec<QueueMinute>, forget_before: Millis) -> Result<()> {
    conn.prepare_cached("DELETE FROM queue_minutes WHERE minute < ?1")?.execute([forget_before])?;
    conn.prepare_cached("DELETE FROM metric_queues WHERE last_minute < ?1")?.execute([forget_before])?;
    for row in minutes.into_iter().filter(|row| row.minute >= forget_before) {
        let stored = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM queue_minutes WHERE account = ?1 AND region = ?2 AND queue = ?3 AND minute = ?4"
            ))?
            .query_row(params![row.account, row.region, row.queue, row.minute], read_row)
            .optional()?;
        let row = match stored {
            Some(mut stored) => {
                stored.absorb(&row);
                stored
            }
            None => row,
        };
        write_row(conn, &row)?;
        let fair = row.gauges.as_ref().is_some_and(|g| g.fair.is_some());
        conn.prepare_cached(
            "INSERT INTO metric_queues (account, region, queue, last_minute, fair) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (account, region, queue) DO UPDATE
             SET last_minute = max(last_minute, excluded.last_minute), fair = max(fair, excluded.fair)",
        )?
        .execute(params![row.account, row.region, row.queue, row.minute, fair])?;
    }
    Ok(())
}

fn write_row(conn: &Connection, row: &QueueMinute) -> Result<()> {
    let int = |value: Option<u64>| value.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    let g = Gauges::to_columns(row.gauges.as_ref()).map(int);
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO queue_minutes ({COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"
    ))?
    .execute(params![
        row.account,
        row.region,
        row.queue,
        row.minute,
        g[0],
        g[1],
        g[2],
        g[3],
        g[4],
        g[5],
        g[6],
        g[7],
        g[8],
        int(Some(row.sent)),
        int(Some(row.received)),
        int(Some(row.deleted)),
        int(Some(row.empty_receives)),
        int(Some(row.sent_size.count)),
        row.sent_size.sum,
        row.sent_size.min,
        row.sent_size.max,
        row.sent_size.encode_buckets(),
    ])?;
    Ok(())
}

fn read_row(row: &Row<'_>) -> Result<QueueMinute> {
    let count = |i: usize| -> Result<u64> { Ok(row.get::<_, i64>(i)?.max(0) as u64) };
    let maybe = |i: usize| -> Result<Option<u64>> { Ok(row.get::<_, Option<i64>>(i)?.map(|v| v.max(0) as u64)) };
    let mut columns = [None; 9];
    for (i, column) in columns.iter_mut().enumerate() {
        *column = maybe(4 + i)?;
    }
    let gauges = Gauges::from_columns(columns);
    let buckets: Vec<u8> = row.get(21)?;
    Ok(QueueMinute {
        account: row.get(0)?,
        region: row.get(1)?,
        queue: row.get(2)?,
        minute: row.get(3)?,
        gauges,
        sent: count(13)?,
        received: count(14)?,
        deleted: count(15)?,
        empty_receives: count(16)?,
        sent_size: Distribution::decode(count(17)?, row.get(18)?, row.get(19)?, row.get(20)?, &buckets),
    })
}

pub(super) fn queue_minutes(
    conn: &Connection,
    account: &str,
    region: &str,
    queue: &str,
    from: Millis,
    to: Millis,
) -> Result<Vec<QueueMinute>> {
    let mut select = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM queue_minutes
         WHERE account = ?1 AND region = ?2 AND queue = ?3 AND minute >= ?4 AND minute < ?5 ORDER BY minute"
    ))?;
    let rows = select.query_map(params![account, region, queue, from, to], read_row)?;
    rows.collect()
}

pub(super) fn metric_queues(conn: &Connection, account: &str, region: &str, since: Millis) -> Result<Vec<MetricQueue>> {
    let mut select = conn.prepare_cached(
        "SELECT queue, last_minute, fair FROM metric_queues
         WHERE account = ?1 AND region = ?2 AND last_minute >= ?3 ORDER BY queue",
    )?;
    let rows = select.query_map(params![account, region, since], |row| {
        Ok(MetricQueue { name: row.get(0)?, last_minute: row.get(1)?, fair: row.get(2)? })
    })?;
    rows.collect()
}
