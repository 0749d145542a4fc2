//! A real browser: headless Chromium, driven by ChromeDriver over the WebDriver protocol, opens
//! the form, submits a bad email and sees the error next to the field, corrects it, submits, and
//! sees the thank-you page; the lead then reaches the database. Screenshots of both pages are
//! saved in `target/test-output/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (or CHROMIUM / CHROMEDRIVER naming the
//! binaries); without them the test prints SKIPPED, or fails under CI=true.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find(env_var: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env_var).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default));
    path.exists().then_some(path)
}

/// A ChromeDriver process and one browser session in it.
struct Browser {
    driver: Child,
    url: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser { driver, url, session: String::new(), _profile: profile };
        wait_until(Duration::from_secs(30), "chromedriver", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && browser.call("GET", "/status", None)["ready"].as_bool() == Some(true)
        });
        // The flags this machine needs: no sandbox as root, and no background connections to
        // Google's services (there is no network but loopback).
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1000,1300",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args}
        }}});
        let session = browser.call("POST", "/session", Some(capabilities));
        browser.session = session["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {session}")).to_string();
        browser
    }

    /// One WebDriver command; returns its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers: &[(&str, &str)] = if method == "POST" { &[("Content-Type", "application/json")] } else { &[] };
        let answer = http(&self.url, method, path, headers, body.as_bytes());
        let value: Value =
            serde_json::from_str(&answer.body).unwrap_or_else(|_| panic!("{method} {path}: {}", answer.body));
        assert!(answer.status < 300, "{method} {path}: {}", answer.body);
        value["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn go(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({"url": url})));
    }

    fn element(&self, css: &str) -> String {
        let found = self.session_call("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {found}")).to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css);
        self.session_call("POST", &format!("/element/{element}/clear"), Some(json!({})));
        self.session_call("POST", &format!("/element/{element}/value"), Some(json!({"text": text})));
    }

    fn click(&self, css: &str) {
        let element = self.element(css);
        self.session_call("POST", &format!("/element/{element}/click"), Some(json!({})));
    }

    fn text(&self, css: &str) -> String {
        let element = self.element(css);
        self.session_call("GET", &format!("/element/{element}/text"), None).as_str().unwrap_or_default().to_string()
    }

    fn current_url(&self) -> String {
        self.session_call("GET", "/url", None).as_str().unwrap_or_default().to_string()
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.session_call("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        let path = output_dir().join(name);
        std::fs::write(&path, bytes).unwrap();
        println!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(&self.url, "DELETE", &format!("/session/{}", self.session), &[], b"");
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn a_visitor_in_chromium_sees_the_error_then_the_thank_you_page() {
    let (Some(chromium), Some(chromedriver)) =
        (find("CHROMIUM", "/usr/bin/chromium"), find("CHROMEDRIVER", "/usr/bin/chromedriver"))
    else {
        return skip("Chromium not installed (apt-get install chromium chromium-driver)");
    };
    let env = Env::start();
    let queue = unique("leads");
    let form = env.form(&queue, &["--title", "Talk to our sales team"]);
    let browser = Browser::start(&chromium, &chromedriver);

    browser.go(&form.url());
    assert_eq!(browser.session_call("GET", "/title", None), "Talk to our sales team");
    browser.type_into("#name", "Ada Lovelace");
    browser.type_into("#company", "Analytical Engines Ltd");
    browser.type_into("#email", "ada.example.com");
    browser.type_into("#message", "We need 40 engines by March.");
    browser.click("button[type=submit]");

    // The server's message, next to the field and in the summary; what was typed is kept.
    assert!(browser.text("#email-error").contains("Enter an email address in the form name@example.com."));
    assert!(browser.text("#error-summary").contains("There is a problem"));
    let kept = browser.element("#message");
    assert_eq!(
        browser.session_call("GET", &format!("/element/{kept}/property/value"), None),
        "We need 40 engines by March."
    );
    let invalid = browser.element("#email");
    assert_eq!(browser.session_call("GET", &format!("/element/{invalid}/attribute/aria-invalid"), None), "true");
    browser.screenshot("form-validation-error.png");

    browser.type_into("#email", "ada@example.com");
    browser.click("button[type=submit]");
    // A click does not always wait for the POST and its redirect to finish.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !browser.current_url().contains("/thanks?ref=") {
        if std::time::Instant::now() > deadline {
            browser.screenshot("form-after-submit-failure.png");
            panic!("no thank-you page: {}; form log:\n{}", browser.current_url(), form.log());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(browser.text("h1").contains("Thank you"));
    let shot = browser.screenshot("form-thank-you.png");
    assert!(std::fs::metadata(shot).unwrap().len() > 1000);

    // And the lead is real: the worker stores it.
    let db = env.sqlite_url("leads.db");
    let mut worker = env.worker(&queue, &db, &["--exit-when-empty"]);
    assert_eq!(worker.wait_exit(Duration::from_secs(60)).code(), Some(0));
    assert_eq!(counts(&db, "leads", "submission_id"), Some((1, 1)));
}
