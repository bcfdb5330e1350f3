//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through
//! the fuzz entry points on stable Rust, so every seed and every input the
//! fuzzer once found keeps passing in the normal test suite.

use std::path::Path;
use std::time::{Duration, Instant};

use klamm::protocol::fuzz::{TARGETS, run};

/// The corpus holds a few hundred files; fewer means it went missing.
const MIN_TOTAL: usize = 300;
/// Replaying takes well under a second; this bounds a pathological input.
const TIME_LIMIT: Duration = Duration::from_secs(120);

#[test]
fn fuzz_corpus_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let start = Instant::now();
    let mut total = 0;
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("fuzz/corpus exists")
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in &dirs {
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            TARGETS.contains(&target.as_str()),
            "fuzz/corpus/{target} names no fuzz target"
        );
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in &files {
            let data = std::fs::read(file).unwrap();
            assert!(run(&target, &data));
            total += 1;
        }
        assert!(!files.is_empty(), "fuzz/corpus/{target} is empty");
        assert!(
            start.elapsed() < TIME_LIMIT,
            "replay is too slow (at {target})"
        );
    }
    for target in TARGETS {
        assert!(
            dirs.iter().any(|d| d.ends_with(target)),
            "no corpus for fuzz target {target}"
        );
    }
    assert!(total >= MIN_TOTAL, "only {total} corpus files");
}
