//! The engine journal: an append-only, segmented log of sequenced commands.
//!
//! A segment is a file `<first seq, 20 digits>.wal` holding records back to back:
//! `u32 length | u32 CRC-32 of the payload | payload`, little endian, where the payload is
//! the engine's canonical command encoding (sequence and timestamp included). Records are
//! appended in batches, one write and one fsync per batch (group commit); a new segment
//! starts once the current one passes the configured size.
//!
//! With preallocation a segment starts as a file of zeros written and fsync'd ahead of
//! time by a helper thread, paced so the journal's own fsyncs wait behind one step of it at most
//! (`next.spare`, renamed into place when a segment starts; an empty segment found at
//! open is filled there and then):
//! overwriting allocated blocks needs no file-size change, so each batch's fdatasync has
//! no metadata to commit (on this project's 2-core VM: p50 128 us instead of 153-168 us).
//! Zeros after the last record are the end of the journal, not damage.
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
//! Opening checks every record. A bad record in the last segment with no valid record after
//! it is a torn tail (a crash mid-write): it is truncated away. A bad record followed by
//! valid ones, or in any earlier segment, is corruption: opening fails naming the segment
//! and offset, and nothing is replayed past it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use engine::{COMMAND_BYTES_MAX, Command, decode_command, encode_command};

const HEADER_BYTES: usize = 8;
/// The preallocated segment being prepared (never a `.wal`, so never read as journal).
const SPARE_NAME: &str = "next.spare";
/// Zeros written (and synced) per step while preparing a spare.
const SPARE_CHUNK_BYTES: usize = 128 << 10;
/// After each step the spare writer rests this many times as long as the step took, so it
/// holds the device at most a quarter of the time and the journal's own fsyncs wait behind
/// one step at most (measured here: filling 64 MiB flat out took 88 ms and pushed a
/// concurrent fsync from 0.2 to 11 ms). On this machine a spare takes about half a second.
const SPARE_REST_FACTOR: u32 = 3;
/// Direct I/O writes whole blocks of this size from a buffer aligned to it (4 KiB: a
/// multiple of any logical block size a Linux block device reports).
const DIRECT_BLOCK: usize = 4096;
/// Smallest payload: sequence, timestamp and a tag.
const PAYLOAD_BYTES_MIN: usize = 17;

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
    pub records: u64,
    pub last_seq: u64,
    /// A torn tail that was cut: segment, offset, bytes removed.
    pub truncated: Option<(PathBuf, u64, u64)>,
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
    /// A spare segment being prepared: resolves once it is written and synced.
    spare: Option<mpsc::Receiver<std::io::Result<()>>>,
    last_seq: u64,
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

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

/// Segments of `dir`, oldest first.
pub fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(stem) = name.strip_suffix(".wal")
            && let Ok(first) = stem.parse::<u64>()
        {
            out.push((first, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The first sequence of the oldest segment in `dir` (earlier ones may be archived), if any.
pub fn first_seq(dir: &Path) -> Option<u64> {
    segments(dir).ok()?.first().map(|(first, _)| *first)
}

/// One record parsed at `at`, or why not.
fn parse_at(bytes: &[u8], at: usize) -> Result<(Command, usize), String> {
    let header = bytes
        .get(at..at + HEADER_BYTES)
        .ok_or("record header cut short")?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if !(PAYLOAD_BYTES_MIN..=COMMAND_BYTES_MAX).contains(&len) {
        return Err(format!("record length {len} out of range"));
    }
    let payload = bytes
        .get(at + HEADER_BYTES..at + HEADER_BYTES + len)
        .ok_or("record payload cut short")?;
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    let command = decode_command(payload).map_err(|e| format!("undecodable command: {e}"))?;
    Ok((command, at + HEADER_BYTES + len))
}

/// Whether everything from `at` on is zeros (the unused part of a preallocated segment).
fn zero_tail(bytes: &[u8], at: usize) -> bool {
    bytes
        .get(at..)
        .is_some_and(|rest| rest.iter().all(|&b| b == 0))
}

/// Whether a valid record of a later sequence starts anywhere after `from`.
fn valid_record_after(bytes: &[u8], from: usize, last_seq: u64) -> Option<usize> {
    (from + 1
        ..bytes
            .len()
            .saturating_sub(HEADER_BYTES + PAYLOAD_BYTES_MIN - 1))
        .find(|&at| {
            let Some(seq) = bytes
                .get(at + HEADER_BYTES..at + HEADER_BYTES + 8)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
                .map(u64::from_le_bytes)
            else {
                return false;
            };
            seq > last_seq && seq - last_seq < (1 << 32) && parse_at(bytes, at).is_ok()
        })
}

/// Reads every record of every segment from `from_seq` on, calling `each` in order.
/// Checks sequences are contiguous. Meant for a journal already opened (tail repaired).
pub fn replay(
    dir: &Path,
    from_seq: u64,
    mut each: impl FnMut(&Command) -> Result<(), String>,
) -> Result<u64, JournalError> {
    let segs = segments(dir)?;
    if let Some((first, _)) = segs.first()
        && *first > from_seq
    {
        // Records before the first segment were archived: replaying from here would skip them.
        return Err(JournalError::Missing {
            dir: dir.to_path_buf(),
            from: from_seq,
            first: *first,
        });
    }
    let mut expected: Option<u64> = None;
    let mut count = 0;
    for (n, (first, path)) in segs.iter().enumerate() {
        // Skip segments wholly before `from_seq`.
        if let Some((next_first, _)) = segs.get(n + 1)
            && *next_first <= from_seq
        {
            continue;
        }
        let mut bytes = Vec::new();
        File::open(path)?.read_to_end(&mut bytes)?;
        let mut at = 0;
        while at < bytes.len() {
            let (command, next) = match parse_at(&bytes, at) {
                Ok(parsed) => parsed,
                Err(_) if zero_tail(&bytes, at) => break,
                Err(why) => {
                    return Err(JournalError::Corrupt {
                        segment: path.clone(),
                        offset: at as u64,
                        why,
                    });
                }
            };
            if let Some(e) = expected {
                if command.seq != e {
                    return Err(JournalError::Corrupt {
                        segment: path.clone(),
                        offset: at as u64,
                        why: format!("sequence {} where {e} was expected", command.seq),
                    });
                }
            } else if at == 0 && command.seq != *first {
                return Err(JournalError::Corrupt {
                    segment: path.clone(),
                    offset: 0,
                    why: format!("segment named {first} starts at {}", command.seq),
                });
            }
            expected = Some(command.seq + 1);
            if command.seq >= from_seq {
                each(&command).map_err(|why| JournalError::Corrupt {
                    segment: path.clone(),
                    offset: at as u64,
                    why,
                })?;
                count += 1;
            }
            at = next;
        }
    }
    Ok(count)
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
        std::fs::create_dir_all(dir)?;
        // A spare left by an earlier run may be incomplete: make a new one.
        match std::fs::remove_file(dir.join(SPARE_NAME)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let mut end_of_last = 0u64;
        let segs = segments(dir)?;
        let mut report = OpenReport {
            segments: segs.len(),
            ..OpenReport::default()
        };
        // Earlier segments were fsync'd before the next one started: replay checks them as
        // it reads them. Only the last can have a torn tail.
        let skip = segs.len().saturating_sub(1);
        let mut last_seq = segs
            .get(skip)
            .map_or(0, |(first, _)| first.saturating_sub(1));
        for (n, (first, path)) in segs.iter().enumerate().skip(skip) {
            let is_last = n + 1 == segs.len();
            let mut bytes = Vec::new();
            File::open(path)?.read_to_end(&mut bytes)?;
            let mut at = 0;
            while at < bytes.len() {
                match parse_at(&bytes, at) {
                    Ok((command, next)) => {
                        let want = if at == 0 { *first } else { last_seq + 1 };
                        if command.seq != want {
                            return Err(JournalError::Corrupt {
                                segment: path.clone(),
                                offset: at as u64,
                                why: format!("sequence {} where {want} was expected", command.seq),
                            });
                        }
                        last_seq = command.seq;
                        report.records += 1;
                        at = next;
                    }
                    Err(_) if is_last && zero_tail(&bytes, at) => break,
                    Err(why) => {
                        if !is_last {
                            return Err(JournalError::Corrupt {
                                segment: path.clone(),
                                offset: at as u64,
                                why,
                            });
                        }
                        if let Some(later) = valid_record_after(&bytes, at, last_seq) {
                            return Err(JournalError::Corrupt {
                                segment: path.clone(),
                                offset: at as u64,
                                why: format!(
                                    "{why}, with a valid record after it at offset {later}"
                                ),
                            });
                        }
                        let file = OpenOptions::new().write(true).open(path)?;
                        file.set_len(at as u64)?;
                        file.sync_all()?;
                        report.truncated =
                            Some((path.clone(), at as u64, (bytes.len() - at) as u64));
                        break;
                    }
                }
            }
            end_of_last = at.min(bytes.len()) as u64;
        }
        report.last_seq = last_seq;
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
        let mut journal = Journal {
            dir: dir.to_path_buf(),
            segment_bytes,
            file,
            path,
            segment_len,
            preallocate,
            spare: None,
            last_seq,
            buf: Vec::with_capacity(1 << 20),
            scratch: Vec::with_capacity(COMMAND_BYTES_MAX),
            pending: 0,
            direct: false,
            tail: Vec::new(),
            aligned: Vec::new(),
        };
        if preallocate {
            let allocated = journal.file.metadata()?.len();
            if segment_len == 0 && allocated < segment_bytes {
                // Nothing written to the current segment yet: make it a preallocated one
                // now (start-up can wait for it; the first batches would not), so that
                // no fsync of this run has a file-size change to commit.
                match fill_spare(&dir.join(SPARE_NAME), segment_bytes, 0) {
                    Ok(()) => {
                        let path = journal.path.clone();
                        journal.install_spare(path)?;
                    }
                    Err(e) => {
                        tracing::warn!(
                            "journal: preparing a spare segment failed ({e}); segments grow as written"
                        );
                        journal.preallocate = false;
                    }
                }
            } else {
                journal.spare = Some(make_spare(dir, segment_bytes));
            }
        }
        Ok((journal, report))
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
        let path = dir.join(segment_name(first_seq));
        let file = Self::open_for_write(&path, true, direct)?;
        // Make the new name durable too.
        File::open(dir)?.sync_all()?;
        Ok((file, path))
    }

    /// Whether a spare is ready (taking it), starting one if none is being made.
    fn spare_ready(&mut self) -> bool {
        if !self.preallocate {
            return false;
        }
        let Some(rx) = &self.spare else {
            self.spare = Some(make_spare(&self.dir, self.segment_bytes));
            return false;
        };
        match rx.try_recv() {
            Ok(Ok(())) => {
                self.spare = None;
                true
            }
            Err(mpsc::TryRecvError::Empty) => false,
            Ok(Err(e)) => {
                tracing::warn!(
                    "journal: preparing a spare segment failed ({e}); segments grow as written"
                );
                self.preallocate = false;
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
        self.spare = Some(make_spare(&self.dir, self.segment_bytes));
        Ok(())
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
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
        let want = self.last_seq + 1;
        if command.seq != want {
            return Err(JournalError::Corrupt {
                segment: self.dir.clone(),
                offset: self.segment_len,
                why: format!("append of sequence {} where {want} was due", command.seq),
            });
        }
        self.scratch.clear();
        encode_command(command, &mut self.scratch);
        self.buf
            .extend_from_slice(&(self.scratch.len() as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&crc32fast::hash(&self.scratch).to_le_bytes());
        self.buf.extend_from_slice(&self.scratch);
        self.last_seq = command.seq;
        self.pending += 1;
        Ok(())
    }

    /// Writes the batch with one write call and, when `sync`, one fdatasync. Returns the
    /// number of records written.
    pub fn commit(&mut self, sync: bool) -> Result<usize, JournalError> {
        if self.buf.is_empty() {
            return Ok(0);
        }
        if self.segment_len == 0 && self.spare_ready() {
            // Nothing written to this segment yet: the preallocated spare takes its place.
            let path = self.path.clone();
            self.install_spare(path)?;
        }
        self.write_batch()?;
        if sync {
            self.file.sync_data()?;
        }
        self.segment_len += self.buf.len() as u64;
        self.buf.clear();
        let written = std::mem::take(&mut self.pending);
        if self.segment_len >= self.segment_bytes {
            if !sync {
                self.file.sync_data()?;
            }
            if self.file.metadata()?.len() > self.segment_len {
                // Zeros left after the last record (a smaller segment size than the
                // spare's): cut them, so only the last segment ever ends in zeros.
                self.file.set_len(self.segment_len)?;
                self.file.sync_all()?;
            }
            let path = self.dir.join(segment_name(self.last_seq + 1));
            if self.spare_ready() {
                self.install_spare(path)?;
            } else {
                (self.file, self.path) =
                    Self::create_segment(&self.dir, self.last_seq + 1, self.direct)?;
            }
            self.segment_len = 0;
            self.tail.clear();
        }
        Ok(written)
    }

    /// fsyncs what was written without sync.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        self.file.sync_data()?;
        Ok(())
    }
}

/// Writes `path`: `bytes` zeros, synced a step at a time, resting `rest_factor` times as
/// long as each step took after it.
fn fill_spare(path: &Path, bytes: u64, rest_factor: u32) -> std::io::Result<()> {
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

/// Writes `dir/next.spare`: `bytes` zeros, fsync'd, on a helper thread.
fn make_spare(dir: &Path, bytes: u64) -> mpsc::Receiver<std::io::Result<()>> {
    let (tx, rx) = mpsc::sync_channel(1);
    let path = dir.join(SPARE_NAME);
    let spawned = std::thread::Builder::new()
        .name("journal-spare".into())
        .spawn(move || {
            let _ = tx.send(fill_spare(&path, bytes, SPARE_REST_FACTOR));
        });
    if let Err(e) = spawned {
        let (tx, rx) = mpsc::sync_channel(1);
        let _ = tx.send(Err(e));
        return rx;
    }
    rx
}

#[cfg(test)]
mod tests {
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
            seqs.push(c.seq);
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
            from_333.push(c.seq);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from_333, (333..=600).collect::<Vec<_>>());
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
        let names = |list: &[(u64, PathBuf)]| -> Vec<std::ffi::OsString> {
            list.iter()
                .filter_map(|(_, p)| p.file_name().map(|n| n.to_owned()))
                .collect()
        };
        let moved_names: Vec<_> = moved
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_owned()))
            .collect();
        assert_eq!(moved_names, names(&before[..2]));
        let archive = dir.path().join(ARCHIVE_DIR);
        assert_eq!(
            names(&segments(&archive).unwrap_or_default()),
            names(&before[..2])
        );
        assert_eq!(
            names(&segments(dir.path()).unwrap_or_default()),
            names(&before[2..])
        );
        // The last record of a segment counts: through the end of the third moves it too.
        let moved = archive_through(dir.path(), fourth - 1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(moved.len(), 1);
        // Recovery from after the archived part replays everything from there; from
        // before it, the gap is refused (instead of silently skipped).
        let mut from_fourth = Vec::new();
        replay(dir.path(), fourth, |c| {
            from_fourth.push(c.seq);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from_fourth, (fourth..=500).collect::<Vec<_>>());
        let missing = replay(dir.path(), fourth - 1, |_| Ok(()));
        assert!(
            matches!(missing, Err(JournalError::Missing { from, first, .. }) if from == fourth - 1 && first == fourth),
            "{missing:?}"
        );
        // The archive is a journal of its own (verifiable from its first segment); the
        // last segment never moves, even when every record is covered.
        let mut archived = Vec::new();
        replay(&archive, 1, |c| {
            archived.push(c.seq);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(archived, (1..fourth).collect::<Vec<_>>());
        archive_through(dir.path(), u64::MAX).unwrap_or_else(|e| panic!("{e}"));
        let left = segments(dir.path()).unwrap_or_default();
        assert_eq!(left.len(), 1);
        assert_eq!(
            left[0].1.file_name(),
            before.last().and_then(|(_, p)| p.file_name())
        );
        // Reopening continues after the last record.
        write(dir.path(), 4_096, 501, 520, 5);
        let mut tail = Vec::new();
        replay(dir.path(), left[0].0, |c| {
            tail.push(c.seq);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tail, (left[0].0..=520).collect::<Vec<_>>());
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
        for seq in 1..=50 {
            j.append(&credit(seq)).unwrap_or_else(|e| panic!("{e}"));
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
        // Half a record after the last one, zeros after it: a torn tail.
        bytes[end..end + 6].copy_from_slice(&[0x11, 0, 0, 0, 0xde, 0xad]);
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let (_, report) =
            Journal::open_with(dir.path(), 1 << 16, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.last_seq, 50);
        assert_eq!(
            report.truncated.as_ref().map(|t| t.1),
            Some(end as u64),
            "{report:?}"
        );
        assert_eq!(all(dir.path()), (1..=50).collect::<Vec<_>>());
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
