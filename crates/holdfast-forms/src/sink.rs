//! The destinations behind the consumer engine, and the two commands that use them:
//! `holdfast form work` (leads into a `leads` table) and `holdfast sink` (any JSON messages into a
//! table, or each one POSTed to an HTTP back end).
//!
//! A database destination stores a batch in one transaction and reports each row as stored or
//! duplicate. When the batch fails it asks the database a trivial question: no answer means the
//! database is down (the engine pauses and keeps the messages in the queue); an answer means one
//! of the rows was refused, so each row is retried on its own and only the refused ones are
//! rejected (and, after enough receives, dead-lettered).

use std::time::{Duration, SystemTime};

use aws_sdk_sqs::primitives::{DateTime, DateTimeFormat};
use clap::{Args, Subcommand};

use crate::consumer::{self, ConsumerArgs, Delivery, Destination, Fatal, Outcome, Summary};
use crate::db::{self, Column, ColumnKind, Database, DbError, Row, Table};
use crate::http_sink::HttpDestination;
use crate::lead::Lead;
use crate::records::{BodyFormat, RecordMapping, Source};
use crate::sqs::{self, QueueArgs};

/// `holdfast form work`: the back end of the form.
#[derive(Args, Clone, Debug)]
pub struct WorkArgs {
    /// The queue the form writes to, by name or URL.
    #[arg(long, short = 'q', env = "HOLDFAST_FORM_QUEUE", default_value = "leads")]
    pub queue: String,
    #[command(flatten)]
    pub sqs: QueueArgs,
    /// The database: sqlite://FILE, mysql://USER:PASSWORD@HOST/DB or postgres://USER:PASSWORD@HOST/DB.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://leads.db")]
    pub database_url: String,
    /// The table leads go into (created if missing).
    #[arg(long, default_value = "leads")]
    pub table: String,
    #[command(flatten)]
    pub consumer: ConsumerArgs,
}

/// `holdfast sink`: any queue of JSON or CSV messages into a table, or to an HTTP back end.
#[derive(Args, Clone, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SinkArgs {
    #[command(subcommand)]
    pub command: Option<SinkCommand>,
    /// The queue to drain, by name or URL.
    #[arg(long, short = 'q', required = true)]
    pub queue: Option<String>,
    #[command(flatten)]
    pub sqs: QueueArgs,
    /// Store each message in this database: sqlite://FILE, mysql://… or postgres://….
    #[arg(long, env = "DATABASE_URL", conflicts_with = "to", required_unless_present = "to")]
    pub database_url: Option<String>,
    /// POST each message body to this URL instead; delete it on a 2xx answer, retry otherwise.
    #[arg(long)]
    pub to: Option<String>,
    /// The table (created if missing): message_key, message_id, body, stored_at, and any --column.
    #[arg(long, default_value = "messages")]
    pub table: String,
    /// What makes two messages the same one: `message-id` (SQS's id: redeliveries are stored once)
    /// or a JSON pointer into the body such as `/id` (resends by the producer are stored once too).
    #[arg(long, default_value = "message-id")]
    pub key: String,
    /// Also copy a JSON value into a column of its own: NAME=/json/pointer (repeatable). With
    /// --format csv or jsonl it means what --map does.
    #[arg(long = "column", value_name = "NAME=POINTER", conflicts_with = "map")]
    pub columns: Vec<String>,
    /// How each message body holds its records: json (one object), jsonl (one object per line)
    /// or csv (one record per line). jsonl and csv store records with --map (or, for csv,
    /// --fields alone: each field into the column of its name).
    #[arg(long, value_enum, default_value_t = BodyFormat::Json)]
    pub format: BodyFormat,
    /// CSV field names in order, e.g. id,name,email,city.
    #[arg(long, value_delimiter = ',', conflicts_with = "header")]
    pub fields: Option<Vec<String>>,
    /// CSV: the first line of each message names the fields.
    #[arg(long = "header-row")]
    pub header: bool,
    /// Store each record as a row of just these columns: COLUMN=FIELD or COLUMN=/json/pointer
    /// (repeatable), into an existing table of any shape (created with text columns if missing).
    /// Records are tracked in --tracking-table, so each is stored once.
    #[arg(long = "map", value_name = "COLUMN=SOURCE")]
    pub map: Vec<String>,
    /// The table that remembers which records were stored (with --map, csv or jsonl); see
    /// `holdfast sink processed`.
    #[arg(long, default_value = DEFAULT_TRACKING_TABLE)]
    pub tracking_table: String,
    /// With --to: an extra request header, `Name: value` (repeatable), e.g. for authorization.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// With --to: a URL that answers 2xx when the back end is up, probed while it is down
    /// (default: a TCP connection to the --to host).
    #[arg(long)]
    pub health_url: Option<String>,
    /// With --to: seconds to wait for each answer.
    #[arg(long, default_value_t = 10)]
    pub http_timeout: u64,
    #[command(flatten)]
    pub consumer: ConsumerArgs,
}

/// `holdfast sink processed …`: the records a mapped sink has stored.
#[derive(Subcommand, Clone, Debug)]
pub enum SinkCommand {
    /// See and reset the tracking that makes a mapped sink store each record once.
    #[command(subcommand)]
    Processed(ProcessedCommand),
}

#[derive(Subcommand, Clone, Debug)]
pub enum ProcessedCommand {
    /// The most recently stored records: key, table, message id, time.
    List {
        #[command(flatten)]
        target: TrackingArgs,
        /// At most this many (up to 100,000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(0..=100_000))]
        limit: i64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// How many records are tracked.
    Count {
        #[command(flatten)]
        target: TrackingArgs,
    },
    /// Forget tracked records, so a redelivered message would be stored again.
    Clear {
        #[command(flatten)]
        target: TrackingArgs,
        /// Only records stored more than this long ago: e.g. 30d, 12h, 90m, 3600s.
        #[arg(long, value_parser = parse_age)]
        older_than: Option<Duration>,
    },
}

#[derive(Args, Clone, Debug)]
pub struct TrackingArgs {
    /// The database the sink writes to.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Only the records of this table (default: every table).
    #[arg(long)]
    pub table: Option<String>,
    /// The tracking table.
    #[arg(long, default_value = DEFAULT_TRACKING_TABLE)]
    pub tracking_table: String,
}

pub const DEFAULT_TRACKING_TABLE: &str = "holdfast_processed";

/// `30d`, `12h`, `90m`, `3600s` (or plain seconds).
fn parse_age(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = number.parse().map_err(|_| format!("{text:?}: expected a number and d, h, m or s"))?;
    let seconds = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" | "" => 1,
        _ => return Err(format!("{text:?}: the unit is d, h, m or s")),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

/// How a delivery becomes rows.
#[derive(Clone, Debug)]
pub enum Mapping {
    /// A lead message into the leads table's columns.
    Lead,
    /// Any JSON object: its key (SQS message id or a JSON pointer), the body, extra columns.
    Json { key_pointer: Option<String>, columns: Vec<(String, String)> },
    /// Records (JSON, JSON lines or CSV) mapped onto chosen columns, tracked for idempotency.
    Records(RecordMapping),
}

/// What one delivery becomes: rows, each with its tracking row when the mapping tracks records.
struct Item {
    track: Option<Row>,
    row: Row,
}

fn now() -> String {
    DateTime::from(SystemTime::now()).fmt(DateTimeFormat::DateTime).unwrap_or_default()
}

fn column(name: &str, kind: ColumnKind, required: bool) -> Column {
    Column { name: name.to_string(), kind, required }
}

impl Mapping {
    pub fn table(&self, name: &str) -> Table {
        let columns = match self {
            Mapping::Lead => vec![
                column("submission_id", ColumnKind::Key, true),
                column("submitted_at", ColumnKind::Short, true),
                column("name", ColumnKind::Text, true),
                column("company", ColumnKind::Text, false),
                column("email", ColumnKind::Text, true),
                column("phone", ColumnKind::Short, false),
                column("message", ColumnKind::Text, true),
                column("user_agent", ColumnKind::Text, false),
                column("source", ColumnKind::Short, false),
                column("message_id", ColumnKind::Short, true),
                column("stored_at", ColumnKind::Short, true),
            ],
            Mapping::Json { columns, .. } => {
                let mut all = vec![
                    column("message_key", ColumnKind::Key, true),
                    column("message_id", ColumnKind::Short, true),
                    column("body", ColumnKind::Long, true),
                    column("stored_at", ColumnKind::Short, true),
                ];
                all.extend(columns.iter().map(|(name, _)| column(name, ColumnKind::Text, false)));
                all
            }
            Mapping::Records(records) => {
                records.columns.iter().map(|(name, _)| column(name, ColumnKind::Text, false)).collect()
            }
        };
        Table { name: name.to_string(), columns }
    }

    /// The items for `delivery` going into `table`, or why it cannot be stored.
    fn items(&self, delivery: &Delivery, table: &str, stored_at: &str) -> Result<Vec<Item>, String> {
        match self {
            Mapping::Records(mapping) => Ok(mapping
                .records(&delivery.message_id, &delivery.body)?
                .into_iter()
                .map(|record| Item {
                    track: Some(vec![
                        Some(format!("{table}:{}", record.key)),
                        Some(table.to_string()),
                        Some(delivery.message_id.clone()),
                        Some(stored_at.to_string()),
                    ]),
                    row: record.values,
                })
                .collect()),
            other => Ok(vec![Item { track: None, row: other.row(delivery, stored_at)? }]),
        }
    }

    /// The row for `delivery`, or why it cannot be stored (lead and JSON-document mappings).
    pub fn row(&self, delivery: &Delivery, stored_at: &str) -> Result<Row, String> {
        match self {
            Mapping::Records(_) => Err("a record mapping makes several rows".into()),
            Mapping::Lead => {
                let lead = Lead::from_message(&delivery.body)?;
                Ok(vec![
                    Some(lead.id),
                    Some(lead.submitted_at),
                    Some(lead.name),
                    lead.company,
                    Some(lead.email),
                    lead.phone,
                    Some(lead.message),
                    lead.user_agent,
                    lead.source,
                    Some(delivery.message_id.clone()),
                    Some(stored_at.to_string()),
                ])
            }
            Mapping::Json { key_pointer, columns } => {
                let value: serde_json::Value =
                    serde_json::from_str(&delivery.body).map_err(|error| format!("not JSON ({error})"))?;
                let key = match key_pointer {
                    None => delivery.message_id.clone(),
                    Some(pointer) => match value.pointer(pointer) {
                        Some(serde_json::Value::String(text)) if !text.is_empty() => text.clone(),
                        Some(serde_json::Value::Number(number)) => number.to_string(),
                        _ => return Err(format!("no string or number at {pointer}")),
                    },
                };
                if key.chars().count() > 255 {
                    return Err("key longer than 255 characters".into());
                }
                let mut row = vec![
                    Some(key),
                    Some(delivery.message_id.clone()),
                    Some(delivery.body.clone()),
                    Some(stored_at.to_string()),
                ];
                for (_, pointer) in columns {
                    row.push(value.pointer(pointer).filter(|v| !v.is_null()).map(|v| match v {
                        serde_json::Value::String(text) => text.clone(),
                        other => other.to_string(),
                    }));
                }
                Ok(row)
            }
        }
    }
}

/// The table that remembers stored records: TABLE:KEY, the table, the message, the time.
pub fn tracking_table(name: &str) -> Table {
    Table {
        name: name.to_string(),
        columns: vec![
            column("record_key", ColumnKind::Key, true),
            column("target_table", ColumnKind::Short, true),
            column("message_id", ColumnKind::Short, true),
            column("processed_at", ColumnKind::Short, true),
        ],
    }
}

/// Messages into a database table.
pub struct DbDestination {
    database: Database,
    table: Table,
    mapping: Mapping,
    /// With a record mapping: the tracking table, and the casts PostgreSQL needs for the data
    /// table's columns (read when the table is prepared).
    tracking: Option<Table>,
    casts: std::sync::Mutex<Vec<Option<String>>>,
}

impl DbDestination {
    pub fn new(url: &str, table: &str, mapping: Mapping, max_connections: u32) -> Result<DbDestination, String> {
        Self::with_tracking(url, table, mapping, DEFAULT_TRACKING_TABLE, max_connections)
    }

    pub fn with_tracking(
        url: &str,
        table: &str,
        mapping: Mapping,
        tracking: &str,
        max_connections: u32,
    ) -> Result<DbDestination, String> {
        db::check_identifier(table)?;
        let table = mapping.table(table);
        for column in &table.columns {
            db::check_identifier(&column.name)?;
        }
        let tracking = match mapping {
            Mapping::Records(_) => {
                db::check_identifier(tracking)?;
                if tracking.eq_ignore_ascii_case(&table.name) {
                    return Err("the tracking table must not be the data table".into());
                }
                Some(tracking_table(tracking))
            }
            _ => None,
        };
        Ok(DbDestination {
            database: Database::open(url, max_connections)?,
            table,
            mapping,
            tracking,
            casts: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Inserts `items`; for each, whether it was new.
    async fn insert(&self, items: &[&Item]) -> Result<Vec<bool>, DbError> {
        match &self.tracking {
            Some(tracking) => {
                let pairs: Vec<(Row, Row)> =
                    items.iter().map(|item| (item.track.clone().unwrap_or_default(), item.row.clone())).collect();
                let casts = self.casts.lock().expect("casts lock").clone();
                self.database.insert_tracked(tracking, &self.table, &casts, &pairs).await
            }
            None => {
                let rows: Vec<Row> = items.iter().map(|item| item.row.clone()).collect();
                self.database.insert_all(&self.table, &rows).await
            }
        }
    }

    /// Is the database there? Distinguishes "down" from "refused this row".
    async fn reachable(&self) -> bool {
        self.database.probe().await.is_ok()
    }
}

impl Destination for DbDestination {
    fn describe(&self) -> String {
        format!("database {} (table {})", self.database.display(), self.table.name)
    }

    async fn prepare(&self) -> Result<Result<(), String>, Fatal> {
        let prepared = async {
            if let Some(tracking) = &self.tracking {
                self.database.prepare(tracking).await?;
            }
            self.database.prepare(&self.table).await?;
            if self.tracking.is_some() {
                *self.casts.lock().expect("casts lock") = self.database.column_casts(&self.table).await?;
            }
            Ok::<(), DbError>(())
        };
        match prepared.await {
            Ok(()) => Ok(Ok(())),
            Err(DbError::Unavailable(reason)) => Ok(Err(reason)),
            // The server answered but will not create or use the table: no retry will fix that.
            Err(DbError::Refused(reason)) => Err(Fatal(reason)),
        }
    }

    async fn store(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let stored_at = now();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        let mut work: Vec<(usize, Vec<Item>)> = Vec::new();
        for (i, delivery) in batch.iter().enumerate() {
            match self.mapping.items(delivery, &self.table.name, &stored_at) {
                Ok(items) => work.push((i, items)),
                Err(reason) => outcomes[i] = Some(Outcome::Rejected(reason)),
            }
        }
        // A delivery is stored if any of its rows is new, a duplicate if all were there before.
        let done = |inserted: &[bool]| if inserted.contains(&true) { Outcome::Stored } else { Outcome::Duplicate };
        let all: Vec<&Item> = work.iter().flat_map(|(_, items)| items).collect();
        match self.insert(&all).await {
            Ok(inserted) => {
                let mut inserted = inserted.as_slice();
                for (position, items) in &work {
                    let (mine, rest) = inserted.split_at(items.len());
                    outcomes[*position] = Some(done(mine));
                    inserted = rest;
                }
            }
            Err(error) if !matches!(error, DbError::Refused(_)) || !self.reachable().await => {
                for (position, _) in &work {
                    outcomes[*position] = Some(Outcome::Unavailable(error.to_string()));
                }
            }
            Err(_) => {
                // The database is up but refused the batch: find the message(s) it refuses.
                let mut down: Option<String> = None;
                for (position, items) in &work {
                    if let Some(reason) = &down {
                        outcomes[*position] = Some(Outcome::Unavailable(reason.clone()));
                        continue;
                    }
                    let items: Vec<&Item> = items.iter().collect();
                    outcomes[*position] = Some(match self.insert(&items).await {
                        Ok(inserted) => done(&inserted),
                        Err(DbError::Refused(reason)) if self.reachable().await => {
                            Outcome::Rejected(format!("refused by the database: {reason}"))
                        }
                        Err(error) => {
                            down = Some(error.to_string());
                            Outcome::Unavailable(error.to_string())
                        }
                    });
                }
            }
        }
        outcomes.into_iter().map(|outcome| outcome.expect("every delivery has an outcome")).collect()
    }
}

/// `holdfast form work`.
pub async fn work(args: WorkArgs) -> Result<Summary, String> {
    let destination =
        DbDestination::new(&args.database_url, &args.table, Mapping::Lead, args.consumer.max_consumers + 1)?;
    consume(&args.queue, &args.sqs, args.consumer, destination).await
}

/// `holdfast sink`.
pub async fn sink(args: SinkArgs) -> Result<Summary, String> {
    if let Some(SinkCommand::Processed(command)) = args.command {
        return processed(command).await.map(|()| Summary::default());
    }
    let queue = args.queue.as_deref().ok_or("give --queue")?;
    let records = record_mapping(&args)?;
    if let Some(url) = &args.to {
        if records.is_some() {
            return Err("--to posts each message body as it is: --map, --fields and csv/jsonl are for tables".into());
        }
        let headers = args
            .headers
            .iter()
            .map(|header| {
                header
                    .split_once(':')
                    .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
                    .ok_or_else(|| format!("--header {header:?}: expected NAME: VALUE"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let destination = HttpDestination::new(
            url,
            args.health_url.as_deref(),
            headers,
            Duration::from_secs(args.http_timeout.max(1)),
        )?;
        return consume(queue, &args.sqs, args.consumer, destination).await;
    }
    let url = args.database_url.as_deref().ok_or("give --database-url or --to")?;
    let connections = args.consumer.max_consumers + 1;
    if let Some(records) = records {
        let mapping = Mapping::Records(records);
        let destination = DbDestination::with_tracking(url, &args.table, mapping, &args.tracking_table, connections)?;
        return consume(queue, &args.sqs, args.consumer, destination).await;
    }
    let key_pointer = match args.key.as_str() {
        "message-id" => None,
        pointer if pointer.starts_with('/') => Some(pointer.to_string()),
        other => return Err(format!("--key {other:?}: use message-id or a JSON pointer such as /id")),
    };
    let columns = args
        .columns
        .iter()
        .map(|spec| match spec.split_once('=') {
            Some((name, pointer)) if pointer.starts_with('/') => Ok((name.to_string(), pointer.to_string())),
            _ => Err(format!("--column {spec:?}: expected NAME=/json/pointer")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let destination = DbDestination::new(url, &args.table, Mapping::Json { key_pointer, columns }, connections)?;
    consume(queue, &args.sqs, args.consumer, destination).await
}

/// The record mapping the flags ask for, or `None` for the default layout (one JSON document per
/// row with its body).
fn record_mapping(args: &SinkArgs) -> Result<Option<RecordMapping>, String> {
    let csv = args.format == BodyFormat::Csv;
    if !csv && (args.fields.is_some() || args.header) {
        return Err("--fields and --header-row are for --format csv".into());
    }
    if csv && args.fields.is_none() && !args.header {
        return Err("--format csv needs the field names: --fields id,name,… or --header-row".into());
    }
    if args.map.is_empty() && args.format == BodyFormat::Json {
        return Ok(None);
    }
    // With csv or jsonl, --column NAME=SOURCE means what --map does.
    let specs = if args.map.is_empty() { &args.columns } else { &args.map };
    let columns: Vec<(String, Source)> = if specs.is_empty() {
        match &args.fields {
            // Each CSV field into the column of the same name.
            Some(fields) if csv => {
                fields.iter().map(|f| (f.trim().to_string(), Source::Field(f.trim().to_string()))).collect()
            }
            _ => return Err("say which columns to fill: --map COLUMN=FIELD (repeatable)".into()),
        }
    } else {
        specs
            .iter()
            .map(|spec| match spec.split_once('=') {
                Some((column, source)) if !column.trim().is_empty() && !source.trim().is_empty() => {
                    Ok((column.trim().to_string(), Source::parse(source.trim())))
                }
                _ => Err(format!("--map {spec:?}: expected COLUMN=FIELD or COLUMN=/json/pointer")),
            })
            .collect::<Result<_, _>>()?
    };
    if csv {
        for (column, source) in &columns {
            let known = match (source, &args.fields) {
                (Source::Pointer(_), _) => false,
                (Source::Field(name), Some(fields)) => fields.iter().any(|field| field.trim() == name),
                (Source::Field(_), None) => true, // named by each message's header line
            };
            if !known {
                return Err(format!("--map {column}=…: a CSV field is named by --fields or the header line"));
            }
        }
    }
    let key = match args.key.as_str() {
        "message-id" => None,
        other => Some(Source::parse(other)),
    };
    Ok(Some(RecordMapping {
        format: args.format,
        fields: args.fields.as_ref().map(|f| f.iter().map(|s| s.trim().to_string()).collect()),
        header: args.header,
        columns,
        key,
    }))
}

/// `holdfast sink processed list|count|clear`.
async fn processed(command: ProcessedCommand) -> Result<(), String> {
    let target = match &command {
        ProcessedCommand::List { target, .. }
        | ProcessedCommand::Count { target }
        | ProcessedCommand::Clear { target, .. } => target,
    };
    let database = Database::open(&target.database_url, 1)?;
    let table = target.table.as_deref();
    let tracking = target.tracking_table.as_str();
    let mut output = String::new();
    let result = match &command {
        ProcessedCommand::List { limit, json, .. } => database.processed(tracking, table, *limit).await.map(|rows| {
            for [key, table, message_id, at] in rows {
                let line = if *json {
                    serde_json::json!({"key": key, "table": table, "message_id": message_id, "processed_at": at})
                        .to_string()
                } else {
                    format!("{key}\t{table}\t{message_id}\t{at}")
                };
                output.push_str(&line);
                output.push('\n');
            }
        }),
        ProcessedCommand::Count { .. } => {
            database.processed_count(tracking, table).await.map(|n| output.push_str(&format!("{n}\n")))
        }
        ProcessedCommand::Clear { older_than, .. } => {
            let before = older_than
                .map(|age| DateTime::from(SystemTime::now() - age).fmt(DateTimeFormat::DateTime).unwrap_or_default());
            database.clear_processed(tracking, table, before.as_deref()).await.map(|n| {
                eprintln!("forgot {n} processed records");
            })
        }
    };
    database.close().await;
    result.map_err(|error| error.to_string())?;
    // A reader that stops early (`| head`) is not an error.
    use std::io::Write;
    match std::io::stdout().write_all(output.as_bytes()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("writing the list: {error}")),
        _ => Ok(()),
    }
}

async fn consume<D: Destination>(
    queue: &str,
    queue_args: &QueueArgs,
    args: ConsumerArgs,
    destination: D,
) -> Result<Summary, String> {
    // Each call is bounded; the engine does its own retrying around them.
    let timeout = Duration::from_secs(args.wait_time.max(0) as u64 + 15);
    let client = sqs::client(queue_args, 3, timeout).await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        tracing::info!("shutting down: finishing the batches in hand");
        let _ = stop.send(true);
    });
    // The queue may not be reachable yet: wait for it rather than fail, like for the database.
    let mut delay = Duration::from_millis(250);
    let mut logged = false;
    let queue_url = loop {
        match sqs::ensure_queue(&client, queue, queue_args).await {
            Ok(url) => break url,
            Err(error) if !logged => {
                tracing::warn!("queue not ready ({error}); retrying");
                logged = true;
            }
            Err(_) => {}
        }
        if *shutdown.borrow() {
            return Ok(Summary::default());
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(args.max_backoff));
    };
    consumer::run(client, queue_url, destination, args, shutdown).await.map_err(|Fatal(reason)| reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(body: &str) -> Delivery {
        Delivery::for_test("m-1", body)
    }

    #[test]
    fn json_rows_use_the_message_id_or_a_pointer() {
        let by_id = Mapping::Json { key_pointer: None, columns: vec![("total".into(), "/order/total".into())] };
        let row = by_id.row(&delivery(r#"{"id":"o-7","order":{"total":12.5}}"#), "t").unwrap();
        assert_eq!(row[0].as_deref(), Some("m-1"));
        assert_eq!(row[4].as_deref(), Some("12.5"));
        let by_field = Mapping::Json { key_pointer: Some("/id".into()), columns: vec![] };
        assert_eq!(by_field.row(&delivery(r#"{"id":"o-7"}"#), "t").unwrap()[0].as_deref(), Some("o-7"));
        assert!(by_field.row(&delivery(r#"{"other":1}"#), "t").unwrap_err().contains("/id"));
        assert!(by_field.row(&delivery("plain text"), "t").unwrap_err().starts_with("not JSON"));
    }

    fn sink_args(args: &[&str]) -> SinkArgs {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            sink: SinkArgs,
        }
        let all = ["sink", "--queue", "q", "--database-url", "sqlite://x.db"].iter().chain(args);
        <Cli as clap::Parser>::try_parse_from(all).map(|cli| cli.sink).unwrap()
    }

    #[test]
    fn record_mappings_from_the_command_line() {
        assert!(record_mapping(&sink_args(&[])).unwrap().is_none(), "JSON documents by default");
        let csv = record_mapping(&sink_args(&["--format", "csv", "--fields", "id,name,city"])).unwrap().unwrap();
        let columns: Vec<&str> = csv.columns.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(columns, ["id", "name", "city"], "each field into its own column");
        let chosen = sink_args(&["--format", "csv", "--fields", "id,name,city", "--column", "full_name=name"]);
        let chosen = record_mapping(&chosen).unwrap().unwrap();
        assert_eq!(chosen.columns, [("full_name".to_string(), Source::Field("name".into()))], "--column maps too");
        let unknown = sink_args(&["--format", "csv", "--fields", "id", "--map", "x=nope"]);
        assert!(record_mapping(&unknown).unwrap_err().contains("a CSV field"));
        assert!(record_mapping(&sink_args(&["--format", "csv"])).unwrap_err().contains("--fields"));
        assert!(record_mapping(&sink_args(&["--format", "ndjson"])).unwrap_err().contains("--map"));
        let jsonl = record_mapping(&sink_args(&["--format", "jsonl", "--map", "city=/address/city", "--key", "/id"]));
        let jsonl = jsonl.unwrap().unwrap();
        assert_eq!(jsonl.key, Some(Source::Pointer("/id".into())));
    }

    #[test]
    fn lead_rows_follow_the_table() {
        let table = Mapping::Lead.table("leads");
        let lead = crate::lead::LeadInput::from_pairs([
            ("name", "A".to_string()),
            ("email", "a@b.co".into()),
            ("message", "m".into()),
        ])
        .into_lead("2026-01-01T00:00:00Z".into(), None, "form");
        let row = Mapping::Lead.row(&delivery(&lead.to_message()), "now").unwrap();
        assert_eq!(row.len(), table.columns.len());
        assert_eq!(row[0].as_deref(), Some(lead.id.as_str()));
        assert!(Mapping::Lead.row(&delivery("{}"), "now").is_err());
    }
}
