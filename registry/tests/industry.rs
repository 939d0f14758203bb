//! The industrial allocation as the plans define it: each sector's allocation unit, the
//! special cases, the balance value solved over the other units, the 2025 draft's power
//! curve and rounding. Every figure is worked out by hand in the comment beside it.
//!
//! A fact used throughout: while every unit's deviation stays inside the band, the balance
//! `sum E_i x 0.15 x (BP - I_i) / BP = 0` gives `BP = sum E_i I_i / sum E_i`, the
//! emission-weighted mean intensity; so BP is exact by hand. The solver stops within
//! `|sum A - sum E| < 0.5 t`, which moves each allocation by well under a tenth of the
//! distance to the next whole tonne in the cases below (each comment gives the margin).

use registry::allocation::{LoadCorrection, PowerPlan, PowerUnit, UnitCategory, allocate_power};
use registry::compliance::{EntityYear, Plan, allocate};
use registry::industry::{
    EntityInput, Exemption, IntensityPlan, Process, ProcessYear, SpecialCase, allocate_sector,
};
use registry::model::{AccountId, Sector};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn process(facility: u32, process: Process, output_t: u64, emissions_t: u64) -> ProcessYear {
    ProcessYear {
        facility,
        process,
        output_t: Decimal::from(output_t),
        emissions_t: Decimal::from(emissions_t),
        pfc_co2e_t: Decimal::ZERO,
        carbide_slag_rate: Decimal::ZERO,
        special: None,
    }
}

fn entity(account: u64, sector: Sector, verified: u64, processes: Vec<ProcessYear>) -> EntityYear {
    EntityYear {
        account: AccountId(account),
        sector,
        province: "Hebei".into(),
        differentiated: false,
        units: Vec::new(),
        processes,
        verified_t: Some(verified),
    }
}

fn allocated(plan: &Plan, entities: &[EntityYear]) -> Vec<u64> {
    allocate(plan, entities)
        .unwrap_or_else(|e| panic!("{e}"))
        .allocations
        .iter()
        .map(|a| a.allocated_t)
        .collect()
}

#[test]
fn steel_intensity_is_ironmaking_and_sintering_over_the_ironmaking_product() {
    // Works A: verified 3,000,000 t; blast furnace 2,100,000 t over 1,500,000 t hot metal,
    // sinter plant 300,000 t, steelmaking 600,000 t (not in the intensity).
    //   I_A = (2,100,000 + 300,000) / 1,500,000 = 1.6
    // Works B: verified 2,000,000 t; 1,500,000 t over 1,000,000 t hot metal, sinter 300,000.
    //   I_B = 1,800,000 / 1,000,000 = 1.8
    // BP = (3,000,000 x 1.6 + 2,000,000 x 1.8) / 5,000,000 = 8,400,000 / 5,000,000 = 1.68
    // A_A = 3,000,000 x (1 + 0.15 x 0.08/1.68) = 3,000,000 x 1.0071428571 = 3,021,428.57
    //   -> 3,021,428 (the solver's BP error moves it by < 0.3 t)
    // A_B = 2,000,000 x (1 - 0.15 x 0.12/1.68) = 2,000,000 x 0.9892857143 = 1,978,571.43
    //   -> 1,978,571
    let a = entity(
        1,
        Sector::Steel,
        3_000_000,
        vec![
            process(1, Process::Ironmaking, 1_500_000, 2_100_000),
            process(2, Process::Sintering, 1_950_000, 300_000),
            process(3, Process::Other, 1_650_000, 600_000),
        ],
    );
    let b = entity(
        2,
        Sector::Steel,
        2_000_000,
        vec![
            process(1, Process::Ironmaking, 1_000_000, 1_500_000),
            process(2, Process::Sintering, 1_300_000, 300_000),
        ],
    );
    let plan = Plan::draft_2025();
    let run = allocate(&plan, &[a.clone(), b.clone()]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        run.allocations
            .iter()
            .map(|a| a.allocated_t)
            .collect::<Vec<_>>(),
        vec![3_021_428, 1_978_571]
    );
    let bp = run.balance[&Sector::Steel].balance_value;
    assert!((bp - dec!(1.68)).abs() < dec!(0.000002), "{bp}");
    assert!(
        run.allocations[0].explanation.contains(
            "(E_ironmaking 2100000 + E_sintering 300000) / ironmaking product 1500000 t = 1.6"
        ),
        "{}",
        run.allocations[0].explanation
    );
    // The old reading, the entity's total over its output: I_A = 3,000,000 / 1,500,000 =
    // 2.0 and I_B = 2,000,000 / 1,000,000 = 2.0, so BP = 2.0, X = 0 and A = E:
    // 3,000,000 and 2,000,000 instead of 3,021,428 and 1,978,571.
    let total_over_output = |e: &EntityYear, hot_metal: u64| EntityYear {
        processes: vec![process(
            1,
            Process::Ironmaking,
            hot_metal,
            e.verified_t.unwrap_or(0),
        )],
        ..e.clone()
    };
    assert_eq!(
        allocated(
            &plan,
            &[
                total_over_output(&a, 1_500_000),
                total_over_output(&b, 1_000_000)
            ]
        ),
        vec![3_000_000, 2_000_000]
    );
}

#[test]
fn a_cement_company_is_the_sum_of_its_lines_and_a_special_line_gets_its_emissions() {
    // Company K: line 1 850,000 t over 1,000,000 t clinker (I = 0.85); line 2 white
    // Portland clinker, 220,000 t over 400,000 t: a special case, A = E = 220,000, left out
    // of the balance. Company L: 910,000 t over 1,000,000 t (I = 0.91). Company M:
    // 1,600,000 t over 2,000,000 t (I = 0.80).
    // BP = (850,000 x 0.85 + 910,000 x 0.91 + 1,600,000 x 0.80) / 3,360,000
    //    = 2,830,600 / 3,360,000 = 14,153 / 16,800 = 0.842440476...
    // K1: X = 1 - 0.85 x 16,800/14,153 = -127/14,153; A = 850,000 x (1 - 19.05/14,153)
    //     = 850,000 - 1,144.1037 = 848,855.896 -> 848,855 (margin: BP error < 0.13 t)
    // L1: X = -1,135/14,153; A = 910,000 - 154,927,500/14,153 = 910,000 - 10,946.619
    //     = 899,053.381 -> 899,053
    // M1: X = 713/14,153; A = 1,600,000 + 171,120,000/14,153 = 1,612,090.723 -> 1,612,090
    // K = 848,855 + 220,000 = 1,068,855.
    let mut white = process(2, Process::ClinkerLine, 400_000, 220_000);
    white.special = Some(SpecialCase::WhitePortlandClinker);
    let k = entity(
        21,
        Sector::Cement,
        1_070_000,
        vec![process(1, Process::ClinkerLine, 1_000_000, 850_000), white],
    );
    let l = entity(
        22,
        Sector::Cement,
        910_000,
        vec![process(1, Process::ClinkerLine, 1_000_000, 910_000)],
    );
    let m = entity(
        23,
        Sector::Cement,
        1_600_000,
        vec![process(1, Process::ClinkerLine, 2_000_000, 1_600_000)],
    );
    let run = allocate(&Plan::draft_2025(), &[k, l, m]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        run.allocations
            .iter()
            .map(|a| a.allocated_t)
            .collect::<Vec<_>>(),
        vec![1_068_855, 899_053, 1_612_090]
    );
    let text = &run.allocations[0].explanation;
    assert!(
        text.contains("special case (white_portland_clinker): A = E -> 220000 t"),
        "{text}"
    );
    assert!(
        text.contains("entity = sum of its units = 1068855 t"),
        "{text}"
    );
    let bp = run.balance[&Sector::Cement].balance_value;
    assert!(
        (bp - dec!(14153) / dec!(16800)).abs() < dec!(0.000001),
        "{bp}"
    );
}

#[test]
fn an_aluminium_process_counts_anode_co2_and_pfcs() {
    // Pot line P1: anode CO2 240,000 + PFC 60,000 CO2e = 300,000 t over 150,000 t liquid
    // aluminium (I = 2.0; 1.6 if the PFCs were left out). P2: 330,000 + 20,000 = 350,000 t
    // over 200,000 t (I = 1.75).
    // BP = (300,000 x 2 + 350,000 x 1.75) / 650,000 = 1,212,500 / 650,000 = 97/52
    // P1: X = 1 - 2 x 52/97 = -7/97; A = 300,000 x (1 - 1.05/97) = 300,000 - 3,247.4227
    //     = 296,752.577 -> 296,752 (margin: BP error moves A by < 0.25 t)
    // P2: X = 6/97; A = 350,000 x (1 + 0.9/97) = 350,000 + 3,247.4227 = 353,247.42 -> 353,247
    let mut p1 = process(1, Process::Electrolysis, 150_000, 240_000);
    p1.pfc_co2e_t = dec!(60_000);
    let mut p2 = process(1, Process::Electrolysis, 200_000, 330_000);
    p2.pfc_co2e_t = dec!(20_000);
    let run = allocate(
        &Plan::draft_2025(),
        &[
            entity(41, Sector::Aluminium, 300_000, vec![p1]),
            entity(42, Sector::Aluminium, 350_000, vec![p2]),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        run.allocations
            .iter()
            .map(|a| a.allocated_t)
            .collect::<Vec<_>>(),
        vec![296_752, 353_247]
    );
    assert!(
        run.allocations[0]
            .explanation
            .contains("E = anode CO2 240000 + PFC 60000 CO2e = 300000 t"),
        "{}",
        run.allocations[0].explanation
    );
}

/// A small deterministic generator (the sector below is the same on every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[test]
fn twenty_units_balance_to_their_verified_emissions_within_the_stated_residual() {
    // 20 clinker lines with intensities 0.60 to 1.40 t/t (some beyond the +/-20% band, at
    // the cap) and two special lines besides. Exact allocations of the 20 sum to their
    // emissions within the solver's tolerance (0.5 t); each floor loses less than a tonne,
    // so sum E - sum floor(A) lies in (-0.5, 20.5), and is what the solution reports.
    let plan = IntensityPlan::draft_2025();
    let mut rng = Lcg(20_261_202);
    let mut lines = Vec::new();
    for n in 0..20u32 {
        let clinker = 300_000 + rng.below(1_500_000);
        // The first two at the ends of the range, beyond the band on either side.
        let intensity_milli = match n {
            0 => 600,
            1 => 1_400,
            _ => 600 + rng.below(801),
        };
        lines.push((n + 1, clinker, clinker * intensity_milli / 1_000));
    }
    let mut processes: Vec<Vec<ProcessYear>> = lines
        .iter()
        .map(|&(f, clinker, e)| vec![process(f, Process::ClinkerLine, clinker, e)])
        .collect();
    // Two special cases: carbide slag above 15%, and a line verified below 26,000 t.
    let mut slag = process(21, Process::ClinkerLine, 500_000, 400_000);
    slag.carbide_slag_rate = dec!(0.16);
    processes.push(vec![slag]);
    processes.push(vec![process(22, Process::ClinkerLine, 20_000, 25_999)]);
    let inputs: Vec<EntityInput<'_>> = processes
        .iter()
        .enumerate()
        .map(|(i, p)| EntityInput {
            account: AccountId(100 + i as u64),
            sector: Sector::Cement,
            verified_t: p
                .iter()
                .map(|p| p.emissions_t)
                .sum::<Decimal>()
                .try_into()
                .unwrap_or(0),
            processes: p,
        })
        .collect();
    let run = allocate_sector(&plan, &inputs).unwrap_or_else(|e| panic!("{e}"));
    let solution = run.balance.unwrap_or_else(|| panic!("no balance value"));
    let balanced: Vec<_> = run
        .units
        .iter()
        .filter(|u| u.unit.exemption.is_none())
        .collect();
    assert_eq!(balanced.len(), 20);
    let verified: Decimal = balanced.iter().map(|u| u.unit.verified_t).sum();
    let exact: Decimal = balanced.iter().map(|u| u.exact_t).sum();
    let floored: Decimal = balanced.iter().map(|u| Decimal::from(u.allocated_t)).sum();
    assert!(
        (exact - verified).abs() < dec!(0.5),
        "{exact} vs {verified}"
    );
    // The residual the solver reports is the same sum, up to Decimal's 28 digits (it sums
    // E x a; here E x (1 + a) - E).
    assert!((solution.residual_t - (exact - verified)).abs() < dec!(0.000000000001));
    assert_eq!(solution.floored_shortfall_t, verified - floored);
    assert!(
        verified - floored > dec!(-0.5) && verified - floored < dec!(20.5),
        "{}",
        verified - floored
    );
    // Some lines sit at the caps: the band is exercised.
    assert!(balanced.iter().any(|u| u.a == Some(dec!(0.03))));
    assert!(balanced.iter().any(|u| u.a == Some(dec!(-0.03))));
    // The special cases get exactly their emissions.
    let special: Vec<_> = run
        .units
        .iter()
        .filter(|u| u.unit.exemption.is_some())
        .collect();
    assert_eq!(
        special
            .iter()
            .map(|u| (u.allocated_t, u.unit.exemption))
            .collect::<Vec<_>>(),
        vec![
            (
                400_000,
                Some(Exemption::CarbideSlag {
                    rate: dec!(0.16),
                    max: dec!(0.15)
                })
            ),
            (
                25_999,
                Some(Exemption::Small {
                    threshold_t: 26_000
                })
            ),
        ]
    );
}

#[test]
fn every_special_case_is_allocated_its_emissions() {
    // One line of each declared case beside an ordinary one: each special gets A = E, and
    // with only one ordinary unit left BP = its intensity, X = 0, A = E as well.
    let plan = IntensityPlan::draft_2025();
    let cases = [
        (
            Process::ClinkerLine,
            SpecialCase::WhitePortlandClinker,
            Sector::Cement,
        ),
        (
            Process::ClinkerLine,
            SpecialCase::GypsumSulfuricAcid,
            Sector::Cement,
        ),
        (
            Process::ClinkerLine,
            SpecialCase::ClosedBeforeAllocation,
            Sector::Cement,
        ),
        (
            Process::ClinkerLine,
            SpecialCase::NewlyCommissioned,
            Sector::Cement,
        ),
        (
            Process::Ironmaking,
            SpecialCase::HydrogenRichBlastFurnace,
            Sector::Steel,
        ),
    ];
    for (p, case, sector) in cases {
        let mut special = process(1, p, 500_000, 700_123);
        special.special = Some(case);
        let ordinary = process(1, p, 1_000_000, 900_000);
        let (a, b) = (vec![special], vec![ordinary]);
        let inputs = [
            EntityInput {
                account: AccountId(1),
                sector,
                verified_t: 700_123,
                processes: &a,
            },
            EntityInput {
                account: AccountId(2),
                sector,
                verified_t: 900_000,
                processes: &b,
            },
        ];
        let run = allocate_sector(&plan, &inputs).unwrap_or_else(|e| panic!("{case:?}: {e}"));
        assert_eq!(run.units[0].allocated_t, 700_123, "{case:?}");
        assert_eq!(run.units[0].unit.exemption, Some(Exemption::Declared(case)));
        assert_eq!(run.units[1].allocated_t, 900_000, "{case:?}");
        assert_eq!(
            run.balance.map(|b| b.balance_value),
            Some(dec!(0.9)),
            "{case:?}"
        );
    }
    // A steel works without ironmaking output and no special case cannot be allocated.
    let no_iron = vec![process(1, Process::Sintering, 100, 50_000)];
    let e = allocate_sector(
        &plan,
        &[EntityInput {
            account: AccountId(9),
            sector: Sector::Steel,
            verified_t: 50_000,
            processes: &no_iron,
        }],
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "entity 9: no ironmaking output for its intensity"
    );
}

#[test]
fn the_2025_draft_load_correction_and_rounding() {
    // Ff = 7.254 - 0.633 (1 - e^(-F/29.822)) - 5.643 (1 - e^(-F/6.871)), F in percent,
    // rounded to 6 places: F = 30 -> 1.281146; F = 49.9 -> 1.100731; F >= 50 -> 1.
    let curve = LoadCorrection::draft_2025();
    let ff = |f: Decimal| curve.factor(UnitCategory::CoalLarge, f);
    assert_eq!(ff(dec!(0.30)), dec!(1.281146));
    assert_eq!(ff(dec!(0.499)), dec!(1.100731));
    assert_eq!(ff(dec!(0.50)), Decimal::ONE);
    assert_eq!(curve.factor(UnitCategory::Gas, dec!(0.30)), Decimal::ONE);
    // A 600 MW coal unit at F = 30%: electricity 1,000,000 MWh x 0.7902 x 1.281146 =
    // 1,012,361.5692 -> 1,012,361; heat 15,000.9 GJ x 0.1027 = 1,540.59 -> 1,540; unit
    // 1,013,901 (one floor of the sum would give 1,013,902).
    let plan = PowerPlan::draft_2025();
    let unit = PowerUnit {
        category: UnitCategory::CoalLarge,
        electricity_mwh: dec!(1_000_000),
        heat_gj: dec!(15_000.9),
        load_factor: dec!(0.30),
        verified_t: dec!(1_200_000),
    };
    let x = allocate_power(&plan, &[unit], dec!(1_200_000)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (
            x.units[0].electricity_part_t,
            x.units[0].heat_part_t,
            x.units_sum_t
        ),
        (dec!(1_012_361), dec!(1_540), dec!(1_013_901))
    );
    // Verified 1,200,000: shortfall rate (1,200,000 - 1,013,901) / 1,200,000 = 0.155083
    // -> 0.16, not above 0.20: no floor, 1,013,901 t.
    assert_eq!(
        (x.shortfall_rate, x.allocated_t),
        (Some(dec!(0.16)), 1_013_901)
    );
    // Verified 1,272,146: rate 258,245 / 1,272,146 = 0.20300 -> 0.20, not above 0.20: no
    // floor (unrounded, it would be raised to 0.8 x 1,272,146 = 1,017,716.8 -> 1,017,716).
    let x = allocate_power(&plan, &[unit], dec!(1_272_146)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (x.shortfall_rate, x.allocated_t),
        (Some(dec!(0.20)), 1_013_901)
    );
    let unrounded = PowerPlan {
        shortfall_rate_dp: None,
        ..plan
    };
    let x = allocate_power(&unrounded, &[unit], dec!(1_272_146)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(x.allocated_t, 1_017_716);
    // Verified 1,300,000: rate 286,099 / 1,300,000 = 0.22008 -> 0.22 > 0.20: raised to
    // 0.8 x 1,300,000 = 1,040,000.
    let x = allocate_power(&plan, &[unit], dec!(1_300_000)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (x.shortfall_rate, x.allocated_t),
        (Some(dec!(0.22)), 1_040_000)
    );
}

#[test]
fn the_plan_files_carry_the_drafts_values_and_read_back() {
    let p2024 =
        Plan::from_toml(include_str!("../plans/2024.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p2024, Plan::plan_2024());
    // 2024: no pre-allocation for steel, cement and aluminium.
    for s in [Sector::Steel, Sector::Cement, Sector::Aluminium] {
        assert_eq!(p2024.pre_allocation.of(s), Decimal::ZERO);
    }
    let p2025 =
        Plan::from_toml(include_str!("../plans/2025-draft.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p2025, Plan::draft_2025());
    let b = p2025.power.benchmarks;
    assert_eq!(
        (
            b.coal_large,
            b.coal_small,
            b.unconventional_coal,
            b.gas,
            b.heat_coal,
            b.heat_gas
        ),
        (
            dec!(0.7902),
            dec!(0.8017),
            dec!(0.8162),
            dec!(0.3288),
            dec!(0.1027),
            dec!(0.0533)
        )
    );
    assert_eq!(p2025.ccer_registered_after, 20_240_122);
    for p in [p2024, p2025] {
        assert_eq!(Plan::from_toml(&p.to_toml()), Ok(p.clone()));
    }
    // A curve parameter missing is refused naming its key.
    let broken = include_str!("../plans/2025-draft.toml").replace("s2 = \"6.871\", ", "");
    assert_eq!(
        Plan::from_toml(&broken).map_err(|e| e.key),
        Err("power.load_correction.s2".to_string())
    );
}
