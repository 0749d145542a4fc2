//! Real parts for the forms tests: the `holdfast` binary (server, `form serve`, `form work`,
//! `sink`) as child processes, a plain HTTP/1.1 client, SQS clients, and database checks.
//!
//! The binary is `target/<profile>/holdfast` next to the test executable, brought up to date with
//! `cargo build -p holdfast` once per test process (a no-op when it is current), or taken from
//! `HOLDFAST_BIN` when that is set.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use holdfast_forms::db::Database;

/// The target directory's profile folder (`target/debug`): the test executable is in its `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf()
}

/// The up-to-date `holdfast` binary.
pub fn holdfast_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("HOLDFAST_BIN") {
            return PathBuf::from(bin);
        }
        let profile = profile_dir();
        let target = profile.parent().expect("target dir").to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command.args(["build", "--quiet", "-p", "holdfast", "--bin", "holdfast"]).env("CARGO_TARGET_DIR", &target);
        if profile.file_name().is_some_and(|name| name == "release") {
            command.arg("--release");
        }
        let status = command.current_dir(env!("CARGO_MANIFEST_DIR")).status().expect("run cargo build");
        assert!(status.success(), "cargo build -p holdfast failed");
        profile.join("holdfast")
    })
}

/// A directory for artifacts a person may want to look at (screenshots, logs).
pub fn output_dir() -> PathBuf {
    let dir = profile_dir().parent().expect("target dir").join("test-output");
    std::fs::create_dir_all(&dir).expect("test-output dir");
    dir
}

/// A running `holdfast …` child process with its standard error in a log file.
pub struct Proc {
    child: Option<Child>,
    pub log_path: PathBuf,
    /// The first line it printed on standard output, if it was waited for.
    pub first_line: Option<String>,
}

impl Proc {
    /// Starts `holdfast ARGS`; if `wait_for_line`, waits for its first line of standard output.
    pub fn start(args: &[&str], log_path: &Path, wait_for_line: bool) -> Proc {
        let log = std::fs::File::create(log_path).expect("log file");
        let mut child = Command::new(holdfast_bin())
            .args(args)
            .env("HOLDFAST_LOG", std::env::var("HOLDFAST_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn holdfast");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = sender.send(lines.next().and_then(Result::ok));
            for _ in lines {}
        });
        let mut proc = Proc { child: Some(child), log_path: log_path.to_path_buf(), first_line: None };
        if wait_for_line {
            let line = receiver.recv_timeout(Duration::from_secs(60)).ok().flatten();
            proc.first_line =
                Some(line.unwrap_or_else(|| panic!("holdfast {args:?} printed nothing; log:\n{}", proc.log())));
        }
        proc
    }

    /// The URL from a `... listening on http://ADDR` first line.
    pub fn url(&self) -> String {
        let line = self.first_line.as_deref().expect("first line");
        line[line.find("http://").expect("a URL")..].trim().to_string()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| child.try_wait().expect("try_wait").is_none())
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
    }

    /// SIGTERM, then wait for it to exit by itself.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        wait(&mut child, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("no exit after SIGTERM; log:\n{}", self.log()))
    }

    /// Waits for it to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        match wait(&mut child, timeout) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("did not exit within {timeout:?}; log:\n{}", self.log())
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A holdfast server in a temporary directory, plus a scratch directory for the test.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub server: Proc,
    pub endpoint: String,
}

impl Env {
    pub fn start() -> Env {
        Env::start_with(&[])
    }

    /// A server that requires every request to be signed with the key every process of these
    /// tests gets from its environment (`test` / `test`).
    pub fn start_secured() -> Env {
        Env::start_with(&[("test", "test")])
    }

    fn start_with(keys: &[(&str, &str)]) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("queue-data");
        let mut args = vec!["serve".to_string(), "--bind".into(), "127.0.0.1:0".into(), "--data-dir".into()];
        args.push(data.to_str().unwrap().into());
        if !keys.is_empty() {
            let credentials = dir.path().join("credentials.toml");
            let entries: String = keys
                .iter()
                .map(|(id, secret)| format!("[[key]]\naccess_key_id = \"{id}\"\nsecret_access_key = \"{secret}\"\n"))
                .collect();
            std::fs::write(&credentials, entries).expect("credentials file");
            args.extend(["--credentials".to_string(), credentials.to_str().unwrap().into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = Proc::start(&args, &dir.path().join("server.log"), true);
        let endpoint = server.url();
        Env { dir, server, endpoint }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn sqlite_url(&self, name: &str) -> String {
        format!("sqlite://{}", self.path(name).display())
    }

    /// `holdfast form serve` on a free port.
    pub fn form(&self, queue: &str, extra: &[&str]) -> Proc {
        let mut args =
            vec!["form", "serve", "--bind", "127.0.0.1:0", "--endpoint-url", &self.endpoint, "--queue", queue];
        args.extend_from_slice(extra);
        Proc::start(&args, &self.path(&format!("form-{}.log", unique("f"))), true)
    }

    /// `holdfast form work` (fast settings for tests; `extra` may add or override flags).
    pub fn worker(&self, queue: &str, database_url: &str, extra: &[&str]) -> Proc {
        let mut args = vec![
            "form",
            "work",
            "--endpoint-url",
            &self.endpoint,
            "--queue",
            queue,
            "--database-url",
            database_url,
            "--wait-time",
            "1",
            "--scale-interval",
            "1",
            "--report-interval",
            "2",
            "--max-backoff",
            "2",
        ];
        args.extend_from_slice(extra);
        Proc::start(&args, &self.path(&format!("worker-{}.log", unique("w"))), false)
    }

    pub fn client(&self) -> aws_sdk_sqs::Client {
        client_for(&self.endpoint)
    }
}

pub fn client_for(url: &str) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Creates `queue` (and its dead-letter queue) the way the worker would, with test-sized timings.
pub fn create_queue(endpoint: &str, queue: &str, visibility_timeout: u32, max_receives: u32) -> String {
    runtime().block_on(async {
        let args = holdfast_forms::sqs::QueueArgs {
            endpoint_url: Some(endpoint.into()),
            region: "us-east-1".into(),
            dead_letter_queue: None,
            max_receives,
            visibility_timeout,
            no_create: false,
        };
        let client = client_for(endpoint);
        holdfast_forms::sqs::ensure_queue(&client, queue, &args).await.expect("create queue")
    })
}

/// Visible plus in-flight messages in `queue` (a name).
pub fn queue_depth(endpoint: &str, queue: &str) -> u64 {
    runtime().block_on(async {
        let client = client_for(endpoint);
        let url = client.get_queue_url().queue_name(queue).send().await.expect("queue url").queue_url.expect("url");
        let (visible, in_flight) = holdfast_forms::sqs::backlog(&client, &url).await.expect("attributes");
        visible + in_flight
    })
}

/// Sends lead messages straight to the queue (SendMessageBatch), as the form would.
pub fn send_leads(endpoint: &str, queue_url: &str, leads: &[holdfast_forms::lead::Lead]) {
    runtime().block_on(async {
        let client = client_for(endpoint);
        for chunk in leads.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, lead)| {
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(lead.to_message())
                        .build()
                        .expect("entry")
                })
                .collect();
            let output = client
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .expect("send batch");
            assert!(output.failed.is_empty(), "{:?}", output.failed);
        }
    })
}

pub fn send_bodies(endpoint: &str, queue_url: &str, bodies: &[String]) {
    runtime().block_on(async {
        let client = client_for(endpoint);
        for body in bodies {
            client.send_message().queue_url(queue_url).message_body(body).send().await.expect("send");
        }
    })
}

/// `n` valid leads with fresh ids.
pub fn leads(n: usize, tag: &str) -> Vec<holdfast_forms::lead::Lead> {
    (0..n)
        .map(|i| {
            holdfast_forms::lead::LeadInput::from_pairs([
                ("name", format!("Lead {i} ({tag}) Zoë 😀")),
                ("company", "Acme".to_string()),
                ("email", format!("lead{i}@example.com")),
                ("message", format!("Please call me about {tag} #{i}")),
            ])
            .into_lead("2026-01-01T00:00:00Z".into(), Some("test"), "json")
        })
        .collect()
}

/// Row count and distinct-key count of `table`, or None while the database cannot answer.
pub fn counts(url: &str, table: &str, key: &str) -> Option<(i64, i64)> {
    runtime().block_on(async {
        let db = Database::open(url, 1).ok()?;
        let result = async { Some((db.count(table).await.ok()?, db.count_distinct(table, key).await.ok()?)) }.await;
        db.close().await;
        result
    })
}

/// Waits until `condition` holds, or panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`).
pub fn http(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    // Read the head, then exactly the body: some servers (chromedriver) keep the connection open.
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("read answer") == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let mut lines = head.lines();
    let status = lines.next().expect("status line").split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let find = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let mut raw = Vec::new();
    if let Some(length) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        raw.resize(length, 0);
        reader.read_exact(&mut raw).expect("read body");
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).expect("chunk size");
            let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).expect("chunk");
            if size == 0 {
                break;
            }
            raw.extend_from_slice(&chunk[..size]);
        }
    } else if method != "HEAD" {
        reader.read_to_end(&mut raw).expect("read body");
    }
    let body = String::from_utf8_lossy(&raw).to_string();
    Answer { status, headers, body }
}

/// Form-encodes pairs.
pub fn form_body(pairs: &[(&str, &str)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish().into_bytes()
}

/// Prints a skip notice (the test then returns without failing), except under CI, where a test
/// whose database or browser is missing fails: `.ci/run` installs them all.
pub fn skip(reason: &str) {
    assert!(std::env::var_os("CI").is_none(), "CI must run this test, but: {reason}");
    println!("SKIPPED: {reason}");
}
