//! The command-line client: a plain SQS client (aws-sdk-sqs), so it works against holdfast or any
//! SQS endpoint, AWS included.
//!
//! Exit codes: 0 success; 1 the service answered with an error; 2 bad usage (clap); 3 the endpoint
//! could not be reached or answered something that is not SQS.

mod messages;
mod queues;

use std::process::ExitCode;

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use clap::Args;

pub use messages::{ReceiveArgs, SendArgs};
pub use queues::QueueCommand;

/// Options every client command takes.
#[derive(Args, Clone, Debug)]
pub struct ClientArgs {
    /// The SQS endpoint.
    #[arg(long, global = true, env = "HOLDFAST_ENDPOINT_URL", default_value = "http://127.0.0.1:9324")]
    pub endpoint_url: String,
    /// Region to sign requests for.
    #[arg(long, global = true, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Print JSON instead of plain text.
    #[arg(long, global = true)]
    pub json: bool,
}

pub enum Invocation {
    Queue(QueueCommand),
    Send(SendArgs),
    Receive(ReceiveArgs),
}

/// A command's failure, already mapped to an exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub exit_code: u8,
}

impl<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug> From<SdkError<E, R>> for Failure {
    fn from(error: SdkError<E, R>) -> Self {
        match &error {
            SdkError::ServiceError(service) => {
                let inner = service.err();
                Failure {
                    message: format!(
                        "{}: {}",
                        inner.code().unwrap_or("Error"),
                        inner.message().unwrap_or("(no message)")
                    ),
                    exit_code: 1,
                }
            }
            other => Failure { message: format!("cannot reach the SQS endpoint: {}", describe(other)), exit_code: 3 },
        }
    }
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

pub type CommandResult = Result<(), Failure>;

pub fn run(invocation: Invocation) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let result = runtime.block_on(async {
        match invocation {
            Invocation::Queue(command) => queues::run(command).await,
            Invocation::Send(args) => messages::send(args).await,
            Invocation::Receive(args) => messages::receive(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("holdfast: {}", failure.message);
            ExitCode::from(failure.exit_code)
        }
    }
}

/// An SQS client for `args`. Credentials come from the usual AWS sources (environment, shared
/// profile files); with none configured, placeholder credentials are used, which holdfast accepts.
pub async fn client(args: &ClientArgs) -> aws_sdk_sqs::Client {
    let has_aws_credentials = std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
        || std::env::var_os("AWS_PROFILE").is_some()
        || std::env::var_os("HOME").is_some_and(|home| std::path::Path::new(&home).join(".aws/credentials").exists());
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(args.region.clone()))
        .endpoint_url(&args.endpoint_url);
    if !has_aws_credentials {
        loader = loader.credentials_provider(Credentials::new("holdfast", "holdfast", None, None, "holdfast-cli"));
    }
    aws_sdk_sqs::Client::new(&loader.load().await)
}

/// A queue given by name or URL, resolved to its URL.
pub async fn queue_url(client: &aws_sdk_sqs::Client, queue: &str) -> Result<String, Failure> {
    if queue.starts_with("http://") || queue.starts_with("https://") {
        return Ok(queue.to_string());
    }
    let output = client.get_queue_url().queue_name(queue).send().await?;
    output.queue_url.ok_or_else(|| Failure { message: "GetQueueUrl answered no QueueUrl".into(), exit_code: 3 })
}

/// Parses `KEY=VALUE` arguments.
pub fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}
