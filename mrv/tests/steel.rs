//! An integrated steel plant's year by CETS-AG-03.01-V01-2024, every figure worked by hand
//! from the guideline's formulas and Annex A defaults (never copied from the code's output).
//!
//! The plant: coking (1), sintering (2), a blast furnace (3), a BOF shop (4) and a power unit
//! co-firing its gases (5). It measures the NCV of its washed coking coal; every other fuel
//! takes Table A.1's default. Each month is the same but for the coking coal: 100,000.00 t
//! at a measured 26.000 GJ/t in January to June, 120,000.00 t at 26.500 from July.

mod common;

use common::*;
use mrv::factors::Sector;
use mrv::month::{Month, Role, Row, Stoppage};
use mrv::plan::{Param, ProcessKind, Scope, Subject};
use mrv::report::Term;

fn steel_plan() -> mrv::plan::Dqcp {
    let facilities = vec![
        facility(1, ProcessKind::Coking, None),
        facility(2, ProcessKind::Sintering, None),
        facility(3, ProcessKind::Ironmaking, None),
        facility(4, ProcessKind::Bof, None),
        facility(5, ProcessKind::CoFiring, None),
    ];
    let measured = [(Param::Ncv, Subject::Fuel("washed_coking_coal".into()))];
    plan(Sector::Steel, facilities, &measured)
}

fn steel_month(m: u8) -> Month {
    let (coal, coal_ncv) = if m <= 6 {
        ("100000.00", "26.000")
    } else {
        ("120000.00", "26.500")
    };
    use Role::{Consumed as C, Produced as P, Sold as S};
    let rows: Vec<Row> = vec![
        // Formula (1): what the enterprise buys and sells.
        row(E, C, "washed_coking_coal", coal),
        row(E, C, "bituminous", "20000.00"),
        row(E, C, "natural_gas", "100.00"),
        row(E, S, "coke", "2000.00"),
        row(E, C, "limestone", "10000.00"),
        row(E, C, "dolomite", "5000.00"),
        row(E, C, "electrode", "100.00"),
        row(E, C, "scrap", "15000.00"),
        row(E, S, "tar", "1000.00"),
        row(E, S, "crude_benzene", "300.00"),
        row(E, P, "crude_steel", "100000.00"),
        // Coking: coal and coke-oven gas in; coke and coke-oven gas out.
        row(at(1), C, "washed_coking_coal", coal),
        row(at(1), C, "cog", "1500.00"),
        row(at(1), P, "coke", "75000.00"),
        row(at(1), P, "cog", "3000.00"),
        // Sintering.
        row(at(2), C, "coke", "10000.00"),
        row(at(2), C, "cog", "200.00"),
        row(at(2), P, "sinter", "150000.00"),
        // Ironmaking: coke and injected coal in, blast-furnace gas out.
        row(at(3), C, "coke", "50000.00"),
        row(at(3), C, "bituminous", "15000.00"),
        row(at(3), P, "bfg", "15000.00"),
        row(at(3), P, "hot_metal", "110000.00"),
        // BOF steelmaking.
        row(at(4), C, "cog", "100.00"),
        row(at(4), P, "bof_gas", "1000.00"),
        row(at(4), P, "crude_steel", "100000.00"),
        // The co-firing unit burns the plant's own gases.
        row(at(5), C, "bfg", "15000.00"),
        row(at(5), C, "cog", "500.00"),
        row(at(5), P, "power_mwh", "30000.00"),
    ];
    let mut month = month(m, rows, vec![ncv("washed_coking_coal", coal_ncv)]);
    if m == 8 {
        month.stoppages.push(Stoppage {
            facility: 2,
            days: 3,
        });
    }
    month
}

fn year() -> Vec<Month> {
    (1..=12).map(steel_month).collect()
}

fn line(report: &mrv::report::Report, scope: Scope, term: Term, item: &str) -> String {
    let found = report
        .lines
        .iter()
        .find(|l| l.scope == scope && l.term == term && l.item == item)
        .unwrap_or_else(|| panic!("no {term:?} line of {item} at {scope}"));
    found.emissions_t.to_string()
}

#[test]
fn the_months_are_validated_one_by_one() {
    let factors = factors(STEEL);
    let plan = steel_plan();
    plan.validate(&factors).expect("plan");
    for m in year() {
        m.validate(&factors, &plan).expect("month");
    }
}

#[test]
fn the_measured_ncv_is_weighted_by_monthly_consumption() {
    let report = mrv::compute(&factors(STEEL), &steel_plan(), &year()).expect("computed");
    // Weights: every row of the coal each month (the enterprise's and coking's, equal):
    // 6 x 200,000 t at 26.000 and 6 x 240,000 t at 26.500:
    // (1,200,000 x 26 + 1,440,000 x 26.5) / 2,640,000 = (31,200,000 + 38,160,000)
    // / 2,640,000 = 26.2727... -> 26.273 (3 places).
    let subject = Subject::Fuel("washed_coking_coal".into());
    let w = &report.annual.params[&(Param::Ncv, subject)];
    assert_eq!(w.annual.to_string(), "26.273");
    assert_eq!(w.months[0].to_string(), "26.000");
    assert_eq!(w.months[11].to_string(), "26.500");
    // The annual quantity is the months' sum: 6 x 100,000 + 6 x 120,000.
    let q = report
        .annual
        .quantity(E, Role::Consumed, "washed_coking_coal");
    assert_eq!(q.to_string(), "1320000.00");
    assert_eq!(report.annual.stoppages[&2][7], 3);
}

#[test]
fn formula_1_the_enterprise_mass_balance() {
    let report = mrv::compute(&factors(STEEL), &steel_plan(), &year()).expect("computed");
    // Fuels, FC x NCV x CC x 44/12, each line to 2 places, no oxidation factor:
    // coking coal 1,320,000.00 x 26.273 x 0.02541 = 881,227.9476 tC x 44/12 = 3,231,169.1412
    assert_eq!(
        line(&report, E, Term::NetFuel, "washed_coking_coal"),
        "3231169.14"
    );
    // bituminous 240,000.00 x 23.736 x 0.02618 = 149,138.0352 tC -> 546,839.4624
    assert_eq!(line(&report, E, Term::NetFuel, "bituminous"), "546839.46");
    // natural gas 1,200.00 (10^4 Nm3) x 389.310 x 0.01532 = 7,157.07504 tC -> 26,242.60848
    assert_eq!(line(&report, E, Term::NetFuel, "natural_gas"), "26242.61");
    // coke, net: 0 bought - 24,000.00 sold = -24,000.00 x 28.435 x 0.02942 = -20,077.3848 tC
    // -> -73,617.0776
    assert_eq!(line(&report, E, Term::NetFuel, "coke"), "-73617.08");
    // Table A.2: limestone 120,000.00 x 0.440 = 52,800.00; dolomite 60,000.00 x 0.476 =
    // 28,560.00; electrodes 1,200.00 x 3.663 = 4,395.60; scrap 180,000.00 x 0.037 = 6,660.00.
    assert_eq!(line(&report, E, Term::Carbonate, "limestone"), "52800.00");
    assert_eq!(line(&report, E, Term::Carbonate, "dolomite"), "28560.00");
    assert_eq!(line(&report, E, Term::Electrode, "electrode"), "4395.60");
    assert_eq!(line(&report, E, Term::CarbonInput, "scrap"), "6660.00");
    // Carbon out: tar 12,000.00 x 2.699 = 32,388.00; crude benzene 3,600.00 x 3.382 =
    // 12,175.20; crude steel 1,200,000.00 x 0.037 = 44,400.00 (all deducted).
    assert_eq!(line(&report, E, Term::CarbonOutput, "tar"), "-32388.00");
    assert_eq!(
        line(&report, E, Term::CarbonOutput, "crude_benzene"),
        "-12175.20"
    );
    assert_eq!(
        line(&report, E, Term::CarbonOutput, "crude_steel"),
        "-44400.00"
    );
    // E_ent = 3,231,169.14 + 546,839.46 + 26,242.61 - 73,617.08 + 52,800.00 + 28,560.00
    //       + 4,395.60 + 6,660.00 - 32,388.00 - 12,175.20 - 44,400.00 = 3,734,086.53
    assert_eq!(report.enterprise_t.to_string(), "3734086.53");
    // The summary table's total is whole tonnes: 3,734,087 (and all of it CO2).
    assert_eq!(report.total_t, 3_734_087);
    assert_eq!((report.co2_t, report.pfc_co2e_t), (3_734_087, 0));
}

#[test]
fn formula_2_each_process_fuel_in_minus_fuel_out() {
    let report = mrv::compute(&factors(STEEL), &steel_plan(), &year()).expect("computed");
    // Coking: coal in 3,231,169.14 (as above); COG in 18,000.00 x 173.854 x 0.01210 =
    // 37,865.4012 tC -> 138,839.80; coke out 900,000.00 x 28.435 x 0.02942 = 752,901.93 tC
    // -> 2,760,640.41; COG out 36,000.00 x ... = 75,730.8024 tC -> 277,679.6088.
    assert_eq!(line(&report, at(1), Term::FuelIn, "cog"), "138839.80");
    assert_eq!(line(&report, at(1), Term::FuelOut, "coke"), "-2760640.41");
    assert_eq!(line(&report, at(1), Term::FuelOut, "cog"), "-277679.61");
    // E = 3,231,169.14 + 138,839.80 - 2,760,640.41 - 277,679.61 = 331,688.92
    assert_eq!(
        report.facility(1).unwrap().emissions_t.to_string(),
        "331688.92"
    );
    // Sintering: coke 120,000.00 x 28.435 x 0.02942 = 100,386.924 tC -> 368,085.388 ->
    // 368,085.39; COG 2,400.00 -> 5,048.72016 tC -> 18,511.97392 -> 18,511.97.
    // E = 386,597.36
    assert_eq!(
        report.facility(2).unwrap().emissions_t.to_string(),
        "386597.36"
    );
    // Ironmaking: coke 600,000.00 -> 501,934.62 tC -> 1,840,426.94; coal 180,000.00 x 23.736
    // x 0.02618 = 111,853.5264 tC -> 410,129.6 -> 410,129.60; BFG out 180,000.00 x 33.000 x
    // 0.07080 = 420,552 tC -> 1,542,024.00. E = 1,840,426.94 + 410,129.60 - 1,542,024.00
    // = 708,532.54
    assert_eq!(line(&report, at(3), Term::FuelOut, "bfg"), "-1542024.00");
    assert_eq!(
        report.facility(3).unwrap().emissions_t.to_string(),
        "708532.54"
    );
    // BOF: COG in 1,200.00 -> 2,524.36008 tC -> 9,255.99; BOF gas out 12,000.00 x 84.000 x
    // 0.04960 = 49,996.8 tC -> 183,321.60. E = 9,255.99 - 183,321.60 = -174,065.61
    assert_eq!(
        report.facility(4).unwrap().emissions_t.to_string(),
        "-174065.61"
    );
}

#[test]
fn formula_3_the_co_firing_unit_and_formula_4_the_rest() {
    let report = mrv::compute(&factors(STEEL), &steel_plan(), &year()).expect("computed");
    // With the gases' oxidation factor 0.99: BFG 180,000.00 x 33.000 x 0.07080 x 0.99 =
    // 416,346.48 tC x 44/12 = 1,526,603.76; COG 6,000.00 x 173.854 x 0.01210 x 0.99 =
    // 12,495.582396 tC -> 45,817.135452 -> 45,817.14. E = 1,572,420.90
    assert_eq!(line(&report, at(5), Term::Combustion, "bfg"), "1526603.76");
    assert_eq!(line(&report, at(5), Term::Combustion, "cog"), "45817.14");
    let unit = report.facility(5).unwrap();
    assert_eq!(unit.emissions_t.to_string(), "1572420.90");
    assert_eq!(unit.output_t.to_string(), "360000.00"); // MWh
    // (4): E_other = 3,734,086.53 - (331,688.92 + 386,597.36 + 708,532.54 - 174,065.61)
    //             - 1,572,420.90 = 3,734,086.53 - 1,252,753.21 - 1,572,420.90 = 908,912.42
    let steel = report.steel.expect("steel figures");
    assert_eq!(steel.other_t.to_string(), "908912.42");
}

#[test]
fn the_allocation_figures_of_table_2_2() {
    let report = mrv::compute(&factors(STEEL), &steel_plan(), &year()).expect("computed");
    let steel = report.steel.expect("steel figures");
    assert_eq!(steel.ironmaking_t.to_string(), "708532.54");
    assert_eq!(steel.sintering_t.to_string(), "386597.36");
    // Hot metal 12 x 110,000.00 = 1,320,000.00 t.
    assert_eq!(steel.iron_t.to_string(), "1320000.00");
    // Is = (708,532.54 + 386,597.36) / 1,320,000.00 = 1,095,129.90 / 1,320,000 = 0.829644
    // -> 0.8296 (4 places).
    assert_eq!(steel.intensity.unwrap().to_string(), "0.8296");
    // Process products: coke 900,000.00 t (coking), sinter 1,800,000.00 t.
    assert_eq!(
        report.facility(1).unwrap().output_t.to_string(),
        "900000.00"
    );
    assert_eq!(
        report.facility(2).unwrap().output_t.to_string(),
        "1800000.00"
    );
    assert_eq!(report.factors_version, "steel-2024.1");
    assert_eq!(report.guideline, "CETS-AG-03.01-V01-2024");
}

#[test]
fn every_line_shows_its_working() {
    let report = mrv::compute(&factors(STEEL), &steel_plan(), &year()).expect("computed");
    let coke = report
        .lines
        .iter()
        .find(|l| l.scope == E && l.item == "coke")
        .unwrap();
    assert_eq!(
        coke.working,
        "(0 - 24000.00 sold) = -24000.00 t x NCV 28.435 GJ/t x CC 0.02942 tC/GJ x 44/12 = -73617.08"
    );
}
