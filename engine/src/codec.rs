//! The binary encoding of a [`Command`], as it is stored in the journal and carried by a
//! replicated log. Little endian, canonical (one encoding per command), versioned by its
//! tag bytes: a new command kind takes a new tag, an existing tag never changes meaning.
//! Decoding validates every byte and never panics: a corrupt record is an error.

use crate::command::{Command, CommandKind, NewOrder, Pricing, ReserveRule};
use crate::snapshot::{
    Reader, SnapshotError, Writer, phase_code, phase_of, read_spec, stp_code, stp_of, tif_code,
    write_spec,
};
use crate::types::{
    AccountId, ClientOrderId, InstrumentId, OrderId, OrderKind, Side, TimeInForce, TransferId,
};

/// Largest encoded command, in bytes (a created instrument is the longest).
pub const COMMAND_BYTES_MAX: usize = 160;

/// Why bytes are not a command.
pub type CodecError = SnapshotError;

fn side_code(side: Side) -> u8 {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

fn side_of(code: u8) -> Result<Side, CodecError> {
    match code {
        0 => Ok(Side::Buy),
        1 => Ok(Side::Sell),
        _ => Err(SnapshotError::Invalid("side")),
    }
}

fn any_tif_of(code: u8) -> Result<TimeInForce, CodecError> {
    Ok(match code {
        0 => TimeInForce::Day,
        1 => TimeInForce::Gtc,
        2 => TimeInForce::Ioc,
        3 => TimeInForce::Fok,
        _ => return Err(SnapshotError::Invalid("time in force")),
    })
}

fn opt_i64(w: &mut Writer, v: Option<i64>) {
    w.bool(v.is_some());
    w.i64(v.unwrap_or(0));
}

fn read_opt_i64(r: &mut Reader<'_>) -> Result<Option<i64>, CodecError> {
    let some = r.bool()?;
    let v = r.i64()?;
    Ok(some.then_some(v))
}

fn reserve_code(reserve: ReserveRule) -> u8 {
    match reserve {
        ReserveRule::PreviousClose => 0,
        ReserveRule::TenPercentBelow => 1,
    }
}

fn reserve_of(code: u8) -> Result<ReserveRule, CodecError> {
    match code {
        0 => Ok(ReserveRule::PreviousClose),
        1 => Ok(ReserveRule::TenPercentBelow),
        _ => Err(SnapshotError::Invalid("reserve rule")),
    }
}

fn pricing_code(pricing: Pricing) -> u8 {
    match pricing {
        Pricing::Uniform => 0,
        Pricing::PayAsBid => 1,
    }
}

fn pricing_of(code: u8) -> Result<Pricing, CodecError> {
    match code {
        0 => Ok(Pricing::Uniform),
        1 => Ok(Pricing::PayAsBid),
        _ => Err(SnapshotError::Invalid("pricing")),
    }
}

fn write_optional_t(w: &mut Writer, v: Option<u64>) {
    w.bool(v.is_some());
    w.u64(v.unwrap_or(0));
}

/// The canonical form: an absent value is written as 0, so anything else is corrupt.
fn read_optional_t(r: &mut Reader<'_>) -> Result<Option<u64>, CodecError> {
    let some = r.bool()?;
    let v = r.u64()?;
    if !some && v != 0 {
        return Err(SnapshotError::Invalid("absent value not zero"));
    }
    Ok(some.then_some(v))
}

/// Appends the encoding of `command` to `out`.
pub fn encode_command(command: &Command, out: &mut Vec<u8>) {
    let mut w = Writer(core::mem::take(out));
    w.u64(command.seq);
    w.u64(command.timestamp_ns);
    encode_kind(&mut w, &command.kind);
    *out = w.0;
}

fn encode_kind(w: &mut Writer, kind: &CommandKind) {
    match *kind {
        CommandKind::CreateInstrument(spec) => {
            w.u8(1);
            write_spec(w, &spec);
        }
        CommandKind::OpenAccount { account, stp } => {
            w.u8(2);
            w.u64(account.0);
            w.u8(stp_code(stp));
        }
        CommandKind::SetStpMode { account, stp } => {
            w.u8(3);
            w.u64(account.0);
            w.u8(stp_code(stp));
        }
        CommandKind::RestrictAccount {
            account,
            restricted,
            cancel_orders,
        } => {
            w.u8(4);
            w.u64(account.0);
            w.bool(restricted);
            w.bool(cancel_orders);
        }
        CommandKind::SetPositionLimit {
            account,
            instrument,
            limit_t,
        } => {
            w.u8(5);
            w.u64(account.0);
            w.u32(instrument.0);
            w.u64(limit_t);
        }
        CommandKind::SetInstrumentLimits {
            instrument,
            position_limit_t,
            large_holder_t,
        } => {
            w.u8(29);
            w.u32(instrument.0);
            write_optional_t(w, position_limit_t);
            write_optional_t(w, large_holder_t);
        }
        CommandKind::CreditFunds {
            transfer,
            account,
            amount_fen,
        } => {
            w.u8(6);
            w.u64(transfer.0);
            w.u64(account.0);
            w.i64(amount_fen);
        }
        CommandKind::DebitFunds {
            transfer,
            account,
            amount_fen,
        } => {
            w.u8(7);
            w.u64(transfer.0);
            w.u64(account.0);
            w.i64(amount_fen);
        }
        CommandKind::DepositAllowances {
            transfer,
            account,
            instrument,
            quantity_t,
        } => {
            w.u8(8);
            w.u64(transfer.0);
            w.u64(account.0);
            w.u32(instrument.0);
            w.u64(quantity_t);
        }
        CommandKind::WithdrawAllowances {
            transfer,
            account,
            instrument,
            quantity_t,
        } => {
            w.u8(9);
            w.u64(transfer.0);
            w.u64(account.0);
            w.u32(instrument.0);
            w.u64(quantity_t);
        }
        CommandKind::OpenDay { date } => {
            w.u8(10);
            w.u32(date);
        }
        CommandKind::SetPhase { phase } => {
            w.u8(11);
            w.u8(phase_code(phase));
        }
        CommandKind::CloseDay => w.u8(12),
        CommandKind::HaltInstrument {
            instrument,
            cancel_orders,
        } => {
            w.u8(13);
            w.u32(instrument.0);
            w.bool(cancel_orders);
        }
        CommandKind::ResumeInstrument { instrument } => {
            w.u8(14);
            w.u32(instrument.0);
        }
        CommandKind::SetReferencePrice {
            instrument,
            price_fen,
        } => {
            w.u8(15);
            w.u32(instrument.0);
            w.i64(price_fen);
        }
        CommandKind::PlaceOrder(o) => {
            w.u8(16);
            w.u64(o.account.0);
            w.u64(o.client_order_id.0);
            w.u32(o.instrument.0);
            w.u8(side_code(o.side));
            w.u8(match o.kind {
                OrderKind::Limit => 0,
                OrderKind::Market => 1,
            });
            w.u8(tif_code(o.time_in_force));
            w.i64(o.price_fen);
            w.u64(o.quantity_t);
            w.bool(o.post_only);
        }
        CommandKind::CancelOrder { account, order } => {
            w.u8(17);
            w.u64(account.0);
            w.u64(order.0);
        }
        CommandKind::CancelAll {
            account,
            instrument,
        } => {
            w.u8(18);
            w.u64(account.0);
            w.opt_u64(instrument.map(|i| u64::from(i.0)));
        }
        CommandKind::AmendOrder {
            account,
            order,
            price_fen,
            quantity_t,
        } => {
            w.u8(19);
            w.u64(account.0);
            w.u64(order.0);
            opt_i64(w, price_fen);
            w.opt_u64(quantity_t);
        }
        CommandKind::SetBlockWindow { open } => {
            w.u8(20);
            w.bool(open);
        }
        CommandKind::ProposeBlock {
            proposer,
            counterparty,
            client_order_id,
            instrument,
            side,
            price_fen,
            quantity_t,
        } => {
            w.u8(21);
            w.u64(proposer.0);
            w.u64(counterparty.0);
            w.u64(client_order_id.0);
            w.u32(instrument.0);
            w.u8(side_code(side));
            w.i64(price_fen);
            w.u64(quantity_t);
        }
        CommandKind::AcceptBlock { account, block } => {
            w.u8(22);
            w.u64(account.0);
            w.u64(block.0);
        }
        CommandKind::RejectBlock { account, block } => {
            w.u8(23);
            w.u64(account.0);
            w.u64(block.0);
        }
        CommandKind::CancelBlock { account, block } => {
            w.u8(24);
            w.u64(account.0);
            w.u64(block.0);
        }
        CommandKind::AnnounceBidding {
            seller,
            instrument,
            quantity_t,
            reserve,
            pricing,
            bidder_max_bp,
        } => {
            w.u8(25);
            w.u64(seller.0);
            w.u32(instrument.0);
            w.u64(quantity_t);
            w.u8(reserve_code(reserve));
            w.u8(pricing_code(pricing));
            w.u32(bidder_max_bp);
        }
        CommandKind::DepositForDisposal {
            transfer,
            disposal,
            pledgor,
            pledgee,
            instrument,
            quantity_t,
            claim_fen,
        } => {
            w.u8(30);
            w.u64(transfer.0);
            w.u64(disposal);
            w.u64(pledgor.0);
            w.u64(pledgee.0);
            w.u32(instrument.0);
            w.u64(quantity_t);
            w.i64(claim_fen);
        }
        CommandKind::AnnounceDisposal {
            disposal,
            reserve,
            pricing,
            bidder_max_bp,
        } => {
            w.u8(31);
            w.u64(disposal);
            w.u8(reserve_code(reserve));
            w.u8(pricing_code(pricing));
            w.u32(bidder_max_bp);
        }
        CommandKind::OpenBidding { auction } => {
            w.u8(26);
            w.u64(auction.0);
        }
        CommandKind::PlaceBid {
            auction,
            bidder,
            client_order_id,
            price_fen,
            quantity_t,
        } => {
            w.u8(27);
            w.u64(auction.0);
            w.u64(bidder.0);
            w.u64(client_order_id.0);
            w.i64(price_fen);
            w.u64(quantity_t);
        }
        CommandKind::CloseBidding { auction } => {
            w.u8(28);
            w.u64(auction.0);
        }
    }
}

/// Decodes one command; the bytes must hold exactly one.
pub fn decode_command(bytes: &[u8]) -> Result<Command, CodecError> {
    let mut r = Reader { bytes, at: 0 };
    let seq = r.u64()?;
    let timestamp_ns = r.u64()?;
    let kind = decode_kind(&mut r)?;
    if r.at != bytes.len() {
        return Err(SnapshotError::Invalid("trailing bytes after a command"));
    }
    Ok(Command {
        seq,
        timestamp_ns,
        kind,
    })
}

fn decode_kind(r: &mut Reader<'_>) -> Result<CommandKind, CodecError> {
    let account = |r: &mut Reader<'_>| r.u64().map(AccountId);
    Ok(match r.u8()? {
        1 => CommandKind::CreateInstrument(read_spec(r)?),
        2 => CommandKind::OpenAccount {
            account: account(r)?,
            stp: stp_of(r.u8()?)?,
        },
        3 => CommandKind::SetStpMode {
            account: account(r)?,
            stp: stp_of(r.u8()?)?,
        },
        4 => CommandKind::RestrictAccount {
            account: account(r)?,
            restricted: r.bool()?,
            cancel_orders: r.bool()?,
        },
        5 => CommandKind::SetPositionLimit {
            account: account(r)?,
            instrument: InstrumentId(r.u32()?),
            limit_t: r.u64()?,
        },
        6 => CommandKind::CreditFunds {
            transfer: TransferId(r.u64()?),
            account: account(r)?,
            amount_fen: r.i64()?,
        },
        7 => CommandKind::DebitFunds {
            transfer: TransferId(r.u64()?),
            account: account(r)?,
            amount_fen: r.i64()?,
        },
        8 => CommandKind::DepositAllowances {
            transfer: TransferId(r.u64()?),
            account: account(r)?,
            instrument: InstrumentId(r.u32()?),
            quantity_t: r.u64()?,
        },
        9 => CommandKind::WithdrawAllowances {
            transfer: TransferId(r.u64()?),
            account: account(r)?,
            instrument: InstrumentId(r.u32()?),
            quantity_t: r.u64()?,
        },
        10 => CommandKind::OpenDay { date: r.u32()? },
        11 => CommandKind::SetPhase {
            phase: phase_of(r.u8()?)?,
        },
        12 => CommandKind::CloseDay,
        13 => CommandKind::HaltInstrument {
            instrument: InstrumentId(r.u32()?),
            cancel_orders: r.bool()?,
        },
        14 => CommandKind::ResumeInstrument {
            instrument: InstrumentId(r.u32()?),
        },
        15 => CommandKind::SetReferencePrice {
            instrument: InstrumentId(r.u32()?),
            price_fen: r.i64()?,
        },
        16 => CommandKind::PlaceOrder(NewOrder {
            account: account(r)?,
            client_order_id: ClientOrderId(r.u64()?),
            instrument: InstrumentId(r.u32()?),
            side: side_of(r.u8()?)?,
            kind: match r.u8()? {
                0 => OrderKind::Limit,
                1 => OrderKind::Market,
                _ => return Err(SnapshotError::Invalid("order kind")),
            },
            time_in_force: any_tif_of(r.u8()?)?,
            price_fen: r.i64()?,
            quantity_t: r.u64()?,
            post_only: r.bool()?,
        }),
        17 => CommandKind::CancelOrder {
            account: account(r)?,
            order: OrderId(r.u64()?),
        },
        18 => CommandKind::CancelAll {
            account: account(r)?,
            instrument: r
                .opt_u64()?
                .map(|i| u32::try_from(i).map(InstrumentId))
                .transpose()
                .map_err(|_| SnapshotError::Invalid("instrument"))?,
        },
        19 => CommandKind::AmendOrder {
            account: account(r)?,
            order: OrderId(r.u64()?),
            price_fen: read_opt_i64(r)?,
            quantity_t: r.opt_u64()?,
        },
        20 => CommandKind::SetBlockWindow { open: r.bool()? },
        21 => CommandKind::ProposeBlock {
            proposer: account(r)?,
            counterparty: account(r)?,
            client_order_id: ClientOrderId(r.u64()?),
            instrument: InstrumentId(r.u32()?),
            side: side_of(r.u8()?)?,
            price_fen: r.i64()?,
            quantity_t: r.u64()?,
        },
        22 => CommandKind::AcceptBlock {
            account: account(r)?,
            block: OrderId(r.u64()?),
        },
        23 => CommandKind::RejectBlock {
            account: account(r)?,
            block: OrderId(r.u64()?),
        },
        24 => CommandKind::CancelBlock {
            account: account(r)?,
            block: OrderId(r.u64()?),
        },
        25 => CommandKind::AnnounceBidding {
            seller: account(r)?,
            instrument: InstrumentId(r.u32()?),
            quantity_t: r.u64()?,
            reserve: reserve_of(r.u8()?)?,
            pricing: pricing_of(r.u8()?)?,
            bidder_max_bp: r.u32()?,
        },
        30 => CommandKind::DepositForDisposal {
            transfer: TransferId(r.u64()?),
            disposal: r.u64()?,
            pledgor: account(r)?,
            pledgee: account(r)?,
            instrument: InstrumentId(r.u32()?),
            quantity_t: r.u64()?,
            claim_fen: r.i64()?,
        },
        31 => CommandKind::AnnounceDisposal {
            disposal: r.u64()?,
            reserve: reserve_of(r.u8()?)?,
            pricing: pricing_of(r.u8()?)?,
            bidder_max_bp: r.u32()?,
        },
        26 => CommandKind::OpenBidding {
            auction: OrderId(r.u64()?),
        },
        27 => CommandKind::PlaceBid {
            auction: OrderId(r.u64()?),
            bidder: account(r)?,
            client_order_id: ClientOrderId(r.u64()?),
            price_fen: r.i64()?,
            quantity_t: r.u64()?,
        },
        28 => CommandKind::CloseBidding {
            auction: OrderId(r.u64()?),
        },
        29 => CommandKind::SetInstrumentLimits {
            instrument: InstrumentId(r.u32()?),
            position_limit_t: read_optional_t(r)?,
            large_holder_t: read_optional_t(r)?,
        },
        _ => return Err(SnapshotError::Invalid("command tag")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::InstrumentSpec;
    use crate::types::{Phase, StpMode, Symbol};

    fn every_kind() -> Vec<CommandKind> {
        let a = AccountId(7);
        let i = InstrumentId(2);
        let symbol = Symbol::new("CEA2025").unwrap_or_else(|| unreachable!());
        vec![
            CommandKind::CreateInstrument(InstrumentSpec::listed(symbol, 8_500)),
            CommandKind::CreateInstrument(InstrumentSpec::plain(symbol, 1)),
            CommandKind::OpenAccount {
                account: a,
                stp: StpMode::CancelBoth,
            },
            CommandKind::SetStpMode {
                account: a,
                stp: StpMode::CancelResting,
            },
            CommandKind::RestrictAccount {
                account: a,
                restricted: true,
                cancel_orders: false,
            },
            CommandKind::SetPositionLimit {
                account: a,
                instrument: i,
                limit_t: u64::MAX,
            },
            CommandKind::SetInstrumentLimits {
                instrument: i,
                position_limit_t: Some(1_000_000),
                large_holder_t: None,
            },
            CommandKind::SetInstrumentLimits {
                instrument: i,
                position_limit_t: None,
                large_holder_t: Some(u64::MAX),
            },
            CommandKind::CreditFunds {
                transfer: TransferId(1),
                account: a,
                amount_fen: i64::MAX,
            },
            CommandKind::DebitFunds {
                transfer: TransferId(2),
                account: a,
                amount_fen: -1,
            },
            CommandKind::DepositAllowances {
                transfer: TransferId(3),
                account: a,
                instrument: i,
                quantity_t: 5,
            },
            CommandKind::WithdrawAllowances {
                transfer: TransferId(4),
                account: a,
                instrument: i,
                quantity_t: 6,
            },
            CommandKind::OpenDay { date: 20_261_128 },
            CommandKind::SetPhase {
                phase: Phase::OpeningCall,
            },
            CommandKind::CloseDay,
            CommandKind::HaltInstrument {
                instrument: i,
                cancel_orders: true,
            },
            CommandKind::ResumeInstrument { instrument: i },
            CommandKind::SetReferencePrice {
                instrument: i,
                price_fen: 9_000,
            },
            CommandKind::PlaceOrder(NewOrder {
                account: a,
                client_order_id: ClientOrderId(u64::MAX),
                instrument: i,
                side: Side::Sell,
                kind: OrderKind::Market,
                time_in_force: TimeInForce::Fok,
                price_fen: 0,
                quantity_t: 99_999,
                post_only: true,
            }),
            CommandKind::CancelOrder {
                account: a,
                order: OrderId(9),
            },
            CommandKind::CancelAll {
                account: a,
                instrument: None,
            },
            CommandKind::CancelAll {
                account: a,
                instrument: Some(i),
            },
            CommandKind::AmendOrder {
                account: a,
                order: OrderId(9),
                price_fen: Some(8_600),
                quantity_t: None,
            },
            CommandKind::SetBlockWindow { open: true },
            CommandKind::ProposeBlock {
                proposer: a,
                counterparty: AccountId(8),
                client_order_id: ClientOrderId(3),
                instrument: i,
                side: Side::Buy,
                price_fen: 8_000,
                quantity_t: 100_000,
            },
            CommandKind::AcceptBlock {
                account: a,
                block: OrderId(1),
            },
            CommandKind::RejectBlock {
                account: a,
                block: OrderId(1),
            },
            CommandKind::CancelBlock {
                account: a,
                block: OrderId(1),
            },
            CommandKind::AnnounceBidding {
                seller: a,
                instrument: i,
                quantity_t: 1_000_000,
                reserve: ReserveRule::TenPercentBelow,
                pricing: Pricing::PayAsBid,
                bidder_max_bp: 3_000,
            },
            CommandKind::DepositForDisposal {
                transfer: TransferId(9),
                disposal: 4,
                pledgor: a,
                pledgee: AccountId(8),
                instrument: i,
                quantity_t: 5_000,
                claim_fen: i64::MAX,
            },
            CommandKind::AnnounceDisposal {
                disposal: u64::MAX,
                reserve: ReserveRule::TenPercentBelow,
                pricing: Pricing::PayAsBid,
                bidder_max_bp: 10_000,
            },
            CommandKind::OpenBidding {
                auction: OrderId(4),
            },
            CommandKind::PlaceBid {
                auction: OrderId(4),
                bidder: a,
                client_order_id: ClientOrderId(5),
                price_fen: 8_100,
                quantity_t: 10_000,
            },
            CommandKind::CloseBidding {
                auction: OrderId(4),
            },
        ]
    }

    #[test]
    fn every_command_round_trips_and_every_prefix_is_an_error() {
        for (n, kind) in every_kind().into_iter().enumerate() {
            let command = Command {
                seq: n as u64 + 1,
                timestamp_ns: 1_700_000_000_000_000_000 + n as u64,
                kind,
            };
            let mut bytes = Vec::new();
            encode_command(&command, &mut bytes);
            assert!(
                bytes.len() <= COMMAND_BYTES_MAX,
                "{kind:?}: {}",
                bytes.len()
            );
            assert_eq!(decode_command(&bytes), Ok(command));
            for cut in 0..bytes.len() {
                assert!(decode_command(&bytes[..cut]).is_err(), "{kind:?} cut {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(decode_command(&longer).is_err());
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 90) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|k| (x.rotate_left(k as u32 * 7) & 0xff) as u8)
                .collect();
            let _ = decode_command(&bytes);
        }
    }
}
