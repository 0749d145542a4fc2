//! Init hooks (`--init-dir`): once the server listens, apply the directory's declarations files
//! and run its scripts, one at a time in name order, as LocalStack's ready hooks do. Until they
//! are done `/ready` answers 503, so a compose file or a CI job that waits for readiness finds
//! its queues in place.
//!
//! - `*.toml`: `[[queue]]` declarations (the config file's syntax): queues with attributes,
//!   tags and a `Policy`, created or brought up to date.
//! - an executable file, or any `*.sh`: run with the directory as its working directory and
//!   `HOLDFAST_ENDPOINT_URL`, `AWS_ENDPOINT_URL`, `AWS_REGION` and `AWS_DEFAULT_REGION` pointing
//!   at this server, so `aws sqs …`, boto3 and `holdfast queue …` reach it unconfigured. Its
//!   output goes to the log, a line at a time; one that runs past `--init-timeout` is killed.
//! - anything else (a README, a hidden file) is skipped.
//!
//! A step that fails is logged at `error` and the next one still runs (as LocalStack does); the
//! closing line says how many failed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast_core::Sqs;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;

use crate::config::read_declarations;

/// Where the init hooks are, as `/ready` sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitState {
    /// Running this step (a file name).
    Running(String),
    /// Finished (or there was nothing to run).
    Done,
}

/// What the scripts need to reach this server.
pub struct Target {
    pub endpoint_url: String,
    pub region: String,
    /// For a TLS server: the certificate the scripts' clients should trust.
    pub ca_bundle: Option<PathBuf>,
}

/// One step of the directory, in the order it runs.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Declarations(PathBuf),
    Script(PathBuf),
}

/// The steps in `dir`, by file name. Directories, hidden files and non-executable files other
/// than `*.toml` and `*.sh` are not steps.
fn steps(dir: &Path) -> anyhow::Result<Vec<Step>> {
    use anyhow::Context;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the init directory {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .filter(|path| path.is_file() && !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .filter_map(|path| match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Some(Step::Declarations(path)),
            Some("sh") => Some(Step::Script(path)),
            _ if is_executable(&path) => Some(Step::Script(path)),
            _ => None,
        })
        .collect())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o111 != 0)
}

/// Runs every step of `dir`, publishing progress on `state`; ends with `InitState::Done`.
pub async fn run(dir: PathBuf, sqs: Arc<Sqs>, target: Target, timeout: Duration, state: watch::Sender<InitState>) {
    let steps = match steps(&dir) {
        Ok(steps) => steps,
        Err(error) => {
            tracing::error!("init: {error:#}");
            state.send_replace(InitState::Done);
            return;
        }
    };
    let started = Instant::now();
    let mut failed = Vec::new();
    for step in &steps {
        let (path, result) = match step {
            Step::Declarations(path) => {
                state.send_replace(InitState::Running(name(path)));
                (path, declare(path, &sqs).await)
            }
            Step::Script(path) => {
                state.send_replace(InitState::Running(name(path)));
                (path, script(path, &dir, &target, timeout).await)
            }
        };
        if let Err(error) = result {
            tracing::error!(step = %name(path), "init: {error:#}");
            failed.push(name(path));
        }
    }
    let took = started.elapsed().as_secs_f64();
    if failed.is_empty() {
        tracing::info!(steps = steps.len(), "init: done in {took:.1} s");
    } else {
        tracing::error!(steps = steps.len(), failed = ?failed, "init: done in {took:.1} s, {} failed", failed.len());
    }
    state.send_replace(InitState::Done);
}

fn name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

async fn declare(path: &Path, sqs: &Arc<Sqs>) -> anyhow::Result<()> {
    let queues = read_declarations(path)?;
    crate::server::declare_queues(sqs, &queues).await?;
    tracing::info!(step = %name(path), queues = queues.len(), "init: declarations applied");
    Ok(())
}

/// Longest line of script output logged as it is; the rest of a longer line is cut.
const MAX_LOG_LINE: usize = 4096;

async fn script(path: &Path, dir: &Path, target: &Target, timeout: Duration) -> anyhow::Result<()> {
    let mut command = if is_executable(path) {
        tokio::process::Command::new(path)
    } else {
        let mut command = tokio::process::Command::new("sh");
        command.arg(path);
        command
    };
    command
        .current_dir(dir)
        .env("HOLDFAST_ENDPOINT_URL", &target.endpoint_url)
        .env("AWS_ENDPOINT_URL", &target.endpoint_url)
        .env("AWS_REGION", &target.region)
        .env("AWS_DEFAULT_REGION", &target.region)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Without credentials of their own, scripts sign with placeholders: an unauthenticated
    // server accepts them, and one that checks says so in the script's output.
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && std::env::var_os("AWS_PROFILE").is_none() {
        command.env("AWS_ACCESS_KEY_ID", "holdfast").env("AWS_SECRET_ACCESS_KEY", "holdfast");
    }
    if let Some(bundle) = &target.ca_bundle {
        command.env("AWS_CA_BUNDLE", bundle);
    }
    let step = name(path);
    tracing::info!(step = %step, "init: running");
    let started = Instant::now();
    let mut child = command.spawn().map_err(|e| anyhow::anyhow!("cannot start {}: {e}", path.display()))?;
    let stdout = child.stdout.take().map(|out| tokio::spawn(log_lines(out, step.clone(), false)));
    let stderr = child.stderr.take().map(|err| tokio::spawn(log_lines(err, step.clone(), true)));
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status?,
        Err(_) => {
            let _ = child.kill().await;
            anyhow::bail!("still running after {} s: killed", timeout.as_secs());
        }
    };
    for task in [stdout, stderr].into_iter().flatten() {
        let _ = task.await;
    }
    anyhow::ensure!(status.success(), "exited with {status}");
    tracing::info!(step = %step, "init: finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Logs a script's output a line at a time, each cut at `MAX_LOG_LINE` bytes so a script that
/// prints without line breaks costs bounded memory.
async fn log_lines(stream: impl AsyncRead + Unpin, step: String, stderr: bool) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut cut = false;
        loop {
            let buffer = match reader.fill_buf().await {
                Ok([]) => break,
                Ok(buffer) => buffer,
                Err(_) => return,
            };
            let (take, end) = match buffer.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buffer.len(), false),
            };
            let room = MAX_LOG_LINE.saturating_sub(line.len());
            line.extend_from_slice(&buffer[..take.min(room)]);
            cut |= take > room;
            reader.consume(take);
            if end {
                break;
            }
        }
        if line.is_empty() && !cut {
            return;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        let marker = if cut { " …" } else { "" };
        if stderr {
            tracing::warn!(step = %step, "{text}{marker}");
        } else {
            tracing::info!(step = %step, "{text}{marker}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_run_in_name_order_and_skip_what_is_not_a_step() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, "").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("20-queues.toml", 0o644);
        write("10-first.sh", 0o644);
        write("30-binary", 0o755);
        write("README.md", 0o644);
        write(".hidden.sh", 0o755);
        std::fs::create_dir(dir.path().join("40-dir.sh")).unwrap();
        let names: Vec<(bool, String)> = steps(dir.path())
            .unwrap()
            .into_iter()
            .map(|step| match step {
                Step::Declarations(p) => (true, name(&p)),
                Step::Script(p) => (false, name(&p)),
            })
            .collect();
        assert_eq!(
            names,
            [(false, "10-first.sh".into()), (true, "20-queues.toml".into()), (false, "30-binary".into())]
        );
    }
}
