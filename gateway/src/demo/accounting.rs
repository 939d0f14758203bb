//! The industrial entities' emissions accounting in the demo: each steel works, cement
//! company and smelter gets a monitoring plan and twelve months of 2024 data drawn from its
//! lines (fuel, materials and products per facility, as its energy manager would deposit
//! them), and its emissions are what the guideline's formulas compute from them: here, to
//! know what to expect, and on the server, where the deposits go (the demo checks the two
//! agree).

use proto::v1 as pb;
use sha2::{Digest, Sha256};

use super::Rng;

pub(super) const STEEL_FACTORS: &str = include_str!("../../../registry/factors/steel-2024.toml");
pub(super) const CEMENT_FACTORS: &str = include_str!("../../../registry/factors/cement-2024.toml");
pub(super) const ALUMINIUM_FACTORS: &str =
    include_str!("../../../registry/factors/aluminium-2024.toml");

/// The compliance year the demo accounts for.
pub(super) const YEAR: u32 = 2024;

/// One facility of a plant: its id, process and annual product, t.
#[derive(Clone, Copy, Debug)]
pub(super) struct PlantLine {
    pub facility_id: u32,
    pub process: pb::IndustrialProcess,
    pub output_t: u64,
}

/// An entity's plan and months, ready to send.
#[derive(Clone, Debug)]
pub(super) struct Accounting {
    pub plan: pb::SetMonitoringPlanRequest,
    pub months: Vec<pb::DepositMonthRequest>,
}

/// Hundredths of a tonne as the 2-place decimal string a deposit carries.
fn q(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn row(facility_id: u32, role: &str, item: &str, cents: u64) -> pb::EmissionsRow {
    pb::EmissionsRow {
        facility_id,
        role: role.into(),
        item: item.into(),
        quantity: q(cents),
    }
}

/// Per-entity rates, fixed for the year (per mille of the product).
struct Rates {
    coke: u64,
    coal: u64,
    gas: u64,
    extra: u64,
    slag: bool,
}

pub(super) fn accounting(
    rng: &mut Rng,
    id: u64,
    sector: pb::Sector,
    lines: &[PlantLine],
) -> Accounting {
    let rates = Rates {
        coke: rng.range(340, 370),
        coal: rng.range(130, 170),
        gas: rng.range(140, 160),
        extra: rng.range(40, 60),
        slag: rng.chance(20),
    };
    let months = (1..=12u32)
        .map(|m| {
            // Each month's product within 5% of a twelfth of the year's.
            let share: Vec<u64> = lines
                .iter()
                .map(|l| l.output_t * 100 * rng.range(95, 105) / 100 / 12)
                .collect();
            let rows = match sector {
                pb::Sector::Steel => steel_month(lines, &share, &rates),
                pb::Sector::Cement => cement_month(lines, &share, &rates),
                _ => aluminium_month(lines, &share, &rates),
            };
            let ledger = format!("monthly ledger {id} {YEAR}-{m:02}");
            pb::DepositMonthRequest {
                idempotency_key: format!("deposit-{id}-{m}"),
                account_id: id,
                year: YEAR,
                month: m,
                rows,
                evidence: vec![pb::EvidenceDocument {
                    kind: "monthly ledger".into(),
                    name: format!("ledger-{YEAR}-{m:02}.pdf"),
                    sha256: Sha256::digest(ledger.as_bytes()).to_vec(),
                    size_bytes: 40_000 + rng.range(0, 60_000),
                }],
                ..Default::default()
            }
        })
        .collect();
    Accounting {
        plan: plan(id, lines),
        months,
    }
}

fn plan(id: u64, lines: &[PlantLine]) -> pb::SetMonitoringPlanRequest {
    use pb::IndustrialProcess as P;
    let facilities = lines
        .iter()
        .map(|l| {
            let (kind, clinker) = match l.process {
                P::Ironmaking => ("ironmaking", ""),
                P::Sintering => ("sintering", ""),
                P::ClinkerLine => ("clinker_line", "portland"),
                P::Electrolysis => ("electrolysis", ""),
                _ => ("bof", ""),
            };
            pb::MonitoredFacility {
                id: l.facility_id,
                name: format!("{kind} {}", l.facility_id),
                kind: kind.into(),
                clinker_type: clinker.into(),
            }
        })
        .collect();
    pb::SetMonitoringPlanRequest {
        idempotency_key: format!("monitoring-plan-{id}"),
        account_id: id,
        year: YEAR,
        facilities,
        meters: vec![pb::Meter {
            id: "WB-01".into(),
            measures: "weighbridge, raw materials yard".into(),
            calibrated: 20_240_115,
        }],
        measured: Vec::new(),
    }
}

/// Blast furnaces (coke and injected coal in, BFG out), the sinter plant (coke breeze),
/// the BOF shop (converter gas out, crude steel); the enterprise buys the coke, coal and
/// fluxes and makes the crude steel.
fn steel_month(lines: &[PlantLine], share: &[u64], r: &Rates) -> Vec<pb::EmissionsRow> {
    use pb::IndustrialProcess as P;
    let iron: u64 = lines
        .iter()
        .zip(share)
        .filter(|(l, _)| l.process == P::Ironmaking)
        .map(|(_, s)| s)
        .sum();
    let crude = iron * 11 / 10;
    let sinter = iron * 13 / 10;
    let (mut coke, mut coal, mut rows) = (0, 0, Vec::new());
    for (l, s) in lines.iter().zip(share) {
        let f = l.facility_id;
        match l.process {
            P::Ironmaking => {
                let (c, p) = (s * r.coke / 1000, s * r.coal / 1000);
                coke += c;
                coal += p;
                rows.push(row(f, "consumed", "coke", c));
                rows.push(row(f, "consumed", "bituminous", p));
                rows.push(row(f, "produced", "bfg", s * r.gas / 1000));
                rows.push(row(f, "produced", "hot_metal", *s));
            }
            P::Sintering => {
                let breeze = sinter * 50 / 1000;
                coke += breeze;
                rows.push(row(f, "consumed", "coke", breeze));
                rows.push(row(f, "produced", "sinter", sinter));
            }
            _ => {
                rows.push(row(f, "produced", "bof_gas", crude * 9 / 1000));
                rows.push(row(f, "produced", "crude_steel", crude));
            }
        }
    }
    rows.extend([
        row(0, "consumed", "coke", coke),
        row(0, "consumed", "bituminous", coal),
        row(0, "consumed", "limestone", crude * r.extra / 1000),
        row(0, "consumed", "dolomite", crude * 20 / 1000),
        row(0, "consumed", "scrap", crude * 100 / 1000),
        row(0, "produced", "crude_steel", crude),
    ]);
    rows
}

/// Kiln coal per clinker line (some lines use carbide slag), diesel at the quarry.
fn cement_month(lines: &[PlantLine], share: &[u64], r: &Rates) -> Vec<pb::EmissionsRow> {
    let mut rows = Vec::new();
    for (l, s) in lines.iter().zip(share) {
        let f = l.facility_id;
        rows.push(row(f, "consumed", "bituminous", s * (r.coal - 20) / 1000));
        if r.slag && f == 1 {
            rows.push(row(f, "consumed", "carbide_slag", s * r.extra / 1000));
        }
        rows.push(row(f, "produced", "clinker", *s));
    }
    let clinker: u64 = share.iter().sum();
    rows.push(row(0, "consumed", "diesel", clinker / 2000));
    rows
}

/// Anodes per pot line; natural gas elsewhere in the smelter.
fn aluminium_month(lines: &[PlantLine], share: &[u64], r: &Rates) -> Vec<pb::EmissionsRow> {
    let mut rows = Vec::new();
    for (l, s) in lines.iter().zip(share) {
        rows.push(row(
            l.facility_id,
            "consumed",
            "prebaked_anode",
            s * (r.coke + 60) / 1000,
        ));
        rows.push(row(l.facility_id, "produced", "liquid_aluminium", *s));
    }
    let metal: u64 = share.iter().sum();
    rows.push(row(0, "consumed", "natural_gas", metal * 3 / 1000));
    rows
}

/// The factors file of a sector.
pub(super) fn factors_of(sector: pb::Sector) -> &'static str {
    match sector {
        pb::Sector::Steel => STEEL_FACTORS,
        pb::Sector::Cement => CEMENT_FACTORS,
        _ => ALUMINIUM_FACTORS,
    }
}

/// (CO2, PFCs as CO2e), t: what the guideline's formulas give for the entity's year.
pub(super) fn computed(sector: pb::Sector, a: &Accounting) -> Result<(u64, u64), String> {
    let factors =
        mrv::factors::Factors::from_toml(factors_of(sector)).map_err(|e| e.to_string())?;
    let year = YEAR as u16;
    let plan = server::services::emissions_convert::plan_in(&a.plan, year, factors.sector)
        .map_err(|e| e.message)?;
    let months = a
        .months
        .iter()
        .map(|m| server::services::emissions_convert::month_in(m, year).map_err(|e| e.message))
        .collect::<Result<Vec<_>, _>>()?;
    let report = mrv::compute(&factors, &plan, &months).map_err(|e| e.to_string())?;
    Ok((report.co2_t, report.pfc_co2e_t))
}

/// The phase, on the demo's calendar: the ministry registers the three guidelines'
/// factors for 2024 and each industrial entity sets its monitoring plan (January 2024);
/// each month is deposited on the 10th of the next, within the 40 days the guideline gives;
/// the reports are submitted in March 2025 and checked against what the formulas gave here.
/// Verification follows (`verification.rs`).
pub(super) async fn account_for_2024(
    who: &super::year::Who,
    entities: &[super::market::Entity],
    clock: &super::calendar::DemoClock,
) -> Result<(), String> {
    clock.set(super::calendar::dates::MONITORING_PLANS);
    let mut ministry = who.ministry.emissions.clone();
    for (sector, text) in [
        ("steel", STEEL_FACTORS),
        ("cement", CEMENT_FACTORS),
        ("aluminium", ALUMINIUM_FACTORS),
    ] {
        ministry
            .register_factors(pb::RegisterFactorsRequest {
                idempotency_key: format!("factors-{sector}-{YEAR}"),
                year: YEAR,
                factors_toml: text.into(),
            })
            .await
            .map_err(super::fail("factors"))?;
    }
    let industrial = || entities.iter().filter(|e| e.accounting.is_some());
    let work = |pick: &dyn Fn(&Accounting) -> Option<Request>| -> Vec<(client::Clients, Request)> {
        industrial()
            .filter_map(|e| e.accounting.as_ref().and_then(pick))
            .map(|r| (who.of(r.account()), r))
            .collect()
    };
    super::concurrently(work(&|a| Some(Request::Plan(a.plan.clone()))), send).await?;
    for m in 1..=12u32 {
        let (y, next) = if m == 12 {
            (YEAR + 1, 1)
        } else {
            (YEAR, m + 1)
        };
        clock.set(y * 10_000 + next * 100 + 10);
        let month = |a: &Accounting| a.months.get(m as usize - 1).cloned().map(Request::Month);
        super::concurrently(work(&month), send).await?;
    }
    clock.set(super::calendar::dates::REPORTS);
    let reports: Vec<(client::Clients, Request)> = industrial()
        .map(|e| (who.of(e.id), Request::Report(e.id, e.verified())))
        .collect();
    super::concurrently(reports, send).await
}

/// One of an energy manager's requests.
enum Request {
    Plan(pb::SetMonitoringPlanRequest),
    Month(pb::DepositMonthRequest),
    /// Submit the account's report, expecting this total, t.
    Report(u64, u64),
}

impl Request {
    fn account(&self) -> u64 {
        match self {
            Request::Plan(p) => p.account_id,
            Request::Month(m) => m.account_id,
            Request::Report(id, _) => *id,
        }
    }
}

async fn send((c, request): (client::Clients, Request)) -> Result<(), String> {
    let mut e = c.emissions;
    match request {
        Request::Plan(plan) => e
            .set_monitoring_plan(plan)
            .await
            .map(drop)
            .map_err(super::fail("monitoring plan")),
        Request::Month(month) => e
            .deposit_month(month)
            .await
            .map(drop)
            .map_err(super::fail("deposit")),
        Request::Report(id, expected_t) => submit_report(&mut e, id, expected_t).await,
    }
}

/// Submits the report and checks the registry computed what the formulas gave here.
async fn submit_report(
    e: &mut client::EmissionsServiceClient<client::Authed>,
    id: u64,
    expected_t: u64,
) -> Result<(), String> {
    e.submit_report(pb::SubmitReportRequest {
        idempotency_key: format!("report-{id}-{YEAR}"),
        account_id: id,
        year: YEAR,
    })
    .await
    .map_err(super::fail("report"))?;
    let report = e
        .get_emissions_report(pb::GetEmissionsReportRequest {
            account_id: id,
            year: YEAR,
        })
        .await
        .map_err(super::fail("report"))?
        .into_inner();
    if report.total_t != expected_t {
        return Err(format!(
            "account {id}: the registry computed {} t, the demo {expected_t} t",
            report.total_t
        ));
    }
    Ok(())
}
