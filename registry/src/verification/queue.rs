//! Where each entity's verification of a year stands, as a province works through it: one
//! row per covered entity that owes a report (the industrial sectors) or has one, from "no
//! report yet" to "notified", late ones first. The API's list, the dashboard's queue and
//! `carbonx ctl verify queue` all read these rows.

use crate::emissions::ops::mrv_sector;
use crate::ledger::Ledger;
use crate::model::AccountId;

use super::Stage;

/// Where a row stands: before a file exists, or the file's stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// No annual report submitted.
    NoReport,
    /// Report submitted; no body assigned.
    Submitted,
    /// A file's stage (ordered along the path).
    File(Stage),
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::NoReport => "no_report",
            State::Submitted => "submitted",
            State::File(stage) => stage.name(),
        }
    }

    /// Whether the year's verification of this entity is finished (notified, no
    /// objection pending).
    pub fn done(self) -> bool {
        self == State::File(Stage::Notified)
    }
}

/// One entity's place in the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub account: AccountId,
    pub name: String,
    pub province: String,
    pub sector: crate::model::Sector,
    pub state: State,
    pub body: Option<u32>,
    pub round: u32,
    /// Findings of the file not resolved yet.
    pub open_findings: usize,
    /// A step was taken after its deadline, or the deadline passed with the work undone.
    pub late: bool,
    /// What the latest report says, t.
    pub reported_t: Option<u64>,
    /// The conclusion in force, t.
    pub verified_t: Option<u64>,
}

/// Which rows to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this province's entities.
    pub province: Option<String>,
    /// Only the files assigned to this body.
    pub body: Option<u32>,
}

/// The year's queue on `today` (`YYYYMMDD`): late rows first, then along the path (the
/// least advanced first), then by account.
pub fn queue(ledger: &Ledger, year: u16, filter: &Filter, today: u32) -> Vec<Row> {
    let rules = ledger.verification.rules_of(year);
    let mut rows: Vec<Row> = ledger
        .cycle
        .entities
        .iter()
        .filter(|(_, e)| filter.province.as_ref().is_none_or(|p| *p == e.province))
        .filter_map(|(&account, entity)| {
            let report = ledger.emissions.reports.get(&(year, account));
            let file = ledger.verification.file_of(year, account);
            if mrv_sector(entity.sector).is_none() && report.is_none() && file.is_none() {
                return None;
            }
            if filter.body.is_some() && file.map(|f| f.body) != filter.body {
                return None;
            }
            let state = match (file, report) {
                (Some(f), _) => State::File(f.stage),
                (None, Some(_)) => State::Submitted,
                (None, None) => State::NoReport,
            };
            let overdue = rules.is_some_and(|r| {
                let due = if state == State::NoReport {
                    r.report_due
                } else {
                    r.notified_by(entity.sector)
                };
                !state.done() && today > due
            });
            let open = file.map_or(0, |f| {
                f.findings.iter().filter(|x| x.resolution.is_none()).count()
            });
            Some(Row {
                account,
                name: ledger
                    .accounts
                    .get(&account)
                    .map(|a| a.name.clone())
                    .unwrap_or_default(),
                province: entity.province.clone(),
                sector: entity.sector,
                state,
                body: file.map(|f| f.body),
                round: file.map_or(0, |f| f.round),
                open_findings: open,
                late: overdue || file.is_some_and(|f| f.late()),
                reported_t: report.and_then(|v| v.last()).map(|s| s.total_t),
                verified_t: file.and_then(|f| f.conclusion()).map(|c| c.total_t),
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        b.late
            .cmp(&a.late)
            .then(a.state.cmp(&b.state))
            .then(a.account.cmp(&b.account))
    });
    rows
}
