//! Journal archiving: after snapshots, the segments recovery no longer needs move to
//! `journal/archive`; the server restarts from what is left with the same state, streams
//! resume, the books reconcile, and the archive plus the journal are the whole history.

use journal::{ARCHIVE_DIR, replay, segments};
use proto::v1 as pb;
use tests::*;
use tokio_stream::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_before_the_older_snapshot_are_archived_and_a_restart_needs_none_of_them() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut config = test_config(dir.path());
    config.limits.journal_segment_bytes = 4_096;
    config.snapshot_every = 50;
    let server = TestServer::start_with(config.clone());
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    let mut m2 = Clients::of(&server, "m2").await;
    for i in 0..150u64 {
        m1.trading
            .place_order(limit(
                M1,
                1_000 + i,
                pb::Side::Sell,
                8_500 + (i % 10) as i64,
                2,
            ))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if i % 3 == 0 {
            m2.trading
                .place_order(limit(M2, 5_000 + i, pb::Side::Buy, 8_600, 1))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let before = live_orders(&mut m1, M1).await;
    drop((m1, m2));
    let kept = server.stop_keep_dir();

    let journal = dir.path().join("journal");
    let archive = journal.join(ARCHIVE_DIR);
    let archived = segments(&archive).unwrap_or_default();
    let left = segments(&journal).unwrap_or_default();
    assert!(!archived.is_empty(), "nothing archived; journal: {left:?}");
    // Nothing recovery needs was moved: the journal starts at or before the older snapshot
    // kept (+1), and archive + journal are every record once, in order.
    let snapshots = server::snapshot::list(&dir.path().join("snapshots")).unwrap_or_default();
    assert_eq!(snapshots.len(), 2, "{snapshots:?}");
    let older = snapshots[1].0;
    assert!(
        left[0].0 <= older + 1,
        "journal starts at {} > {older} + 1",
        left[0].0
    );
    let mut seqs = Vec::new();
    for d in [&archive, &journal] {
        let first = segments(d).unwrap_or_default()[0].0;
        replay(d, first, |c| {
            seqs.push(c.seq());
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let last = *seqs.last().unwrap_or(&0);
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());

    // Restart on what is left: same orders, clean books, executions resume from a
    // position after the older snapshot.
    let restarted = TestServer::start_with(config);
    let mut m1 = Clients::of(&restarted, "m1").await;
    let after = live_orders(&mut m1, M1).await;
    let ids = |orders: &[pb::Order]| -> Vec<(u64, u64)> {
        orders.iter().map(|o| (o.order_id, o.leaves_t)).collect()
    };
    assert_eq!(ids(&after), ids(&before));
    let mut audit = Clients::of(&restarted, "audit").await;
    assert_audit_clean(&mut audit).await;
    let mut stream = executions(&mut m1, M1, Some((older + 1, 0)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
        .await
        .unwrap_or_else(|_| panic!("no execution report after the older snapshot"));
    let report = first
        .unwrap_or_else(|| panic!("stream ended"))
        .unwrap_or_else(|e| panic!("{e}"));
    let position = report.position.unwrap_or_default();
    assert!(position.sequence > older + 1, "{position:?}");
    drop(kept);
}
