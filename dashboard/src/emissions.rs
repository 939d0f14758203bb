//! The entity page's emissions section: how each tonne of the year's emissions was
//! computed (the latest submitted report, recomputed from the deposits it used), next to
//! how each allocated tonne was.

use registry::ledger::Ledger;
use registry::model::AccountId;

/// One line of the report as the page shows it.
pub(crate) struct EmissionsLine {
    pub place: String,
    pub term: &'static str,
    pub item: String,
    pub emissions_t: String,
    pub working: String,
}

/// A month's deposit state.
pub(crate) struct MonthState {
    pub month: u8,
    pub versions: usize,
    pub late: bool,
    pub stale_meters: String,
}

/// The section's data, read on the registry's thread.
pub(crate) struct EmissionsView {
    pub guideline: String,
    pub factors_version: String,
    pub submitted: String,
    pub confirmed: bool,
    pub total: String,
    pub enterprise_t: String,
    pub lines: Vec<EmissionsLine>,
    pub months: Vec<MonthState>,
}

fn place(scope: mrv::plan::Scope, report: &mrv::report::Report) -> String {
    match scope {
        mrv::plan::Scope::Enterprise => "enterprise".into(),
        mrv::plan::Scope::Facility(id) => match report.facility(id) {
            Some(f) => format!("{} ({})", f.name, f.kind.name()),
            None => format!("facility {id}"),
        },
    }
}

/// The emissions section of `account` for `year`: `None` before any deposit.
pub(crate) fn view(ledger: &Ledger, year: u16, account: AccountId) -> Option<EmissionsView> {
    let e = &ledger.emissions;
    let months: Vec<MonthState> = (1..=12u8)
        .filter_map(|m| {
            let versions = e.months.get(&(year, account, m))?;
            let latest = versions.last()?;
            Some(MonthState {
                month: m,
                versions: versions.len(),
                late: latest.late,
                stale_meters: latest.stale_meters.join(", "),
            })
        })
        .collect();
    if months.is_empty() {
        return None;
    }
    let submission = e.report_of(year, account);
    let report = e.recompute(year, account);
    let lines = report.as_ref().map_or_else(Vec::new, |r| {
        r.lines
            .iter()
            .map(|l| EmissionsLine {
                place: place(l.scope, r),
                term: l.term.name(),
                item: l.item.clone(),
                emissions_t: l.emissions_t.to_string(),
                working: l.working.clone(),
            })
            .collect()
    });
    Some(EmissionsView {
        guideline: report
            .as_ref()
            .map_or(String::new(), |r| r.guideline.clone()),
        factors_version: submission.map_or(String::new(), |s| s.factors_version.clone()),
        submitted: submission.map_or("not submitted".into(), |s| {
            registry::describe::iso_date(s.date)
        }),
        confirmed: submission.is_some_and(|s| s.confirmed_seq.is_some()),
        total: submission.map_or(String::new(), |s| crate::html::grouped(s.total_t)),
        enterprise_t: report
            .as_ref()
            .map_or(String::new(), |r| r.enterprise_t.to_string()),
        lines,
        months,
    })
}
