//! Faults from outside the server: a full disk, a damaged or foreign database file, and clients
//! that send garbage. The server must fail cleanly (an SQS error, or a startup error naming the
//! file), never hang, crash, lose what it acknowledged, or start on a store it cannot trust.
//! Every wait is bounded; nothing depends on speed.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{client_without_retries, create_queue, serve_until_exit, unique, TestServer};
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::operation::send_message::SendMessageError;
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound on every single call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server refusing its database may take to exit.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const DB_FILE: &str = "holdfast.db";

/// A durable engine as the disk-full tests start it.
#[derive(Clone, Copy)]
struct Engine {
    args: &'static [&'static str],
    /// What a refusal to start on a full disk names.
    file: &'static str,
    /// Whether the first write after the disk fills is refused. The journal keeps its next
    /// segment allocated ahead, so it accepts writes into that space first.
    refuses_at_once: bool,
}

const SQLITE: Engine = Engine { args: &[], file: DB_FILE, refuses_at_once: true };
/// 1 MiB segments, so that a few fit on the 8 MiB filesystem.
const JOURNAL: Engine =
    Engine { args: &["--storage", "journal", "--journal-segment-mib", "1"], file: "journal", refuses_at_once: false };

// ---------------------------------------------------------------------------------------------
// Disk full.

/// A tmpfs mounted for one test, unmounted when dropped (even when the test panics).
struct TmpfsMount {
    path: PathBuf,
}

impl TmpfsMount {
    /// Mounts a tmpfs of `size` (e.g. "8m") on `path`, or says why it cannot (not root, no
    /// `mount`, no permission in this container).
    fn mount(path: &Path, size: &str) -> Result<TmpfsMount, String> {
        std::fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run `mount`: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "`mount -t tmpfs` is not permitted here ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let mount = TmpfsMount { path: path.to_path_buf() };
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if !mounts.lines().any(|l| l.split(' ').nth(1) == Some(&*canonical.to_string_lossy())) {
            return Err(format!("`mount` succeeded but {} is not in /proc/self/mounts", path.display()));
        }
        Ok(mount)
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds a file there; detach it so the mount never outlives the test.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Writes `path` until the filesystem is full, or up to `limit` bytes; returns the bytes written.
fn fill(path: &Path, limit: Option<u64>) -> u64 {
    let mut file = std::fs::File::create(path).expect("filler file");
    let mut written = 0u64;
    for chunk in [256 << 10, 4 << 10, 512] {
        let bytes = vec![0x5a_u8; chunk];
        while limit.is_none_or(|limit| written + chunk as u64 <= limit) {
            match file.write_all(&bytes) {
                Ok(()) => written += chunk as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("writing the filler file: {e}"),
            }
        }
    }
    let _ = file.sync_all();
    written
}

/// An 8 MiB tmpfs on `path`, unmounted when dropped. Where this machine cannot mount one (not
/// root, no permission in a container) the test is skipped with a notice, except under CI, where
/// a disk-full test that cannot run fails.
fn small_filesystem(path: &Path) -> Option<TmpfsMount> {
    match TmpfsMount::mount(path, "8m") {
        Ok(mount) => Some(mount),
        Err(reason) => {
            assert!(std::env::var_os("CI").is_none(), "CI must run the disk-full tests: {reason}");
            println!("SKIPPED: disk-full test needs a small filesystem: {reason}");
            None
        }
    }
}

/// The error must be the documented one: ServiceUnavailable, HTTP 503.
fn assert_service_unavailable<E: ProvideErrorMetadata + std::fmt::Debug>(
    error: &aws_sdk_sqs::error::SdkError<E, aws_sdk_sqs::config::http::HttpResponse>,
    what: &str,
    log: impl Fn() -> String,
) {
    let status = error.raw_response().map(|r| r.status().as_u16());
    assert!(
        error.code() == Some("ServiceUnavailable") && status == Some(503),
        "{what} on a full disk: expected ServiceUnavailable (503), got code {:?}, status {status:?}: {error:?}\nserver log:\n{}",
        error.code(),
        log()
    );
}

/// Messages sent during the disk-full test: everything attempted, and what was acknowledged.
#[derive(Default)]
struct Ledger {
    attempted: BTreeSet<String>,
    acked: BTreeSet<String>,
}

impl Ledger {
    /// One SendMessage, bounded; records the attempt and, on success, the acknowledgement.
    async fn send(
        &mut self,
        client: &aws_sdk_sqs::Client,
        url: &str,
        body: String,
        server: &TestServer,
    ) -> Result<(), Box<aws_sdk_sqs::error::SdkError<SendMessageError, HttpResponse>>> {
        self.attempted.insert(body.clone());
        let call = client.send_message().queue_url(url).message_body(&body).send();
        let Ok(answer) = tokio::time::timeout(CALL_TIMEOUT, call).await else {
            panic!("SendMessage hung for {CALL_TIMEOUT:?}\nserver log:\n{}", server.log())
        };
        answer.map_err(Box::new)?;
        self.acked.insert(body);
        Ok(())
    }

    /// What a drain found must be exactly what was acknowledged, give or take sends whose
    /// failure was reported (they must not be there either: nothing half-written is kept).
    fn check(&self, found: &BTreeSet<String>, round: &str) {
        let lost: Vec<_> = self.acked.iter().filter(|b| !found.contains(*b)).map(|b| truncate(b)).collect();
        assert!(lost.is_empty(), "{round}: {} acknowledged messages were lost: {lost:?}", lost.len());
        let extra: Vec<_> = found.iter().filter(|b| !self.acked.contains(*b)).map(|b| truncate(b)).collect();
        assert!(extra.is_empty(), "{round}: messages whose send failed (or never sent) were delivered: {extra:?}");
        println!("{round}: exactly the {} acknowledged messages are there", found.len());
    }
}

/// Fills the filesystem, checks that sends fail cleanly while it is full, frees the space and
/// checks that the server carries on by itself. With `prefill`, a filler of that size is written
/// first and messages fill the rest, so the store itself hits the wall in the middle of growing;
/// without, a filler takes every free byte before the next write.
async fn fill_and_recover(
    server: &mut TestServer,
    client: &aws_sdk_sqs::Client,
    url: &str,
    round: &str,
    prefill: Option<u64>,
    ledger: &mut Ledger,
) {
    let filler = server.data_dir.join(format!("filler-{round}"));
    let filled = fill(&filler, prefill);
    let big = "x".repeat(64 << 10);
    // Four senders at once, so that commits shared by several requests (group commit) fail too;
    // each sends until its first failure. At most 8 MiB fit: 4 x 100 sends of 64 KiB cannot.
    let sender = |worker: usize| {
        let (client, big, server) = (client.clone(), &big, &*server);
        async move {
            let mut ledger = Ledger::default();
            for i in 0..100 {
                if let Err(error) =
                    ledger.send(&client, url, format!("{round}-filling-{worker}-{i}:{big}"), server).await
                {
                    return (ledger, Some(error));
                }
            }
            (ledger, None)
        }
    };
    let (a, b, c, d) = tokio::join!(sender(0), sender(1), sender(2), sender(3));
    let mut accepted = 0;
    for (worker, (filled_by, error)) in [a, b, c, d].into_iter().enumerate() {
        accepted += filled_by.acked.len();
        ledger.attempted.extend(filled_by.attempted);
        ledger.acked.extend(filled_by.acked);
        let error = error.unwrap_or_else(|| {
            panic!(
                "{round}: sender {worker}: 100 sends of 64 KiB succeeded on an 8 MiB filesystem\nlog:\n{}",
                server.log()
            )
        });
        assert_service_unavailable(&error, "SendMessage", || server.log());
        if worker == 0 {
            println!("{round}: the first failure says: {:?} {:?}", error.code(), error.message());
        }
    }
    println!("{round}: filler of {filled} bytes, then {accepted} sends of 64 KiB succeeded before each sender failed");
    assert!(server.is_running(), "the server died on a full disk\nserver log:\n{}", server.log());

    // While full, every call still answers: success, or the same clean error.
    for i in 0..5 {
        if let Err(error) = ledger.send(client, url, format!("{round}-full-{i}:{big}"), server).await {
            assert_service_unavailable(&error, "SendMessage", || server.log());
        }
    }
    let call = client.receive_message().queue_url(url).visibility_timeout(0).send();
    if let Err(error) = tokio::time::timeout(CALL_TIMEOUT, call).await.expect("ReceiveMessage answers while full") {
        assert_service_unavailable(&error, "ReceiveMessage", || server.log());
    }
    let health = tokio::time::timeout(CALL_TIMEOUT, http_get(&server.url, "/health")).await.expect("/health answers");
    assert_eq!(health, Some(200), "health check while the disk is full");
    assert!(server.is_running(), "the server died on a full disk\nserver log:\n{}", server.log());

    // Free the space: the very next send succeeds, and so do the ones after it.
    std::fs::remove_file(&filler).expect("remove the filler");
    if let Err(error) = ledger.send(client, url, format!("{round}-freed:{}", "a".repeat(1000)), server).await {
        panic!("{round}: the first send after space was freed failed: {error:?}\nserver log:\n{}", server.log());
    }
    for i in 0..10 {
        let sent = ledger.send(client, url, format!("{round}-recovered-{i}:{}", "r".repeat(1000)), server).await;
        sent.unwrap_or_else(|e| panic!("{round}: sends fail after space was freed: {e:?}\nlog:\n{}", server.log()));
    }
}

/// A disk-full scenario on its own 8 MiB tmpfs: messages before, `fill_and_recover`, then
/// kill -9 and a restart (which checks the file's integrity), and everything acknowledged, and
/// nothing else, must be there.
async fn disk_full_scenario(round: &str, prefill: Option<u64>, engine: Engine) {
    let temp = tempfile::tempdir().expect("temp dir");
    let data_dir = temp.path().join("data");
    // Declared before the server, so the server is dropped (killed) before the unmount.
    let Some(_mount) = small_filesystem(&data_dir) else { return };
    // The log sits next to the data directory, outside the small filesystem.
    let mut server = TestServer::start_in(&data_dir, engine.args);
    let client = client_without_retries(&server.url);
    let name = unique("full");
    let url = create_queue(&client, &name).await;
    let mut ledger = Ledger::default();
    for i in 0..20 {
        ledger.send(&client, &url, format!("before-{i}:{}", "b".repeat(1000)), &server).await.expect("send");
    }
    fill_and_recover(&mut server, &client, &url, round, prefill, &mut ledger).await;
    let log = server.log();
    let logged = log.lines().find(|l| l.contains("WARN") && l.to_lowercase().contains("full"));
    assert!(logged.is_some(), "no warning in the log says the storage is full\nserver log:\n{log}");
    println!("{round}: logged: {}", logged.unwrap_or_default());

    server.kill9();
    server.restart();
    let client = client_without_retries(&server.url);
    let url = client.get_queue_url().queue_name(&name).send().await.expect("the queue survives").queue_url.unwrap();
    ledger.check(&drain(&client, &url).await, round);
    drop(server);
}

/// The store itself hits the wall in the middle of growing: a filler leaves 5 MiB, messages of
/// 64 KiB take the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_fills_the_disk_fails_sends_cleanly_and_recovers_once_space_is_freed() {
    disk_full_scenario("store fills the disk", Some(3 << 20), SQLITE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_fills_the_disk_fails_sends_cleanly_and_recovers_once_space_is_freed() {
    disk_full_scenario("journal fills the disk", Some(3 << 20), JOURNAL).await;
}

/// Another file takes every free byte, so the very next write fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_filled_by_another_file_fails_sends_cleanly_and_recovers_once_space_is_freed() {
    disk_full_scenario("another file fills the disk", None, SQLITE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_filled_by_another_file_fails_journal_sends_cleanly_and_recovers_once_space_is_freed() {
    disk_full_scenario("another file fills the journal's disk", None, JOURNAL).await;
}

/// `kill -9` while the disk is full, with the log full of commits not yet checkpointed, then a
/// restart while it is still full: the server either serves (refusing writes cleanly) or exits at
/// once with an error saying why; it never hangs and never damages the store. Once space is freed
/// it starts, and everything acknowledged is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_while_the_disk_is_full_loses_nothing() {
    crash_while_full(SQLITE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_while_the_journal_disk_is_full_loses_nothing() {
    crash_while_full(JOURNAL).await;
}

async fn crash_while_full(engine: Engine) {
    let temp = tempfile::tempdir().expect("temp dir");
    let data_dir = temp.path().join("data");
    let Some(_mount) = small_filesystem(&data_dir) else { return };
    let mut server = TestServer::start_in(&data_dir, engine.args);
    let client = client_without_retries(&server.url);
    let name = unique("fullcrash");
    let url = create_queue(&client, &name).await;
    let mut ledger = Ledger::default();
    let filler = data_dir.join("filler");
    fill(&filler, Some(3 << 20));
    let big = "x".repeat(64 << 10);
    let mut failed = None;
    for i in 0..200 {
        if let Err(error) = ledger.send(&client, &url, format!("filling-{i}:{big}"), &server).await {
            failed = Some(error);
            break;
        }
    }
    let error = failed.unwrap_or_else(|| panic!("200 sends of 64 KiB fit on an 8 MiB filesystem"));
    assert_service_unavailable(&error, "SendMessage", || server.log());
    server.kill9();

    match crate::common::try_start_in(&data_dir, engine.args, STARTUP_TIMEOUT) {
        Ok(mut full) => {
            println!("restarted on a full disk: it serves");
            let client = client_without_retries(&full.url);
            let url =
                client.get_queue_url().queue_name(&name).send().await.expect("the queue is there").queue_url.unwrap();
            if let Err(error) = ledger.send(&client, &url, format!("while-full:{big}"), &full).await {
                assert_service_unavailable(&error, "SendMessage after a restart", || full.log());
            }
            assert!(full.is_running(), "the restarted server died on the full disk\nlog:\n{}", full.log());
            full.kill9();
        }
        Err(exited) => {
            let status = exited.status.unwrap_or_else(|| {
                panic!("restarting on a full disk neither served nor exited in {STARTUP_TIMEOUT:?}\n{}", exited.stderr)
            });
            assert!(!status.success(), "refusing to start must not exit 0\nlog:\n{}", exited.stderr);
            let reason = exited.stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default();
            println!("restarted on a full disk: refused ({status}): {reason}");
            assert!(
                reason.contains("full") && reason.contains(engine.file),
                "refusing to start on a full disk must say the disk is full and name the file\nlog:\n{}",
                exited.stderr
            );
        }
    }

    std::fs::remove_file(&filler).expect("remove the filler");
    server.restart();
    let client = client_without_retries(&server.url);
    let url = client.get_queue_url().queue_name(&name).send().await.expect("the queue survives").queue_url.unwrap();
    ledger.check(&drain(&client, &url).await, "crash while full");
    drop(server);
}

/// A full disk does not wedge the store: once a write has failed for lack of space, receives,
/// deletes, purges and queue deletions still work (in the space of the released reserve), sends
/// are refused cleanly, and sends work again as soon as space is freed, with no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_still_lets_clients_receive_delete_and_purge() {
    full_disk_drains(SQLITE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_disk_still_lets_clients_receive_delete_and_purge() {
    full_disk_drains(JOURNAL).await;
}

async fn full_disk_drains(engine: Engine) {
    let temp = tempfile::tempdir().expect("temp dir");
    let data_dir = temp.path().join("data");
    let Some(_mount) = small_filesystem(&data_dir) else { return };
    let server = TestServer::start_in(&data_dir, engine.args);
    let client = client_without_retries(&server.url);
    let url = create_queue(&client, &unique("full")).await;
    let other = create_queue(&client, &unique("other")).await;
    let big = "x".repeat(64 << 10);
    for i in 0..10 {
        client.send_message().queue_url(&url).message_body(format!("{i}:{big}")).send().await.expect("send");
    }
    let filler = data_dir.join("filler");
    fill(&filler, None);
    // The journal first fills the space it had allocated ahead (at most two 1 MiB segments).
    let attempts = if engine.refuses_at_once { 1 } else { 40 };
    let mut refused = None;
    for _ in 0..attempts {
        if let Err(error) = client.send_message().queue_url(&url).message_body(&big).send().await {
            refused = Some(error);
            break;
        }
    }
    let refused = refused.unwrap_or_else(|| panic!("{attempts} sends of 64 KiB fit on a full disk"));
    assert_service_unavailable(&refused, "SendMessage", || server.log());

    let received = client.receive_message().queue_url(&url).max_number_of_messages(5).send().await;
    let messages = received.unwrap_or_else(|e| {
        panic!(
            "ReceiveMessage on a full disk: {e:?}
{}",
            server.log()
        )
    });
    let messages = messages.messages.unwrap_or_default();
    assert_eq!(messages.len(), 5);
    for message in &messages {
        let receipt = message.receipt_handle.clone().unwrap();
        let deleted = client.delete_message().queue_url(&url).receipt_handle(receipt).send().await;
        deleted.unwrap_or_else(|e| {
            panic!(
                "DeleteMessage on a full disk: {e:?}
{}",
                server.log()
            )
        });
    }
    let purged = client.purge_queue().queue_url(&url).send().await;
    purged.unwrap_or_else(|e| {
        panic!(
            "PurgeQueue on a full disk: {e:?}
{}",
            server.log()
        )
    });
    let dropped = client.delete_queue().queue_url(&other).send().await;
    dropped.unwrap_or_else(|e| {
        panic!(
            "DeleteQueue on a full disk: {e:?}
{}",
            server.log()
        )
    });
    let still = client.send_message().queue_url(&url).message_body(&big).send().await.expect_err("still full");
    assert_service_unavailable(&still, "SendMessage", || server.log());

    std::fs::remove_file(&filler).expect("remove the filler");
    client.send_message().queue_url(&url).message_body("space is back").send().await.expect("sends work again");
    let received = client.receive_message().queue_url(&url).send().await.expect("receive");
    assert_eq!(received.messages.unwrap_or_default()[0].body.as_deref(), Some("space is back"));
}

fn truncate(body: &str) -> &str {
    &body[..body.len().min(40)]
}

/// Receives everything visible (hiding it for an hour) and returns the bodies; each at most once.
async fn drain(client: &aws_sdk_sqs::Client, url: &str) -> BTreeSet<String> {
    let mut bodies = BTreeSet::new();
    for _ in 0..1000 {
        let call = client.receive_message().queue_url(url).max_number_of_messages(10).visibility_timeout(3600).send();
        let messages = tokio::time::timeout(CALL_TIMEOUT, call).await.expect("answers").expect("receive").messages;
        let messages = messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        for message in messages {
            let body = message.body.unwrap_or_default();
            assert!(bodies.insert(body.clone()), "{} delivered twice while hidden", truncate(&body));
        }
    }
    panic!("the queue never ran dry");
}

// ---------------------------------------------------------------------------------------------
// Damaged and foreign database files.

/// A data directory holding a real, cleanly closed holdfast database with a queue and messages.
async fn populated_data_dir() -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().expect("temp dir");
    let data_dir = temp.path().join("data");
    let mut server = TestServer::start_in(&data_dir, &[]);
    let client = server.client();
    let url = create_queue(&client, &unique("corrupt")).await;
    for i in 0..50 {
        let body = format!("message-{i}:{}", "m".repeat(2000));
        client.send_message().queue_url(&url).message_body(body).send().await.expect("send");
    }
    assert!(server.terminate().success(), "a clean shutdown");
    (temp, data_dir)
}

/// Starting on `data_dir` must fail quickly, with an error naming the database file and
/// containing `reason`, and without ever serving.
fn assert_refused(data_dir: &Path, what: &str, reason: &str) {
    let exited = serve_until_exit(data_dir, &[], STARTUP_TIMEOUT);
    let context = format!("stdout:\n{}\nstderr:\n{}", exited.stdout, exited.stderr);
    assert!(!exited.served(), "{what}: the server started serving on it\n{context}");
    let status = exited.status.unwrap_or_else(|| panic!("{what}: still running after {STARTUP_TIMEOUT:?}\n{context}"));
    assert!(!status.success(), "{what}: exited with success\n{context}");
    let path = data_dir.join(DB_FILE);
    assert!(
        exited.stderr.contains(&*path.to_string_lossy()),
        "{what}: the error does not name {}\n{context}",
        path.display()
    );
    assert!(exited.stderr.contains(reason), "{what}: the error does not say {reason:?}\n{context}");
    println!("{what}: refused ({status}): {}", exited.stderr.lines().last().unwrap_or_default());
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

#[tokio::test]
async fn garbage_over_the_whole_database_file_stops_startup() {
    let (_temp, data_dir) = populated_data_dir().await;
    let db = data_dir.join(DB_FILE);
    let len = std::fs::metadata(&db).unwrap().len() as usize;
    std::fs::write(&db, random_bytes(len)).unwrap();
    assert_refused(&data_dir, "garbage database", "");
}

#[tokio::test]
async fn garbage_inside_the_database_file_stops_startup() {
    let (_temp, data_dir) = populated_data_dir().await;
    let db = data_dir.join(DB_FILE);
    let mut bytes = std::fs::read(&db).unwrap();
    // The header and the schema page stay intact; the queue and message pages are overwritten.
    let garbage = random_bytes(bytes.len() - 4096);
    bytes[4096..].copy_from_slice(&garbage);
    std::fs::write(&db, bytes).unwrap();
    assert_refused(&data_dir, "database with damaged pages", "");
}

#[tokio::test]
async fn a_truncated_database_file_stops_startup() {
    let (_temp, data_dir) = populated_data_dir().await;
    let db = data_dir.join(DB_FILE);
    let len = std::fs::metadata(&db).unwrap().len();
    assert!(len > 3 * 4096, "the database spans several pages ({len} bytes)");
    let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    file.set_len(len / 2 + 100).unwrap();
    drop(file);
    assert_refused(&data_dir, "database truncated to half", "");
    std::fs::write(&db, b"").unwrap();
    assert_refused(&data_dir, "database truncated to nothing", "");
}

#[tokio::test]
async fn a_database_from_a_newer_holdfast_stops_startup() {
    let (_temp, data_dir) = populated_data_dir().await;
    let db = data_dir.join(DB_FILE);
    let mut bytes = std::fs::read(&db).unwrap();
    // The SQLite header keeps `PRAGMA user_version` at offset 60, big-endian: the schema version.
    let version = u32::from_be_bytes(bytes[60..64].try_into().unwrap());
    assert!(version >= 1, "holdfast records a schema version (user_version {version})");
    bytes[60..64].copy_from_slice(&(version + 41).to_be_bytes());
    std::fs::write(&db, bytes).unwrap();
    assert_refused(&data_dir, "database with a future schema version", "version");
}

#[tokio::test]
async fn a_database_of_another_application_stops_startup() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data_dir = temp.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::write(data_dir.join(DB_FILE), foreign_sqlite_database()).unwrap();
    assert_refused(&data_dir, "SQLite database of another application", "");
    // Refusing it must not have touched it: still the other application's bytes, no log beside it.
    let after = std::fs::read(data_dir.join(DB_FILE)).unwrap();
    let before = foreign_sqlite_database();
    let changed: Vec<usize> = (0..before.len().max(after.len())).filter(|&i| before.get(i) != after.get(i)).collect();
    assert!(
        changed.is_empty(),
        "refusing the foreign database modified it: {} of its bytes changed, at offsets {:?}; header bytes 18..32 \
         were {:?}, now {:?} (bytes 18 and 19 are 2 in WAL journal mode)",
        changed.len(),
        &changed[..changed.len().min(12)],
        &before[18..32],
        after.get(18..32)
    );
    for leftover in ["holdfast.db-wal", "holdfast.db-shm"] {
        assert!(!data_dir.join(leftover).exists(), "refusing the foreign database left {leftover} beside it");
    }
}

/// A valid two-page SQLite database holding one table, `notes(body TEXT)`, and user_version 0:
/// what another program would leave. Built by hand (the tests have no SQLite library); `sqlite3`
/// reports `integrity_check` ok on it.
fn foreign_sqlite_database() -> Vec<u8> {
    const PAGE: usize = 4096;
    let mut db = vec![0u8; 2 * PAGE];
    db[..16].copy_from_slice(b"SQLite format 3\0");
    db[16..18].copy_from_slice(&(PAGE as u16).to_be_bytes());
    db[18..24].copy_from_slice(&[1, 1, 0, 64, 32, 32]); // rollback journal, no reserved bytes
    db[24..28].copy_from_slice(&1u32.to_be_bytes()); // file change counter
    db[28..32].copy_from_slice(&2u32.to_be_bytes()); // pages
    db[40..44].copy_from_slice(&1u32.to_be_bytes()); // schema cookie
    db[44..48].copy_from_slice(&4u32.to_be_bytes()); // schema format
    db[56..60].copy_from_slice(&1u32.to_be_bytes()); // UTF-8
    db[92..96].copy_from_slice(&1u32.to_be_bytes()); // version-valid-for = change counter
    db[96..100].copy_from_slice(&3_045_000u32.to_be_bytes());
    // sqlite_schema row 1: ('table', 'notes', 'notes', 2, sql), as a record.
    let sql = b"CREATE TABLE notes(body TEXT)";
    let text = |len: usize| (13 + 2 * len) as u8;
    let mut record = vec![6, text(5), text(5), text(5), 1, text(sql.len())];
    record.extend_from_slice(b"tablenotesnotes");
    record.push(2);
    record.extend_from_slice(sql);
    let mut cell = vec![record.len() as u8, 1];
    cell.extend_from_slice(&record);
    let cell_at = PAGE - cell.len();
    db[cell_at..PAGE].copy_from_slice(&cell);
    // Page 1's b-tree header (after the 100-byte file header): a table leaf with one cell.
    db[100] = 0x0d;
    db[103..105].copy_from_slice(&1u16.to_be_bytes());
    db[105..107].copy_from_slice(&(cell_at as u16).to_be_bytes());
    db[108..110].copy_from_slice(&(cell_at as u16).to_be_bytes());
    // Page 2: the empty `notes` table.
    db[PAGE] = 0x0d;
    db[PAGE + 5..PAGE + 7].copy_from_slice(&(PAGE as u16).to_be_bytes());
    db
}

/// The other side of refusing damage: a torn tail of the write-ahead log (a crash in the middle of
/// appending a commit) is normal, and recovered from without losing anything acknowledged.
#[tokio::test]
async fn a_torn_write_ahead_log_tail_is_recovered() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data_dir = temp.path().join("data");
    let mut server = TestServer::start_in(&data_dir, &[]);
    let client = server.client();
    let name = unique("torn");
    let url = create_queue(&client, &name).await;
    let mut sent = BTreeSet::new();
    for i in 0..30 {
        let body = format!("kept-{i}");
        client.send_message().queue_url(&url).message_body(&body).send().await.expect("send");
        sent.insert(body);
    }
    server.kill9();
    let wal = data_dir.join(format!("{DB_FILE}-wal"));
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(wal_len > 0, "the acknowledged sends are in the write-ahead log after kill -9");
    let mut file = std::fs::OpenOptions::new().append(true).open(&wal).unwrap();
    file.write_all(&random_bytes(10_000)).unwrap();
    drop(file);

    server.restart();
    let client = client_without_retries(&server.url);
    let url = client.get_queue_url().queue_name(&name).send().await.expect("the queue survives").queue_url.unwrap();
    assert_eq!(drain(&client, &url).await, sent, "every acknowledged send survives a torn log tail");
}

// ---------------------------------------------------------------------------------------------
// Clients that send garbage.

/// Sends raw bytes on a fresh connection and reads until the server closes it; returns the
/// response's status, or `None` if the connection closed without an answer.
async fn raw_exchange(url: &str, request: &[u8]) -> Option<u16> {
    let exchange = async {
        let mut stream = TcpStream::connect(url.trim_start_matches("http://")).await.expect("connect");
        // The server may answer and close before it has read everything: not an error here.
        let _ = stream.write_all(request).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        answer.strip_prefix("HTTP/1.1 ").and_then(|rest| rest.get(..3)).and_then(|code| code.parse().ok())
    };
    tokio::time::timeout(CALL_TIMEOUT, exchange).await.expect("the server answers or closes the connection")
}

async fn http_get(url: &str, path: &str) -> Option<u16> {
    let host = url.trim_start_matches("http://");
    raw_exchange(url, format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes()).await
}

fn post(host: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

// ---------------------------------------------------------------------------------------------
// A panic inside the store.

/// A storage command that panics fails its own request with InternalFailure; the writer thread
/// survives, so every later request is served and `/health` and `/ready` stay truthful (200).
/// The panic is injected by the `fault-injection` feature, which the test build enables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_store_fails_one_request_and_the_server_goes_on() {
    let doomed = unique("panics");
    // Each test runs in its own process under nextest; under `cargo test` the name is unique, so
    // other tests' servers never meet it.
    std::env::set_var("HOLDFAST_FAULT_PANIC_ON_CREATE", &doomed);
    let mut server = TestServer::start();
    let client = client_without_retries(&server.url);
    let error = tokio::time::timeout(CALL_TIMEOUT, client.create_queue().queue_name(&doomed).send())
        .await
        .expect("CreateQueue answers")
        .expect_err("the injected panic fails the request");
    assert_eq!(error.code(), Some("InternalFailure"), "{error:?}");
    assert!(server.log().contains("injected panic"), "the panic is logged:\n{}", server.log());

    for path in ["/health", "/ready"] {
        let status = tokio::time::timeout(CALL_TIMEOUT, http_get(&server.url, path)).await.expect("answers");
        assert_eq!(status, Some(200), "{path} after a panic in the store");
    }
    let url = create_queue(&client, &unique("after-panic")).await;
    still_serves(&mut server, &client, &url, "a panic in the store").await;
    // The failed command left nothing behind.
    let listed = client.get_queue_url().queue_name(&doomed).send().await;
    assert!(listed.expect_err("never created").into_service_error().is_queue_does_not_exist());
}

/// A normal round trip through the SDK: the server still works.
async fn still_serves(server: &mut TestServer, client: &aws_sdk_sqs::Client, url: &str, after: &str) {
    assert!(server.is_running(), "the server died after {after}\nserver log:\n{}", server.log());
    let body = format!("after {after}");
    let round_trip = async {
        client.send_message().queue_url(url).message_body(&body).send().await.map_err(|e| format!("{e:?}"))?;
        client.receive_message().queue_url(url).wait_time_seconds(1).send().await.map_err(|e| format!("{e:?}"))
    };
    let received = tokio::time::timeout(CALL_TIMEOUT, round_trip)
        .await
        .unwrap_or_else(|_| panic!("a normal request hung after {after}"))
        .unwrap_or_else(|e| panic!("a normal request failed after {after}: {e}\nserver log:\n{}", server.log()));
    let message =
        received.messages.unwrap_or_default().pop().unwrap_or_else(|| panic!("nothing received after {after}"));
    assert_eq!(message.body.as_deref(), Some(body.as_str()));
    client
        .delete_message()
        .queue_url(url)
        .receipt_handle(message.receipt_handle.unwrap())
        .send()
        .await
        .expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_clients_leaves_the_server_working() {
    let mut server = TestServer::start();
    let client = client_without_retries(&server.url);
    let url = create_queue(&client, &unique("garbage")).await;
    let host = server.url.trim_start_matches("http://").to_string();

    // A connection that stalls in the middle of its header stays open throughout.
    let mut stalled = TcpStream::connect(&host).await.expect("connect");
    stalled.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Tar").await.unwrap();

    let json = "X-Amz-Target: AmazonSQS.SendMessage\r\nContent-Type: application/x-amz-json-1.0\r\n";
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    let truncated_json = format!("{{\"QueueUrl\": \"{url}\", \"MessageBody\": \"abc");
    let truncated_form =
        format!("Action=SendMessage&QueueUrl={}&MessageBo", url.replace(':', "%3A").replace('/', "%2F"));
    let mut invalid_utf8 = b"{\"QueueUrl\": \"".to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    invalid_utf8.extend_from_slice(b"\"}");
    let bad_requests: Vec<(&str, Vec<u8>)> = vec![
        ("truncated JSON", post(&host, json, truncated_json.as_bytes())),
        ("JSON that is not an object", post(&host, json, b"[1, 2, 3]")),
        ("JSON members of the wrong type", post(&host, json, b"{\"QueueUrl\": 5, \"MessageBody\": {}}")),
        ("invalid UTF-8 in JSON", post(&host, json, &invalid_utf8)),
        ("an unknown JSON target", post(&host, "X-Amz-Target: AmazonSQS.Explode\r\n", b"{}")),
        ("a truncated form body", post(&host, form, truncated_form.as_bytes())),
        ("a form body without an action", post(&host, form, b"QueueUrl=&&&==&%%%")),
        ("an unknown form action", post(&host, form, b"Action=Explode&Version=2012-11-05")),
        ("binary garbage as a form body", post(&host, form, &random_bytes(4096))),
    ];
    for (what, request) in &bad_requests {
        let status = raw_exchange(&server.url, request).await;
        println!("{what}: {}", status.map_or("connection closed".to_string(), |s| format!("HTTP {s}")));
        assert!(
            status.is_some_and(|s| (400..500).contains(&s)),
            "{what}: expected a client error (4xx), got {status:?}\nserver log:\n{}",
            server.log()
        );
        still_serves(&mut server, &client, &url, what).await;
    }

    // Broken HTTP: refused or dropped, whichever hyper chooses, but never a 2xx or a 5xx.
    let huge_header = format!("POST / HTTP/1.1\r\nHost: {host}\r\nX-Huge: {}\r\n\r\n", "h".repeat(1 << 20));
    let many_headers = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\n{}Content-Length: 0\r\n\r\n",
        (0..500).map(|i| format!("X-Header-{i}: {i}\r\n")).collect::<String>()
    );
    let broken: Vec<(&str, Vec<u8>)> = vec![
        ("a 1 MiB header", huge_header.into_bytes()),
        ("500 headers", many_headers.into_bytes()),
        ("binary garbage instead of HTTP", random_bytes(4096)),
        ("a malformed chunked body", format!("POST / HTTP/1.1\r\nHost: {host}\r\n{form}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nAction\r\n").into_bytes()),
        ("conflicting lengths", format!("POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\nContent-Length: 50\r\nConnection: close\r\n\r\nhello").into_bytes()),
    ];
    for (what, request) in &broken {
        let status = raw_exchange(&server.url, request).await;
        println!("{what}: {}", status.map_or("connection closed".to_string(), |s| format!("HTTP {s}")));
        assert!(
            status.is_none_or(|s| (400..500).contains(&s)),
            "{what}: expected a client error or a closed connection, got {status:?}\nserver log:\n{}",
            server.log()
        );
        still_serves(&mut server, &client, &url, what).await;
    }

    // Connections that close in the middle of a request.
    let partial_body =
        format!("POST / HTTP/1.1\r\nHost: {host}\r\n{json}Content-Length: 10000\r\n\r\n{{\"QueueUrl\": \"");
    let closers: Vec<(&str, Vec<u8>)> = vec![
        ("a connection closed mid-body", partial_body.into_bytes()),
        ("a connection closed mid-header", format!("POST / HTTP/1.1\r\nHost: {host}\r\nContent-Le").into_bytes()),
    ];
    for (what, request) in &closers {
        let mut stream = TcpStream::connect(&host).await.expect("connect");
        stream.write_all(request).await.unwrap();
        drop(stream);
        still_serves(&mut server, &client, &url, what).await;
    }
    // Twenty at once, while other requests go on.
    let mut abandoned = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(&host).await.expect("connect");
        stream.write_all(closers[0].1.as_slice()).await.unwrap();
        abandoned.push(stream);
    }
    still_serves(&mut server, &client, &url, "twenty half-sent requests").await;
    drop(abandoned);
    drop(stalled);
    still_serves(&mut server, &client, &url, "all of it").await;
}

/// Query requests built to hurt the parser: each gets a 400 and the server stays responsive to
/// everyone else while they are handled.
/// - a parameter name of 50,000 dots (it used to overflow a worker's stack and abort the process);
/// - 150,000 distinct parameters in a 1.5 MB body (the tree was built in quadratic time: two such
///   requests froze the whole server, `/health` included, for 51 s);
/// - invalid UTF-8 in a form body (it used to be replaced with U+FFFD and accepted);
/// - an `Action` in the URL that contradicts the one in the body (the body used to win).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_query_requests_are_refused_and_the_server_stays_responsive() {
    let mut server = TestServer::start();
    let client = client_without_retries(&server.url);
    let url = create_queue(&client, &unique("hostile")).await;
    let host = server.url.trim_start_matches("http://").to_string();
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    let queue = url.replace(':', "%3A").replace('/', "%2F");
    let send = format!("Action=SendMessage&QueueUrl={queue}&MessageBody=x");

    let deep = format!("{send}&{}=1", ".".repeat(50_000));
    let many: String = (0..150_000).map(|i| format!("&p{i}=v")).collect();
    let many = format!("{send}{many}");
    let mut invalid_utf8 = format!("{send}%FF&MessageAttribute.1.Name=a").into_bytes();
    invalid_utf8.extend_from_slice(b"&X=\xc3\x28");
    let conflict = format!(
        "POST /?Action=DeleteQueue&QueueUrl={queue} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{form}Content-Length: {}\r\n\r\n{send}",
        send.len()
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a parameter name of 50,000 dots", post(&host, form, deep.as_bytes())),
        ("150,000 parameters", post(&host, form, many.as_bytes())),
        ("invalid UTF-8 in a form body", post(&host, form, &invalid_utf8)),
        ("two different actions", conflict.into_bytes()),
    ];
    for (what, request) in &cases {
        // Two at once, with health checks while they run.
        let (first, second, health) = tokio::join!(
            raw_exchange(&server.url, request),
            raw_exchange(&server.url, request),
            http_get(&server.url, "/health"),
        );
        assert_eq!((first, second), (Some(400), Some(400)), "{what}\nserver log:\n{}", server.log());
        assert_eq!(health, Some(200), "{what}: /health meanwhile");
        still_serves(&mut server, &client, &url, what).await;
    }
    // The queue is still there: the conflicting request deleted nothing.
    let attributes = client.get_queue_attributes().queue_url(&url).send().await;
    assert!(attributes.is_ok(), "{attributes:?}");
}
