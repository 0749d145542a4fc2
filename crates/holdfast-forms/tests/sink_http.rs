//! `holdfast sink --to URL`: each message POSTed to a real HTTP back end (a small server in this
//! test), deleted on 2xx, retried otherwise; while the back end is down, the sink waits.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// What the back end saw: (Idempotency-Key, body) per request, in order.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// Answers 500 to the first `failures` requests and 200 to the rest.
fn backend(listener: TcpListener, failures: usize, seen: Seen) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut headers = HashMap::new();
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        if header.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = header.split_once(':') {
                            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                        }
                    }
                    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let status = {
                        let mut seen = seen.lock().unwrap();
                        seen.push((
                            headers.get("idempotency-key").cloned().unwrap_or_default(),
                            String::from_utf8_lossy(&body).into(),
                        ));
                        if seen.len() <= failures {
                            "500 Internal Server Error"
                        } else {
                            "200 OK"
                        }
                    };
                    let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok");
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

#[test]
fn each_message_is_posted_until_the_back_end_takes_it_and_the_sink_waits_while_it_is_down() {
    let env = Env::start();
    let queue = unique("hooks");
    let url = create_queue(&env.endpoint, &queue, 2, 20);
    let bodies: Vec<String> = (0..20).map(|i| format!(r#"{{"event":"signup","n":{i}}}"#)).collect();
    send_bodies(&env.endpoint, &url, &bodies);

    // The back end is down at first: reserve a port, and listen on it only later.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let args = [
        "sink",
        "--endpoint-url",
        &env.endpoint,
        "--queue",
        &queue,
        "--to",
        &format!("http://127.0.0.1:{port}/hook"),
        "--header",
        "Authorization: Bearer test-token",
        "--retry-rejected-after",
        "0",
        "--wait-time",
        "1",
        "--scale-interval",
        "1",
        "--max-backoff",
        "1",
        "--exit-when-empty",
    ];
    let mut sink = Proc::start(&args, &env.path("sink.log"), false);
    wait_until(Duration::from_secs(30), "the sink to notice the back end is down", || {
        sink.log().contains("is unavailable")
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(queue_depth(&env.endpoint, &queue), 20, "nothing is lost while the back end is down");

    // The back end comes up, failing its first three requests.
    let seen: Seen = Arc::default();
    backend(TcpListener::bind(("127.0.0.1", port)).expect("rebind the back end's port"), 3, seen.clone());
    assert_eq!(sink.wait_exit(Duration::from_secs(60)).code(), Some(0), "{}", sink.log());

    let seen = seen.lock().unwrap();
    let delivered: HashSet<&str> = seen.iter().map(|(_, body)| body.as_str()).collect();
    assert_eq!(delivered.len(), 20, "every message reached the back end");
    assert!(seen.len() >= 23, "the three failures were retried ({} requests)", seen.len());
    assert!(seen.iter().all(|(key, _)| !key.is_empty()), "each request carries an Idempotency-Key");
    assert_eq!(queue_depth(&env.endpoint, &queue), 0, "deleted once taken");
    let log = sink.log();
    assert_eq!(log.matches("is unavailable").count(), 1, "{log}");
}
