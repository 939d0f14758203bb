//! The ministry's CSV files (entities and facilities, activity data, verified emissions)
//! read into API rows, with errors naming the file's line and column. A small reader:
//! comma-separated, a header line naming the columns (any order), fields optionally quoted
//! with `"` (`""` inside quotes is a quote), no line breaks inside fields, `#` lines and
//! blank lines skipped.

use std::collections::HashMap;

use proto::v1 as pb;

/// Most lines read from one file.
pub const CSV_LINES_MAX: usize = 1_000_000;

/// A CSV error: line (1-based) and column name, or the whole file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvError {
    pub line: usize,
    pub column: String,
    pub why: String,
}

impl std::fmt::Display for CsvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.column.is_empty() {
            write!(f, "line {}: {}", self.line, self.why)
        } else {
            write!(
                f,
                "line {}, column {}: {}",
                self.line, self.column, self.why
            )
        }
    }
}

fn err(line: usize, column: &str, why: impl Into<String>) -> CsvError {
    CsvError {
        line,
        column: column.into(),
        why: why.into(),
    }
}

fn split(line_no: usize, line: &str) -> Result<Vec<String>, CsvError> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
                continue;
            }
            (false, '"') if at_start => quoted = true,
            (true, '"') => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            }
            (_, c) => field.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err(err(line_no, "", "unterminated quoted field"));
    }
    fields.push(field);
    Ok(fields.into_iter().map(|f| f.trim().to_string()).collect())
}

/// One data line: its number and its fields by column name.
#[derive(Debug)]
pub struct Record {
    pub line: usize,
    fields: HashMap<String, String>,
}

impl Record {
    pub fn text(&self, column: &str) -> &str {
        self.fields.get(column).map_or("", String::as_str)
    }

    pub fn required(&self, column: &str) -> Result<&str, CsvError> {
        let v = self.text(column);
        if v.is_empty() {
            return Err(err(self.line, column, "missing"));
        }
        Ok(v)
    }

    pub fn u64(&self, column: &str) -> Result<u64, CsvError> {
        let v = self.required(column)?;
        v.parse()
            .map_err(|_| err(self.line, column, format!("{v:?} is not a whole number")))
    }

    pub fn u64_or_zero(&self, column: &str) -> Result<u64, CsvError> {
        if self.text(column).is_empty() {
            Ok(0)
        } else {
            self.u64(column)
        }
    }

    pub fn u32(&self, column: &str) -> Result<u32, CsvError> {
        let v = self.u64(column)?;
        u32::try_from(v).map_err(|_| err(self.line, column, "too large"))
    }

    pub fn bool(&self, column: &str) -> Result<bool, CsvError> {
        match self.text(column).to_ascii_lowercase().as_str() {
            "" | "false" | "no" | "0" => Ok(false),
            "true" | "yes" | "1" => Ok(true),
            other => Err(err(
                self.line,
                column,
                format!("{other:?} is not true or false"),
            )),
        }
    }

    /// A decimal figure, passed on as text after a syntax check (the server validates it).
    pub fn decimal(&self, column: &str) -> Result<String, CsvError> {
        let v = self.text(column);
        if v.is_empty() {
            return Ok(String::new());
        }
        let ok = v.strip_prefix('-').unwrap_or(v).split_once('.').map_or(
            v.bytes().all(|b| b.is_ascii_digit()),
            |(w, f)| {
                !w.is_empty()
                    && w.bytes().all(|b| b.is_ascii_digit())
                    && f.bytes().all(|b| b.is_ascii_digit())
            },
        );
        if !ok {
            return Err(err(
                self.line,
                column,
                format!("{v:?} is not a decimal number"),
            ));
        }
        Ok(v.to_string())
    }
}

/// Reads a file's records, checking the header has every `required` column and no
/// unknown one.
pub fn records(text: &str, required: &[&str], optional: &[&str]) -> Result<Vec<Record>, CsvError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let (header_line, header) = lines.next().ok_or_else(|| err(1, "", "empty file"))?;
    let columns = split(header_line, header)?;
    for c in &columns {
        if !required.contains(&c.as_str()) && !optional.contains(&c.as_str()) {
            return Err(err(
                header_line,
                c,
                format!(
                    "unknown column (expected {})",
                    required
                        .iter()
                        .chain(optional)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ));
        }
    }
    for r in required {
        if !columns.iter().any(|c| c == r) {
            return Err(err(header_line, r, "column missing from the header"));
        }
    }
    let mut out = Vec::new();
    for (n, line) in lines {
        if out.len() >= CSV_LINES_MAX {
            return Err(err(n, "", "more than 1,000,000 lines"));
        }
        let fields = split(n, line)?;
        if fields.len() != columns.len() {
            return Err(err(
                n,
                "",
                format!("{} fields, the header has {}", fields.len(), columns.len()),
            ));
        }
        out.push(Record {
            line: n,
            fields: columns.iter().cloned().zip(fields).collect(),
        });
    }
    Ok(out)
}

pub const ENTITY_COLUMNS: &[&str] = &[
    "account_id",
    "name",
    "sector",
    "province",
    "facility_id",
    "facility_kind",
];
pub const ENTITY_OPTIONAL: &[&str] = &[
    "differentiated",
    "fuel",
    "capacity_mw",
    "product_line",
    "process",
    "credit_code",
];

fn process(r: &Record) -> Result<pb::IndustrialProcess, CsvError> {
    let word = r.required("process")?.to_ascii_lowercase();
    crate::names::value_of(&crate::names::PROCESSES, &word).ok_or_else(|| {
        err(
            r.line,
            "process",
            format!("{word:?}: ironmaking, sintering, clinker_line, electrolysis or other"),
        )
    })
}

fn special_case(r: &Record) -> Result<pb::SpecialCase, CsvError> {
    let word = r.text("special_case").to_ascii_lowercase();
    if word.is_empty() {
        return Ok(pb::SpecialCase::None);
    }
    crate::names::value_of(&crate::names::SPECIAL_CASES, &word).ok_or_else(|| {
        err(
            r.line,
            "special_case",
            format!("{word:?} is not one of the plan's special cases"),
        )
    })
}

fn sector(r: &Record) -> Result<pb::Sector, CsvError> {
    Ok(match r.required("sector")?.to_ascii_lowercase().as_str() {
        "power" => pb::Sector::Power,
        "steel" => pb::Sector::Steel,
        "cement" => pb::Sector::Cement,
        "aluminium" | "aluminum" => pb::Sector::Aluminium,
        other => {
            return Err(err(
                r.line,
                "sector",
                format!("{other:?}: power, steel, cement or aluminium"),
            ));
        }
    })
}

fn fuel(r: &Record) -> Result<pb::Fuel, CsvError> {
    Ok(match r.required("fuel")?.to_ascii_lowercase().as_str() {
        "coal" => pb::Fuel::Coal,
        "unconventional_coal" => pb::Fuel::UnconventionalCoal,
        "gas" => pb::Fuel::Gas,
        other => {
            return Err(err(
                r.line,
                "fuel",
                format!("{other:?}: coal, unconventional_coal or gas"),
            ));
        }
    })
}

/// The facility of one line: a generating unit (fuel, capacity) or a product line.
fn facility(r: &Record) -> Result<pb::Facility, CsvError> {
    Ok(
        match r.required("facility_kind")?.to_ascii_lowercase().as_str() {
            "generating_unit" | "unit" => pb::Facility {
                facility_id: r.u32("facility_id")?,
                kind: pb::FacilityKind::GeneratingUnit as i32,
                fuel: fuel(r)? as i32,
                capacity_mw: r.u32("capacity_mw")?,
                product_line: String::new(),
                process: 0,
            },
            "product_line" | "line" => pb::Facility {
                facility_id: r.u32("facility_id")?,
                kind: pb::FacilityKind::ProductLine as i32,
                product_line: r.required("product_line")?.to_string(),
                process: process(r)? as i32,
                ..Default::default()
            },
            other => {
                return Err(err(
                    r.line,
                    "facility_kind",
                    format!("{other:?}: generating_unit or product_line"),
                ));
            }
        },
    )
}

/// Entities with their facilities (one line per facility; an entity's lines are
/// consecutive and repeat its columns). Each entity comes with its first line.
pub fn entities(text: &str) -> Result<Vec<(usize, pb::EntityRow)>, CsvError> {
    let mut out: Vec<(usize, pb::EntityRow)> = Vec::new();
    for r in records(text, ENTITY_COLUMNS, ENTITY_OPTIONAL)? {
        let facility = facility(&r)?;
        let row = pb::EntityRow {
            account_id: r.u64("account_id")?,
            name: r.required("name")?.to_string(),
            sector: sector(&r)? as i32,
            province: r.required("province")?.to_string(),
            differentiated: r.bool("differentiated")?,
            facilities: Vec::new(),
            credit_code: r.text("credit_code").to_string(),
        };
        add_facility(&mut out, r.line, row, facility)?;
    }
    Ok(out)
}

/// One line's facility added to its entity: the entity before it (the same columns), or
/// a new one (never seen before).
fn add_facility(
    out: &mut Vec<(usize, pb::EntityRow)>,
    line: usize,
    row: pb::EntityRow,
    facility: pb::Facility,
) -> Result<(), CsvError> {
    let same = |a: &pb::EntityRow, b: &pb::EntityRow| {
        (
            a.name.as_str(),
            a.sector,
            a.province.as_str(),
            a.differentiated,
            a.credit_code.as_str(),
        ) == (
            b.name.as_str(),
            b.sector,
            b.province.as_str(),
            b.differentiated,
            b.credit_code.as_str(),
        )
    };
    match out.last_mut() {
        Some((_, last)) if last.account_id == row.account_id => {
            if !same(last, &row) {
                return Err(err(
                    line,
                    "account_id",
                    "the entity's columns differ from its earlier line",
                ));
            }
            last.facilities.push(facility);
        }
        _ => {
            if out.iter().any(|(_, e)| e.account_id == row.account_id) {
                return Err(err(
                    line,
                    "account_id",
                    "an entity's lines must be consecutive",
                ));
            }
            let facilities = vec![facility];
            out.push((line, pb::EntityRow { facilities, ..row }));
        }
    }
    Ok(())
}

pub const ACTIVITY_COLUMNS: &[&str] = &["account_id", "facility_id"];
pub const ACTIVITY_OPTIONAL: &[&str] = &[
    "electricity_mwh",
    "heat_gj",
    "load_factor",
    "emissions_t",
    "output_t",
    "pfc_co2e_t",
    "carbide_slag_rate",
    "special_case",
];

/// Activity data: a generating unit fills electricity_mwh, heat_gj, load_factor and
/// emissions_t; a product line fills output_t and emissions_t, and where they apply
/// pfc_co2e_t (electrolysis), carbide_slag_rate (clinker lines) and special_case.
pub fn activity(text: &str) -> Result<Vec<(usize, pb::ActivityRow)>, CsvError> {
    records(text, ACTIVITY_COLUMNS, ACTIVITY_OPTIONAL)?
        .into_iter()
        .map(|r| {
            Ok((
                r.line,
                pb::ActivityRow {
                    account_id: r.u64("account_id")?,
                    facility_id: r.u32("facility_id")?,
                    electricity_mwh: r.decimal("electricity_mwh")?,
                    heat_gj: r.decimal("heat_gj")?,
                    load_factor: r.decimal("load_factor")?,
                    emissions_t: r.decimal("emissions_t")?,
                    output_t: r.decimal("output_t")?,
                    pfc_co2e_t: r.decimal("pfc_co2e_t")?,
                    carbide_slag_rate: r.decimal("carbide_slag_rate")?,
                    special_case: special_case(&r)? as i32,
                },
            ))
        })
        .collect()
}

pub const VERIFIED_COLUMNS: &[&str] = &["account_id", "co2_t"];
pub const VERIFIED_OPTIONAL: &[&str] = &["pfc_co2e_t"];

/// Verified emissions per entity (CO2, and PFCs as CO2e for aluminium).
pub fn verified(text: &str) -> Result<Vec<(usize, pb::VerifiedRow)>, CsvError> {
    records(text, VERIFIED_COLUMNS, VERIFIED_OPTIONAL)?
        .into_iter()
        .map(|r| {
            Ok((
                r.line,
                pb::VerifiedRow {
                    account_id: r.u64("account_id")?,
                    co2_t: r.u64("co2_t")?,
                    pfc_co2e_t: r.u64_or_zero("pfc_co2e_t")?,
                },
            ))
        })
        .collect()
}

/// A CSV field, quoted when it holds a comma, quote or line break.
pub fn field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

/// Writes entities as the CSV `entities` reads. A sector or fuel this file cannot name is
/// an error (naming the entity), never written as some other one.
pub fn entities_csv(rows: &[pb::EntityRow]) -> Result<String, String> {
    let mut out = String::from(
        "account_id,name,sector,province,differentiated,facility_id,facility_kind,fuel,capacity_mw,product_line,process,credit_code\n",
    );
    for e in rows {
        let sector = match pb::Sector::try_from(e.sector) {
            Ok(
                s @ (pb::Sector::Power
                | pb::Sector::Steel
                | pb::Sector::Cement
                | pb::Sector::Aluminium),
            ) => crate::names::sector(s as i32),
            _ => {
                return Err(format!(
                    "entity {}: sector {} has no name in the file",
                    e.account_id, e.sector
                ));
            }
        };
        for f in &e.facilities {
            let (kind, fuel, capacity, process) =
                if f.kind == pb::FacilityKind::GeneratingUnit as i32 {
                    let fuel = match pb::Fuel::try_from(f.fuel) {
                        Ok(pb::Fuel::Gas) => "gas",
                        Ok(pb::Fuel::UnconventionalCoal) => "unconventional_coal",
                        Ok(pb::Fuel::Coal) => "coal",
                        _ => {
                            return Err(format!(
                                "entity {} facility {}: fuel {} has no name in the file",
                                e.account_id, f.facility_id, f.fuel
                            ));
                        }
                    };
                    ("generating_unit", fuel, f.capacity_mw.to_string(), "")
                } else {
                    let process = crate::names::word_of(&crate::names::PROCESSES, f.process)
                        .ok_or_else(|| {
                            format!(
                                "entity {} facility {}: process {} has no name in the file",
                                e.account_id, f.facility_id, f.process
                            )
                        })?;
                    ("product_line", "", String::new(), process)
                };
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{}\n",
                e.account_id,
                field(&e.name),
                sector,
                field(&e.province),
                e.differentiated,
                f.facility_id,
                kind,
                fuel,
                capacity,
                field(&f.product_line),
                process,
                field(&e.credit_code)
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_group_facilities_and_errors_name_line_and_column() {
        let text = "account_id,name,sector,province,differentiated,facility_id,facility_kind,fuel,capacity_mw,product_line,process,credit_code\n\
            # a comment\n\
            10,\"Datang, Unit 1-2\",power,Hebei,false,1,generating_unit,coal,600,,,\n\
            10,\"Datang, Unit 1-2\",power,Hebei,false,2,generating_unit,gas,300,,,\n\
            20,Conch,cement,Anhui,true,1,product_line,,,clinker,clinker_line,91340100MA0000002N\n";
        let rows = entities(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].0, rows[0].1.facilities.len()), (3, 2));
        assert_eq!(rows[0].1.name, "Datang, Unit 1-2");
        assert!(rows[1].1.differentiated);
        assert_eq!(
            (
                rows[0].1.credit_code.as_str(),
                rows[1].1.credit_code.as_str()
            ),
            ("", "91340100MA0000002N")
        );
        let written = entities_csv(&rows.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>())
            .unwrap_or_else(|e| panic!("{e}"));
        let round = entities(&written).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            round.into_iter().map(|r| r.1).collect::<Vec<_>>(),
            rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>()
        );
        let bad = text.replace("gas,300", "oil,300");
        assert_eq!(
            entities(&bad).map(|_| ()).map_err(|e| (e.line, e.column)),
            Err((4, "fuel".to_string()))
        );
        let bad = text.replace("600,", "six hundred,");
        assert_eq!(
            entities(&bad).map(|_| ()).map_err(|e| (e.line, e.column)),
            Err((3, "capacity_mw".to_string()))
        );
        // A product line names its process (the sector's allocation unit depends on it).
        let bad = text.replace("clinker,clinker_line", "clinker,kiln");
        assert_eq!(
            entities(&bad).map(|_| ()).map_err(|e| (e.line, e.column)),
            Err((5, "process".to_string()))
        );
        assert_eq!(
            rows[1].1.facilities[0].process,
            pb::IndustrialProcess::ClinkerLine as i32
        );
        assert!(entities("account_id,name\n").is_err());
        // Written back, a sector or fuel without a name is an error, never a guess.
        let mut unnamed = rows[0].1.clone();
        unnamed.sector = 99;
        assert!(entities_csv(&[unnamed]).is_err());
        let mut unnamed = rows[0].1.clone();
        unnamed.facilities[0].fuel = 0;
        assert!(entities_csv(&[unnamed]).is_err());
    }

    #[test]
    fn activity_and_verified_read_decimals_as_text() {
        let rows = activity(
            "account_id,facility_id,electricity_mwh,heat_gj,load_factor,emissions_t,output_t\n\
             10,1,3000000,100000,0.55,2700000,\n20,1,,,,,1150000.5\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows[0].1.load_factor, "0.55");
        assert_eq!(rows[1].1.output_t, "1150000.5");
        let lines = activity(
            "account_id,facility_id,output_t,emissions_t,carbide_slag_rate,special_case\n\
             20,1,1000000,850000,0.32,\n20,2,400000,300000,,white_portland_clinker\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lines[0].1.carbide_slag_rate, "0.32");
        assert_eq!(
            (lines[0].1.special_case, lines[1].1.special_case),
            (0, pb::SpecialCase::WhitePortlandClinker as i32)
        );
        let e = activity("account_id,facility_id,output_t,special_case\n20,1,5,grey_clinker\n")
            .unwrap_err();
        assert_eq!((e.line, e.column.as_str()), (2, "special_case"));
        let e = activity("account_id,facility_id,load_factor\n10,1,0,55\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = activity("account_id,facility_id,load_factor\n10,1,1e3\n").unwrap_err();
        assert_eq!((e.line, e.column.as_str()), (2, "load_factor"));
        let v = verified("account_id,co2_t,pfc_co2e_t\n40,500000,50000\n41,10,\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((v[0].1.pfc_co2e_t, v[1].1.pfc_co2e_t), (50_000, 0));
        assert!(verified("account_id,co2\n").is_err());
    }
}
