//! Drives the trading day from the calendar: at each transition of the calendar's target
//! (day open, phase, block window, day close) it submits the command, like an operator
//! would. Edge-triggered: a manual override holds until the next transition.

use std::time::Duration;

use engine::{CommandKind, Phase};
use tokio::sync::watch;

use crate::calendar::{Schedule, Target};
use crate::config::Calendar;
use crate::core::{Core, now_ns};

pub fn start(
    calendar: &Calendar,
    core: Core,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let schedule = Schedule::parse(calendar)?;
    tokio::spawn(async move {
        let mut last: Option<Target> = None;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let target = schedule.target(now_ns());
            if last == Some(target) {
                continue;
            }
            if let Err(e) = step(&core, last, target).await {
                tracing::warn!("calendar: {e}");
            }
            last = Some(target);
        }
    });
    Ok(())
}

async fn step(core: &Core, last: Option<Target>, target: Target) -> Result<(), String> {
    let (phase, date) = core
        .query(|e| (e.phase(), e.trading_date()))
        .await
        .map_err(|e| e.message)?;
    let mut commands = Vec::new();
    match target.date {
        Some(day) => {
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
        }
        None => {
            if phase != Phase::Closed {
                commands.push(CommandKind::CloseDay);
            }
        }
    }
    for kind in commands {
        let applied = core.execute(kind).await.map_err(|e| e.message)?;
        if let Some(reason) = applied.rejection() {
            tracing::info!(?kind, reason = reason.code(), "calendar step refused");
        } else {
            tracing::info!(?kind, seq = applied.seq, "calendar step");
        }
    }
    Ok(())
}
