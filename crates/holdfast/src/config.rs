//! Server settings: command-line flags, `HOLDFAST_*` environment variables, an optional TOML file,
//! and defaults, in that order of precedence.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Deserialize;

use crate::auth::AuthMode;

/// Where queues are stored: `sqlite`, `journal`, `memory`, or a PostgreSQL URL.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum StorageKind {
    /// Durable: SQLite in the data directory (WAL, fsync on commit).
    Sqlite,
    /// Durable: the state in memory, every change appended to a journal in the data directory
    /// (fdatasync on commit) and replayed at start.
    Journal,
    /// Nothing survives a restart. For tests and throwaway setups.
    Memory,
    /// Durable and shared: a PostgreSQL database (`postgres://USER:PASS@HOST:PORT/DB`), which
    /// several holdfast nodes can serve together.
    Postgres(String),
}

impl std::str::FromStr for StorageKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "sqlite" => Ok(StorageKind::Sqlite),
            "memory" => Ok(StorageKind::Memory),
            "journal" => Ok(StorageKind::Journal),
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(StorageKind::Postgres(url.to_owned()))
            }
            other => Err(format!(
                "{other:?} is not a storage engine: use sqlite, journal, memory or a postgres://USER:PASS@HOST:PORT/DB URL"
            )),
        }
    }
}

impl TryFrom<String> for StorageKind {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

/// Shown in logs: a PostgreSQL URL without its password.
impl std::fmt::Debug for StorageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageKind::Sqlite => f.write_str("sqlite"),
            StorageKind::Memory => f.write_str("memory"),
            StorageKind::Journal => f.write_str("journal"),
            StorageKind::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

/// `postgres://user:secret@host/db` as `postgres://user:***@host/db`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    match rest.split_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// A setting that is on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    On,
    Off,
}

/// How queue URLs name their region (`holdfast_core::names::UrlStyle`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueUrlStyle {
    /// `http://HOST/REGION/ACCOUNT/NAME`, the region left out for the server's own.
    #[default]
    Path,
    /// `http://sqs.REGION.HOST/ACCOUNT/NAME`, as AWS's endpoints.
    Host,
}

impl From<QueueUrlStyle> for holdfast_core::names::UrlStyle {
    fn from(style: QueueUrlStyle) -> Self {
        match style {
            QueueUrlStyle::Path => holdfast_core::names::UrlStyle::Path,
            QueueUrlStyle::Host => holdfast_core::names::UrlStyle::Host,
        }
    }
}

#[derive(Args, Clone, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "HOLDFAST_BIND", value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// Where the SQLite database lives (default ./holdfast-data).
    #[arg(long, env = "HOLDFAST_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Storage engine: sqlite (the default), memory, or a PostgreSQL URL
    /// (postgres://USER:PASS@HOST:PORT/DB) for several nodes on one database.
    #[arg(long, env = "HOLDFAST_STORAGE", value_name = "ENGINE", value_parser = <StorageKind as std::str::FromStr>::from_str)]
    pub storage: Option<StorageKind>,
    /// Connections each node keeps to PostgreSQL (default 16).
    #[arg(long, env = "HOLDFAST_POSTGRES_POOL_SIZE", value_name = "N")]
    pub postgres_pool_size: Option<usize>,
    /// Size of each journal segment file in MiB (default 64, at least 1), for `--storage
    /// journal`. The journal keeps one segment allocated ahead, so it needs two free to start.
    #[arg(long, env = "HOLDFAST_JOURNAL_SEGMENT_MIB", value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub journal_segment_mib: Option<u64>,
    /// Wake long polls on other nodes with PostgreSQL's LISTEN/NOTIFY (default on). Turn off for
    /// databases without it (CockroachDB): waiting receives then look again every 200 ms.
    #[arg(long, env = "HOLDFAST_POSTGRES_NOTIFY", value_enum)]
    pub postgres_notify: Option<Switch>,
    /// A TOML file with any of these settings and queues to create at startup.
    #[arg(long, env = "HOLDFAST_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Once the server is ready, apply each `*.toml` declarations file and run each executable
    /// (or `*.sh`) in this directory, in name order; /ready answers 503 until they are done.
    #[arg(long, env = "HOLDFAST_INIT_DIR", value_name = "DIR")]
    pub init_dir: Option<PathBuf>,
    /// Seconds an init script may run before it is killed (default 300).
    #[arg(long, env = "HOLDFAST_INIT_TIMEOUT")]
    pub init_timeout: Option<u64>,
    /// Base of the queue URLs handed to clients, e.g. http://queue.internal:9324 (default: from
    /// the request's Host header).
    #[arg(long, env = "HOLDFAST_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Account id in queue URLs and ARNs (default 000000000000).
    #[arg(long, env = "HOLDFAST_ACCOUNT_ID")]
    pub account_id: Option<String>,
    /// The server's own region (default us-east-1): where requests that name none act, and
    /// where queue URLs without a region point. Each request acts in the region it is signed for.
    #[arg(long, env = "HOLDFAST_REGION")]
    pub region: Option<String>,
    /// Every request acts in the server's region, whatever region it is signed for: one
    /// namespace of queues for clients configured for different regions (holdfast before
    /// regions). Default false: each request acts in its signing region, as on AWS.
    #[arg(long, env = "HOLDFAST_SINGLE_REGION")]
    pub single_region: Option<bool>,
    /// How queue URLs name a region: `path` (http://HOST/REGION/ACCOUNT/NAME outside the
    /// server's region, default) or `host` (http://sqs.REGION.HOST/ACCOUNT/NAME, needs DNS).
    #[arg(long, env = "HOLDFAST_QUEUE_URL_STYLE", value_enum)]
    pub queue_url_style: Option<QueueUrlStyle>,
    /// Largest request body accepted, in bytes (default 4 MiB: a 1 MiB batch fully escaped).
    #[arg(long, env = "HOLDFAST_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Seconds a connection may sit idle, or take to send its headers or body (default 30).
    #[arg(long, env = "HOLDFAST_IDLE_TIMEOUT")]
    pub idle_timeout: Option<u64>,
    /// Bytes that large responses (over 64 KiB) may hold in memory until their clients read them
    /// (default 256 MiB); more wait, up to 10 s, then answer ServiceUnavailable.
    #[arg(long, env = "HOLDFAST_MAX_RESPONSE_MEMORY")]
    pub max_response_memory: Option<usize>,
    /// Messages a queue may have in flight (received, not deleted) before ReceiveMessage answers
    /// OverLimit (standard) or nothing (FIFO); default 120000, AWS's quota.
    #[arg(long, env = "HOLDFAST_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<u64>,
    /// AWS's 60-second rules (a deleted queue's name cannot be reused, a queue cannot be purged
    /// again, for 60 s): `on` (default, as AWS) or `off` (for test suites that delete and
    /// recreate queues, as LocalStack, ElasticMQ and moto allow).
    #[arg(long, env = "HOLDFAST_COOLDOWNS", value_enum)]
    pub cooldowns: Option<Switch>,
    /// Whether GET /metrics answers the queues' figures in the Prometheus format (default true;
    /// unauthenticated, like /health: it shows queue names and counts).
    #[arg(long, env = "HOLDFAST_METRICS")]
    pub metrics: Option<bool>,
    /// Days per-minute queue metrics (the CloudWatch API's data) are kept (default 15, as
    /// CloudWatch keeps one-minute data); 0 records none.
    #[arg(long, env = "HOLDFAST_METRICS_RETENTION_DAYS")]
    pub metrics_retention_days: Option<u64>,
    /// Export a trace span of every request over OTLP/HTTP (JSON) to this collector, e.g.
    /// http://127.0.0.1:4318 (`/v1/traces` is appended). Also read from
    /// OTEL_EXPORTER_OTLP_ENDPOINT. Default: no traces.
    #[arg(long, env = "HOLDFAST_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Whether the web console answers at /console (default true; with authentication on it asks
    /// for an access key and its secret, and acts with that key's permissions).
    #[arg(long, env = "HOLDFAST_CONSOLE")]
    pub console: Option<bool>,
    /// Seconds a response may wait for the client to read any of it before the connection is
    /// dropped (default 30).
    #[arg(long, env = "HOLDFAST_WRITE_TIMEOUT")]
    pub write_timeout: Option<u64>,
    /// Seconds after which a connection is closed once its current request is answered, however
    /// busy it is; clients reconnect (default 600).
    #[arg(long, env = "HOLDFAST_MAX_CONNECTION_AGE")]
    pub max_connection_age: Option<u64>,
    /// Open connections at most; more wait in the listen backlog (default 10,000, and always
    /// below the open-file limit).
    #[arg(long, env = "HOLDFAST_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// A TOML file of [[key]] entries (access_key_id, secret_access_key; optional account_id,
    /// user, policy) that may sign requests; reloaded on SIGHUP.
    #[arg(long, env = "HOLDFAST_CREDENTIALS", value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Whether requests must carry a valid SigV4 signature (default: sigv4 with --credentials,
    /// off without). Off on an address other than loopback must be asked for explicitly.
    #[arg(long, env = "HOLDFAST_AUTH", value_enum)]
    pub auth: Option<AuthMode>,
    /// Serve TLS with this PEM certificate chain (with --tls-key); reloaded on SIGHUP.
    #[arg(long, env = "HOLDFAST_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "HOLDFAST_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Store message bodies and attributes encrypted (AES-256-GCM) with data keys wrapped by
    /// this file's master keys: one base64 32-byte key per line, the first current; reloaded on
    /// SIGHUP.
    #[arg(long, env = "HOLDFAST_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Log filter, e.g. info, debug, holdfast=debug (default info).
    #[arg(long, env = "HOLDFAST_LOG")]
    pub log: Option<String>,
    /// How log lines are written on standard error: `text` (default) or `json`, one object per
    /// line with `timestamp`, `level`, `target`, `fields` (`message` among them) and `span`s.
    #[arg(long, env = "HOLDFAST_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// The TOML file: the same settings plus `[[queue]]` declarations.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    storage: Option<StorageKind>,
    postgres_pool_size: Option<usize>,
    journal_segment_mib: Option<u64>,
    postgres_notify: Option<Switch>,
    public_url: Option<String>,
    account_id: Option<String>,
    region: Option<String>,
    queue_url_style: Option<QueueUrlStyle>,
    single_region: Option<bool>,
    max_request_bytes: Option<usize>,
    idle_timeout: Option<u64>,
    write_timeout: Option<u64>,
    max_response_memory: Option<usize>,
    metrics: Option<bool>,
    metrics_retention_days: Option<u64>,
    console: Option<bool>,
    otlp_endpoint: Option<String>,
    max_in_flight: Option<u64>,
    cooldowns: Option<Switch>,
    max_connection_age: Option<u64>,
    max_connections: Option<usize>,
    credentials: Option<PathBuf>,
    auth: Option<AuthMode>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    master_key_file: Option<PathBuf>,
    log: Option<String>,
    log_format: Option<LogFormat>,
    init_dir: Option<PathBuf>,
    init_timeout: Option<u64>,
    #[serde(default, rename = "queue")]
    queues: Vec<QueueFileEntry>,
}

/// A declarations file of the init directory: only `[[queue]]` entries.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclarationsFile {
    #[serde(default, rename = "queue")]
    queues: Vec<QueueFileEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueFileEntry {
    name: String,
    #[serde(default)]
    attributes: BTreeMap<String, toml::Value>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// A queue that must exist once the server is up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDeclaration {
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub storage: StorageKind,
    pub postgres_pool_size: usize,
    pub journal_segment_mib: u64,
    pub postgres_notify: bool,
    pub public_url: Option<String>,
    pub account_id: String,
    pub region: String,
    pub queue_url_style: QueueUrlStyle,
    pub single_region: bool,
    pub max_request_bytes: usize,
    pub idle_timeout_seconds: u64,
    pub write_timeout_seconds: u64,
    pub max_response_memory: usize,
    pub metrics: bool,
    pub metrics_retention_days: u64,
    pub console: bool,
    pub otlp_endpoint: Option<String>,
    pub max_in_flight: u64,
    pub cooldowns: bool,
    pub max_connection_age_seconds: u64,
    pub max_connections: usize,
    /// The credentials file, when requests are authenticated.
    pub credentials: Option<PathBuf>,
    pub auth: AuthMode,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Master keys for encryption at rest, when messages are stored encrypted.
    pub master_key_file: Option<PathBuf>,
    pub log: String,
    pub log_format: LogFormat,
    pub queues: Vec<QueueDeclaration>,
    pub init_dir: Option<PathBuf>,
    pub init_timeout_seconds: u64,
}

pub const DEFAULT_BIND: &str = "127.0.0.1:9324";
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

impl Settings {
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Settings> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let queues = file.queues.into_iter().map(QueueFileEntry::declaration).collect();
        let bind: SocketAddr = args.bind.or(file.bind).unwrap_or_else(|| DEFAULT_BIND.parse().expect("valid default"));
        let credentials = args.credentials.clone().or(file.credentials);
        let explicit_auth = args.auth.or(file.auth);
        let auth = match (explicit_auth, &credentials) {
            (Some(AuthMode::Sigv4), None) => {
                anyhow::bail!("--auth sigv4 needs a credentials file (--credentials FILE)")
            }
            (Some(mode), _) => mode,
            (None, Some(_)) => AuthMode::Sigv4,
            (None, None) => AuthMode::Off,
        };
        if auth == AuthMode::Off && explicit_auth.is_none() && !bind.ip().is_loopback() {
            anyhow::bail!(
                "refusing to listen on {bind} without authentication: anyone who can reach it could read, purge \
                 and delete every queue. Give a credentials file (--credentials FILE), or --auth off if that \
                 is really what you want"
            );
        }
        let tls_cert = args.tls_cert.clone().or(file.tls_cert);
        let tls_key = args.tls_key.clone().or(file.tls_key);
        anyhow::ensure!(
            tls_cert.is_some() == tls_key.is_some(),
            "TLS needs both a certificate (tls_cert) and a key (tls_key)"
        );
        let account_id = args.account_id.clone().or(file.account_id).unwrap_or_else(|| "000000000000".into());
        anyhow::ensure!(
            account_id.len() == 12 && account_id.bytes().all(|b| b.is_ascii_digit()),
            "account_id {account_id:?} is not a 12-digit AWS account id"
        );
        let region = args.region.clone().or(file.region).unwrap_or_else(|| "us-east-1".into());
        anyhow::ensure!(
            holdfast_core::names::is_region(&region),
            "region {region:?} is not a region name like us-east-1"
        );
        Ok(Settings {
            bind,
            tls_cert,
            tls_key,
            master_key_file: args.master_key_file.clone().or(file.master_key_file),
            data_dir: args.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("./holdfast-data")),
            storage: args.storage.clone().or(file.storage).unwrap_or(StorageKind::Sqlite),
            postgres_pool_size: args.postgres_pool_size.or(file.postgres_pool_size).unwrap_or(16),
            journal_segment_mib: args.journal_segment_mib.or(file.journal_segment_mib).unwrap_or(64),
            postgres_notify: args.postgres_notify.or(file.postgres_notify).unwrap_or(Switch::On) == Switch::On,
            public_url: args.public_url.clone().or(file.public_url),
            account_id,
            region,
            queue_url_style: args.queue_url_style.or(file.queue_url_style).unwrap_or_default(),
            single_region: args.single_region.or(file.single_region).unwrap_or(false),
            max_request_bytes: args.max_request_bytes.or(file.max_request_bytes).unwrap_or(DEFAULT_MAX_REQUEST_BYTES),
            idle_timeout_seconds: args.idle_timeout.or(file.idle_timeout).unwrap_or(30),
            write_timeout_seconds: args.write_timeout.or(file.write_timeout).unwrap_or(30),
            max_response_memory: args.max_response_memory.or(file.max_response_memory).unwrap_or(256 << 20),
            metrics: args.metrics.or(file.metrics).unwrap_or(true),
            console: args.console.or(file.console).unwrap_or(true),
            otlp_endpoint: args
                .otlp_endpoint
                .clone()
                .or(file.otlp_endpoint)
                .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
                .filter(|url| !url.trim().is_empty()),
            // Past ten years a retention means "for ever" and would overflow the arithmetic.
            metrics_retention_days: args.metrics_retention_days.or(file.metrics_retention_days).unwrap_or(15).min(3650),
            max_in_flight: args.max_in_flight.or(file.max_in_flight).unwrap_or(holdfast_api::limits::MAX_IN_FLIGHT),
            cooldowns: args.cooldowns.or(file.cooldowns).unwrap_or(Switch::On) == Switch::On,
            max_connection_age_seconds: args.max_connection_age.or(file.max_connection_age).unwrap_or(600),
            max_connections: args.max_connections.or(file.max_connections).unwrap_or(DEFAULT_MAX_CONNECTIONS),
            credentials: credentials.filter(|_| auth == AuthMode::Sigv4),
            auth,
            log: args.log.clone().or(file.log).unwrap_or_else(|| "info".into()),
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            queues,
            init_dir: args.init_dir.clone().or(file.init_dir),
            init_timeout_seconds: args.init_timeout.or(file.init_timeout).unwrap_or(300).max(1),
        })
    }
}

impl QueueFileEntry {
    fn declaration(self) -> QueueDeclaration {
        QueueDeclaration {
            name: self.name,
            attributes: self.attributes.into_iter().map(|(k, v)| (k, toml_scalar(&v))).collect(),
            tags: self.tags,
        }
    }
}

/// The `[[queue]]` entries of a declarations file (the config file's queue syntax, alone).
pub fn read_declarations(path: &Path) -> anyhow::Result<Vec<QueueDeclaration>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: DeclarationsFile = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(file.queues.into_iter().map(QueueFileEntry::declaration).collect())
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

/// Attribute values may be written as TOML numbers or booleans; SQS carries them as strings.
/// A table or an array (a RedrivePolicy written as TOML, say) becomes the JSON document SQS
/// expects.
fn toml_scalar(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Table(_) | toml::Value::Array(_) => serde_json::to_string(value).expect("TOML values are JSON"),
        other => other.to_string(),
    }
}

/// How the server writes its log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_settings_fill_what_flags_leave_unset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("holdfast.toml");
        std::fs::write(
            &path,
            r#"
bind = "0.0.0.0:9000"
auth = "off"
storage = "memory"
region = "eu-west-1"
queue_url_style = "host"
single_region = true
max_in_flight = 500
metrics = false
metrics_retention_days = 2
console = false
otlp_endpoint = "http://collector:4318"

[[queue]]
name = "orders"
attributes = { VisibilityTimeout = 60, SqsManagedSseEnabled = true }
tags = { team = "web" }

[[queue]]
name = "leads"
attributes = { RedrivePolicy = { deadLetterTargetArn = "arn:aws:sqs:eu-west-1:000000000000:leads-dlq", maxReceiveCount = 5 } }
"#,
        )
        .unwrap();
        let args = ServeArgs { config: Some(path), region: Some("us-west-2".into()), ..Default::default() };
        let settings = Settings::resolve(&args).unwrap();
        assert_eq!(settings.bind.to_string(), "0.0.0.0:9000");
        assert_eq!(settings.storage, StorageKind::Memory);
        assert_eq!(settings.region, "us-west-2", "flags win over the file");
        assert_eq!(settings.account_id, "000000000000");
        assert_eq!(settings.queues[0].attributes["VisibilityTimeout"], "60");
        assert_eq!(settings.queues[0].attributes["SqsManagedSseEnabled"], "true");
        assert_eq!(settings.queues[0].tags["team"], "web");
        let redrive: serde_json::Value = serde_json::from_str(&settings.queues[1].attributes["RedrivePolicy"]).unwrap();
        assert_eq!(redrive["maxReceiveCount"], 5, "a TOML table becomes the JSON document");
        assert_eq!(settings.queue_url_style, QueueUrlStyle::Host);
        assert!(settings.single_region && !settings.metrics);
        assert_eq!(settings.max_in_flight, 500);
        assert_eq!(settings.metrics_retention_days, 2);
        assert!(!settings.console);
        assert_eq!(settings.otlp_endpoint.as_deref(), Some("http://collector:4318"));
    }

    #[test]
    fn a_region_must_look_like_one() {
        let args = ServeArgs { region: Some("Europe".into()), auth: Some(AuthMode::Off), ..Default::default() };
        let error = Settings::resolve(&args).unwrap_err().to_string();
        assert!(error.contains("not a region name"), "{error}");
    }

    #[test]
    fn authentication_follows_the_credentials_file_and_is_never_off_by_accident() {
        let resolve = |args: ServeArgs| Settings::resolve(&args);
        let credentials = Some(PathBuf::from("credentials.toml"));
        let public: SocketAddr = "0.0.0.0:9324".parse().unwrap();

        let local = resolve(ServeArgs::default()).unwrap();
        assert_eq!((local.auth, local.credentials), (AuthMode::Off, None), "loopback, no file: off");
        let keyed = resolve(ServeArgs { credentials: credentials.clone(), ..Default::default() }).unwrap();
        assert_eq!(keyed.auth, AuthMode::Sigv4, "a credentials file turns it on");

        let error = resolve(ServeArgs { bind: Some(public), ..Default::default() }).unwrap_err();
        assert!(error.to_string().contains("without authentication"), "{error}");
        let open = resolve(ServeArgs { bind: Some(public), auth: Some(AuthMode::Off), ..Default::default() }).unwrap();
        assert_eq!(open.auth, AuthMode::Off, "unless asked for explicitly");
        let secured = resolve(ServeArgs { bind: Some(public), credentials, ..Default::default() }).unwrap();
        assert_eq!(secured.auth, AuthMode::Sigv4);
        assert!(resolve(ServeArgs { auth: Some(AuthMode::Sigv4), ..Default::default() }).is_err(), "sigv4 needs keys");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "bnid = \"x\"\n").unwrap();
        let args = ServeArgs { config: Some(path), ..Default::default() };
        assert!(Settings::resolve(&args).is_err());
    }
}
