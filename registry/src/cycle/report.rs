//! What the cycle reports: totals by sector or province and the CSV files (one writer per
//! report, for the API, the CLI and the dashboard alike).

use super::*;

impl Cycle {
    /// Totals of a year by sector (`by_province == false`) or by province.
    pub fn totals(&self, year: u16, by_province: bool) -> BTreeMap<String, Totals> {
        let mut out: BTreeMap<String, Totals> = BTreeMap::new();
        for (account, e) in &self.entities {
            let key = if by_province {
                e.province.clone()
            } else {
                compliance::sector_label(e.sector).to_string()
            };
            let s = self.standing(year, *account);
            let c = s.compliance();
            let t = out.entry(key).or_default();
            t.entities += 1;
            t.obligation_t += c.obligation_t.unwrap_or(0);
            t.allocated_t += s.credited_t();
            t.surrendered_t += c.surrendered_cea_t + c.surrendered_ccer_t;
            t.shortfall_t += c.shortfall_t();
            t.penalty_fen += s.closing.map_or(0, |c| c.penalty_fen);
            match c.status() {
                StatusCode::Compliant => t.compliant += 1,
                StatusCode::Short => t.short += 1,
                StatusCode::EmissionsNotEntered => t.emissions_not_entered += 1,
            }
        }
        out
    }

    /// CSV: every entity's allocation for a year with its inputs, method, plan and the
    /// computation step by step.
    pub fn allocation_csv(&self, year: u16, names: &BTreeMap<AccountId, String>) -> String {
        let mut out = String::from(
            "year,account,name,sector,province,differentiated,verified_t,output_t,electricity_mwh,heat_gj,plan,method,pre_allocated_t,allocated_t,delivered_t,held_t,deducted_t,clawed_back_t,explanation\n",
        );
        for (account, e) in &self.entities {
            let s = self.standing(year, *account);
            let (mut output, mut electricity, mut heat) =
                (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
            for ((_, _, facility), a) in self
                .activity
                .range((year, *account, 0)..=(year, *account, u32::MAX))
            {
                match a {
                    Activity::Power {
                        electricity_mwh,
                        heat_gj,
                        ..
                    } => {
                        electricity += *electricity_mwh;
                        heat += *heat_gj;
                    }
                    // The intensity product: hot metal, clinker, liquid aluminium.
                    Activity::Industry { output_t, .. } => {
                        if let Some(FacilityKind::Industry { process, .. }) =
                            e.facilities.get(facility)
                            && process.makes_intensity_product()
                        {
                            output += *output_t;
                        }
                    }
                }
            }
            let _ = writeln!(
                out,
                "{year},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                account.0,
                csv_field(names.get(account).map_or("", String::as_str)),
                compliance::sector_label(e.sector),
                csv_field(&e.province),
                e.differentiated,
                s.verified_t().map_or(String::new(), |v| v.to_string()),
                output,
                electricity,
                heat,
                csv_field(&s.plan_version),
                s.method,
                s.pre_t,
                s.final_t.map_or(String::new(), |v| v.to_string()),
                s.delivered_t,
                s.held_t,
                s.deducted_t,
                s.clawed_t,
                csv_field(&s.explanation),
            );
        }
        out
    }

    /// CSV: every entity's compliance status for a year.
    pub fn status_csv(&self, year: u16, names: &BTreeMap<AccountId, String>) -> String {
        let mut out = String::from(
            "year,account,name,sector,province,obligation_t,surrendered_cea_t,surrendered_ccer_t,shortfall_t,status,closed,forced_t,penalty_fen,deduction_owed_t\n",
        );
        for (account, e) in &self.entities {
            let s = self.standing(year, *account);
            let c = s.compliance();
            let _ = writeln!(
                out,
                "{year},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                account.0,
                csv_field(names.get(account).map_or("", String::as_str)),
                compliance::sector_label(e.sector),
                csv_field(&e.province),
                c.obligation_t.map_or(String::new(), |o| o.to_string()),
                c.surrendered_cea_t,
                c.surrendered_ccer_t,
                c.shortfall_t(),
                c.status().code(),
                s.closing.is_some(),
                s.closing.map_or(0, |c| c.forced_t),
                s.closing.map_or(0, |c| c.penalty_fen),
                self.deductions.get(account).copied().unwrap_or(0),
            );
        }
        out
    }
}

/// CSV: the totals by sector or province (`title` names the key's column).
pub fn totals_csv(title: &str, totals: &BTreeMap<String, Totals>) -> String {
    let mut out = format!(
        "{title},entities,obligation_t,allocated_t,surrendered_t,shortfall_t,penalty_fen,compliant,short,emissions_not_entered\n"
    );
    for (k, t) in totals {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            csv_field(k),
            t.entities,
            t.obligation_t,
            t.allocated_t,
            t.surrendered_t,
            t.shortfall_t,
            t.penalty_fen,
            t.compliant,
            t.short,
            t.emissions_not_entered
        );
    }
    out
}

/// A CSV field, quoted when it holds a comma, quote or line break.
pub fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}
