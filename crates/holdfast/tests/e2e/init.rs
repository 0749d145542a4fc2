//! Init hooks (`--init-dir`): declarations applied and scripts run once the server listens, in
//! name order, with `/ready` answering 503 until they are done.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::common::{binary, TestServer};

/// GET `path` with a plain HTTP/1.1 request: (status, body).
fn get(url: &str, path: &str) -> (u16, String) {
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

#[test]
fn declarations_and_scripts_run_once_the_server_is_up_and_ready_waits_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let init = dir.path().join("init");
    std::fs::create_dir(&init).unwrap();
    // Declared in the wrong order on purpose: the dead-letter queue comes second.
    std::fs::write(
        init.join("10-queues.toml"),
        r#"
[[queue]]
name = "orders"
tags = { team = "shop" }

[queue.attributes]
VisibilityTimeout = 45
RedrivePolicy = { deadLetterTargetArn = "arn:aws:sqs:us-east-1:000000000000:orders-dlq", maxReceiveCount = 3 }

[queue.attributes.Policy]
Version = "2012-10-17"
Statement = [{ Effect = "Allow", Principal = "*", Action = "sqs:SendMessage", Resource = "*" }]

[[queue]]
name = "orders-dlq"
"#,
    )
    .unwrap();
    // A script (not executable: *.sh runs with sh) that uses the CLI with only what init gives it,
    // slowly enough that /ready can be seen waiting.
    std::fs::write(
        init.join("20-seed.sh"),
        format!(
            "set -e\nsleep 1\n{bin} queue create seeded --tag from=init\necho seeded \"$HOLDFAST_ENDPOINT_URL\" $AWS_REGION\n{bin} send seeded hello\ntouch seeded.done\n",
            bin = binary()
        ),
    )
    .unwrap();
    std::fs::write(init.join("30-fails.sh"), "echo about to fail >&2\nexit 3\n").unwrap();
    let last = init.join("40-still-runs");
    std::fs::write(&last, "#!/bin/sh\ntouch last.done\n").unwrap();
    std::fs::set_permissions(&last, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(init.join("README.md"), "not a step").unwrap();

    let server = TestServer::start_with(&["--init-dir", init.to_str().unwrap()]);
    let (status, body) = get(&server.url, "/ready");
    assert_eq!(status, 503, "not ready while init runs: {body}");
    assert!(body.contains("running init"), "{body}");
    assert_eq!(get(&server.url, "/health").0, 200, "alive all along");
    let probe = |ready: bool| {
        let mut command = std::process::Command::new(binary());
        command.args(["health", "--url", &server.url]);
        if ready {
            command.arg("--ready");
        }
        command.output().unwrap().status.code()
    };
    assert_eq!((probe(false), probe(true)), (Some(0), Some(1)), "`holdfast health` says the same");

    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&server.url, "/ready").0 != 200 {
        assert!(Instant::now() < deadline, "init never finished:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(init.join("seeded.done").exists() && init.join("last.done").exists(), "{}", server.log());
    let log = server.log();
    assert!(log.contains("30-fails.sh") && log.contains("exited with exit status: 3"), "{log}");
    assert!(log.contains("1 failed"), "{log}");

    let client = server.client();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let url = client.get_queue_url().queue_name("orders").send().await.unwrap().queue_url.unwrap();
        let attributes = client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        use aws_sdk_sqs::types::QueueAttributeName as A;
        assert_eq!(attributes[&A::VisibilityTimeout], "45");
        assert!(attributes[&A::RedrivePolicy].contains("orders-dlq"));
        assert!(attributes[&A::Policy].contains("sqs:SendMessage"), "{}", attributes[&A::Policy]);
        let tags = client.list_queue_tags().queue_url(&url).send().await.unwrap().tags.unwrap();
        assert_eq!(tags["team"], "shop");
        let seeded = client.get_queue_url().queue_name("seeded").send().await.unwrap().queue_url.unwrap();
        let tags = client.list_queue_tags().queue_url(&seeded).send().await.unwrap().tags.unwrap();
        assert_eq!(tags["from"], "init");
        let got = client.receive_message().queue_url(&seeded).send().await.unwrap().messages.unwrap();
        assert_eq!(got[0].body.as_deref(), Some("hello"));
    });
}
