//! Snapshots: the whole state at one journal position, so that a restart reads the snapshot and
//! replays only the frames after it, and segments before it can be deleted (the journal's
//! compaction: a deleted message's frames go with the segments that held them).
//!
//! File `snapshot` in the journal directory: `SNAPSHOT_MAGIC`, payload length (u64 LE), CRC-32 of
//! the payload (u32 LE), then the payload (`Snapshot`, postcard). Written under a temporary name,
//! flushed and renamed into place, so the file that exists is always a whole snapshot.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use holdfast_core::store::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};

use super::log::{damage, sync_dir, Position};
use crate::memory::StoreImage;

const SNAPSHOT_MAGIC: &[u8; 16] = b"holdfast-snap-01";
pub(super) const SNAPSHOT_FILE: &str = "snapshot";

#[derive(Serialize, Deserialize)]
pub(super) struct Snapshot {
    /// The first frame the snapshot does not include.
    pub(super) position: Position,
    /// Frames written before `position` since the journal began (the next ticket is one more).
    pub(super) frames: u64,
    pub(super) image: StoreImage,
}

pub(super) fn path(dir: &Path) -> PathBuf {
    dir.join(SNAPSHOT_FILE)
}

pub(super) fn write(dir: &Path, snapshot: &Snapshot) -> StoreResult<()> {
    let payload = postcard::to_stdvec(snapshot).map_err(StoreError::backend)?;
    let target = path(dir);
    let temporary = target.with_extension("new");
    let written = (|| -> std::io::Result<()> {
        let mut file = BufWriter::new(File::create(&temporary)?);
        file.write_all(SNAPSHOT_MAGIC)?;
        file.write_all(&(payload.len() as u64).to_le_bytes())?;
        file.write_all(&crc32fast::hash(&payload).to_le_bytes())?;
        file.write_all(&payload)?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&temporary, &target)?;
        sync_dir(dir)
    })();
    if let Err(err) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(if err.raw_os_error() == Some(28) { StoreError::full(err) } else { StoreError::backend(err) });
    }
    Ok(())
}

/// The snapshot in `dir`, `None` if there is none. A snapshot that exists but does not read
/// back whole is damage, never "no snapshot": that would replay from an empty store.
pub(super) fn read(dir: &Path) -> StoreResult<Option<Snapshot>> {
    let target = path(dir);
    let mut file = match File::open(&target) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(StoreError::backend_in(format!("reading {}", target.display()), err.to_string())),
    };
    let mut header = [0u8; 28];
    file.read_exact(&mut header).map_err(|_| damage(&target, 0, "shorter than its header"))?;
    if &header[..16] != SNAPSHOT_MAGIC {
        return Err(damage(&target, 0, "not a holdfast journal snapshot (bad header)"));
    }
    let len = u64::from_le_bytes(header[16..24].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(header[24..28].try_into().expect("4 bytes"));
    let size = file.metadata().map_err(StoreError::backend)?.len();
    if size != 28 + len {
        return Err(damage(&target, 16, "its length does not match the file's"));
    }
    let mut payload = Vec::with_capacity(len as usize);
    file.read_to_end(&mut payload).map_err(StoreError::backend)?;
    if crc32fast::hash(&payload) != crc {
        return Err(damage(&target, 28, "the checksum does not match"));
    }
    postcard::from_bytes(&payload).map(Some).map_err(|err| damage(&target, 28, &format!("undecodable: {err}")))
}
