//! The command-line client: a plain SQS client (aws-sdk-sqs), so it works against holdfast or any
//! SQS endpoint, AWS included.
//!
//! Exit codes: 0 success; 1 the service answered with an error; 2 bad usage (clap); 3 the endpoint
//! could not be reached or answered something that is not SQS.

/// Prints a line on standard output, like `println!`, except that a reader that went away
/// (`holdfast receive q -n 50 | head -2`) ends the command quietly with status 0, as Unix tools
/// do, instead of a panic.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::write_line(format_args!($($arg)*)) };
}

mod messages;
mod output;
mod queues;

pub(crate) fn write_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(line).and_then(|()| stdout.write_all(b"\n")) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("holdfast: writing to standard output: {error}");
        std::process::exit(1);
    }
}

/// Writes `bytes` then `end` on standard output, with `write_line`'s handling of a closed pipe.
pub(crate) fn write_raw(bytes: &[u8], end: &[u8]) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_all(bytes).and_then(|()| stdout.write_all(end)) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("holdfast: writing to standard output: {error}");
        std::process::exit(1);
    }
}

use std::process::ExitCode;

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use clap::Args;

pub use messages::{MessageCommand, PeekArgs, ReceiveArgs, SendArgs};
pub use output::Format;
pub use queues::QueueCommand;

/// Options every client command takes.
#[derive(Args, Clone, Debug)]
pub struct ClientArgs {
    /// The SQS endpoint. Without it: HOLDFAST_ENDPOINT_URL, AWS_ENDPOINT_URL_SQS,
    /// AWS_ENDPOINT_URL, the AWS profile's endpoint_url, then http://127.0.0.1:9324.
    #[arg(long, global = true, env = "HOLDFAST_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Region to sign requests for. Without it: AWS_REGION, AWS_DEFAULT_REGION, the AWS
    /// profile's region, then us-east-1.
    #[arg(long, global = true, env = "AWS_REGION")]
    pub region: Option<String>,
    /// How results are printed on standard output: text (plain lines), json, or table.
    #[arg(long, global = true, value_enum, env = "HOLDFAST_OUTPUT", default_value_t = Format::Text)]
    pub output: Format,
    /// Shorthand for --output json.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress and no summary on standard error (errors are still printed); a bulk send prints
    /// no message ids either.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

impl ClientArgs {
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            self.output
        }
    }
}

pub enum Invocation {
    Queue(QueueCommand),
    Send(SendArgs),
    Receive(ReceiveArgs),
    Peek(PeekArgs),
    Message(MessageCommand),
}

/// A command's failure, already mapped to an exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub exit_code: u8,
}

impl<E: ProvideErrorMetadata + std::error::Error + 'static> From<SdkError<E, HttpResponse>> for Failure {
    fn from(error: SdkError<E, HttpResponse>) -> Self {
        match &error {
            SdkError::ServiceError(service) => {
                let inner = service.err();
                match inner.code() {
                    Some(code) => Failure {
                        message: format!("{code}: {}", inner.message().unwrap_or("(no message)")),
                        exit_code: 1,
                    },
                    // No SQS error code: something other than SQS answered. Say what it was.
                    None => Failure { message: not_sqs(service.raw()), exit_code: 3 },
                }
            }
            other => Failure { message: format!("cannot reach the SQS endpoint: {}", describe(other)), exit_code: 3 },
        }
    }
}

/// What a server that is not SQS answered: its status and the start of its body.
fn not_sqs(response: &HttpResponse) -> String {
    let body = response.body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
    let excerpt: String = body.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(200).collect();
    let status = response.status().as_u16();
    if excerpt.is_empty() {
        format!("the endpoint is not an SQS service: it answered HTTP {status} with no body")
    } else {
        format!("the endpoint is not an SQS service: it answered HTTP {status}: {excerpt}")
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
            Invocation::Peek(args) => messages::peek(args).await,
            Invocation::Message(command) => messages::message(command).await,
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
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &args.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if !has_aws_credentials {
        loader = loader.credentials_provider(Credentials::new("holdfast", "holdfast", None, None, "holdfast-cli"));
    }
    let shared = loader.load().await;
    let mut config = aws_sdk_sqs::config::Builder::from(&shared);
    if shared.region().is_none() {
        config = config.region(Region::new(DEFAULT_REGION));
    }
    config = config.endpoint_url(endpoint_url(args.endpoint_url.as_deref(), shared.endpoint_url(), |name| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }));
    aws_sdk_sqs::Client::from_conf(config.build())
}

const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:9324";
const DEFAULT_REGION: &str = "us-east-1";

/// The endpoint, with the AWS SDKs' precedence: the flag (or HOLDFAST_ENDPOINT_URL), the
/// service-specific variable, the global one, the shared config's, and holdfast's default
/// address last (where the SDKs would go to AWS itself).
fn endpoint_url(flag: Option<&str>, profile: Option<&str>, env: impl Fn(&str) -> Option<String>) -> String {
    flag.map(str::to_owned)
        .or_else(|| env("AWS_ENDPOINT_URL_SQS"))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .or_else(|| profile.map(str::to_owned))
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned())
}

/// A queue given by name or URL, resolved to its URL.
pub async fn queue_url(client: &aws_sdk_sqs::Client, queue: &str) -> Result<String, Failure> {
    if queue.starts_with("http://") || queue.starts_with("https://") {
        return Ok(queue.to_string());
    }
    let output = client.get_queue_url().queue_name(queue).send().await.map_err(|error| {
        let missing = error.as_service_error().is_some_and(|e| e.is_queue_does_not_exist());
        let mut failure = Failure::from(error);
        if missing {
            failure.message = format!("queue {queue} does not exist ({})", failure.message);
        }
        failure
    })?;
    output.queue_url.ok_or_else(|| Failure { message: "GetQueueUrl answered no QueueUrl".into(), exit_code: 3 })
}

/// Parses `KEY=VALUE` arguments.
pub fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_follows_the_aws_precedence() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        let both = env(&[("AWS_ENDPOINT_URL_SQS", "http://sqs:1"), ("AWS_ENDPOINT_URL", "http://all:2")]);
        assert_eq!(endpoint_url(Some("http://flag:3"), None, both), "http://flag:3");
        assert_eq!(endpoint_url(None, Some("http://profile:4"), both), "http://sqs:1");
        assert_eq!(endpoint_url(None, None, env(&[("AWS_ENDPOINT_URL", "http://all:2")])), "http://all:2");
        assert_eq!(endpoint_url(None, Some("http://profile:4"), env(&[])), "http://profile:4");
        assert_eq!(endpoint_url(None, None, env(&[])), DEFAULT_ENDPOINT);
    }
}
