//! `carbonx ctl verify ...`: each step of the verification of an annual report, as the
//! party that takes it (the ministry registers the year's rules; a province registers
//! bodies, records consultancies, assigns, notifies and decides objections; a body's staff
//! review, raise and resolve findings, conclude; the entity objects), and the file and
//! queue as the API returns them. Who acts is the token's principal.

use std::path::PathBuf;

use client::{Clients, failed};
use proto::v1 as pb;

/// What `carbonx ctl verify` does.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum VerifyCmd {
    /// Register a year's verification rules from a TOML file (the authority).
    Rules { file: PathBuf },
    /// Register (or rename) a verification body.
    Body {
        body: u32,
        name: String,
        #[arg(long, default_value = "")]
        credit_code: String,
    },
    /// Record that a body served an entity as its consultant in a year.
    Engage {
        account: u64,
        #[arg(long)]
        year: u32,
        #[arg(long)]
        body: u32,
    },
    /// Assign a body to an entity's submitted report.
    Assign {
        account: u64,
        #[arg(long)]
        year: u32,
        #[arg(long)]
        body: u32,
    },
    /// Start the document review (`document_review`) or record the on-site check
    /// (`on_site`).
    Review {
        account: u64,
        #[arg(long)]
        year: u32,
        #[arg(long)]
        stage: String,
    },
    /// Raise a finding on a month's parameter (`--parameter ncv --fuel bituminous`) or
    /// quantity (`--role consumed --item coke [--facility 3]`).
    Finding {
        account: u64,
        #[arg(long)]
        year: u32,
        #[arg(long)]
        month: u32,
        #[arg(long, default_value = "")]
        parameter: String,
        #[arg(long, default_value = "")]
        fuel: String,
        #[arg(long, default_value_t = 0)]
        facility: u32,
        #[arg(long, default_value = "")]
        role: String,
        #[arg(long, default_value = "")]
        item: String,
        #[arg(long)]
        text: String,
    },
    /// Close a finding: corrected (no `--estimate`) or estimated conservatively.
    Resolve {
        account: u64,
        #[arg(long)]
        year: u32,
        #[arg(long)]
        finding: u32,
        #[arg(long, default_value = "")]
        estimate: String,
    },
    /// The body's conclusion.
    Conclude {
        account: u64,
        #[arg(long)]
        year: u32,
    },
    /// Notify the conclusion to the entity: the year's verified emissions.
    Notify {
        account: u64,
        #[arg(long)]
        year: u32,
    },
    /// Object to the notified conclusion (the entity).
    Object {
        account: u64,
        #[arg(long)]
        year: u32,
        #[arg(long)]
        reason: String,
    },
    /// Decide an objection: `--uphold` starts a re-review; without it, dismissed.
    Decide {
        account: u64,
        #[arg(long)]
        year: u32,
        #[arg(long)]
        uphold: bool,
        #[arg(long)]
        reason: String,
    },
    /// An entity's verification file: findings, conclusions, objection, every step.
    File {
        account: u64,
        #[arg(long)]
        year: u32,
    },
    /// The year's queue, late first (a province sees its own, a body its assignments).
    Queue {
        #[arg(long)]
        year: u32,
        #[arg(long, default_value = "")]
        province: String,
    },
    /// The registered verification bodies.
    Bodies,
}

fn key(what: &str) -> String {
    format!("verify-{what}-{}", super::now_ns())
}

fn done(
    r: Result<tonic::Response<pb::Receipt>, tonic::Status>,
    what: &str,
) -> Result<String, String> {
    let r = r.map_err(|s| failed(&s))?.into_inner();
    Ok(match r.journal_sequence {
        0 => format!("{what}: nothing changed\n"),
        seq => format!("{what} (journal entry {seq})\n"),
    })
}

pub(super) async fn run(c: &mut Clients, cmd: &VerifyCmd) -> Result<String, String> {
    let v = &mut c.verification;
    match cmd.clone() {
        VerifyCmd::Rules { file } => {
            let rules_toml =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let r = pb::RegisterVerificationRulesRequest {
                idempotency_key: key("rules"),
                rules_toml,
            };
            done(v.register_verification_rules(r).await, "rules registered")
        }
        VerifyCmd::Body {
            body,
            name,
            credit_code,
        } => {
            let r = pb::RegisterBodyRequest {
                idempotency_key: key("body"),
                body_id: body,
                name,
                credit_code,
            };
            done(v.register_body(r).await, &format!("body {body} registered"))
        }
        VerifyCmd::Engage {
            account,
            year,
            body,
        } => {
            let r = pb::RecordEngagementRequest {
                idempotency_key: key("engage"),
                year,
                account_id: account,
                body_id: body,
            };
            done(
                v.record_engagement(r).await,
                &format!("body {body} recorded as {account}'s consultant in {year}"),
            )
        }
        VerifyCmd::Assign {
            account,
            year,
            body,
        } => {
            let r = pb::AssignBodyRequest {
                idempotency_key: key("assign"),
                year,
                account_id: account,
                body_id: body,
            };
            done(
                v.assign_body(r).await,
                &format!("body {body} assigned to {account}'s {year} report"),
            )
        }
        VerifyCmd::Review {
            account,
            year,
            stage,
        } => {
            let what = format!("{account} {year}: {stage}");
            let r = pb::ReviewStepRequest {
                idempotency_key: key("review"),
                year,
                account_id: account,
                stage,
            };
            done(v.review_step(r).await, &what)
        }
        VerifyCmd::Finding {
            account,
            year,
            month,
            parameter,
            fuel,
            facility,
            role,
            item,
            text,
        } => {
            let r = pb::RaiseFindingRequest {
                idempotency_key: key("finding"),
                year,
                account_id: account,
                month,
                parameter,
                fuel,
                facility_id: facility,
                role,
                item,
                text,
            };
            done(
                v.raise_finding(r).await,
                &format!("finding raised on {account}'s month {month}"),
            )
        }
        VerifyCmd::Resolve {
            account,
            year,
            finding,
            estimate,
        } => {
            let what = match estimate.as_str() {
                "" => format!("finding {finding} closed as corrected"),
                e => format!("finding {finding} closed with the estimate {e}"),
            };
            let r = pb::ResolveFindingRequest {
                idempotency_key: key("resolve"),
                year,
                account_id: account,
                finding_id: finding,
                estimate,
            };
            done(v.resolve_finding(r).await, &what)
        }
        VerifyCmd::Conclude { account, year } => {
            let r = pb::ConcludeRequest {
                idempotency_key: key("conclude"),
                year,
                account_id: account,
            };
            done(v.conclude(r).await, &format!("{account} {year} concluded"))
        }
        VerifyCmd::Notify { account, year } => {
            let r = pb::NotifyRequest {
                idempotency_key: key("notify"),
                year,
                account_id: account,
            };
            done(v.notify(r).await, &format!("{account} {year} notified"))
        }
        VerifyCmd::Object {
            account,
            year,
            reason,
        } => {
            let r = pb::ObjectRequest {
                idempotency_key: key("object"),
                year,
                account_id: account,
                reason,
            };
            done(
                v.object(r).await,
                &format!("{account} objected to its {year} conclusion"),
            )
        }
        VerifyCmd::Decide {
            account,
            year,
            uphold,
            reason,
        } => {
            let what = format!(
                "{account}'s objection {}",
                if uphold { "upheld" } else { "dismissed" }
            );
            let r = pb::DecideObjectionRequest {
                idempotency_key: key("decide"),
                year,
                account_id: account,
                upheld: uphold,
                reason,
            };
            done(v.decide_objection(r).await, &what)
        }
        VerifyCmd::File { account, year } => {
            let r = pb::GetVerificationFileRequest {
                year,
                account_id: account,
            };
            let f = v
                .get_verification_file(r)
                .await
                .map_err(|s| failed(&s))?
                .into_inner();
            Ok(file_text(&f))
        }
        VerifyCmd::Queue { year, province } => queue(c, year, province).await,
        VerifyCmd::Bodies => {
            let b = v
                .list_bodies(pb::ListBodiesRequest {})
                .await
                .map_err(|s| failed(&s))?
                .into_inner();
            let mut out = String::from("body  name  credit code\n");
            for b in b.bodies {
                out.push_str(&format!("{}  {}  {}\n", b.body_id, b.name, b.credit_code));
            }
            Ok(out)
        }
    }
}

/// The file in words: where it stands, the findings, the conclusions, the objection and
/// every step.
pub fn file_text(f: &pb::VerificationFile) -> String {
    let mut out = format!(
        "{} {} ({}), {}: body {} {}; stage {}, round {}{}\n",
        f.account_id,
        f.name,
        f.province,
        f.year,
        f.body_id,
        f.body_name,
        f.stage,
        f.round,
        if f.late { ", LATE" } else { "" }
    );
    for x in &f.findings {
        let how = match x.resolution.as_str() {
            "" => "open".to_string(),
            "corrected" => format!("corrected in report version {}", x.report_version),
            _ => format!("estimated {}", x.estimate),
        };
        out.push_str(&format!(
            "finding {} (round {}), month {}, {}: {} - {how}\n",
            x.id, x.round, x.month, x.target, x.text
        ));
    }
    for c in &f.conclusions {
        out.push_str(&format!(
            "conclusion round {} on {}: {} t verified ({} t reported, report version {})\n",
            c.round, c.date, c.total_t, c.reported_t, c.report_version
        ));
    }
    if f.notified != 0 {
        out.push_str(&format!(
            "notified {}; objections until {}\n",
            f.notified, f.objection_until
        ));
    }
    if f.objected != 0 {
        out.push_str(&format!(
            "objection {}: {} (decide by {})\n",
            f.objected, f.objection_reason, f.decide_by
        ));
    }
    if !f.decision.is_empty() {
        out.push_str(&format!(
            "decision {}: {} - {}\n",
            f.decided, f.decision, f.decision_reason
        ));
    }
    for s in &f.steps {
        out.push_str(&format!(
            "  {} #{} {} by {} ({}){}\n",
            s.date,
            s.journal_seq,
            s.what,
            s.actor_name,
            s.actor,
            if s.late { " late" } else { "" }
        ));
    }
    out
}

async fn queue(c: &mut Clients, year: u32, province: String) -> Result<String, String> {
    let mut out = String::from(
        "account  name  province  state  body  round  open findings  reported t  verified t  late\n",
    );
    let mut offset = 0u32;
    loop {
        let r = pb::ListVerificationQueueRequest {
            year,
            province: province.clone(),
            offset,
            page_size: 1_000,
        };
        let page = c
            .verification
            .list_verification_queue(r)
            .await
            .map_err(|s| failed(&s))?
            .into_inner();
        for r in &page.rows {
            out.push_str(&format!(
                "{}  {}  {}  {}  {}  {}  {}  {}  {}  {}\n",
                r.account_id,
                r.name,
                r.province,
                r.state,
                r.body_id,
                r.round,
                r.open_findings,
                r.reported_t,
                r.verified_t,
                if r.late { "LATE" } else { "" }
            ));
        }
        offset += page.rows.len() as u32;
        if page.rows.is_empty() || u64::from(offset) >= page.total {
            return Ok(out);
        }
    }
}
