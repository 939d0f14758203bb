//! Reading segments: records one after another, where the journal ends, and what a bad
//! record at the end is (a torn write to cut, or damage to refuse). Start-up
//! (`Journal::open`), replay and `carbonx journal verify` all read through here, so they
//! agree on what a torn tail is.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::JournalError;
use super::record::{self, PAYLOAD_BYTES_MIN, Record};

/// `u32 length | u32 CRC-32 of the payload`.
pub(super) const HEADER_BYTES: usize = 8;
/// The unit a device writes whole or not at all. A write torn by a crash leaves whole
/// sectors of the old contents (zeros: preallocated, or never written) or ends the file.
const SECTOR_BYTES: usize = 512;
/// Past the last non-zero byte, a damaged length field is searched for this far (a record
/// may end in zero bytes: a small integer's high bytes).
const LENGTH_SEARCH_SLACK: usize = 64;

/// One record parsed at `at`, and where the next one starts; or why not.
pub(super) fn parse_at(bytes: &[u8], at: usize) -> Result<(Record, usize), String> {
    let header = bytes
        .get(at..at + HEADER_BYTES)
        .ok_or("record header cut short")?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let tag = bytes
        .get(at + HEADER_BYTES + PAYLOAD_BYTES_MIN - 1)
        .copied()
        .unwrap_or(0);
    if !(PAYLOAD_BYTES_MIN..=record::payload_bytes_max(tag)).contains(&len) {
        return Err(format!("record length {len} out of range"));
    }
    let payload = bytes
        .get(at + HEADER_BYTES..at + HEADER_BYTES + len)
        .ok_or("record payload cut short")?;
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    let record = record::decode(payload)?;
    Ok((record, at + HEADER_BYTES + len))
}

/// Whether everything from `at` on is zeros (the unused part of a preallocated segment).
pub(super) fn zero_tail(bytes: &[u8], at: usize) -> bool {
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

/// Whether some whole sector overlapping `range` reads as zeros (or lies past the end):
/// part of the record never reached the disk.
fn unwritten_sector_in(bytes: &[u8], range: std::ops::Range<usize>) -> bool {
    let first = range.start / SECTOR_BYTES;
    let last = range.end.saturating_sub(1) / SECTOR_BYTES;
    (first..=last).any(|sector| {
        let start = sector * SECTOR_BYTES;
        match bytes.get(start..(start + SECTOR_BYTES).min(bytes.len())) {
            None | Some([]) => true,
            Some(s) => s.iter().all(|&b| b == 0),
        }
    })
}

/// Whether the payload after a damaged length field is still a whole record: some length
/// makes the stored checksum match (the length was hit, not the write torn).
fn length_damaged(bytes: &[u8], at: usize) -> bool {
    let Some(header) = bytes.get(at..at + HEADER_BYTES) else {
        return false;
    };
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let start = at + HEADER_BYTES;
    let last_nonzero = bytes.iter().rposition(|&b| b != 0).unwrap_or(0);
    let end = (last_nonzero + 1 + LENGTH_SEARCH_SLACK)
        .min(bytes.len())
        .min(start + record::REGISTRY_RECORD_BYTES_MAX);
    let mut hasher = crc32fast::Hasher::new();
    for (n, b) in bytes.get(start..end).unwrap_or_default().iter().enumerate() {
        hasher.update(std::slice::from_ref(b));
        if n + 1 >= PAYLOAD_BYTES_MIN && hasher.clone().finalize() == crc {
            return true;
        }
    }
    false
}

/// What a record that does not read at `at`, with nothing valid after it, is: `None`
/// for a torn write (a batch cut by a crash before its fsync returned: never
/// acknowledged), or the damage found in what was written whole.
pub(super) fn damage_at(bytes: &[u8], at: usize, why: &str) -> Option<String> {
    let header = bytes.get(at..at + HEADER_BYTES)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let tag = bytes
        .get(at + HEADER_BYTES + PAYLOAD_BYTES_MIN - 1)
        .copied()
        .unwrap_or(0);
    if !(PAYLOAD_BYTES_MIN..=record::payload_bytes_max(tag)).contains(&len) {
        return length_damaged(bytes, at)
            .then(|| format!("{why}: the length field is damaged, the record after it whole"));
    }
    let end = at + HEADER_BYTES + len;
    if end > bytes.len() || unwritten_sector_in(bytes, at..end) {
        return None;
    }
    Some(format!(
        "{why} in a record written whole (no part of it is unwritten): damage, not a torn write"
    ))
}

/// What reading one segment found.
#[derive(Debug, Default)]
pub(super) struct SegmentScan {
    pub records: u64,
    pub last_seq: u64,
    /// Where the records end (a torn tail starts here).
    pub end: usize,
    /// A torn tail after `end`: its length in bytes.
    pub torn_bytes: Option<usize>,
}

/// Reads the segment `path` (named for its first sequence `first`), whose bytes are
/// `bytes`, calling `each` for every record. Only the last segment may end in zeros or a
/// torn write; a bad record anywhere else, or one followed by a valid record, is
/// corruption.
pub(super) fn scan_segment(
    path: &Path,
    bytes: &[u8],
    first: u64,
    is_last: bool,
    mut each: impl FnMut(&Record, usize) -> Result<(), String>,
) -> Result<SegmentScan, JournalError> {
    let corrupt = |offset: usize, why: String| JournalError::Corrupt {
        segment: path.to_path_buf(),
        offset: offset as u64,
        why,
    };
    let mut scan = SegmentScan {
        last_seq: first.saturating_sub(1),
        ..SegmentScan::default()
    };
    let mut at = 0;
    while at < bytes.len() {
        match parse_at(bytes, at) {
            Ok((record, next)) => {
                let want = scan.last_seq + 1;
                if record.seq() != want {
                    let why = if at == 0 {
                        format!("segment named {first} starts at {}", record.seq())
                    } else {
                        format!("sequence {} where {want} was expected", record.seq())
                    };
                    return Err(corrupt(at, why));
                }
                each(&record, at).map_err(|why| corrupt(at, why))?;
                scan.last_seq = record.seq();
                scan.records += 1;
                at = next;
            }
            Err(_) if is_last && zero_tail(bytes, at) => break,
            Err(why) if !is_last => return Err(corrupt(at, why)),
            Err(why) => {
                if let Some(later) = valid_record_after(bytes, at, scan.last_seq) {
                    let why = format!("{why}, with a valid record after it at offset {later}");
                    return Err(corrupt(at, why));
                }
                if let Some(damage) = damage_at(bytes, at, &why) {
                    return Err(corrupt(at, damage));
                }
                scan.torn_bytes = Some(bytes.len() - at);
                break;
            }
        }
    }
    scan.end = at.min(bytes.len());
    Ok(scan)
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

pub(super) fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(segment_name(first_seq))
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

pub(super) fn read_all(path: &Path) -> Result<Vec<u8>, JournalError> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads every record of every segment from `from_seq` on, calling `each` in order.
/// Checks sequences are contiguous. Meant for a journal already opened (tail repaired);
/// a torn tail is the end here too, as at start-up.
pub fn replay(
    dir: &Path,
    from_seq: u64,
    mut each: impl FnMut(&Record) -> Result<(), String>,
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
    let mut count = 0;
    let mut previous: Option<u64> = None;
    for (n, (first, path)) in segs.iter().enumerate() {
        // Skip segments wholly before `from_seq`.
        if let Some((next_first, _)) = segs.get(n + 1)
            && *next_first <= from_seq
        {
            continue;
        }
        if let Some(last) = previous
            && *first != last + 1
        {
            return Err(JournalError::Corrupt {
                segment: path.clone(),
                offset: 0,
                why: format!("segment starts at {first} but the one before ends at {last}"),
            });
        }
        let bytes = read_all(path)?;
        let scan = scan_segment(path, &bytes, *first, n + 1 == segs.len(), |record, _| {
            if record.seq() >= from_seq {
                count += 1;
                return each(record);
            }
            Ok(())
        })?;
        previous = Some(scan.last_seq);
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One engine record's bytes (header and payload).
    fn record_bytes(seq: u64) -> Vec<u8> {
        let command = engine::Command {
            seq,
            timestamp_ns: seq * 1_000,
            kind: engine::CommandKind::CreditFunds {
                transfer: engine::TransferId(seq),
                account: engine::AccountId(1),
                amount_fen: 100,
            },
        };
        let mut payload = Vec::new();
        engine::encode_command(&command, &mut payload);
        let mut out = Vec::new();
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }

    /// Records 1..=n back to back, then zeros to `size`.
    fn segment(n: u64, size: usize) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut starts = Vec::new();
        for seq in 1..=n {
            starts.push(bytes.len());
            bytes.extend_from_slice(&record_bytes(seq));
        }
        if size > bytes.len() {
            bytes.resize(size, 0);
        }
        (bytes, starts)
    }

    fn scan(bytes: &[u8]) -> Result<SegmentScan, JournalError> {
        scan_segment(Path::new("x.wal"), bytes, 1, true, |_, _| Ok(()))
    }

    #[test]
    fn a_record_cut_at_a_sector_boundary_is_a_torn_write() {
        let (mut bytes, starts) = segment(40, 8_192);
        // The record that crosses the first sector boundary after 1 KiB: the sector it
        // continues into never reached the disk (zeros from the boundary on).
        let crossing = starts
            .iter()
            .position(|&s| s > 1_024 && (s + 50) / SECTOR_BYTES > s / SECTOR_BYTES)
            .unwrap_or_else(|| panic!("no record crosses a sector"));
        let boundary = (starts[crossing] / SECTOR_BYTES + 1) * SECTOR_BYTES;
        bytes[boundary..].fill(0);
        let found = scan(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found.last_seq, crossing as u64);
        assert_eq!(found.end, starts[crossing]);
        assert_eq!(found.torn_bytes, Some(8_192 - starts[crossing]));
    }

    #[test]
    fn a_flipped_byte_in_the_last_record_is_damage_not_a_torn_tail() {
        let (bytes, starts) = segment(40, 8_192);
        let last = starts[39];
        // Payload, checksum and length fields each: refused, naming the offset.
        for offset in [last + 20, last + 5, last] {
            let mut damaged = bytes.clone();
            damaged[offset] ^= 0x04;
            let err = scan(&damaged).map(|_| ()).unwrap_err();
            match err {
                JournalError::Corrupt {
                    offset: at, why, ..
                } => {
                    assert_eq!(at, last as u64, "{why}");
                    assert!(why.contains("damage"), "{why}");
                }
                other => panic!("{other}"),
            }
        }
    }

    #[test]
    fn a_file_that_ends_inside_the_last_record_is_a_torn_write() {
        let (bytes, starts) = segment(10, 0);
        let cut = &bytes[..bytes.len() - 7];
        let found = scan(cut).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((found.last_seq, found.end), (9, starts[9]));
    }
}
