//! The trading calendar: which phase the market should be in at a wall-clock instant.
//! Pure (the clock is an argument), so it is tested without waiting for 09:30.

use engine::Phase;

use crate::config::Calendar;

/// Where the market should be at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// The trading date (`YYYYMMDD`) when a day should be open.
    pub date: Option<u32>,
    pub phase: Phase,
    pub block_window: bool,
}

/// A parsed calendar; minutes are local minutes of the day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    offset_minutes: i64,
    holidays: Vec<u32>,
    pre_open: u32,
    opening_call: u32,
    sessions: Vec<(u32, u32)>,
    block: (u32, u32),
    close_day: u32,
}

fn minutes(text: &str) -> Result<u32, String> {
    let (h, m) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not HH:MM"))?;
    let (h, m): (u32, u32) = (
        h.parse().map_err(|_| format!("{text:?} is not HH:MM"))?,
        m.parse().map_err(|_| format!("{text:?} is not HH:MM"))?,
    );
    if h > 23 || m > 59 {
        return Err(format!("{text:?} is not a time of day"));
    }
    Ok(h * 60 + m)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) to days since 1970-01-01, proleptic Gregorian: the inverse of
/// [`civil_from_days`].
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The `n`th working day after `date` (`YYYYMMDD`): weekends and `holidays` do not count.
/// A window of "7 working days from notification" ends on `working_days_after(d, 7)`.
pub fn working_days_after(date: u32, n: u32, holidays: &[u32]) -> u32 {
    let mut days = days_from_civil(i64::from(date / 10_000), date / 100 % 100, date % 100);
    let mut left = n;
    // A year of holidays cannot hold more than 366 days, so this ends.
    while left > 0 {
        days += 1;
        let (y, m, d) = civil_from_days(days);
        let ymd = (y * 10_000 + i64::from(m) * 100 + i64::from(d)) as u32;
        // 1970-01-01 was a Thursday: 0 = Monday ... 6 = Sunday.
        let weekday = (days + 3).rem_euclid(7);
        if weekday < 5 && !holidays.contains(&ymd) {
            left -= 1;
        }
    }
    let (y, m, d) = civil_from_days(days);
    (y * 10_000 + i64::from(m) * 100 + i64::from(d)) as u32
}

/// The local date (`YYYYMMDD`) at `utc_ns` for a local time `offset_minutes` from UTC.
pub fn local_date(utc_ns: u64, offset_minutes: i64) -> u32 {
    let local_minutes = (utc_ns / 60_000_000_000) as i64 + offset_minutes;
    let (y, m, d) = civil_from_days(local_minutes.div_euclid(1_440));
    (y * 10_000 + i64::from(m) * 100 + i64::from(d)) as u32
}

impl Schedule {
    pub fn parse(c: &Calendar) -> Result<Schedule, String> {
        let mut sessions = Vec::new();
        for (start, end) in &c.sessions {
            let (s, e) = (minutes(start)?, minutes(end)?);
            if e <= s {
                return Err(format!("session {start}-{end} ends before it starts"));
            }
            if sessions.last().is_some_and(|&(_, prev_end)| s < prev_end) {
                return Err(format!("session {start}-{end} overlaps the one before"));
            }
            sessions.push((s, e));
        }
        let (Some(&(first, _)), Some(&(_, last))) = (sessions.first(), sessions.last()) else {
            return Err("at least one session is needed".into());
        };
        let schedule = Schedule {
            offset_minutes: i64::from(c.utc_offset_minutes),
            holidays: c.holidays.clone(),
            pre_open: minutes(&c.pre_open)?,
            opening_call: minutes(&c.opening_call)?,
            sessions,
            block: (minutes(&c.block_window.0)?, minutes(&c.block_window.1)?),
            close_day: minutes(&c.close_day)?,
        };
        if !(schedule.pre_open <= schedule.opening_call && schedule.opening_call <= first) {
            return Err("pre_open <= opening_call <= first session start is required".into());
        }
        if schedule.close_day < last {
            return Err("close_day must not be before the last session ends".into());
        }
        Ok(schedule)
    }

    /// The target state at `utc_ns`.
    pub fn target(&self, utc_ns: u64) -> Target {
        let local_minutes = (utc_ns / 60_000_000_000) as i64 + self.offset_minutes;
        let days = local_minutes.div_euclid(1_440);
        let minute = local_minutes.rem_euclid(1_440) as u32;
        let date = local_date(utc_ns, self.offset_minutes);
        // 1970-01-01 was a Thursday: 0 = Monday ... 6 = Sunday.
        let weekday = (days + 3).rem_euclid(7);
        let closed = Target {
            date: None,
            phase: Phase::Closed,
            block_window: false,
        };
        if weekday >= 5 || self.holidays.contains(&date) {
            return closed;
        }
        if minute < self.pre_open || minute >= self.close_day {
            return closed;
        }
        let first = self.sessions.first().map_or(0, |s| s.0);
        let last = self.sessions.last().map_or(0, |s| s.1);
        let phase = if minute < self.opening_call {
            Phase::PreOpen
        } else if minute < first {
            if self.opening_call < first {
                Phase::OpeningCall
            } else {
                Phase::PreOpen
            }
        } else if minute >= last {
            Phase::PostClose
        } else if self.sessions.iter().any(|&(s, e)| (s..e).contains(&minute)) {
            Phase::Continuous
        } else {
            Phase::Break
        };
        Target {
            date: Some(date),
            phase,
            block_window: (self.block.0..self.block.1).contains(&minute),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(date_utc_secs: u64) -> u64 {
        date_utc_secs * 1_000_000_000
    }

    #[test]
    fn a_beijing_trading_day() {
        let s = Schedule::parse(&Calendar::default()).unwrap_or_else(|e| panic!("{e}"));
        // Monday 2026-11-30 00:00 UTC = 08:00 Beijing.
        let monday = 1_795_996_800u64;
        assert_eq!(civil_from_days(monday as i64 / 86_400), (2026, 11, 30));
        let local = |h: u64, m: u64| at(monday + (h * 60 + m) * 60 - 8 * 3_600);
        let t = |h, m| s.target(local(h, m));
        assert_eq!(t(9, 0).phase, Phase::Closed);
        assert_eq!(t(9, 20).phase, Phase::OpeningCall);
        assert_eq!(t(9, 20).date, Some(20_261_130));
        assert_eq!(t(9, 30).phase, Phase::Continuous);
        assert_eq!(t(11, 30).phase, Phase::Break);
        assert_eq!(t(13, 0).phase, Phase::Continuous);
        assert!(t(13, 0).block_window && !t(11, 0).block_window);
        assert_eq!(t(15, 0).phase, Phase::PostClose);
        assert_eq!(t(15, 30).phase, Phase::Closed);
        // Saturday.
        assert_eq!(s.target(local(10, 0) - at(2 * 86_400)).phase, Phase::Closed);
    }

    #[test]
    fn working_days_skip_weekends_and_holidays() {
        assert_eq!(days_from_civil(2026, 11, 30), 1_795_996_800 / 86_400);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        // Notified Friday 2025-09-26; National Day week 1-8 October closed. Working days:
        // Mon 29, Tue 30 Sep (2), then Thu 9, Fri 10 Oct (4), Mon 13, Tue 14, Wed 15 (7).
        let golden_week = [20251001, 20251002, 20251003, 20251006, 20251007, 20251008];
        assert_eq!(working_days_after(20250926, 7, &golden_week), 20251015);
        // Without the holidays: Mon 29 .. Fri 3 Oct is 5, Mon 6 = 6, Tue 7 = 7.
        assert_eq!(working_days_after(20250926, 7, &[]), 20251007);
        // Ten working days from Tuesday 2025-07-01: 2, 3, 4, 7..11, 14, 15.
        assert_eq!(working_days_after(20250701, 10, &[]), 20250715);
        assert_eq!(working_days_after(20250701, 0, &[]), 20250701);
        // Across a year end and a leap day.
        assert_eq!(working_days_after(20231229, 1, &[20240101]), 20240102);
        assert_eq!(working_days_after(20240228, 1, &[]), 20240229);
    }

    #[test]
    fn bad_calendars_are_refused() {
        let c = Calendar {
            sessions: vec![("10:00".into(), "09:00".into())],
            ..Calendar::default()
        };
        assert!(Schedule::parse(&c).is_err());
        let c = Calendar {
            pre_open: "25:00".into(),
            ..Calendar::default()
        };
        assert!(Schedule::parse(&c).is_err());
    }
}
