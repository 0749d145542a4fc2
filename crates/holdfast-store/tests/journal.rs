//! The journal engine's files: what it does with a torn last write, damage, a missing or foreign
//! file, and a second process. Damage must stop `open` with the file and the reason; a torn last
//! write (never acknowledged) is discarded and the store carries on.

use std::path::{Path, PathBuf};

use holdfast_core::store::{NewMessage, ReceiveParams, Store};
use holdfast_core::DEFAULT_ACCOUNT_ID;
use holdfast_store::JournalStore;

const T0: i64 = 1_700_000_000_000;

fn message(i: usize) -> NewMessage {
    NewMessage {
        message_id: format!("m{i}"),
        body: format!("body {i}"),
        attributes: Vec::new(),
        system_attributes: Vec::new(),
        group_id: None,
        deduplication_id: None,
        sender_id: "s".into(),
        sent_at: T0,
        visible_at: T0,
    }
}

/// A journal with one queue and `n` messages, each sent in its own frame, left without a final
/// snapshot (dropped, not closed), so that everything is in the first segment.
async fn journal_with_messages(dir: &Path, n: usize) {
    let store = JournalStore::open(dir).unwrap();
    store
        .create_queue(DEFAULT_ACCOUNT_ID, "us-east-1", "q", Default::default(), Default::default(), T0, 0)
        .await
        .unwrap();
    for i in 0..n {
        store.send_messages(1, vec![message(i)], None, T0).await.unwrap();
    }
    drop(store);
}

fn segment(dir: &Path) -> PathBuf {
    dir.join("journal").join(format!("{:020}.log", 1))
}

/// Where the frames of a segment end: after its last non-zero byte.
fn end_of_frames(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1)
}

async fn bodies(store: &JournalStore) -> Vec<String> {
    let mut found = Vec::new();
    loop {
        let got = store.receive_messages(1, ReceiveParams::new(10, 600_000, i64::MAX / 4, T0 + 1)).await.unwrap();
        if got.messages.is_empty() {
            return found;
        }
        found.extend(got.messages.into_iter().map(|m| m.body));
    }
}

fn open_error(dir: &Path) -> String {
    match JournalStore::open(dir) {
        Ok(_) => panic!("a damaged journal opened"),
        Err(err) => err.chain(),
    }
}

#[tokio::test]
async fn everything_written_is_there_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    journal_with_messages(dir.path(), 25).await;
    let store = JournalStore::open(dir.path()).unwrap();
    assert_eq!(bodies(&store).await.len(), 25);
}

#[tokio::test]
async fn a_torn_last_write_is_discarded_and_the_store_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    journal_with_messages(dir.path(), 10).await;
    let path = segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let end = end_of_frames(&bytes);
    // Half a frame: a length and a checksum, then fewer bytes than the length says, as a write
    // cut short by a crash leaves them.
    let torn = [200u8, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5];
    bytes[end..end + torn.len()].copy_from_slice(&torn);
    std::fs::write(&path, &bytes).unwrap();

    let store = JournalStore::open(dir.path()).unwrap();
    store.send_messages(1, vec![message(10)], None, T0).await.unwrap();
    drop(store);
    let store = JournalStore::open(dir.path()).unwrap();
    let mut found = bodies(&store).await;
    found.sort();
    let mut expected: Vec<String> = (0..=10).map(|i| format!("body {i}")).collect();
    expected.sort();
    assert_eq!(found, expected, "the ten acknowledged messages and the one sent after the repair");
}

#[tokio::test]
async fn a_damaged_frame_with_frames_after_it_stops_open() {
    let dir = tempfile::tempdir().unwrap();
    journal_with_messages(dir.path(), 10).await;
    let path = segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // A byte inside the first frame's payload (the segment header is 16 bytes, a frame's 8).
    bytes[16 + 8 + 1] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let err = open_error(dir.path());
    assert!(err.contains("damaged") && err.contains(&path.display().to_string()) && err.contains("offset 16"), "{err}");
}

#[tokio::test]
async fn a_damaged_snapshot_stops_open() {
    let dir = tempfile::tempdir().unwrap();
    journal_with_messages(dir.path(), 3).await;
    let path = dir.path().join("journal/snapshot");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = open_error(dir.path());
    assert!(err.contains("snapshot") && err.contains("checksum"), "{err}");
}

#[tokio::test]
async fn a_missing_snapshot_with_segments_stops_open() {
    let dir = tempfile::tempdir().unwrap();
    journal_with_messages(dir.path(), 3).await;
    std::fs::remove_file(dir.path().join("journal/snapshot")).unwrap();
    let err = open_error(dir.path());
    assert!(err.contains("snapshot is missing"), "{err}");
}

#[tokio::test]
async fn a_foreign_file_as_a_segment_stops_open() {
    let dir = tempfile::tempdir().unwrap();
    journal_with_messages(dir.path(), 3).await;
    std::fs::write(segment(dir.path()), b"this is not a journal segment at all").unwrap();
    let err = open_error(dir.path());
    assert!(err.contains("bad header"), "{err}");
}

#[tokio::test]
async fn a_second_process_cannot_open_the_same_journal() {
    let dir = tempfile::tempdir().unwrap();
    let _first = JournalStore::open(dir.path()).unwrap();
    let err = match JournalStore::open(dir.path()) {
        Ok(_) => panic!("two stores opened one journal"),
        Err(err) => err.chain(),
    };
    assert!(err.contains("locked"), "{err}");
}

#[tokio::test]
async fn a_closed_store_reopens_from_the_snapshot_its_close_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::open(dir.path()).unwrap();
    store
        .create_queue(DEFAULT_ACCOUNT_ID, "us-east-1", "q", Default::default(), Default::default(), T0, 0)
        .await
        .unwrap();
    for i in 0..5 {
        store.send_messages(1, vec![message(i)], None, T0).await.unwrap();
    }
    store.close().await.unwrap();
    drop(store);
    let store = JournalStore::open(dir.path()).unwrap();
    assert_eq!(bodies(&store).await.len(), 5);
}

/// A new journal writes its snapshot, then its first segment: a crash between the two leaves a
/// snapshot and no segment, and the next start must carry on from there rather than refuse.
#[tokio::test]
async fn a_new_journal_interrupted_before_its_first_segment_opens() {
    let dir = tempfile::tempdir().unwrap();
    drop(JournalStore::open(dir.path()).unwrap());
    for entry in std::fs::read_dir(dir.path().join("journal")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let store = JournalStore::open(dir.path()).unwrap();
    store
        .create_queue(DEFAULT_ACCOUNT_ID, "us-east-1", "q", Default::default(), Default::default(), T0, 0)
        .await
        .unwrap();
    store.send_messages(1, vec![message(0)], None, T0).await.unwrap();
    drop(store);
    let store = JournalStore::open(dir.path()).unwrap();
    assert_eq!(bodies(&store).await, ["body 0"]);
}
