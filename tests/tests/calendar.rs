//! The trading calendar drives the day on the clock: with the exchange's local time put at
//! 10:00 on a weekday (through `utc_offset_minutes`), the server opens the day and enters
//! continuous trading by itself; operators can still override by hand.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::v1 as pb;
use tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calendar_opens_the_day_and_the_session_on_the_clock() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let today = now.div_euclid(86_400);
    // The next weekday (0 = Monday), at 10:00 local.
    let day = (today..today + 7)
        .find(|d| (d + 3).rem_euclid(7) < 5)
        .unwrap_or(today);
    let target = day * 86_400 + 10 * 3_600;
    let offset_minutes = (target - now).div_euclid(60) as i32;
    let (y, m, d) = gateway::calendar::civil_from_days(day);
    let expected_date = (y * 10_000 + i64::from(m) * 100 + i64::from(d)) as u32;

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut config = test_config(dir.path());
    config.calendar.enabled = true;
    config.calendar.utc_offset_minutes = offset_minutes;
    let server = TestServer::start_with(config);
    let mut ops = Clients::of(&server, "ops").await;
    let mut status = pb::MarketStatus::default();
    for _ in 0..100 {
        status = ops
            .market
            .get_market_status(pb::GetMarketStatusRequest {})
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_inner();
        if status.phase == pb::Phase::Continuous as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status.phase, pb::Phase::Continuous as i32, "{status:?}");
    assert_eq!(status.trading_date, expected_date);
    // A manual override holds until the next transition of the calendar.
    ops.admin
        .set_phase(pb::SetPhaseRequest {
            phase: pb::Phase::Break as i32,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let status = ops
        .market
        .get_market_status(pb::GetMarketStatusRequest {})
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(status.phase, pb::Phase::Break as i32);
}
