//! Journal entries as people read them: what an operation did, to which accounts and units,
//! how much ("transfer 10,000 t CEA2025 from 1 to 101"), and which accounts it concerns (the
//! dashboard's entity page, `ReadJournal`'s `detail`). One rendering, so an auditor reads
//! the same words in every place.

use crate::model::{AccountId, UnitId};
use crate::tx::{Enforcement, Op, SettleLeg};

/// 1234567 -> "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// 12345678 fen -> "123,456.78 yuan".
fn yuan(fen: u64) -> String {
    format!("{}.{:02} yuan", thousands(fen / 100), fen % 100)
}

/// 20251201 -> "2025-12-01".
pub fn iso_date(yyyymmdd: u32) -> String {
    date(yyyymmdd)
}

fn date(yyyymmdd: u32) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        yyyymmdd / 10_000,
        yyyymmdd / 100 % 100,
        yyyymmdd % 100
    )
}

/// The accounts `op` names (a settlement: every account of its legs).
pub fn accounts(op: &Op) -> Vec<AccountId> {
    let mut out = match op {
        Op::OpenAccount { account, .. }
        | Op::SetStatus { account, .. }
        | Op::MoveToTrading { account, .. }
        | Op::MoveFromTrading { account, .. }
        | Op::Freeze { account, .. }
        | Op::Unfreeze { account, .. }
        | Op::ApplyCarryOver { account, .. } => vec![*account],
        Op::Issue { authority, .. } => vec![*authority],
        Op::Allocate { from, to, .. } | Op::Transfer { from, to, .. } => vec![*from, *to],
        Op::PledgeRegister {
            pledgor, pledgee, ..
        } => vec![*pledgor, *pledgee],
        Op::Surrender {
            account,
            retirement,
            ..
        } => vec![*account, *retirement],
        Op::VoluntaryCancel {
            account,
            cancellation,
            ..
        } => vec![*account, *cancellation],
        Op::Settle { legs, .. } => legs
            .iter()
            .flat_map(|leg| match leg {
                SettleLeg::Trade { seller, buyer, .. } => vec![*seller, *buyer],
                SettleLeg::Withdraw { account, .. } => vec![*account],
            })
            .collect(),
        Op::LoadEntities { rows } => rows.iter().map(|r| r.account).collect(),
        Op::LoadActivity { rows, .. } => rows.iter().map(|r| r.account).collect(),
        Op::RecordVerified { rows, .. } => rows.iter().map(|r| r.account).collect(),
        Op::SetMonitoringPlan { account, .. }
        | Op::DepositMonth { account, .. }
        | Op::SubmitReport { account, .. }
        | Op::ConfirmReport { account, .. } => vec![*account],
        op => crate::verification::account_of(op).into_iter().collect(),
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// `op` in words; `unit` names a unit id; a settlement shows only the legs of `focus`
/// (all of them when `None`).
pub fn describe(op: &Op, unit: &dyn Fn(UnitId) -> String, focus: Option<AccountId>) -> String {
    let t = |q: u64, u: &UnitId| format!("{} t {}", thousands(q), unit(*u));
    match op {
        Op::OpenAccount {
            account,
            kind,
            name,
        } => format!("open account {} ({kind:?}) \"{name}\"", account.0),
        Op::SetStatus { account, status } => {
            format!("set account {} {status:?}", account.0)
        }
        Op::CreateUnit { unit: u, .. } => format!("create unit {}", unit(*u)),
        Op::Issue {
            authority,
            unit: u,
            quantity_t,
        } => format!("issue {} into {}", t(*quantity_t, u), authority.0),
        Op::Allocate {
            from,
            to,
            unit: u,
            quantity_t,
        } => format!("allocate {} from {} to {}", t(*quantity_t, u), from.0, to.0),
        Op::Transfer {
            from,
            to,
            unit: u,
            quantity_t,
        } => format!("transfer {} from {} to {}", t(*quantity_t, u), from.0, to.0),
        Op::ApproveTransfer { proposal } => format!("approve transfer proposal {proposal}"),
        Op::CancelProposal { proposal } => format!("cancel transfer proposal {proposal}"),
        Op::MoveToTrading {
            account,
            unit: u,
            quantity_t,
        } => format!(
            "move {} of {} to the exchange",
            t(*quantity_t, u),
            account.0
        ),
        Op::MoveFromTrading {
            account,
            unit: u,
            quantity_t,
        } => format!(
            "move {} of {} back from the exchange",
            t(*quantity_t, u),
            account.0
        ),
        Op::Freeze {
            account,
            unit: u,
            quantity_t,
            order,
        } => format!(
            "freeze {} of {} (court order {order})",
            t(*quantity_t, u),
            account.0
        ),
        Op::Unfreeze {
            account,
            unit: u,
            order,
        } => format!(
            "unfreeze {} of {} (court order {order})",
            unit(*u),
            account.0
        ),
        _ => describe_more(op, unit, focus),
    }
}

fn describe_more(op: &Op, unit: &dyn Fn(UnitId) -> String, focus: Option<AccountId>) -> String {
    let t = |q: u64, u: &UnitId| format!("{} t {}", thousands(q), unit(*u));
    match op {
        Op::PledgeRegister {
            pledgor,
            pledgee,
            unit: u,
            quantity_t,
            secured_fen,
        } => format!(
            "pledge {} of {} to {} securing {}",
            t(*quantity_t, u),
            pledgor.0,
            pledgee.0,
            yuan(*secured_fen)
        ),
        Op::PledgeRelease { pledge } => format!("release pledge {pledge}"),
        Op::PledgeEnforce {
            pledge,
            how,
            claim_fen,
        } => match how {
            Enforcement::ToPledgee => format!("enforce pledge {pledge}: units to the pledgee"),
            Enforcement::ForAuction => format!(
                "enforce pledge {pledge} for auction, claim {}",
                claim_fen.map_or_else(|| "not recorded".to_string(), yuan)
            ),
        },
        Op::Surrender {
            account,
            unit: u,
            quantity_t,
            year,
            ..
        } => format!("{} surrenders {} for {year}", account.0, t(*quantity_t, u)),
        Op::VoluntaryCancel {
            account,
            unit: u,
            quantity_t,
            ..
        } => format!("{} cancels {} voluntarily", account.0, t(*quantity_t, u)),
        Op::Reverse { entry, reason } => format!("reverse journal entry {entry}: {reason}"),
        Op::SetFourEyesThreshold { quantity_t } if *quantity_t == u64::MAX => {
            "four eyes off".to_string()
        }
        Op::SetFourEyesThreshold { quantity_t } => {
            format!("four eyes from {} t", thousands(*quantity_t))
        }
        Op::Settle { through_seq, legs } => settle(*through_seq, legs, unit, focus),
        _ => describe_cycle(op, unit),
    }
}

fn settle(
    through_seq: u64,
    legs: &[SettleLeg],
    unit: &dyn Fn(UnitId) -> String,
    focus: Option<AccountId>,
) -> String {
    let shown: Vec<String> = legs
        .iter()
        .filter_map(|leg| match leg {
            SettleLeg::Trade {
                seller,
                buyer,
                unit: u,
                quantity_t,
            } if focus.is_none_or(|a| a == *seller || a == *buyer) => Some(format!(
                "{} t {} from {} to {}",
                thousands(*quantity_t),
                unit(*u),
                seller.0,
                buyer.0
            )),
            SettleLeg::Withdraw {
                account,
                unit: u,
                quantity_t,
            } if focus.is_none_or(|a| a == *account) => Some(format!(
                "{} withdraws {} t {}",
                account.0,
                thousands(*quantity_t),
                unit(*u)
            )),
            _ => None,
        })
        .collect();
    let of = if focus.is_some() && shown.len() < legs.len() {
        format!(" ({} of {} legs)", shown.len(), legs.len())
    } else {
        String::new()
    };
    format!(
        "settle the exchange through command {through_seq}{of}: {}",
        shown.join("; ")
    )
}

fn describe_cycle(op: &Op, unit: &dyn Fn(UnitId) -> String) -> String {
    match op {
        Op::FixCarryOver {
            year,
            plan_version,
            date: d,
        } => format!(
            "fix carry-over limits into {year} under plan {plan_version} on {}",
            date(*d)
        ),
        Op::ApplyCarryOver {
            year,
            account,
            unit: u,
            quantity_t,
            ..
        } => format!(
            "{} applies to carry {} t {} into {year}",
            account.0,
            thousands(*quantity_t),
            unit(*u)
        ),
        Op::ConvertCarryOver { year, unit: u, .. } => {
            format!(
                "convert carry-over applications into {year} as {}",
                unit(*u)
            )
        }
        Op::RegisterPlan { plan } => format!("register plan {} for {}", plan.version, plan.year),
        Op::RegisterFactors { year, text } => match mrv::factors::Factors::from_toml(text) {
            Ok(f) => format!(
                "register {} factors {} ({}) for {year}",
                f.sector.name(),
                f.version,
                f.guideline
            ),
            Err(_) => format!("register emission factors for {year}"),
        },
        Op::SetMonitoringPlan { plan, .. } => format!(
            "set the {} monitoring plan: {} facilities, {} meters, {} measured parameters",
            plan.year,
            plan.facilities.len(),
            plan.meters.len(),
            plan.measured.len()
        ),
        Op::DepositMonth {
            month,
            evidence,
            correction,
            ..
        } => format!(
            "{} {}-{:02} emissions data: {} rows, {} readings, {} evidence documents",
            if *correction { "correct" } else { "deposit" },
            month.year,
            month.month,
            month.rows.len(),
            month.readings.len(),
            evidence.len()
        ),
        Op::SubmitReport { year, .. } => format!("submit the {year} emissions report"),
        Op::ConfirmReport { year, .. } => {
            format!("confirm the {year} emissions report into the compliance cycle")
        }
        Op::LoadEntities { rows } => {
            format!("load {} covered entities", thousands(rows.len() as u64))
        }
        Op::LoadActivity { year, rows } => {
            format!(
                "load {} activity rows for {year}",
                thousands(rows.len() as u64)
            )
        }
        Op::RecordVerified { year, rows } => format!(
            "record verified emissions for {year}: {}",
            rows.iter()
                .take(3)
                .map(|r| format!(
                    "{} {} t",
                    r.account.0,
                    thousands(r.co2_t.saturating_add(r.pfc_co2e_t))
                ))
                .chain((rows.len() > 3).then(|| format!("and {} more", rows.len() - 3)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Op::PreAllocate {
            year, plan_version, ..
        } => format!("pre-allocate {year} under plan {plan_version}"),
        Op::TrueUp {
            year, plan_version, ..
        } => format!("true up {year} under plan {plan_version}"),
        Op::CloseYear {
            year,
            average_price_fen,
            date: d,
            forced_reason,
            ..
        } => format!(
            "close {year} on {} at {}/t{}",
            date(*d),
            yuan(u64::try_from(*average_price_fen).unwrap_or(0)),
            forced_reason
                .as_ref()
                .map(|r| format!(" (before the deadline: {r})"))
                .unwrap_or_default()
        ),
        other => crate::verification::describe(other).unwrap_or_else(|| format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(u: UnitId) -> String {
        format!("CEA20{}", 24 + u.0)
    }

    #[test]
    fn operations_read_as_words_with_separators() {
        let transfer = Op::Transfer {
            from: AccountId(1),
            to: AccountId(101),
            unit: UnitId(1),
            quantity_t: 1_250_000,
        };
        assert_eq!(
            describe(&transfer, &name, None),
            "transfer 1,250,000 t CEA2025 from 1 to 101"
        );
        assert_eq!(accounts(&transfer), vec![AccountId(1), AccountId(101)]);
        let pledge = Op::PledgeRegister {
            pledgor: AccountId(201),
            pledgee: AccountId(301),
            unit: UnitId(1),
            quantity_t: 40_000,
            secured_fen: 2_500_000_050,
        };
        assert_eq!(
            describe(&pledge, &name, None),
            "pledge 40,000 t CEA2025 of 201 to 301 securing 25,000,000.50 yuan"
        );
    }

    #[test]
    fn a_settlement_shows_the_legs_of_the_account_in_view() {
        let settle = Op::Settle {
            through_seq: 681,
            legs: vec![
                SettleLeg::Trade {
                    seller: AccountId(101),
                    buyer: AccountId(201),
                    unit: UnitId(1),
                    quantity_t: 600,
                },
                SettleLeg::Trade {
                    seller: AccountId(102),
                    buyer: AccountId(103),
                    unit: UnitId(1),
                    quantity_t: 5,
                },
            ],
        };
        assert_eq!(
            describe(&settle, &name, Some(AccountId(201))),
            "settle the exchange through command 681 (1 of 2 legs): 600 t CEA2025 from 101 to 201"
        );
        assert_eq!(
            accounts(&settle),
            vec![
                AccountId(101),
                AccountId(102),
                AccountId(103),
                AccountId(201)
            ]
        );
        assert_eq!(date(20251201), "2025-12-01");
        assert_eq!(thousands(8_907_876_948), "8,907,876,948");
    }
}
