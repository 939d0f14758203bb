#![allow(clippy::float_arithmetic)] // reporting rates and sizes, not state
//! Journal and recovery figures: replay speed and recovery time of a long journal, with and
//! without a recent snapshot; journal append throughput with one fsync per batch.
//!
//! `cargo run --release -p benches --bin recovery -- [commands] [dir]`
//! (default 10,000,000 commands, in a temporary directory under the system temp dir).

use std::path::Path;
use std::time::Instant;

use benches::workload::{Workload, setup_recorded};
use engine::{Command, Engine};
use journal::Journal;

const SEGMENT_BYTES: u64 = 64 << 20;

fn per_second(n: u64, secs: f64) -> f64 {
    n as f64 / secs
}

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let base = args.next().map(std::path::PathBuf::from);
    let dir = match &base {
        Some(b) => tempfile::tempdir_in(b),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    println!(
        "# recovery benchmark: {total} commands, Command is {} bytes in memory, dir {}",
        std::mem::size_of::<Command>(),
        dir.path().display()
    );

    let t = Instant::now();
    let (setup_engine, setup) = setup_recorded(1_000, 1 << 16, 1_000, Some(1_000), false);
    let config = *setup_engine.config();
    let workload = Workload::record(20_261_128, 1_000, 50_000, total - setup.len());
    let commands: Vec<Command> = setup.into_iter().chain(workload.commands).collect();
    println!("workload recorded in {:.1} s", t.elapsed().as_secs_f64());

    // The journal, written in batches of 4,096 (no fsync: the write itself is not measured).
    let jdir = dir.path().join("journal");
    let t = Instant::now();
    {
        let (mut j, _) = Journal::open(&jdir, SEGMENT_BYTES).expect("journal");
        for chunk in commands.chunks(4_096) {
            for c in chunk {
                j.append(c).expect("append");
            }
            j.commit(false).expect("commit");
        }
        j.flush().expect("flush");
    }
    let bytes: u64 = journal::segments(&jdir)
        .expect("segments")
        .iter()
        .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    println!(
        "journal written: {} records, {:.0} MiB, {} segments, {:.1} s",
        commands.len(),
        bytes as f64 / (1 << 20) as f64,
        journal::segments(&jdir).map(|s| s.len()).unwrap_or(0),
        t.elapsed().as_secs_f64()
    );
    let snapshot_at = commands.len() as u64 - 100_000;
    drop(commands);

    // Recovery without a snapshot: open (tail check) + full replay into a fresh engine.
    let t = Instant::now();
    let (_j, report) = Journal::open(&jdir, SEGMENT_BYTES).expect("open");
    let mut engine = Engine::new(config);
    let mut out = Vec::with_capacity(256);
    let mut snapshot = None;
    let mut snapshot_secs = 0.0;
    let mut seal_secs = 0.0;
    let replayed = journal::replay(&jdir, 1, |record| {
        let journal::Record::Engine(c) = record else {
            return engine.pass(record.seq()).map_err(|e| format!("{e:?}"));
        };
        out.clear();
        engine.apply(c, &mut out).map_err(|e| format!("{e:?}"))?;
        if c.seq == snapshot_at {
            // As the server does: the copy on the engine thread, the checksum on the
            // snapshot writer's.
            let s = Instant::now();
            let mut bytes = engine.snapshot_unsealed();
            snapshot_secs = s.elapsed().as_secs_f64();
            let s = Instant::now();
            engine::seal_snapshot(&mut bytes);
            seal_secs = s.elapsed().as_secs_f64();
            snapshot = Some(bytes);
        }
        Ok(())
    })
    .expect("replay");
    let full = t.elapsed().as_secs_f64() - snapshot_secs - seal_secs;
    println!(
        "recovery without snapshot: {replayed} commands replayed in {full:.2} s = {:.0} commands/s (open {} records checked)",
        per_second(replayed, full),
        report.records
    );
    let state = engine.state_hash();
    let live = engine.live_orders();

    // Recovery with a snapshot 100,000 commands old.
    let bytes = snapshot.expect("snapshot taken");
    println!(
        "snapshot at {snapshot_at}: {:.1} MiB, copied on the engine thread in {:.1} ms ({live} resting orders), checksum on the writer's in {:.1} ms",
        bytes.len() as f64 / (1 << 20) as f64,
        snapshot_secs * 1e3,
        seal_secs * 1e3
    );
    let sdir = dir.path().join("snapshots");
    let t = Instant::now();
    server::snapshot::write(
        &sdir,
        snapshot_at,
        &server::snapshot::encode(snapshot_at, &bytes, &[], &[]),
    )
    .expect("write snapshot");
    println!(
        "snapshot file written and fsync'd in {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let (_j, _) = Journal::open(&jdir, SEGMENT_BYTES).expect("open");
    let (loaded, skipped) = server::snapshot::load_newest(&sdir, u64::MAX).expect("load");
    assert!(skipped.is_empty(), "{skipped:?}");
    let loaded = loaded.expect("snapshot");
    let load_secs = t.elapsed().as_secs_f64();
    let mut engine = loaded.engine;
    let replayed = journal::replay(&jdir, snapshot_at + 1, |record| {
        let journal::Record::Engine(c) = record else {
            return engine.pass(record.seq()).map_err(|e| format!("{e:?}"));
        };
        out.clear();
        engine
            .apply(c, &mut out)
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    })
    .expect("replay");
    let with = t.elapsed().as_secs_f64();
    assert_eq!(
        engine.state_hash(),
        state,
        "the snapshot path reached another state"
    );
    println!(
        "recovery with a snapshot: load {load_secs:.3} s + {replayed} commands replayed = {with:.3} s in all (same state hash as the full replay)"
    );

    // Append throughput with one fsync per batch.
    let sample: Vec<Command> = {
        let (_, setup) = setup_recorded(1_000, 1 << 16, 1_000, Some(1_000), false);
        let w = Workload::record(7, 1_000, 10_000, 400_000);
        setup.into_iter().chain(w.commands).collect()
    };
    for (batch, batches) in [(1usize, 2_000usize), (64, 2_000), (1_024, 300)] {
        let adir = dir.path().join(format!("append-{batch}"));
        let (mut j, _) = Journal::open(&adir, SEGMENT_BYTES).expect("journal");
        let n = (batch * batches).min(sample.len());
        let t = Instant::now();
        for chunk in sample[..n].chunks(batch) {
            for c in chunk {
                j.append(c).expect("append");
            }
            j.commit(true).expect("commit");
        }
        let secs = t.elapsed().as_secs_f64();
        let done = n.div_ceil(batch);
        println!(
            "append, fsync per batch of {batch:>5}: {:>10.0} commands/s, {:>7.0} fsyncs/s, {:.3} ms per batch",
            per_second(n as u64, secs),
            per_second(done as u64, secs),
            secs * 1e3 / done as f64
        );
        let _ = std::fs::remove_dir_all(Path::new(&adir));
    }
}
