//! The journal's files: numbered segments of checksummed frames, appended by one writer thread
//! that commits with one `fdatasync` for everything appended since its last one (group commit).
//!
//! Layout of a segment (`<n>.log`, n from 1, 20 digits): a 16-byte header (`SEGMENT_MAGIC`), then
//! frames, then zeros to the segment's size. A frame is `len: u32 LE`, `crc32(payload): u32 LE`,
//! then `len` bytes of payload; a zero length ends the segment's frames. Segments are created
//! full-size with their space allocated ahead of use (`prepare_loop`), so an append never needs
//! disk space that is not already reserved.
//!
//! Invariants:
//! - Space is reserved before a command runs (`Tail::reserve`): a command that would not fit is
//!   refused with `StoreError::Full` and changes nothing, so a full disk fails requests until a
//!   segment can be created again and never leaves memory ahead of the disk.
//! - Every frame of segment n is durable before the first frame of segment n+1 is written, so at
//!   recovery a damaged frame followed by frames in a later segment is damage, not a torn write.
//! - A ticket is a frame's number (1, 2, ...); `Durable::upto` only grows; a caller's reply waits
//!   until `upto` reaches its ticket. After a write or flush error nothing more is written and
//!   every wait fails: memory may hold effects the disk does not, so the store stops and a restart
//!   recovers from the disk.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use holdfast_core::store::{StoreError, StoreResult};
use tokio::sync::watch;

use crate::sqlite::writer::WriterStats;

/// The default size of every segment: big enough that a segment is prepared every few seconds
/// at full load, and that a batch of ten 1 MiB messages fits many times over.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// The smallest segment: a frame must fit in one.
pub const MIN_SEGMENT_BYTES: u64 = 1 << 20;
/// While the next segment cannot be created (a full disk), this fraction of the current one is
/// kept for calls that free space or hold it steady (receive, delete, purge...), so that clients
/// can still drain their queues; calls that add messages or queues are refused before it.
const HEADROOM_FRACTION: u64 = 8;
pub(super) const SEGMENT_MAGIC: &[u8; 16] = b"holdfast-jrnl-01";
pub(super) const SEGMENT_HEADER: u64 = SEGMENT_MAGIC.len() as u64;
const FRAME_HEADER: u64 = 8;
/// How long a command waits for the next segment to be ready before the store reports itself
/// full. Preparing one takes well under a second; this covers a slow disk.
const SEGMENT_WAIT: Duration = Duration::from_secs(10);
/// How far past a damaged frame recovery looks for valid frames (see `valid_frame_after`): far
/// more than the frames of one commit that a crash can tear.
const TORN_SCAN_BYTES: usize = 16 << 20;
/// How often a preparer that failed (no space) tries again.
const PREPARE_RETRY: Duration = Duration::from_secs(1);

pub(super) fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:020}.log"))
}

/// The segments present in `dir`, in order.
pub(super) fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name.strip_suffix(".log").and_then(|n| n.parse::<u64>().ok()) {
            found.push(n);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Where a frame starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Position {
    pub(super) segment: u64,
    pub(super) offset: u64,
}

impl Position {
    pub(super) fn start_of(segment: u64) -> Self {
        Position { segment, offset: SEGMENT_HEADER }
    }
}

/// Appends `payload` as one frame to `out`.
pub(super) fn frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

pub(super) fn frame_len(payload_len: usize) -> u64 {
    FRAME_HEADER + payload_len as u64
}

#[derive(Clone, Debug, Default)]
pub(super) struct Durable {
    pub(super) upto: u64,
    pub(super) failed: Option<StoreError>,
}

/// The appending end, behind the one lock every journaled call holds while it runs, so frames
/// are in the order the calls changed the state.
#[derive(Debug)]
pub(super) struct Tail {
    /// Where the next frame goes.
    pub(super) position: Position,
    /// Frames not yet handed to the writer, by segment.
    pending: Vec<(u64, Vec<u8>)>,
    /// Frames appended so far (the last ticket handed out).
    pub(super) appended: u64,
    /// Whether segment `position.segment + 1` exists, full-size and zeroed.
    next_ready: bool,
    /// Why the last attempt to prepare the next segment failed, while it keeps failing.
    prepare_failed: Option<String>,
    /// Attempts to prepare a segment so far, and whether a call asked for another one: a call
    /// that finds no next segment asks for a fresh attempt and waits for its outcome, so the first
    /// call after space is freed succeeds.
    prepare_attempts: u64,
    prepare_requested: bool,
    /// Bytes appended since the last snapshot.
    pub(super) since_snapshot: u64,
    /// The writer or a command failed: nothing more may be appended.
    pub(super) failed: Option<StoreError>,
    closing: bool,
    /// The writer is waiting for frames: only then does an append need to wake it (a wake is a
    /// system call, and under load the writer is flushing, not waiting).
    writer_waiting: bool,
}

#[derive(Debug)]
pub(super) struct Log {
    dir: PathBuf,
    pub(super) segment_bytes: u64,
    tail: Mutex<Tail>,
    /// Wakes the writer: frames pending, or closing.
    work: Condvar,
    /// Wakes the preparer: the next segment is needed, or closing.
    prepare: Condvar,
    /// Wakes commands waiting for the next segment.
    segment_ready: Condvar,
    durable_tx: watch::Sender<Durable>,
    pub(super) stats: WriterStats,
}

impl Log {
    /// Starts the writer and preparer threads for a journal whose next frame goes at `position`
    /// (a segment that exists). Returns the log and a receiver that sees the writer's end.
    pub(super) fn start(
        dir: &Path,
        segment_bytes: u64,
        position: Position,
        appended: u64,
    ) -> StoreResult<(Arc<Log>, Threads)> {
        let next_ready = segment_path(dir, position.segment + 1).exists();
        let tail = Tail {
            position,
            pending: Vec::new(),
            appended,
            next_ready,
            prepare_failed: None,
            prepare_attempts: 0,
            prepare_requested: false,
            since_snapshot: 0,
            failed: None,
            closing: false,
            writer_waiting: false,
        };
        let (durable_tx, _) = watch::channel(Durable { upto: appended, failed: None });
        let log = Arc::new(Log {
            dir: dir.to_owned(),
            segment_bytes,
            tail: Mutex::new(tail),
            work: Condvar::new(),
            prepare: Condvar::new(),
            segment_ready: Condvar::new(),
            durable_tx,
            stats: WriterStats::default(),
        });
        let file = open_segment(dir, position.segment).map_err(StoreError::backend)?;
        let writer = {
            let log = log.clone();
            std::thread::Builder::new()
                .name("holdfast-journal".into())
                .spawn(move || log.write_loop(file, position))
                .map_err(StoreError::backend)?
        };
        let preparer = {
            let log = log.clone();
            std::thread::Builder::new()
                .name("holdfast-segments".into())
                .spawn(move || log.prepare_loop())
                .map_err(StoreError::backend)?
        };
        Ok((log, Threads { writer: Some(writer), preparer: Some(preparer) }))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn durable(&self) -> watch::Receiver<Durable> {
        self.durable_tx.subscribe()
    }

    /// Makes room for a frame of `len` bytes at the tail, moving to the next segment if it does
    /// not fit in this one. Waits (holding no lock) for the next segment if it is still being
    /// prepared; `Full` if it cannot be created. A call that `grows` the state may not use the
    /// headroom kept at the end of a segment while there is no next one. Returns the guard back.
    pub(super) fn reserve<'a>(
        &'a self,
        mut tail: MutexGuard<'a, Tail>,
        len: u64,
        grows: bool,
    ) -> StoreResult<MutexGuard<'a, Tail>> {
        if len > self.segment_bytes - SEGMENT_HEADER {
            return Err(StoreError::backend(format!(
                "a journal record of {len} bytes is larger than a segment ({} bytes)",
                self.segment_bytes
            )));
        }
        let deadline = Instant::now() + SEGMENT_WAIT;
        let mut asked_after = None;
        loop {
            if let Some(err) = &tail.failed {
                return Err(err.clone());
            }
            if tail.closing {
                return Err(StoreError::Closed);
            }
            let headroom = if grows && !tail.next_ready { self.segment_bytes / HEADROOM_FRACTION } else { 0 };
            if tail.position.offset + len + headroom <= self.segment_bytes {
                return Ok(tail);
            }
            if tail.next_ready {
                tail.position = Position::start_of(tail.position.segment + 1);
                tail.next_ready = false;
                self.prepare.notify_all();
                return Ok(tail);
            }
            match (asked_after, &tail.prepare_failed) {
                // An attempt made after this call asked has failed: the disk is full.
                (Some(asked), Some(why)) if tail.prepare_attempts > asked => {
                    return Err(StoreError::full(std::io::Error::other(format!(
                        "the disk is full: no space for the journal's next segment in {}: {why}",
                        self.dir.display()
                    ))));
                }
                (None, _) => {
                    asked_after = Some(tail.prepare_attempts);
                    tail.prepare_requested = true;
                    self.prepare.notify_all();
                }
                _ => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::full(std::io::Error::other(format!(
                    "the journal's next segment in {} was not ready in time (is the disk full?)",
                    self.dir.display()
                ))));
            }
            tail = self.segment_ready.wait_timeout(tail, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// Appends one frame at the reserved position and returns its ticket.
    pub(super) fn push(&self, tail: &mut Tail, payload: &[u8]) -> u64 {
        let len = frame_len(payload.len());
        let segment = tail.position.segment;
        match tail.pending.last_mut() {
            Some((s, bytes)) if *s == segment => frame(payload, bytes),
            _ => {
                let mut bytes = Vec::with_capacity(len as usize);
                frame(payload, &mut bytes);
                tail.pending.push((segment, bytes));
            }
        }
        tail.position.offset += len;
        tail.since_snapshot += len;
        tail.appended += 1;
        if tail.writer_waiting {
            self.work.notify_one();
        }
        tail.appended
    }

    /// Stops everything: no more appends, and every wait fails with `err`.
    pub(super) fn fail(&self, tail: &mut Tail, err: StoreError) {
        tracing::error!(error = %err.chain(), "the journal has stopped; restart the server to recover from disk");
        tail.failed.get_or_insert(err.clone());
        self.durable_tx.send_modify(|d| {
            d.failed.get_or_insert(err);
        });
        self.work.notify_all();
        self.prepare.notify_all();
        self.segment_ready.notify_all();
    }

    /// Asks the threads to write what is pending and stop.
    pub(super) fn close(&self) {
        self.lock().closing = true;
        self.work.notify_all();
        self.prepare.notify_all();
        self.segment_ready.notify_all();
    }

    fn write_loop(self: Arc<Self>, mut file: File, start: Position) {
        let mut file_segment = start.segment;
        let mut offset = start.offset;
        loop {
            let (pending, ticket, closing) = {
                let mut tail = self.lock();
                while tail.pending.is_empty() && !tail.closing && tail.failed.is_none() {
                    tail.writer_waiting = true;
                    tail = self.work.wait(tail).unwrap_or_else(PoisonError::into_inner);
                    tail.writer_waiting = false;
                }
                if tail.failed.is_some() {
                    return;
                }
                (std::mem::take(&mut tail.pending), tail.appended, tail.closing)
            };
            if !pending.is_empty() {
                let started = Instant::now();
                let frames = ticket - self.durable_tx.borrow().upto;
                let written = (|| -> std::io::Result<()> {
                    for (segment, bytes) in &pending {
                        if *segment != file_segment {
                            // The previous segment is complete: flush it before the next one gets
                            // anything (see the invariants).
                            file.sync_data()?;
                            file = open_segment(&self.dir, *segment)?;
                            file_segment = *segment;
                            offset = SEGMENT_HEADER;
                        }
                        file.write_all_at(bytes, offset)?;
                        offset += bytes.len() as u64;
                    }
                    file.sync_data()
                })();
                self.stats.commit(started.elapsed());
                self.stats.batch(frames as usize);
                if let Err(err) = written {
                    let err =
                        if err.raw_os_error() == Some(28) { StoreError::full(err) } else { StoreError::backend(err) };
                    self.fail(&mut self.lock(), err);
                    return;
                }
                self.durable_tx.send_modify(|d| d.upto = d.upto.max(ticket));
            }
            if closing && pending.is_empty() {
                return;
            }
        }
    }

    /// Keeps the segment after the tail's prepared, so that moving to it never waits on the disk.
    /// After a failure it tries again every `PREPARE_RETRY`, or at once when a call asks.
    fn prepare_loop(self: Arc<Self>) {
        loop {
            let wanted = {
                let mut tail = self.lock();
                while tail.next_ready && !tail.closing && tail.failed.is_none() {
                    tail = self.prepare.wait(tail).unwrap_or_else(PoisonError::into_inner);
                }
                if tail.closing || tail.failed.is_some() {
                    return;
                }
                tail.prepare_requested = false;
                tail.position.segment + 1
            };
            let prepared = prepare_segment(&self.dir, wanted, self.segment_bytes);
            let mut tail = self.lock();
            tail.prepare_attempts += 1;
            match prepared {
                Ok(()) => {
                    if tail.position.segment + 1 == wanted {
                        tail.next_ready = true;
                    }
                    if tail.prepare_failed.take().is_some() {
                        tracing::info!(segment = wanted, "the journal's next segment is ready again");
                    }
                    self.segment_ready.notify_all();
                }
                Err(err) => {
                    if tail.prepare_failed.is_none() {
                        tracing::warn!(error = %err, segment = wanted, "could not create the journal's next segment: the disk is full?");
                    }
                    tail.prepare_failed = Some(err.to_string());
                    self.segment_ready.notify_all();
                    if !tail.prepare_requested {
                        let _ = self.prepare.wait_timeout(tail, PREPARE_RETRY);
                    }
                }
            }
        }
    }
}

/// The log's two threads, joined at close.
#[derive(Debug)]
pub(super) struct Threads {
    writer: Option<std::thread::JoinHandle<()>>,
    preparer: Option<std::thread::JoinHandle<()>>,
}

impl Threads {
    pub(super) fn none() -> Self {
        Threads { writer: None, preparer: None }
    }

    pub(super) fn join(&mut self) {
        for thread in [self.writer.take(), self.preparer.take()].into_iter().flatten() {
            let _ = thread.join();
        }
    }
}

fn open_segment(dir: &Path, segment: u64) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).open(segment_path(dir, segment))
}

/// Creates segment `segment` full-size with its space allocated, under a temporary name renamed
/// into place once it is durable, so a segment that exists is always whole.
pub(super) fn prepare_segment(dir: &Path, segment: u64, bytes: u64) -> std::io::Result<()> {
    let path = segment_path(dir, segment);
    if path.exists() {
        return Ok(());
    }
    let temporary = path.with_extension("log.new");
    let written = (|| {
        let mut file = File::create(&temporary)?;
        file.write_all(SEGMENT_MAGIC)?;
        // Allocated, not written: measured faster than writing zeros (the zeros double what the
        // disk writes, and the commits wait behind them), and it reads back as zeros all the same.
        // Where the filesystem cannot allocate ahead, the zeros are written.
        if rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, bytes).is_err() {
            let zeros = vec![0u8; 1 << 20];
            let mut left = bytes - SEGMENT_HEADER;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                file.write_all(&zeros[..n])?;
                left -= n as u64;
            }
        }
        file.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        sync_dir(dir)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What reading the segments found.
#[derive(Debug)]
pub(super) struct ReadOutcome {
    /// Where the next frame goes.
    pub(super) end: Position,
    pub(super) frames: u64,
    /// Bytes of a torn last write that were discarded, if any.
    pub(super) torn_bytes: u64,
}

/// Reads every frame from `from` on, in order, handing each payload to `each`. A damaged frame
/// with no valid frame after it (in its segment or a later one) is a torn write: the rest of that
/// segment is zeroed (so no stale frame can be mistaken for a new one later) and reading ends
/// there. A damaged frame with valid frames after it, a missing segment in the sequence or a bad
/// header is damage: an error naming the file and offset.
pub(super) fn read_frames(
    dir: &Path,
    from: Position,
    mut each: impl FnMut(&[u8]) -> StoreResult<()>,
) -> StoreResult<ReadOutcome> {
    let present: Vec<u64> =
        segments(dir).map_err(StoreError::backend)?.into_iter().filter(|&s| s >= from.segment).collect();
    if present.first() != Some(&from.segment) {
        return Err(damage(&segment_path(dir, from.segment), 0, "the segment is missing"));
    }
    for (i, pair) in present.windows(2).enumerate() {
        if pair[1] != pair[0] + 1 {
            return Err(damage(&segment_path(dir, present[i] + 1), 0, "the segment is missing"));
        }
    }
    let mut outcome = ReadOutcome { end: from, frames: 0, torn_bytes: 0 };
    for (i, &segment) in present.iter().enumerate() {
        let path = segment_path(dir, segment);
        let bytes = read_segment(&path)?;
        let mut offset = if segment == from.segment { from.offset } else { SEGMENT_HEADER };
        let mut had_frames = false;
        loop {
            match next_frame(&bytes, offset) {
                Frame::End => break,
                Frame::Payload(payload) => {
                    each(payload).map_err(|err| damage(&path, offset, &err.chain()))?;
                    offset += frame_len(payload.len());
                    outcome.frames += 1;
                    had_frames = true;
                }
                Frame::Damaged(why) => {
                    let later_frames = valid_frame_after(&bytes, offset + 1)
                        || present[i + 1..].iter().any(|&s| segment_has_frames(&segment_path(dir, s)).unwrap_or(true));
                    if later_frames {
                        return Err(damage(&path, offset, why));
                    }
                    let torn = bytes[offset as usize..].iter().rposition(|&b| b != 0).map_or(0, |p| p as u64 + 1);
                    tracing::warn!(
                        file = %path.display(), offset, bytes = torn, reason = why,
                        "discarding a torn write at the end of the journal (never acknowledged)"
                    );
                    zero_from(&path, offset).map_err(StoreError::backend)?;
                    outcome.torn_bytes = torn;
                    outcome.end = Position { segment, offset };
                    return Ok(outcome);
                }
            }
        }
        if had_frames || segment == from.segment {
            outcome.end = Position { segment, offset };
        }
    }
    Ok(outcome)
}

enum Frame<'a> {
    End,
    Payload(&'a [u8]),
    Damaged(&'static str),
}

fn next_frame(bytes: &[u8], offset: u64) -> Frame<'_> {
    let offset = offset as usize;
    if offset + FRAME_HEADER as usize > bytes.len() {
        return Frame::End;
    }
    let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[offset + 4..offset + 8].try_into().expect("4 bytes"));
    if len == 0 {
        return if crc == 0 { Frame::End } else { Frame::Damaged("a frame of length 0 with a checksum") };
    }
    let start = offset + FRAME_HEADER as usize;
    if start + len > bytes.len() {
        return Frame::Damaged("a frame longer than the rest of its segment");
    }
    let payload = &bytes[start..start + len];
    if crc32fast::hash(payload) != crc {
        return Frame::Damaged("a frame whose checksum does not match");
    }
    Frame::Payload(payload)
}

/// Whether a whole, valid frame starts anywhere in `bytes` from `from` on (within
/// `TORN_SCAN_BYTES`). A write cut short leaves a damaged frame with nothing valid after it; a
/// damaged frame followed by valid ones is damage to acknowledged data, which must not be
/// discarded as if it were a torn write.
fn valid_frame_after(bytes: &[u8], from: u64) -> bool {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1).min(from as usize + TORN_SCAN_BYTES);
    (from as usize..end).any(|at| matches!(next_frame(&bytes[..end], at as u64), Frame::Payload(_)))
}

fn read_segment(path: &Path) -> StoreResult<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|err| StoreError::backend_in(format!("reading {}", path.display()), err.to_string()))?;
    if bytes.len() < SEGMENT_HEADER as usize || &bytes[..SEGMENT_HEADER as usize] != SEGMENT_MAGIC {
        return Err(damage(path, 0, "not a holdfast journal segment (bad header)"));
    }
    Ok(bytes)
}

fn segment_has_frames(path: &Path) -> std::io::Result<bool> {
    let mut header = [0u8; (SEGMENT_HEADER + FRAME_HEADER) as usize];
    File::open(path)?.read_exact(&mut header)?;
    Ok(header[SEGMENT_HEADER as usize..].iter().any(|&b| b != 0))
}

fn zero_from(path: &Path, offset: u64) -> std::io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    let size = file.metadata()?.len();
    let zeros = vec![0u8; 1 << 20];
    let mut at = offset;
    while at < size {
        let n = (size - at).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    file.sync_data()
}

pub(super) fn damage(path: &Path, offset: u64, why: &str) -> StoreError {
    StoreError::backend(format!("the journal is damaged: {} at offset {offset}: {why}", path.display()))
}
