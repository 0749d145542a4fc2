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
use clap::Args;

use crate::consumer::{self, ConsumerArgs, Delivery, Destination, Fatal, Outcome, Summary};
use crate::db::{self, Column, ColumnKind, Database, DbError, Row, Table};
use crate::http_sink::HttpDestination;
use crate::lead::Lead;
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

/// `holdfast sink`: any queue of JSON messages into a table, or to an HTTP back end.
#[derive(Args, Clone, Debug)]
pub struct SinkArgs {
    /// The queue to drain, by name or URL.
    #[arg(long, short = 'q')]
    pub queue: String,
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
    /// Also copy a JSON value into a column of its own: NAME=/json/pointer (repeatable).
    #[arg(long = "column", value_name = "NAME=POINTER")]
    pub columns: Vec<String>,
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

/// How a delivery becomes a row.
#[derive(Clone, Debug)]
pub enum Mapping {
    /// A lead message into the leads table's columns.
    Lead,
    /// Any JSON object: its key (SQS message id or a JSON pointer), the body, extra columns.
    Json { key_pointer: Option<String>, columns: Vec<(String, String)> },
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
        };
        Table { name: name.to_string(), columns }
    }

    /// The row for `delivery`, or why it cannot be stored.
    pub fn row(&self, delivery: &Delivery, stored_at: &str) -> Result<Row, String> {
        match self {
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

/// Messages into a database table.
pub struct DbDestination {
    database: Database,
    table: Table,
    mapping: Mapping,
}

impl DbDestination {
    pub fn new(url: &str, table: &str, mapping: Mapping, max_connections: u32) -> Result<DbDestination, String> {
        db::check_identifier(table)?;
        let table = mapping.table(table);
        for column in &table.columns {
            db::check_identifier(&column.name)?;
        }
        Ok(DbDestination { database: Database::open(url, max_connections)?, table, mapping })
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
        match self.database.prepare(&self.table).await {
            Ok(()) => Ok(Ok(())),
            Err(DbError::Unavailable(reason)) => Ok(Err(reason)),
            // The server answered but will not create or use the table: no retry will fix that.
            Err(DbError::Refused(reason)) => Err(Fatal(reason)),
        }
    }

    async fn store(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let stored_at = now();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        let mut rows = Vec::new();
        let mut positions = Vec::new();
        for (i, delivery) in batch.iter().enumerate() {
            match self.mapping.row(delivery, &stored_at) {
                Ok(row) => {
                    rows.push(row);
                    positions.push(i);
                }
                Err(reason) => outcomes[i] = Some(Outcome::Rejected(reason)),
            }
        }
        let done = |inserted: bool| if inserted { Outcome::Stored } else { Outcome::Duplicate };
        match self.database.insert_all(&self.table, &rows).await {
            Ok(inserted) => {
                for (position, inserted) in positions.iter().zip(inserted) {
                    outcomes[*position] = Some(done(inserted));
                }
            }
            Err(error) if !matches!(error, DbError::Refused(_)) || !self.reachable().await => {
                for position in &positions {
                    outcomes[*position] = Some(Outcome::Unavailable(error.to_string()));
                }
            }
            Err(_) => {
                // The database is up but refused the batch: find the row(s) it refuses.
                let mut down: Option<String> = None;
                for (position, row) in positions.iter().zip(rows) {
                    if let Some(reason) = &down {
                        outcomes[*position] = Some(Outcome::Unavailable(reason.clone()));
                        continue;
                    }
                    outcomes[*position] = Some(match self.database.insert_all(&self.table, &[row]).await {
                        Ok(inserted) => done(inserted[0]),
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
    if let Some(url) = &args.to {
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
        return consume(&args.queue, &args.sqs, args.consumer, destination).await;
    }
    let url = args.database_url.as_deref().ok_or("give --database-url or --to")?;
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
    let destination =
        DbDestination::new(url, &args.table, Mapping::Json { key_pointer, columns }, args.consumer.max_consumers + 1)?;
    consume(&args.queue, &args.sqs, args.consumer, destination).await
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
