//! `holdfast queue create|list|delete|attributes|purge`.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::QueueAttributeName;
use clap::{Args, Subcommand};

use super::{client, key_value, queue_url, ClientArgs, CommandResult};

#[derive(Args, Debug)]
pub struct QueueCommand {
    #[command(subcommand)]
    action: QueueAction,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand, Debug)]
enum QueueAction {
    /// Create a queue (or return the existing one with the same attributes); prints its URL.
    Create {
        name: String,
        /// A queue attribute, e.g. VisibilityTimeout=60 (repeatable).
        #[arg(short = 'a', long = "attribute", value_parser = key_value)]
        attributes: Vec<(String, String)>,
        /// A tag, e.g. team=web (repeatable).
        #[arg(short = 't', long = "tag", value_parser = key_value)]
        tags: Vec<(String, String)>,
    },
    /// List queue URLs.
    List {
        /// Only queues whose name starts with this.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Delete a queue and its messages.
    Delete { queue: String },
    /// Show all attributes of a queue, or set some with --set.
    Attributes {
        queue: String,
        /// Set an attribute, e.g. --set VisibilityTimeout=60 (repeatable).
        #[arg(long = "set", value_parser = key_value)]
        set: Vec<(String, String)>,
    },
    /// Delete every message in a queue.
    Purge { queue: String },
}

pub async fn run(command: QueueCommand) -> CommandResult {
    let json = command.client.json;
    let client = client(&command.client).await;
    match command.action {
        QueueAction::Create { name, attributes, tags } => {
            let mut request = client.create_queue().queue_name(&name);
            for (key, value) in attributes {
                request = request.attributes(QueueAttributeName::from(key.as_str()), value);
            }
            for (key, value) in tags {
                request = request.tags(key, value);
            }
            let url = request.send().await?.queue_url.unwrap_or_default();
            print_value(json, "QueueUrl", &url);
        }
        QueueAction::List { prefix } => {
            let mut urls = Vec::new();
            let mut pages =
                client.list_queues().set_queue_name_prefix(prefix).max_results(1000).into_paginator().send();
            while let Some(page) = pages.next().await {
                urls.extend(page?.queue_urls.unwrap_or_default());
            }
            if json {
                out!("{}", serde_json::json!({ "QueueUrls": urls }));
            } else {
                urls.iter().for_each(|url| out!("{url}"));
            }
        }
        QueueAction::Delete { queue } => {
            let url = queue_url(&client, &queue).await?;
            client.delete_queue().queue_url(&url).send().await?;
            print_done(json, "Deleted", &url);
        }
        QueueAction::Attributes { queue, set } => {
            let url = queue_url(&client, &queue).await?;
            if set.is_empty() {
                let output = client
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(QueueAttributeName::All)
                    .send()
                    .await?;
                let attributes: BTreeMap<String, String> = output
                    .attributes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_string(), v))
                    .collect();
                let tags: BTreeMap<String, String> = client
                    .list_queue_tags()
                    .queue_url(&url)
                    .send()
                    .await?
                    .tags
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                if json {
                    out!("{}", serde_json::json!({ "Attributes": attributes, "Tags": tags }));
                } else {
                    attributes.iter().for_each(|(k, v)| out!("{k}={v}"));
                    // Tags after the attributes, marked so a script can tell them apart.
                    tags.iter().for_each(|(k, v)| out!("tag:{k}={v}"));
                }
            } else {
                let mut request = client.set_queue_attributes().queue_url(&url);
                for (key, value) in set {
                    request = request.attributes(QueueAttributeName::from(key.as_str()), value);
                }
                request.send().await?;
                print_done(json, "Updated", &url);
            }
        }
        QueueAction::Purge { queue } => {
            let url = queue_url(&client, &queue).await?;
            client.purge_queue().queue_url(&url).send().await?;
            print_done(json, "Purged", &url);
        }
    }
    Ok(())
}

/// What a command that changes a queue did: with --json one object, else nothing (as the AWS
/// CLI prints nothing for these).
fn print_done(json: bool, what: &str, queue_url: &str) {
    if json {
        out!("{}", serde_json::json!({ what: true, "QueueUrl": queue_url }));
    }
}

fn print_value(json: bool, key: &str, value: &str) {
    if json {
        out!("{}", serde_json::json!({ key: value }));
    } else {
        out!("{value}");
    }
}
