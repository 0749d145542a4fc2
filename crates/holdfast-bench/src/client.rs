//! A lean SQS client for load generation: AWS JSON 1.0 over one keep-alive HTTP/1.1 connection
//! (hyper's low-level `client::conn`), reconnecting after a failure.
//!
//! Per request it allocates little: bodies are built once where they do not change (`Bytes`
//! clones are reference counts), header values are static, and answers are parsed into borrowed
//! strings. Requests are unsigned with a fixed dummy `Authorization` header (holdfast accepts
//! any) unless a [`Signer`] is given, which signs with SigV4 for endpoints that check (AWS).

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use holdfast_api::types::{
    CreateQueueRequest, DeleteMessageBatchRequest, DeleteMessageBatchRequestEntry, DeleteMessageRequest,
    DeleteQueueRequest, GetQueueUrlRequest, ReceiveMessageRequest, SendMessageBatchRequest,
    SendMessageBatchRequestEntry, SendMessageRequest,
};
use holdfast_api::Action;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};

const JSON_CONTENT_TYPE: HeaderValue = HeaderValue::from_static("application/x-amz-json-1.0");
const DUMMY_AUTHORIZATION: HeaderValue = HeaderValue::from_static(
    "AWS4-HMAC-SHA256 Credential=bench/20240101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
);
const X_AMZ_TARGET: HeaderName = HeaderName::from_static("x-amz-target");
const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");

/// The `X-Amz-Target` header of an action, built once per action.
fn target(action: Action) -> HeaderValue {
    static TARGETS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    let targets = TARGETS.get_or_init(|| {
        Action::ALL
            .iter()
            .map(|a| HeaderValue::from_str(&format!("AmazonSQS.{}", a.name())).expect("action names are ASCII"))
            .collect()
    });
    let index = Action::ALL.iter().position(|a| *a == action).expect("every action is in ALL");
    targets[index].clone()
}

/// Where requests go: `http://host:port[/path]` or `https://…`.
#[derive(Debug)]
pub struct Endpoint {
    /// `host:port` to connect to.
    connect_to: String,
    host: HeaderValue,
    path: Uri,
    pub url: String,
    /// For https: the TLS settings and the name the certificate must carry.
    tls: Option<Tls>,
}

#[derive(Clone)]
struct Tls {
    connector: tokio_rustls::TlsConnector,
    server_name: rustls_pki_types::ServerName<'static>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tls({:?})", self.server_name)
    }
}

impl Endpoint {
    /// An endpoint; https trusts the system's roots.
    pub fn parse(url: &str) -> anyhow::Result<Endpoint> {
        Endpoint::with_ca(url, None)
    }

    /// An endpoint; https trusts the system's roots and, if given, the PEM certificates in
    /// `ca_file` (a self-signed holdfast, a private CA).
    pub fn with_ca(url: &str, ca_file: Option<&std::path::Path>) -> anyhow::Result<Endpoint> {
        let uri: Uri = url.parse().map_err(|e| anyhow::anyhow!("invalid --endpoint-url {url:?}: {e}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => anyhow::bail!("--endpoint-url must start with http:// or https://"),
        };
        let authority = uri.authority().ok_or_else(|| anyhow::anyhow!("--endpoint-url has no host"))?;
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        let connect_to = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let path: Uri = match uri.path() {
            "" => "/".parse()?,
            path => path.parse()?,
        };
        Ok(Endpoint {
            connect_to,
            host: HeaderValue::from_str(authority.as_str())?,
            path,
            url: url.trim_end_matches('/').to_owned(),
            tls: if https { Some(tls_for(host, ca_file)?) } else { None },
        })
    }
}

fn tls_for(host: &str, ca_file: Option<&std::path::Path>) -> anyhow::Result<Tls> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped, as every TLS client does.
    let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        use rustls_pki_types::pem::PemObject;
        let certificates = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| anyhow::anyhow!("--ca-cert {}: {e}", path.display()))?;
        if certificates.is_empty() {
            anyhow::bail!("--ca-cert {}: no certificate in it", path.display());
        }
        for certificate in certificates {
            roots.add(certificate).map_err(|e| anyhow::anyhow!("--ca-cert {}: {e}", path.display()))?;
        }
    }
    if roots.is_empty() {
        anyhow::bail!("no trusted certificates for https: install the system's CA certificates or give --ca-cert");
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let server_name = rustls_pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| anyhow::anyhow!("{host:?} is not a name a certificate can carry: {e}"))?;
    Ok(Tls { connector: tokio_rustls::TlsConnector::from(Arc::new(config)), server_name })
}

/// SigV4 credentials from the environment.
#[derive(Debug)]
pub struct Signer {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<HeaderValue>,
    region: String,
}

impl Signer {
    pub fn from_env(region: &str) -> anyhow::Result<Signer> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(access_key_id), Some(secret_access_key)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        else {
            anyhow::bail!("--sign needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment");
        };
        let session_token = var("AWS_SESSION_TOKEN").map(|t| HeaderValue::from_str(&t)).transpose()?;
        Ok(Signer { access_key_id, secret_access_key, session_token, region: region.to_owned() })
    }

    fn sign(&self, request: &mut hyper::Request<Full<Bytes>>, body: &[u8]) {
        use holdfast_protocol::sigv4;
        let amz_date = sigv4::format_amz_date(SystemTime::now());
        let date = &amz_date[..8];
        let headers = request.headers_mut();
        headers.insert(X_AMZ_DATE, HeaderValue::from_str(&amz_date).expect("ASCII date"));
        let mut signed =
            vec!["content-type".to_owned(), "host".to_owned(), "x-amz-date".to_owned(), "x-amz-target".to_owned()];
        if let Some(token) = &self.session_token {
            headers.insert(X_AMZ_SECURITY_TOKEN, token.clone());
            signed.push("x-amz-security-token".to_owned());
        }
        let view = holdfast_protocol::HttpRequest {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            body,
        };
        let canonical = sigv4::canonical_request(&view, &signed);
        let scope = format!("{date}/{}/sqs/aws4_request", self.region);
        let to_sign = sigv4::string_to_sign(&amz_date, &scope, &canonical);
        let key = sigv4::signing_key(&self.secret_access_key, date, &self.region, "sqs");
        let authorization = format!(
            "{} Credential={}/{scope}, SignedHeaders={}, Signature={}",
            sigv4::ALGORITHM,
            self.access_key_id,
            signed.join(";"),
            sigv4::signature(&key, &to_sign)
        );
        let value = HeaderValue::from_str(&authorization).expect("ASCII authorization");
        request.headers_mut().insert(AUTHORIZATION, value);
    }
}

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    Connect(std::io::Error),
    Http(hyper::Error),
    Timeout,
    /// The service answered an error: status, `__type` (without its namespace) and message.
    Service {
        status: StatusCode,
        code: String,
        message: String,
    },
    /// A 200 whose body is not what the action returns.
    Decode(String),
}

impl CallError {
    /// What errors are grouped by in the summary.
    pub fn kind(&self) -> String {
        match self {
            CallError::Connect(_) => "connect".into(),
            CallError::Http(_) => "http".into(),
            CallError::Timeout => "timeout".into(),
            CallError::Service { status, code, .. } => format!("HTTP {} {code}", status.as_u16()),
            CallError::Decode(_) => "decode".into(),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Connect(e) => write!(f, "cannot connect: {e}"),
            CallError::Http(e) => write!(f, "HTTP: {e}"),
            CallError::Timeout => write!(f, "no answer within the request timeout"),
            CallError::Service { status, code, message } => write!(f, "{status} {code}: {message}"),
            CallError::Decode(e) => write!(f, "unexpected answer: {e}"),
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(rename = "__type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    /// Some servers (moto) send both spellings.
    #[serde(rename = "Message", borrow, default)]
    message_upper: Option<Cow<'a, str>>,
}

/// One worker's connection.
pub struct Client {
    endpoint: Arc<Endpoint>,
    signer: Option<Arc<Signer>>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    pub fn new(endpoint: Arc<Endpoint>, signer: Option<Arc<Signer>>) -> Client {
        Client { endpoint, signer, sender: None }
    }

    /// Calls `action` with the JSON `body`; the answer's body on HTTP 200.
    pub async fn call(&mut self, action: Action, body: Bytes, timeout: Duration) -> Result<Bytes, CallError> {
        match tokio::time::timeout(timeout, self.call_inner(action, body)).await {
            Ok(result) => result,
            Err(_) => {
                // The connection is mid-request: it cannot be reused.
                self.sender = None;
                Err(CallError::Timeout)
            }
        }
    }

    async fn call_inner(&mut self, action: Action, body: Bytes) -> Result<Bytes, CallError> {
        let mut request = hyper::Request::new(Full::new(body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.endpoint.path.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.endpoint.host.clone());
        headers.insert(CONTENT_TYPE, JSON_CONTENT_TYPE);
        headers.insert(X_AMZ_TARGET, target(action));
        match &self.signer {
            Some(signer) => signer.sign(&mut request, &body),
            None => {
                request.headers_mut().insert(AUTHORIZATION, DUMMY_AUTHORIZATION);
            }
        }
        let sender = self.ready().await?;
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(error) => {
                self.sender = None;
                return Err(CallError::Http(error));
            }
        };
        let (parts, body) = response.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                self.sender = None;
                return Err(CallError::Http(error));
            }
        };
        if parts.status != StatusCode::OK {
            let parsed: Option<ErrorBody<'_>> = serde_json::from_slice(&body).ok();
            let code = parsed.as_ref().and_then(|e| e.kind.as_deref()).unwrap_or("-");
            let code = code.rsplit('#').next().unwrap_or(code).to_owned();
            let message = match parsed.as_ref().and_then(|e| e.message.as_deref().or(e.message_upper.as_deref())) {
                Some(message) => message.to_owned(),
                None => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            };
            return Err(CallError::Service { status: parts.status, code, message });
        }
        Ok(body)
    }

    /// A connection ready for a request, opening one if needed.
    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, CallError> {
        if let Some(sender) = &mut self.sender {
            if sender.ready().await.is_err() {
                self.sender = None;
            }
        }
        if self.sender.is_none() {
            let stream = tokio::net::TcpStream::connect(&self.endpoint.connect_to).await.map_err(CallError::Connect)?;
            let _ = stream.set_nodelay(true);
            let sender = match &self.endpoint.tls {
                None => {
                    let (sender, connection) =
                        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(CallError::Http)?;
                    tokio::spawn(connection);
                    sender
                }
                Some(tls) => {
                    let stream =
                        tls.connector.connect(tls.server_name.clone(), stream).await.map_err(CallError::Connect)?;
                    let (sender, connection) =
                        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(CallError::Http)?;
                    tokio::spawn(connection);
                    sender
                }
            };
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("connected above"))
    }
}

// ---- request bodies ----

/// A request as its JSON body.
pub fn body(request: &impl Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(request).expect("requests serialize"))
}

/// Request bodies for one queue. The ones that never change are built once.
#[derive(Clone, Debug)]
pub struct Bodies {
    queue_url: String,
}

impl Bodies {
    pub fn new(queue_url: &str) -> Bodies {
        Bodies { queue_url: queue_url.to_owned() }
    }

    pub fn send(&self, message_body: &str) -> Bytes {
        body(&SendMessageRequest {
            queue_url: self.queue_url.clone(),
            message_body: message_body.to_owned(),
            ..Default::default()
        })
    }

    /// A batch of `bodies` with Ids "0", "1", ...
    pub fn send_batch<'a>(&self, bodies: impl IntoIterator<Item = &'a str>) -> Bytes {
        let entries = bodies
            .into_iter()
            .enumerate()
            .map(|(i, message_body)| SendMessageBatchRequestEntry {
                id: i.to_string(),
                message_body: message_body.to_owned(),
                ..Default::default()
            })
            .collect();
        body(&SendMessageBatchRequest { queue_url: self.queue_url.clone(), entries })
    }

    pub fn receive(&self, max_messages: u32, wait_seconds: u32) -> Bytes {
        body(&ReceiveMessageRequest {
            queue_url: self.queue_url.clone(),
            max_number_of_messages: Some(i64::from(max_messages)),
            wait_time_seconds: Some(i64::from(wait_seconds)),
            ..Default::default()
        })
    }

    pub fn delete(&self, receipt_handle: &str) -> Bytes {
        body(&DeleteMessageRequest { queue_url: self.queue_url.clone(), receipt_handle: receipt_handle.to_owned() })
    }

    pub fn delete_batch<'a>(&self, receipt_handles: impl IntoIterator<Item = &'a str>) -> Bytes {
        let entries = receipt_handles
            .into_iter()
            .enumerate()
            .map(|(i, handle)| DeleteMessageBatchRequestEntry { id: i.to_string(), receipt_handle: handle.to_owned() })
            .collect();
        body(&DeleteMessageBatchRequest { queue_url: self.queue_url.clone(), entries })
    }

    pub fn delete_queue(&self) -> Bytes {
        body(&DeleteQueueRequest { queue_url: self.queue_url.clone() })
    }
}

pub fn create_queue_body(name: &str) -> Bytes {
    body(&CreateQueueRequest { queue_name: name.to_owned(), ..Default::default() })
}

pub fn get_queue_url_body(name: &str) -> Bytes {
    body(&GetQueueUrlRequest { queue_name: name.to_owned(), ..Default::default() })
}

// ---- answers ----

#[derive(Deserialize)]
pub struct QueueUrlAnswer {
    #[serde(rename = "QueueUrl")]
    pub queue_url: String,
}

#[derive(Deserialize)]
pub struct SendAnswer<'a> {
    #[serde(rename = "MessageId", borrow)]
    pub message_id: Cow<'a, str>,
}

#[derive(Deserialize)]
pub struct BatchAnswer<'a> {
    #[serde(rename = "Successful", borrow, default)]
    pub successful: Vec<BatchEntry<'a>>,
    #[serde(rename = "Failed", borrow, default)]
    pub failed: Vec<BatchFailure<'a>>,
}

#[derive(Deserialize)]
pub struct BatchEntry<'a> {
    #[serde(rename = "MessageId", borrow, default)]
    pub message_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub struct BatchFailure<'a> {
    #[serde(rename = "Code", borrow, default)]
    pub code: Option<Cow<'a, str>>,
    #[serde(rename = "Message", borrow, default)]
    pub message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub struct ReceiveAnswer<'a> {
    #[serde(rename = "Messages", borrow, default)]
    pub messages: Vec<ReceivedMessage<'a>>,
}

#[derive(Deserialize)]
pub struct ReceivedMessage<'a> {
    #[serde(rename = "MessageId", borrow)]
    pub message_id: Cow<'a, str>,
    #[serde(rename = "ReceiptHandle", borrow)]
    pub receipt_handle: Cow<'a, str>,
    #[serde(rename = "Body", borrow, default)]
    pub body: Cow<'a, str>,
}

pub fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, CallError> {
    serde_json::from_slice(body).map_err(|e| CallError::Decode(e.to_string()))
}

/// A message id as a compact key: the UUID's 128 bits, or a hash of any other id.
pub fn id_key(message_id: &str) -> u128 {
    match uuid::Uuid::try_parse(message_id) {
        Ok(uuid) => uuid.as_u128(),
        Err(_) => {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            message_id.hash(&mut hasher);
            u128::from(hasher.finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify() {
        use holdfast_protocol::sigv4;
        let signer = Signer {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: Some(HeaderValue::from_static("token")),
            region: "eu-west-1".into(),
        };
        let body = Bytes::from_static(b"{\"QueueName\":\"q\"}");
        let mut request = hyper::Request::new(Full::new(body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = "/".parse().unwrap();
        request.headers_mut().insert(HOST, HeaderValue::from_static("127.0.0.1:9324"));
        request.headers_mut().insert(CONTENT_TYPE, JSON_CONTENT_TYPE);
        request.headers_mut().insert(X_AMZ_TARGET, target(Action::CreateQueue));
        signer.sign(&mut request, &body);
        let view = holdfast_protocol::HttpRequest {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            body: &body,
        };
        let credential = sigv4::parse(&view).expect("a credential");
        assert_eq!(credential.region, "eu-west-1");
        assert!(sigv4::verify(&view, &credential, "secret"));
        assert!(!sigv4::verify(&view, &credential, "other"));
    }

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:9324").unwrap();
        assert_eq!(e.connect_to, "127.0.0.1:9324");
        assert_eq!(e.path, "/");
        let e = Endpoint::parse("http://localhost/sqs/").unwrap();
        assert_eq!(e.connect_to, "localhost:80");
        assert_eq!(e.path, "/sqs/");
        assert!(Endpoint::parse("ftp://example.com").is_err());
    }

    #[test]
    fn bodies_are_json() {
        let b = Bodies::new("http://h/000000000000/q\"1");
        let v: serde_json::Value = serde_json::from_slice(&b.send_batch(["a", "b\n"])).unwrap();
        assert_eq!(v["Entries"][1]["MessageBody"], "b\n");
        assert_eq!(v["QueueUrl"], "http://h/000000000000/q\"1");
        let v: serde_json::Value = serde_json::from_slice(&b.receive(10, 20)).unwrap();
        assert_eq!(v["WaitTimeSeconds"], 20);
        let v: serde_json::Value = serde_json::from_slice(&b.delete_batch(["x"])).unwrap();
        assert_eq!(v["Entries"][0]["Id"], "0");
        let v: serde_json::Value = serde_json::from_slice(&b.send("m")).unwrap();
        assert_eq!(v, serde_json::json!({"QueueUrl": "http://h/000000000000/q\"1", "MessageBody": "m"}), "no nulls");
        assert_eq!(target(Action::SendMessageBatch), "AmazonSQS.SendMessageBatch");
    }
}
