//! The seeded fault simulation (`klamm_fake::sim`) over a range of seeds:
//! each failure prints its seed, and `simulate(seed, workload)` runs it
//! again. `scripts/simulate` runs thousands.

use klamm_fake::sim::{Workload, simulate};

/// Seeds each workload runs here (`KLAMM_SIM_SEEDS` overrides).
const SEEDS: u64 = 300;

fn seeds() -> u64 {
    std::env::var("KLAMM_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEEDS)
}

fn run(workload: Workload) {
    let mut failures = Vec::new();
    let mut records = 0;
    for seed in 1..=seeds() {
        match simulate(seed, workload) {
            Ok(o) => records += o.records,
            Err(v) => failures.push(v.to_string()),
        }
    }
    eprintln!(
        "{workload:?}: {} seeds, {} failed, {records} records",
        seeds(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "failing seeds:\n{}",
        failures.join("\n")
    );
}

#[test]
fn idempotent_producer_schedules() {
    run(Workload::Idempotent);
}

#[test]
fn transactional_producer_schedules() {
    run(Workload::Transactional);
}

#[test]
fn consumer_group_schedules() {
    run(Workload::Group);
}

/// The same seed draws the same schedule and workload; different seeds
/// draw different ones (the control).
#[test]
fn a_seed_fixes_its_schedule() {
    let a = simulate(42, Workload::Idempotent).unwrap();
    let b = simulate(42, Workload::Idempotent).unwrap();
    assert_eq!(a.schedule, b.schedule);
    assert_eq!(a.records, b.records);
    let c = simulate(43, Workload::Idempotent).unwrap();
    assert_ne!((a.schedule, a.records), (c.schedule, c.records));
}

/// The control: without idempotence the same schedules write some record
/// twice, and the invariant check says so.
#[test]
fn the_check_catches_duplicates_without_idempotence() {
    let caught = (1..=100)
        .filter_map(|seed| simulate(seed, Workload::PlainProducerControl).err())
        .filter(|v| v.what.contains("lost, repeated or reordered"))
        .count();
    assert!(caught > 0, "no run without idempotence wrote a duplicate");
    eprintln!("without idempotence, {caught} of 100 seeds broke the invariant");
}
