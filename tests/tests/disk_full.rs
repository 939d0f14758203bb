//! A full disk: the data directory on a small loop-mounted file system, filled by another
//! writer. Every change is refused with one code (RESOURCE_EXHAUSTED, `DISK_FULL`), health
//! says NOT_SERVING, reads still answer, nothing is acknowledged that is not durable, and
//! the server takes changes again by itself once the space is back.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use proto::v1 as pb;
use tests::*;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A small ext4 file system, loop-mounted (needs root and loop devices, as this project's
/// machines have).
struct SmallDisk {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl SmallDisk {
    fn new(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let image = dir.path().join("disk.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir_all(&mnt).unwrap_or_else(|e| panic!("{e}"));
        run("truncate", &["-s", size, &image.display().to_string()]);
        run("mkfs.ext4", &["-q", "-F", &image.display().to_string()]);
        run(
            "mount",
            &[
                "-o",
                "loop",
                &image.display().to_string(),
                &mnt.display().to_string(),
            ],
        );
        SmallDisk { dir, mounted: true }
    }

    fn mount_point(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// Writes a ballast file until the file system refuses more (ENOSPC).
    fn fill(&self) -> PathBuf {
        let path = self.mount_point().join("ballast");
        let mut f = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{e}"));
        let chunk = vec![0xA5u8; 1 << 20];
        loop {
            match f.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc_enospc()) => break,
                Err(e) => panic!("ballast: {e}"),
            }
        }
        // Whatever fits in part of a block too.
        for n in [4_096usize, 512, 1] {
            while f.write_all(&chunk[..n]).is_ok() {}
        }
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(self.mount_point()).status();
        }
    }
}

fn libc_enospc() -> i32 {
    28
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed (this test needs root, loop devices and mkfs.ext4): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits on the health service's Watch stream (no polling) for `want`.
async fn health_becomes(server: &TestServer, want: ServingStatus) {
    let mut health = HealthClient::new(server.channel().await);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    loop {
        let status = tokio::time::timeout(std::time::Duration::from_secs(30), watch.message())
            .await
            .unwrap_or_else(|_| panic!("health never became {want:?}"))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("the health stream ended"));
        if status.status == want as i32 {
            return;
        }
    }
}

async fn order(m1: &mut Clients, client_order_id: u64) -> Result<u64, tonic::Status> {
    m1.trading
        .place_order(limit(M1, client_order_id, pb::Side::Sell, 9_000, 1))
        .await
        .map(|r| r.into_inner().order.unwrap_or_default().order_id)
}

fn config_on(data: &Path, reserve_bytes: u64, preallocate: bool) -> server::config::Config {
    let mut config = test_config(data);
    config.journal_preallocate = preallocate;
    config.limits.journal_segment_bytes = 4 << 20;
    config.limits.disk_reserve_bytes = reserve_bytes;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_every_change_and_recovers_when_space_returns() {
    let disk = SmallDisk::new("160M");
    let data = disk.mount_point().join("data");
    let server = TestServer::start_with(config_on(&data, 16 << 20, true));
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    let mut acked = Vec::new();
    for i in 0..10 {
        acked.push(
            order(&mut m1, 1 + i)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    health_becomes(&server, ServingStatus::Serving).await;

    let ballast = disk.fill();
    health_becomes(&server, ServingStatus::NotServing).await;
    // Every change: one code. Reads answer.
    let refused = order(&mut m1, 100).await.unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (tonic::Code::ResourceExhausted, "DISK_FULL")
    );
    let refused = m1
        .registry
        .propose_transfer(pb::TransferRequest {
            idempotency_key: "full-1".into(),
            from_account_id: M1,
            to_account_id: M2,
            unit: "CEA2025".into(),
            quantity_t: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "DISK_FULL");
    assert_eq!(live_orders(&mut m1, M1).await.len(), 10);
    // No half-made spare segment holds the last of the space.
    let spare = data.join("journal").join("next.spare");
    if let Ok(meta) = std::fs::metadata(&spare) {
        assert_eq!(meta.len(), 4 << 20, "a partial spare segment was left");
    }

    std::fs::remove_file(&ballast).unwrap_or_else(|e| panic!("{e}"));
    health_becomes(&server, ServingStatus::Serving).await;
    acked.push(order(&mut m1, 200).await.unwrap_or_else(|e| panic!("{e}")));
    server.stop().unwrap_or_else(|e| panic!("{e}"));

    // What was acknowledged is durable; what was refused never happened.
    let server = TestServer::start_with(config_on(&data, 16 << 20, true));
    let mut m1 = Clients::of(&server, "m1").await;
    let mut live: Vec<u64> = live_orders(&mut m1, M1)
        .await
        .iter()
        .map(|o| o.order_id)
        .collect();
    live.sort_unstable();
    assert_eq!(live, acked);
    let mut audit = Clients::of(&server, "audit").await;
    assert_audit_clean(&mut audit).await;
    server.stop().unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_write_that_finds_no_space_is_refused_whole() {
    // No reserve and no preallocation: the journal's own write meets ENOSPC.
    let disk = SmallDisk::new("96M");
    let data = disk.mount_point().join("data");
    let server = TestServer::start_with(config_on(&data, 0, false));
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    let ballast = disk.fill();
    // Orders go into the journal's last block while it has room; then one is refused.
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..100_000 {
        match order(&mut m1, 1 + i).await {
            Ok(id) => acked.push(id),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.unwrap_or_else(|| panic!("the full disk took 100,000 orders"));
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (tonic::Code::ResourceExhausted, "DISK_FULL")
    );
    // The disk still full: the server says so, and keeps refusing.
    health_becomes(&server, ServingStatus::NotServing).await;
    let refused = order(&mut m1, 400_000).await.unwrap_err();
    assert_eq!(reason(&refused), "DISK_FULL");
    std::fs::remove_file(&ballast).unwrap_or_else(|e| panic!("{e}"));
    // Taken again once there is room (the refused batches left nothing behind).
    health_becomes(&server, ServingStatus::Serving).await;
    acked.push(
        order(&mut m1, 500_000)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    );
    server.stop().unwrap_or_else(|e| panic!("{e}"));
    let server = TestServer::start_with(config_on(&data, 0, false));
    let mut m1 = Clients::of(&server, "m1").await;
    let mut live: Vec<u64> = live_orders(&mut m1, M1)
        .await
        .iter()
        .map(|o| o.order_id)
        .collect();
    live.sort_unstable();
    acked.sort_unstable();
    assert_eq!(live, acked, "every acknowledged order, and only those");
    server.stop().unwrap_or_else(|e| panic!("{e}"));
}
