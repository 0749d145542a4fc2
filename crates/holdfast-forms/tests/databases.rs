//! `holdfast form work` and `holdfast sink` against each database: SQLite (a file), and real
//! MariaDB and PostgreSQL servers when `HOLDFAST_TEST_MYSQL_URL` / `HOLDFAST_TEST_POSTGRES_URL`
//! name them (`scripts/forms-deps.sh` starts both and prints the variables).

mod common;

use std::time::Duration;

use common::*;
use sqlx::Row;

fn text_of(url: &str, sql: &str) -> String {
    runtime().block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(url).await.expect("connect");
        let row = sqlx::query(sql).fetch_one(&pool).await.expect("query");
        // MySQL reports TEXT columns as BLOB through the Any driver: decode the bytes.
        let value =
            row.try_get::<String, _>(0).unwrap_or_else(|_| String::from_utf8(row.get::<Vec<u8>, _>(0)).expect("UTF-8"));
        pool.close().await;
        value
    })
}

fn drop_table(url: &str, table: &str) {
    runtime().block_on(async {
        let db = holdfast_forms::db::Database::open(url, 1).unwrap();
        db.drop_table(table).await.expect("drop table");
        db.close().await;
    })
}

/// Leads (with producer-side duplicates) through `form work`, then JSON orders through `sink`.
fn worker_and_sink_store_each_message_once(url: &str) {
    let env = Env::start();

    // Leads: 40 submissions, 10 of them sent twice (a producer retry), so 50 messages.
    let queue = unique("leads");
    let queue_url = create_queue(&env.endpoint, &queue, 5, 10);
    let table = unique("leads");
    let all = leads(40, "db");
    send_leads(&env.endpoint, &queue_url, &all);
    send_leads(&env.endpoint, &queue_url, &all[..10]);
    let mut worker = env.worker(&queue, url, &["--table", &table, "--exit-when-empty"]);
    assert_eq!(worker.wait_exit(Duration::from_secs(60)).code(), Some(0), "{}", worker.log());
    assert_eq!(counts(url, &table, "submission_id"), Some((40, 40)));
    let name = text_of(url, &format!("SELECT name FROM {table} WHERE submission_id = '{}'", all[7].id));
    assert_eq!(name, all[7].name, "text, accents and emoji survive");
    assert!(worker.log().contains("already stored 10"), "{}", worker.log());

    // Any JSON: orders keyed by their own id, one field copied into a column.
    let orders_queue = unique("orders");
    let orders_url = create_queue(&env.endpoint, &orders_queue, 5, 10);
    let orders_table = unique("orders");
    let bodies: Vec<String> = (0..20).map(|i| format!(r#"{{"id":"order-{i}","total":{i}.5,"lines":[1,2]}}"#)).collect();
    send_bodies(&env.endpoint, &orders_url, &bodies);
    send_bodies(&env.endpoint, &orders_url, &bodies[..3]);
    let args = [
        "sink",
        "--endpoint-url",
        &env.endpoint,
        "--queue",
        &orders_queue,
        "--database-url",
        url,
        "--table",
        &orders_table,
        "--key",
        "/id",
        "--column",
        "total=/total",
        "--wait-time",
        "1",
        "--scale-interval",
        "1",
        "--exit-when-empty",
    ];
    let mut sink = Proc::start(&args, &env.path("sink.log"), false);
    assert_eq!(sink.wait_exit(Duration::from_secs(60)).code(), Some(0), "{}", sink.log());
    assert_eq!(counts(url, &orders_table, "message_key"), Some((20, 20)));
    assert_eq!(text_of(url, &format!("SELECT total FROM {orders_table} WHERE message_key = 'order-4'")), "4.5");

    drop_table(url, &table);
    drop_table(url, &orders_table);
}

fn execute(url: &str, sql: &str) {
    runtime().block_on(async {
        sqlx::any::install_default_drivers();
        let url = if url.starts_with("sqlite:") { format!("{url}?mode=rwc") } else { url.to_string() };
        let pool = sqlx::AnyPool::connect(&url).await.expect("connect");
        sqlx::query(sql).execute(&pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        pool.close().await;
    })
}

fn holdfast(args: &[&str], database_url: &str) -> (i32, String) {
    let output = std::process::Command::new(holdfast_bin())
        .args(args)
        .args(["--database-url", database_url])
        .output()
        .expect("run holdfast");
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The classic case: a CSV producer, an existing `customers(id, name, email, city)` table with
/// its own types and key, and a sink that maps fields onto columns and stores each record once.
fn csv_lines_land_in_an_existing_customers_table(url: &str) {
    let env = Env::start();
    let table = unique("customers");
    let tracking = unique("processed");
    execute(url, &format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200), city VARCHAR(100))"));
    let queue = unique("customers");
    let queue_url = create_queue(&env.endpoint, &queue, 1, 2);
    let mut bodies: Vec<String> = (1..=30).map(|i| format!("{i},Customer {i},c{i}@example.com,City {i}")).collect();
    bodies[6] = r#"7,"Lovelace, Ada",ada@example.com,London"#.to_string();
    bodies[7] = "8,Grace Hopper,grace@example.com,".to_string();
    // One message with three records, five lines the producer sent twice, and one bad line.
    bodies.push("31,Three,t@example.com,A\n32,Records,r@example.com,B\n33,Inside,i@example.com,C".to_string());
    bodies.extend((1..=5).map(|i| format!("{i},Customer {i},c{i}@example.com,City {i}")));
    bodies.push("34,only two fields".to_string());
    send_bodies(&env.endpoint, &queue_url, &bodies);
    let args = [
        "sink",
        "--endpoint-url",
        &env.endpoint,
        "--queue",
        &queue,
        "--database-url",
        url,
        "--table",
        &table,
        "--tracking-table",
        &tracking,
        "--format",
        "csv",
        "--fields",
        "id,name,email,city",
        "--key",
        "id",
        "--map",
        "id=id",
        "--map",
        "name=name",
        "--map",
        "email=email",
        "--map",
        "city=city",
        "--wait-time",
        "1",
        "--scale-interval",
        "1",
        "--retry-rejected-after",
        "0",
        "--exit-when-empty",
    ];
    let mut sink = Proc::start(&args, &env.path("csv-sink.log"), false);
    assert_eq!(sink.wait_exit(Duration::from_secs(90)).code(), Some(0), "{}", sink.log());
    let log = sink.log();
    assert_eq!(counts(url, &table, "id"), Some((33, 33)), "{log}");
    assert_eq!(text_of(url, &format!("SELECT name FROM {table} WHERE id = 7")), "Lovelace, Ada");
    assert_eq!(
        text_of(url, &format!("SELECT CASE WHEN city IS NULL THEN 'null' ELSE city END FROM {table} WHERE id = 8")),
        "null",
        "an empty CSV field is NULL"
    );
    assert!(log.contains("already stored 5"), "the producer's resends are stored once: {log}");
    assert!(log.contains("has 2 fields, expected 4"), "{log}");
    assert_eq!(queue_depth(&env.endpoint, &format!("{queue}-dlq")), 1, "the bad line went to the dead-letter queue");

    let tracked = ["--tracking-table", tracking.as_str(), "--table", table.as_str()];
    let (_, count) = holdfast(&[&["sink", "processed", "count"][..], &tracked[..]].concat(), url);
    assert_eq!(count.trim(), "33");
    let (_, list) = holdfast(&[&["sink", "processed", "list", "--limit", "5"][..], &tracked[..]].concat(), url);
    assert_eq!(list.lines().count(), 5, "{list}");
    assert!(list.lines().all(|line| line.split('\t').nth(1) == Some(table.as_str())), "{list}");
    let (_, _) = holdfast(&[&["sink", "processed", "clear", "--older-than", "1d"][..], &tracked[..]].concat(), url);
    let (_, count) = holdfast(&[&["sink", "processed", "count"][..], &tracked[..]].concat(), url);
    assert_eq!(count.trim(), "33", "nothing is a day old yet");
    let (_, _) = holdfast(&[&["sink", "processed", "clear"][..], &tracked[..]].concat(), url);
    let (_, count) = holdfast(&[&["sink", "processed", "count"][..], &tracked[..]].concat(), url);
    assert_eq!(count.trim(), "0");
    drop_table(url, &table);
    drop_table(url, &tracking);
}

fn every_sink(url: &str) {
    worker_and_sink_store_each_message_once(url);
    csv_lines_land_in_an_existing_customers_table(url);
}

#[test]
fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    every_sink(&format!("sqlite://{}", dir.path().join("leads.db").display()));
}

#[test]
fn mariadb() {
    match std::env::var("HOLDFAST_TEST_MYSQL_URL") {
        Ok(url) => every_sink(&url),
        Err(_) => skip("HOLDFAST_TEST_MYSQL_URL is not set (eval \"$(scripts/forms-deps.sh)\")"),
    }
}

#[test]
fn postgres() {
    match std::env::var("HOLDFAST_TEST_POSTGRES_URL") {
        Ok(url) => every_sink(&url),
        Err(_) => skip("HOLDFAST_TEST_POSTGRES_URL is not set (eval \"$(scripts/forms-deps.sh)\")"),
    }
}

#[test]
fn a_table_with_other_columns_stops_the_worker_with_a_clear_error() {
    let env = Env::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("leads.db").display());
    runtime().block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("{url}?mode=rwc")).await.unwrap();
        sqlx::query("CREATE TABLE leads (id INTEGER PRIMARY KEY, email TEXT)").execute(&pool).await.unwrap();
    });
    let mut worker = env.worker(&unique("leads"), &url, &[]);
    assert_eq!(worker.wait_exit(Duration::from_secs(30)).code(), Some(1));
    assert!(worker.log().contains("does not have the columns"), "{}", worker.log());
}
