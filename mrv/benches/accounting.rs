//! The annual computation of the industrial sectors at national scale: 1,500 entities
//! (500 steel works, 500 cement companies, 500 smelters) x 12 months, each month validated
//! against the factors and the plan as a deposit is, then each year computed. The shapes
//! are the real ones: a steel works of two blast furnaces, a sinter plant, a BOF shop and a
//! co-firing unit with a measured NCV (weighted over the months); cement of three lines,
//! one on carbide slag; smelters of three pot lines, one measuring anode-effect minutes.
//! Quantities vary month to month. (The registry's deposit path, with its journal and
//! fsync, is measured separately; this is the pure accounting.)

use std::collections::BTreeSet;
use std::hint::black_box;
use std::str::FromStr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mrv::factors::{Factors, Sector};
use mrv::month::{Month, Reading, Role, Row};
use mrv::plan::{Dqcp, Facility, Meter, Param, ProcessKind, Scope, Subject};
use rust_decimal::Decimal;

const ENTITIES_PER_SECTOR: usize = 500;

fn d(cents: u64) -> Decimal {
    Decimal::new(cents as i64, 2)
}

fn facility(id: u32, kind: ProcessKind, clinker: Option<&str>) -> Facility {
    Facility {
        id,
        name: format!("{} {id}", kind.name()),
        kind,
        clinker_type: clinker.map(str::to_string),
    }
}

fn plan(sector: Sector, facilities: Vec<Facility>, measured: &[(Param, Subject)]) -> Dqcp {
    Dqcp {
        year: 2025,
        sector,
        facilities,
        meters: vec![Meter {
            id: "WB-01".into(),
            measures: "weighbridge".into(),
            calibrated: 20240301,
        }],
        measured: measured.iter().cloned().collect::<BTreeSet<_>>(),
    }
}

fn row(scope: Scope, role: Role, item: &str, cents: u64) -> Row {
    Row {
        scope,
        role,
        item: item.into(),
        quantity: d(cents),
    }
}

/// A month's variation for entity `e`, month `m`: 95-105% of the base.
fn vary(base: u64, e: usize, m: u8) -> u64 {
    base * (95 + ((e * 7 + usize::from(m) * 13) % 11) as u64) / 100
}

fn steel(e: usize) -> (Dqcp, Vec<Month>) {
    use ProcessKind as K;
    use Role::{Consumed as C, Produced as P, Sold as S};
    let p = plan(
        Sector::Steel,
        vec![
            facility(1, K::Sintering, None),
            facility(2, K::Ironmaking, None),
            facility(3, K::Ironmaking, None),
            facility(4, K::Bof, None),
            facility(5, K::CoFiring, None),
        ],
        &[(Param::Ncv, Subject::Fuel("bituminous".into()))],
    );
    let months = (1..=12u8)
        .map(|m| {
            let hm = vary(9_000_000, e, m); // 90,000.00 t of hot metal per furnace
            let en = Scope::Enterprise;
            let f = Scope::Facility;
            let rows = vec![
                row(en, C, "coke", hm * 2 * 40 / 100),
                row(en, C, "bituminous", hm * 2 * 15 / 100),
                row(en, C, "limestone", hm / 10),
                row(en, C, "dolomite", hm / 25),
                row(en, C, "electrode", hm / 1000),
                row(en, C, "scrap", hm / 5),
                row(en, S, "tar", hm / 200),
                row(en, S, "crude_benzene", hm / 500),
                row(en, P, "crude_steel", hm * 22 / 10),
                row(f(1), C, "coke", hm * 13 / 100),
                row(f(1), P, "sinter", hm * 26 / 10),
                row(f(2), C, "coke", hm * 35 / 100),
                row(f(2), C, "bituminous", hm * 15 / 100),
                row(f(2), P, "bfg", hm * 15 / 100),
                row(f(2), P, "hot_metal", hm),
                row(f(3), C, "coke", hm * 36 / 100),
                row(f(3), C, "bituminous", hm * 14 / 100),
                row(f(3), P, "bfg", hm * 15 / 100),
                row(f(3), P, "hot_metal", hm),
                row(f(4), C, "cog", hm / 1000),
                row(f(4), P, "bof_gas", hm * 2 / 100),
                row(f(4), P, "crude_steel", hm * 22 / 10),
                row(f(5), C, "bfg", hm * 20 / 100),
                row(f(5), C, "cog", hm / 200),
                row(f(5), P, "power_mwh", hm / 3),
            ];
            let ncv = Reading {
                param: Param::Ncv,
                subject: Subject::Fuel("bituminous".into()),
                value: Decimal::from_str(if m % 2 == 0 { "23.950" } else { "23.410" })
                    .unwrap_or_default(),
                evidence: format!("CNAS {e}-{m}"),
            };
            month(m, rows, vec![ncv])
        })
        .collect();
    (p, months)
}

fn month(m: u8, rows: Vec<Row>, readings: Vec<Reading>) -> Month {
    Month {
        year: 2025,
        month: m,
        rows,
        readings,
        stoppages: Vec::new(),
    }
}

fn cement(e: usize) -> (Dqcp, Vec<Month>) {
    let facilities = (1..=3)
        .map(|i| facility(i, ProcessKind::ClinkerLine, Some("portland")))
        .collect();
    let p = plan(Sector::Cement, facilities, &[]);
    let months = (1..=12u8)
        .map(|m| {
            let mut rows = Vec::new();
            for i in 1..=3u32 {
                let clinker = vary(10_000_000, e + i as usize, m);
                rows.push(row(
                    Scope::Facility(i),
                    Role::Consumed,
                    "bituminous",
                    clinker * 12 / 100,
                ));
                rows.push(row(Scope::Facility(i), Role::Produced, "clinker", clinker));
                if i == 1 {
                    rows.push(row(
                        Scope::Facility(i),
                        Role::Consumed,
                        "carbide_slag",
                        clinker / 20,
                    ));
                }
            }
            rows.push(row(Scope::Enterprise, Role::Consumed, "diesel", 50_000));
            month(m, rows, Vec::new())
        })
        .collect();
    (p, months)
}

fn aluminium(e: usize) -> (Dqcp, Vec<Month>) {
    let facilities = (1..=3)
        .map(|i| facility(i, ProcessKind::Electrolysis, None))
        .collect();
    let p = plan(
        Sector::Aluminium,
        facilities,
        &[(Param::AnodeEffectMinutes, Subject::Facility(1))],
    );
    let months = (1..=12u8)
        .map(|m| {
            let mut rows = Vec::new();
            for i in 1..=3u32 {
                let metal = vary(3_000_000, e + i as usize, m);
                rows.push(row(
                    Scope::Facility(i),
                    Role::Consumed,
                    "prebaked_anode",
                    metal * 41 / 100,
                ));
                rows.push(row(
                    Scope::Facility(i),
                    Role::Produced,
                    "liquid_aluminium",
                    metal,
                ));
            }
            rows.push(row(
                Scope::Enterprise,
                Role::Consumed,
                "natural_gas",
                30_000,
            ));
            let minutes = Reading {
                param: Param::AnodeEffectMinutes,
                subject: Subject::Facility(1),
                value: Decimal::new(20 + i64::from(m % 5), 3),
                evidence: format!("potroom log {e}-{m}"),
            };
            month(m, rows, vec![minutes])
        })
        .collect();
    (p, months)
}

fn factors(text: &str) -> Factors {
    Factors::from_toml(text).unwrap_or_else(|e| panic!("{e}"))
}

fn bench(c: &mut Criterion) {
    let steel_f = factors(include_str!("../../registry/factors/steel-2024.toml"));
    let cement_f = factors(include_str!("../../registry/factors/cement-2024.toml"));
    let aluminium_f = factors(include_str!("../../registry/factors/aluminium-2024.toml"));
    let mut entities: Vec<(&Factors, Dqcp, Vec<Month>)> = Vec::new();
    for e in 0..ENTITIES_PER_SECTOR {
        let (p, m) = steel(e);
        entities.push((&steel_f, p, m));
        let (p, m) = cement(e);
        entities.push((&cement_f, p, m));
        let (p, m) = aluminium(e);
        entities.push((&aluminium_f, p, m));
    }
    let mut group = c.benchmark_group("mrv");
    group.sample_size(10);
    group.throughput(Throughput::Elements(entities.len() as u64));
    group.bench_function(
        "1500 entities x 12 months: validate each deposit, compute each year",
        |b| {
            b.iter(|| {
                let mut total_t = 0u64;
                for (f, p, months) in &entities {
                    for m in months {
                        m.validate(f, p).unwrap_or_else(|e| panic!("{e}"));
                    }
                    total_t += mrv::compute(f, p, months)
                        .unwrap_or_else(|e| panic!("{e}"))
                        .total_t;
                }
                black_box(total_t)
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
