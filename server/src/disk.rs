//! Watching the data directory's free space: below `limits.disk_reserve_bytes` every
//! change is refused at the core's queue (`DISK_FULL`) before anything is journaled, and
//! accepted again once the space is back. The journal raises the same flag when a write
//! fails for want of space (`core::sequencer`); only this watcher lowers it, once
//! [`DISK_RESUME_BYTES`] (or the reserve) are free.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::metrics::Metrics;

/// How often the free space is read.
pub const DISK_CHECK_INTERVAL: Duration = Duration::from_millis(200);
/// Once raised, the flag is lowered only with at least this much free (or the reserve, if
/// larger): after a journal write met ENOSPC with no reserve configured, a disk still full
/// stays refused (and health NOT_SERVING) instead of being retried at every check.
pub const DISK_RESUME_BYTES: u64 = 1 << 20;

/// Starts the watcher of `dir`'s file system; it stops once `stop` is set.
pub fn watch(
    dir: PathBuf,
    reserve_bytes: u64,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("disk-watch".into())
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                check(&dir, reserve_bytes, &metrics);
                std::thread::park_timeout(DISK_CHECK_INTERVAL);
            }
        })
}

/// Reads the free space once and sets the flag from it.
pub fn check(dir: &std::path::Path, reserve_bytes: u64, metrics: &Metrics) {
    let free = match journal::free_bytes(dir) {
        Ok(free) => free,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "disk: free space unreadable: {e}");
            return;
        }
    };
    let was = metrics.disk_full.load(Ordering::Acquire);
    let floor = if was {
        reserve_bytes.max(DISK_RESUME_BYTES)
    } else {
        reserve_bytes
    };
    let full = free < floor;
    let was = metrics.disk_full.swap(full, Ordering::AcqRel);
    if full && !was {
        tracing::error!(
            free,
            reserve_bytes,
            "disk: below its reserve; changes are refused (DISK_FULL) until space returns"
        );
    } else if was && !full {
        tracing::warn!(free, "disk: space is back; changes are accepted again");
    }
}
