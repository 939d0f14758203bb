//! `carbonx ctl emissions ...`: the ministry registers factors; a covered entity's energy
//! manager sets its monitoring plan, deposits each month from a CSV file with its evidence
//! files (hashed here: only the SHA-256, size and name travel), submits the annual report;
//! the verifier confirms it. `report` prints the report, or writes it as CSV.
//!
//! The month file (`record,facility_id,role,item,quantity,evidence`; facility 0 is the
//! enterprise):
//!
//! ```text
//! record,facility_id,role,item,quantity,evidence
//! row,0,consumed,bituminous,10000.00,
//! row,3,produced,hot_metal,90000.00,
//! reading,0,ncv,bituminous,24.000,CNAS L1234 2025-01
//! stoppage,2,,,3,
//! ```
//!
//! A reading's `role` column is its parameter and its `item` the fuel; a stoppage's
//! `quantity` is its days.

use std::path::{Path, PathBuf};

use client::{Clients, failed};
use proto::v1 as pb;
use sha2::{Digest, Sha256};

/// What `carbonx ctl emissions` does.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum EmissionsCmd {
    /// Register a guideline's factors file for a year (the authority).
    Factors {
        #[arg(long)]
        year: u32,
        file: PathBuf,
    },
    /// Set or revise an entity's monitoring plan for a year, from a TOML file.
    Plan {
        account: u64,
        #[arg(long)]
        year: u32,
        file: PathBuf,
    },
    /// Deposit a month's data from a CSV file, with its evidence files.
    Deposit {
        account: u64,
        #[arg(long)]
        year: u32,
        #[arg(long)]
        month: u32,
        file: PathBuf,
        /// `KIND=PATH`, e.g. "fuel ledger=ledger-2025-01.pdf"; repeat for each document.
        #[arg(long)]
        evidence: Vec<String>,
        /// A new version of a month deposited before.
        #[arg(long)]
        correction: bool,
    },
    /// Submit the annual report, assembled from the twelve months.
    Submit {
        account: u64,
        #[arg(long)]
        year: u32,
    },
    /// Confirm the submitted report into the compliance cycle (the verifier).
    Confirm {
        account: u64,
        #[arg(long)]
        year: u32,
    },
    /// The annual report: emissions by term and facility, each line's working.
    Report {
        account: u64,
        #[arg(long)]
        year: u32,
        /// Write CSV here instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub(super) async fn run(c: &mut Clients, cmd: &EmissionsCmd) -> Result<String, String> {
    match cmd {
        EmissionsCmd::Factors { year, file } => factors(c, *year, file).await,
        EmissionsCmd::Plan {
            account,
            year,
            file,
        } => plan(c, *account, *year, file).await,
        EmissionsCmd::Deposit {
            account,
            year,
            month,
            file,
            evidence,
            correction,
        } => {
            let mut request = month_file(file, *account, *year, *month)?;
            request.evidence = evidence
                .iter()
                .map(|e| document(e))
                .collect::<Result<_, _>>()?;
            request.correction = *correction;
            deposit(c, request).await
        }
        EmissionsCmd::Submit { account, year } => submit(c, *account, *year).await,
        EmissionsCmd::Confirm { account, year } => confirm(c, *account, *year).await,
        EmissionsCmd::Report { account, year, out } => {
            report(c, *account, *year, out.as_deref()).await
        }
    }
}

fn read(file: &Path) -> Result<String, String> {
    std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))
}

async fn factors(c: &mut Clients, year: u32, file: &Path) -> Result<String, String> {
    let factors_toml = read(file)?;
    let r = c
        .emissions
        .register_factors(pb::RegisterFactorsRequest {
            idempotency_key: format!("factors-{year}-{}", super::now_ns()),
            year,
            factors_toml,
        })
        .await
        .map_err(|s| failed(&s))?
        .into_inner();
    Ok(match r.journal_sequence {
        0 => format!("{} is registered for {year} already\n", file.display()),
        seq => format!(
            "factors {} registered for {year} (journal entry {seq})\n",
            file.display()
        ),
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    #[serde(default)]
    facilities: Vec<FacilityFile>,
    #[serde(default)]
    meters: Vec<MeterFile>,
    #[serde(default)]
    measured: Vec<MeasuredFile>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FacilityFile {
    id: u32,
    name: String,
    kind: String,
    #[serde(default)]
    clinker_type: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MeterFile {
    id: String,
    measures: String,
    calibrated: u32,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MeasuredFile {
    parameter: String,
    #[serde(default)]
    fuel: String,
    #[serde(default)]
    facility_id: u32,
}

async fn plan(c: &mut Clients, account: u64, year: u32, file: &Path) -> Result<String, String> {
    let p: PlanFile =
        toml::from_str(&read(file)?).map_err(|e| format!("{}: {}", file.display(), e.message()))?;
    let request = pb::SetMonitoringPlanRequest {
        idempotency_key: format!("monitoring-plan-{account}-{year}-{}", super::now_ns()),
        account_id: account,
        year,
        facilities: p
            .facilities
            .into_iter()
            .map(|f| pb::MonitoredFacility {
                id: f.id,
                name: f.name,
                kind: f.kind,
                clinker_type: f.clinker_type,
            })
            .collect(),
        meters: p
            .meters
            .into_iter()
            .map(|m| pb::Meter {
                id: m.id,
                measures: m.measures,
                calibrated: m.calibrated,
            })
            .collect(),
        measured: p
            .measured
            .into_iter()
            .map(|m| pb::MeasuredParameter {
                parameter: m.parameter,
                fuel: m.fuel,
                facility_id: m.facility_id,
            })
            .collect(),
    };
    let (facilities, meters) = (request.facilities.len(), request.meters.len());
    let r = c
        .emissions
        .set_monitoring_plan(request)
        .await
        .map_err(|s| failed(&s))?
        .into_inner();
    Ok(match r.journal_sequence {
        0 => format!("the {year} monitoring plan of account {account} is unchanged\n"),
        seq => format!(
            "monitoring plan {year} of account {account} set: {facilities} facilities, {meters} meters (journal entry {seq})\n"
        ),
    })
}

/// A month's CSV file as a request (evidence and correction added by the caller).
pub fn month_file(
    file: &Path,
    account: u64,
    year: u32,
    month: u32,
) -> Result<pb::DepositMonthRequest, String> {
    let text = read(file)?;
    let mut request = pb::DepositMonthRequest {
        idempotency_key: format!("deposit-{account}-{year}-{month}-{}", super::now_ns()),
        account_id: account,
        year,
        month,
        ..Default::default()
    };
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let at = |col: usize, why: &str| {
            format!("{}: line {}, column {col}: {why}", file.display(), n + 1)
        };
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if cols.len() != 6 {
            return Err(at(
                1,
                "6 columns: record,facility_id,role,item,quantity,evidence",
            ));
        }
        let facility_id = cols[1]
            .parse::<u32>()
            .map_err(|_| at(2, "a facility id (0: the enterprise)"))?;
        match cols[0] {
            "row" => request.rows.push(pb::EmissionsRow {
                facility_id,
                role: cols[2].into(),
                item: cols[3].into(),
                quantity: cols[4].into(),
            }),
            "reading" => request.readings.push(pb::ParameterReading {
                parameter: cols[2].into(),
                fuel: cols[3].into(),
                facility_id,
                value: cols[4].into(),
                evidence: cols[5].into(),
            }),
            "stoppage" => request.stoppages.push(pb::Stoppage {
                facility_id,
                days: cols[4].parse().map_err(|_| at(5, "days, a whole number"))?,
            }),
            _ => return Err(at(1, "record is row, reading or stoppage")),
        }
    }
    Ok(request)
}

/// `KIND=PATH`: the file hashed here; only its SHA-256, size and name are sent.
fn document(arg: &str) -> Result<pb::EvidenceDocument, String> {
    let Some((kind, path)) = arg.split_once('=') else {
        return Err(format!("--evidence {arg:?}: write KIND=PATH"));
    };
    let bytes = std::fs::read(path).map_err(|e| format!("--evidence {path}: {e}"))?;
    let name = Path::new(path)
        .file_name()
        .map_or(path.into(), |n| n.to_string_lossy().into_owned());
    Ok(pb::EvidenceDocument {
        kind: kind.trim().into(),
        name,
        sha256: Sha256::digest(&bytes).to_vec(),
        size_bytes: bytes.len() as u64,
    })
}

async fn deposit(c: &mut Clients, request: pb::DepositMonthRequest) -> Result<String, String> {
    let (account, year, month) = (request.account_id, request.year, request.month);
    let rows = request.rows.len();
    let r = c
        .emissions
        .deposit_month(request)
        .await
        .map_err(|s| failed(&s))?
        .into_inner();
    let got = c
        .emissions
        .get_month(pb::GetMonthRequest {
            account_id: account,
            year,
            month,
        })
        .await
        .map_err(|s| failed(&s))?
        .into_inner();
    let version = got.versions.last().map_or(0, |v| v.version);
    let late = got.versions.last().is_some_and(|v| v.late);
    let stale = got
        .versions
        .last()
        .map_or(String::new(), |v| v.stale_meters.join(", "));
    let mut out = format!(
        "{year}-{month:02} of account {account} deposited: {rows} rows, version {version} (journal entry {})\n",
        r.journal_sequence
    );
    if late {
        out.push_str("  late: after the 40 days the guideline gives (accepted, flagged)\n");
    }
    if !stale.is_empty() {
        out.push_str(&format!(
            "  meters past their 12-month calibration: {stale}\n"
        ));
    }
    Ok(out)
}

async fn submit(c: &mut Clients, account: u64, year: u32) -> Result<String, String> {
    let r = c
        .emissions
        .submit_report(pb::SubmitReportRequest {
            idempotency_key: format!("report-{account}-{year}-{}", super::now_ns()),
            account_id: account,
            year,
        })
        .await
        .map_err(|s| failed(&s))?
        .into_inner();
    let report = get(c, account, year).await?;
    Ok(format!(
        "{year} emissions report of account {account} submitted: {} t (journal entry {})\n",
        client::money::grouped(report.total_t),
        r.journal_sequence
    ))
}

async fn confirm(c: &mut Clients, account: u64, year: u32) -> Result<String, String> {
    let r = c
        .emissions
        .confirm_report(pb::ConfirmReportRequest {
            idempotency_key: format!("confirm-{account}-{year}-{}", super::now_ns()),
            account_id: account,
            year,
        })
        .await
        .map_err(|s| failed(&s))?
        .into_inner();
    Ok(format!(
        "{year} emissions report of account {account} confirmed into the compliance cycle (journal entry {})\n",
        r.journal_sequence
    ))
}

async fn get(c: &mut Clients, account: u64, year: u32) -> Result<pb::EmissionsReport, String> {
    c.emissions
        .get_emissions_report(pb::GetEmissionsReportRequest {
            account_id: account,
            year,
        })
        .await
        .map_err(|s| failed(&s))
        .map(tonic::Response::into_inner)
}

async fn report(
    c: &mut Clients,
    account: u64,
    year: u32,
    out: Option<&Path>,
) -> Result<String, String> {
    let r = get(c, account, year).await?;
    match out {
        Some(path) => {
            std::fs::write(path, report_csv(&r)).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(format!(
                "{} lines written to {}\n",
                r.lines.len(),
                path.display()
            ))
        }
        None => Ok(report_text(&r)),
    }
}

fn where_(facility_id: u32) -> String {
    match facility_id {
        0 => "enterprise".into(),
        id => format!("facility {id}"),
    }
}

/// The report as the entity and the verifier read it.
pub fn report_text(r: &pb::EmissionsReport) -> String {
    let mut out = format!(
        "{} by {} (factors {}), version {}, submitted {}\n",
        "emissions report", r.guideline, r.factors_version, r.version, r.submitted
    );
    for l in &r.lines {
        out.push_str(&format!(
            "  {:<12} {:<22} {:<20} {}\n",
            where_(l.facility_id),
            l.term,
            l.item,
            l.working
        ));
    }
    for f in &r.facilities {
        out.push_str(&format!(
            "  facility {} {} ({}): {} t, product {} t{}\n",
            f.id,
            f.name,
            f.kind,
            f.emissions_t,
            f.output_t,
            if f.intensity.is_empty() {
                String::new()
            } else {
                format!(", intensity {}", f.intensity)
            }
        ));
    }
    out.push_str(&format!(
        "  enterprise {} t -> total {} t (CO2 {}, PFCs {} t CO2e)\n",
        r.enterprise_t,
        client::money::grouped(r.total_t),
        client::money::grouped(r.co2_t),
        client::money::grouped(r.pfc_co2e_t)
    ));
    if !r.steel_intensity.is_empty() {
        out.push_str(&format!(
            "  steel intensity (ironmaking + sintering) / iron: {}\n",
            r.steel_intensity
        ));
    }
    out
}

/// The report's lines as CSV: one per emissions line, with its working.
pub fn report_csv(r: &pb::EmissionsReport) -> String {
    let mut out = String::from("facility_id,term,item,emissions_t,working\n");
    for l in &r.lines {
        out.push_str(&format!(
            "{},{},{},{},\"{}\"\n",
            l.facility_id, l.term, l.item, l.emissions_t, l.working
        ));
    }
    out.push_str(&format!(",total,,{},\n", r.total_t));
    out
}
