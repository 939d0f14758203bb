//! Funds from the settlement bank and allowances to and from the registry, idempotent by
//! transfer id.

use crate::engine::Engine;
use crate::event::{Event, EventKind};
use crate::reason::Reject;
use crate::state::{
    TRANSFER_CREDIT, TRANSFER_DEBIT, TRANSFER_DEPOSIT, TRANSFER_DISPOSAL, TRANSFER_WITHDRAW,
    TransferRecord,
};
use crate::types::{AccountId, Fen, InstrumentId, Seq, Tonnes, TransferId};

/// Largest balance of funds an account may hold, far from overflow.
pub const FUNDS_FEN_MAX: Fen = i64::MAX / 4;
/// Largest quantity of allowances an account may hold in one instrument.
pub const ALLOWANCES_T_MAX: Tonnes = u64::MAX / 4;

pub(crate) enum Seen {
    New,
    Retry,
}

impl Engine {
    /// Whether `transfer` is new, a retry of the same payload, or a clash (rejected).
    pub(crate) fn seen(
        &self,
        transfer: TransferId,
        record: TransferRecord,
    ) -> Result<Seen, Reject> {
        match self.state.transfers.get(&transfer) {
            None => Ok(Seen::New),
            Some(existing) if existing.same_request(&record) => Ok(Seen::Retry),
            Some(_) => Err(Reject::DuplicateTransferId),
        }
    }

    pub(crate) fn credit_funds(
        &mut self,
        transfer: TransferId,
        account: AccountId,
        amount_fen: Fen,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let slot = self.account(account)?;
        let record = funds_record(TRANSFER_CREDIT, account, amount_fen)?;
        if let Seen::Retry = self.seen(transfer, record)? {
            self.emit(out, EventKind::TransferAlreadyApplied { transfer });
            return Ok(());
        }
        let free = self.state.accounts[slot as usize].free_fen;
        if free
            .checked_add(amount_fen)
            .is_none_or(|total| total > FUNDS_FEN_MAX)
        {
            return Err(Reject::Overflow);
        }
        self.touch_account(slot);
        self.state.accounts[slot as usize].free_fen += amount_fen;
        self.state.net_funds_fen += amount_fen;
        self.state.transfers.insert(
            transfer,
            TransferRecord {
                seq: self.seq,
                ..record
            },
        );
        self.emit(
            out,
            EventKind::FundsCredited {
                transfer,
                account,
                amount_fen,
            },
        );
        Ok(())
    }

    pub(crate) fn debit_funds(
        &mut self,
        transfer: TransferId,
        account: AccountId,
        amount_fen: Fen,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let slot = self.account(account)?;
        let record = funds_record(TRANSFER_DEBIT, account, amount_fen)?;
        if let Seen::Retry = self.seen(transfer, record)? {
            self.emit(out, EventKind::TransferAlreadyApplied { transfer });
            return Ok(());
        }
        if self.state.accounts[slot as usize].free_fen < amount_fen {
            return Err(Reject::InsufficientFunds);
        }
        self.touch_account(slot);
        self.state.accounts[slot as usize].free_fen -= amount_fen;
        self.state.net_funds_fen -= amount_fen;
        self.state.transfers.insert(
            transfer,
            TransferRecord {
                seq: self.seq,
                ..record
            },
        );
        self.emit(
            out,
            EventKind::FundsDebited {
                transfer,
                account,
                amount_fen,
            },
        );
        Ok(())
    }

    pub(crate) fn deposit(
        &mut self,
        transfer: TransferId,
        account: AccountId,
        instrument: InstrumentId,
        quantity_t: Tonnes,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let slot = self.account(account)?;
        let index = self.instrument(instrument)?;
        let record = allowance_record(TRANSFER_DEPOSIT, account, instrument, quantity_t)?;
        if let Seen::Retry = self.seen(transfer, record)? {
            self.emit(out, EventKind::TransferAlreadyApplied { transfer });
            return Ok(());
        }
        let position = &self.state.accounts[slot as usize].positions[index];
        if position.holding_t() + position.open_buy_t + quantity_t > ALLOWANCES_T_MAX {
            return Err(Reject::Overflow);
        }
        self.touch_position(slot, index);
        self.state.accounts[slot as usize].positions[index].free_t += quantity_t;
        self.state.instruments[index].net_deposited_t += quantity_t;
        self.state.transfers.insert(
            transfer,
            TransferRecord {
                seq: self.seq,
                ..record
            },
        );
        self.emit(
            out,
            EventKind::AllowancesDeposited {
                transfer,
                account,
                instrument,
                quantity_t,
            },
        );
        Ok(())
    }

    pub(crate) fn withdraw(
        &mut self,
        transfer: TransferId,
        account: AccountId,
        instrument: InstrumentId,
        quantity_t: Tonnes,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let slot = self.account(account)?;
        let index = self.instrument(instrument)?;
        let record = allowance_record(TRANSFER_WITHDRAW, account, instrument, quantity_t)?;
        if let Seen::Retry = self.seen(transfer, record)? {
            self.emit(out, EventKind::TransferAlreadyApplied { transfer });
            return Ok(());
        }
        if self.state.accounts[slot as usize].positions[index].free_t < quantity_t {
            return Err(Reject::InsufficientAllowances);
        }
        self.touch_position(slot, index);
        self.state.accounts[slot as usize].positions[index].free_t -= quantity_t;
        self.state.instruments[index].net_deposited_t -= quantity_t;
        self.state.transfers.insert(
            transfer,
            TransferRecord {
                seq: self.seq,
                ..record
            },
        );
        self.emit(
            out,
            EventKind::AllowancesWithdrawn {
                transfer,
                account,
                instrument,
                quantity_t,
            },
        );
        Ok(())
    }
}

fn funds_record(kind: u8, account: AccountId, amount_fen: Fen) -> Result<TransferRecord, Reject> {
    if amount_fen <= 0 || amount_fen > FUNDS_FEN_MAX {
        return Err(Reject::InvalidParameter);
    }
    Ok(TransferRecord {
        kind,
        account,
        instrument: u32::MAX,
        amount: amount_fen.unsigned_abs(),
        seq: 0,
    })
}

pub(crate) fn allowance_record(
    kind: u8,
    account: AccountId,
    instrument: InstrumentId,
    quantity_t: Tonnes,
) -> Result<TransferRecord, Reject> {
    if quantity_t == 0 || quantity_t > ALLOWANCES_T_MAX {
        return Err(Reject::InvalidQuantity);
    }
    Ok(TransferRecord {
        kind,
        account,
        instrument: instrument.0,
        amount: quantity_t,
        seq: 0,
    })
}

/// What a transfer command asks for: its id and the record it would leave (`None` for
/// other commands, or for amounts the engine would refuse anyway).
fn transfer_request(kind: &crate::command::CommandKind) -> Option<(TransferId, TransferRecord)> {
    use crate::command::CommandKind as K;
    match *kind {
        K::CreditFunds {
            transfer,
            account,
            amount_fen,
        } => Some((
            transfer,
            funds_record(TRANSFER_CREDIT, account, amount_fen).ok()?,
        )),
        K::DebitFunds {
            transfer,
            account,
            amount_fen,
        } => Some((
            transfer,
            funds_record(TRANSFER_DEBIT, account, amount_fen).ok()?,
        )),
        K::DepositAllowances {
            transfer,
            account,
            instrument,
            quantity_t,
        } => Some((
            transfer,
            allowance_record(TRANSFER_DEPOSIT, account, instrument, quantity_t).ok()?,
        )),
        K::WithdrawAllowances {
            transfer,
            account,
            instrument,
            quantity_t,
        } => Some((
            transfer,
            allowance_record(TRANSFER_WITHDRAW, account, instrument, quantity_t).ok()?,
        )),
        K::DepositForDisposal {
            transfer,
            pledgor,
            instrument,
            quantity_t,
            ..
        } => Some((
            transfer,
            allowance_record(TRANSFER_DISPOSAL, pledgor, instrument, quantity_t).ok()?,
        )),
        _ => None,
    }
}

/// Whether a transfer command was applied before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferSeen {
    /// Not a transfer, or its id is new: the command must run.
    New,
    /// The same transfer was applied by the command at this sequence: a retry, answered
    /// without running it again.
    Applied(Seq),
    /// The id was used for another transfer: the command would be refused.
    Clash,
}

impl Engine {
    /// Whether `kind` is a transfer this engine applied already (the caller answers a
    /// retry from here instead of submitting it again).
    pub fn transfer_seen(&self, kind: &crate::command::CommandKind) -> TransferSeen {
        let Some((id, record)) = transfer_request(kind) else {
            return TransferSeen::New;
        };
        match self.state.transfers.get(&id) {
            None => TransferSeen::New,
            Some(existing) if existing.same_request(&record) => TransferSeen::Applied(existing.seq),
            Some(_) => TransferSeen::Clash,
        }
    }
}
