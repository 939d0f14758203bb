//! The journal's durable high-water mark: a small file (`journal/durable`) saying the
//! journal was fsync'd through at least this sequence, rewritten in place (one sector, so
//! a write is whole or not at all) and fsync'd a few times a second by its own thread, and
//! at shutdown.
//!
//! Why: zeros after the last record are how a preallocated segment ends, so a tail of
//! acknowledged records that a disk fault or a careless tool zeroed would otherwise read as
//! a shorter, healthy journal. Start-up refuses a journal that ends before the mark, and a
//! damaged record at or below it is corruption, never a torn tail to cut. The mark lags
//! the journal by at most [`HWM_INTERVAL`]; what the registry and the snapshots have seen
//! of the journal is checked against its end as well (`server::recover`).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The mark's file inside the journal directory.
pub const HWM_NAME: &str = "durable";
/// How often the mark is brought up to the journal's durable sequence (when it moved).
pub const HWM_INTERVAL: Duration = Duration::from_millis(50);
const MAGIC: &[u8; 8] = b"CBXHWM01";
const FILE_BYTES: usize = 20;

fn path(dir: &Path) -> PathBuf {
    dir.join(HWM_NAME)
}

/// The mark recorded in `dir` (0 when there is none yet). A damaged mark file is reported
/// and read as 0: it is evidence for checking the journal, not part of it.
pub fn read(dir: &Path) -> u64 {
    let Ok(bytes) = std::fs::read(path(dir)) else {
        return 0;
    };
    match decode(&bytes) {
        Some(seq) => seq,
        None => {
            tracing::warn!(path = %path(dir).display(), "journal: durable mark unreadable; ignored");
            0
        }
    }
}

fn decode(bytes: &[u8]) -> Option<u64> {
    if bytes.len() != FILE_BYTES || &bytes[..8] != MAGIC {
        return None;
    }
    let seq = u64::from_le_bytes(bytes[8..16].try_into().ok()?);
    let crc = u32::from_le_bytes(bytes[16..20].try_into().ok()?);
    (crc32fast::hash(&bytes[..16]) == crc).then_some(seq)
}

fn encode(seq: u64) -> [u8; FILE_BYTES] {
    let mut out = [0u8; FILE_BYTES];
    out[..8].copy_from_slice(MAGIC);
    out[8..16].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32fast::hash(&out[..16]);
    out[16..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The open mark file.
#[derive(Debug)]
pub struct Mark {
    file: File,
    written: u64,
}

impl Mark {
    /// Opens (creating, and syncing the directory for a new file) the mark of `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Mark> {
        let existed = path(dir).exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path(dir))?;
        if !existed {
            file.write_all_at(&encode(0), 0)?;
            file.sync_all()?;
            File::open(dir)?.sync_all()?;
        }
        Ok(Mark {
            file,
            written: read(dir),
        })
    }

    /// Records that the journal is durable through `seq` (nothing when it is not higher).
    pub fn advance(&mut self, seq: u64) -> std::io::Result<()> {
        if seq <= self.written {
            return Ok(());
        }
        self.file.write_all_at(&encode(seq), 0)?;
        self.file.sync_data()?;
        self.written = seq;
        Ok(())
    }
}

/// Keeps the mark of `dir` at `durable` (the core's fsync'd sequence) until `stop`, then
/// brings it up to date once more.
pub fn spawn(
    dir: &Path,
    durable: impl Fn() -> u64 + Send + 'static,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let mut mark = Mark::open(dir)?;
    std::thread::Builder::new()
        .name("journal-mark".into())
        .spawn(move || {
            loop {
                let stopping = stop.load(Ordering::Acquire);
                if let Err(e) = mark.advance(durable()) {
                    tracing::warn!("journal: durable mark not written: {e}");
                }
                if stopping {
                    return;
                }
                std::thread::park_timeout(HWM_INTERVAL);
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_only_moves_up_and_reads_back() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(dir.path()), 0);
        let mut mark = Mark::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        mark.advance(41).unwrap_or_else(|e| panic!("{e}"));
        mark.advance(7).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(dir.path()), 41);
        drop(mark);
        let mut again = Mark::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        again.advance(41).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(dir.path()), 41);
        // A damaged file reads as no mark (the journal's other evidence still counts).
        let mut bytes = std::fs::read(dir.path().join(HWM_NAME)).unwrap_or_default();
        bytes[9] ^= 1;
        std::fs::write(dir.path().join(HWM_NAME), &bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(dir.path()), 0);
    }
}
