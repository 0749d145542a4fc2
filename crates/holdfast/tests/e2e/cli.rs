//! The `holdfast` command-line client against a running server.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::{binary, unique, TestServer};

fn cli(server: &TestServer, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(binary())
        .args(args)
        .args(["--endpoint-url", &server.url])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_PROFILE")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn producer_and_consumer_scripts() {
    let server = TestServer::start();
    let name = unique("cli");
    let (code, out, err) =
        cli(&server, &["queue", "create", &name, "-a", "VisibilityTimeout=40", "-t", "team=web"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().ends_with(&format!("/000000000000/{name}")), "{out}");

    let (code, out, err) = cli(&server, &["send", &name, "hello"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1);

    let lines: String = (1..=25).map(|i| format!("line {i}\n")).collect();
    let (code, out, err) = cli(&server, &["send", &name], Some(&lines));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 25, "one message id per stdin line");

    let (code, out, _) = cli(&server, &["queue", "attributes", &name], None);
    assert_eq!(code, 0);
    assert!(out.contains("ApproximateNumberOfMessages=26"), "{out}");
    assert!(out.contains("VisibilityTimeout=40"), "{out}");

    let (code, out, err) = cli(&server, &["receive", &name, "--count", "30", "--delete", "--wait", "1"], None);
    assert_eq!(code, 0, "{err}");
    let received: Vec<&str> = out.lines().collect();
    assert_eq!(received.len(), 26, "drained every message: {out}");
    assert!(received.contains(&"hello") && received.contains(&"line 25"));

    let (code, out, _) = cli(&server, &["receive", &name, "--json", "--wait", "0"], None);
    assert_eq!((code, out.as_str()), (0, ""), "the queue is empty after --delete");

    let (code, out, _) = cli(&server, &["queue", "list", "--json"], None);
    assert_eq!(code, 0);
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(listed["QueueUrls"].as_array().unwrap().iter().any(|u| u.as_str().unwrap().ends_with(&name)));

    let (code, _, err) = cli(&server, &["queue", "delete", &name], None);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&server, &["send", &name, "x"], None);
    assert_eq!(code, 1, "a service error exits 1");
    assert!(err.contains("NonExistentQueue"), "{err}");
}

#[test]
fn unreachable_endpoint_exits_3() {
    let output = Command::new(binary())
        .args(["queue", "list", "--endpoint-url", "http://127.0.0.1:9"])
        .env("HOME", "/nonexistent")
        .env_remove("AWS_ACCESS_KEY_ID")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Against a server that requires signatures, the CLI signs with the key the standard AWS
/// variables (or a shared credentials file) give it, and says clearly when that key is refused.
#[test]
fn the_cli_signs_with_the_standard_aws_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials.toml");
    std::fs::write(&credentials, "[[key]]\naccess_key_id = \"AKIDCLI\"\nsecret_access_key = \"cli-secret\"\n").unwrap();
    let server = TestServer::start_with(&["--credentials", credentials.to_str().unwrap()]);
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let output = Command::new(binary())
            .args(args)
            .args(["--endpoint-url", &server.url])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env("HOME", dir.path())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let name = unique("signed-cli");
    let key = [("AWS_ACCESS_KEY_ID", "AKIDCLI"), ("AWS_SECRET_ACCESS_KEY", "cli-secret")];
    let (code, err) = run(&key, &["queue", "create", &name]);
    assert_eq!(code, 0, "{err}");

    // The same key from a shared credentials file.
    std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
    std::fs::write(
        dir.path().join(".aws/credentials"),
        "[default]\naws_access_key_id = AKIDCLI\naws_secret_access_key = cli-secret\n",
    )
    .unwrap();
    let (code, err) = run(&[], &["send", &name, "from the shared file"]);
    assert_eq!(code, 0, "{err}");

    let wrong = [("AWS_ACCESS_KEY_ID", "AKIDCLI"), ("AWS_SECRET_ACCESS_KEY", "not-it")];
    let (code, err) = run(&wrong, &["queue", "list"]);
    assert_ne!(code, 0);
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
}

/// Runs the CLI with `env` and no endpoint flag, stdout to a pipe closed after its first line.
fn cli_to_closed_pipe(server: &TestServer, args: &[&str]) -> (i32, String) {
    let mut child = Command::new(binary())
        .args(args)
        .args(["--endpoint-url", &server.url])
        .env("HOME", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let server = TestServer::start();
    let name = unique("pipe");
    // 300 lines of 400 bytes: more than a pipe holds, so the command is still writing (and blocked)
    // when the reader goes away.
    let lines: String = (1..=300).map(|i| format!("message {i} {}\n", "x".repeat(400))).collect();
    assert_eq!(cli(&server, &["queue", "create", &name], None).0, 0);
    assert_eq!(cli(&server, &["send", &name], Some(&lines)).0, 0);
    let (code, err) = cli_to_closed_pipe(&server, &["receive", &name, "--count", "300", "--visibility", "0"]);
    assert_eq!(code, 0, "like head closing the pipe: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn fifo_sends_take_a_deduplication_id() {
    let server = TestServer::start();
    let name = format!("{}.fifo", unique("dedup"));
    assert_eq!(cli(&server, &["queue", "create", &name, "-a", "FifoQueue=true"], None).0, 0);
    let send = |id: &str| cli(&server, &["send", &name, "order 1", "--group-id", "g", "--dedup-id", id], None);
    let (code, first, err) = send("order-1");
    assert_eq!(code, 0, "{err}");
    let (_, again, _) = send("order-1");
    assert_eq!(first, again, "a duplicate reports the first message's id");
    let (code, _, err) = cli(&server, &["send", &name, "--group-id", "g", "--dedup-id", "batch"], Some("a\nb\n"));
    assert_eq!(code, 0, "each line gets its own id (batch-1, batch-2): {err}");
    let (_, out, _) = cli(&server, &["receive", &name, "--count", "10"], None);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["order 1", "a", "b"]);
}

#[test]
fn the_endpoint_may_come_from_the_aws_variables() {
    let server = TestServer::start();
    let run = |vars: &[(&str, &str)]| {
        let mut command = Command::new(binary());
        command.args(["queue", "list"]).env("HOME", "/nonexistent").env_remove("HOLDFAST_ENDPOINT_URL");
        for (name, value) in vars {
            command.env(name, value);
        }
        command.output().unwrap().status.code()
    };
    assert_eq!(run(&[("AWS_ENDPOINT_URL", &server.url)]), Some(0));
    assert_eq!(run(&[("AWS_ENDPOINT_URL_SQS", &server.url), ("AWS_ENDPOINT_URL", "http://127.0.0.1:1")]), Some(0));
    assert_eq!(run(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:1")]), Some(3), "nothing listens there");
}

#[test]
fn errors_name_the_missing_queue_and_what_a_foreign_server_said() {
    let server = TestServer::start();
    let (code, _, err) = cli(&server, &["receive", "no-such-queue"], None);
    assert_eq!(code, 1);
    assert!(err.contains("queue no-such-queue does not exist"), "{err}");

    // Something that is not SQS, answering every request with a web page.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buffer = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut buffer);
            let page = "<html><body>Welcome to nginx!</body></html>";
            let answer = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    let output = Command::new(binary())
        .args(["queue", "list", "--endpoint-url", &format!("http://{address}")])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{err}");
    assert!(
        err.contains("not an SQS service") && err.contains("HTTP 404") && err.contains("Welcome to nginx"),
        "{err}"
    );
}

#[test]
fn queue_commands_report_in_json_and_show_tags() {
    let server = TestServer::start();
    let name = unique("report");
    assert_eq!(cli(&server, &["queue", "create", &name, "-t", "team=web"], None).0, 0);
    let (code, out, err) = cli(&server, &["queue", "attributes", &name], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l == "tag:team=web"), "{out}");
    let (_, out, _) = cli(&server, &["queue", "attributes", &name, "--json"], None);
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["Tags"]["team"], "web");
    for (args, key) in [
        (vec!["queue", "attributes", &name, "--set", "VisibilityTimeout=9", "--json"], "Updated"),
        (vec!["queue", "purge", &name, "--json"], "Purged"),
        (vec!["queue", "delete", &name, "--json"], "Deleted"),
    ] {
        let (code, out, err) = cli(&server, &args, None);
        assert_eq!(code, 0, "{err}");
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        assert_eq!(parsed[key], true, "{out}");
    }
}

/// `cli` with raw bytes on standard input.
fn cli_bytes(server: &TestServer, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(binary())
        .args(args)
        .args(["--endpoint-url", &server.url])
        .env("HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn approximate(server: &TestServer, queue: &str) -> (u64, u64) {
    let (_, out, _) = cli(server, &["queue", "attributes", queue, "--json"], None);
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let count = |name: &str| parsed["Attributes"][name].as_str().unwrap().parse::<u64>().unwrap();
    (count("ApproximateNumberOfMessages"), count("ApproximateNumberOfMessagesNotVisible"))
}

#[test]
fn bulk_sends_end_with_a_summary_and_name_a_line_that_is_not_utf8() {
    let server = TestServer::start();
    let name = unique("bulk");
    assert_eq!(cli(&server, &["queue", "create", &name], None).0, 0);
    let lines: String = (1..=1234).map(|i| format!("{i}\n")).collect::<String>() + "\n";
    let (code, out, err) = cli(&server, &["send", &name], Some(&lines));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1234, "ids go to a pipe");
    assert!(err.starts_with("sent 1,234 messages, 1 blank lines skipped in "), "{err}");
    let (code, out, err) = cli(&server, &["send", &name, "--quiet"], Some("a\nb\n"));
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""), "--quiet prints nothing");
    let (code, out, _) = cli(&server, &["send", &name, "--output", "json"], Some("x\ny\n"));
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.iter().map(|l| l["Line"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2]);

    // Line 3 is Latin-1, not UTF-8: lines 1 and 2 go, the rest does not, and the error says where.
    let (code, _, err) = cli_bytes(&server, &["send", &name], b"one\ntwo\ncaf\xe9\nfour\n");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("sent 2 messages"), "{err}");
    assert!(err.contains("line 3 is not valid UTF-8 (at byte 4)"), "{err}");
    assert_eq!(approximate(&server, &name), (1234 + 2 + 2 + 2, 0));

    // A line over SQS's 1 MiB limit is refused on its own, named, and the others still go.
    let big = "x".repeat(1_048_577);
    let (code, _, err) = cli(&server, &["send", &name], Some(&format!("before\n{big}\nafter\n")));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("line 2 not sent"), "{err}");
    assert!(err.contains("sent 2 messages, 1 not sent"), "{err}");
}

#[test]
fn received_bodies_with_line_breaks_stay_one_message_per_line() {
    let server = TestServer::start();
    let name = unique("lines");
    assert_eq!(cli(&server, &["queue", "create", &name, "-a", "FifoQueue=true", "--json"], None).0, 1, "needs .fifo");
    let fifo = format!("{name}.fifo");
    let create = ["queue", "create", &fifo, "-a", "FifoQueue=true", "-a", "ContentBasedDeduplication=true"];
    assert_eq!(cli(&server, &create, None).0, 0);
    for body in ["first line\nsecond line", "plain", "\"quoted\""] {
        assert_eq!(cli(&server, &["send", &fifo, body, "--group-id", "g"], None).0, 0);
    }
    let (code, out, err) = cli(&server, &["receive", &fifo, "--count", "3", "--visibility", "0"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), [r#""first line\nsecond line""#, "plain", r#""\"quoted\"""#]);
    let (_, out, _) = cli(&server, &["receive", &fifo, "--count", "3", "-0", "--visibility", "0"], None);
    assert_eq!(out, "first line\nsecond line\0plain\0\"quoted\"\0");
}

#[test]
fn peek_leaves_messages_where_they_were() {
    let server = TestServer::start();
    let name = unique("peek");
    assert_eq!(cli(&server, &["queue", "create", &name], None).0, 0);
    assert_eq!(cli(&server, &["send", &name], Some(&(1..=25).map(|i| format!("m{i}\n")).collect::<String>())).0, 0);
    let (code, out, err) = cli(&server, &["peek", &name, "--count", "15"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 15, "{out}");
    assert!(err.contains("peeked at 15 messages"), "{err}");
    assert_eq!(approximate(&server, &name), (25, 0), "all visible again");
    let (_, out, _) = cli(&server, &["peek", &name, "--output", "table", "-n", "2"], None);
    assert!(out.starts_with("+---") && out.contains("| MessageId"), "{out}");
}

#[test]
fn messages_are_deleted_and_released_by_receipt_handle() {
    let server = TestServer::start();
    let name = unique("handles");
    assert_eq!(cli(&server, &["queue", "create", &name], None).0, 0);
    assert_eq!(cli(&server, &["send", &name], Some("a\nb\nc\nd\n")).0, 0);
    let (_, out, _) = cli(&server, &["receive", &name, "--count", "4", "--json"], None);
    let handles: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["ReceiptHandle"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(handles.len(), 4);
    assert_eq!(approximate(&server, &name), (0, 4));

    let stdin = format!("{}\n{}\n", handles[0], handles[1]);
    let (code, _, err) = cli(&server, &["message", "delete", &name, "-"], Some(&stdin));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("deleted 2 messages"), "{err}");
    let (code, out, err) =
        cli(&server, &["message", "change-visibility", &name, "--timeout", "0", &handles[2], "--json"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["changed"], 1);
    assert_eq!(approximate(&server, &name), (1, 1));

    let (code, _, err) = cli(&server, &["message", "delete", &name, "not-a-handle", &handles[3]], None);
    assert_eq!(code, 1, "one bad handle fails the command after trying all");
    assert!(err.contains("ReceiptHandleIsInvalid") && err.contains("deleted 1 message, 1 failed"), "{err}");
    assert_eq!(approximate(&server, &name), (1, 0));
}

#[test]
fn queues_are_changed_tagged_and_redriven_from_the_cli() {
    let server = TestServer::start();
    let source = unique("src");
    let dlq = format!("{source}-dlq");
    assert_eq!(cli(&server, &["queue", "create", &dlq], None).0, 0);
    assert_eq!(cli(&server, &["queue", "create", &source], None).0, 0);
    let policy = format!(
        r#"RedrivePolicy={{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:{dlq}","maxReceiveCount":"1"}}"#
    );
    let (code, _, err) = cli(&server, &["queue", "set", &source, &policy, "VisibilityTimeout=0"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(cli(&server, &["queue", "tag", &source, "team=web", "env=prod"], None).0, 0);
    assert_eq!(cli(&server, &["queue", "untag", &source, "env"], None).0, 0);
    let (_, out, _) = cli(&server, &["queue", "attributes", &source], None);
    assert!(out.contains("VisibilityTimeout=0") && out.contains(&dlq), "{out}");
    assert!(out.lines().any(|l| l == "tag:team=web") && !out.contains("tag:env"), "{out}");
    let (_, out, _) = cli(&server, &["queue", "url", &source], None);
    assert!(out.trim().ends_with(&format!("/{source}")), "{out}");

    // Three messages fail once each and land in the dead-letter queue; redrive brings them back.
    assert_eq!(cli(&server, &["send", &source], Some("1\n2\n3\n")).0, 0);
    assert_eq!(cli(&server, &["receive", &source, "--count", "3", "--wait", "0"], None).0, 0);
    let mut moved = false;
    for _ in 0..50 {
        let _ = cli(&server, &["receive", &source, "--count", "10", "--wait", "0"], None);
        if approximate(&server, &dlq).0 == 3 {
            moved = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(moved, "the messages reached the dead-letter queue");
    // Raise the bar so the redriven messages stay put (the queue must remain a dead-letter source).
    let (code, _, err) = cli(&server, &["queue", "set", &source, &policy.replace("\"1\"", "\"1000\"")], None);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&server, &["queue", "redrive", &dlq, "--json"], None);
    assert_eq!(code, 0, "{err}");
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (parsed["Status"].as_str(), parsed["ApproximateNumberOfMessagesMoved"].as_u64()),
        (Some("COMPLETED"), Some(3))
    );
    assert!(err.contains("3 messages moved (completed)"), "{err}");
    assert_eq!(approximate(&server, &source), (3, 0));
    let (_, out, _) = cli(&server, &["queue", "redrive", &dlq, "--status"], None);
    assert!(out.starts_with("COMPLETED moved=3"), "{out}");
    let (code, _, err) = cli(&server, &["queue", "redrive", &dlq, "--cancel"], None);
    assert_eq!(code, 1);
    assert!(err.contains("no move task is running"), "{err}");
}

#[test]
fn completion_scripts_for_the_usual_shells() {
    for shell in ["bash", "zsh", "fish"] {
        let output = Command::new(binary()).args(["completions", shell]).output().unwrap();
        assert!(output.status.success());
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(
            script.contains("peek") && script.contains("redrive") && script.contains("change-visibility"),
            "{shell}"
        );
    }
}

/// On a terminal (a pseudo-terminal from `script`), a bulk send draws a progress bar with the rate
/// and time left, prints no ids, and ends with its summary.
#[test]
fn a_bulk_send_on_a_terminal_shows_progress() {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "`script` (util-linux) is needed under CI");
        eprintln!("SKIPPED: no `script` to give the command a terminal");
        return;
    }
    let server = TestServer::start();
    let name = unique("tty");
    assert_eq!(cli(&server, &["queue", "create", &name], None).0, 0);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("lines.txt");
    std::fs::write(&input, (1..=20_000).map(|i| format!("line {i}\n")).collect::<String>()).unwrap();
    let command = format!("{} send {name} --endpoint-url {} < {}", binary(), server.url, input.display());
    let output =
        Command::new("script").args(["-qec", &command, "/dev/null"]).env("HOME", "/nonexistent").output().unwrap();
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{screen}");
    assert!(screen.contains("ETA"), "a progress bar with the time left: {screen:?}");
    assert!(screen.contains("sent 20,000 messages in"), "{screen:?}");
    assert!(!screen.lines().any(|l| uuid_like(l.trim())), "no ids on a terminal: {screen:?}");
}

fn uuid_like(text: &str) -> bool {
    text.len() == 36 && text.chars().filter(|c| *c == '-').count() == 4
}
