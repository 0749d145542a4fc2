//! `holdfast`: the server (`holdfast serve`, or bare `holdfast`) and a command-line SQS client.

mod auth;
mod baseline;
mod cli;
mod config;
mod http;
mod metrics;
mod server;
mod tls;
mod write_timeout;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{ServeArgs, Settings};

#[derive(Parser)]
#[command(name = "holdfast", version, about = "A self-hosted message queue that speaks the Amazon SQS API")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand, holdfast serves.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default). Boxed: its many settings would make every command as large.
    Serve(Box<ServeArgs>),
    /// Create, list, inspect, purge and delete queues.
    Queue(cli::QueueCommand),
    /// Send a message, or one message per line of standard input.
    Send(cli::SendArgs),
    /// Receive (and optionally delete) messages.
    Receive(cli::ReceiveArgs),
    /// The lead form (`form serve`) and its queue-to-database worker (`form work`).
    #[cfg(feature = "forms")]
    Form(holdfast_forms::FormArgs),
    /// Drain a queue of JSON messages into a database table or an HTTP back end.
    #[cfg(feature = "forms")]
    Sink(holdfast_forms::SinkArgs),
    /// Load-test any SQS endpoint (holdfast, another SQS-compatible server, AWS).
    Bench(holdfast_bench::BenchArgs),
    /// A no-op SQS endpoint with canned answers: the HTTP stack's ceiling, for `holdfast bench`.
    #[command(hide = true)]
    Baseline(baseline::BaselineArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(*args),
        Some(Command::Queue(command)) => cli::run(cli::Invocation::Queue(command)),
        Some(Command::Send(args)) => cli::run(cli::Invocation::Send(args)),
        Some(Command::Receive(args)) => cli::run(cli::Invocation::Receive(args)),
        #[cfg(feature = "forms")]
        Some(Command::Form(args)) => holdfast_forms::run_form(args),
        #[cfg(feature = "forms")]
        Some(Command::Sink(args)) => holdfast_forms::run_sink(args),
        Some(Command::Bench(args)) => holdfast_bench::run(args),
        Some(Command::Baseline(args)) => baseline::run(args),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let settings = match Settings::resolve(&args) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("holdfast: {error:#}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(server::run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Once, on standard error (where the logs go too).
            eprintln!("holdfast: {error:#}");
            ExitCode::FAILURE
        }
    }
}
