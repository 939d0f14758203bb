//! Carry-over of old vintages: the ministry fixes the limits and converts, an entity
//! applies and reads its limit.

use client::money::grouped;
use client::{Clients, failed};
use proto::v1 as pb;

pub(super) async fn fix(c: &mut Clients, year: u32, plan: &str) -> Result<String, String> {
    let r = c
        .carry_over
        .fix_carry_over(pb::FixCarryOverRequest {
            idempotency_key: format!("carry-over-fix-{year}-{plan}"),
            year,
            plan_version: plan.to_string(),
        })
        .await
        .map_err(|s| failed(&s))?
        .into_inner();
    Ok(format!(
        "carry-over limits into {year} fixed under plan {plan} (journal entry {})\n",
        r.journal_sequence
    ))
}

/// What `carbonx ctl apply-carry-over` asks for.
#[derive(Debug)]
pub(super) struct Application<'a> {
    pub year: u32,
    pub account: u64,
    pub unit: &'a str,
    pub quantity_t: u64,
}

pub(super) async fn apply(c: &mut Clients, a: &Application<'_>) -> Result<String, String> {
    let r = c
        .carry_over
        .apply_carry_over(pb::ApplyCarryOverRequest {
            idempotency_key: format!("carry-over-{}-{}", a.account, super::now_ns()),
            year: a.year,
            account_id: a.account,
            unit: a.unit.to_string(),
            quantity_t: a.quantity_t,
        })
        .await
        .map_err(|s| failed(&s))?
        .into_inner();
    let limit = show(c, a.year, a.account).await?;
    Ok(format!(
        "{} t of {} applied for carry-over into {} (journal entry {})\n{limit}",
        grouped(a.quantity_t),
        a.unit,
        a.year,
        r.journal_sequence
    ))
}

pub(super) async fn convert(c: &mut Clients, year: u32) -> Result<String, String> {
    let r = c
        .carry_over
        .convert_carry_over(pb::ConvertCarryOverRequest {
            idempotency_key: format!("carry-over-convert-{year}-{}", super::now_ns()),
            year,
        })
        .await
        .map_err(|s| failed(&s))?
        .into_inner();
    Ok(match r.journal_sequence {
        0 => format!("no open carry-over applications into {year}\n"),
        seq => format!("carry-over applications into {year} converted (journal entry {seq})\n"),
    })
}

pub(super) async fn show(c: &mut Clients, year: u32, account: u64) -> Result<String, String> {
    let q = c
        .carry_over
        .get_carry_over(pb::GetCarryOverRequest {
            year,
            account_id: account,
        })
        .await
        .map_err(|s| failed(&s))?
        .into_inner();
    let barred = if q.barred {
        "  BARRED (short in an earlier year)"
    } else {
        ""
    };
    let net_sales = match q.net_sales_t {
        n if n < 0 => format!("-{}", grouped(n.unsigned_abs())),
        n => grouped(n.unsigned_abs()),
    };
    Ok(format!(
        "account {account} into {year} (plan {}): net sales {net_sales} t, formula {} t, holdings {} t, limit {} t, applied {} t{barred}\n",
        q.plan_version,
        grouped(q.formula_t),
        grouped(q.holdings_t),
        grouped(q.limit_t),
        grouped(q.applied_t)
    ))
}
