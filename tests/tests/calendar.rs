//! The trading calendar drives the day on the clock: a server whose clock reads 10:00 on a
//! weekday in Beijing is, when it reports ready, in continuous trading on that date; an
//! operator's override holds against the calendar (the scheduler's unit tests walk a whole
//! day and the override on a set clock, with no waiting).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use proto::v1 as pb;
use server::scheduler::Clock;
use tests::*;

/// Monday 2026-11-30 02:00 UTC = 10:00 in Beijing (the default calendar's +480).
const MONDAY_10_00_BEIJING_NS: u64 = (1_795_996_800 + 2 * 3_600) * 1_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calendar_opens_the_day_and_the_session_on_the_clock() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut config = test_config(dir.path());
    config.calendar.enabled = true;
    let now = Arc::new(AtomicU64::new(MONDAY_10_00_BEIJING_NS));
    let hand = now.clone();
    let clock = Clock::from_fn(move || hand.load(Ordering::Relaxed));
    let server = TestServer::start_with_clock(config, clock);
    let mut ops = Clients::of(&server, "ops").await;
    // The calendar acted before the server reported ready.
    let s = status(&mut ops).await;
    assert_eq!(
        (s.phase, s.trading_date),
        (pb::Phase::Continuous as i32, 20_261_130),
        "{s:?}"
    );
    // A manual override holds: the clock moves on within the session, the calendar has
    // no transition to act on.
    ops.admin
        .set_phase(pb::SetPhaseRequest {
            phase: pb::Phase::Break as i32,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    now.store(
        MONDAY_10_00_BEIJING_NS + 60 * 1_000_000_000,
        Ordering::Relaxed,
    );
    let s = status(&mut ops).await;
    assert_eq!(s.phase, pb::Phase::Break as i32);
    server.stop().unwrap_or_else(|e| panic!("{e}"));
}

async fn status(ops: &mut Clients) -> pb::MarketStatus {
    ops.market
        .get_market_status(pb::GetMarketStatusRequest {})
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
}
