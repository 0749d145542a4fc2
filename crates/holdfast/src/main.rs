//! `holdfast`: the server (`holdfast serve`, or bare `holdfast`) and a command-line SQS client.

mod auth;
mod baseline;
mod cli;
mod config;
mod console;
mod health;
mod http;
mod init;
mod metrics;
mod otlp;
mod server;
mod tls;
mod write_timeout;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{ServeArgs, Settings};

#[derive(Parser)]
#[command(name = "holdfast", version, about = "A self-hosted message queue that speaks the Amazon SQS API")]
#[command(args_conflicts_with_subcommands = true)]
#[command(after_help = "Client commands exit 0 when done (also when a reader such as `head` stops reading), \
1 when the service answered an error or some messages failed, 2 for bad usage, 3 when no SQS endpoint answered.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand, holdfast serves.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    // Boxed: its many settings would make every command as large.
    /// Run the server (the default).
    Serve(Box<ServeArgs>),
    /// Create, list, inspect, change, tag, purge, redrive and delete queues.
    Queue(cli::QueueCommand),
    /// Send a message, or one message per line of standard input.
    Send(cli::SendArgs),
    /// Receive (and optionally delete) messages.
    Receive(cli::ReceiveArgs),
    /// Look at waiting messages without taking them: receive, then make them visible again.
    Peek(cli::PeekArgs),
    /// Act on received messages by receipt handle: delete, change visibility.
    Message(cli::MessageCommand),
    /// The lead form (`form serve`) and its queue-to-database worker (`form work`).
    #[cfg(feature = "forms")]
    Form(holdfast_forms::FormArgs),
    /// Drain a queue of JSON or CSV messages into a database table or an HTTP back end.
    #[cfg(feature = "forms")]
    Sink(Box<holdfast_forms::SinkArgs>),
    /// The fan-out example: an order service, payment, inventory and notification on SQS queues.
    #[cfg(feature = "forms")]
    Orders(holdfast_forms::orders::OrdersArgs),
    /// Load-test any SQS endpoint (holdfast, another SQS-compatible server, AWS).
    Bench(holdfast_bench::BenchArgs),
    /// Ask a running server (or form) whether it is healthy (/health) or ready (/ready): exit 0
    /// on yes, for HEALTHCHECKs and scripts.
    Health(health::HealthArgs),
    /// Print a shell completion script, e.g. `holdfast completions bash > /etc/bash_completion.d/holdfast`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
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
        Some(Command::Peek(args)) => cli::run(cli::Invocation::Peek(args)),
        Some(Command::Message(command)) => cli::run(cli::Invocation::Message(command)),
        Some(Command::Health(args)) => health::run(args),
        Some(Command::Completions { shell }) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "holdfast", &mut script);
            cli::write_raw(&script, b"");
            ExitCode::SUCCESS
        }
        #[cfg(feature = "forms")]
        Some(Command::Form(args)) => holdfast_forms::run_form(args),
        #[cfg(feature = "forms")]
        Some(Command::Sink(args)) => holdfast_forms::run_sink(*args),
        #[cfg(feature = "forms")]
        Some(Command::Orders(args)) => holdfast_forms::orders::run_orders(args),
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
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match settings.log_format {
        config::LogFormat::Text => logs.with_ansi(ansi).init(),
        config::LogFormat::Json => logs.json().with_current_span(true).with_span_list(true).init(),
    }
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

#[cfg(test)]
mod tests {
    /// Clap's own consistency checks (unique flags, valid defaults) over every subcommand, which
    /// otherwise only run when that subcommand is used.
    #[test]
    fn the_command_line_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
