//! Messages: send one (body, attributes, delay, group and deduplication ids), poll (peek or
//! receive), look at what came back, delete.

use std::fmt::Write as _;

use base64::Engine as _;
use holdfast_api::types::{MessageAttributeMap, MessageAttributeValue};
use holdfast_api::{Request, Response};

use super::html::{self, esc, url};
use super::{failed, queue_or_page, View, Visit};

/// Message attribute rows on the send form.
const ATTRIBUTE_ROWS: usize = 3;
/// How long a peeked message is hidden between being received and being made visible again.
const PEEK_VISIBILITY_SECONDS: i64 = 30;

/// The messages page: the send form, the poll form, and the messages a poll returned.
pub async fn page(visit: &Visit<'_>, name: &str, polled: Option<(String, Vec<holdfast_api::types::Message>)>) -> View {
    let (_, attributes) = match queue_or_page(visit, name).await {
        Ok(found) => found,
        Err(view) => return view,
    };
    let fifo = attributes.get("FifoQueue").map(String::as_str) == Some("true");
    let u = url(name);
    let csrf = html::csrf_field(&visit.csrf);
    let mut body =
        format!("<h1>Messages: <a href=\"/console/queues/{u}\">{}</a></h1><div class=\"columns\">", esc(name));

    // Send.
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/console/queues/{u}/send\" class=\"card\"><h2>Send a message</h2>{csrf}{}",
        html::textarea("MessageBody", "Body", "", 6)
    );
    if fifo {
        body.push_str(&html::input("MessageGroupId", "Message group id (required)", "", ""));
        body.push_str(&html::input(
            "MessageDeduplicationId",
            "Deduplication id",
            "",
            "empty with content-based deduplication",
        ));
    } else {
        body.push_str(&html::input("DelaySeconds", "Delay (seconds, 0–900)", "", "empty for the queue's delay"));
        body.push_str(&html::input("MessageGroupId", "Message group id (fair queues)", "", ""));
    }
    body.push_str("<fieldset><legend>Message attributes</legend>");
    let types = ["String", "Number", "Binary"].map(|t| (t.to_owned(), t.to_owned()));
    for i in 0..ATTRIBUTE_ROWS {
        let _ = write!(
            body,
            "<div class=\"triple\">{}{}{}</div>",
            html::input(&format!("attr_name_{i}"), "Name", "", ""),
            html::select(&format!("attr_type_{i}"), "Type", &types, "String"),
            html::input(&format!("attr_value_{i}"), "Value", "", if i == 0 { "Binary: base64" } else { "" })
        );
    }
    body.push_str("</fieldset><button type=\"submit\">Send message</button></form>");

    // Poll.
    let modes = [
        ("peek", "Peek: look, then make the messages visible again at once"),
        ("receive", "Receive: keep them in flight for the visibility timeout"),
    ]
    .map(|(v, t)| (v.to_owned(), t.to_owned()));
    let mode = visit.form.get("mode").map(String::as_str).unwrap_or("peek");
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/console/queues/{u}/poll\" class=\"card\"><h2>Poll for messages</h2>{csrf}{}{}{}\
         <p class=\"hint\">Either way each message counts a receive, so a message polled more often than its \
         queue's maximum receives moves to the dead-letter queue, as in the AWS console.</p>\
         <button type=\"submit\">Poll</button></form></div>",
        html::select("mode", "Mode", &modes, mode),
        html::input("MaxNumberOfMessages", "Messages (1–10)", visit.form.get("MaxNumberOfMessages").map(String::as_str).unwrap_or("10"), ""),
        html::input("WaitTimeSeconds", "Wait (seconds, 0–20)", visit.form.get("WaitTimeSeconds").map(String::as_str).unwrap_or("1"), ""),
    );

    if let Some((mode, messages)) = polled {
        let _ = write!(
            body,
            "<h2>Polled ({}): {} message{}</h2>",
            esc(&mode),
            messages.len(),
            if messages.len() == 1 { "" } else { "s" }
        );
        if messages.is_empty() {
            body.push_str("<p class=\"empty\">No messages were available.</p>");
        }
        body.push_str("<div class=\"messages\">");
        for message in &messages {
            body.push_str(&message_card(visit, name, message));
        }
        body.push_str("</div>");
    }
    View::page(format!("Messages: {name}"), body)
}

/// One polled message: its body (pretty-printed when JSON), attributes, system attributes and a
/// delete button.
fn message_card(visit: &Visit<'_>, name: &str, message: &holdfast_api::types::Message) -> String {
    let pretty = serde_json::from_str::<serde_json::Value>(&message.body)
        .ok()
        .filter(|v| v.is_object() || v.is_array())
        .and_then(|v| serde_json::to_string_pretty(&v).ok());
    let json_class = if pretty.is_some() { " json" } else { "" };
    let mut out = format!(
        "<article class=\"message\" data-message-id=\"{id}\"><h3>{id}</h3><pre class=\"body{json_class}\">{body}</pre>",
        id = esc(&message.message_id),
        body = esc(pretty.as_deref().unwrap_or(&message.body)),
    );
    if let Some(attributes) = message.message_attributes.as_ref().filter(|a| !a.is_empty()) {
        out.push_str("<h4>Message attributes</h4><table class=\"attributes\">");
        for (key, value) in attributes {
            let shown = match (&value.string_value, &value.binary_value) {
                (Some(text), _) => text.clone(),
                (None, Some(blob)) => base64::engine::general_purpose::STANDARD.encode(blob.as_bytes()),
                _ => String::new(),
            };
            let _ = write!(
                out,
                "<tr><th>{}</th><td>{}</td><td><code>{}</code></td></tr>",
                esc(key),
                esc(&value.data_type),
                esc(&shown)
            );
        }
        out.push_str("</table>");
    }
    if let Some(system) = message.attributes.as_ref().filter(|a| !a.is_empty()) {
        out.push_str("<details><summary>System attributes</summary><table class=\"attributes\">");
        for (key, value) in system {
            let shown = match key.as_str() {
                "SentTimestamp" | "ApproximateFirstReceiveTimestamp" => value
                    .parse::<i64>()
                    .map(|ms| format!("{value} ({})", holdfast_api::calendar::format_iso8601_millis(ms)))
                    .unwrap_or_else(|_| value.clone()),
                _ => value.clone(),
            };
            let _ = write!(out, "<tr><th>{}</th><td><code>{}</code></td></tr>", esc(key), esc(&shown));
        }
        out.push_str("</table></details>");
    }
    out.push_str(&html::button_form(
        &format!("/console/queues/{}/delete-message", url(name)),
        "Delete",
        &visit.csrf,
        &[("receipt_handle", &message.receipt_handle)],
        "danger small",
    ));
    out.push_str("</article>");
    out
}

/// The message attributes of the send form's filled rows.
fn message_attributes(visit: &Visit<'_>) -> Result<MessageAttributeMap, String> {
    let mut attributes = MessageAttributeMap::new();
    for i in 0..ATTRIBUTE_ROWS {
        let name = visit.field(&format!("attr_name_{i}")).trim();
        if name.is_empty() {
            continue;
        }
        let data_type = visit.field(&format!("attr_type_{i}")).trim();
        let value = visit.field(&format!("attr_value_{i}"));
        let mut attribute = MessageAttributeValue { data_type: data_type.to_owned(), ..Default::default() };
        if data_type.starts_with("Binary") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|_| format!("The value of attribute {name} is not base64."))?;
            attribute.binary_value = Some(holdfast_api::Blob(bytes));
        } else {
            attribute.string_value = Some(value.to_owned());
        }
        attributes.insert(name.to_owned(), attribute);
    }
    Ok(attributes)
}

/// An optional whole number from the form; a malformed one is passed on as -1 so the service
/// answers its own error about it.
fn number_field(visit: &Visit<'_>, name: &str) -> Option<i64> {
    let text = visit.field(name).trim();
    (!text.is_empty()).then(|| text.parse().unwrap_or(-1))
}

pub async fn send(visit: &Visit<'_>, name: &str) -> View {
    let back = format!("/console/queues/{}/messages", url(name));
    let attributes = match message_attributes(visit) {
        Ok(attributes) => attributes,
        Err(message) => {
            let error = holdfast_api::sqs_error!(InvalidParameterValue, "{message}");
            return failed(name, &back, &error);
        }
    };
    let optional = |name: &str| Some(visit.field(name).trim().to_owned()).filter(|v| !v.is_empty());
    let request = |queue_url| {
        Request::SendMessage(holdfast_api::types::SendMessageRequest {
            queue_url,
            message_body: visit.field("MessageBody").to_owned(),
            delay_seconds: number_field(visit, "DelaySeconds"),
            message_attributes: (!attributes.is_empty()).then_some(attributes),
            message_system_attributes: None,
            message_deduplication_id: optional("MessageDeduplicationId"),
            message_group_id: optional("MessageGroupId"),
        })
    };
    let notice = |answer| match answer {
        Response::SendMessage(sent) => format!("Sent message {}.", sent.message_id.unwrap_or_default()),
        _ => unreachable!("SendMessage answers SendMessage"),
    };
    visit.act(name, &back, request, notice).await
}

pub async fn poll(visit: &Visit<'_>, name: &str) -> View {
    let back = format!("/console/queues/{}/messages", url(name));
    let queue_url = match visit.queue_url_or_failed(name, &back).await {
        Ok(queue_url) => queue_url,
        Err(view) => return view,
    };
    let peek = visit.field("mode") != "receive";
    let request = holdfast_api::types::ReceiveMessageRequest {
        queue_url: queue_url.clone(),
        message_system_attribute_names: Some(vec!["All".into()]),
        message_attribute_names: Some(vec!["All".into()]),
        max_number_of_messages: number_field(visit, "MaxNumberOfMessages"),
        wait_time_seconds: number_field(visit, "WaitTimeSeconds"),
        visibility_timeout: peek.then_some(PEEK_VISIBILITY_SECONDS),
        ..Default::default()
    };
    let messages = match visit.call(Request::ReceiveMessage(request)).await {
        Ok(Response::ReceiveMessage(received)) => received.messages.unwrap_or_default(),
        Ok(_) => unreachable!("ReceiveMessage answers ReceiveMessage"),
        Err(error) => return failed(name, &back, &error),
    };
    if peek {
        for message in &messages {
            let request = holdfast_api::types::ChangeMessageVisibilityRequest {
                queue_url: queue_url.clone(),
                receipt_handle: message.receipt_handle.clone(),
                visibility_timeout: 0,
            };
            if let Err(error) = visit.call(Request::ChangeMessageVisibility(request)).await {
                tracing::debug!(code = error.code.query_code(), "console: a peeked message stays hidden");
            }
        }
    }
    page(visit, name, Some((if peek { "peek" } else { "receive" }.to_owned(), messages))).await
}

pub async fn delete(visit: &Visit<'_>, name: &str) -> View {
    let back = format!("/console/queues/{}/messages", url(name));
    let receipt_handle = visit.field("receipt_handle").to_owned();
    let request =
        |queue_url| Request::DeleteMessage(holdfast_api::types::DeleteMessageRequest { queue_url, receipt_handle });
    visit.act(name, &back, request, |_| "Deleted the message.".to_owned()).await
}
