//! The disk reserve: a file of zeros beside the database that holds back some space, so that
//! when the disk fills up the calls that free space can still run.
//!
//! Without it a full disk wedges the store: deleting a message, purging a queue or deleting a
//! queue all write to the log first, so they fail like sends do, and nothing can free space through
//! the API. With it:
//! - the first call that fails for lack of space deletes the reserve and puts the store in
//!   low-space mode;
//! - in low-space mode the calls that consume space (sends, creating and editing queues, starting
//!   move tasks) are refused at once with `Full` (ServiceUnavailable to clients), while receives,
//!   deletes, purges, queue deletions and expiry go on, in the space the reserve gave back;
//! - as soon as a consuming call finds twice the reserve free again, the reserve is written back
//!   and the store is back to normal, with no restart;
//! - opening a store on a full disk releases the reserve first, so a restart works too.
//!
//! The reserve is `RESERVE_MAX` bytes, or a tenth of the free space when the disk is small.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use holdfast_core::store::{StoreError, StoreResult};

pub(super) const RESERVE_FILE: &str = "holdfast.reserve";
/// Enough for deleting or purging a great many messages; small next to any real disk.
const RESERVE_MAX: u64 = 64 << 20;

#[derive(Debug)]
pub(super) struct Reserve {
    path: PathBuf,
    dir: PathBuf,
    low_space: AtomicBool,
}

impl Reserve {
    /// Makes sure the reserve exists, or releases it if the disk is already full.
    pub fn open(dir: &Path) -> Reserve {
        let reserve = Reserve { path: dir.join(RESERVE_FILE), dir: dir.to_owned(), low_space: AtomicBool::new(false) };
        let held = std::fs::metadata(&reserve.path).map(|m| m.len()).unwrap_or(0);
        match free_bytes(dir) {
            // Too little room to hold a reserve and still work: start in low-space mode, with
            // whatever reserve there was given back so the database can be opened.
            Some(free) if free < 2 * size_for(free + held).max(1 << 20) => {
                reserve.release("the disk is nearly full at startup");
            }
            Some(free) => reserve.fill(size_for(free + held), held),
            None => reserve.fill(RESERVE_MAX, held),
        }
        reserve
    }

    /// Writes the reserve file up to `size` bytes (best effort: a disk too full for it is no
    /// reason to refuse to start).
    fn fill(&self, size: u64, held: u64) {
        if held >= size {
            return;
        }
        let written = OpenOptions::new().create(true).append(true).open(&self.path).and_then(|mut file| {
            // Allocated, not merely sized: a sparse file would hold nothing back. fallocate is
            // instant where the filesystem has it; elsewhere zeros are written.
            if rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, size).is_err() {
                let chunk = vec![0u8; 1 << 20];
                let mut left = size - held;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    file.write_all(&chunk[..n])?;
                    left -= n as u64;
                }
            }
            file.sync_all()
        });
        if let Err(error) = written {
            // A partial reserve would only take the last free bytes from the database.
            let _ = std::fs::remove_file(&self.path);
            tracing::warn!(%error, path = %self.path.display(), "could not write the disk reserve");
        }
    }

    /// Gives the reserve back to the filesystem and enters low-space mode.
    pub fn release(&self, why: &str) {
        if self.low_space.swap(true, Ordering::SeqCst) {
            return;
        }
        let freed = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        match std::fs::remove_file(&self.path) {
            Ok(()) => tracing::warn!(
                freed,
                why,
                "released the disk reserve: receives, deletes and purges go on, sends are refused until space is free"
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(
                    why,
                    "low on disk space and no reserve to release: sends are refused until space is free"
                )
            }
            Err(error) => tracing::error!(%error, "could not release the disk reserve"),
        }
    }

    /// Lets a call that consumes space through, unless the disk is still too full for it.
    pub fn admit(&self) -> StoreResult<()> {
        if !self.low_space.load(Ordering::SeqCst) {
            return Ok(());
        }
        let free = free_bytes(&self.dir).unwrap_or(0);
        let size = size_for(free);
        if free < 2 * size.max(1 << 20) {
            return Err(StoreError::full("the disk is nearly full: only calls that free space are served"));
        }
        self.fill(size, 0);
        self.low_space.store(false, Ordering::SeqCst);
        tracing::info!(free, "disk space is back: sends are accepted again and the reserve is restored");
        Ok(())
    }

    #[cfg(test)]
    pub fn is_low(&self) -> bool {
        self.low_space.load(Ordering::SeqCst)
    }
}

fn size_for(free: u64) -> u64 {
    (free / 10).min(RESERVE_MAX)
}

/// Bytes an unprivileged process may still write on the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_space_admits_nothing_that_consumes_until_space_is_back() {
        let dir = tempfile::tempdir().unwrap();
        let reserve = Reserve::open(dir.path());
        let held = std::fs::metadata(dir.path().join(RESERVE_FILE)).unwrap().len();
        assert!(held > 0, "a reserve is written");
        assert!(reserve.admit().is_ok());
        reserve.release("test");
        assert!(reserve.is_low());
        assert!(!dir.path().join(RESERVE_FILE).exists(), "the space is given back");
        // This disk has room (the test machine's), so the next consuming call restores it.
        assert!(reserve.admit().is_ok());
        assert!(!reserve.is_low());
        assert!(dir.path().join(RESERVE_FILE).exists());
    }
}
