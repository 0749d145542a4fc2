//! `holdfast bench postgres`, the raw SQL baseline, against a real PostgreSQL: it measures,
//! reconciles every inserted row against the deleted ones, and leaves no table behind.
//!
//! Needs HOLDFAST_TEST_POSTGRES_URL (scripts/forms-deps.sh starts a PostgreSQL and exports it);
//! without it the test prints SKIPPED, or fails under CI=true.

use std::process::Command;

use serde_json::Value;

fn database_url() -> Option<String> {
    match std::env::var("HOLDFAST_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run this test, but HOLDFAST_TEST_POSTGRES_URL is not set"
            );
            eprintln!("SKIPPED: HOLDFAST_TEST_POSTGRES_URL is not set (eval \"$(scripts/forms-deps.sh)\")");
            None
        }
    }
}

fn run(url: &str, extra: &[&str]) -> Value {
    let output = Command::new(crate::common::binary())
        .args(["bench", "postgres", "--database-url", url, "-c", "4", "-d", "1", "--json"])
        .args(extra)
        .output()
        .expect("run holdfast bench postgres");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "exit {:?}: {stdout}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test]
async fn the_raw_sql_baseline_measures_reconciles_and_cleans_up() {
    let Some(url) = database_url() else { return };
    for extra in [&[][..], &["--batch", "--delete-batch"][..]] {
        let report = run(&url, extra);
        assert_eq!(report["scenario"], "postgres");
        assert!(!report["endpoint"].as_str().unwrap().contains("holdfast@"), "no password: {}", report["endpoint"]);
        assert!(report["messages"].as_u64().unwrap() > 0, "{report}");
        let reconcile = &report["reconcile"];
        assert_eq!(reconcile["lost"], 0, "{report}");
        assert_eq!(reconcile["duplicates"], 0, "{report}");
        assert_eq!(reconcile["sent"], reconcile["received"], "{report}");
        for op in ["send", "receive", "delete"] {
            assert!(report["latency_ms"][op]["count"].as_u64().unwrap() > 0, "{op}: {report}");
        }

        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let table = report["queue"].as_str().unwrap();
        let row = client.query_one("SELECT to_regclass($1)::text", &[&table]).await.unwrap();
        assert_eq!(row.get::<_, Option<String>>(0), None, "table {table} was dropped");
    }
}

#[test]
fn a_database_that_is_not_there_is_an_error_not_a_hang() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let output = Command::new(crate::common::binary())
        .args(["bench", "postgres", "--database-url", &format!("postgres://u:p@127.0.0.1:{port}/db"), "-d", "1"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("connecting to postgres://u:…@127.0.0.1"), "{stderr}");
}
