//! `TestServer`: the real `holdfast` binary on port 0 in a temporary data directory, and real
//! aws-sdk-sqs clients pointed at it. Every test uses unique queue names, so tests never depend on
//! each other or their order.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};

pub struct TestServer {
    child: Option<Child>,
    pub url: String,
    pub data_dir: PathBuf,
    extra_args: Vec<String>,
    /// Keeps the temporary directory alive for the server's lifetime.
    _temp: Option<tempfile::TempDir>,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_holdfast")
}

impl TestServer {
    /// A durable (SQLite) server in a fresh temporary directory.
    pub fn start() -> TestServer {
        TestServer::start_with(&[])
    }

    pub fn start_with(extra_args: &[&str]) -> TestServer {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = temp.path().join("data");
        let mut server = TestServer::start_in(&data_dir, extra_args);
        server._temp = Some(temp);
        server
    }

    /// A server on `data_dir`, which survives the server (for restart tests).
    pub fn start_in(data_dir: &Path, extra_args: &[&str]) -> TestServer {
        let extra_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let (child, url) = spawn(data_dir, &extra_args);
        TestServer { child: Some(child), url, data_dir: data_dir.to_path_buf(), extra_args, _temp: None }
    }

    pub fn client(&self) -> aws_sdk_sqs::Client {
        client_for(&self.url)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
    }

    /// SIGTERM and wait for a graceful exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        wait_with_timeout(&mut child, Duration::from_secs(30)).expect("server exits after SIGTERM")
    }

    /// Starts the server again on the same data directory (and port 0: the URL may change).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        let (child, url) = spawn(&self.data_dir, &self.extra_args);
        self.child = Some(child);
        self.url = url;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(data_dir: &Path, extra_args: &[String]) -> (Child, String) {
    let (child, first_line) = launch(data_dir, extra_args);
    let line = first_line.recv_timeout(Duration::from_secs(60)).ok().flatten().unwrap_or_else(|| {
        let log = std::fs::read_to_string(data_dir.with_extension("log")).unwrap_or_default();
        panic!("holdfast did not report its address; its log:\n{log}")
    });
    let url = line.strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line: {line}")).to_string();
    (child, url)
}

/// Starts `holdfast serve` on `data_dir` (log next to it, `<data_dir>.log`) and hands back the first
/// line it prints, `listening on http://…`, or `None` if it closes stdout without one.
fn launch(data_dir: &Path, extra_args: &[String]) -> (Child, mpsc::Receiver<Option<String>>) {
    std::fs::create_dir_all(data_dir).expect("data dir");
    let log = std::fs::File::create(data_dir.with_extension("log")).expect("log file");
    let mut child = Command::new(binary())
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra_args)
        .env("HOLDFAST_LOG", std::env::var("HOLDFAST_TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn holdfast");
    let stdout = child.stdout.take().expect("stdout");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = sender.send(lines.next().and_then(Result::ok));
        // Keep draining so the server never blocks on a full pipe.
        for _ in lines {}
    });
    (child, receiver)
}

pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn client_for(url: &str) -> aws_sdk_sqs::Client {
    client_in_region(url, "us-east-1")
}

/// A client that signs for `region`, and so acts in it.
pub fn client_in_region(url: &str, region: &str) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(url)
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// A queue name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub async fn create_queue(client: &aws_sdk_sqs::Client, name: &str) -> String {
    client.create_queue().queue_name(name).send().await.expect("create queue").queue_url.expect("queue url")
}

// ---- Helpers for the crash and fault tests (`tests/crash.rs`, `tests/faults.rs`). ----

impl TestServer {
    /// Whether the server process is still alive (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// The server's log (its standard error) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }
}

/// A client that never retries and bounds every call, for tests that record exactly which calls
/// were acknowledged: a silent retry could turn one attempted send into two messages.
pub fn client_without_retries(url: &str) -> aws_sdk_sqs::Client {
    use aws_sdk_sqs::config::retry::RetryConfig;
    use aws_sdk_sqs::config::timeout::TimeoutConfig;
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// How a server run that was expected to stop by itself ended.
#[derive(Debug)]
pub struct Exited {
    /// `None` if it was still running at the deadline (it was then killed).
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Exited {
    /// Whether it got as far as serving (it printed its address).
    pub fn served(&self) -> bool {
        self.stdout.contains("listening on")
    }
}

/// Runs `holdfast serve` on `data_dir` and waits up to `timeout` for it to exit by itself (for
/// startup failures). A server still running at the deadline is killed.
pub fn serve_until_exit(data_dir: &Path, extra_args: &[&str], timeout: Duration) -> Exited {
    use std::io::Read;
    let mut child = Command::new(binary())
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra_args)
        .env("HOLDFAST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn holdfast");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = wait_with_timeout(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    Exited { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() }
}

/// Stamps out each listed `async fn name(server: TestServer)` once per storage engine, as
/// `sqlite::name` and `memory::name`, so every rule is checked on every engine.
#[macro_export]
macro_rules! on_every_engine {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::TestServer::start()).await
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::TestServer::start_with(&["--storage", "memory"])).await
                }
            )*
        }
    };
}

pub async fn create_queue_with(client: &aws_sdk_sqs::Client, name: &str, attributes: &[(&str, &str)]) -> String {
    let mut request = client.create_queue().queue_name(name);
    for (key, value) in attributes {
        request = request.attributes(aws_sdk_sqs::types::QueueAttributeName::from(*key), *value);
    }
    request.send().await.expect("create queue").queue_url.expect("queue url")
}

pub async fn queue_arn(client: &aws_sdk_sqs::Client, url: &str) -> String {
    let attributes = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes
        .expect("attributes");
    attributes[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone()
}

/// A client signing with the given key (for servers started with `--credentials`).
pub fn signed_client(url: &str, key: &str, secret: &str) -> aws_sdk_sqs::Client {
    use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new(key, secret, None, None, "test"))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// The error code of a failed SDK call, whatever the operation.
pub fn error_code<E, R>(error: aws_sdk_sqs::error::SdkError<E, R>) -> Option<String>
where
    aws_sdk_sqs::Error: From<aws_sdk_sqs::error::SdkError<E, R>>,
{
    let error: aws_sdk_sqs::Error = error.into();
    aws_sdk_sqs::error::ProvideErrorMetadata::code(&error).map(str::to_string)
}

/// Starts `holdfast serve` on `data_dir` like `TestServer::start_in`, but reports a server that
/// exits (or neither serves nor exits within `timeout`) instead of panicking: for startups that
/// may legitimately be refused. The error carries the server's log as `stderr`.
pub fn try_start_in(data_dir: &Path, extra_args: &[&str], timeout: Duration) -> Result<TestServer, Exited> {
    let log_path = data_dir.with_extension("log");
    let owned_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
    let (mut child, receiver) = launch(data_dir, &owned_args);
    let first = receiver.recv_timeout(timeout);
    if let Ok(Some(line)) = &first {
        if let Some(url) = line.strip_prefix("listening on ") {
            return Ok(TestServer {
                child: Some(child),
                url: url.to_string(),
                data_dir: data_dir.to_path_buf(),
                extra_args: owned_args,
                _temp: None,
            });
        }
    }
    // Closed stdout without an address: it is exiting. Still running at the deadline: stuck.
    let status = match first {
        Ok(_) => wait_with_timeout(&mut child, timeout),
        Err(_) => None,
    };
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = match &first {
        Ok(Some(line)) => line.clone(),
        _ => String::new(),
    };
    Err(Exited { status, stdout, stderr: std::fs::read_to_string(&log_path).unwrap_or_default() })
}
