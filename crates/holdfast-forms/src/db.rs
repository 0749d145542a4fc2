//! The SQL side of the worker: one table in SQLite, MySQL/MariaDB or PostgreSQL, chosen by URL,
//! through sqlx's `Any` driver.
//!
//! Invariant: inserting is idempotent. Every table has a primary key (the submission id for leads,
//! the message id or a chosen JSON field for `holdfast sink`), and an insert of a key that is
//! already there changes nothing and reports "duplicate". So a message delivered twice (at-least-
//! once delivery, or a worker killed between its commit and its delete) is stored once.
//!
//! Values are stored as text (timestamps as RFC 3339), which the three databases agree on; table
//! and column names are checked against a plain identifier pattern, because SQL cannot bind them.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyQueryResult};
use sqlx::{AnyPool, Row as _};

/// Which SQL dialect the URL selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    MySql,
    Postgres,
}

/// What a column holds, which decides its SQL type per dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// The primary key (at most 255 characters).
    Key,
    /// A short value: an id, a timestamp.
    Short,
    /// Text up to 64 KiB: a form field.
    Text,
    /// A whole message body (up to 256 KiB in SQS; more in MySQL's MEDIUMTEXT).
    Long,
}

#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
    pub required: bool,
}

/// A table: its name and columns; the first column is the primary key.
#[derive(Clone, Debug)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
}

/// One row, its values in the table's column order.
pub type Row = Vec<Option<String>>;

/// Whether a failure is the database being unreachable or a statement the database refused.
#[derive(Debug)]
pub enum DbError {
    /// The connection failed or the server went away: try again later.
    Unavailable(String),
    /// The server answered and refused the statement.
    Refused(String),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Unavailable(text) | DbError::Refused(text) => f.write_str(text),
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Database(error) => DbError::Refused(error.to_string()),
            other => DbError::Unavailable(other.to_string()),
        }
    }
}

/// A checked SQL identifier: a letter or underscore, then letters, digits, underscores.
pub fn check_identifier(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && name.len() <= 63 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!("{name:?} is not a plain SQL name (letters, digits and _, at most 63)"))
    }
}

/// A pool of connections to one database.
pub struct Database {
    pool: AnyPool,
    /// For one direct connection when the pool gives up, to learn why (see `explain`).
    url: String,
    dialect: Dialect,
    /// The URL without its password, for log lines.
    display: String,
}

impl Database {
    /// Opens a pool lazily: no connection is made until first use, so a worker can start while
    /// its database is down and wait for it.
    pub fn open(url: &str, max_connections: u32) -> Result<Database, String> {
        sqlx::any::install_default_drivers();
        let (dialect, url) = if url.starts_with("sqlite:") {
            // Create the file on first use unless the URL says otherwise.
            let url = if url.contains("mode=") || url.contains(":memory:") {
                url.to_string()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Dialect::Sqlite, url)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            (Dialect::MySql, url.replacen("mariadb:", "mysql:", 1))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            (Dialect::Postgres, url.to_string())
        } else {
            return Err(format!("unsupported database URL {url:?}: use sqlite://FILE, mysql://… or postgres://…"));
        };
        // SQLite takes one writer at a time: a single connection queues the workers' commits
        // instead of having them fail with SQLITE_BUSY.
        let (max_connections, acquire_timeout) = match dialect {
            Dialect::Sqlite => (1, Duration::from_secs(60)),
            _ => (max_connections.max(1), Duration::from_secs(10)),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(0)
            .acquire_timeout(acquire_timeout)
            .test_before_acquire(true)
            .connect_lazy(&url)
            .map_err(|error| format!("bad database URL: {error}"))?;
        Ok(Database { pool, dialect, display: redact(&url), url })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The URL, without its password.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// A round trip to the server.
    pub async fn probe(&self) -> Result<(), DbError> {
        match sqlx::query("SELECT 1").execute(&self.pool).await {
            Ok(_) => Ok(()),
            Err(error) => Err(self.explain(error).await),
        }
    }

    /// The error a user can act on. When the pool times out waiting for a connection it only says
    /// "pool timed out", hiding the cause (a refused connection, a wrong password, an unknown
    /// host); one direct connection attempt brings the real reason back.
    async fn explain(&self, error: sqlx::Error) -> DbError {
        if !matches!(error, sqlx::Error::PoolTimedOut) {
            return error.into();
        }
        let attempt = tokio::time::timeout(Duration::from_secs(5), async {
            use sqlx::Connection;
            sqlx::AnyConnection::connect(&self.url).await
        });
        let reason = match attempt.await {
            Ok(Err(cause)) => cause.to_string(),
            Ok(Ok(connection)) => {
                let _ = sqlx::Connection::close(connection).await;
                "every connection is busy".to_string()
            }
            Err(_) => "no answer within 5 s".to_string(),
        };
        DbError::Unavailable(format!("cannot connect to {}: {reason}", self.display))
    }

    /// Creates the table if it is missing, then checks that it has every column this worker
    /// writes (a table someone else created may not).
    pub async fn prepare(&self, table: &Table) -> Result<(), DbError> {
        // The first statement is the one that meets a database that is down: say why.
        self.probe().await?;
        if self.dialect == Dialect::Sqlite {
            // WAL lets readers (reports, the tests) look while the worker writes.
            sqlx::query("PRAGMA journal_mode=WAL").execute(&self.pool).await?;
        }
        sqlx::query(&self.create_sql(table)).execute(&self.pool).await?;
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        let check = format!("SELECT {} FROM {} WHERE 1 = 0", names.join(", "), table.name);
        sqlx::query(&check).execute(&self.pool).await.map_err(|error| match DbError::from(error) {
            DbError::Refused(text) => {
                DbError::Refused(format!("table {} does not have the columns {}: {text}", table.name, names.join(", ")))
            }
            unavailable => unavailable,
        })?;
        Ok(())
    }

    fn create_sql(&self, table: &Table) -> String {
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|column| {
                let kind = match (self.dialect, column.kind) {
                    (Dialect::MySql, ColumnKind::Key | ColumnKind::Short) => "VARCHAR(255)",
                    (Dialect::MySql, ColumnKind::Text) => "TEXT",
                    (Dialect::MySql, ColumnKind::Long) => "MEDIUMTEXT",
                    (_, _) => "TEXT",
                };
                let constraint = match (column.kind, column.required) {
                    (ColumnKind::Key, _) => " NOT NULL PRIMARY KEY",
                    (_, true) => " NOT NULL",
                    (_, false) => "",
                };
                format!("{} {kind}{constraint}", column.name)
            })
            .collect();
        let suffix = if self.dialect == Dialect::MySql { " DEFAULT CHARSET=utf8mb4" } else { "" };
        format!("CREATE TABLE IF NOT EXISTS {} ({}){suffix}", table.name, columns.join(", "))
    }

    /// The insert that does nothing when the key is already there.
    fn insert_sql(&self, table: &Table) -> String {
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        let placeholders: Vec<String> = (1..=names.len())
            .map(|i| if self.dialect == Dialect::Postgres { format!("${i}") } else { "?".to_string() })
            .collect();
        let key = &table.columns[0].name;
        match self.dialect {
            // INSERT IGNORE, not ON DUPLICATE KEY UPDATE: sqlx connects with CLIENT_FOUND_ROWS,
            // under which the latter reports a duplicate as one affected row. Values are checked
            // before they get here, so IGNORE has nothing else to hide.
            Dialect::MySql => {
                format!("INSERT IGNORE INTO {} ({}) VALUES ({})", table.name, names.join(", "), placeholders.join(", "))
            }
            _ => format!(
                "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({key}) DO NOTHING",
                table.name,
                names.join(", "),
                placeholders.join(", ")
            ),
        }
    }

    /// Inserts `rows` in one transaction. For each row: true if it was inserted, false if its key
    /// was already there. Nothing is stored unless everything is.
    pub async fn insert_all(&self, table: &Table, rows: &[Row]) -> Result<Vec<bool>, DbError> {
        let sql = self.insert_sql(table);
        let mut transaction = match self.pool.begin().await {
            Ok(transaction) => transaction,
            Err(error) => return Err(self.explain(error).await),
        };
        let mut inserted = Vec::with_capacity(rows.len());
        for row in rows {
            let mut query = sqlx::query(&sql);
            for value in row {
                query = query.bind(value.clone());
            }
            let result: AnyQueryResult = query.execute(&mut *transaction).await?;
            inserted.push(result.rows_affected() > 0);
        }
        transaction.commit().await?;
        Ok(inserted)
    }

    /// Stores records whose keys are not yet in `tracking`, all in one transaction: for each record
    /// the tracking row goes in first (doing nothing if its key is there), and the data row only if
    /// it did. So a table of any shape, without a unique key of its own, still gets each record
    /// once. For each record: true if stored now, false if it was stored before.
    pub async fn insert_tracked(
        &self,
        tracking: &Table,
        data: &Table,
        casts: &[Option<String>],
        records: &[(Row, Row)],
    ) -> Result<Vec<bool>, DbError> {
        let track_sql = self.insert_sql(tracking);
        let data_sql = self.plain_insert_sql(data, casts);
        let mut transaction = match self.pool.begin().await {
            Ok(transaction) => transaction,
            Err(error) => return Err(self.explain(error).await),
        };
        let mut inserted = Vec::with_capacity(records.len());
        for (track_row, data_row) in records {
            let mut query = sqlx::query(&track_sql);
            for value in track_row {
                query = query.bind(value.clone());
            }
            let fresh = query.execute(&mut *transaction).await?.rows_affected() > 0;
            if fresh {
                let mut query = sqlx::query(&data_sql);
                for value in data_row {
                    query = query.bind(value.clone());
                }
                query.execute(&mut *transaction).await?;
            }
            inserted.push(fresh);
        }
        transaction.commit().await?;
        Ok(inserted)
    }

    /// An insert with no conflict handling (the tracking table decides what is new). PostgreSQL
    /// does not turn text into other types by itself, so each value is cast to its column's type.
    fn plain_insert_sql(&self, table: &Table, casts: &[Option<String>]) -> String {
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        let placeholders: Vec<String> = (1..=names.len())
            .map(|i| match (self.dialect, casts.get(i - 1).and_then(Option::as_deref)) {
                (Dialect::Postgres, Some(kind)) => format!("CAST(${i} AS {kind})"),
                (Dialect::Postgres, None) => format!("${i}"),
                _ => "?".to_string(),
            })
            .collect();
        format!("INSERT INTO {} ({}) VALUES ({})", table.name, names.join(", "), placeholders.join(", "))
    }

    /// For PostgreSQL, each column's type where it is not text (for `plain_insert_sql`'s casts);
    /// the other databases convert text themselves.
    pub async fn column_casts(&self, table: &Table) -> Result<Vec<Option<String>>, DbError> {
        if self.dialect != Dialect::Postgres {
            return Ok(vec![None; table.columns.len()]);
        }
        let rows = sqlx::query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
        )
        .bind(table.name.to_lowercase())
        .fetch_all(&self.pool)
        .await?;
        let mut types = std::collections::HashMap::new();
        for row in rows {
            types.insert(row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?);
        }
        Ok(table
            .columns
            .iter()
            .map(|column| {
                let kind = types.get(&column.name.to_lowercase())?;
                // Only plain type names: they go into SQL text.
                let plain = kind.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '_');
                let textual = matches!(kind.as_str(), "text" | "character varying" | "character");
                (plain && !textual).then(|| kind.clone())
            })
            .collect())
    }

    /// The tracking rows of `target` (or of every table), newest first, at most `limit`:
    /// (key, table, message id, processed at).
    pub async fn processed(
        &self,
        tracking: &str,
        target: Option<&str>,
        limit: i64,
    ) -> Result<Vec<[String; 4]>, DbError> {
        check_identifier(tracking).map_err(DbError::Refused)?;
        let (filter, bind) = self.target_filter(target);
        let sql = format!(
            "SELECT record_key, target_table, message_id, processed_at FROM {tracking}{filter} \
             ORDER BY processed_at DESC LIMIT {}",
            limit.max(0)
        );
        let mut query = sqlx::query(&sql);
        if let Some(target) = bind {
            query = query.bind(target.to_string());
        }
        let rows = query.fetch_all(&self.pool).await.map_err(|e| missing_table(e, tracking))?;
        rows.iter()
            .map(|row| {
                let text = |i: usize| -> Result<String, DbError> {
                    row.try_get::<String, _>(i)
                        .or_else(|_| row.try_get::<Vec<u8>, _>(i).map(|b| String::from_utf8_lossy(&b).into_owned()))
                        .map_err(DbError::from)
                };
                let key = text(0)?;
                let table = text(1)?;
                // The key is stored as TABLE:KEY, so several sinks can share one tracking table.
                let key = key.strip_prefix(&format!("{table}:")).map(str::to_string).unwrap_or(key);
                Ok([key, table, text(2)?, text(3)?])
            })
            .collect()
    }

    /// How many tracking rows `target` (or every table) has.
    pub async fn processed_count(&self, tracking: &str, target: Option<&str>) -> Result<i64, DbError> {
        check_identifier(tracking).map_err(DbError::Refused)?;
        let (filter, bind) = self.target_filter(target);
        let sql = format!("SELECT COUNT(*) FROM {tracking}{filter}");
        let mut query = sqlx::query(&sql);
        if let Some(target) = bind {
            query = query.bind(target.to_string());
        }
        let row = query.fetch_one(&self.pool).await.map_err(|e| missing_table(e, tracking))?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Forgets tracking rows of `target` (or of every table), only those processed before
    /// `before` (an RFC 3339 time) if given; returns how many. A message delivered again after
    /// this is stored again.
    pub async fn clear_processed(
        &self,
        tracking: &str,
        target: Option<&str>,
        before: Option<&str>,
    ) -> Result<u64, DbError> {
        check_identifier(tracking).map_err(DbError::Refused)?;
        let placeholder = |i: usize| if self.dialect == Dialect::Postgres { format!("${i}") } else { "?".into() };
        let mut conditions = Vec::new();
        let mut binds = Vec::new();
        if let Some(target) = target {
            binds.push(target.to_string());
            conditions.push(format!("target_table = {}", placeholder(binds.len())));
        }
        if let Some(before) = before {
            binds.push(before.to_string());
            conditions.push(format!("processed_at < {}", placeholder(binds.len())));
        }
        let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
        let sql = format!("DELETE FROM {tracking}{filter}");
        let mut query = sqlx::query(&sql);
        for value in binds {
            query = query.bind(value);
        }
        let result = query.execute(&self.pool).await.map_err(|e| missing_table(e, tracking))?;
        Ok(result.rows_affected())
    }

    fn target_filter<'a>(&self, target: Option<&'a str>) -> (String, Option<&'a str>) {
        match target {
            Some(target) => {
                let placeholder = if self.dialect == Dialect::Postgres { "$1" } else { "?" };
                (format!(" WHERE target_table = {placeholder}"), Some(target))
            }
            None => (String::new(), None),
        }
    }

    /// Rows in `table` (for reports and tests).
    pub async fn count(&self, table: &str) -> Result<i64, DbError> {
        check_identifier(table).map_err(DbError::Refused)?;
        let row = sqlx::query(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Distinct values of `column` in `table` (for tests: one row per submission).
    pub async fn count_distinct(&self, table: &str, column: &str) -> Result<i64, DbError> {
        check_identifier(table).map_err(DbError::Refused)?;
        check_identifier(column).map_err(DbError::Refused)?;
        let sql = format!("SELECT COUNT(DISTINCT {column}) FROM {table}");
        let row = sqlx::query(&sql).fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Drops `table` if it exists (for tests that share a database server).
    pub async fn drop_table(&self, table: &str) -> Result<(), DbError> {
        check_identifier(table).map_err(DbError::Refused)?;
        sqlx::query(&format!("DROP TABLE IF EXISTS {table}")).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A query on the tracking table before any sink created it: say so plainly.
fn missing_table(error: sqlx::Error, table: &str) -> DbError {
    match DbError::from(error) {
        DbError::Refused(text) => {
            DbError::Refused(format!("{text} (is {table} there? a sink with --map creates it when it starts)"))
        }
        other => other,
    }
}

/// `scheme://user:password@host` → `scheme://user:***@host`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((credentials, host)) = rest.split_once('@') else { return url.to_string() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            name: "leads".into(),
            columns: vec![
                Column { name: "id".into(), kind: ColumnKind::Key, required: true },
                Column { name: "body".into(), kind: ColumnKind::Long, required: true },
                Column { name: "note".into(), kind: ColumnKind::Text, required: false },
            ],
        }
    }

    #[test]
    fn identifiers_are_plain_names_only() {
        assert!(check_identifier("leads_2026").is_ok());
        assert!(check_identifier("_x").is_ok());
        for bad in ["", "1leads", "leads;drop", "a b", "le\"ads", &"x".repeat(64)] {
            assert!(check_identifier(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/leads"), "postgres://app:***@db:5432/leads");
        assert_eq!(redact("sqlite://leads.db?mode=rwc"), "sqlite://leads.db?mode=rwc");
    }

    #[tokio::test]
    async fn sqlite_inserts_are_idempotent_and_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Database::open(&url, 4).unwrap();
        let table = table();
        db.prepare(&table).await.unwrap();
        db.prepare(&table).await.unwrap();
        let row = |id: &str| vec![Some(id.to_string()), Some("{}".to_string()), None];
        assert_eq!(db.insert_all(&table, &[row("a"), row("b"), row("a")]).await.unwrap(), [true, true, false]);
        assert_eq!(db.insert_all(&table, &[row("b"), row("c")]).await.unwrap(), [false, true]);
        // A refused row rolls back the whole batch: "d" is not kept.
        let bad = vec![Some("e".to_string()), None, None];
        assert!(matches!(db.insert_all(&table, &[row("d"), bad]).await, Err(DbError::Refused(_))));
        assert_eq!(db.count("leads").await.unwrap(), 3);
        assert_eq!(db.count_distinct("leads", "id").await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_table_without_the_expected_columns_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Database::open(&url, 1).unwrap();
        sqlx::query("CREATE TABLE leads (id TEXT PRIMARY KEY)").execute(&db.pool).await.unwrap();
        match db.prepare(&table()).await {
            Err(DbError::Refused(text)) => assert!(text.contains("does not have the columns"), "{text}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn statements_follow_the_dialect() {
        let db_sql = |dialect| {
            let db = Database {
                pool: AnyPoolOptions::new().connect_lazy("sqlite::memory:").unwrap(),
                dialect,
                display: String::new(),
                url: String::new(),
            };
            (db.create_sql(&table()), db.insert_sql(&table()))
        };
        sqlx::any::install_default_drivers();
        let (create, insert) = db_sql(Dialect::MySql);
        assert_eq!(create, "CREATE TABLE IF NOT EXISTS leads (id VARCHAR(255) NOT NULL PRIMARY KEY, body MEDIUMTEXT NOT NULL, note TEXT) DEFAULT CHARSET=utf8mb4");
        assert_eq!(insert, "INSERT IGNORE INTO leads (id, body, note) VALUES (?, ?, ?)");
        let (_, insert) = db_sql(Dialect::Postgres);
        assert_eq!(insert, "INSERT INTO leads (id, body, note) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING");
    }

    #[tokio::test]
    async fn tracked_inserts_store_each_key_once_and_can_be_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&format!("sqlite://{}", dir.path().join("t.db").display()), 1).unwrap();
        let tracking = Table {
            name: "seen".into(),
            columns: ["record_key", "target_table", "message_id", "processed_at"]
                .iter()
                .enumerate()
                .map(|(i, name)| Column {
                    name: name.to_string(),
                    kind: if i == 0 { ColumnKind::Key } else { ColumnKind::Short },
                    required: true,
                })
                .collect(),
        };
        let data = Table {
            name: "people".into(),
            columns: vec![Column { name: "name".into(), kind: ColumnKind::Text, required: false }],
        };
        db.prepare(&tracking).await.unwrap();
        db.prepare(&data).await.unwrap();
        let record = |key: &str, name: &str, at: &str| {
            (
                vec![Some(format!("people:{key}")), Some("people".into()), Some("m".into()), Some(at.into())],
                vec![Some(name.to_string())],
            )
        };
        let first = [record("1", "Ada", "2026-01-01T00:00:00Z"), record("2", "Grace", "2026-06-01T00:00:00Z")];
        assert_eq!(db.insert_tracked(&tracking, &data, &[], &first).await.unwrap(), [true, true]);
        let again = [record("2", "Grace again", "2026-07-01T00:00:00Z"), record("3", "Alan", "2026-07-01T00:00:00Z")];
        assert_eq!(db.insert_tracked(&tracking, &data, &[], &again).await.unwrap(), [false, true]);
        assert_eq!(db.count("people").await.unwrap(), 3, "the table has no key of its own; tracking kept it right");
        let listed = db.processed("seen", Some("people"), 10).await.unwrap();
        assert_eq!(listed[0][0], "3", "newest first, the key without its table");
        assert_eq!(db.clear_processed("seen", None, Some("2026-03-01T00:00:00Z")).await.unwrap(), 1);
        assert_eq!(db.processed_count("seen", Some("people")).await.unwrap(), 2);
        assert_eq!(db.processed_count("seen", Some("other")).await.unwrap(), 0);
        let missing = db.processed_count("nothing_here", None).await.unwrap_err().to_string();
        assert!(missing.contains("is nothing_here there?"), "{missing}");
    }
}
