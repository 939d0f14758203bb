//! # carbonx journal
//!
//! The journal: an append-only, segmented log of every state change, in sequence (engine
//! commands, registry and compliance transactions, settlement points: `record.rs`).
//!
//! A segment is a file `<first seq, 20 digits>.wal` holding records back to back:
//! `u32 length | u32 CRC-32 of the payload | payload`, little endian. Records are
//! appended in batches, one write and one fsync per batch (group commit); a new segment
//! starts once the current one passes the configured size.
//!
//! With preallocation a segment starts as a file of zeros written and fsync'd ahead of
//! time by a helper thread, paced so the journal's own fsyncs wait behind one step of it at most
//! (`next.spare`, renamed into place when a segment starts; an empty segment found at
//! open is filled there and then):
//! overwriting allocated blocks needs no file-size change, so each batch's fdatasync has
//! no metadata to commit (on this project's 2-core VM: p50 128 us instead of 153-168 us).
//! Zeros after the last record are the end of the journal, not damage. A spare is only
//! made while the file system keeps [`SPARE_RESERVE_BYTES`] free after it, and a spare
//! that could not be finished is removed (it would hold the space).
//!
//! With direct I/O (`use_direct_io`, which the server turns on for sync durability with
//! preallocation) a batch is written with `O_DIRECT` as whole 4 KiB blocks: the partial
//! block at the end of the segment (kept in memory), the batch, zeros to the block's end;
//! the next batch rewrites that block with more records in it. The file's bytes are the
//! same as with buffered writes. Why: the spare's zero-fill leaves the segment in the page
//! cache as large folios (128 KiB here), and a buffered write dirties a whole folio, so
//! every fdatasync wrote about 136 KiB for an 8 KiB batch (the core thread's write_bytes:
//! ~1 GB/s at 620 k commands/s). Direct writes move only the blocks touched (12 KiB), and
//! in a probe on this VM (8.3 KB batches into a chunk-filled file, each followed by
//! fdatasync) took p50 76 us instead of 90-93 us, with 25 us of kernel CPU instead of
//! 35-39 us. Without `O_DIRECT` support (an `EINVAL` at open or at a write) the journal
//! goes back to buffered writes.
//!
//! Opening checks every record of the last segment (`scan.rs`). A bad record with no valid
//! record after it is either a torn write (part of it never reached the disk: a batch cut
//! by a crash before its fsync returned, so never acknowledged), which is truncated away,
//! or damage to a record written whole, which is refused like a bad record anywhere else:
//! opening fails naming the segment and offset, and nothing is replayed past it. The
//! durable mark (`hwm.rs`) catches what the records cannot show: a journal that ends
//! before a sequence known to have been durable (a zeroed tail) is refused.
//! A failed write of a batch (a full disk) leaves nothing of it: the bytes written are
//! cut or zeroed and the sequence goes back, so the batch can be refused as a whole.

mod hwm;
pub mod record;
mod scan;

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use engine::{COMMAND_BYTES_MAX, Command, encode_command};
use registry::tx::Tx;

pub use hwm::{HWM_INTERVAL, HWM_NAME, Mark, spawn as spawn_mark};
pub use record::{Record, RegistryEntry};
pub use scan::{first_seq, replay, segments};
use scan::{read_all, scan_segment, segment_path};

/// The preallocated segment, ready (never a `.wal`, so never read as journal).
const SPARE_NAME: &str = "next.spare";
/// The spare while it is written: renamed to [`SPARE_NAME`] once whole and synced, so a
/// `next.spare` is always complete (a crash or a full disk mid-fill leaves only this).
const SPARE_PARTIAL_NAME: &str = "next.spare.partial";
/// Zeros written (and synced) per step while preparing a spare.
const SPARE_CHUNK_BYTES: usize = 128 << 10;
/// After each step the spare writer rests this many times as long as the step took, so it
/// holds the device at most a quarter of the time and the journal's own fsyncs wait behind
/// one step at most (measured here: filling 64 MiB flat out took 88 ms and pushed a
/// concurrent fsync from 0.2 to 11 ms). On this machine a spare takes about half a second.
const SPARE_REST_FACTOR: u32 = 3;
/// A spare segment is only prepared while the file system would keep this much free after
/// it (by default; the server sets its `disk_reserve_bytes`): preallocation never takes
/// the space the journal's own records, the registry and the snapshots need last.
pub const SPARE_RESERVE_BYTES: u64 = 64 << 20;
/// Direct I/O writes whole blocks of this size from a buffer aligned to it (4 KiB: a
/// multiple of any logical block size a Linux block device reports).
const DIRECT_BLOCK: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal io: {0}")]
    Io(#[from] std::io::Error),
    #[error("journal corrupt in {} at offset {offset}: {why}", segment.display())]
    Corrupt {
        segment: PathBuf,
        offset: u64,
        why: String,
    },
    #[error(
        "journal records from sequence {from} are needed but {} starts at {first}: move the \
         archived segments (in its `{ARCHIVE_DIR}` directory, or wherever they were shipped) \
         back into it",
        dir.display()
    )]
    Missing { dir: PathBuf, from: u64, first: u64 },
    #[error(
        "journal {} ends at sequence {last} but was durable through {durable} ({HWM_NAME}): \
         acknowledged records are missing (zeroed or cut); restore the journal from a copy",
        dir.display()
    )]
    Lost {
        dir: PathBuf,
        last: u64,
        durable: u64,
    },
    #[error("a record of {bytes} bytes is larger than a journal record may be")]
    TooLarge { bytes: usize },
}

impl JournalError {
    /// Whether this is the disk being full (the batch can be refused and retried later).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, JournalError::Io(e) if e.raw_os_error() == Some(libc::ENOSPC))
    }
}

/// Where `archive_through` moves segments recovery no longer needs (inside the journal
/// directory, so a move is a rename). Operators ship them to long-term storage from there.
pub const ARCHIVE_DIR: &str = "archive";

/// Moves every segment whose records all have a sequence at most `seq` into
/// `dir/archive` (never the last segment, which is being written). Returns the segments
/// moved. The caller passes a sequence recovery will never replay from again: the older
/// of the snapshots kept, which the registry has settled through.
pub fn archive_through(dir: &Path, seq: u64) -> Result<Vec<PathBuf>, JournalError> {
    let segs = segments(dir)?;
    let mut moved = Vec::new();
    for pair in segs.windows(2) {
        let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
        // This segment's records end just before the next segment's first.
        if *next_first > seq.saturating_add(1) {
            break;
        }
        let archive = dir.join(ARCHIVE_DIR);
        if moved.is_empty() {
            std::fs::create_dir_all(&archive)?;
        }
        let Some(name) = path.file_name() else {
            continue;
        };
        let to = archive.join(name);
        std::fs::rename(path, &to)?;
        moved.push(to);
    }
    if !moved.is_empty() {
        File::open(dir.join(ARCHIVE_DIR))?.sync_all()?;
        File::open(dir)?.sync_all()?;
    }
    Ok(moved)
}

/// What opening found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    pub segments: usize,
    /// Records of the last segment (the earlier ones are read by replay).
    pub records: u64,
    pub last_seq: u64,
    /// A torn tail: segment, offset, bytes (cut by `Journal::open`, left by `inspect`).
    pub truncated: Option<(PathBuf, u64, u64)>,
    /// The durable mark: the journal was fsync'd through at least this sequence.
    pub durable_mark: u64,
}

/// Reads what opening `dir` would find, changing nothing: the last segment's records, a
/// torn tail, and the checks against the durable mark. `carbonx journal verify` and
/// `--read-only` start-up use it; `Journal::open` acts on it.
pub fn inspect(dir: &Path) -> Result<(OpenReport, u64), JournalError> {
    inspect_with(dir, true)
}

/// `inspect`; without `enforce_mark` a journal ending before its durable mark is reported
/// (`OpenReport::durable_mark` above `last_seq`) instead of refused, for `--read-only`.
fn inspect_with(dir: &Path, enforce_mark: bool) -> Result<(OpenReport, u64), JournalError> {
    let segs = segments(dir)?;
    let durable_mark = hwm::read(dir);
    let mut report = OpenReport {
        segments: segs.len(),
        durable_mark,
        ..OpenReport::default()
    };
    let Some((first, path)) = segs.last() else {
        if durable_mark > 0 && enforce_mark {
            return Err(JournalError::Lost {
                dir: dir.to_path_buf(),
                last: 0,
                durable: durable_mark,
            });
        }
        return Ok((report, 0));
    };
    // Earlier segments were fsync'd before the next one started: replay checks them as
    // it reads them. Only the last can have a torn tail.
    let bytes = read_all(path)?;
    let scan = scan_segment(path, &bytes, *first, true, |_, _| Ok(()))?;
    report.records = scan.records;
    report.last_seq = scan.last_seq;
    if let Some(torn) = scan.torn_bytes {
        if scan.last_seq < durable_mark && enforce_mark {
            return Err(JournalError::Corrupt {
                segment: path.clone(),
                offset: scan.end as u64,
                why: format!(
                    "record {} does not read, but the journal was durable through {durable_mark}",
                    scan.last_seq + 1
                ),
            });
        }
        report.truncated = Some((path.clone(), scan.end as u64, torn as u64));
    }
    if scan.last_seq < durable_mark && enforce_mark {
        return Err(JournalError::Lost {
            dir: dir.to_path_buf(),
            last: scan.last_seq,
            durable: durable_mark,
        });
    }
    Ok((report, scan.end as u64))
}

/// Free bytes of the file system holding `dir` (what an unprivileged writer may use).
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    segment_bytes: u64,
    file: File,
    path: PathBuf,
    segment_len: u64,
    /// Prepare preallocated segments ahead of time.
    preallocate: bool,
    /// Free space a spare segment must leave.
    reserve_bytes: u64,
    /// The current segment is a preallocated one (written in place: a failed write is
    /// undone by zeroing, not by cutting the file).
    in_spare: bool,
    /// A spare segment being prepared: resolves once it is written and synced.
    spare: Option<mpsc::Receiver<std::io::Result<()>>>,
    last_seq: u64,
    /// The last sequence of the batch before the one being built (where a failed
    /// batch goes back to).
    committed_seq: u64,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    pending: usize,
    /// Segment files are written with `O_DIRECT`, whole blocks at a time.
    direct: bool,
    /// With `direct`: the bytes of the segment's last, partial block (its length is
    /// `segment_len % DIRECT_BLOCK`), written again in front of the next batch.
    tail: Vec<u8>,
    /// With `direct`: room for a batch's blocks at an address aligned to `DIRECT_BLOCK`.
    aligned: Vec<u8>,
}

impl Journal {
    /// Opens (creating) the journal in `dir`, repairing a torn tail; fails on corruption.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<(Journal, OpenReport), JournalError> {
        Journal::open_with(dir, segment_bytes, false)
    }

    /// `open`, with new segments preallocated (zero-filled ahead of time) or not.
    pub fn open_with(
        dir: &Path,
        segment_bytes: u64,
        preallocate: bool,
    ) -> Result<(Journal, OpenReport), JournalError> {
        Journal::open_mode(dir, segment_bytes, preallocate, false)
    }

    /// Opens the journal to read what is there and change nothing: a torn tail is left
    /// in place (reported), a journal ending before its durable mark is reported, not
    /// refused. Nothing may be appended to it (`carbonx serve --read-only`).
    pub fn open_read_only(
        dir: &Path,
        segment_bytes: u64,
    ) -> Result<(Journal, OpenReport), JournalError> {
        Journal::open_mode(dir, segment_bytes, false, true)
    }

    fn open_mode(
        dir: &Path,
        segment_bytes: u64,
        preallocate: bool,
        read_only: bool,
    ) -> Result<(Journal, OpenReport), JournalError> {
        if read_only {
            let (report, end_of_last) = inspect_with(dir, false)?;
            let segs = segments(dir)?;
            let Some((_, path)) = segs.last() else {
                return Err(JournalError::Missing {
                    dir: dir.to_path_buf(),
                    from: 1,
                    first: 0,
                });
            };
            let file = OpenOptions::new().read(true).open(path)?;
            return Ok((
                Journal::new(
                    dir,
                    segment_bytes,
                    file,
                    path.clone(),
                    end_of_last,
                    report.last_seq,
                ),
                report,
            ));
        }
        std::fs::create_dir_all(dir)?;
        // A spare left by an earlier run is not trusted (nor a partial one): make new.
        for name in [SPARE_NAME, SPARE_PARTIAL_NAME] {
            match std::fs::remove_file(dir.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        let (report, end_of_last) = inspect(dir)?;
        if let Some((path, offset, _)) = &report.truncated {
            let file = OpenOptions::new().write(true).open(path)?;
            file.set_len(*offset)?;
            file.sync_all()?;
        }
        let last_seq = report.last_seq;
        let segs = segments(dir)?;
        let (file, path, segment_len) = match segs.last() {
            Some((_, path)) => {
                // Positioned writes: a preallocated segment continues after its last
                // record, not after its zeros.
                let mut file = OpenOptions::new().write(true).open(path)?;
                file.seek(SeekFrom::Start(end_of_last))?;
                (file, path.clone(), end_of_last)
            }
            None => {
                let (file, path) = Self::create_segment(dir, last_seq + 1, false)?;
                (file, path, 0)
            }
        };
        let mut journal = Journal::new(dir, segment_bytes, file, path, segment_len, last_seq);
        journal.preallocate = preallocate;
        if preallocate {
            journal.preallocate_at_open()?;
        }
        Ok((journal, report))
    }

    fn new(
        dir: &Path,
        segment_bytes: u64,
        file: File,
        path: PathBuf,
        segment_len: u64,
        last_seq: u64,
    ) -> Journal {
        let in_spare = file
            .metadata()
            .map(|m| m.len() > segment_len)
            .unwrap_or(false);
        Journal {
            dir: dir.to_path_buf(),
            segment_bytes,
            file,
            path,
            segment_len,
            preallocate: false,
            reserve_bytes: SPARE_RESERVE_BYTES,
            in_spare,
            spare: None,
            last_seq,
            committed_seq: last_seq,
            buf: Vec::with_capacity(1 << 20),
            scratch: Vec::with_capacity(COMMAND_BYTES_MAX),
            pending: 0,
            direct: false,
            tail: Vec::new(),
            aligned: Vec::new(),
        }
    }

    /// With preallocation: an empty current segment becomes a preallocated one now
    /// (start-up can wait for it; the first batches would not), so that no fsync of this
    /// run has a file-size change to commit; otherwise the next spare is started.
    fn preallocate_at_open(&mut self) -> Result<(), JournalError> {
        let allocated = self.file.metadata()?.len();
        if self.segment_len != 0 || allocated >= self.segment_bytes {
            self.spare = make_spare(&self.dir, self.segment_bytes, self.reserve_bytes);
            return Ok(());
        }
        match fill_spare_if_room(&self.dir, self.segment_bytes, self.reserve_bytes) {
            Ok(()) => {
                let path = self.path.clone();
                self.install_spare(path)?;
            }
            Err(e) => {
                tracing::warn!(
                    "journal: preparing a spare segment failed ({e}); this segment grows as written"
                );
            }
        }
        Ok(())
    }
    /// Opens a segment for writing, with `O_DIRECT` when `direct`.
    fn open_for_write(path: &Path, create_new: bool, direct: bool) -> std::io::Result<File> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(create_new);
        if direct {
            options.custom_flags(libc::O_DIRECT);
        }
        options.open(path)
    }

    fn create_segment(
        dir: &Path,
        first_seq: u64,
        direct: bool,
    ) -> Result<(File, PathBuf), JournalError> {
        let path = segment_path(dir, first_seq);
        let file = Self::open_for_write(&path, true, direct)?;
        // Make the new name durable too.
        File::open(dir)?.sync_all()?;
        Ok((file, path))
    }

    /// Whether a spare is ready (taking it), starting one if none is being made and there
    /// is room for it.
    fn spare_ready(&mut self) -> bool {
        if !self.preallocate {
            return false;
        }
        let Some(rx) = &self.spare else {
            self.spare = make_spare(&self.dir, self.segment_bytes, self.reserve_bytes);
            return false;
        };
        match rx.try_recv() {
            Ok(Ok(())) => {
                self.spare = None;
                true
            }
            Err(mpsc::TryRecvError::Empty) => false,
            Ok(Err(e)) => {
                // Removed by the helper; tried again at a later segment (the disk may have
                // room again by then).
                tracing::warn!(
                    "journal: preparing a spare segment failed ({e}); this segment grows as written"
                );
                self.spare = None;
                false
            }
            Err(mpsc::TryRecvError::Disconnected) => {
                self.spare = None;
                false
            }
        }
    }

    /// Puts the ready spare in place as `path` (replacing an empty segment, or new), and
    /// starts the next spare.
    fn install_spare(&mut self, path: PathBuf) -> Result<(), JournalError> {
        std::fs::rename(self.dir.join(SPARE_NAME), &path)?;
        File::open(&self.dir)?.sync_all()?;
        self.file = Self::open_for_write(&path, false, self.direct)?;
        self.path = path;
        self.in_spare = true;
        self.spare = make_spare(&self.dir, self.segment_bytes, self.reserve_bytes);
        Ok(())
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Spare segments leave at least `bytes` free on the file system.
    pub fn set_reserve(&mut self, bytes: u64) {
        self.reserve_bytes = bytes;
    }

    /// Writes segments with direct I/O from now on (see the module's notes); returns
    /// whether it is on. Off, with a warning, where the file system refuses `O_DIRECT`.
    /// Anything appended and not yet committed is committed first.
    pub fn use_direct_io(&mut self) -> Result<bool, JournalError> {
        if self.direct {
            return Ok(true);
        }
        self.commit(true)?;
        let file = match Self::open_for_write(&self.path, false, true) {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!("journal: direct I/O unavailable ({e}); buffered writes");
                return Ok(false);
            }
        };
        // The segment's last, partial block, rewritten in front of the next batch.
        let partial = (self.segment_len % DIRECT_BLOCK as u64) as usize;
        let mut tail = vec![0u8; partial];
        File::open(&self.path)?.read_exact_at(&mut tail, self.segment_len - partial as u64)?;
        self.file = file;
        self.tail = tail;
        self.direct = true;
        Ok(true)
    }

    /// Whether segments are written with direct I/O.
    pub fn direct_io(&self) -> bool {
        self.direct
    }

    /// Writes the batch in `buf` at the end of the segment.
    fn write_batch(&mut self) -> Result<(), JournalError> {
        if self.direct {
            match self.write_direct() {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    // Alignment this device does not accept: nothing (or blocks of the
                    // same bytes) written; from here on, buffered.
                    tracing::warn!("journal: direct write refused ({e}); buffered writes");
                    self.direct = false;
                    self.tail.clear();
                    self.file = Self::open_for_write(&self.path, false, false)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.file.write_all_at(&self.buf, self.segment_len)?;
        Ok(())
    }

    /// One positioned `O_DIRECT` write: the partial last block, the batch, zeros to the
    /// end of the block, from the last block's start.
    fn write_direct(&mut self) -> std::io::Result<()> {
        let kept = self.tail.len();
        let start = self.segment_len - kept as u64;
        let total = kept + self.buf.len();
        let padded = total.div_ceil(DIRECT_BLOCK) * DIRECT_BLOCK;
        if self.aligned.len() < padded + DIRECT_BLOCK {
            self.aligned = vec![0; (padded + DIRECT_BLOCK).next_power_of_two()];
        }
        let at = self.aligned.as_ptr().align_offset(DIRECT_BLOCK);
        let region = self
            .aligned
            .get_mut(at..at + padded)
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        region[..kept].copy_from_slice(&self.tail);
        region[kept..total].copy_from_slice(&self.buf);
        region[total..].fill(0);
        self.file.write_all_at(region, start)?;
        let partial = total % DIRECT_BLOCK;
        self.tail.clear();
        self.tail.extend_from_slice(&region[total - partial..total]);
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds `command` to the current batch (nothing is written yet). Its sequence must
    /// follow the last one appended.
    pub fn append(&mut self, command: &Command) -> Result<(), JournalError> {
        self.check_next(command.seq)?;
        self.scratch.clear();
        encode_command(command, &mut self.scratch);
        self.push_scratch(command.seq);
        Ok(())
    }

    /// Adds a registry transaction at the next sequence to the current batch; returns its
    /// sequence. A transaction too large for a record is refused (nothing added).
    pub fn append_tx(&mut self, timestamp_ns: u64, tx: &Tx) -> Result<u64, JournalError> {
        let seq = self.last_seq + 1;
        self.scratch.clear();
        record::encode_tx(seq, timestamp_ns, tx, &mut self.scratch);
        if self.scratch.len() > record::REGISTRY_RECORD_BYTES_MAX {
            return Err(JournalError::TooLarge {
                bytes: self.scratch.len(),
            });
        }
        self.push_scratch(seq);
        Ok(seq)
    }

    /// Adds a settlement point (of the engine through `through_seq`) at the next sequence
    /// to the current batch; returns its sequence.
    pub fn append_settle(&mut self, timestamp_ns: u64, through_seq: u64) -> u64 {
        let seq = self.last_seq + 1;
        self.scratch.clear();
        record::encode_settle(seq, timestamp_ns, through_seq, &mut self.scratch);
        self.push_scratch(seq);
        seq
    }

    fn check_next(&self, seq: u64) -> Result<(), JournalError> {
        let want = self.last_seq + 1;
        if seq != want {
            return Err(JournalError::Corrupt {
                segment: self.dir.clone(),
                offset: self.segment_len,
                why: format!("append of sequence {seq} where {want} was due"),
            });
        }
        Ok(())
    }

    /// Frames the payload in `scratch` into the batch.
    fn push_scratch(&mut self, seq: u64) {
        self.buf
            .extend_from_slice(&(self.scratch.len() as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&crc32fast::hash(&self.scratch).to_le_bytes());
        self.buf.extend_from_slice(&self.scratch);
        self.last_seq = seq;
        self.pending += 1;
    }

    /// Writes the batch with one write call and, when `sync`, one fdatasync. Returns the
    /// number of records written. A failed write leaves nothing of the batch in the file
    /// (and the sequence back where the batch started), so every record of it can be
    /// refused; a failed fsync cannot be undone (what reached the disk is unknown), and the
    /// caller must stop.
    pub fn commit(&mut self, sync: bool) -> Result<usize, JournalError> {
        if self.buf.is_empty() {
            return Ok(0);
        }
        if self.segment_len == 0 && self.spare_ready() {
            // Nothing written to this segment yet: the preallocated spare takes its place.
            let path = self.path.clone();
            self.install_spare(path)?;
        }
        if let Err(e) = self.write_batch() {
            self.undo_batch();
            return Err(e);
        }
        if sync {
            self.file.sync_data()?;
        }
        self.segment_len += self.buf.len() as u64;
        self.buf.clear();
        self.committed_seq = self.last_seq;
        let written = std::mem::take(&mut self.pending);
        if self.segment_len >= self.segment_bytes {
            self.roll(sync)?;
        }
        Ok(written)
    }

    /// Forgets the batch being built after its write failed, removing whatever part of it
    /// reached the file: cut where the file grew, zeroed in a preallocated segment (whose
    /// blocks are allocated, so zeroing needs no space).
    fn undo_batch(&mut self) {
        let start = self.segment_len;
        let undone = if self.in_spare {
            let zeros = vec![0u8; self.buf.len()];
            std::fs::OpenOptions::new()
                .write(true)
                .open(&self.path)
                .and_then(|f| f.write_all_at(&zeros, start).and_then(|()| f.sync_data()))
        } else {
            self.file
                .set_len(start)
                .and_then(|()| self.file.sync_data())
        };
        if let Err(e) = undone {
            tracing::error!("journal: a failed batch could not be removed: {e}");
        }
        // With direct I/O the partial block kept for the next batch is unchanged: it is
        // replaced only after a write succeeds.
        self.buf.clear();
        self.pending = 0;
        self.last_seq = self.committed_seq;
    }

    /// Starts the next segment once this one is full.
    fn roll(&mut self, synced: bool) -> Result<(), JournalError> {
        if !synced {
            self.file.sync_data()?;
        }
        if self.file.metadata()?.len() > self.segment_len {
            // Zeros left after the last record (a smaller segment size than the spare's):
            // cut them, so only the last segment ever ends in zeros.
            self.file.set_len(self.segment_len)?;
            self.file.sync_all()?;
        }
        let path = segment_path(&self.dir, self.last_seq + 1);
        if self.spare_ready() {
            self.install_spare(path)?;
        } else {
            (self.file, self.path) =
                Self::create_segment(&self.dir, self.last_seq + 1, self.direct)?;
            self.in_spare = false;
        }
        self.segment_len = 0;
        self.tail.clear();
        Ok(())
    }

    /// fsyncs what was written without sync.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        self.file.sync_data()?;
        Ok(())
    }
}

/// Writes `path`: `bytes` zeros, synced a step at a time, resting `rest_factor` times as
/// long as each step took after it. A spare that could not be finished is removed.
/// Writes `bytes` zeros as the spare `path`: first under the partial name, renamed into
/// place once synced. On failure (ENOSPC mid-fill) the partial file is removed, so it
/// never holds the last of the space.
fn fill_spare(path: &Path, bytes: u64, rest_factor: u32) -> std::io::Result<()> {
    let partial = path.with_file_name(SPARE_PARTIAL_NAME);
    let result = fill(&partial, bytes, rest_factor).and_then(|()| std::fs::rename(&partial, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn fill(path: &Path, bytes: u64, rest_factor: u32) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    let zeros = vec![0u8; SPARE_CHUNK_BYTES];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(SPARE_CHUNK_BYTES as u64) as usize;
        let started = std::time::Instant::now();
        file.write_all(&zeros[..n])?;
        // Synced a step at a time: one flush of the whole segment would hold the device
        // (and the journal's own fsyncs behind it) for tens of ms.
        file.sync_data()?;
        left -= n as u64;
        if rest_factor > 0 {
            std::thread::sleep(started.elapsed() * rest_factor);
        }
    }
    file.sync_all()
}

/// Whether the file system holding `dir` keeps `reserve` free after `bytes` more.
fn room_for(dir: &Path, bytes: u64, reserve: u64) -> bool {
    match free_bytes(dir) {
        Ok(free) => free >= bytes.saturating_add(reserve),
        Err(_) => false,
    }
}

/// `fill_spare` of `dir`'s spare, on this thread, if there is room for it.
fn fill_spare_if_room(dir: &Path, bytes: u64, reserve: u64) -> std::io::Result<()> {
    if !room_for(dir, bytes, reserve) {
        return Err(std::io::Error::other(
            "not enough free space to keep the reserve after a spare segment",
        ));
    }
    fill_spare(&dir.join(SPARE_NAME), bytes, 0)
}

/// Writes `dir/next.spare` (`bytes` zeros, fsync'd) on a helper thread; none while the
/// file system would not keep its reserve after it.
fn make_spare(dir: &Path, bytes: u64, reserve: u64) -> Option<mpsc::Receiver<std::io::Result<()>>> {
    if !room_for(dir, bytes, reserve) {
        return None;
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let path = dir.join(SPARE_NAME);
    let spawned = std::thread::Builder::new()
        .name("journal-spare".into())
        .spawn(move || {
            let _ = tx.send(fill_spare(&path, bytes, SPARE_REST_FACTOR));
        });
    match spawned {
        Ok(_) => Some(rx),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::scan::{parse_at, zero_tail};
    use super::*;
    use engine::{AccountId, CommandKind, TransferId};

    fn credit(seq: u64) -> Command {
        Command {
            seq,
            timestamp_ns: seq * 1_000,
            kind: CommandKind::CreditFunds {
                transfer: TransferId(seq),
                account: AccountId(1),
                amount_fen: 100,
            },
        }
    }

    fn write(dir: &Path, segment_bytes: u64, from: u64, to: u64, batch: u64) {
        let (mut j, _) = Journal::open(dir, segment_bytes).unwrap_or_else(|e| panic!("{e}"));
        for seq in from..=to {
            j.append(&credit(seq)).unwrap_or_else(|e| panic!("{e}"));
            if seq % batch == 0 {
                j.commit(true).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        j.commit(true).unwrap_or_else(|e| panic!("{e}"));
    }

    fn all(dir: &Path) -> Vec<u64> {
        let mut seqs = Vec::new();
        replay(dir, 1, |c| {
            seqs.push(c.seq());
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        seqs
    }

    #[test]
    fn segments_roll_and_replay_in_order_from_any_sequence() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write(dir.path(), 4_096, 1, 500, 7);
        assert!(segments(dir.path()).unwrap_or_default().len() > 3);
        // Reopen and continue.
        write(dir.path(), 4_096, 501, 600, 50);
        assert_eq!(all(dir.path()), (1..=600).collect::<Vec<_>>());
        let mut from_333 = Vec::new();
        replay(dir.path(), 333, |c| {
            from_333.push(c.seq());
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from_333, (333..=600).collect::<Vec<_>>());
    }

    /// The sequences `replay` gives from `from`.
    fn seqs_from(dir: &Path, from: u64) -> Vec<u64> {
        let mut seqs = Vec::new();
        replay(dir, from, |c| {
            seqs.push(c.seq());
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        seqs
    }

    fn file_names<'a>(paths: impl IntoIterator<Item = &'a PathBuf>) -> Vec<std::ffi::OsString> {
        paths
            .into_iter()
            .filter_map(|p| p.file_name().map(|n| n.to_owned()))
            .collect()
    }

    #[test]
    fn archiving_moves_only_segments_wholly_at_or_before_the_sequence() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write(dir.path(), 4_096, 1, 500, 7);
        let before = segments(dir.path()).unwrap_or_default();
        assert!(before.len() > 4, "{before:?}");
        // A sequence in the middle of the third segment: the first two move.
        let (third, fourth) = (before[2].0, before[3].0);
        let through = (third + fourth) / 2;
        let moved = archive_through(dir.path(), through).unwrap_or_else(|e| panic!("{e}"));
        let names = |list: &[(u64, PathBuf)]| file_names(list.iter().map(|(_, p)| p));
        assert_eq!(file_names(&moved), names(&before[..2]));
        let archive = dir.path().join(ARCHIVE_DIR);
        let segments_of = |d: &Path| segments(d).unwrap_or_default();
        assert_eq!(names(&segments_of(&archive)), names(&before[..2]));
        assert_eq!(names(&segments_of(dir.path())), names(&before[2..]));
        // The last record of a segment counts: through the end of the third moves it too.
        let moved = archive_through(dir.path(), fourth - 1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(moved.len(), 1);
        // Recovery from after the archived part replays everything from there; from
        // before it, the gap is refused (instead of silently skipped).
        assert_eq!(
            seqs_from(dir.path(), fourth),
            (fourth..=500).collect::<Vec<_>>()
        );
        let missing = replay(dir.path(), fourth - 1, |_| Ok(()));
        assert!(
            matches!(missing, Err(JournalError::Missing { from, first, .. }) if from == fourth - 1 && first == fourth),
            "{missing:?}"
        );
        // The archive is a journal of its own (verifiable from its first segment); the
        // last segment never moves, even when every record is covered.
        assert_eq!(seqs_from(&archive, 1), (1..fourth).collect::<Vec<_>>());
        archive_through(dir.path(), u64::MAX).unwrap_or_else(|e| panic!("{e}"));
        let left = segments_of(dir.path());
        assert_eq!(names(&left), names(&before[before.len() - 1..]));
        // Reopening continues after the last record.
        write(dir.path(), 4_096, 501, 520, 5);
        assert_eq!(
            seqs_from(dir.path(), left[0].0),
            (left[0].0..=520).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_torn_tail_is_truncated_and_a_corrupt_middle_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write(dir.path(), 1 << 20, 1, 100, 10);
        let (_, path) = segments(dir.path())
            .unwrap_or_default()
            .pop()
            .unwrap_or_else(|| panic!("no segment"));
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        // Torn tail: cut the last record in half and add garbage.
        let mut bytes = std::fs::read(&path).unwrap_or_default();
        bytes.truncate(len as usize - 10);
        bytes.extend_from_slice(&[0xAB; 3]);
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let (_, report) = Journal::open(dir.path(), 1 << 20).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.last_seq, 99);
        assert!(report.truncated.is_some());
        assert_eq!(all(dir.path()), (1..=99).collect::<Vec<_>>());

        // Flip one byte in the middle: refused, naming the segment and offset.
        let mut bytes = std::fs::read(&path).unwrap_or_default();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let err = Journal::open(dir.path(), 1 << 20)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains(".wal") && err.contains("offset"), "{err}");
        // Nothing was truncated by the refused open.
        assert_eq!(std::fs::read(&path).unwrap_or_default(), bytes);
    }

    /// Each of `segs` holds whole records and nothing else (no zeros after them).
    fn assert_records_only(segs: &[(u64, PathBuf)]) {
        for (_, path) in segs {
            let b = std::fs::read(path).unwrap_or_default();
            let mut at = 0;
            while at < b.len() {
                at = parse_at(&b, at)
                    .unwrap_or_else(|why| panic!("{} at {at}: {why}", path.display()))
                    .1;
            }
        }
    }

    fn write_pre(dir: &Path, segment_bytes: u64, from: u64, to: u64, batch: u64) {
        let (mut j, _) =
            Journal::open_with(dir, segment_bytes, true).unwrap_or_else(|e| panic!("{e}"));
        for seq in from..=to {
            j.append(&credit(seq)).unwrap_or_else(|e| panic!("{e}"));
            if seq % batch == 0 {
                j.commit(true).unwrap_or_else(|e| panic!("{e}"));
                if seq % (batch * 8) == 0 {
                    // Give the helper thread time to prepare spares now and then.
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
        j.commit(true).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn an_empty_first_segment_is_preallocated_at_open() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (j, _) = Journal::open_with(dir.path(), 65_536, true).unwrap_or_else(|e| panic!("{e}"));
        let segs = segments(dir.path()).unwrap_or_default();
        assert_eq!(segs.len(), 1);
        let first = segs[0].1.clone();
        let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        // Full size before the first record: the first batches overwrite zeros in place.
        assert_eq!(len(&first), 65_536);
        // Opened again before anything was written: the preallocated file is kept as is.
        let inode = |p: &Path| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(p).map(|m| m.ino()).unwrap_or(0)
        };
        let before = inode(&first);
        drop(j);
        let (mut j, _) =
            Journal::open_with(dir.path(), 65_536, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(inode(&first), before, "not replaced by another spare");
        for seq in 1..=50 {
            j.append(&credit(seq)).unwrap_or_else(|e| panic!("{e}"));
        }
        j.commit(true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(len(&first), 65_536, "written in place, no growth");
        drop(j);
        assert_eq!(all(dir.path()), (1..=50).collect::<Vec<_>>());
        // A segment that already holds records is continued, not replaced.
        let (mut j, report) =
            Journal::open_with(dir.path(), 65_536, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.last_seq, 50);
        j.append(&credit(51)).unwrap_or_else(|e| panic!("{e}"));
        j.commit(true).unwrap_or_else(|e| panic!("{e}"));
        drop(j);
        assert_eq!(all(dir.path()), (1..=51).collect::<Vec<_>>());
    }

    #[test]
    fn preallocated_segments_end_in_zeros_that_are_not_damage() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write_pre(dir.path(), 8_192, 1, 2_000, 10);
        let segs = segments(dir.path()).unwrap_or_default();
        assert!(segs.len() > 5, "{}", segs.len());
        let (_, last) = segs.last().cloned().unwrap_or_else(|| panic!("no segment"));
        let bytes = std::fs::read(&last).unwrap_or_default();
        // Every segment but the last holds records only (zeros cut at the roll).
        assert_records_only(&segs[..segs.len() - 1]);
        assert_eq!(all(dir.path()), (1..=2_000).collect::<Vec<_>>());
        // Reopening: zeros are the end, not a torn tail; writing continues after the last
        // record (not after the zeros), and a later open sees everything.
        let (j, report) =
            Journal::open_with(dir.path(), 8_192, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.truncated, None);
        assert_eq!(report.last_seq, 2_000);
        drop(j);
        write_pre(dir.path(), 8_192, 2_001, 2_300, 7);
        assert_eq!(all(dir.path()), (1..=2_300).collect::<Vec<_>>());
        // Opening without preallocation reads the same journal.
        let (_, report) = Journal::open(dir.path(), 8_192).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.last_seq, 2_300);
        assert!(!bytes.is_empty());
    }

    #[test]
    fn a_torn_record_inside_a_preallocated_segment_is_cut() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (mut j, _) =
            Journal::open_with(dir.path(), 1 << 16, true).unwrap_or_else(|e| panic!("{e}"));
        // Wait for the spare, then write: the first segment becomes the spare.
        for _ in 0..200 {
            if dir.path().join(SPARE_NAME).exists() && j.spare_ready() {
                let path = j.path.clone();
                j.install_spare(path).unwrap_or_else(|e| panic!("{e}"));
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // Records up to where the next one would cross a 512-byte sector boundary.
        let mut last = 0;
        let record = |seq: u64| {
            let mut payload = Vec::new();
            encode_command(&credit(seq), &mut payload);
            let mut r = (payload.len() as u32).to_le_bytes().to_vec();
            r.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            r.extend_from_slice(&payload);
            r
        };
        while last < 50 || (j.segment_len as usize % 512) + record(last + 1).len() <= 512 {
            last += 1;
            j.append(&credit(last)).unwrap_or_else(|e| panic!("{e}"));
            j.commit(true).unwrap_or_else(|e| panic!("{e}"));
        }
        let end = j.segment_len as usize;
        drop(j);
        let (_, path) = segments(dir.path())
            .unwrap_or_default()
            .pop()
            .unwrap_or_else(|| panic!("no segment"));
        let mut bytes = std::fs::read(&path).unwrap_or_default();
        assert_eq!(
            bytes.len(),
            1 << 16,
            "the segment is the preallocated spare"
        );
        // The next record written up to the sector boundary it crosses, its sector after
        // the boundary never written (zeros): a torn write, cut.
        let next = record(last + 1);
        let boundary = (end / 512 + 1) * 512;
        bytes[end..boundary].copy_from_slice(&next[..boundary - end]);
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let (_, report) =
            Journal::open_with(dir.path(), 1 << 16, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.last_seq, last);
        assert_eq!(
            report.truncated.as_ref().map(|t| t.1),
            Some(end as u64),
            "{report:?}"
        );
        assert_eq!(all(dir.path()), (1..=last).collect::<Vec<_>>());
        // A record damaged before the last good one is still refused.
        let mut bytes = std::fs::read(&path).unwrap_or_default();
        bytes[end / 2] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        assert!(Journal::open(dir.path(), 1 << 16).is_err());
    }

    /// Whether `dir`'s file system takes `O_DIRECT` (tmpfs, for one, does not).
    fn takes_direct_io(dir: &Path) -> bool {
        let probe = dir.join("probe");
        let ok = OpenOptions::new()
            .write(true)
            .create(true)
            .custom_flags(libc::O_DIRECT)
            .open(&probe)
            .is_ok();
        let _ = std::fs::remove_file(&probe);
        ok
    }

    /// Writes records `from..=to` in batches whose sizes (in records) cycle through
    /// `sizes`; with `direct`, through direct I/O (asserted on where the file system takes
    /// it).
    fn write_batches(
        dir: &Path,
        segment_bytes: u64,
        preallocate: bool,
        direct: bool,
        (from, to): (u64, u64),
        sizes: &[u64],
    ) {
        let (mut j, _) =
            Journal::open_with(dir, segment_bytes, preallocate).unwrap_or_else(|e| panic!("{e}"));
        if direct {
            let on = j.use_direct_io().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(on, takes_direct_io(dir));
            assert_eq!(j.direct_io(), on);
        }
        let mut seq = from;
        for &size in sizes.iter().cycle() {
            for _ in 0..size {
                if seq > to {
                    break;
                }
                j.append(&credit(seq)).unwrap_or_else(|e| panic!("{e}"));
                seq += 1;
            }
            j.commit(true).unwrap_or_else(|e| panic!("{e}"));
            if seq > to {
                break;
            }
        }
    }

    #[test]
    fn direct_io_writes_the_bytes_buffered_writes_do() {
        let buffered = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let direct = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // Batches of one record, of a few, of about a block (a record is 40-odd bytes),
        // of several blocks; segments of 16 KiB, so batches straddle blocks and segments.
        let sizes = [1, 3, 95, 1, 250, 7, 400, 2];
        // Reopened between runs: the direct journal picks up its partial last block from
        // the file.
        for range in [(1, 1_500), (1_501, 1_502), (1_503, 4_000)] {
            write_batches(buffered.path(), 16_384, false, false, range, &sizes);
            write_batches(direct.path(), 16_384, false, true, range, &sizes);
        }
        let a = segments(buffered.path()).unwrap_or_default();
        let b = segments(direct.path()).unwrap_or_default();
        assert!(a.len() > 5, "{}", a.len());
        let names = |segs: &[(u64, PathBuf)]| segs.iter().map(|(n, _)| *n).collect::<Vec<_>>();
        assert_eq!(names(&a), names(&b));
        for (n, ((_, pa), (_, pb))) in a.iter().zip(&b).enumerate() {
            let x = std::fs::read(pa).unwrap_or_default();
            let y = std::fs::read(pb).unwrap_or_default();
            if n + 1 < a.len() {
                // Cut to its last record at the roll, like the buffered one.
                assert!(x == y, "segment {} differs", pb.display());
            } else {
                // The last block padded with zeros to its end.
                assert_eq!(y.len() % DIRECT_BLOCK, 0);
                assert!(y.starts_with(&x) && zero_tail(&y, x.len()));
            }
        }
        assert_eq!(all(direct.path()), (1..=4_000).collect::<Vec<_>>());
        let (_, report) = Journal::open(direct.path(), 16_384).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((report.last_seq, report.truncated), (4_000, None));
    }

    #[test]
    fn direct_io_into_preallocated_segments_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let sizes = [2, 120, 1, 33, 300];
        write_batches(dir.path(), 32_768, true, true, (1, 3_000), &sizes);
        write_batches(dir.path(), 32_768, true, true, (3_001, 6_000), &sizes);
        let segs = segments(dir.path()).unwrap_or_default();
        assert!(segs.len() > 3, "{}", segs.len());
        assert_records_only(&segs[..segs.len() - 1]);
        assert_eq!(all(dir.path()), (1..=6_000).collect::<Vec<_>>());
        let (_, report) =
            Journal::open_with(dir.path(), 32_768, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((report.last_seq, report.truncated), (6_000, None));
    }
}
