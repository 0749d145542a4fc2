//! `holdfast form serve`: the front end. It serves the enquiry form, validates a submission, puts
//! it on the queue as one message and answers at once; it never waits for the back end.
//!
//! Invariant: a visitor is told "thank you" only after SendMessage succeeded. If the queue cannot
//! be reached within a bounded number of attempts and time, the visitor gets an honest error page
//! (503) with everything they typed still in the form, and nothing is claimed to be sent.
//!
//! Besides its own page it accepts `POST` of a form (`application/x-www-form-urlencoded`) or JSON
//! from any other page, with CORS for the origins given by `--cors-origin`, so an existing static
//! site can keep its own markup and post here.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_sqs::primitives::{DateTime, DateTimeFormat};
use bytes::Bytes;
use clap::Args;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Mutex;

use crate::lead::{FieldError, LeadInput};
use crate::page::{self, PageText};
use crate::sqs::{self, QueueArgs};

/// The largest request body accepted: the form's limits add up to well under this.
const MAX_BODY: usize = 64 * 1024;

/// `holdfast form serve`.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed on stdout).
    #[arg(long, env = "HOLDFAST_FORM_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// The queue submissions go to, by name or URL.
    #[arg(long, short = 'q', env = "HOLDFAST_FORM_QUEUE", default_value = "leads")]
    pub queue: String,
    #[command(flatten)]
    pub sqs: QueueArgs,
    /// An origin (https://www.example.com) whose pages may post here from the browser with
    /// fetch/XHR; repeat for several, or `*` for any.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Where to send the visitor after a successful form post (default: this server's /thanks).
    #[arg(long)]
    pub thanks_url: Option<String>,
    /// The form's heading.
    #[arg(long, default_value = "Contact our sales team")]
    pub title: String,
    /// The sentence under the heading.
    #[arg(long, default_value = "Tell us what you need and we will get back to you within one business day.")]
    pub intro: String,
    /// Attempts at SendMessage before the visitor is told it failed.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub send_attempts: u32,
    /// Upper bound, in seconds, on the whole send, retries included.
    #[arg(long, default_value_t = 10)]
    pub send_timeout: u64,
}

/// What every request handler shares.
struct Front {
    client: aws_sdk_sqs::Client,
    args: ServeArgs,
    text: PageText,
    /// Resolved on first use and kept: the queue may not be reachable when the form starts.
    queue_url: Mutex<Option<String>>,
}

/// Runs the front end until SIGTERM or Ctrl-C, then lets requests in progress finish.
pub async fn serve(args: ServeArgs) -> Result<(), String> {
    let client = sqs::client(&args.sqs, args.send_attempts, Duration::from_secs(args.send_timeout.max(1))).await;
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", args.bind))?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    let front = Arc::new(Front {
        client,
        text: PageText { title: args.title.clone(), intro: args.intro.clone() },
        args,
        queue_url: Mutex::new(None),
    });
    // Set the queue up in the background, so the form serves at once; if the queue is not
    // reachable yet, the first submission tries again.
    let setup = front.clone();
    tokio::spawn(async move {
        if let Err(error) = setup.queue_url().await {
            tracing::warn!("queue not ready yet ({error}); submissions will retry");
        }
    });
    println!("form listening on http://{address}");
    tracing::info!("form on http://{address}, submissions go to queue {}", front.args.queue);

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(crate::shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!("accept failed: {error}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let front = front.clone();
                let service = hyper::service::service_fn(move |request| {
                    let front = front.clone();
                    async move { Ok::<_, Infallible>(front.handle(request).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("form shutting down");
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(15)) => tracing::warn!("requests still running after 15s; exiting"),
    }
    Ok(())
}

/// How the client wants its answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reply {
    Html,
    Json,
}

impl Front {
    async fn queue_url(&self) -> Result<String, String> {
        let mut cached = self.queue_url.lock().await;
        if let Some(url) = cached.as_ref() {
            return Ok(url.clone());
        }
        let url = sqs::ensure_queue(&self.client, &self.args.queue, &self.args.sqs).await?;
        *cached = Some(url.clone());
        Ok(url)
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut response = match (request.method(), request.uri().path()) {
            (&Method::GET | &Method::HEAD, "/") => {
                html(StatusCode::OK, page::form(&self.text, &LeadInput::default(), &[], None))
            }
            (&Method::POST, "/" | "/submit") => self.submit(request).await,
            (&Method::OPTIONS, "/" | "/submit") => self.preflight(origin.as_deref()),
            (&Method::GET | &Method::HEAD, "/thanks") => {
                let reference = request.uri().query().and_then(|query| {
                    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "ref").map(|(_, v)| v.into_owned())
                });
                html(StatusCode::OK, page::thanks(&self.text, reference.as_deref()))
            }
            // The server's convention: /health (the process answers) and /ready (it can take a
            // lead now: its queue answers). /healthz stays as an alias of /health.
            (&Method::GET | &Method::HEAD, "/health" | "/healthz") => plain(StatusCode::OK, "ok\n"),
            (&Method::GET | &Method::HEAD, "/ready") => self.ready().await,
            (_, "/" | "/submit" | "/thanks" | "/health" | "/healthz" | "/ready") => {
                plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
            }
            _ => html(StatusCode::NOT_FOUND, page::not_found()),
        };
        self.add_cors(response.headers_mut(), origin.as_deref());
        self.add_security_headers(response.headers_mut());
        response
    }

    /// 200 `ready` when the queue answers within 5 s, else 503 with the reason.
    async fn ready(&self) -> Response<Full<Bytes>> {
        let check = async {
            let url = self.queue_url().await?;
            let attributes = self.client.get_queue_attributes().queue_url(url).send().await;
            attributes.map(drop).map_err(|error| error.to_string())
        };
        match tokio::time::timeout(Duration::from_secs(5), check).await {
            Ok(Ok(())) => plain(StatusCode::OK, "ready\n"),
            Ok(Err(reason)) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("unavailable: {reason}\n")),
            Err(_) => plain(StatusCode::SERVICE_UNAVAILABLE, "unavailable: the queue did not answer within 5 s\n"),
        }
    }

    async fn submit(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let headers = request.headers().clone();
        let content_type = header_text(&headers, header::CONTENT_TYPE).to_ascii_lowercase();
        let media_type = content_type.split(';').next().unwrap_or("").trim().to_string();
        let wants_json = media_type == "application/json" || media_type == "text/plain" || {
            let accept = header_text(&headers, header::ACCEPT);
            accept.contains("application/json") && !accept.contains("text/html")
        };
        let reply = if wants_json { Reply::Json } else { Reply::Html };
        let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return self.failure(reply, StatusCode::PAYLOAD_TOO_LARGE, "The submission is too large."),
        };
        let (input, source) = match media_type.as_str() {
            "application/x-www-form-urlencoded" | "" => {
                let pairs =
                    form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect::<Vec<_>>();
                let input = LeadInput::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.clone())));
                let own_page = header_text(&headers, header::ORIGIN).is_empty() || self.is_same_origin(&headers);
                (input, if own_page { "form" } else { "post" })
            }
            "application/json" | "text/plain" => match json_pairs(&body) {
                Some(pairs) => (LeadInput::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.clone()))), "json"),
                None => return self.failure(reply, StatusCode::BAD_REQUEST, "The body is not a JSON object."),
            },
            _ => {
                return self.failure(
                    reply,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "Send the form as application/x-www-form-urlencoded or application/json.",
                )
            }
        };

        if input.is_bot() {
            // Answer exactly as for a real lead, so a bot learns nothing, but keep nothing.
            tracing::debug!("honeypot filled in; submission dropped");
            return self.accepted(reply, &uuid::Uuid::new_v4().to_string());
        }
        if let Err(errors) = input.validate() {
            return match reply {
                Reply::Json => json_errors(&errors),
                Reply::Html => html(StatusCode::UNPROCESSABLE_ENTITY, page::form(&self.text, &input, &errors, None)),
            };
        }
        let now = DateTime::from(SystemTime::now()).fmt(DateTimeFormat::DateTime).unwrap_or_default();
        let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
        let lead = input.clone().into_lead(now, user_agent, source);
        match self.send(&lead.id, lead.to_message()).await {
            Ok(()) => {
                tracing::info!("lead {} queued", lead.id);
                self.accepted(reply, &lead.id)
            }
            Err(error) => {
                tracing::warn!("lead {} NOT queued, visitor told to retry: {error}", lead.id);
                let notice = "Sorry, we could not send your enquiry just now, so it has not been sent. \
                              Everything you typed is still below: please try again in a few minutes.";
                let mut response = match reply {
                    Reply::Json => json(
                        StatusCode::SERVICE_UNAVAILABLE,
                        serde_json::json!({"ok": false, "error": "The enquiry could not be queued; it was not sent. Try again later."}),
                    ),
                    Reply::Html => {
                        html(StatusCode::SERVICE_UNAVAILABLE, page::form(&self.text, &input, &[], Some(notice)))
                    }
                };
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
                response
            }
        }
    }

    /// One SendMessage, with the SDK's bounded retries. A FIFO queue deduplicates on the
    /// submission id as well, so even a retried send is one message there.
    async fn send(&self, id: &str, body: String) -> Result<(), String> {
        let url = self.queue_url().await?;
        let mut send = self.client.send_message().queue_url(&url).message_body(body);
        if sqs::is_fifo(&url) {
            send = send.message_group_id("leads").message_deduplication_id(id);
        }
        send.send().await.map(|_| ()).map_err(|error| sqs::describe(&error))
    }

    fn accepted(&self, reply: Reply, id: &str) -> Response<Full<Bytes>> {
        match reply {
            Reply::Json => json(StatusCode::ACCEPTED, serde_json::json!({"ok": true, "id": id})),
            Reply::Html => {
                // Post/Redirect/Get: a refresh of the thank-you page does not post again.
                let location = match &self.args.thanks_url {
                    Some(url) => url.clone(),
                    None => format!("/thanks?ref={id}"),
                };
                let mut response = html(StatusCode::SEE_OTHER, page::thanks(&self.text, Some(id)));
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::LOCATION, value);
                }
                response
            }
        }
    }

    fn failure(&self, reply: Reply, status: StatusCode, message: &str) -> Response<Full<Bytes>> {
        match reply {
            Reply::Json => json(status, serde_json::json!({"ok": false, "error": message})),
            Reply::Html => html(status, page::form(&self.text, &LeadInput::default(), &[], Some(message))),
        }
    }

    fn is_same_origin(&self, headers: &HeaderMap) -> bool {
        let host = header_text(headers, header::HOST);
        let origin = header_text(headers, header::ORIGIN);
        origin.split_once("://").is_some_and(|(_, rest)| rest == host)
    }

    fn allows(&self, origin: &str) -> bool {
        self.args.cors_origins.iter().any(|allowed| allowed == "*" || allowed.trim_end_matches('/') == origin)
    }

    fn preflight(&self, origin: Option<&str>) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        if origin.is_some_and(|origin| self.allows(origin)) {
            let headers = response.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Content-Type, Accept"));
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
        response
    }

    fn add_cors(&self, headers: &mut HeaderMap, origin: Option<&str>) {
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = origin.filter(|origin| self.allows(origin)) {
            if let Ok(value) = HeaderValue::from_str(origin) {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            }
        }
    }

    fn add_security_headers(&self, headers: &mut HeaderMap) {
        // form-action must also allow where the post redirects to, or browsers block the redirect.
        let thanks_origin = self
            .args
            .thanks_url
            .as_deref()
            .and_then(|url| {
                url.split_once("://")
                    .map(|(scheme, rest)| format!(" {scheme}://{}", rest.split('/').next().unwrap_or("")))
            })
            .unwrap_or_default();
        let policy = format!(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'{thanks_origin}; frame-ancestors 'none'; base-uri 'none'"
        );
        if let Ok(value) = HeaderValue::from_str(&policy) {
            headers.insert(header::CONTENT_SECURITY_POLICY, value);
        }
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// A JSON object's members as strings (numbers are written out; nested values are ignored).
fn json_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    Some(
        object
            .iter()
            .filter_map(|(key, value)| match value {
                serde_json::Value::String(text) => Some((key.clone(), text.clone())),
                serde_json::Value::Number(number) => Some((key.clone(), number.to_string())),
                _ => None,
            })
            .collect(),
    )
}

fn html(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

fn plain(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn json_errors(errors: &[FieldError]) -> Response<Full<Bytes>> {
    let fields: serde_json::Map<String, serde_json::Value> =
        errors.iter().map(|e| (e.field.to_string(), serde_json::Value::String(e.message.clone()))).collect();
    json(StatusCode::UNPROCESSABLE_ENTITY, serde_json::json!({"ok": false, "errors": fields}))
}
