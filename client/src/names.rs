//! The names of wire enums as the CLI, the demo report and the dashboard print them (one
//! table each, so the three say the same).

use proto::v1 as pb;

/// The trading phases and their words (`carbonx ctl phase` takes them, the CLI, the demo
/// report and the dashboard print them): one table, so all say the same.
pub const PHASES: [(pb::Phase, &str); 6] = [
    (pb::Phase::Closed, "closed"),
    (pb::Phase::PreOpen, "pre-open"),
    (pb::Phase::OpeningCall, "opening-call"),
    (pb::Phase::Continuous, "continuous"),
    (pb::Phase::Break, "break"),
    (pb::Phase::PostClose, "post-close"),
];

/// A trading phase (`pb::Phase`) as its word; `unknown` for a value not in the table.
pub fn phase(p: i32) -> &'static str {
    PHASES
        .iter()
        .find(|(phase, _)| *phase as i32 == p)
        .map_or("unknown", |(_, word)| word)
}

/// A `YYYYMMDD` date as people read it, `2026-11-30`; `-` for none (0).
pub fn date(yyyymmdd: u32) -> String {
    match yyyymmdd {
        0 => "-".to_string(),
        d => format!("{:04}-{:02}-{:02}", d / 10_000, d / 100 % 100, d % 100),
    }
}

/// A trading phase by its word.
pub fn phase_of(word: &str) -> Option<pb::Phase> {
    PHASES.iter().find(|(_, w)| *w == word).map(|(p, _)| *p)
}

/// A compliance status (`pb::ComplianceStatus`), as its stable code.
pub fn compliance_status(s: i32) -> &'static str {
    match pb::ComplianceStatus::try_from(s) {
        Ok(pb::ComplianceStatus::Compliant) => "COMPLIANT",
        Ok(pb::ComplianceStatus::Short) => "SHORT",
        Ok(pb::ComplianceStatus::EmissionsNotEntered) => "EMISSIONS_NOT_ENTERED",
        _ => "UNKNOWN",
    }
}

/// A sector (`pb::Sector`).
pub fn sector(s: i32) -> &'static str {
    match pb::Sector::try_from(s) {
        Ok(pb::Sector::Power) => "power",
        Ok(pb::Sector::Steel) => "steel",
        Ok(pb::Sector::Cement) => "cement",
        Ok(pb::Sector::Aluminium) => "aluminium",
        _ => "unknown",
    }
}

/// A sector by its name, as the ministry's files and the dashboard's filters write it.
pub fn sector_of(name: &str) -> Option<pb::Sector> {
    match name {
        "power" => Some(pb::Sector::Power),
        "steel" => Some(pb::Sector::Steel),
        "cement" => Some(pb::Sector::Cement),
        "aluminium" => Some(pb::Sector::Aluminium),
        _ => None,
    }
}

/// The industrial processes and their words in the entities file (the registry's
/// `Process::name` says the same).
pub const PROCESSES: [(pb::IndustrialProcess, &str); 5] = [
    (pb::IndustrialProcess::Ironmaking, "ironmaking"),
    (pb::IndustrialProcess::Sintering, "sintering"),
    (pb::IndustrialProcess::ClinkerLine, "clinker_line"),
    (pb::IndustrialProcess::Electrolysis, "electrolysis"),
    (pb::IndustrialProcess::Other, "other"),
];

/// The plan's special cases and their words in the activity file (empty: none).
pub const SPECIAL_CASES: [(pb::SpecialCase, &str); 5] = [
    (
        pb::SpecialCase::WhitePortlandClinker,
        "white_portland_clinker",
    ),
    (pb::SpecialCase::GypsumSulfuricAcid, "gypsum_sulfuric_acid"),
    (
        pb::SpecialCase::HydrogenRichBlastFurnace,
        "hydrogen_rich_blast_furnace",
    ),
    (
        pb::SpecialCase::ClosedBeforeAllocation,
        "closed_before_allocation",
    ),
    (pb::SpecialCase::NewlyCommissioned, "newly_commissioned"),
];

/// The word of a wire enum value in one of the tables above; `None` if it has none.
pub fn word_of<E: Copy + Into<i32>>(
    table: &[(E, &'static str)],
    value: i32,
) -> Option<&'static str> {
    table
        .iter()
        .find(|(e, _)| (*e).into() == value)
        .map(|(_, w)| *w)
}

/// The wire enum value of a word in one of the tables above.
pub fn value_of<E: Copy>(table: &[(E, &str)], word: &str) -> Option<E> {
    table.iter().find(|(_, w)| *w == word).map(|(e, _)| *e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_with_dashes() {
        assert_eq!(date(20_261_130), "2026-11-30");
        assert_eq!(date(20_250_105), "2025-01-05");
        assert_eq!(date(0), "-");
    }
}
