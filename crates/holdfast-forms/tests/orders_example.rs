//! `holdfast orders` (examples/orders/README.md) against a real holdfast server: with one queue per downstream consumer, every
//! paid order reaches both inventory and notification; with one shared queue, the two split them.

mod common;

use std::process::Command;

use common::*;

fn demo(endpoint: &str, data: &std::path::Path, extra: &[&str]) -> String {
    let prefix = format!("{}-", unique("o"));
    let output = Command::new(holdfast_bin())
        .args([
            "orders",
            "--endpoint-url",
            endpoint,
            "--data-dir",
            data.to_str().unwrap(),
            "--prefix",
            &prefix,
            "demo",
            "--orders",
            "30",
        ])
        .args(extra)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

fn seen(stdout: &str, consumer: &str) -> u64 {
    let line = stdout.lines().find(|l| l.starts_with(&format!("{consumer} saw "))).expect("summary line");
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn each_consumer_gets_every_paid_order_from_its_own_queue() {
    let env = Env::start();
    let stdout = demo(&env.endpoint, &env.path("separate"), &[]);
    assert_eq!(seen(&stdout, "inventory"), 30, "{stdout}");
    assert_eq!(seen(&stdout, "notification"), 30, "{stdout}");

    // One shared queue: every order is handled, but each by only one of the two consumers.
    let stdout = demo(&env.endpoint, &env.path("shared"), &["--shared-queue"]);
    let (inventory, notification) = (seen(&stdout, "inventory"), seen(&stdout, "notification"));
    assert_eq!(inventory + notification, 30, "{stdout}");
    assert!(inventory < 30 || notification < 30);
}
