//! The synthetic market: covered entities with their facilities, activity data and
//! emissions, drawn from one seeded generator.

use proto::v1 as pb;

use super::accounting::{Accounting, PlantLine, accounting, computed};
use super::{FIRST_ENTITY, Rng};

pub(super) const PROVINCES: &[&str] = &[
    "Shandong",
    "Jiangsu",
    "Inner Mongolia",
    "Hebei",
    "Shanxi",
    "Guangdong",
    "Henan",
    "Anhui",
    "Zhejiang",
    "Xinjiang",
    "Liaoning",
    "Hubei",
    "Sichuan",
    "Shaanxi",
    "Yunnan",
];

/// One synthetic covered entity.
#[derive(Clone, Debug)]
pub(super) struct Entity {
    pub id: u64,
    pub row: pb::EntityRow,
    pub activity: Vec<pb::ActivityRow>,
    pub verified_2023: u64,
    pub co2_2024: u64,
    pub pfc_2024: u64,
    /// Buys only part of what it lacks (ends the year short).
    pub careless: bool,
    /// Industry: its monitoring plan and twelve months of 2024 data; its 2024 emissions
    /// are what they compute to.
    pub accounting: Option<Accounting>,
}

impl Entity {
    pub fn verified(&self) -> u64 {
        self.co2_2024 + self.pfc_2024
    }
}

/// What an entity's facilities hold and emit.
#[derive(Default)]
struct Plant {
    facilities: Vec<pb::Facility>,
    activity: Vec<pb::ActivityRow>,
    co2_t: u64,
    pfc_t: u64,
    lines: Vec<PlantLine>,
    accounting: Option<Accounting>,
}

/// ~2,200 power companies and ~1,500 steel, cement and aluminium companies per 3,700.
pub(super) fn market(seed: u64, entities: usize) -> Result<Vec<Entity>, String> {
    let mut rng = Rng(seed);
    let power = entities * 22 / 37;
    let steel = entities * 6 / 37;
    let cement = entities * 7 / 37;
    (0..entities)
        .map(|n| {
            let id = FIRST_ENTITY + n as u64;
            let province = rng.pick(PROVINCES).to_string();
            let (sector, name) = if n < power {
                (pb::Sector::Power, format!("Power Co. {}", n + 1))
            } else if n < power + steel {
                (pb::Sector::Steel, format!("Steel Works {}", n + 1 - power))
            } else if n < power + steel + cement {
                let k = n + 1 - power - steel;
                (pb::Sector::Cement, format!("Cement Co. {k}"))
            } else {
                let k = n + 1 - power - steel - cement;
                (pb::Sector::Aluminium, format!("Aluminium Smelter {k}"))
            };
            let plant = if sector == pb::Sector::Power {
                power_plant(&mut rng, id)
            } else {
                let mut plant = industrial_plant(&mut rng, id, sector);
                let a = accounting(&mut rng, id, sector, &plant.lines);
                // The year's emissions are what the deposits compute to (the generator's
                // own figures only shaped the plant).
                (plant.co2_t, plant.pfc_t) =
                    computed(sector, &a).map_err(|e| format!("the demo's {name}: {e}"))?;
                plant.accounting = Some(a);
                plant
            };
            Ok(entity(&mut rng, id, name, sector, province, plant))
        })
        .collect()
}

fn entity(
    rng: &mut Rng,
    id: u64,
    name: String,
    sector: pb::Sector,
    province: String,
    plant: Plant,
) -> Entity {
    let verified_2023 = (plant.co2_t + plant.pfc_t) * rng.range(92, 106) / 100;
    Entity {
        id,
        row: pb::EntityRow {
            account_id: id,
            name,
            sector: sector as i32,
            province,
            differentiated: rng.chance(1),
            facilities: plant.facilities,
            // A made-up code with a true check character: 9111 0000 + the id.
            credit_code: registry::uscc::complete_uscc(&format!("91110000{id:09}"))
                .unwrap_or_default(),
        },
        activity: plant.activity,
        verified_2023,
        co2_2024: plant.co2_t,
        pfc_2024: plant.pfc_t,
        accounting: plant.accounting,
        careless: rng.chance(3),
    }
}

/// A unit's fuel, capacity (MW), running hours and emission factor (kg/MWh).
fn unit_kind(rng: &mut Rng) -> (pb::Fuel, u64, u64, u64) {
    match rng.range(1, 100) {
        1..=80 => {
            let c = *rng.pick(&[300u64, 330, 350, 600, 660, 1_000]);
            // Large units near their 0.7910 benchmark, small near 0.8049. Emission factors
            // around the 2024 benchmarks once the load correction (Ff ~1.06-1.13 at these
            // load factors) is applied.
            let f = if c >= 400 {
                rng.range(800, 900)
            } else {
                rng.range(815, 915)
            };
            (pb::Fuel::Coal, c, rng.range(3_200, 5_000), f)
        }
        81..=92 => (
            pb::Fuel::Gas,
            *rng.pick(&[200u64, 300, 400]),
            rng.range(2_000, 4_000),
            rng.range(330, 400),
        ),
        _ => (
            pb::Fuel::UnconventionalCoal,
            *rng.pick(&[135u64, 300]),
            rng.range(4_000, 5_500),
            rng.range(790, 880),
        ),
    }
}

/// One to three generating units with their electricity, heat and emissions.
fn power_plant(rng: &mut Rng, id: u64) -> Plant {
    let mut plant = Plant::default();
    let units = match rng.range(1, 100) {
        1..=60 => 1,
        61..=90 => 2,
        _ => 3,
    };
    for u in 1..=units {
        let (fuel, capacity, hours, factor_milli) = unit_kind(rng);
        let mwh = capacity * hours * rng.range(90, 96) / 100;
        let heat_gj = if rng.chance(30) {
            mwh * rng.range(30, 150) / 100
        } else {
            0
        };
        let emissions = mwh * factor_milli / 1_000 + heat_gj * rng.range(100, 120) / 1_000;
        plant.co2_t += emissions;
        let load_bp = hours * 10_000 / 8_760;
        plant.facilities.push(pb::Facility {
            facility_id: u,
            kind: pb::FacilityKind::GeneratingUnit as i32,
            fuel: fuel as i32,
            capacity_mw: capacity as u32,
            product_line: String::new(),
            process: 0,
        });
        plant.activity.push(pb::ActivityRow {
            account_id: id,
            facility_id: u,
            electricity_mwh: mwh.to_string(),
            heat_gj: heat_gj.to_string(),
            load_factor: format!("0.{load_bp:04}"),
            emissions_t: emissions.to_string(),
            ..Default::default()
        });
    }
    plant
}

/// One process of an industrial plant: its product and emissions, t.
struct Line {
    process: pb::IndustrialProcess,
    name: String,
    output: u64,
    co2: u64,
    pfc: u64,
}

impl Plant {
    fn add(&mut self, id: u64, line: Line) {
        let facility_id = self.facilities.len() as u32 + 1;
        self.lines.push(PlantLine {
            facility_id,
            process: line.process,
            output_t: line.output,
        });
        self.co2_t += line.co2;
        self.pfc_t += line.pfc;
        self.facilities.push(pb::Facility {
            facility_id,
            kind: pb::FacilityKind::ProductLine as i32,
            product_line: line.name,
            process: line.process as i32,
            ..Default::default()
        });
        self.activity.push(pb::ActivityRow {
            account_id: id,
            facility_id,
            output_t: line.output.to_string(),
            emissions_t: line.co2.to_string(),
            pfc_co2e_t: if line.pfc > 0 {
                line.pfc.to_string()
            } else {
                String::new()
            },
            ..Default::default()
        });
    }
}

/// An industrial plant's processes with their output and emissions.
fn industrial_plant(rng: &mut Rng, id: u64, sector: pb::Sector) -> Plant {
    let lines = match sector {
        pb::Sector::Steel => steel_works(rng),
        pb::Sector::Cement => (1..=rng.range(1, 3))
            .map(|l| {
                let output = rng.range(400_000, 1_600_000);
                let co2 = output * rng.range(820, 900) / 1_000;
                line(
                    pb::IndustrialProcess::ClinkerLine,
                    format!("clinker line {l}"),
                    output,
                    co2,
                )
            })
            .collect(),
        // A smelter's pot lines: anode CO2, and PFCs as CO2e.
        _ => (1..=rng.range(1, 3))
            .map(|l| {
                let output = rng.range(50_000, 180_000);
                let co2 = output * rng.range(1_500, 1_700) / 1_000;
                Line {
                    pfc: output * rng.range(300, 900) / 1_000,
                    ..line(
                        pb::IndustrialProcess::Electrolysis,
                        format!("pot line {l}"),
                        output,
                        co2,
                    )
                }
            })
            .collect(),
    };
    let mut plant = Plant::default();
    for l in lines {
        plant.add(id, l);
    }
    plant
}

fn line(process: pb::IndustrialProcess, name: String, output: u64, co2: u64) -> Line {
    Line {
        process,
        name,
        output,
        co2,
        pfc: 0,
    }
}

/// One or two blast furnaces, a sinter plant and the steelmaking.
fn steel_works(rng: &mut Rng) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut hot_metal = 0;
    for l in 1..=rng.range(1, 2) {
        let output = rng.range(200_000, 1_400_000);
        hot_metal += output;
        let co2 = output * rng.range(1_250, 1_550) / 1_000;
        lines.push(line(
            pb::IndustrialProcess::Ironmaking,
            format!("blast furnace {l}"),
            output,
            co2,
        ));
    }
    let sinter = hot_metal * 13 / 10;
    let co2 = sinter * rng.range(150, 220) / 1_000;
    lines.push(line(
        pb::IndustrialProcess::Sintering,
        "sinter plant".into(),
        sinter,
        co2,
    ));
    let co2 = hot_metal * rng.range(150, 300) / 1_000;
    lines.push(line(
        pb::IndustrialProcess::Other,
        "steelmaking".into(),
        hot_metal * 11 / 10,
        co2,
    ));
    lines
}
