//! The queue views: the list, a queue's page (counts, charts, attributes, tags, its dead-letter
//! relations), creating, editing, purging and deleting.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use holdfast_api::types::AttributeMap;
use holdfast_api::{Request, Response};

use super::html::{self, esc, url};
use super::{chart, failed, name_of, queue_or_page, redirect, View, Visit};

/// The most queues the list shows (after the filter); the filter finds the others.
const LIST_LIMIT: usize = 100;
/// The most queue names read to fill the list and the dead-letter pickers.
const NAMES_LIMIT: usize = 5_000;

/// The ranges a queue's charts cover, with the period each is drawn at.
const RANGES: [(&str, i64, i64); 3] = [("1h", 3_600, 60), ("24h", 86_400, 900), ("14d", 14 * 86_400, 3 * 3_600)];

fn count(attributes: &AttributeMap, name: &str) -> String {
    attributes.get(name).and_then(|v| v.parse::<f64>().ok()).map(html::number).unwrap_or_else(|| "–".into())
}

/// The dead-letter queue ARN of a redrive policy, and its maxReceiveCount.
fn redrive_target(attributes: &AttributeMap) -> Option<(String, String)> {
    let policy: serde_json::Value = serde_json::from_str(attributes.get("RedrivePolicy")?).ok()?;
    let arn = policy.get("deadLetterTargetArn")?.as_str()?.to_owned();
    let max = match policy.get("maxReceiveCount")? {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some((arn, max))
}

fn badges(attributes: &AttributeMap, is_dead_letter_queue: bool) -> String {
    let mut out = String::new();
    if attributes.get("FifoQueue").map(String::as_str) == Some("true") {
        out.push_str("<span class=\"badge fifo\">FIFO</span>");
    }
    if is_dead_letter_queue {
        out.push_str("<span class=\"badge dlq\">dead-letter queue</span>");
    }
    if redrive_target(attributes).is_some() {
        out.push_str("<span class=\"badge redrive\">has DLQ</span>");
    }
    out
}

/// The queue list: counts, age of the oldest message, an hour of depth, filtered by name.
pub async fn list(visit: &Visit<'_>) -> View {
    let queues = match visit.queues(NAMES_LIMIT).await {
        Ok(queues) => queues,
        Err(error) => return View::error(403, "Queues", &error),
    };
    let filter = visit.query.get("filter").map(|f| f.trim().to_owned()).unwrap_or_default();
    let needle = filter.to_ascii_lowercase();
    let matching: Vec<&(String, String)> =
        queues.iter().filter(|(name, _)| name.to_ascii_lowercase().contains(&needle)).collect();
    let shown = &matching[..matching.len().min(LIST_LIMIT)];

    let mut rows = Vec::with_capacity(shown.len());
    for (name, queue_url) in shown {
        let attributes = visit.attributes(queue_url).await.unwrap_or_default();
        rows.push((name.as_str(), attributes, has_sources(visit, queue_url).await));
    }
    let mut queries = Vec::new();
    for (index, (name, _, _)) in rows.iter().enumerate() {
        queries.push((format!("d{index}"), *name, "ApproximateNumberOfMessagesVisible", "Maximum"));
        queries.push((format!("a{index}"), *name, "ApproximateAgeOfOldestMessage", "Maximum"));
    }
    let series = if queries.is_empty() { Default::default() } else { visit.series(&queries, 3_600, 60).await };
    let now = super::now_millis() / 1000;

    let mut body = String::from("<h1>Queues</h1>");
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/console\" class=\"filter\"><input name=\"filter\" id=\"filter\" \
         placeholder=\"Filter by name\" value=\"{}\"><button type=\"submit\">Filter</button> \
         <a class=\"button\" href=\"/console/new\">Create queue</a></form>",
        esc(&filter)
    );
    if rows.is_empty() {
        body.push_str(if queues.is_empty() {
            "<p class=\"empty\">No queues yet. <a href=\"/console/new\">Create one</a>.</p>"
        } else {
            "<p class=\"empty\">No queue matches the filter.</p>"
        });
        return View::page("Queues", body);
    }
    body.push_str(
        "<section data-live><table class=\"queues\"><thead><tr><th>Name</th><th>Type</th><th class=\"n\">Visible</th>\
         <th class=\"n\">In flight</th><th class=\"n\">Delayed</th><th class=\"n\">Oldest</th><th>Depth, last hour</th></tr></thead><tbody>",
    );
    for (index, (name, attributes, is_dlq)) in rows.iter().enumerate() {
        let age = series.get(&format!("a{index}")).and_then(|p| p.last()).map(|p| html::duration(p.1 as i64));
        let depth = series.get(&format!("d{index}")).map(Vec::as_slice).unwrap_or(&[]);
        let _ = write!(
            body,
            "<tr data-queue=\"{n}\"><td><a href=\"/console/queues/{u}\">{n}</a></td><td>{badges}</td>\
             <td class=\"n\">{visible}</td><td class=\"n\">{in_flight}</td><td class=\"n\">{delayed}</td>\
             <td class=\"n\">{age}</td><td>{spark}</td></tr>",
            n = esc(name),
            u = url(name),
            badges = badges(attributes, *is_dlq),
            visible = count(attributes, "ApproximateNumberOfMessages"),
            in_flight = count(attributes, "ApproximateNumberOfMessagesNotVisible"),
            delayed = count(attributes, "ApproximateNumberOfMessagesDelayed"),
            age = esc(&age.unwrap_or_else(|| "–".into())),
            spark = chart::sparkline(depth, now - 3_600, now, &format!("{name}: messages visible, last hour")),
        );
    }
    body.push_str("</tbody></table>");
    if matching.len() > shown.len() {
        let _ = write!(body, "<p>{} more; filter by name to find them.</p>", matching.len() - shown.len());
    }
    body.push_str("</section>");
    View::page("Queues", body)
}

/// Whether some queue names this one as its dead-letter queue.
async fn has_sources(visit: &Visit<'_>, queue_url: &str) -> bool {
    !dead_letter_sources(visit, queue_url, 1).await.is_empty()
}

/// The queues whose redrive policy names this one (at most `limit`).
pub(super) async fn dead_letter_sources(visit: &Visit<'_>, queue_url: &str, limit: i64) -> Vec<String> {
    let request = holdfast_api::types::ListDeadLetterSourceQueuesRequest {
        queue_url: queue_url.to_owned(),
        next_token: None,
        max_results: Some(limit),
    };
    match visit.call(Request::ListDeadLetterSourceQueues(request)).await {
        Ok(Response::ListDeadLetterSourceQueues(r)) => r.queue_urls,
        _ => Vec::new(),
    }
}

/// The attribute fields of the create and edit forms, filled from `current`. `queues` are the
/// names offered as dead-letter queues (with `arn_prefix` making their ARNs).
fn attribute_fields(current: &AttributeMap, creating: bool, dead_letter_choices: &[(String, String)]) -> String {
    let value = |name: &str| current.get(name).cloned().unwrap_or_default();
    let fifo = current.get("FifoQueue").map(String::as_str) == Some("true");
    let mut out = String::from("<fieldset><legend>Delivery</legend>");
    out.push_str(&html::input(
        "VisibilityTimeout",
        "Visibility timeout (seconds, 0–43200)",
        &value("VisibilityTimeout"),
        "default 30",
    ));
    out.push_str(&html::input("DelaySeconds", "Delivery delay (seconds, 0–900)", &value("DelaySeconds"), "default 0"));
    out.push_str(&html::input(
        "ReceiveMessageWaitTimeSeconds",
        "Receive wait time (seconds, 0–20)",
        &value("ReceiveMessageWaitTimeSeconds"),
        "default 0: short polling",
    ));
    out.push_str(&html::input(
        "MessageRetentionPeriod",
        "Retention (seconds, 60–1209600)",
        &value("MessageRetentionPeriod"),
        "default 345600: 4 days",
    ));
    out.push_str(&html::input(
        "MaximumMessageSize",
        "Maximum message size (bytes, 1024–1048576)",
        &value("MaximumMessageSize"),
        "default 1048576",
    ));
    out.push_str("</fieldset><fieldset><legend>Dead-letter queue</legend>");
    let (target, max_receives) = redrive_target(current).unwrap_or_default();
    let mut options = vec![(String::new(), "none".to_owned())];
    options.extend(dead_letter_choices.iter().cloned());
    out.push_str(&html::select("dead_letter_arn", "Send messages received too often to", &options, &target));
    out.push_str(&html::input(
        "max_receive_count",
        "Maximum receives (1–1000)",
        &max_receives,
        "receives before a message moves to the dead-letter queue",
    ));
    out.push_str(&html::textarea(
        "RedriveAllowPolicy",
        "Redrive allow policy (JSON: which queues may use this one as their DLQ)",
        &value("RedriveAllowPolicy"),
        2,
    ));
    out.push_str("</fieldset>");
    if creating || fifo {
        out.push_str("<fieldset><legend>FIFO</legend>");
        if creating {
            out.push_str(&html::checkbox("FifoQueue", "FIFO queue (the name must end in .fifo)", fifo));
        }
        out.push_str(&html::checkbox(
            "ContentBasedDeduplication",
            "Content-based deduplication",
            value("ContentBasedDeduplication") == "true",
        ));
        let scopes =
            [("queue", "the queue"), ("messageGroup", "each message group")].map(|(v, t)| (v.to_owned(), t.to_owned()));
        out.push_str(&html::select("DeduplicationScope", "Deduplication scope", &scopes, &value("DeduplicationScope")));
        let limits = [("perQueue", "per queue"), ("perMessageGroupId", "per message group")]
            .map(|(v, t)| (v.to_owned(), t.to_owned()));
        out.push_str(&html::select("FifoThroughputLimit", "Throughput limit", &limits, &value("FifoThroughputLimit")));
        out.push_str("</fieldset>");
    }
    out.push_str("<fieldset><legend>Encryption and access</legend>");
    out.push_str(&html::checkbox(
        "SqsManagedSseEnabled",
        "Server-side encryption with SQS-managed keys",
        value("SqsManagedSseEnabled") == "true",
    ));
    out.push_str(&html::input("KmsMasterKeyId", "KMS key id (SSE-KMS)", &value("KmsMasterKeyId"), "empty for none"));
    out.push_str(&html::input(
        "KmsDataKeyReusePeriodSeconds",
        "KMS data key reuse period (seconds, 60–86400)",
        &value("KmsDataKeyReusePeriodSeconds"),
        "",
    ));
    out.push_str(&html::textarea("Policy", "Access policy (JSON)", &value("Policy"), 4));
    out.push_str("</fieldset>");
    out
}

/// The attributes the form asks for. With `current` (editing), only those that differ from it,
/// with emptied ones sent empty (which removes a redrive or access policy).
fn attributes_from_form(visit: &Visit<'_>, current: Option<&AttributeMap>) -> AttributeMap {
    let mut wanted = AttributeMap::new();
    for name in [
        "VisibilityTimeout",
        "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds",
        "MessageRetentionPeriod",
        "MaximumMessageSize",
        "RedriveAllowPolicy",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
        "Policy",
        "DeduplicationScope",
        "FifoThroughputLimit",
    ] {
        if let Some(value) = visit.form.get(name) {
            wanted.insert(name.to_owned(), value.trim().to_owned());
        }
    }
    let fifo = match current {
        Some(current) => current.get("FifoQueue").map(String::as_str) == Some("true"),
        None => visit.field("FifoQueue") == "true",
    };
    let mut checkboxes = vec!["SqsManagedSseEnabled"];
    if fifo {
        checkboxes.push("ContentBasedDeduplication");
        if current.is_none() {
            checkboxes.push("FifoQueue");
        }
    } else {
        wanted.remove("DeduplicationScope");
        wanted.remove("FifoThroughputLimit");
    }
    for name in checkboxes {
        let checked = visit.field(name) == "true";
        wanted.insert(name.to_owned(), checked.to_string());
    }
    let target = visit.field("dead_letter_arn").trim();
    let redrive = if target.is_empty() {
        String::new()
    } else {
        let max = visit.field("max_receive_count").trim();
        let max = if max.is_empty() { "10" } else { max };
        serde_json::json!({"deadLetterTargetArn": target, "maxReceiveCount": max}).to_string()
    };
    wanted.insert("RedrivePolicy".into(), redrive);

    match current {
        // Creating: what is empty or unticked is the default, and left to SQS.
        None => wanted.into_iter().filter(|(_, value)| !value.is_empty() && value != "false").collect(),
        Some(current) => wanted
            .into_iter()
            .filter(|(name, value)| {
                let now = current.get(name).map(String::as_str).unwrap_or("");
                let now = if now.is_empty() && value == "false" { "false" } else { now };
                if name == "RedrivePolicy" {
                    return redrive_target(current)
                        != redrive_target(&AttributeMap::from([(name.clone(), value.clone())]));
                }
                let same_json = || {
                    let a: Option<serde_json::Value> = serde_json::from_str(now).ok();
                    a.is_some() && a == serde_json::from_str(value).ok()
                };
                now != value && !same_json()
            })
            .collect(),
    }
}

/// The queues that may be picked as a dead-letter queue: `(ARN, name)` of every queue listed.
async fn dead_letter_choices(visit: &Visit<'_>, except: Option<&str>) -> Vec<(String, String)> {
    let names = visit.queue_names(NAMES_LIMIT).await.unwrap_or_default();
    let prefix = arn_prefix(visit);
    names.into_iter().filter(|n| Some(n.as_str()) != except).map(|n| (format!("{prefix}{n}"), n)).collect()
}

/// `arn:aws:sqs:<region>:<account>:`, the caller's queue ARNs without their name.
fn arn_prefix(visit: &Visit<'_>) -> String {
    format!("arn:aws:sqs:{}:{}:", visit.ctx.region(&visit.app.sqs), visit.ctx.account(&visit.app.sqs))
}

pub async fn create_form(visit: &Visit<'_>, error: Option<(String, AttributeMap)>) -> View {
    let choices = dead_letter_choices(visit, None).await;
    let (name, current, notice) = match error {
        Some((message, attributes)) => (visit.field("QueueName").to_owned(), attributes, Some((true, message))),
        None => (String::new(), AttributeMap::new(), None),
    };
    let mut body = String::from("<h1>Create queue</h1><form method=\"post\" action=\"/console/new\" class=\"card\">");
    body.push_str(&html::csrf_field(&visit.csrf));
    body.push_str(&html::input("QueueName", "Name (1–80 of A-Z a-z 0-9 - _, FIFO ending in .fifo)", &name, ""));
    body.push_str(&attribute_fields(&current, true, &choices));
    body.push_str("<fieldset><legend>Tags</legend>");
    for i in 0..3 {
        let _ = write!(
            body,
            "<div class=\"pair\">{}{}</div>",
            html::input(&format!("tag_key_{i}"), "Key", visit.field(&format!("tag_key_{i}")), ""),
            html::input(&format!("tag_value_{i}"), "Value", visit.field(&format!("tag_value_{i}")), "")
        );
    }
    body.push_str("</fieldset><button type=\"submit\">Create queue</button></form>");
    View::Page { status: if notice.is_some() { 400 } else { 200 }, title: "Create queue".into(), body, notice }
}

pub async fn create(visit: &Visit<'_>) -> View {
    let name = visit.field("QueueName").trim().to_owned();
    let attributes = attributes_from_form(visit, None);
    let mut tags = BTreeMap::new();
    for i in 0..3 {
        let key = visit.field(&format!("tag_key_{i}")).trim();
        if !key.is_empty() {
            tags.insert(key.to_owned(), visit.field(&format!("tag_value_{i}")).to_owned());
        }
    }
    let request = holdfast_api::types::CreateQueueRequest {
        queue_name: name.clone(),
        attributes: Some(attributes.clone()),
        tags: (!tags.is_empty()).then_some(tags),
    };
    match visit.call(Request::CreateQueue(request)).await {
        Ok(_) => redirect(&format!("/console/queues/{}", url(&name)), &format!("Created queue {name}.")),
        Err(error) => {
            // Show the form again as it was filled, with the error above it.
            let mut echoed = attributes;
            if let Some(target) = Some(visit.field("dead_letter_arn")).filter(|t| !t.is_empty()) {
                let max = visit.field("max_receive_count");
                echoed.insert(
                    "RedrivePolicy".into(),
                    serde_json::json!({"deadLetterTargetArn": target, "maxReceiveCount": max}).to_string(),
                );
            }
            create_form(visit, Some((format!("{}: {}", error.code.query_code(), error.message), echoed))).await
        }
    }
}

/// A queue's page.
pub async fn show(visit: &Visit<'_>, name: &str) -> View {
    let (queue_url, attributes) = match queue_or_page(visit, name).await {
        Ok(found) => found,
        Err(view) => return view,
    };
    let range = visit.query.get("range").map(String::as_str).unwrap_or("1h");
    let (range, seconds, period) = RANGES.iter().copied().find(|r| r.0 == range).unwrap_or(RANGES[0]);
    let metrics = [
        ("vis", "ApproximateNumberOfMessagesVisible", "Average"),
        ("inf", "ApproximateNumberOfMessagesNotVisible", "Average"),
        ("del", "ApproximateNumberOfMessagesDelayed", "Average"),
        ("sent", "NumberOfMessagesSent", "Sum"),
        ("recv", "NumberOfMessagesReceived", "Sum"),
        ("gone", "NumberOfMessagesDeleted", "Sum"),
        ("age", "ApproximateAgeOfOldestMessage", "Maximum"),
    ];
    let queries: Vec<_> = metrics.iter().map(|(id, metric, stat)| (id.to_string(), name, *metric, *stat)).collect();
    let mut series = visit.series(&queries, seconds, period).await;
    let mut take = |id: &str| series.remove(id).unwrap_or_default();
    // Sums per period, drawn per minute whatever the period.
    let per_minute = |points: Vec<(i64, f64)>| points.into_iter().map(|(t, v)| (t, v * 60.0 / period as f64)).collect();
    let now = super::now_millis() / 1000;
    let start = now - seconds;
    let depth = chart::line_chart(
        "Messages",
        &[("visible", take("vis")), ("in flight", take("inf")), ("delayed", take("del"))],
        start,
        now,
        "",
    );
    let traffic = chart::line_chart(
        "Per minute",
        &[
            ("sent", per_minute(take("sent"))),
            ("received", per_minute(take("recv"))),
            ("deleted", per_minute(take("gone"))),
        ],
        start,
        now,
        "",
    );
    let age = chart::line_chart("Age of the oldest message (seconds)", &[("oldest", take("age"))], start, now, " s");

    let sources = dead_letter_sources(visit, &queue_url, 1000).await;
    let tags = match visit
        .call(Request::ListQueueTags(holdfast_api::types::ListQueueTagsRequest { queue_url: queue_url.clone() }))
        .await
    {
        Ok(Response::ListQueueTags(r)) => r.tags.unwrap_or_default(),
        _ => Default::default(),
    };
    let u = url(name);
    let mut body = format!("<h1>{} {}</h1>", esc(name), badges(&attributes, !sources.is_empty()));
    let _ = write!(
        body,
        "<p class=\"actions\"><a class=\"button\" href=\"/console/queues/{u}/messages\">Send and poll messages</a> \
         {redrive}<a class=\"button danger\" href=\"/console/queues/{u}/purge\">Purge</a> \
         <a class=\"button danger\" href=\"/console/queues/{u}/delete\">Delete</a></p>\
         <p class=\"url\">URL <code>{url}</code> · ARN <code>{arn}</code></p>",
        redrive = if sources.is_empty() {
            String::new()
        } else {
            format!("<a class=\"button\" href=\"/console/queues/{u}/redrive\">Redrive dead letters</a> ")
        },
        url = esc(&queue_url),
        arn = esc(attributes.get("QueueArn").map(String::as_str).unwrap_or("")),
    );
    // The live part: counts and charts.
    let _ = write!(
        body,
        "<section data-live><dl class=\"counts\"><div><dt>Visible</dt><dd id=\"count-visible\">{}</dd></div>\
         <div><dt>In flight</dt><dd id=\"count-in-flight\">{}</dd></div><div><dt>Delayed</dt><dd id=\"count-delayed\">{}</dd></div></dl>\
         <nav class=\"ranges\">",
        count(&attributes, "ApproximateNumberOfMessages"),
        count(&attributes, "ApproximateNumberOfMessagesNotVisible"),
        count(&attributes, "ApproximateNumberOfMessagesDelayed"),
    );
    for (label, _, _) in RANGES {
        let class = if label == range { " class=\"current\"" } else { "" };
        let _ = write!(body, "<a{class} href=\"/console/queues/{u}?range={label}\">{label}</a> ");
    }
    let _ = write!(body, "</nav><div class=\"charts\">{depth}{traffic}{age}</div></section>");

    // Dead-letter relations, both ways.
    body.push_str("<h2>Dead letters</h2><ul class=\"relations\">");
    match redrive_target(&attributes) {
        Some((arn, max)) => {
            let target = name_of(&arn);
            let _ = write!(
                body,
                "<li>Messages received more than {} times move to <a href=\"/console/queues/{}\">{}</a>.</li>",
                esc(&max),
                url(target),
                esc(target)
            );
        }
        None => body.push_str("<li>No dead-letter queue.</li>"),
    }
    if !sources.is_empty() {
        body.push_str("<li>Dead-letter queue of: ");
        let links: Vec<String> = sources
            .iter()
            .map(|s| format!("<a href=\"/console/queues/{}\">{}</a>", url(name_of(s)), esc(name_of(s))))
            .collect();
        body.push_str(&links.join(", "));
        body.push_str("</li>");
    }
    body.push_str("</ul>");

    // Attributes, editable.
    let choices = dead_letter_choices(visit, Some(name)).await;
    let _ = write!(
        body,
        "<h2>Attributes</h2><form method=\"post\" action=\"/console/queues/{u}/attributes\" class=\"card\">{}{}\
         <button type=\"submit\">Save attributes</button></form>",
        html::csrf_field(&visit.csrf),
        attribute_fields(&attributes, false, &choices)
    );
    body.push_str("<details><summary>All attributes</summary><table class=\"attributes\">");
    for (key, value) in &attributes {
        let _ = write!(body, "<tr><th>{}</th><td><code>{}</code></td></tr>", esc(key), esc(value));
    }
    body.push_str("</table></details>");

    // Tags.
    body.push_str("<h2>Tags</h2><table class=\"tags\">");
    for (key, value) in &tags {
        let _ = write!(
            body,
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            esc(key),
            esc(value),
            html::button_form(&format!("/console/queues/{u}/untag"), "Remove", &visit.csrf, &[("key", key)], "small")
        );
    }
    let _ = write!(
        body,
        "</table><form method=\"post\" action=\"/console/queues/{u}/tags\" class=\"pair\">{}{}{}\
         <button type=\"submit\">Add tag</button></form>",
        html::csrf_field(&visit.csrf),
        html::input("key", "Key", "", ""),
        html::input("value", "Value", "", "")
    );
    View::page(name, body)
}

pub async fn set_attributes(visit: &Visit<'_>, name: &str) -> View {
    let (queue_url, current) = match queue_or_page(visit, name).await {
        Ok(found) => found,
        Err(view) => return view,
    };
    let changed = attributes_from_form(visit, Some(&current));
    let back = format!("/console/queues/{}", url(name));
    if changed.is_empty() {
        return redirect(&back, "Nothing changed.");
    }
    let names: Vec<&str> = changed.keys().map(String::as_str).collect();
    let notice = format!("Saved {}.", names.join(", "));
    let request = holdfast_api::types::SetQueueAttributesRequest { queue_url, attributes: changed.clone() };
    match visit.call(Request::SetQueueAttributes(request)).await {
        Ok(_) => redirect(&back, &notice),
        Err(error) => failed(name, &back, &error),
    }
}

pub async fn tag(visit: &Visit<'_>, name: &str) -> View {
    let back = format!("/console/queues/{}", url(name));
    let key = visit.field("key").trim().to_owned();
    let tags = BTreeMap::from([(key.clone(), visit.field("value").to_owned())]);
    let request = |queue_url| Request::TagQueue(holdfast_api::types::TagQueueRequest { queue_url, tags });
    visit.act(name, &back, request, |_| format!("Tagged {key}.")).await
}

pub async fn untag(visit: &Visit<'_>, name: &str) -> View {
    let back = format!("/console/queues/{}", url(name));
    let key = visit.field("key").to_owned();
    let tag_keys = vec![key.clone()];
    let request = |queue_url| Request::UntagQueue(holdfast_api::types::UntagQueueRequest { queue_url, tag_keys });
    visit.act(name, &back, request, |_| format!("Removed tag {key}.")).await
}

/// The page that asks before purging or deleting: the queue's name must be typed.
pub fn confirm(visit: &Visit<'_>, name: &str, action: &str) -> View {
    let (title, warning) = match action {
        "purge" => ("Purge", "Every message in the queue is deleted. This cannot be undone."),
        _ => ("Delete", "The queue and every message in it are deleted. This cannot be undone."),
    };
    let body = format!(
        "<h1>{title} {n}?</h1><p>{warning}</p><form method=\"post\" action=\"/console/queues/{u}/{action}\" class=\"card narrow\">{csrf}\
         {field}<button type=\"submit\" class=\"danger\">{title} queue</button> <a href=\"/console/queues/{u}\">Cancel</a></form>",
        n = esc(name),
        u = url(name),
        csrf = html::csrf_field(&visit.csrf),
        field = html::input("confirm", &format!("Type the queue's name, {name}, to confirm"), "", ""),
    );
    View::page(format!("{title} {name}"), body)
}

fn confirmed(visit: &Visit<'_>, name: &str, action: &str) -> Option<View> {
    (visit.field("confirm").trim() != name).then(|| {
        let mut view = confirm(visit, name, action);
        if let View::Page { status, notice, .. } = &mut view {
            *status = 400;
            *notice = Some((true, "The name typed is not the queue's name; nothing was done.".into()));
        }
        view
    })
}

pub async fn purge(visit: &Visit<'_>, name: &str) -> View {
    if let Some(view) = confirmed(visit, name, "purge") {
        return view;
    }
    let back = format!("/console/queues/{}", url(name));
    let request = |queue_url| Request::PurgeQueue(holdfast_api::types::PurgeQueueRequest { queue_url });
    visit.act(name, &back, request, |_| format!("Purged {name}.")).await
}

pub async fn delete(visit: &Visit<'_>, name: &str) -> View {
    if let Some(view) = confirmed(visit, name, "delete") {
        return view;
    }
    let back = format!("/console/queues/{}", url(name));
    let queue_url = match visit.queue_url_or_failed(name, &back).await {
        Ok(queue_url) => queue_url,
        Err(view) => return view,
    };
    match visit.call(Request::DeleteQueue(holdfast_api::types::DeleteQueueRequest { queue_url })).await {
        // The queue's page is gone with it: back to the list.
        Ok(_) => redirect("/console", &format!("Deleted {name}.")),
        Err(error) => failed(name, &back, &error),
    }
}
