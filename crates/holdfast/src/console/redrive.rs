//! Dead-letter redrive: start a message move task from a dead-letter queue (to its source queues
//! or another queue, at a chosen rate), watch its progress, cancel it.

use std::fmt::Write as _;

use holdfast_api::{Request, Response};

use super::html::{self, esc, url};
use super::{failed, queue_or_page, redirect, View, Visit};

pub async fn page(visit: &Visit<'_>, name: &str) -> View {
    let (queue_url, attributes) = match queue_or_page(visit, name).await {
        Ok(found) => found,
        Err(view) => return view,
    };
    let arn = attributes.get("QueueArn").cloned().unwrap_or_default();
    let u = url(name);
    let sources = super::queues::dead_letter_sources(visit, &queue_url, 1000).await;
    let source_names: Vec<&str> = sources.iter().map(|s| super::name_of(s)).collect();
    let mut destinations = vec![(String::new(), format!("its source queues ({})", source_names.join(", ")))];
    let arn_prefix = arn.strip_suffix(name).unwrap_or("").to_owned();
    for other in visit.queue_names(5_000).await.unwrap_or_default() {
        if other != name {
            destinations.push((format!("{arn_prefix}{other}"), other));
        }
    }
    let mut body = format!(
        "<h1>Redrive: <a href=\"/console/queues/{u}\">{}</a></h1>\
         <p>{} message(s) in this dead-letter queue.</p>\
         <form method=\"post\" action=\"/console/queues/{u}/redrive\" class=\"card narrow\">{}{}{}\
         <button type=\"submit\">Start redrive</button></form>",
        esc(name),
        esc(attributes.get("ApproximateNumberOfMessages").map(String::as_str).unwrap_or("0")),
        html::csrf_field(&visit.csrf),
        html::select("destination", "Move the messages to", &destinations, ""),
        html::input("rate", "Messages per second (1–500)", "", "empty: as fast as the server allows"),
    );
    let tasks = match visit
        .call(Request::ListMessageMoveTasks(holdfast_api::types::ListMessageMoveTasksRequest {
            source_arn: arn.clone(),
            max_results: Some(10),
        }))
        .await
    {
        Ok(Response::ListMessageMoveTasks(r)) => r.results.unwrap_or_default(),
        Ok(_) => Vec::new(),
        Err(error) => return failed(name, &format!("/console/queues/{u}"), &error),
    };
    body.push_str("<h2>Redrives</h2><section data-live>");
    if tasks.is_empty() {
        body.push_str("<p class=\"empty\">No redrive has run from this queue.</p>");
    } else {
        body.push_str(
            "<table class=\"tasks\"><thead><tr><th>Status</th><th>To</th><th class=\"n\">Moved</th>\
             <th class=\"n\">Of</th><th class=\"n\">Rate</th><th></th></tr></thead><tbody>",
        );
        for task in &tasks {
            let status = task.status.as_deref().unwrap_or("");
            let to = task.destination_arn.as_deref().map(super::name_of).unwrap_or("source queues");
            let cancel = match (&task.task_handle, status) {
                (Some(handle), "RUNNING") => html::button_form(
                    &format!("/console/queues/{u}/cancel-redrive"),
                    "Cancel",
                    &visit.csrf,
                    &[("task_handle", handle)],
                    "danger small",
                ),
                _ => String::new(),
            };
            let reason = task.failure_reason.as_deref().map(|r| format!(" ({})", esc(r))).unwrap_or_default();
            let _ = write!(
                body,
                "<tr class=\"task\"><td class=\"status\">{}{reason}</td><td>{}</td><td class=\"n moved\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td>{cancel}</td></tr>",
                esc(status),
                esc(to),
                task.approximate_number_of_messages_moved.unwrap_or(0),
                task.approximate_number_of_messages_to_move.map(|n| n.to_string()).unwrap_or_default(),
                task.max_number_of_messages_per_second.map(|n| format!("{n}/s")).unwrap_or_else(|| "system".into()),
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("</section>");
    View::page(format!("Redrive {name}"), body)
}

pub async fn start(visit: &Visit<'_>, name: &str) -> View {
    let back = format!("/console/queues/{}/redrive", url(name));
    let (_, attributes) = match queue_or_page(visit, name).await {
        Ok(found) => found,
        Err(view) => return view,
    };
    let rate = visit.field("rate").trim();
    let request = holdfast_api::types::StartMessageMoveTaskRequest {
        source_arn: attributes.get("QueueArn").cloned().unwrap_or_default(),
        destination_arn: Some(visit.field("destination").trim().to_owned()).filter(|d| !d.is_empty()),
        max_number_of_messages_per_second: (!rate.is_empty()).then(|| rate.parse().unwrap_or(-1)),
    };
    match visit.call(Request::StartMessageMoveTask(request)).await {
        Ok(_) => redirect(&back, "Redrive started."),
        Err(error) => failed(name, &back, &error),
    }
}

pub async fn cancel(visit: &Visit<'_>, name: &str) -> View {
    let back = format!("/console/queues/{}/redrive", url(name));
    let request =
        holdfast_api::types::CancelMessageMoveTaskRequest { task_handle: visit.field("task_handle").to_owned() };
    match visit.call(Request::CancelMessageMoveTask(request)).await {
        Ok(Response::CancelMessageMoveTask(r)) => redirect(
            &back,
            &format!(
                "Redrive cancelled after moving {} message(s).",
                r.approximate_number_of_messages_moved.unwrap_or(0)
            ),
        ),
        Ok(_) => redirect(&back, "Redrive cancelled."),
        Err(error) => failed(name, &back, &error),
    }
}
