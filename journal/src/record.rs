//! What one journal record holds, and its encoding.
//!
//! The journal is the one record of every state change: engine commands, registry and
//! compliance transactions, and the points where the engine's trades are settled into the
//! registry. A record's payload starts with its sequence (`u64`) and timestamp (`u64`),
//! then a tag byte. Tags below [`REGISTRY_TAG_MIN`] are the engine's own command encoding
//! (`engine::encode_command`, unchanged, so a journal written before registry records
//! existed reads as it did); [`TAG_REGISTRY_TX`] is followed by the registry's canonical
//! transaction encoding (`registry::tx::Tx::encode`), [`TAG_SETTLE`] by the engine sequence
//! the settlement covers.
//!
//! Settlement points are records of their own so that the registry's hash-chained
//! entries are a function of the journal alone: a registry rebuilt from a checkpoint and
//! the journal settles the same trades in the same groups as the registry that was lost.

use engine::{COMMAND_BYTES_MAX, Command, decode_command, encode_command};
use registry::tx::Tx;

/// Tags from here up are journal records of the registry, not engine commands (the
/// engine's tags are 1 to 28).
pub const REGISTRY_TAG_MIN: u8 = 0xC0;
/// A registry or compliance transaction.
pub const TAG_REGISTRY_TX: u8 = 0xC0;
/// A settlement point: every trade and withdrawal of the engine commands before it that
/// is not settled yet is settled here, in one registry transaction.
pub const TAG_SETTLE: u8 = 0xC1;
/// Smallest payload: sequence, timestamp and a tag.
pub const PAYLOAD_BYTES_MIN: usize = 17;
/// Largest registry record: a bulk load of the compliance service (8 MiB by default,
/// `bulk_message_bytes_max`) with room for its encoding.
pub const REGISTRY_RECORD_BYTES_MAX: usize = 32 << 20;

/// One journal record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// An engine command (its sequence and timestamp inside).
    Engine(Command),
    /// A registry record at `seq`, stamped `timestamp_ns`.
    Registry {
        seq: u64,
        timestamp_ns: u64,
        entry: RegistryEntry,
    },
}

/// What a registry record does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryEntry {
    /// A transaction a caller asked for (its result is what the registry's ledger, a
    /// deterministic function of the records before it, makes of it).
    Tx(Tx),
    /// Settle the engine's trades and withdrawals through engine sequence `through_seq`
    /// (the last engine command before this record).
    Settle { through_seq: u64 },
}

impl Record {
    pub fn seq(&self) -> u64 {
        match self {
            Record::Engine(c) => c.seq,
            Record::Registry { seq, .. } => *seq,
        }
    }

    pub fn timestamp_ns(&self) -> u64 {
        match self {
            Record::Engine(c) => c.timestamp_ns,
            Record::Registry { timestamp_ns, .. } => *timestamp_ns,
        }
    }
}

fn header(seq: u64, timestamp_ns: u64, tag: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&timestamp_ns.to_le_bytes());
    out.push(tag);
}

/// Appends the payload of a registry transaction's record to `out`.
pub fn encode_tx(seq: u64, timestamp_ns: u64, tx: &Tx, out: &mut Vec<u8>) {
    header(seq, timestamp_ns, TAG_REGISTRY_TX, out);
    out.extend_from_slice(&tx.encode());
}

/// Appends the payload of a settlement point's record to `out`.
pub fn encode_settle(seq: u64, timestamp_ns: u64, through_seq: u64, out: &mut Vec<u8>) {
    header(seq, timestamp_ns, TAG_SETTLE, out);
    out.extend_from_slice(&through_seq.to_le_bytes());
}

/// Appends the payload of `record` to `out`.
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    match record {
        Record::Engine(command) => encode_command(command, out),
        Record::Registry {
            seq,
            timestamp_ns,
            entry: RegistryEntry::Tx(tx),
        } => encode_tx(*seq, *timestamp_ns, tx, out),
        Record::Registry {
            seq,
            timestamp_ns,
            entry: RegistryEntry::Settle { through_seq },
        } => encode_settle(*seq, *timestamp_ns, *through_seq, out),
    }
}

/// The largest payload a record with this tag may have.
pub fn payload_bytes_max(tag: u8) -> usize {
    if tag >= REGISTRY_TAG_MIN {
        REGISTRY_RECORD_BYTES_MAX
    } else {
        COMMAND_BYTES_MAX
    }
}

/// Decodes one payload (checksum already checked).
pub fn decode(payload: &[u8]) -> Result<Record, String> {
    let tag = *payload
        .get(PAYLOAD_BYTES_MIN - 1)
        .ok_or("payload shorter than its header")?;
    if tag < REGISTRY_TAG_MIN {
        return decode_command(payload)
            .map(Record::Engine)
            .map_err(|e| format!("undecodable command: {e}"));
    }
    let word = |at: usize| -> Result<u64, String> {
        payload
            .get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| "registry record cut short".to_string())
    };
    let (seq, timestamp_ns) = (word(0)?, word(8)?);
    let body = &payload[PAYLOAD_BYTES_MIN..];
    let entry = match tag {
        TAG_REGISTRY_TX => RegistryEntry::Tx(
            Tx::decode(body).map_err(|e| format!("undecodable registry transaction: {e}"))?,
        ),
        TAG_SETTLE if body.len() == 8 => RegistryEntry::Settle {
            through_seq: word(PAYLOAD_BYTES_MIN)?,
        },
        TAG_SETTLE => return Err("settlement record of the wrong size".into()),
        other => return Err(format!("unknown record tag {other:#x}")),
    };
    Ok(Record::Registry {
        seq,
        timestamp_ns,
        entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{AccountId, CommandKind, TransferId};
    use registry::tx::Op;

    fn roundtrip(record: &Record) -> Record {
        let mut out = Vec::new();
        encode(record, &mut out);
        decode(&out).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_kind_of_record_reads_back_as_written() {
        let engine = Record::Engine(Command {
            seq: 7,
            timestamp_ns: 70,
            kind: CommandKind::CreditFunds {
                transfer: TransferId(3),
                account: AccountId(101),
                amount_fen: 500,
            },
        });
        let tx = Record::Registry {
            seq: 8,
            timestamp_ns: 80,
            entry: RegistryEntry::Tx(Tx {
                key: "open-1".into(),
                actor: 4,
                timestamp_ns: 80,
                op: Op::SetFourEyesThreshold { quantity_t: 9 },
            }),
        };
        let settle = Record::Registry {
            seq: 9,
            timestamp_ns: 90,
            entry: RegistryEntry::Settle { through_seq: 7 },
        };
        for record in [engine, tx, settle] {
            assert_eq!(roundtrip(&record), record);
        }
    }

    #[test]
    fn an_unknown_tag_or_a_short_settlement_is_refused() {
        let mut out = Vec::new();
        out.extend_from_slice(&1u64.to_le_bytes());
        out.extend_from_slice(&2u64.to_le_bytes());
        out.push(0xC7);
        assert_eq!(decode(&out), Err("unknown record tag 0xc7".into()));
        out[16] = TAG_SETTLE;
        out.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            decode(&out),
            Err("settlement record of the wrong size".into())
        );
    }
}
