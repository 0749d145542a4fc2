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

#[test]
fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    worker_and_sink_store_each_message_once(&format!("sqlite://{}", dir.path().join("leads.db").display()));
}

#[test]
fn mariadb() {
    match std::env::var("HOLDFAST_TEST_MYSQL_URL") {
        Ok(url) => worker_and_sink_store_each_message_once(&url),
        Err(_) => skip("HOLDFAST_TEST_MYSQL_URL is not set (eval \"$(scripts/forms-deps.sh)\")"),
    }
}

#[test]
fn postgres() {
    match std::env::var("HOLDFAST_TEST_POSTGRES_URL") {
        Ok(url) => worker_and_sink_store_each_message_once(&url),
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
