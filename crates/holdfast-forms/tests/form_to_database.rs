//! The whole story, with real parts: the holdfast server, `holdfast form serve` taking
//! submissions over real HTTP while the worker is stopped, then `holdfast form work` storing each
//! one exactly once. Plus the front end's own promises: validation, the honeypot, JSON and CORS,
//! and an honest error when the queue cannot be reached.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

#[test]
fn five_hundred_leads_submitted_while_the_worker_is_stopped_arrive_exactly_once() {
    let env = Env::start();
    let queue = unique("leads");
    let form = env.form(&queue, &[]);
    let form_url = form.url();

    // 500 visitors, 8 at a time, through the real HTTP form endpoint. No worker is running.
    let ids = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (form_url, ids) = (form_url.clone(), ids.clone());
            std::thread::spawn(move || {
                for i in (t..500).step_by(8) {
                    let email = format!("visitor{i}@example.com");
                    let body = form_body(&[
                        ("name", &format!("Visitor {i}")),
                        ("company", "Example Ltd"),
                        ("email", &email),
                        ("phone", "+44 20 7946 0958"),
                        ("message", "We would like a quote."),
                        ("website", ""),
                    ]);
                    let answer = http(&form_url, "POST", "/", &[FORM, ("User-Agent", "forms-e2e")], &body);
                    assert_eq!(answer.status, 303, "{}", answer.body);
                    let location = answer.header("Location").expect("redirect").to_string();
                    let id = location.strip_prefix("/thanks?ref=").expect("thanks page").to_string();
                    ids.lock().unwrap().push(id);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("submitter");
    }
    let ids: HashSet<String> = ids.lock().unwrap().iter().cloned().collect();
    assert_eq!(ids.len(), 500, "each submission has its own id");
    assert_eq!(queue_depth(&env.endpoint, &queue), 500, "all 500 wait in the queue");
    let thanks = http(&form_url, "GET", &format!("/thanks?ref={}", ids.iter().next().unwrap()), &[], b"");
    assert!(thanks.body.contains("Thank you"), "{}", thanks.body);

    // The back end comes up and catches up.
    let db = env.sqlite_url("leads.db");
    let mut worker = env.worker(&queue, &db, &[]);
    wait_until(Duration::from_secs(90), "500 rows", || counts(&db, "leads", "submission_id") == Some((500, 500)));
    assert_eq!(worker.terminate().code(), Some(0), "graceful exit; log:\n{}", worker.log());
    assert_eq!(counts(&db, "leads", "submission_id"), Some((500, 500)), "exactly one row per submission");
    assert_eq!(queue_depth(&env.endpoint, &queue), 0, "every stored message was deleted");
    let stored: HashSet<String> = common::runtime().block_on(async {
        use sqlx::Row;
        let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
        let rows = sqlx::query("SELECT submission_id, user_agent, source FROM leads").fetch_all(&pool).await.unwrap();
        for row in &rows {
            assert_eq!(row.get::<String, _>(1), "forms-e2e");
            assert_eq!(row.get::<String, _>(2), "form");
        }
        rows.iter().map(|row| row.get::<String, _>(0)).collect()
    });
    assert_eq!(stored, ids, "the stored rows are exactly the submissions the visitors were thanked for");
    let log = worker.log();
    assert!(log.contains("(backlog ~500)"), "the worker scaled on the backlog:\n{log}");
    assert!(log.contains("messages/s): stored 500"), "the worker reports its rate:\n{log}");
}

#[test]
fn the_form_validates_ignores_bots_and_accepts_json_from_other_sites() {
    let env = Env::start();
    let queue = unique("leads");
    let form = env.form(&queue, &["--cors-origin", "https://www.example.com"]);
    let url = form.url();

    let page = http(&url, "GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<form method=\"post\" action=\"/\" novalidate>"));
    assert!(page.header("Content-Security-Policy").is_some());

    // A bad email: the form comes back with the message next to the field and the input kept.
    let bad = form_body(&[("name", "Ada <b>"), ("email", "ada.example.com"), ("message", "Hi")]);
    let answer = http(&url, "POST", "/", &[FORM], &bad);
    assert_eq!(answer.status, 422);
    assert!(answer.body.contains("id=\"email-error\""), "{}", answer.body);
    assert!(answer.body.contains("Enter an email address in the form name@example.com."));
    assert!(answer.body.contains("value=\"Ada &lt;b&gt;\""), "input kept and escaped");

    // The honeypot: the bot is thanked, nothing is queued.
    let bot =
        form_body(&[("name", "Bot"), ("email", "bot@spam.example"), ("message", "Buy"), ("website", "http://spam")]);
    assert_eq!(http(&url, "POST", "/", &[FORM], &bot).status, 303);

    // JSON from another site's script, with CORS.
    let origin = ("Origin", "https://www.example.com");
    let preflight = http(&url, "OPTIONS", "/", &[origin, ("Access-Control-Request-Method", "POST")], b"");
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("Access-Control-Allow-Origin"), Some("https://www.example.com"));
    assert!(preflight.header("Access-Control-Allow-Methods").unwrap().contains("POST"));
    let other = http(&url, "OPTIONS", "/", &[("Origin", "https://evil.example")], b"");
    assert_eq!(other.header("Access-Control-Allow-Origin"), None);
    let json = br#"{"name":"Grace","email":"grace@example.com","message":"Hello from a static site","company":"Navy"}"#;
    let answer = http(&url, "POST", "/", &[origin, ("Content-Type", "application/json")], json);
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.header("Access-Control-Allow-Origin"), Some("https://www.example.com"));
    let reply: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(reply["ok"], true);
    let invalid = http(&url, "POST", "/", &[("Content-Type", "application/json")], br#"{"email":"x"}"#);
    assert_eq!(invalid.status, 422);
    let reply: serde_json::Value = serde_json::from_str(&invalid.body).unwrap();
    assert!(reply["errors"]["email"].as_str().unwrap().contains("email address"));
    assert!(reply["errors"]["name"].is_string());

    // Another site's plain HTML form post (form encoding) is redirected to the thank-you page.
    let post = form_body(&[("name", "Linus"), ("email", "linus@example.com"), ("message", "From our site")]);
    let answer = http(&url, "POST", "/", &[FORM, origin], &post);
    assert_eq!(answer.status, 303);

    // Exactly the two real leads are queued, and they are what the worker expects.
    assert_eq!(queue_depth(&env.endpoint, &queue), 2);
    let db = env.sqlite_url("leads.db");
    let mut worker = env.worker(&queue, &db, &["--exit-when-empty"]);
    assert_eq!(worker.wait_exit(Duration::from_secs(60)).code(), Some(0), "{}", worker.log());
    assert_eq!(counts(&db, "leads", "submission_id"), Some((2, 2)));
}

#[test]
fn behind_a_server_that_requires_signatures_the_form_and_worker_sign_with_the_environments_key() {
    let env = Env::start_secured();
    let queue = unique("leads");
    let form = env.form(&queue, &[]);
    let body = form_body(&[("name", "Signed"), ("email", "signed@example.com"), ("message", "Hello")]);
    let answer = http(&form.url(), "POST", "/", &[FORM], &body);
    assert!(answer.header("Location").is_some_and(|l| l.starts_with("/thanks")), "{}\n{}", answer.body, form.log());
    let db = env.sqlite_url("leads.db");
    let mut worker = env.worker(&queue, &db, &["--exit-when-empty"]);
    assert_eq!(worker.wait_exit(Duration::from_secs(60)).code(), Some(0), "{}", worker.log());
    assert_eq!(counts(&db, "leads", "submission_id"), Some((1, 1)));
}

#[test]
fn the_same_form_submitted_twice_is_stored_once() {
    // The form page carries a submission id, so a double click or a refresh that posts the same
    // form again is one lead, even though it is two messages.
    let env = Env::start();
    let queue = unique("leads");
    let form = env.form(&queue, &[]);
    let page = http(&form.url(), "GET", "/", &[], b"");
    let marker = "name=\"submission_id\" value=\"";
    let start = page.body.find(marker).unwrap() + marker.len();
    let id = &page.body[start..start + 36];
    let body = form_body(&[
        ("submission_id", id),
        ("name", "Twice"),
        ("email", "twice@example.com"),
        ("message", "Click click"),
    ]);
    for _ in 0..2 {
        let answer = http(&form.url(), "POST", "/", &[FORM], &body);
        assert_eq!(answer.header("Location"), Some(format!("/thanks?ref={id}").as_str()));
    }
    let db = env.sqlite_url("leads.db");
    let mut worker = env.worker(&queue, &db, &["--exit-when-empty"]);
    assert_eq!(worker.wait_exit(Duration::from_secs(60)).code(), Some(0));
    assert_eq!(counts(&db, "leads", "submission_id"), Some((1, 1)));
    assert!(worker.log().contains("already stored 1"), "{}", worker.log());
}

#[test]
fn an_unreachable_queue_gets_an_honest_error_and_keeps_what_was_typed() {
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let form = Proc::start(
        &[
            "form",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--endpoint-url",
            &format!("http://{dead}"),
            "--send-attempts",
            "2",
            "--send-timeout",
            "3",
        ],
        &dir.path().join("form.log"),
        true,
    );
    let body =
        form_body(&[("name", "Patient Visitor"), ("email", "p@example.com"), ("message", "Long message I typed")]);
    let started = std::time::Instant::now();
    let answer = http(&form.url(), "POST", "/", &[FORM], &body);
    assert!(started.elapsed() < Duration::from_secs(20), "bounded: {:?}", started.elapsed());
    assert_eq!(answer.status, 503);
    assert!(answer.body.contains("it has not been sent"), "{}", answer.body);
    assert!(answer.body.contains("Long message I typed"), "what was typed is kept");
    assert!(answer.header("Retry-After").is_some());
    let json = http(
        &form.url(),
        "POST",
        "/",
        &[("Content-Type", "application/json")],
        br#"{"name":"A","email":"a@b.co","message":"m"}"#,
    );
    assert_eq!(json.status, 503);
    assert!(form.log().contains("NOT queued"), "{}", form.log());
}

#[test]
fn the_form_answers_health_and_readiness_as_the_server_does() {
    let mut env = Env::start();
    let queue = unique("leads");
    let form = env.form(&queue, &[]);
    let url = form.url();
    assert_eq!(http(&url, "GET", "/health", &[], b"").status, 200);
    let ready = http(&url, "GET", "/ready", &[], b"");
    assert_eq!((ready.status, ready.body.trim()), (200, "ready"));
    // The queue's server gone: still alive, no longer ready, and it says why.
    env.server.kill9();
    assert_eq!(http(&url, "GET", "/health", &[], b"").status, 200);
    let ready = http(&url, "GET", "/ready", &[], b"");
    assert_eq!(ready.status, 503);
    assert!(ready.body.starts_with("unavailable"), "{}", ready.body);
}
