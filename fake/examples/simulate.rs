//! Runs the seeded fault simulation over many seeds and prints the seed of
//! every failure: `cargo run --release -p klamm-fake --example simulate --
//! [--seeds N] [--from S] [--workload idempotent|transactional|group|all]
//! [--replay]`. With `--replay` each seed runs twice and the two runs'
//! request traces are compared: how many seeds replayed exactly.

use std::time::Instant;

use klamm_fake::sim::{Workload, simulate};

fn main() {
    let mut seeds = 10_000u64;
    let mut from = 1u64;
    let mut workloads = vec![
        Workload::Idempotent,
        Workload::Transactional,
        Workload::Group,
    ];
    let mut replay = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--seeds" => seeds = value().parse().unwrap_or_else(|_| usage("bad --seeds")),
            "--from" => from = value().parse().unwrap_or_else(|_| usage("bad --from")),
            "--workload" => {
                workloads = match value().as_str() {
                    "idempotent" => vec![Workload::Idempotent],
                    "transactional" => vec![Workload::Transactional],
                    "group" => vec![Workload::Group],
                    "all" => workloads.clone(),
                    other => usage(&format!("unknown workload {other}")),
                }
            }
            "--replay" => replay = true,
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let started = Instant::now();
    let mut failed = 0;
    let mut ran = 0;
    let mut diverged = Vec::new();
    for w in &workloads {
        let mut requests: std::collections::BTreeMap<&str, u64> = Default::default();
        let mut records = 0;
        for seed in from..from + seeds {
            ran += 1;
            match simulate(seed, *w) {
                Ok(o) => {
                    if replay && simulate(seed, *w).map(|again| again.trace) != Ok(o.trace) {
                        diverged.push(seed);
                    }
                    records += o.records;
                    for (api, n) in o.requests {
                        *requests.entry(api).or_insert(0) += n;
                    }
                }
                Err(v) => {
                    failed += 1;
                    println!("FAILED {v}");
                }
            }
        }
        println!("{w:?}: {records} records; requests handled: {requests:?}");
    }
    println!(
        "{ran} schedules ({} seeds x {} workloads), {failed} failed, in {:.1} s",
        seeds,
        workloads.len(),
        started.elapsed().as_secs_f64()
    );
    if replay {
        println!(
            "replayed exactly: {} of {ran}; diverged: {diverged:?}",
            ran - failed - diverged.len()
        );
    }
    if failed > 0 {
        std::process::exit(1);
    }
}

fn usage(why: &str) -> ! {
    eprintln!(
        "{why}\nusage: simulate [--seeds N] [--from S] [--workload idempotent|transactional|group|all] [--replay]"
    );
    std::process::exit(2);
}
