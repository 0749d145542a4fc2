//! The web console at `/console`: queues, their metrics, messages and redrives, as server-rendered
//! HTML on the server's own port.
//!
//! Every action goes through the same `Sqs` service the API does, as the signed-in caller, so the
//! console can do exactly what that caller's access key may do through the API (its account, its
//! identity policy, the queues' policies) and nothing more. With authentication on, a session
//! starts by signing in with an access key id and its secret; with it off, anyone who reaches the
//! port may use the console, as anyone may use the API.
//!
//! Every page works without JavaScript (plain links and forms, charts as inline SVG); the one
//! script only refreshes the parts marked `data-live` every few seconds. State-changing requests
//! are POSTs carrying the session's CSRF token, behind a `SameSite=Strict` cookie; pages are sent
//! with a Content-Security-Policy that allows nothing but the console's own assets.

mod chart;
mod html;
mod messages;
mod queues;
mod redrive;
mod session;

use std::collections::HashMap;

use bytes::Bytes;
use holdfast_api::cloudwatch::{
    CloudWatchRequest, CloudWatchResponse, Dimension, GetMetricDataRequest, Metric, MetricDataQuery, MetricStat,
};
use holdfast_api::{Request, Response, SqsError};
use holdfast_core::RequestContext;
use http_body_util::Full;

use crate::http::{App, Endpoints, HttpResponse};
pub use session::Sessions;

/// The most form fields one console request may carry.
const MAX_FORM_FIELDS: usize = 200;

const STYLESHEET: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");

/// Whether `path` is the console's.
pub fn owns(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// One console request, once its session is known.
struct Visit<'a> {
    app: &'a App,
    ctx: RequestContext,
    csrf: String,
    /// The access key signed in, shown in the header.
    who: Option<String>,
    query: HashMap<String, String>,
    form: HashMap<String, String>,
}

/// What a view answers.
enum View {
    Page {
        status: u16,
        title: String,
        body: String,
        notice: Option<(bool, String)>,
    },
    /// 303 See Other: after a successful POST, the page to show next, and what it should say.
    Redirect {
        location: String,
        notice: Option<String>,
    },
}

impl View {
    fn page(title: impl Into<String>, body: String) -> View {
        View::Page { status: 200, title: title.into(), body, notice: None }
    }

    /// The page with the notice a redirect left for it (`Sessions::set_flash`), if it has none.
    fn with_flash(self, flash: impl FnOnce() -> Option<String>) -> View {
        match self {
            View::Page { status, title, body, notice: None } => {
                View::Page { status, title, body, notice: flash().map(|text| (false, text)) }
            }
            other => other,
        }
    }

    fn error(status: u16, title: &str, error: &SqsError) -> View {
        View::Page {
            status,
            title: title.into(),
            body: String::new(),
            notice: Some((true, format!("{}: {}", error.code.query_code(), error.message))),
        }
    }
}

/// Where to go after a POST, with a notice for the next page.
fn redirect(path: &str, notice: &str) -> View {
    View::Redirect { location: path.to_owned(), notice: Some(notice.to_owned()) }
}

impl Visit<'_> {
    /// One SQS action as the signed-in caller.
    async fn call(&self, request: Request) -> Result<Response, SqsError> {
        self.app.sqs.handle(&self.ctx, request).await
    }

    async fn queue_url(&self, name: &str) -> Result<String, SqsError> {
        let request = Request::GetQueueUrl(holdfast_api::types::GetQueueUrlRequest {
            queue_name: name.to_owned(),
            queue_owner_aws_account_id: None,
        });
        match self.call(request).await? {
            Response::GetQueueUrl(r) => Ok(r.queue_url.unwrap_or_default()),
            _ => unreachable!("GetQueueUrl answers GetQueueUrl"),
        }
    }

    async fn attributes(&self, queue_url: &str) -> Result<holdfast_api::types::AttributeMap, SqsError> {
        let request = Request::GetQueueAttributes(holdfast_api::types::GetQueueAttributesRequest {
            queue_url: queue_url.to_owned(),
            attribute_names: Some(vec!["All".into()]),
        });
        match self.call(request).await? {
            Response::GetQueueAttributes(r) => Ok(r.attributes.unwrap_or_default()),
            _ => unreachable!("GetQueueAttributes answers GetQueueAttributes"),
        }
    }

    /// Every queue the caller may list (at most `limit`), as `(name, URL)` in name order.
    async fn queues(&self, limit: usize) -> Result<Vec<(String, String)>, SqsError> {
        let mut queues = Vec::new();
        let mut next_token = None;
        loop {
            let request = Request::ListQueues(holdfast_api::types::ListQueuesRequest {
                queue_name_prefix: None,
                next_token: next_token.take(),
                max_results: Some(1000),
            });
            let Response::ListQueues(page) = self.call(request).await? else { unreachable!() };
            queues.extend(page.queue_urls.unwrap_or_default().into_iter().map(|url| (name_of(&url).to_owned(), url)));
            match page.next_token {
                Some(token) if queues.len() < limit => next_token = Some(token),
                _ => break,
            }
        }
        queues.truncate(limit);
        queues.sort();
        Ok(queues)
    }

    /// The names of `queues(limit)`.
    async fn queue_names(&self, limit: usize) -> Result<Vec<String>, SqsError> {
        Ok(self.queues(limit).await?.into_iter().map(|(name, _)| name).collect())
    }

    /// The named queue's URL, or the page saying why there is none (with a link to `back`).
    async fn queue_url_or_failed(&self, name: &str, back: &str) -> Result<String, View> {
        self.queue_url(name).await.map_err(|error| failed(name, back, &error))
    }

    /// One action on the named queue: `request` built from its URL and sent; then a redirect to
    /// `back` with `notice` made from the answer, or the failure with a link to `back`.
    async fn act(
        &self,
        name: &str,
        back: &str,
        request: impl FnOnce(String) -> Request,
        notice: impl FnOnce(Response) -> String,
    ) -> View {
        let queue_url = match self.queue_url_or_failed(name, back).await {
            Ok(queue_url) => queue_url,
            Err(view) => return view,
        };
        match self.call(request(queue_url)).await {
            Ok(answer) => redirect(back, &notice(answer)),
            Err(error) => failed(name, back, &error),
        }
    }

    /// Recorded metrics: for each `(id, queue, metric, statistic)`, its datapoints over the last
    /// `range` seconds by `period`, as `(seconds, value)` in time order. A failure (no permission
    /// for CloudWatch, say) shows as no data rather than failing the page.
    async fn series(
        &self,
        queries: &[(String, &str, &str, &str)],
        range: i64,
        period: i64,
    ) -> HashMap<String, Vec<(i64, f64)>> {
        let now = now_millis();
        let end = (now / 60_000 + 1) * 60_000;
        let request = GetMetricDataRequest {
            queries: queries
                .iter()
                .map(|(id, queue, metric, stat)| MetricDataQuery {
                    id: id.clone(),
                    metric_stat: Some(MetricStat {
                        metric: Metric {
                            namespace: Some("AWS/SQS".into()),
                            metric_name: Some((*metric).into()),
                            dimensions: vec![Dimension { name: "QueueName".into(), value: (*queue).into() }],
                        },
                        period,
                        stat: (*stat).into(),
                        unit: None,
                    }),
                    ..Default::default()
                })
                .collect(),
            start_time: end - range * 1000,
            end_time: end,
            scan_by: Some("TimestampAscending".into()),
            ..Default::default()
        };
        let mut out = HashMap::new();
        match self.app.sqs.cloudwatch(&self.ctx, CloudWatchRequest::GetMetricData(request)).await {
            Ok(CloudWatchResponse::GetMetricData(data)) => {
                for result in data.results {
                    let points = result.timestamps.iter().map(|t| t / 1000).zip(result.values).collect();
                    out.insert(result.id, points);
                }
            }
            Ok(_) => {}
            Err(error) => tracing::debug!(code = error.code, message = %error.message, "console: no metrics"),
        }
        out
    }

    fn field(&self, name: &str) -> &str {
        self.form.get(name).map(String::as_str).unwrap_or("")
    }
}

/// The name at the end of a queue URL or ARN.
fn name_of(url_or_arn: &str) -> &str {
    url_or_arn.rsplit(['/', ':']).next().unwrap_or(url_or_arn)
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Answers a request under `/console`.
pub async fn handle(app: &App, parts: &http::request::Parts, body: &Bytes, endpoints: Endpoints) -> HttpResponse {
    let path = parts.uri.path().trim_end_matches('/');
    let path = path.strip_prefix("/console").unwrap_or(path);
    match (path, &parts.method) {
        ("/assets/console.css", &http::Method::GET) => return asset(STYLESHEET, "text/css; charset=utf-8"),
        ("/assets/console.js", &http::Method::GET) => return asset(SCRIPT, "text/javascript; charset=utf-8"),
        _ => {}
    }
    let query: HashMap<String, String> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).into_owned().take(MAX_FORM_FIELDS).collect();
    let is_post = parts.method == http::Method::POST;
    let mut form_pairs: Vec<(String, String)> = Vec::new();
    if is_post {
        form_pairs = form_urlencoded::parse(body).into_owned().take(MAX_FORM_FIELDS + 1).collect();
        if form_pairs.len() > MAX_FORM_FIELDS {
            return respond(plain(413, "Too many form fields."), None, endpoints.secure);
        }
    } else if parts.method != http::Method::GET && parts.method != http::Method::HEAD {
        return respond(plain(405, "The console answers GET and POST only."), None, endpoints.secure);
    }
    let mut form = HashMap::new();
    for (name, value) in form_pairs {
        form.entry(name).or_insert(value);
    }

    // The session: signed in with a key (authentication on), or anonymous (off).
    let sessions = &app.console_sessions;
    let token = session::token_of(&parts.headers).map(str::to_owned);
    let mut session = token.as_deref().and_then(|t| sessions.get(t));
    let auth_on = app.auth.mode() == crate::auth::AuthMode::Sigv4;
    let caller = match session.as_ref().and_then(|s| s.access_key_id.as_deref()) {
        Some(key) => match app.auth.caller_of(key) {
            Some(caller) => Some(caller),
            None => {
                // The key is gone from the credentials file: the session ends with it.
                if let Some(token) = &token {
                    sessions.close(token);
                }
                session = None;
                None
            }
        },
        None => None,
    };
    if path == "/sign-in" {
        return sign_in(app, is_post, &form, endpoints.secure).await;
    }
    let mut new_cookie = None;
    let session = match session {
        Some(session) if !auth_on || caller.is_some() => session,
        _ if auth_on => return redirect_response("/console/sign-in"),
        _ => {
            let (token, session) = sessions.open(None);
            new_cookie = Some(token);
            session
        }
    };
    if is_post && !session::same_secret(form.get("csrf").map(String::as_str).unwrap_or(""), &session.csrf) {
        let view = View::Page {
            status: 403,
            title: "Form expired".into(),
            body: "<p><a href=\"/console\">Back to the queues</a></p>".into(),
            notice: Some((
                true,
                "This form is from an old or another session; open the page again and resubmit.".into(),
            )),
        };
        return respond(frame_view(view, None, &session.csrf), new_cookie.as_deref(), endpoints.secure);
    }
    if path == "/sign-out" && is_post {
        if let Some(token) = &token {
            sessions.close(token);
        }
        let target = if auth_on { "/console/sign-in" } else { "/console" };
        let mut response = redirect_response(target);
        add_cookie(&mut response, None, endpoints.secure);
        return response;
    }

    let ctx = crate::http::request_context(app, parts, endpoints, caller, None);
    let who = session.access_key_id.clone();
    let visit = Visit { app, ctx, csrf: session.csrf.clone(), who, query, form };
    // The session's token, to leave a notice for the next page or pick one up.
    let session_token = new_cookie.clone().or(token).unwrap_or_default();
    let view = match route(&visit, path, is_post).await {
        View::Redirect { location, notice } => {
            if let Some(notice) = notice {
                sessions.set_flash(&session_token, notice);
            }
            View::Redirect { location, notice: None }
        }
        page => page.with_flash(|| sessions.take_flash(&session_token)),
    };
    let view = frame_view(view, visit.who.as_deref(), &visit.csrf);
    respond(view, new_cookie.as_deref(), endpoints.secure)
}

async fn route(visit: &Visit<'_>, path: &str, is_post: bool) -> View {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (segments.as_slice(), is_post) {
        ([], false) => queues::list(visit).await,
        (["new"], false) => queues::create_form(visit, None).await,
        (["new"], true) => queues::create(visit).await,
        (["queues", name], false) => queues::show(visit, name).await,
        (["queues", name, "attributes"], true) => queues::set_attributes(visit, name).await,
        (["queues", name, "tags"], true) => queues::tag(visit, name).await,
        (["queues", name, "untag"], true) => queues::untag(visit, name).await,
        (["queues", name, action @ ("purge" | "delete")], false) => queues::confirm(visit, name, action),
        (["queues", name, "purge"], true) => queues::purge(visit, name).await,
        (["queues", name, "delete"], true) => queues::delete(visit, name).await,
        (["queues", name, "messages"], false) => messages::page(visit, name, None).await,
        (["queues", name, "send"], true) => messages::send(visit, name).await,
        (["queues", name, "poll"], true) => messages::poll(visit, name).await,
        (["queues", name, "delete-message"], true) => messages::delete(visit, name).await,
        (["queues", name, "redrive"], false) => redrive::page(visit, name).await,
        (["queues", name, "redrive"], true) => redrive::start(visit, name).await,
        (["queues", name, "cancel-redrive"], true) => redrive::cancel(visit, name).await,
        _ => View::Page {
            status: 404,
            title: "Not found".into(),
            body: "<p>There is no such console page. <a href=\"/console\">Back to the queues</a></p>".into(),
            notice: None,
        },
    }
}

/// How long a refused sign-in waits before it is answered: guessing secrets on one connection
/// gets one try a second.
const SIGN_IN_REFUSAL_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// The sign-in page and its form (authentication on only).
async fn sign_in(app: &App, is_post: bool, form: &HashMap<String, String>, secure: bool) -> HttpResponse {
    if app.auth.mode() != crate::auth::AuthMode::Sigv4 {
        return redirect_response("/console");
    }
    let mut notice = None;
    if is_post {
        let key = form.get("access_key_id").map(|k| k.trim()).unwrap_or("");
        let secret = form.get("secret_access_key").map(String::as_str).unwrap_or("");
        if app.auth.check_secret(key, secret) {
            let (token, _) = app.console_sessions.open(Some(key.to_owned()));
            let mut response = redirect_response("/console");
            add_cookie(&mut response, Some(&token), secure);
            return response;
        }
        tracing::info!(access_key_id = key, "console sign-in refused");
        tokio::time::sleep(SIGN_IN_REFUSAL_DELAY).await;
        notice = Some((true, "The access key id or secret access key is not right.".to_owned()));
    }
    let body = format!(
        "<h1>Sign in</h1><p>Sign in with an access key of the server's credentials file; the console \
         then acts with that key's permissions.</p>\
         <form method=\"post\" action=\"/console/sign-in\" class=\"card narrow\">{}\
         <label>Secret access key<input type=\"password\" name=\"secret_access_key\" id=\"secret_access_key\" autocomplete=\"current-password\"></label>\
         <button type=\"submit\">Sign in</button></form>",
        html::input("access_key_id", "Access key id", form.get("access_key_id").map(String::as_str).unwrap_or(""), ""),
    );
    let status = if notice.is_some() { 401 } else { 200 };
    let frame = html::Frame { title: "Sign in", signed_in_as: None, csrf: None, notice };
    page_response(status, html::page(&frame, &body))
}

/// A view, framed: the page's HTML or a redirect.
enum Framed {
    Html(u16, String),
    Redirect(String),
}

fn frame_view(view: View, who: Option<&str>, csrf: &str) -> Framed {
    match view {
        View::Page { status, title, body, notice } => {
            let frame = html::Frame { title: &title, signed_in_as: who, csrf: Some(csrf), notice };
            Framed::Html(status, html::page(&frame, &body))
        }
        View::Redirect { location, .. } => Framed::Redirect(location),
    }
}

fn plain(status: u16, text: &str) -> Framed {
    Framed::Html(status, html::esc(text))
}

fn respond(framed: Framed, new_session: Option<&str>, secure: bool) -> HttpResponse {
    let mut response = match framed {
        Framed::Html(status, text) => page_response(status, text),
        Framed::Redirect(location) => redirect_response(&location),
    };
    if let Some(token) = new_session {
        add_cookie(&mut response, Some(token), secure);
    }
    response
}

fn page_response(status: u16, text: String) -> HttpResponse {
    let mut response = hyper::Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(http::header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    headers.insert(http::header::X_FRAME_OPTIONS, http::HeaderValue::from_static("DENY"));
    headers.insert(http::header::REFERRER_POLICY, http::HeaderValue::from_static("no-referrer"));
    response
}

fn redirect_response(location: &str) -> HttpResponse {
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = hyper::StatusCode::SEE_OTHER;
    if let Ok(value) = http::HeaderValue::from_str(location) {
        response.headers_mut().insert(http::header::LOCATION, value);
    }
    response
}

fn add_cookie(response: &mut HttpResponse, token: Option<&str>, secure: bool) {
    if let Ok(value) = http::HeaderValue::from_str(&session::set_cookie(token, secure)) {
        response.headers_mut().append(http::header::SET_COOKIE, value);
    }
}

fn asset(text: &'static str, content_type: &'static str) -> HttpResponse {
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("public, max-age=300"));
    headers.insert(http::header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    response
}

/// Shared by the queue views: the caller's queue, or the page saying why not.
async fn queue_or_page(visit: &Visit<'_>, name: &str) -> Result<(String, holdfast_api::types::AttributeMap), View> {
    let url = visit.queue_url(name).await.map_err(|e| View::error(404, name, &e))?;
    let attributes = visit.attributes(&url).await.map_err(|e| View::error(403, name, &e))?;
    Ok((url, attributes))
}

/// The page of a failed action: its error, above a link back.
fn failed(title: &str, back: &str, error: &SqsError) -> View {
    View::Page {
        status: if error.code.sender_fault() { 400 } else { 500 },
        title: title.into(),
        body: format!("<p><a href=\"{}\">Back</a></p>", html::esc(back)),
        notice: Some((true, format!("{}: {}", error.code.query_code(), error.message))),
    }
}
