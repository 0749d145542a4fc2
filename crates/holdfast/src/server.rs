//! `holdfast serve`: open the store, declare configured queues, accept connections, shut down
//! gracefully.
//!
//! Connections are HTTP/1.1 with keep-alive. A connection that sends no complete request header
//! within the idle timeout (including between requests) is closed, and so is one whose body takes
//! longer; bodies are capped. Without these limits, slow or half-open clients would pile up.
//!
//! Shutdown (SIGINT/SIGTERM): stop accepting, tell waiting long polls to answer empty, let
//! in-flight requests finish, close the store (which makes everything durable), exit 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use holdfast_api::types::{CreateQueueRequest, SetQueueAttributesRequest, TagQueueRequest};
use holdfast_api::{ErrorCode, Request};
use holdfast_core::{RequestContext, ServiceConfig, Sqs, Store, SystemClock};
use holdfast_store::{MemoryStore, SqliteStore};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{QueueDeclaration, Settings, StorageKind};
use crate::http::{self, App};

/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    raise_open_file_limit();
    let store: Arc<dyn Store> = match settings.storage {
        StorageKind::Sqlite => Arc::new(
            SqliteStore::open(&settings.data_dir)
                .with_context(|| format!("opening the SQLite store in {}", settings.data_dir.display()))?,
        ),
        StorageKind::Memory => Arc::new(MemoryStore::new()),
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let config = ServiceConfig { account_id: settings.account_id.clone(), region: settings.region.clone() };
    let sqs = Arc::new(Sqs::new(Arc::clone(&store), Arc::new(SystemClock), config, shutdown_rx));
    declare_queues(&sqs, &settings.queues).await?;

    let listener = TcpListener::bind(settings.bind).await.with_context(|| format!("binding {}", settings.bind))?;
    let local_addr = listener.local_addr()?;
    tracing::info!(%local_addr, storage = ?settings.storage, data_dir = %settings.data_dir.display(), "holdfast is ready");
    // Tests and scripts read the bound address (port 0 picks a free one) from this line.
    println!("listening on http://{local_addr}");

    let idle_timeout = Duration::from_secs(settings.idle_timeout_seconds);
    let app = Arc::new(App {
        sqs: Arc::clone(&sqs),
        public_url: settings.public_url.clone(),
        max_request_bytes: settings.max_request_bytes,
        body_timeout: idle_timeout,
        shutdown: shutdown_tx.subscribe(),
    });
    let housekeeping = sqs.spawn_background();
    let graceful = GracefulShutdown::new();
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => serve_connection(&graceful, Arc::clone(&app), stream, local_addr, idle_timeout),
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
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
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections did not finish within {}s", DRAIN_TIMEOUT.as_secs());
    }
    housekeeping.abort();
    store.close().await.context("closing the store")?;
    tracing::info!("stopped");
    Ok(())
}

/// The HTTP/1.1 connection settings every listener of this binary uses: keep-alive, and the idle
/// timeout applied to reading each request's header (also between requests), so half-open or
/// slow clients are cut off.
pub(crate) fn http1_builder(idle_timeout: Duration) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(idle_timeout).keep_alive(true);
    builder
}

fn serve_connection(
    graceful: &GracefulShutdown,
    app: Arc<App>,
    stream: tokio::net::TcpStream,
    local_addr: SocketAddr,
    idle_timeout: Duration,
) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, std::convert::Infallible>(http::handle(&app, request, local_addr).await) }
    });
    let connection = http1_builder(idle_timeout).serve_connection(TokioIo::new(stream), service);
    let connection = graceful.watch(connection);
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "connection closed with an error");
        }
    });
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
async fn declare_queues(sqs: &Arc<Sqs>, queues: &[QueueDeclaration]) -> anyhow::Result<()> {
    let context = RequestContext::default();
    for queue in queues {
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
