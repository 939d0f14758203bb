//! The compliance year's commands: plans, the ministry's CSV files, allocation runs,
//! compliance status, surrender, the year close and the reports.

use std::fmt::Write;
use std::path::Path;

use client::money::yuan;
use client::{Clients, failed, names, rejection_of};
use proto::v1 as pb;

/// Entities per LoadEntities request the CLI sends.
pub const CLI_ENTITIES_PER_REQUEST: usize = 1_000;
/// Activity or verified rows per request the CLI sends.
pub const CLI_ROWS_PER_REQUEST: usize = 5_000;

fn refused(s: tonic::Status) -> String {
    failed(&s)
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// A refused bulk request: a row error points back at the file's line.
fn failed_rows(status: tonic::Status, path: &Path, lines: &[usize]) -> String {
    if let Some(r) = rejection_of(&status)
        && let Some(rest) = r.field.strip_prefix("rows[")
        && let Some((index, column)) = rest.split_once("].")
        && let Some(line) = index.parse::<usize>().ok().and_then(|i| lines.get(i))
    {
        return format!(
            "{} line {line}, column {column}: refused: {}: {}",
            path.display(),
            r.reason,
            r.message
        );
    }
    format!("{}: {}", path.display(), failed(&status))
}

pub(super) async fn register_plan(c: &mut Clients, file: &Path) -> Result<String, String> {
    let text = read(file)?;
    let r = c
        .compliance
        .register_plan(pb::RegisterPlanRequest {
            idempotency_key: format!("plan-{:016x}", fnv(text.as_bytes())),
            plan_toml: text,
        })
        .await
        .map_err(|e| format!("{}: {}", file.display(), failed(&e)))?
        .into_inner();
    Ok(format!(
        "plan {} registered (journal entry {})\n",
        file.display(),
        r.journal_sequence
    ))
}

pub(super) async fn load_entities(c: &mut Clients, file: &Path) -> Result<String, String> {
    let text = read(file)?;
    let rows = client::csv::entities(&text).map_err(|e| format!("{} {e}", file.display()))?;
    let hash = fnv(text.as_bytes());
    let mut facilities = 0;
    for (n, chunk) in rows.chunks(CLI_ENTITIES_PER_REQUEST).enumerate() {
        let lines: Vec<usize> = chunk.iter().map(|(l, _)| *l).collect();
        facilities += chunk.iter().map(|(_, r)| r.facilities.len()).sum::<usize>();
        c.compliance
            .load_entities(pb::LoadEntitiesRequest {
                idempotency_key: format!("entities-{hash:016x}-{n}"),
                rows: chunk.iter().map(|(_, r)| r.clone()).collect(),
            })
            .await
            .map_err(|e| failed_rows(e, file, &lines))?;
    }
    Ok(format!(
        "{} entities with {facilities} facilities loaded from {}\n",
        rows.len(),
        file.display()
    ))
}

pub(super) async fn load_activity(
    c: &mut Clients,
    year: u32,
    file: &Path,
) -> Result<String, String> {
    let text = read(file)?;
    let rows = client::csv::activity(&text).map_err(|e| format!("{} {e}", file.display()))?;
    let hash = fnv(text.as_bytes());
    for (n, chunk) in rows.chunks(CLI_ROWS_PER_REQUEST).enumerate() {
        let lines: Vec<usize> = chunk.iter().map(|(l, _)| *l).collect();
        c.compliance
            .load_activity(pb::LoadActivityRequest {
                idempotency_key: format!("activity-{year}-{hash:016x}-{n}"),
                year,
                rows: chunk.iter().map(|(_, r)| r.clone()).collect(),
            })
            .await
            .map_err(|e| failed_rows(e, file, &lines))?;
    }
    Ok(format!(
        "{} activity rows for {year} loaded from {}\n",
        rows.len(),
        file.display()
    ))
}

pub(super) async fn record_verified(
    c: &mut Clients,
    year: u32,
    file: &Path,
) -> Result<String, String> {
    let text = read(file)?;
    let rows = client::csv::verified(&text).map_err(|e| format!("{} {e}", file.display()))?;
    let hash = fnv(text.as_bytes());
    let mut total = 0u64;
    for (n, chunk) in rows.chunks(CLI_ROWS_PER_REQUEST).enumerate() {
        let lines: Vec<usize> = chunk.iter().map(|(l, _)| *l).collect();
        total += chunk
            .iter()
            .map(|(_, r)| r.co2_t + r.pfc_co2e_t)
            .sum::<u64>();
        c.compliance
            .record_verified(pb::RecordVerifiedRequest {
                idempotency_key: format!("verified-{year}-{hash:016x}-{n}"),
                year,
                rows: chunk.iter().map(|(_, r)| *r).collect(),
            })
            .await
            .map_err(|e| failed_rows(e, file, &lines))?;
    }
    Ok(format!(
        "verified emissions of {} entities for {year} recorded: {total} t CO2e\n",
        rows.len()
    ))
}

pub(super) async fn allocate(
    c: &mut Clients,
    year: u32,
    plan: &str,
    pre: bool,
    csv_out: Option<&Path>,
) -> Result<String, String> {
    let (kind, name) = if pre {
        (pb::RunKind::PreAllocation, "pre-allocation")
    } else {
        (pb::RunKind::TrueUp, "true-up")
    };
    let tag = if pre { "pre" } else { "true-up" };
    let r = c
        .compliance
        .run_allocation(pb::RunAllocationRequest {
            idempotency_key: format!("run-{year}-{plan}-{tag}-{}", super::now_ns()),
            year,
            plan_version: plan.to_string(),
            kind: kind as i32,
        })
        .await
        .map_err(refused)?
        .into_inner();
    let what = if r.unchanged {
        "nothing to do (same plan and data as the last run)".to_string()
    } else {
        format!("journal entry {}", r.journal_sequence)
    };
    let mut out = format!("{name} {year} under plan {plan}: {what}\n");
    let _ = writeln!(
        out,
        "  {} entities, {} t allocated; {} t issued in all, {} t held for differentiated entities, {} t of deductions netted, {} t clawed back",
        r.entities, r.allocated_t, r.issued_t, r.held_t, r.deducted_t, r.clawed_back_t
    );
    if let Some(path) = csv_out {
        let csv = export(c, year, pb::Report::Allocation).await?;
        std::fs::write(path, &csv).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let _ = writeln!(
            out,
            "  allocation report ({} lines) written to {}",
            csv.lines().count().saturating_sub(1),
            path.display()
        );
    }
    Ok(out)
}

/// One entity's compliance for a year.
pub(super) async fn entity(c: &mut Clients, year: u32, account: u64) -> Result<String, String> {
    let c = c
        .compliance
        .get_compliance(pb::GetComplianceRequest {
            year,
            account_id: account,
        })
        .await
        .map_err(refused)?
        .into_inner();
    let mut out = format!(
        "{} {} ({}), {year}: {}\n",
        c.account_id, c.name, c.province, c.status_code
    );
    let _ = writeln!(
        out,
        "  obligation {} t, surrendered {} t CEA + {} t CCER, shortfall {} t",
        c.obligation_t, c.surrendered_cea_t, c.surrendered_ccer_t, c.shortfall_t
    );
    let _ = writeln!(
        out,
        "  pre-allocated {} t, allocated {} t ({} under plan {}), delivered {} t, held {} t, deducted {} t, clawed back {} t",
        c.pre_allocated_t,
        c.allocated_t,
        c.method,
        c.plan_version,
        c.delivered_t,
        c.held_t,
        c.deducted_t,
        c.clawed_back_t
    );
    if !c.explanation.is_empty() {
        let _ = writeln!(out, "  how: {}", c.explanation);
    }
    if c.closed {
        let _ = writeln!(
            out,
            "  closed: forced {} t, released {} t, penalty {} yuan",
            c.forced_t,
            c.released_t,
            yuan(c.penalty_fen)
        );
    }
    if c.deduction_owed_t > 0 {
        let _ = writeln!(out, "  deduction owed: {} t", c.deduction_owed_t);
    }
    Ok(out)
}

/// A year's totals by sector.
pub(super) async fn totals(c: &mut Clients, year: u32) -> Result<String, String> {
    let rows = c
        .compliance
        .get_totals(pb::GetTotalsRequest {
            year,
            by: pb::TotalsBy::Sector as i32,
        })
        .await
        .map_err(refused)?
        .into_inner()
        .rows;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:>8} {:>14} {:>14} {:>14} {:>12} {:>10} {:>6} {:>12} {:>18}",
        "sector",
        "entities",
        "obligation t",
        "allocated t",
        "surrendered t",
        "shortfall t",
        "compliant",
        "short",
        "not entered",
        "penalties yuan"
    );
    for t in rows {
        let _ = writeln!(
            out,
            "{:<10} {:>8} {:>14} {:>14} {:>14} {:>12} {:>10} {:>6} {:>12} {:>18}",
            t.key,
            t.entities,
            t.obligation_t,
            t.allocated_t,
            t.surrendered_t,
            t.shortfall_t,
            t.compliant,
            t.short,
            t.emissions_not_entered,
            yuan(t.penalty_fen)
        );
    }
    Ok(out)
}

/// A surrender as typed on the command line.
#[derive(Debug)]
pub(super) struct Surrender<'a> {
    pub account: u64,
    pub unit: &'a str,
    pub quantity_t: u64,
    pub year: u32,
    pub key: Option<&'a str>,
}

pub(super) async fn surrender(c: &mut Clients, s: &Surrender<'_>) -> Result<String, String> {
    let key = s.key.map_or_else(
        || format!("surrender-{}-{}", s.account, super::now_ns()),
        str::to_string,
    );
    let r = c
        .compliance
        .surrender(pb::SurrenderRequest {
            idempotency_key: key,
            account_id: s.account,
            unit: s.unit.to_string(),
            quantity_t: s.quantity_t,
            year: s.year,
        })
        .await
        .map_err(refused)?
        .into_inner();
    let status = c
        .compliance
        .get_compliance(pb::GetComplianceRequest {
            year: s.year,
            account_id: s.account,
        })
        .await
        .map_err(refused)?
        .into_inner();
    Ok(format!(
        "{} t of {} surrendered for {} (journal entry {}); now {} with {} t short\n",
        s.quantity_t,
        s.unit,
        s.year,
        r.journal_sequence,
        names::compliance_status(status.status),
        status.shortfall_t
    ))
}

pub(super) async fn close_year(
    c: &mut Clients,
    year: u32,
    force_reason: Option<&str>,
) -> Result<String, String> {
    let r = c
        .compliance
        .close_year(pb::CloseYearRequest {
            idempotency_key: format!("close-{year}"),
            year,
            force_reason: force_reason.unwrap_or_default().into(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    let mut out = format!(
        "{year} closed (journal entry {}) at an average price of {} yuan ({}): {} entities, {} compliant, {} short, {} without verified emissions\n",
        r.journal_sequence,
        yuan(r.average_price_fen),
        r.price_month,
        r.entities,
        r.compliant,
        r.short,
        r.emissions_not_entered
    );
    let _ = writeln!(
        out,
        "  shortfall {} t, penalties {} yuan; forced surrender {} t, released {} t",
        r.shortfall_t,
        yuan(r.penalty_fen),
        r.forced_t,
        r.released_t
    );
    if !r.force_reason.is_empty() {
        let _ = writeln!(
            out,
            "  closed on {} before the deadline: {}",
            client::names::date(r.close_date),
            r.force_reason
        );
    }
    Ok(out)
}

pub(super) async fn report(
    c: &mut Clients,
    year: u32,
    kind: &str,
    csv_out: Option<&Path>,
) -> Result<String, String> {
    let report = match kind {
        "allocation" => pb::Report::Allocation,
        "status" => pb::Report::Status,
        "sectors" => pb::Report::SectorTotals,
        "provinces" => pb::Report::ProvinceTotals,
        other => {
            return Err(format!(
                "report {other:?}: allocation, status, sectors or provinces"
            ));
        }
    };
    let csv = export(c, year, report).await?;
    let Some(path) = csv_out else {
        return Ok(csv);
    };
    std::fs::write(path, &csv).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(format!(
        "{kind} report for {year} ({} lines) written to {}\n",
        csv.lines().count().saturating_sub(1),
        path.display()
    ))
}

async fn export(c: &mut Clients, year: u32, report: pb::Report) -> Result<String, String> {
    let mut stream = c
        .compliance
        .export_report(pb::ExportReportRequest {
            year,
            report: report as i32,
        })
        .await
        .map_err(refused)?
        .into_inner();
    let mut csv = Vec::new();
    while let Some(chunk) = stream.message().await.map_err(refused)? {
        csv.extend(chunk.csv);
    }
    String::from_utf8(csv).map_err(|_| "the report is not UTF-8".to_string())
}
