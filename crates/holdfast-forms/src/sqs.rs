//! The queue side every command shares: connection flags, the SQS client, and setting up a queue
//! with its dead-letter queue when they do not exist yet.
//!
//! Only the public SQS API is used (aws-sdk-sqs), so the same code runs against holdfast or Amazon
//! SQS. Setup only ever creates what is missing; it never rewrites the attributes of a queue that
//! someone else created, it only warns when such a queue has no dead-letter queue.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::QueueAttributeName;
use clap::Args;

/// Where the queue is and how to reach it.
#[derive(Args, Clone, Debug)]
pub struct QueueArgs {
    /// The SQS endpoint (holdfast, or https://sqs.REGION.amazonaws.com for AWS). Without it:
    /// HOLDFAST_ENDPOINT_URL, AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL, then http://127.0.0.1:9324.
    #[arg(long, env = "HOLDFAST_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Region to sign requests for.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// The dead-letter queue created with the queue when it does not exist (default: QUEUE-dlq,
    /// or QUEUE-dlq.fifo for a FIFO queue).
    #[arg(long)]
    pub dead_letter_queue: Option<String>,
    /// A message received this many times without being stored moves to the dead-letter queue
    /// (applies when the queue is created here).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_receives: u32,
    /// Visibility timeout, in seconds, of a queue created here: how long a received message stays
    /// hidden before it is delivered again if it was not deleted.
    #[arg(long, default_value_t = 30)]
    pub visibility_timeout: u32,
    /// Use the queue as it is: never create it or its dead-letter queue.
    #[arg(long)]
    pub no_create: bool,
}

impl QueueArgs {
    /// The endpoint, with the AWS SDKs' precedence of variables (as the `holdfast` CLI).
    pub fn endpoint(&self) -> String {
        let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        self.endpoint_url
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_SQS"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| "http://127.0.0.1:9324".to_string())
    }
}

/// The SQS client for `args`. Credentials come from the usual AWS sources (environment, profile
/// files, instance roles); with none configured, placeholder credentials are used, which holdfast
/// accepts. `attempts` bounds the SDK's own retries and `operation_timeout` each whole call
/// (retries included), so a caller never waits longer than it chose to.
pub async fn client(args: &QueueArgs, attempts: u32, operation_timeout: Duration) -> aws_sdk_sqs::Client {
    let has_aws_credentials = std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
        || std::env::var_os("AWS_PROFILE").is_some()
        || std::env::var_os("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
        || std::env::var_os("HOME").is_some_and(|home| std::path::Path::new(&home).join(".aws/credentials").exists());
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(args.region.clone()))
        .endpoint_url(args.endpoint())
        .retry_config(RetryConfig::standard().with_max_attempts(attempts.max(1)))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_timeout(operation_timeout)
                .build(),
        );
    if !has_aws_credentials {
        loader = loader.credentials_provider(Credentials::new("holdfast", "holdfast", None, None, "holdfast-forms"));
    }
    aws_sdk_sqs::Client::new(&loader.load().await)
}

/// An SDK error as one line: the service's code and message, or the chain of transport causes.
pub fn describe<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(service) = error {
        let inner = service.err();
        return format!("{}: {}", inner.code().unwrap_or("Error"), inner.message().unwrap_or("(no message)"));
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn is_service_code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>, codes: &[&str]) -> bool {
    matches!(error, SdkError::ServiceError(service) if service.err().code().is_some_and(|code| codes.contains(&code)))
}

const NOT_FOUND: &[&str] = &["AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"];

/// The queue's URL: looked up, or, unless `--no-create`, created with its dead-letter queue when
/// it does not exist.
pub async fn ensure_queue(client: &aws_sdk_sqs::Client, queue: &str, args: &QueueArgs) -> Result<String, String> {
    if queue.starts_with("http://") || queue.starts_with("https://") {
        return Ok(queue.to_string());
    }
    match client.get_queue_url().queue_name(queue).send().await {
        Ok(output) => {
            let url = output.queue_url.ok_or("GetQueueUrl answered no QueueUrl")?;
            warn_without_dead_letter_queue(client, &url).await;
            return Ok(url);
        }
        Err(error) if is_service_code(&error, NOT_FOUND) && !args.no_create => {}
        Err(error) => return Err(format!("cannot find queue {}: {}", queue, describe(&error))),
    }
    let fifo = queue.ends_with(".fifo");
    let dlq_name = args.dead_letter_queue.clone().unwrap_or_else(|| match queue.strip_suffix(".fifo") {
        Some(stem) => format!("{stem}-dlq.fifo"),
        None => format!("{}-dlq", queue),
    });
    let mut dlq_attributes = HashMap::from([(QueueAttributeName::MessageRetentionPeriod, "1209600".to_string())]);
    if fifo {
        dlq_attributes.insert(QueueAttributeName::FifoQueue, "true".into());
    }
    // CreateQueue is idempotent for identical attributes, so two processes setting up the same
    // queue at once (the form and the worker) both succeed.
    let dlq_url = client
        .create_queue()
        .queue_name(&dlq_name)
        .set_attributes(Some(dlq_attributes))
        .send()
        .await
        .map_err(|error| format!("cannot create dead-letter queue {dlq_name}: {}", describe(&error)))?
        .queue_url
        .ok_or("CreateQueue answered no QueueUrl")?;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|error| format!("cannot read dead-letter queue {dlq_name}: {}", describe(&error)))?
        .attributes
        .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
        .ok_or("GetQueueAttributes answered no QueueArn")?;
    let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": args.max_receives.to_string()});
    let mut attributes = HashMap::from([
        (QueueAttributeName::RedrivePolicy, redrive.to_string()),
        (QueueAttributeName::VisibilityTimeout, args.visibility_timeout.to_string()),
        (QueueAttributeName::MessageRetentionPeriod, "1209600".to_string()),
    ]);
    if fifo {
        attributes.insert(QueueAttributeName::FifoQueue, "true".into());
    }
    let url = match client.create_queue().queue_name(queue).set_attributes(Some(attributes)).send().await {
        Ok(output) => output.queue_url.ok_or("CreateQueue answered no QueueUrl")?,
        // Someone else created it first with other attributes: use theirs.
        Err(error) if is_service_code(&error, &["QueueAlreadyExists", "QueueNameExists"]) => client
            .get_queue_url()
            .queue_name(queue)
            .send()
            .await
            .map_err(|error| format!("cannot find queue {}: {}", queue, describe(&error)))?
            .queue_url
            .ok_or("GetQueueUrl answered no QueueUrl")?,
        Err(error) => return Err(format!("cannot create queue {}: {}", queue, describe(&error))),
    };
    tracing::info!(
        "queue {} ready, dead-letter queue {dlq_name} after {} receives, visibility timeout {}s",
        queue,
        args.max_receives,
        args.visibility_timeout
    );
    Ok(url)
}

async fn warn_without_dead_letter_queue(client: &aws_sdk_sqs::Client, url: &str) {
    let attributes =
        client.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::RedrivePolicy).send().await;
    if let Ok(output) = attributes {
        let has_redrive = output.attributes.is_some_and(|a| a.contains_key(&QueueAttributeName::RedrivePolicy));
        if !has_redrive {
            tracing::warn!(
                "queue {url} has no dead-letter queue (RedrivePolicy): a message that cannot be stored will be retried until it expires"
            );
        }
    }
}

/// What happens to a message the worker cannot store, in words for its log: it is never deleted,
/// so either the queue's redrive policy moves it to a dead-letter queue after enough receives, or
/// it is delivered again after every visibility timeout until its retention period ends.
pub async fn rejection_fate(client: &aws_sdk_sqs::Client, url: &str, retry_after: Option<i32>) -> String {
    let output = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .attribute_names(QueueAttributeName::MessageRetentionPeriod)
        .send()
        .await;
    let attributes = match output {
        Ok(output) => output.attributes.unwrap_or_default(),
        Err(_) => return "it stays in the queue and is delivered again later".to_string(),
    };
    let redrive = attributes
        .get(&QueueAttributeName::RedrivePolicy)
        .and_then(|policy| serde_json::from_str::<serde_json::Value>(policy).ok());
    if let Some(redrive) = redrive {
        let target = redrive["deadLetterTargetArn"].as_str().unwrap_or("?");
        let dlq = target.rsplit(':').next().unwrap_or(target);
        let receives = match &redrive["maxReceiveCount"] {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        return format!("it stays in the queue and moves to the dead-letter queue {dlq} after {receives} receives");
    }
    let every = retry_after
        .map(|seconds| seconds.to_string())
        .or_else(|| attributes.get(&QueueAttributeName::VisibilityTimeout).cloned())
        .unwrap_or_else(|| "?".into());
    let retention = attributes
        .get(&QueueAttributeName::MessageRetentionPeriod)
        .and_then(|seconds| seconds.parse::<u64>().ok())
        .map(
            |seconds| {
                if seconds % 86_400 == 0 {
                    format!("{} days", seconds / 86_400)
                } else {
                    format!("{seconds} s")
                }
            },
        )
        .unwrap_or_else(|| "its retention period".into());
    format!(
        "the queue has no dead-letter queue, so it stays there and is delivered again every {every} s until it expires ({retention} after it was sent)"
    )
}

/// The queue's approximate backlog: (visible, in flight).
pub async fn backlog(client: &aws_sdk_sqs::Client, url: &str) -> Option<(u64, u64)> {
    let output = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .ok()?;
    let attributes = output.attributes?;
    let read = |name: &QueueAttributeName| attributes.get(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Some((
        read(&QueueAttributeName::ApproximateNumberOfMessages),
        read(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    ))
}

/// Whether `url` names a FIFO queue (its name ends in `.fifo`).
pub fn is_fifo(url: &str) -> bool {
    url.ends_with(".fifo")
}
