//! The verification operations from the journal's `Op`, and their description in words.

use super::Stage;
use crate::error::RegistryError;
use crate::ledger::Ledger;
use crate::model::AccountId;
use crate::tx::{Op, Outcome, Tx};

use super::ops::By;

impl Ledger {
    /// Runs one of the verification operations (the ledger's dispatch sends them here).
    pub(crate) fn verification_op(&mut self, seq: u64, tx: &Tx) -> Result<Outcome, RegistryError> {
        let by = |date: u32| By {
            actor: tx.actor,
            seq,
            date,
        };
        match &tx.op {
            Op::RegisterVerificationRules { text } => self.register_verification_rules(seq, text),
            Op::RegisterBody {
                body,
                name,
                credit_code,
            } => self.register_body(seq, *body, name, credit_code),
            Op::RecordEngagement {
                year,
                account,
                body,
                province,
            } => self.record_engagement(*year, *account, *body, province),
            Op::AssignBody {
                year,
                account,
                body,
                province,
                date,
            } => self.assign_body(*year, *account, *body, province, by(*date)),
            Op::ReviewStep {
                year,
                account,
                body,
                stage,
                date,
            } => self.review_step(*year, *account, *body, *stage, by(*date)),
            Op::RaiseFinding {
                year,
                account,
                body,
                month,
                target,
                text,
                date,
            } => self.raise_finding(*year, *account, *body, *month, target, text, by(*date)),
            Op::ResolveFinding {
                year,
                account,
                body,
                finding,
                estimate,
                date,
            } => self.resolve_finding(*year, *account, *body, *finding, *estimate, by(*date)),
            Op::Conclude {
                year,
                account,
                body,
                date,
            } => self.conclude(*year, *account, *body, by(*date)),
            Op::Notify {
                year,
                account,
                province,
                date,
                objection_until,
            } => self.notify(*year, *account, province, *objection_until, by(*date)),
            Op::Object {
                year,
                account,
                reason,
                date,
                decide_by,
            } => self.object(*year, *account, reason, *decide_by, by(*date)),
            Op::DecideObjection {
                year,
                account,
                province,
                upheld,
                reason,
                date,
            } => self.decide_objection(*year, *account, province, *upheld, reason, by(*date)),
            _ => Ok(Outcome::Unchanged),
        }
    }
}

/// The account a verification operation concerns.
pub fn account_of(op: &Op) -> Option<AccountId> {
    match op {
        Op::RecordEngagement { account, .. }
        | Op::AssignBody { account, .. }
        | Op::ReviewStep { account, .. }
        | Op::RaiseFinding { account, .. }
        | Op::ResolveFinding { account, .. }
        | Op::Conclude { account, .. }
        | Op::Notify { account, .. }
        | Op::Object { account, .. }
        | Op::DecideObjection { account, .. } => Some(*account),
        _ => None,
    }
}

/// A verification operation in words (`None` for any other operation).
pub fn describe(op: &Op) -> Option<String> {
    Some(match op {
        Op::RegisterVerificationRules { text } => match super::Rules::from_toml(text) {
            Ok(r) => format!("register the {} verification rules {}", r.year, r.version),
            Err(_) => "register verification rules".into(),
        },
        Op::RegisterBody { body, name, .. } => format!("register verification body {body}: {name}"),
        Op::RecordEngagement { year, body, .. } => {
            format!("record body {body} as technical service body in {year}")
        }
        Op::AssignBody { year, body, .. } => format!("assign body {body} to verify {year}"),
        Op::ReviewStep { year, stage, .. } => match stage {
            Stage::OnSite => format!("{year} verification: on-site check made"),
            _ => format!("{year} verification: document review started"),
        },
        Op::RaiseFinding {
            year,
            month,
            target,
            ..
        } => format!(
            "{year} verification: finding on {} of month {month}",
            target.describe()
        ),
        Op::ResolveFinding {
            year,
            finding,
            estimate,
            ..
        } => match estimate {
            Some(v) => format!("{year} verification: finding {finding} estimated at {v}"),
            None => format!("{year} verification: finding {finding} corrected"),
        },
        Op::Conclude { year, .. } => format!("{year} verification: conclusion issued"),
        Op::Notify { year, .. } => {
            format!("notify the {year} verification conclusion: the verified emissions")
        }
        Op::Object { year, .. } => format!("object to the {year} verification conclusion"),
        Op::DecideObjection { year, upheld, .. } => format!(
            "decide the {year} objection: {}",
            if *upheld {
                "upheld, re-review"
            } else {
                "dismissed"
            }
        ),
        _ => return None,
    })
}
