//! The worker when things go wrong, with real failures: `kill -9` between its commit and its
//! delete, SIGTERM mid-stream, a PostgreSQL server stopped and started again, and messages that
//! can never be stored. Each ends with exactly one row per submission.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn stopped_counter(log: &str, label: &str) -> u64 {
    // The worker's last line: "stopped after 3s: stored 120, already stored 4, rejected 0, released 0".
    let line = log
        .lines()
        .rev()
        .find(|line| line.contains("stopped after"))
        .unwrap_or_else(|| panic!("no summary in:\n{log}"));
    let at = line.find(&format!("{label} ")).unwrap_or_else(|| panic!("no {label} in {line}"));
    line[at + label.len() + 1..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

#[test]
fn kill9_mid_batch_then_sigterm_then_restart_stores_each_lead_exactly_once() {
    let env = Env::start();
    let queue = unique("leads");
    // A short visibility timeout, so what the killed worker held comes back within the test.
    let url = create_queue(&env.endpoint, &queue, 2, 50);
    send_leads(&env.endpoint, &url, &leads(500, "crash"));
    let db = env.sqlite_url("leads.db");
    let count = || counts(&db, "leads", "submission_id").map(|(rows, _)| rows).unwrap_or(0);

    // Worker 1 pauses 300 ms between each commit and its delete; killing it right after the row
    // count moves lands in that window, which is the case at-least-once delivery is about.
    let slow = ["--fault-delay-before-delete-ms", "300", "--max-consumers", "4", "--backlog-per-consumer", "50"];
    let mut first = env.worker(&queue, &db, &slow);
    wait_until(Duration::from_secs(60), "100 rows", || count() >= 100);
    first.kill9();
    let after_kill = count();
    assert!(after_kill < 500, "killed mid-way ({after_kill} rows)");

    // Worker 2 is stopped gracefully mid-stream: it finishes its batches and exits 0.
    let mut second = env.worker(&queue, &db, &["--fault-delay-before-delete-ms", "50"]);
    wait_until(Duration::from_secs(60), "more rows", || count() >= after_kill + 100);
    assert_eq!(second.terminate().code(), Some(0), "{}", second.log());
    assert!(count() < 500 || queue_depth(&env.endpoint, &queue) == 0);

    // Worker 3 catches up and exits when the queue is empty.
    let mut third = env.worker(&queue, &db, &["--exit-when-empty"]);
    assert_eq!(third.wait_exit(Duration::from_secs(90)).code(), Some(0), "{}", third.log());

    assert_eq!(counts(&db, "leads", "submission_id"), Some((500, 500)), "one row per lead, none lost");
    assert_eq!(queue_depth(&env.endpoint, &queue), 0);
    assert_eq!(queue_depth(&env.endpoint, &format!("{queue}-dlq")), 0, "nothing dead-lettered");
    let duplicates = stopped_counter(&second.log(), "already stored") + stopped_counter(&third.log(), "already stored");
    assert!(
        duplicates >= 1,
        "the messages committed but not deleted by the killed worker came back and were recognised"
    );
    println!("killed at {after_kill} rows; {duplicates} redeliveries recognised as already stored");
}

#[test]
fn messages_that_cannot_be_stored_go_to_the_dead_letter_queue() {
    let env = Env::start();
    let queue = unique("leads");
    let url = create_queue(&env.endpoint, &queue, 1, 2);
    let bad = [
        "not json at all".to_string(),
        r#"{"type":"holdfast.lead","version":1}"#.to_string(),
        r#"{"name":"No email"}"#.to_string(),
    ];
    send_bodies(&env.endpoint, &url, &bad);
    send_leads(&env.endpoint, &url, &leads(5, "good"));
    let db = env.sqlite_url("leads.db");
    let mut worker = env.worker(&queue, &db, &["--retry-rejected-after", "0"]);
    let dlq = format!("{queue}-dlq");
    wait_until(Duration::from_secs(60), "3 messages in the dead-letter queue", || {
        queue_depth(&env.endpoint, &dlq) == 3
    });
    wait_until(Duration::from_secs(30), "5 rows", || counts(&db, "leads", "submission_id") == Some((5, 5)));
    assert_eq!(worker.terminate().code(), Some(0));
    let log = worker.log();
    assert_eq!(log.matches("cannot be stored").count(), 3, "one line per bad message, not per receive:\n{log}");
    assert_eq!(queue_depth(&env.endpoint, &queue), 0);
}

/// A PostgreSQL server of the test's own, in a temporary directory, that it can stop and start.
struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    fn start() -> Option<PrivatePostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .max()?;
        // PostgreSQL refuses to run as root.
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .ok()
            .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let dir = tempfile::tempdir().ok()?;
        let data = dir.path().join("pgdata");
        std::fs::create_dir(&data).ok()?;
        if as_postgres {
            Command::new("chmod").args(["755", dir.path().to_str()?]).status().ok()?;
            Command::new("chown").args(["postgres:postgres", data.to_str()?]).status().ok()?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let server = PrivatePostgres { bin, data, port, as_postgres, _dir: dir };
        let data = server.data.to_str()?.to_string();
        let initdb = server.run("initdb", &["-D", &data, "-A", "trust", "-U", "holdfast", "--no-sync"]);
        if !initdb {
            return None;
        }
        assert!(server.pg_ctl("start"), "pg_ctl start");
        Some(server)
    }

    fn run(&self, program: &str, args: &[&str]) -> bool {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn pg_ctl(&self, action: &str) -> bool {
        let data = self.data.to_str().unwrap();
        let options = format!("-p {} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", self.port);
        let log = Path::new(data).join("server.log");
        match action {
            "start" => self
                .run("pg_ctl", &["-D", data, "-o", &options, "-l", log.to_str().unwrap(), "-w", "-t", "60", "start"]),
            _ => self.run("pg_ctl", &["-D", data, "-m", "fast", "-w", "-t", "60", "stop"]),
        }
    }

    fn url(&self) -> String {
        format!("postgres://holdfast@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

#[test]
fn a_database_outage_pauses_the_worker_and_loses_nothing() {
    let Some(postgres) = PrivatePostgres::start() else {
        return skip("no PostgreSQL server binaries (apt-get install postgresql) to run a private server");
    };
    let env = Env::start();
    let queue = unique("leads");
    let url = create_queue(&env.endpoint, &queue, 2, 3);
    let db = postgres.url();
    let count = || counts(&db, "leads", "submission_id").map(|(rows, _)| rows);
    send_leads(&env.endpoint, &url, &leads(200, "before"));
    let mut worker = env.worker(&queue, &db, &[]);
    wait_until(Duration::from_secs(60), "the first 200 rows", || count() == Some(200));

    // The database goes away; leads keep arriving and wait in the queue.
    assert!(postgres.pg_ctl("stop"), "pg_ctl stop");
    send_leads(&env.endpoint, &url, &leads(200, "during"));
    wait_until(Duration::from_secs(30), "the worker to notice", || worker.log().contains("is unavailable"));
    std::thread::sleep(Duration::from_secs(4));
    assert!(worker.is_running(), "the worker waits, it does not exit");
    assert!(queue_depth(&env.endpoint, &queue) >= 190, "the leads wait in the queue");

    // The database comes back: the worker resumes and catches up.
    assert!(postgres.pg_ctl("start"), "pg_ctl start");
    wait_until(Duration::from_secs(60), "all 400 rows", || count() == Some(400));
    assert_eq!(worker.terminate().code(), Some(0));
    assert_eq!(counts(&db, "leads", "submission_id"), Some((400, 400)));
    assert_eq!(
        queue_depth(&env.endpoint, &format!("{queue}-dlq")),
        0,
        "the outage sent nothing to the dead-letter queue"
    );
    let log = worker.log();
    assert_eq!(log.matches("is unavailable").count(), 1, "one line when it goes down, not one per message:\n{log}");
    assert_eq!(log.matches("available again").count(), 1, "one line when it is back:\n{log}");
}

#[test]
fn without_a_dead_letter_queue_the_worker_says_what_really_happens_to_a_bad_message() {
    let env = Env::start();
    let queue = unique("plain");
    let url = runtime().block_on(async {
        let client = env.client();
        let created = client.create_queue().queue_name(&queue).send().await.expect("create");
        created.queue_url.expect("url")
    });
    send_bodies(&env.endpoint, &url, &["not a lead".to_string()]);
    let db = env.sqlite_url("plain.db");
    let mut worker = env.worker(&queue, &db, &["--no-create", "--retry-rejected-after", "1"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !worker.log().lines().any(|line| line.contains("messages/s") && line.contains("rejected 1")) {
        assert!(std::time::Instant::now() < deadline, "no progress line counts the rejection:\n{}", worker.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(worker.terminate().code(), Some(0));
    let log = worker.log();
    assert!(
        log.contains("the queue has no dead-letter queue, so it stays there and is delivered again every 1 s"),
        "{log}"
    );
    assert!(!log.contains("goes to the dead-letter queue") && !log.contains("moves to the dead-letter"), "{log}");
    assert_eq!(queue_depth(&env.endpoint, &queue), 1, "the message is still there");
}

#[test]
fn a_refused_database_connection_is_reported_as_such() {
    let env = Env::start();
    let queue = unique("refused");
    create_queue(&env.endpoint, &queue, 1, 2);
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let db = format!("postgres://holdfast:secret@127.0.0.1:{port}/leads");
    let mut worker = env.worker(&queue, &db, &[]);
    wait_until(Duration::from_secs(40), "the reason in the log", || worker.log().contains("cannot connect to"));
    worker.terminate();
    let log = worker.log();
    let line = log.lines().find(|l| l.contains("cannot connect to")).unwrap();
    assert!(line.contains("refused"), "the cause, not a pool timeout: {line}");
    assert!(!log.contains("pool timed out"), "{log}");
    assert!(!log.contains("secret"), "no password in the log: {log}");
}
