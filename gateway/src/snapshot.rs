//! Snapshot files: the engine's state at a sequence number plus the daily bars the gateway
//! keeps, so recovery restores the newest one and replays only the journal after it.
//!
//! File `<seq, 20 digits>.snap`: magic `CBXSNAPF`, `u64 seq`, `u64 len` + engine snapshot
//! bytes (the engine's own canonical, checksummed format), `u64 count` + daily bars, then a
//! CRC-32 of everything before it. Written to a temporary name, fsync'd, renamed, and the
//! directory fsync'd; the newest [`SNAPSHOTS_KEPT`] are kept.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use engine::{DailyBar, Engine, InstrumentId};

const MAGIC: &[u8; 8] = b"CBXSNAPF";
/// Snapshots kept on disk (the newest ones).
pub const SNAPSHOTS_KEPT: usize = 2;

/// The engine-copy buffer of the last snapshot written, handed back by the snapshot writer
/// so that the core thread copies the next one into memory already mapped (the size of
/// the book, kept between snapshots) instead of page-faulting through fresh megabytes.
pub type CopyBuffer = std::sync::Arc<parking_lot::Mutex<Option<Vec<u8>>>>;
/// One daily bar's encoded size.
const BAR_BYTES: usize = 4 + 4 + 8 * 4 + 8 + 8 + 8;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    #[error("snapshot io: {0}")]
    Io(#[from] std::io::Error),
    #[error("snapshot {}: {why}", path.display())]
    Invalid { path: PathBuf, why: String },
}

/// A snapshot as loaded.
#[derive(Debug)]
pub struct Loaded {
    pub seq: u64,
    pub engine: Engine,
    pub bars: Vec<DailyBar>,
    pub path: PathBuf,
}

fn name(seq: u64) -> String {
    format!("{seq:020}.snap")
}

/// Snapshot files of `dir`, newest first.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SnapshotFileError> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".snap"))
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(seq) = seq {
            out.push((seq, path));
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.0));
    Ok(out)
}

pub fn encode(seq: u64, engine_bytes: &[u8], bars: &[DailyBar]) -> Vec<u8> {
    let mut out = Vec::with_capacity(engine_bytes.len() + bars.len() * BAR_BYTES + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(engine_bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(engine_bytes);
    out.extend_from_slice(&(bars.len() as u64).to_le_bytes());
    for b in bars {
        out.extend_from_slice(&b.instrument.0.to_le_bytes());
        out.extend_from_slice(&b.date.to_le_bytes());
        for v in [b.open_fen, b.high_fen, b.low_fen, b.close_fen] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&b.volume_t.to_le_bytes());
        out.extend_from_slice(&b.turnover_fen.to_le_bytes());
        out.extend_from_slice(&b.trades.to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Writes a snapshot durably and removes all but the newest [`SNAPSHOTS_KEPT`].
pub fn write(dir: &Path, seq: u64, bytes: &[u8]) -> Result<PathBuf, SnapshotFileError> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name(seq));
    let tmp = dir.join(format!("{}.tmp", name(seq)));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    File::open(dir)?.sync_all()?;
    for (_, old) in list(dir)?.into_iter().skip(SNAPSHOTS_KEPT) {
        let _ = std::fs::remove_file(old);
    }
    Ok(path)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8)?.try_into().ok().map(i64::from_le_bytes)
    }
}

/// Decodes and checks one snapshot file.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Loaded, SnapshotFileError> {
    let invalid = |why: &str| SnapshotFileError::Invalid {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    if bytes.len() < MAGIC.len() + 8 + 8 + 8 + 4 || &bytes[..8] != MAGIC {
        return Err(invalid("not a carbonx snapshot"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != crc {
        return Err(invalid("checksum mismatch"));
    }
    let mut c = Cursor { bytes: body, at: 8 };
    let seq = c.u64().ok_or_else(|| invalid("truncated"))?;
    let len = usize::try_from(c.u64().ok_or_else(|| invalid("truncated"))?)
        .map_err(|_| invalid("length"))?;
    let engine_bytes = c
        .take(len)
        .ok_or_else(|| invalid("truncated engine state"))?;
    let engine = Engine::restore(engine_bytes).map_err(|e| invalid(&e.to_string()))?;
    if engine.last_seq() != seq {
        return Err(invalid("engine state is at another sequence"));
    }
    let count = usize::try_from(c.u64().ok_or_else(|| invalid("truncated"))?)
        .map_err(|_| invalid("count"))?;
    if count.saturating_mul(BAR_BYTES) > body.len() - c.at {
        return Err(invalid("bar count"));
    }
    let mut bars = Vec::with_capacity(count);
    for _ in 0..count {
        let bar = (|| {
            Some(DailyBar {
                instrument: InstrumentId(c.u32()?),
                date: c.u32()?,
                open_fen: c.i64()?,
                high_fen: c.i64()?,
                low_fen: c.i64()?,
                close_fen: c.i64()?,
                volume_t: c.u64()?,
                turnover_fen: c.i64()?,
                trades: c.u64()?,
            })
        })()
        .ok_or_else(|| invalid("truncated bars"))?;
        bars.push(bar);
    }
    if c.at != body.len() {
        return Err(invalid("trailing bytes"));
    }
    Ok(Loaded {
        seq,
        engine,
        bars,
        path: path.to_path_buf(),
    })
}

/// The sequence of the valid snapshot just older than `newer` (at most [`SNAPSHOTS_KEPT`]
/// files exist), for rebuilding the stream history between the two.
pub fn older_than(dir: &Path, newer: u64) -> Result<Option<Loaded>, SnapshotFileError> {
    for (seq, path) in list(dir)? {
        if seq >= newer {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        if let Ok(loaded) = decode(&path, &bytes) {
            return Ok(Some(loaded));
        }
    }
    Ok(None)
}

/// The newest snapshot that loads, at or below `max_seq`; invalid ones are reported and
/// skipped (the older one, or a full replay, takes over).
pub fn load_newest(
    dir: &Path,
    max_seq: u64,
) -> Result<(Option<Loaded>, Vec<String>), SnapshotFileError> {
    let mut skipped = Vec::new();
    for (seq, path) in list(dir)? {
        if seq > max_seq {
            skipped.push(format!(
                "{}: beyond the registry's settlement watermark {max_seq}",
                path.display()
            ));
            continue;
        }
        let bytes = std::fs::read(&path)?;
        match decode(&path, &bytes) {
            Ok(loaded) => return Ok((Some(loaded), skipped)),
            Err(e) => skipped.push(e.to_string()),
        }
    }
    Ok((None, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{AccountId, Command, CommandKind, EngineConfig, TransferId};

    #[test]
    fn snapshots_round_trip_keep_two_and_refuse_corruption() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut engine = Engine::new(EngineConfig::default());
        let mut out = Vec::new();
        let bar = DailyBar {
            instrument: InstrumentId(0),
            date: 20_261_130,
            open_fen: 1,
            high_fen: 2,
            low_fen: 1,
            close_fen: 2,
            volume_t: 3,
            turnover_fen: 5,
            trades: 2,
        };
        for seq in 1..=3u64 {
            let command = Command {
                seq,
                timestamp_ns: seq,
                kind: CommandKind::OpenAccount {
                    account: AccountId(10 + seq),
                    stp: engine::StpMode::default(),
                },
            };
            let _ = engine.apply(&command, &mut out);
            write(dir.path(), seq, &encode(seq, &engine.snapshot(), &[bar]))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let files = list(dir.path()).unwrap_or_default();
        assert_eq!(files.iter().map(|f| f.0).collect::<Vec<_>>(), vec![3, 2]);
        let (loaded, skipped) = load_newest(dir.path(), u64::MAX).unwrap_or_else(|e| panic!("{e}"));
        let loaded = loaded.unwrap_or_else(|| panic!("nothing loaded: {skipped:?}"));
        assert!(skipped.is_empty());
        assert_eq!((loaded.seq, loaded.bars.clone()), (3, vec![bar]));
        assert_eq!(loaded.engine.state_hash(), engine.state_hash());
        // Beyond the watermark: the older one.
        let (older, _) = load_newest(dir.path(), 2).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(older.map(|l| l.seq), Some(2));
        // A flipped byte: skipped with a reason, the older one loads.
        let mut bytes = std::fs::read(&files[0].1).unwrap_or_default();
        let n = bytes.len() / 2;
        bytes[n] ^= 1;
        std::fs::write(&files[0].1, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let (loaded, skipped) = load_newest(dir.path(), u64::MAX).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.map(|l| l.seq), Some(2));
        assert!(skipped[0].contains("checksum"), "{skipped:?}");
        let _ = TransferId(0);
    }
}
