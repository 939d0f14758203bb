//! Drives the trading day from the calendar: at each transition of the calendar's target
//! (day open, phase, block window, day close) it submits the command, like an operator
//! would. Edge-triggered: a manual override holds until the next transition.
//!
//! The time comes from a [`Clock`] passed in (the system clock in the server, a set one
//! in tests), and what to do at a transition is the pure [`Scheduler::due`], so the day is
//! tested without waiting for 09:30.

use std::sync::Arc;
use std::time::Duration;

use engine::{CommandKind, Phase};
use tokio::sync::watch;

use crate::calendar::{Schedule, Target};
use crate::config::Calendar;
use crate::core::{Core, now_ns};

/// How often the scheduler reads the clock.
pub const SCHEDULER_TICK_MS: u64 = 1_000;

/// Where the scheduler reads the time (nanoseconds since the Unix epoch, UTC).
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock(Arc::new(now_ns))
    }

    /// A clock that reads `f` (a test's hand).
    pub fn from_fn(f: impl Fn() -> u64 + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(f))
    }

    pub fn now_ns(&self) -> u64 {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now_ns())
    }
}

/// The calendar and the last target acted on.
#[derive(Debug)]
pub struct Scheduler {
    schedule: Schedule,
    last: Option<Target>,
}

impl Scheduler {
    pub fn new(calendar: &Calendar) -> Result<Scheduler, String> {
        Ok(Scheduler {
            schedule: Schedule::parse(calendar)?,
            last: None,
        })
    }

    /// The calendar's target at `now_ns`, when it differs from the one acted on last.
    pub fn transition(&self, now_ns: u64) -> Option<Target> {
        let target = self.schedule.target(now_ns);
        (self.last != Some(target)).then_some(target)
    }

    /// The commands that bring a market in `phase` on `date` to `target`, and `target`
    /// taken as acted on. Only what changed since the last target is set again, so a
    /// phase an operator set by hand holds until the calendar's next transition.
    pub fn due(&mut self, target: Target, phase: Phase, date: u32) -> Vec<CommandKind> {
        let last = self.last.replace(target);
        let mut commands = Vec::new();
        let Some(day) = target.date else {
            if phase != Phase::Closed {
                commands.push(CommandKind::CloseDay);
            }
            return commands;
        };
        if phase == Phase::Closed || date != day {
            if phase != Phase::Closed {
                commands.push(CommandKind::CloseDay);
            }
            commands.push(CommandKind::OpenDay { date: day });
        }
        if target.phase != Phase::PreOpen && last.map(|l| l.phase) != Some(target.phase) {
            commands.push(CommandKind::SetPhase {
                phase: target.phase,
            });
        }
        if last.map(|l| l.block_window) != Some(target.block_window) {
            commands.push(CommandKind::SetBlockWindow {
                open: target.block_window,
            });
        }
        commands
    }
}

/// Acts on the calendar once now (so a server reports ready in the calendar's state),
/// then every [`SCHEDULER_TICK_MS`] until shutdown.
pub async fn start(
    calendar: &Calendar,
    core: Core,
    clock: Clock,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut scheduler = Scheduler::new(calendar)?;
    tick(&mut scheduler, &core, &clock).await;
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(SCHEDULER_TICK_MS));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = shutdown.changed() => return,
            }
            tick(&mut scheduler, &core, &clock).await;
        }
    });
    Ok(())
}

async fn tick(scheduler: &mut Scheduler, core: &Core, clock: &Clock) {
    let Some(target) = scheduler.transition(clock.now_ns()) else {
        return;
    };
    let state = core.query(|e| (e.phase(), e.trading_date())).await;
    let (phase, date) = match state {
        Ok(state) => state,
        Err(e) => {
            // Not taken as acted on: tried again at the next tick.
            tracing::warn!("calendar: {}", e.message);
            return;
        }
    };
    for kind in scheduler.due(target, phase, date) {
        match core.execute(kind).await {
            Ok(applied) => match applied.rejection() {
                Some(reason) => {
                    tracing::info!(?kind, reason = reason.code(), "calendar step refused")
                }
                None => tracing::info!(?kind, seq = applied.seq, "calendar step"),
            },
            Err(e) => {
                tracing::warn!(?kind, "calendar: {}", e.message);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Monday 2026-11-30 00:00 UTC = 08:00 in Beijing (the default calendar's +480).
    const MONDAY_UTC_S: u64 = 1_795_996_800;

    fn beijing(h: u64, m: u64) -> u64 {
        (MONDAY_UTC_S + (h * 60 + m) * 60 - 8 * 3_600) * 1_000_000_000
    }

    /// The market the commands leave behind (phase, date), as the engine would.
    fn apply(commands: &[CommandKind], mut state: (Phase, u32)) -> (Phase, u32) {
        for c in commands {
            match *c {
                CommandKind::OpenDay { date } => state = (Phase::PreOpen, date),
                CommandKind::CloseDay => state.0 = Phase::Closed,
                CommandKind::SetPhase { phase } => state.0 = phase,
                _ => {}
            }
        }
        state
    }

    #[test]
    fn a_day_on_the_clock_opens_trades_breaks_and_closes() {
        let mut s = Scheduler::new(&Calendar::default()).unwrap_or_else(|e| panic!("{e}"));
        let mut market = (Phase::Closed, 0u32);
        let mut step = |h, m, market: &mut (Phase, u32)| {
            let Some(target) = s.transition(beijing(h, m)) else {
                return Vec::new();
            };
            let commands = s.due(target, market.0, market.1);
            *market = apply(&commands, *market);
            commands
        };
        // 08:00: closed, and nothing to do.
        assert!(
            step(8, 0, &mut market).is_empty(),
            "closed, and a closed market"
        );
        assert!(
            step(8, 30, &mut market).is_empty(),
            "no transition, no command"
        );
        // 09:15 the day opens straight into the opening call (pre_open = opening_call).
        assert_eq!(
            step(9, 15, &mut market),
            vec![
                CommandKind::OpenDay { date: 20_261_130 },
                CommandKind::SetPhase {
                    phase: Phase::OpeningCall
                },
            ]
        );
        let continuous = CommandKind::SetPhase {
            phase: Phase::Continuous,
        };
        assert_eq!(step(9, 30, &mut market), vec![continuous]);
        assert_eq!(
            step(11, 30, &mut market),
            vec![CommandKind::SetPhase {
                phase: Phase::Break
            }]
        );
        assert_eq!(
            step(13, 0, &mut market),
            vec![continuous, CommandKind::SetBlockWindow { open: true }]
        );
        assert_eq!(
            step(15, 0, &mut market),
            vec![
                CommandKind::SetPhase {
                    phase: Phase::PostClose
                },
                CommandKind::SetBlockWindow { open: false }
            ]
        );
        assert_eq!(step(15, 30, &mut market), vec![CommandKind::CloseDay]);
        assert_eq!(market, (Phase::Closed, 20_261_130));
    }

    #[test]
    fn a_phase_set_by_hand_holds_until_the_next_transition() {
        let mut s = Scheduler::new(&Calendar::default()).unwrap_or_else(|e| panic!("{e}"));
        let target = s
            .transition(beijing(10, 0))
            .unwrap_or_else(|| panic!("a target"));
        let commands = s.due(target, Phase::Closed, 0);
        assert_eq!(
            commands,
            vec![
                CommandKind::OpenDay { date: 20_261_130 },
                CommandKind::SetPhase {
                    phase: Phase::Continuous
                },
                CommandKind::SetBlockWindow { open: false },
            ]
        );
        // An operator halts trading at 10:05: the calendar leaves it halted...
        assert_eq!(s.transition(beijing(10, 5)), None);
        assert_eq!(s.transition(beijing(11, 29)), None);
        // ...until its next transition (the break at 11:30, then the session at 13:00).
        let at_break = s
            .transition(beijing(11, 30))
            .unwrap_or_else(|| panic!("11:30"));
        assert_eq!(
            s.due(at_break, Phase::Break, 20_261_130),
            vec![CommandKind::SetPhase {
                phase: Phase::Break
            }]
        );
    }

    #[test]
    fn a_server_started_mid_session_or_on_a_stale_day_catches_up() {
        let mut s = Scheduler::new(&Calendar::default()).unwrap_or_else(|e| panic!("{e}"));
        let target = s
            .transition(beijing(14, 0))
            .unwrap_or_else(|| panic!("a target"));
        // Yesterday's day still open (a restart after a missed close): closed, opened anew.
        assert_eq!(
            s.due(target, Phase::Continuous, 20_261_127),
            vec![
                CommandKind::CloseDay,
                CommandKind::OpenDay { date: 20_261_130 },
                CommandKind::SetPhase {
                    phase: Phase::Continuous
                },
                CommandKind::SetBlockWindow { open: true },
            ]
        );
        // Saturday: a day left open is closed.
        let mut s = Scheduler::new(&Calendar::default()).unwrap_or_else(|e| panic!("{e}"));
        let saturday = beijing(10, 0) + 5 * 86_400 * 1_000_000_000;
        let target = s.transition(saturday).unwrap_or_else(|| panic!("a target"));
        assert_eq!(target.date, None);
        assert_eq!(
            s.due(target, Phase::PostClose, 20_261_204),
            vec![CommandKind::CloseDay]
        );
    }
}
