//! holdfast-forms: a lead form that keeps every submission when its back end is down, built the
//! way SQS is meant to be used.
//!
//! - `holdfast form serve` ([`front`]): serves the form and puts each valid submission on a queue.
//! - `holdfast form work` ([`sink::work`]): long-polls the queue, writes each lead into SQLite,
//!   MySQL/MariaDB or PostgreSQL, then deletes the message.
//! - `holdfast sink` ([`sink::sink`]): the same worker for any queue of JSON messages, into a table
//!   or POSTed to an HTTP back end.
//!
//! Architecture Invariant: this crate depends on no `holdfast-*` crate. It talks to the queue only
//! through the public SQS API (aws-sdk-sqs), so it runs unchanged against holdfast or Amazon SQS.
//! The `holdfast` binary only parses its arguments and calls [`run_form`] / [`run_sink`].
//!
//! The consumer engine ([`consumer`]) is public: a program with its own [`consumer::Destination`]
//! gets batching, at-least-once bookkeeping, backoff, scaling and graceful shutdown for free (the
//! `holdfast orders` services, [`orders`], use it).

pub mod consumer;
pub mod db;
pub mod front;
mod http_sink;
pub mod lead;
pub mod orders;
pub mod page;
pub mod records;
pub mod sink;
pub mod sqs;

use std::process::ExitCode;

use clap::{Args, Subcommand};

pub use front::ServeArgs;
pub use sink::{SinkArgs, WorkArgs};

/// `holdfast form …`.
#[derive(Args, Clone, Debug)]
pub struct FormArgs {
    #[command(subcommand)]
    pub command: FormCommand,
}

#[derive(Subcommand, Clone, Debug)]
pub enum FormCommand {
    /// Serve the enquiry form; each submission becomes one message on the queue.
    Serve(ServeArgs),
    /// Store the queued submissions in a database (SQLite, MySQL/MariaDB, PostgreSQL).
    Work(WorkArgs),
}

/// Runs `holdfast form …` to completion: sets up logging and a runtime, returns the exit code
/// (0 after a clean shutdown, 1 when it had to stop, 2 for bad arguments).
pub fn run_form(args: FormArgs) -> ExitCode {
    run(async move {
        match args.command {
            FormCommand::Serve(args) => front::serve(args).await,
            FormCommand::Work(args) => sink::work(args).await.map(|_| ()),
        }
    })
}

/// Runs `holdfast sink` to completion; exit codes as for [`run_form`].
pub fn run_sink(args: SinkArgs) -> ExitCode {
    run(async move { sink::sink(args).await.map(|_| ()) })
}

fn run(task: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    run_logged(task, "info")
}

/// Runs `task` with logs at `default_filter` unless `HOLDFAST_LOG` says otherwise.
fn run_logged(task: impl std::future::Future<Output = Result<(), String>>, default_filter: &str) -> ExitCode {
    init_logging(default_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("holdfast: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("holdfast: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to standard error; `HOLDFAST_LOG` sets the filter (default `default_filter`).
fn init_logging(default_filter: &str) {
    let filter = std::env::var("HOLDFAST_LOG").unwrap_or_else(|_| default_filter.into());
    let filter =
        tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
