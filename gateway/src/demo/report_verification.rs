//! The report's verification section: per sector, what the provinces' queue and the files
//! say (the same rows and files the API, `carbonx ctl verify` and the dashboard show), then
//! the refused consultants and the objection.

use std::collections::BTreeMap;
use std::fmt::Write;

use client::money::grouped as g;
use proto::v1 as pb;

use super::year::Year;
use super::{concurrently, fail};

/// One sector's line.
#[derive(Default)]
struct Line {
    files: u64,
    notified: u64,
    late: u64,
    corrected: u64,
    estimated: u64,
    objections: u64,
    reported_t: u64,
    verified_t: u64,
}

impl Year<'_> {
    /// Every row of the 2024 queue, nationally (as the ministry sees it).
    async fn queue_rows(&self) -> Result<Vec<pb::QueueRow>, String> {
        let mut v = self.who.ministry.verification.clone();
        let mut rows = Vec::new();
        loop {
            let page = v
                .list_verification_queue(pb::ListVerificationQueueRequest {
                    year: 2024,
                    province: String::new(),
                    offset: rows.len() as u32,
                    page_size: 1_000,
                })
                .await
                .map_err(fail("verification queue"))?
                .into_inner();
            let done = page.rows.is_empty() || rows.len() + page.rows.len() >= page.total as usize;
            rows.extend(page.rows);
            if done {
                return Ok(rows);
            }
        }
    }

    /// (corrected, estimated, objected) of each file, read as the auditor.
    async fn file_counts(&self, accounts: Vec<u64>) -> Result<BTreeMap<u64, [u64; 3]>, String> {
        let out = std::sync::Arc::new(parking_lot::Mutex::new(BTreeMap::new()));
        let (auditor, sink) = (self.who.auditor.clone(), out.clone());
        concurrently(accounts, move |account| {
            let (mut v, sink) = (auditor.verification.clone(), sink.clone());
            async move {
                let f = v
                    .get_verification_file(pb::GetVerificationFileRequest {
                        year: 2024,
                        account_id: account,
                    })
                    .await
                    .map_err(fail("verification file"))?
                    .into_inner();
                let count = |r: &str| f.findings.iter().filter(|x| x.resolution == r).count();
                let counts = [
                    count("corrected") as u64,
                    count("estimated") as u64,
                    u64::from(f.objected != 0),
                ];
                sink.lock().insert(account, counts);
                Ok(())
            }
        })
        .await?;
        let map = std::mem::take(&mut *out.lock());
        Ok(map)
    }

    pub(super) async fn verification_section(&self) -> Result<String, String> {
        let rows = self.queue_rows().await?;
        let counts = self
            .file_counts(rows.iter().map(|r| r.account_id).collect())
            .await?;
        let mut lines: BTreeMap<i32, Line> = BTreeMap::new();
        for r in &rows {
            let l = lines.entry(r.sector).or_default();
            let [corrected, estimated, objected] =
                counts.get(&r.account_id).copied().unwrap_or_default();
            l.files += 1;
            l.notified += u64::from(r.state == "notified");
            l.late += u64::from(r.late);
            l.corrected += corrected;
            l.estimated += estimated;
            l.objections += objected;
            l.reported_t += r.reported_t;
            l.verified_t += r.verified_t;
        }
        let mut report = String::new();
        let _ = writeln!(
            report,
            "Verification 2024 (industry; rules 2024.1: notified by 31 July; {} provinces, {} bodies)",
            super::market::PROVINCES.len(),
            super::verification::BODIES.len()
        );
        let _ = writeln!(
            report,
            "  {:<10} {:>6} {:>9} {:>5} {:>10} {:>10} {:>11} {:>14} {:>14}",
            "sector",
            "files",
            "notified",
            "late",
            "corrected",
            "estimated",
            "objections",
            "reported t",
            "verified t"
        );
        for (sector, l) in &lines {
            let name = client::names::sector(*sector);
            let _ = writeln!(
                report,
                "  {:<10} {:>6} {:>9} {:>5} {:>10} {:>10} {:>11} {:>14} {:>14}",
                name,
                g(l.files),
                g(l.notified),
                g(l.late),
                g(l.corrected),
                g(l.estimated),
                g(l.objections),
                g(l.reported_t),
                g(l.verified_t)
            );
        }
        let _ = writeln!(
            report,
            "  late: notified after the deadline (the files with findings, 4 August); {} assignments of an entity's own consultant refused (CONSULTANT_CONFLICT), another body assigned",
            self.verification.conflicts
        );
        if let Some(o) = &self.verification.objection {
            let _ = writeln!(
                report,
                "  objection by entity {} to its estimate, upheld; the re-review's conclusion: verified {} -> {} t, allocation {} -> {} t ({} t clawed back)",
                o.account,
                g(o.verified_t.0),
                g(o.verified_t.1),
                g(o.allocated_t.0),
                g(o.allocated_t.1),
                g(o.clawed_back_t)
            );
        }
        report.push('\n');
        Ok(report)
    }
}
