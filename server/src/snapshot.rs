//! Snapshots: the state at one journal sequence, so recovery restores the newest one and
//! replays only the journal after it. A snapshot is a pair: the engine's state with what
//! the gateway keeps beside it (this file), and a checkpoint of the registry's RocksDB at
//! the same sequence (`<seq>.registry/`, made by the registry writer first, so a snapshot
//! file never exists without its checkpoint).
//!
//! File `<seq, 20 digits>.snap`: magic `CBXSNAPG`, `u64 seq` (the journal's, which the engine
//! has applied or passed through), `u64 len` + engine snapshot bytes (the engine's own
//! canonical, checksummed format), `u64 count` + daily bars, `u64 count` + the recent trades
//! `GetTrades` serves (so their retention survives a restart), then a CRC-32 of everything
//! before it. Written to a temporary name, fsync'd, renamed, and the directory fsync'd; the
//! newest [`SNAPSHOTS_KEPT`] are kept, with their checkpoints. Files of the previous format
//! (`CBXSNAPF`, no trades) still load.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use engine::{
    DailyBar, Engine, FillSide, InstrumentId, OrderId, Side, TradeId, TradeKind, TradeReport,
};

use crate::hub::TradeRecord;

const MAGIC: &[u8; 8] = b"CBXSNAPG";
/// The format before the trades section.
const MAGIC_V1: &[u8; 8] = b"CBXSNAPF";
/// Snapshots kept on disk (the newest ones).
pub const SNAPSHOTS_KEPT: usize = 2;

/// The engine-copy buffer of the last snapshot written, handed back by the snapshot writer
/// so that the core thread copies the next one into memory already mapped (the size of
/// the book, kept between snapshots) instead of page-faulting through fresh megabytes.
pub type CopyBuffer = std::sync::Arc<parking_lot::Mutex<Option<Vec<u8>>>>;
/// One daily bar's encoded size.
const BAR_BYTES: usize = 4 + 4 + 8 * 4 + 8 + 8 + 8;
/// One trade record's encoded size.
const TRADE_BYTES: usize = 8 + 8 + 8 + 4 + 8 + 8 + 1 + 1 + 2 * 40;

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
    pub trades: Vec<TradeRecord>,
    pub path: PathBuf,
}

fn name(seq: u64) -> String {
    format!("{seq:020}.snap")
}

/// Where the registry checkpoint of the snapshot at `seq` lives.
pub fn checkpoint_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.registry"))
}

/// The checkpoints in `dir`, newest first.
pub fn checkpoints(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SnapshotFileError> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".registry"))
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(seq) = seq {
            out.push((seq, path));
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.0));
    Ok(out)
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

pub fn encode(seq: u64, engine_bytes: &[u8], bars: &[DailyBar], trades: &[TradeRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        engine_bytes.len() + bars.len() * BAR_BYTES + trades.len() * TRADE_BYTES + 64,
    );
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
    out.extend_from_slice(&(trades.len() as u64).to_le_bytes());
    for t in trades {
        encode_trade(t, &mut out);
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
    let kept = list(dir)?;
    for (_, old) in kept.iter().skip(SNAPSHOTS_KEPT) {
        let _ = std::fs::remove_file(old);
    }
    // Checkpoints older than the oldest snapshot kept pair with nothing any more (a newer
    // one may belong to a snapshot being written).
    if let Some(&(oldest, _)) = kept.get(SNAPSHOTS_KEPT.min(kept.len()).saturating_sub(1)) {
        for (seq, old) in checkpoints(dir)? {
            if seq < oldest {
                let _ = std::fs::remove_dir_all(old);
            }
        }
    }
    Ok(path)
}

fn side_code(side: Option<Side>) -> u8 {
    match side {
        None => 0,
        Some(Side::Buy) => 1,
        Some(Side::Sell) => 2,
    }
}

fn kind_code(kind: TradeKind) -> u8 {
    match kind {
        TradeKind::Continuous => 0,
        TradeKind::OpeningAuction => 1,
        TradeKind::Block => 2,
        TradeKind::Bidding => 3,
    }
}

fn encode_trade(t: &TradeRecord, out: &mut Vec<u8>) {
    let r = &t.trade;
    out.extend_from_slice(&t.seq.to_le_bytes());
    out.extend_from_slice(&t.timestamp_ns.to_le_bytes());
    out.extend_from_slice(&r.trade.0.to_le_bytes());
    out.extend_from_slice(&r.instrument.0.to_le_bytes());
    out.extend_from_slice(&r.price_fen.to_le_bytes());
    out.extend_from_slice(&r.quantity_t.to_le_bytes());
    out.push(side_code(r.aggressor));
    out.push(kind_code(r.kind));
    for fill in [&r.buy, &r.sell] {
        out.extend_from_slice(&fill.order.0.to_le_bytes());
        out.extend_from_slice(&fill.account.0.to_le_bytes());
        out.extend_from_slice(&fill.fee_fen.to_le_bytes());
        out.extend_from_slice(&fill.filled_t.to_le_bytes());
        out.extend_from_slice(&fill.leaves_t.to_le_bytes());
    }
}

fn decode_fill(c: &mut Cursor<'_>) -> Option<FillSide> {
    Some(FillSide {
        order: OrderId(c.u64()?),
        account: engine::AccountId(c.u64()?),
        fee_fen: c.i64()?,
        filled_t: c.u64()?,
        leaves_t: c.u64()?,
    })
}

fn decode_trade(c: &mut Cursor<'_>) -> Option<TradeRecord> {
    let (seq, timestamp_ns) = (c.u64()?, c.u64()?);
    let (trade, instrument) = (TradeId(c.u64()?), InstrumentId(c.u32()?));
    let (price_fen, quantity_t) = (c.i64()?, c.u64()?);
    let aggressor = match c.take(1)?[0] {
        0 => None,
        1 => Some(Side::Buy),
        2 => Some(Side::Sell),
        _ => return None,
    };
    let kind = match c.take(1)?[0] {
        0 => TradeKind::Continuous,
        1 => TradeKind::OpeningAuction,
        2 => TradeKind::Block,
        3 => TradeKind::Bidding,
        _ => return None,
    };
    let (buy, sell) = (decode_fill(c)?, decode_fill(c)?);
    Some(TradeRecord {
        seq,
        timestamp_ns,
        trade: TradeReport {
            trade,
            instrument,
            price_fen,
            quantity_t,
            aggressor,
            kind,
            buy,
            sell,
        },
    })
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
    if bytes.len() < MAGIC.len() + 8 + 8 + 8 + 4
        || (&bytes[..8] != MAGIC && &bytes[..8] != MAGIC_V1)
    {
        return Err(invalid("not a carbonx snapshot"));
    }
    let with_trades = &bytes[..8] == MAGIC;
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
    let trades = if with_trades {
        decode_trades(&mut c, body.len()).ok_or_else(|| invalid("truncated trades"))?
    } else {
        Vec::new()
    };
    if c.at != body.len() {
        return Err(invalid("trailing bytes"));
    }
    Ok(Loaded {
        seq,
        engine,
        bars,
        trades,
        path: path.to_path_buf(),
    })
}

fn decode_trades(c: &mut Cursor<'_>, end: usize) -> Option<Vec<TradeRecord>> {
    let count = usize::try_from(c.u64()?).ok()?;
    if count.saturating_mul(TRADE_BYTES) > end - c.at {
        return None;
    }
    (0..count).map(|_| decode_trade(c)).collect()
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
            write(
                dir.path(),
                seq,
                &encode(seq, &engine.snapshot(), &[bar], &[]),
            )
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
