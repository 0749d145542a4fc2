//! `holdfast serve`: open the store, declare configured queues, accept connections, shut down
//! gracefully.
//!
//! Connections are HTTP/1.1 with keep-alive, and every one is bounded so that slow, half-open or
//! hostile clients cannot pile up:
//! - at most `max_connections` are open; past that, new ones wait in the listen backlog (one log
//!   line when the limit is reached, never an accept loop of errors);
//! - a connection that sends no complete request header within the idle timeout (including
//!   between requests) is closed, and so is one whose body takes longer; bodies are capped;
//! - a response the client does not read for the write timeout drops the connection and frees
//!   the response (`write_timeout`);
//! - a connection older than the maximum age is closed after its current request, so a trickle of
//!   requests cannot keep one open for ever.
//!
//! Shutdown (SIGINT/SIGTERM): stop accepting, tell waiting long polls to answer empty, let
//! in-flight requests finish, close the store (which makes everything durable), exit 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use holdfast_api::types::{CreateQueueRequest, SetQueueAttributesRequest, TagQueueRequest};
use holdfast_api::{ErrorCode, Request};
use holdfast_core::encryption::{Encryption, MasterKeys};
use holdfast_core::{RequestContext, ServiceConfig, Sqs, Store, SystemClock};
use holdfast_store::{Home, JournalOptions, JournalStore, MemoryStore, PostgresOptions, PostgresStore, SqliteStore};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use crate::auth::{AuthMode, Authenticator};
use crate::config::{QueueDeclaration, Settings, StorageKind};
use crate::http::{self, App};
use crate::init::{self, InitState};
use crate::tls::Tls;
use crate::write_timeout::WriteTimeout;

/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    raise_open_file_limit();
    // The address first: a server that cannot listen stops before it creates or opens anything.
    let listener = TcpListener::bind(settings.bind).await.with_context(|| format!("binding {}", settings.bind))?;
    let store: Arc<dyn Store> = match &settings.storage {
        StorageKind::Sqlite => Arc::new(
            SqliteStore::open_for_home(
                &settings.data_dir,
                &Home { account: &settings.account_id, region: &settings.region },
            )
            .with_context(|| format!("opening the SQLite store in {}", settings.data_dir.display()))?,
        ),
        StorageKind::Memory => Arc::new(MemoryStore::new()),
        StorageKind::Journal => {
            let options = JournalOptions { segment_bytes: settings.journal_segment_mib << 20 };
            let store = JournalStore::open_with(&settings.data_dir, options);
            Arc::new(store.with_context(|| format!("opening the journal in {}", settings.data_dir.display()))?)
        }
        StorageKind::Postgres(url) => {
            let options = PostgresOptions {
                pool_size: settings.postgres_pool_size,
                notify: settings.postgres_notify,
                ..PostgresOptions::default()
            };
            let store = PostgresStore::connect(url, options).await;
            Arc::new(store.with_context(|| format!("opening the PostgreSQL store at {:?}", settings.storage))?)
        }
    };
    let auth = Arc::new(match settings.auth {
        AuthMode::Sigv4 => {
            let path = settings.credentials.as_deref().context("authentication needs a credentials file")?;
            Authenticator::sigv4(path, &settings.account_id)?
        }
        AuthMode::Off => Authenticator::off(),
    });
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let encryption = match &settings.master_key_file {
        Some(path) => {
            let keys = load_master_keys(path)?;
            tracing::info!(master_keys = ?keys.ids(), "messages are stored encrypted");
            Some(Arc::new(Encryption::new(keys)))
        }
        None => None,
    };
    let config = ServiceConfig {
        account_id: settings.account_id.clone(),
        region: settings.region.clone(),
        url_style: settings.queue_url_style.into(),
        max_in_flight: settings.max_in_flight,
        cooldowns: settings.cooldowns,
        encryption: encryption.clone(),
        metrics_retention_ms: settings.metrics_retention_days as i64 * 24 * 3600 * 1000,
    };
    let sqs = Arc::new(Sqs::new(Arc::clone(&store), Arc::new(SystemClock), config, shutdown_rx));
    declare_queues(&sqs, &settings.queues).await?;

    let local_addr = listener.local_addr()?;
    tracing::info!(%local_addr, storage = ?settings.storage, data_dir = %settings.data_dir.display(), "holdfast is ready");
    // Tests and scripts read the bound address (port 0 picks a free one) from this line.
    let scheme = if settings.tls_cert.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{local_addr}");

    let idle_timeout = Duration::from_secs(settings.idle_timeout_seconds);
    let tls = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => Some(Arc::new(Tls::load(cert, key)?)),
        _ => None,
    };
    let reloader = reload_on_sighup(Reloadable {
        auth: Arc::clone(&auth),
        tls: tls.clone(),
        master_keys: settings.master_key_file.clone().zip(encryption),
    });
    tracing::info!(auth = ?settings.auth, "request authentication");
    // Init hooks run once connections are being accepted (below); /ready waits for them.
    let (init_state, init_watch) = watch::channel(match settings.init_dir {
        Some(_) => InitState::Running(String::new()),
        None => InitState::Done,
    });
    let (traces, trace_export) = match &settings.otlp_endpoint {
        Some(endpoint) => {
            let service_name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "holdfast".to_owned());
            let (exporter, task) = crate::otlp::Exporter::start(endpoint, &service_name, shutdown_tx.subscribe())?;
            tracing::info!(endpoint = endpoint.as_str(), "exporting request traces over OTLP");
            (Some(exporter), Some(task))
        }
        None => (None, None),
    };
    let app = Arc::new(App {
        traces,
        init: init_watch,
        requests: Default::default(),
        sqs: Arc::clone(&sqs),
        auth,
        public_url: settings.public_url.clone(),
        max_request_bytes: settings.max_request_bytes,
        response_memory: http::ResponseMemory::new(settings.max_response_memory),
        metrics: settings.metrics,
        console: settings.console,
        console_sessions: Default::default(),
        single_region: settings.single_region,
        body_timeout: idle_timeout,
        shutdown: shutdown_tx.subscribe(),
    });
    let housekeeping = sqs.spawn_background();
    let init = settings.init_dir.clone().map(|dir| {
        let target = init::Target {
            endpoint_url: format!("{scheme}://{}", loopback(local_addr)),
            region: settings.region.clone(),
            ca_bundle: settings.tls_cert.clone(),
        };
        let timeout = Duration::from_secs(settings.init_timeout_seconds);
        tokio::spawn(init::run(dir, Arc::clone(&sqs), target, timeout, init_state))
    });
    let limits = ConnectionLimits {
        idle_timeout,
        write_timeout: Duration::from_secs(settings.write_timeout_seconds.max(1)),
        max_age: Duration::from_secs(settings.max_connection_age_seconds.max(1)),
    };
    let max_connections = connection_cap(settings.max_connections);
    let slots = Arc::new(Semaphore::new(max_connections));
    // Each connection task holds a clone; once all are dropped, every connection has finished.
    let (open_tx, mut all_closed) = mpsc::channel::<()>(1);
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            slot = acquire_slot(&slots, max_connections) => slot,
            _ = &mut stop => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let connection =
                        Connection { stream, peer, slot, open: open_tx.clone(), shutdown: shutdown_tx.subscribe() };
                    let tls = tls.as_ref().map(|tls| tls.acceptor());
                    serve_connection(Arc::clone(&app), connection, local_addr, limits, tls);
                }
                Err(error) => {
                    // Out of file descriptors despite the cap (other files are open too): back
                    // off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = &mut stop => break,
        }
    }
    tracing::info!("shutting down: draining in-flight requests");
    drop(listener);
    let _ = shutdown_tx.send(true);
    drop(open_tx);
    if tokio::time::timeout(DRAIN_TIMEOUT, all_closed.recv()).await.is_err() {
        tracing::warn!("some connections did not finish within {}s", DRAIN_TIMEOUT.as_secs());
    }
    housekeeping.abort();
    reloader.abort();
    // The open minute's counters, so a restart loses none of them.
    if let Err(error) = sqs.close_minutes(true).await {
        tracing::warn!(%error, "the last minute of queue metrics could not be stored");
    }
    if let Some(init) = init {
        init.abort();
    }
    if let Some(task) = trace_export {
        if tokio::time::timeout(Duration::from_secs(5), task).await.is_err() {
            tracing::warn!("the last request traces could not be exported within 5 s");
        }
    }
    store.close().await.context("closing the store")?;
    tracing::info!("stopped");
    Ok(())
}

/// The address a process on this machine reaches the listener at: a wildcard bind
/// (0.0.0.0, [::]) becomes the loopback address of its family.
fn loopback(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], address.port())),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, address.port()))
        }
        _ => address,
    }
}

/// The HTTP/1.1 connection settings every listener of this binary uses: keep-alive, and the idle
/// timeout applied to reading each request's header (also between requests), so half-open or
/// slow clients are cut off.
pub(crate) fn http1_builder(idle_timeout: Duration) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(idle_timeout).keep_alive(true);
    builder
}

#[derive(Clone, Copy)]
struct ConnectionLimits {
    idle_timeout: Duration,
    write_timeout: Duration,
    max_age: Duration,
}

/// An accepted connection and what it holds while it is open.
struct Connection {
    stream: tokio::net::TcpStream,
    /// The client's address, for policies that test `aws:SourceIp`.
    peer: SocketAddr,
    /// Its place under the connection cap, given back when the connection ends.
    slot: OwnedSemaphorePermit,
    /// Dropped when the connection ends: shutdown waits for every one.
    open: mpsc::Sender<()>,
    /// Turns true when the server shuts down: the connection finishes its request and closes.
    shutdown: watch::Receiver<bool>,
}

/// The most connections to keep open: the configured cap, kept below the open-file limit with
/// room for the database and the log.
fn connection_cap(configured: usize) -> usize {
    const RESERVED_FILES: u64 = 64;
    let files = rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(1024);
    let cap = configured.min(files.saturating_sub(RESERVED_FILES).max(1) as usize);
    if cap < configured {
        tracing::info!(configured, cap, open_file_limit = files, "connection cap lowered to fit the open-file limit");
    }
    cap.max(1)
}

/// Waits for room under the connection cap, saying once when the cap is reached.
async fn acquire_slot(slots: &Arc<Semaphore>, max_connections: usize) -> OwnedSemaphorePermit {
    if let Ok(slot) = Arc::clone(slots).try_acquire_owned() {
        return slot;
    }
    tracing::warn!(max_connections, "connection limit reached; new connections wait until one closes");
    let slot = Arc::clone(slots).acquire_owned().await.expect("the semaphore is never closed");
    tracing::info!("below the connection limit again");
    slot
}

/// Serves one connection until it ends, closing it gracefully (after its current request) when it
/// reaches its maximum age or the server shuts down. A macro because the HTTP/1 and the ALPN
/// (HTTP/1 or HTTP/2) connection types share the methods but no trait.
macro_rules! serve_until_closed {
    ($serving:expr, $limits:expr, $shutdown:expr, $activity:expr) => {{
        let serving = $serving;
        tokio::pin!(serving);
        let too_old = tokio::time::sleep($limits.max_age);
        tokio::pin!(too_old);
        let idle = tokio::time::sleep($limits.idle_timeout);
        tokio::pin!(idle);
        // Whether the connection has been asked to close after its current request.
        let mut closing = *$shutdown.borrow();
        if closing {
            serving.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                result = serving.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection closed with an error");
                    }
                    break;
                }
                _ = &mut too_old, if !closing => closing = true,
                _ = $shutdown.changed(), if !closing => closing = true,
                // Wakes once per idle period at most: either the connection has been idle that
                // long, or the sleep moves to when it will have been.
                _ = &mut idle, if !closing => match $activity.idle_deadline($limits.idle_timeout) {
                    None => closing = true,
                    Some(deadline) => idle.as_mut().reset(deadline),
                },
            }
            if closing {
                serving.as_mut().graceful_shutdown();
            }
        }
    }};
}

fn serve_connection(
    app: Arc<App>,
    connection: Connection,
    local_addr: SocketAddr,
    limits: ConnectionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let Connection { stream, peer, slot, open, mut shutdown } = connection;
    let _ = stream.set_nodelay(true);
    let endpoints = http::Endpoints { local: local_addr, peer, secure: tls.is_some() };
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = Arc::clone(&activity);
        service_fn(move |request| {
            let app = Arc::clone(&app);
            let busy = activity.begin();
            async move {
                let response = http::handle(&app, request, endpoints).await;
                drop(busy);
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let stream = WriteTimeout::new(stream, limits.write_timeout);
    tokio::spawn(async move {
        let (_slot, _open) = (slot, open);
        let Some(acceptor) = tls else {
            let serving = http1_builder(limits.idle_timeout).serve_connection(TokioIo::new(stream), service);
            serve_until_closed!(serving, limits, shutdown, activity);
            return;
        };
        // The handshake is bounded like a request header: a client that stalls in it is dropped.
        let stream = match tokio::time::timeout(limits.idle_timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                return;
            }
        };
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.idle_timeout).keep_alive(true);
        builder.http2().timer(TokioTimer::new()).keep_alive_interval(None).max_concurrent_streams(MAX_HTTP2_STREAMS);
        let serving = builder.serve_connection(TokioIo::new(stream), service);
        serve_until_closed!(serving, limits, shutdown, activity);
    });
}

/// Whether a connection is doing anything: how many of its requests are being answered, and since
/// when it has had none. HTTP/1.1 bounds an idle keep-alive connection by its header read
/// timeout; an HTTP/2 connection has no such thing (its streams come and go), so this closes it
/// once it has served nothing for the idle timeout. Requests trickling in keep it open, but never
/// past the maximum connection age.
struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    idle_since: std::sync::Mutex<tokio::time::Instant>,
}

/// One request being answered; dropped when it is done (or abandoned by its client).
struct Busy(Arc<Activity>);

impl Activity {
    fn new() -> Self {
        Activity { in_flight: 0.into(), idle_since: std::sync::Mutex::new(tokio::time::Instant::now()) }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Busy(Arc::clone(self))
    }

    /// `None` when the connection has been idle for `idle_timeout`, else when to look again.
    fn idle_deadline(&self, idle_timeout: Duration) -> Option<tokio::time::Instant> {
        let now = tokio::time::Instant::now();
        if self.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return Some(now + idle_timeout);
        }
        let since = *self.idle_since.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (now < since + idle_timeout).then_some(since + idle_timeout)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        // The clock is read under the lock, so a later finish never records an earlier time.
        let mut idle_since = self.0.idle_since.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.0.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            *idle_since = tokio::time::Instant::now();
        }
    }
}

/// Requests one HTTP/2 connection may have in flight at once.
const MAX_HTTP2_STREAMS: u32 = 256;

/// Reads a master key file (`holdfast_core::encryption::MasterKeys::parse`).
fn load_master_keys(path: &std::path::Path) -> anyhow::Result<MasterKeys> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading master key file {}", path.display()))?;
    MasterKeys::parse(&text).map_err(|reason| anyhow::anyhow!("master key file {}: {reason}", path.display()))
}

/// What SIGHUP reloads.
struct Reloadable {
    auth: Arc<Authenticator>,
    tls: Option<Arc<Tls>>,
    master_keys: Option<(std::path::PathBuf, Arc<Encryption>)>,
}

/// Reads the credentials file, the TLS certificate and the master keys again on every SIGHUP.
/// Connections and requests in flight are not disturbed; a file that does not load leaves what
/// was in force and says why.
fn reload_on_sighup(reloadable: Reloadable) -> tokio::task::JoinHandle<()> {
    let Reloadable { auth, tls, master_keys } = reloadable;
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
                tracing::warn!("cannot listen for SIGHUP: the credentials file will not be reloaded");
                return;
            };
            while hangups.recv().await.is_some() {
                if auth.mode() == AuthMode::Sigv4 {
                    match auth.reload() {
                        Ok(keys) => tracing::info!(keys, "credentials file reloaded"),
                        Err(error) => {
                            tracing::error!("credentials file not reloaded, the previous keys stay: {error:#}")
                        }
                    }
                }
                if let Some(tls) = &tls {
                    match tls.reload() {
                        Ok(()) => tracing::info!("TLS certificate reloaded"),
                        Err(error) => {
                            tracing::error!("TLS certificate not reloaded, the previous one stays: {error:#}")
                        }
                    }
                }
                if let Some((path, encryption)) = &master_keys {
                    match load_master_keys(path) {
                        Ok(keys) => {
                            tracing::info!(master_keys = ?keys.ids(), "master keys reloaded");
                            encryption.replace_master_keys(keys);
                        }
                        Err(error) => tracing::error!("master keys not reloaded, the previous ones stay: {error:#}"),
                    }
                }
            }
        }
        #[cfg(not(unix))]
        drop((auth, tls, master_keys));
    })
}

async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// Makes the configured queues exist with the configured attributes and tags. The file is the
/// source of truth: an existing queue's attributes are updated to match it.
/// Declarations in an order that creates each dead-letter queue before the queues that name it,
/// whatever order the file lists them in. A cycle (which SQS cannot create either) is left in
/// file order, and its CreateQueue says what is wrong.
fn in_dependency_order(queues: &[QueueDeclaration]) -> Vec<&QueueDeclaration> {
    let target_of = |queue: &QueueDeclaration| {
        let policy: serde_json::Value = serde_json::from_str(queue.attributes.get("RedrivePolicy")?).ok()?;
        let arn = policy.get("deadLetterTargetArn")?.as_str()?.to_owned();
        Some(arn.rsplit(':').next()?.to_owned())
    };
    let mut placed: Vec<&QueueDeclaration> = Vec::with_capacity(queues.len());
    let mut waiting: Vec<&QueueDeclaration> = queues.iter().collect();
    while !waiting.is_empty() {
        let ready = |queue: &&QueueDeclaration| match target_of(queue) {
            Some(target) => {
                !waiting.iter().any(|q| q.name == target && q.name != queue.name)
                    || placed.iter().any(|q| q.name == target)
            }
            None => true,
        };
        let (now, later): (Vec<_>, Vec<_>) = waiting.iter().copied().partition(ready);
        if now.is_empty() {
            placed.extend(later);
            break;
        }
        placed.extend(now);
        waiting = later;
    }
    placed
}

pub(crate) async fn declare_queues(sqs: &Arc<Sqs>, queues: &[QueueDeclaration]) -> anyhow::Result<()> {
    let context = RequestContext::default();
    for queue in in_dependency_order(queues) {
        let create = Request::CreateQueue(CreateQueueRequest {
            queue_name: queue.name.clone(),
            attributes: Some(queue.attributes.clone()),
            tags: Some(queue.tags.clone()),
        });
        match sqs.handle(&context, create).await {
            Ok(_) => {}
            Err(error) if error.code == ErrorCode::QueueNameExists => {
                let queue_url = format!("/{}/{}", sqs.config().account_id, queue.name);
                let set = Request::SetQueueAttributes(SetQueueAttributesRequest {
                    queue_url: queue_url.clone(),
                    attributes: queue.attributes.clone(),
                });
                sqs.handle(&context, set).await.with_context(|| format!("updating queue {}", queue.name))?;
                if !queue.tags.is_empty() {
                    let tag = Request::TagQueue(TagQueueRequest { queue_url, tags: queue.tags.clone() });
                    sqs.handle(&context, tag).await.with_context(|| format!("tagging queue {}", queue.name))?;
                }
            }
            Err(error) => return Err(error).with_context(|| format!("declaring queue {}", queue.name)),
        }
        tracing::info!(queue = %queue.name, "declared queue is ready");
    }
    Ok(())
}

/// Each connection (and so each waiting long poll) holds a file descriptor. Many systems start
/// processes with a soft limit of 1024, far below the hard limit; raise the soft limit so
/// thousands of concurrent long polls do not fail with "too many open files".
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(error) => tracing::warn!(%error, "could not raise the open file limit"),
    }
}
