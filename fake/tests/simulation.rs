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

/// A seed replays its run exactly: the same schedule and workload, and the
/// same requests at the same virtual times (`trace`), for every workload;
/// different seeds draw different runs (the control).
#[test]
fn a_seed_replays_its_run_exactly() {
    for workload in [
        Workload::Idempotent,
        Workload::Transactional,
        Workload::Group,
    ] {
        for seed in 1..=25 {
            let a = simulate(seed, workload).unwrap();
            let b = simulate(seed, workload).unwrap();
            assert_eq!(a.schedule, b.schedule, "{workload:?} seed {seed}");
            assert_eq!(a.records, b.records, "{workload:?} seed {seed}");
            assert_eq!(
                a.trace, b.trace,
                "{workload:?} seed {seed} went another way"
            );
        }
        let (a, c) = (
            simulate(42, workload).unwrap(),
            simulate(43, workload).unwrap(),
        );
        assert_ne!(a.trace, c.trace, "{workload:?}: seeds 42 and 43 ran alike");
    }
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

/// The control of the group checks: with a planted bug (members split
/// across groups, or commits rewound to 0 on every assignment) some runs
/// must break each invariant, and the check must say which.
#[test]
fn the_group_checks_catch_split_ownership_and_rewound_commits() {
    let (mut owned_twice, mut went_back) = (0, 0);
    for seed in 1..=100 {
        if let Err(v) = simulate(seed, Workload::GroupControl) {
            if v.what.contains("while member") {
                owned_twice += 1;
            } else if v.what.contains("committed offset went") {
                went_back += 1;
            }
        }
    }
    eprintln!(
        "with a planted bug, of 100 seeds {owned_twice} had a partition owned twice and {went_back} a commit going back"
    );
    assert!(owned_twice > 0, "no split group was caught");
    assert!(went_back > 0, "no rewound commit was caught");
}
