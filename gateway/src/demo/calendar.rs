//! The demo's calendar. The demo plays the 2024 compliance cycle, which runs from January
//! 2024 (monitoring plans, monthly deposits) to the year's close in January 2026, in a
//! minute. The embedded server's clock reads the date the phase being played is at
//! (10:00 Beijing that day, plus the real time since the phase began, so time stamps keep
//! rising), so the journal's time stamps, the deposits' 40-day rule and the verification
//! deadlines fall where the cycle puts them, whatever day the demo is run, and the report
//! does not depend on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use server::scheduler::Clock;

/// The dates of the cycle's phases (`YYYYMMDD`). The trading days are the last week of
/// November 2025 on (`FIRST_DAY`); settlement and surrender on the day after the last.
pub(super) mod dates {
    /// Accounts, the plan, the entities, the pre-allocation on 2023 emissions.
    pub const SET_UP: u32 = 20_240_102;
    /// The guidelines' factors registered and the entities' monitoring plans set.
    pub const MONITORING_PLANS: u32 = 20_240_120;
    /// Annual reports submitted (due 31 March).
    pub const REPORTS: u32 = 20_250_325;
    /// The power plants' activity data and verified emissions (due 30 June).
    pub const POWER_VERIFIED: u32 = 20_250_328;
    /// The year's verification rules, the bodies and their assignments.
    pub const ASSIGNED: u32 = 20_250_401;
    pub const DOCUMENT_REVIEW: u32 = 20_250_415;
    pub const ON_SITE: u32 = 20_250_520;
    /// Findings raised on site.
    pub const FINDINGS: u32 = 20_250_521;
    /// Corrected months deposited and reports resubmitted.
    pub const CORRECTIONS: u32 = 20_250_603;
    /// Corrections accepted, conservative estimates made.
    pub const RESOLVED: u32 = 20_250_610;
    pub const CONCLUDED: u32 = 20_250_620;
    /// Files without findings notified (due 31 July for industry).
    pub const NOTIFIED: u32 = 20_250_715;
    /// Files with findings notified, late.
    pub const NOTIFIED_LATE: u32 = 20_250_804;
    pub const TRUE_UP: u32 = 20_250_808;
    /// The objection (within 7 working days of 4 August: by 13 August) and its decision.
    pub const OBJECTION: u32 = 20_250_811;
    pub const DECISION: u32 = 20_250_815;
    /// The re-review's round: document review, its finding estimated, concluded, notified.
    pub const RE_REVIEW: u32 = 20_250_818;
    pub const RE_CONCLUDED: u32 = 20_250_822;
    pub const RE_NOTIFIED: u32 = 20_250_825;
    /// Paid allocation issued, funds credited, pledges registered, deposits at the exchange.
    pub const FUNDS: u32 = 20_251_110;
    /// The year closes after its deadline.
    pub const CLOSE: u32 = 20_260_105;
}

/// The server's clock: the system's, moved by an offset to the phase's date.
#[derive(Clone, Debug)]
pub(super) struct DemoClock {
    offset_ns: Arc<AtomicI64>,
}

impl DemoClock {
    /// A clock at [`dates::SET_UP`].
    pub fn new() -> DemoClock {
        let clock = DemoClock {
            offset_ns: Arc::new(AtomicI64::new(0)),
        };
        clock.set(dates::SET_UP);
        clock
    }

    /// The clock the embedded server reads.
    pub fn server_clock(&self) -> Clock {
        let offset = self.offset_ns.clone();
        Clock::from_fn(move || {
            let now = server::core::now_ns() as i64;
            now.saturating_add(offset.load(Ordering::Acquire)).max(0) as u64
        })
    }

    /// Moves the clock to 10:00 Beijing (02:00 UTC) on `date`. Phases are played in date
    /// order, so the clock only goes forward.
    pub fn set(&self, date: u32) {
        let days = server::calendar::days_from_civil(
            i64::from(date / 10_000),
            date / 100 % 100,
            date % 100,
        );
        let at_ns = (days * 86_400 + 2 * 3_600) * 1_000_000_000;
        let now_ns = server::core::now_ns() as i64;
        self.offset_ns.store(at_ns - now_ns, Ordering::Release);
    }
}
