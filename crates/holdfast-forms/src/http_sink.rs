//! `holdfast sink --to URL`: each message body POSTed to an HTTP back end, deleted on a 2xx
//! answer and retried otherwise.
//!
//! Each request carries `Idempotency-Key` (the SQS message id, stable across redeliveries) so the
//! back end can do what the database destination does with its primary key: at-least-once
//! delivery means the same message can arrive twice.
//!
//! "Unavailable" (pause, keep the messages in the queue) versus "rejected" (this message failed,
//! let it be retried and eventually dead-lettered) is decided by a probe: `--health-url` when
//! given, otherwise a TCP connection to the back end's host.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::consumer::{Delivery, Destination, Fatal, Outcome};

pub struct HttpDestination {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: Uri,
    health_url: Option<Uri>,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
}

impl HttpDestination {
    pub fn new(
        url: &str,
        health_url: Option<&str>,
        headers: Vec<(String, String)>,
        timeout: Duration,
    ) -> Result<HttpDestination, String> {
        let parse = |url: &str| -> Result<Uri, String> {
            let uri: Uri = url.parse().map_err(|error| format!("bad URL {url:?}: {error}"))?;
            match uri.scheme_str() {
                Some("http" | "https") if uri.host().is_some() => Ok(uri),
                _ => Err(format!("bad URL {url:?}: expected http://HOST/… or https://HOST/…")),
            }
        };
        let headers = headers
            .into_iter()
            .map(|(name, value)| {
                Ok((
                    HeaderName::try_from(name.as_str()).map_err(|error| format!("header {name:?}: {error}"))?,
                    HeaderValue::try_from(value.as_str()).map_err(|error| format!("header {name:?}: {error}"))?,
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let connector = match builder.with_native_roots() {
            Ok(builder) => builder.https_or_http().enable_http1().build(),
            // No system certificates: plain http:// still works, https:// fails on each request
            // with a certificate error that says so.
            Err(error) => {
                if url.starts_with("https://") {
                    return Err(format!("cannot load the system's root certificates for {url}: {error}"));
                }
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(empty_tls_config()?)
                    .https_or_http()
                    .enable_http1()
                    .build()
            }
        };
        Ok(HttpDestination {
            client: Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector),
            url: parse(url)?,
            health_url: health_url.map(parse).transpose()?,
            headers,
            timeout,
        })
    }

    async fn send(&self, method: Method, uri: &Uri, delivery: Option<&Delivery>) -> Result<http::StatusCode, String> {
        let mut request = Request::builder().method(method).uri(uri.clone());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let body = match delivery {
            Some(delivery) => {
                request = request
                    .header(header::CONTENT_TYPE, "application/json")
                    .header("Idempotency-Key", &delivery.message_id)
                    .header("X-Holdfast-Message-Id", &delivery.message_id)
                    .header("X-Holdfast-Receive-Count", delivery.receive_count.to_string());
                Full::new(Bytes::from(delivery.body.clone()))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request.body(body).map_err(|error| error.to_string())?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|error| describe(&error))?;
            let status = response.status();
            // Read the answer so the connection can be reused.
            let _ = response.into_body().collect().await;
            Ok(status)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
    }

    /// Whether the back end is up at all.
    async fn probe(&self) -> Result<(), String> {
        if let Some(health_url) = &self.health_url {
            let status = self.send(Method::GET, health_url, None).await?;
            return if status.is_success() { Ok(()) } else { Err(format!("{health_url} answered {status}")) };
        }
        let host = self.url.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = self.url.port_u16().unwrap_or(if self.url.scheme_str() == Some("https") { 443 } else { 80 });
        match tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect((host.as_str(), port))).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("cannot connect to {host}:{port}: {error}")),
            Err(_) => Err(format!("cannot connect to {host}:{port} within {:?}", self.timeout)),
        }
    }
}

impl Destination for HttpDestination {
    fn describe(&self) -> String {
        format!("HTTP back end {}", self.url)
    }

    async fn prepare(&self) -> Result<Result<(), String>, Fatal> {
        Ok(self.probe().await)
    }

    async fn store(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut down: Option<String> = None;
        for delivery in batch {
            if let Some(reason) = &down {
                outcomes.push(Outcome::Unavailable(reason.clone()));
                continue;
            }
            let outcome = match self.send(Method::POST, &self.url, Some(delivery)).await {
                Ok(status) if status.is_success() => Outcome::Stored,
                Ok(status) if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 => {
                    match self.probe().await {
                        Ok(()) => Outcome::Rejected(format!("answered {status}")),
                        Err(reason) => Outcome::Unavailable(format!("answered {status}; {reason}")),
                    }
                }
                Ok(status) => Outcome::Rejected(format!("answered {status}")),
                Err(error) => match self.probe().await {
                    Ok(()) => Outcome::Rejected(error),
                    Err(reason) => Outcome::Unavailable(reason),
                },
            };
            if let Outcome::Unavailable(reason) = &outcome {
                down = Some(reason.clone());
            }
            outcomes.push(outcome);
        }
        outcomes
    }
}

fn empty_tls_config() -> Result<rustls::ClientConfig, String> {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
