//! Accounting for what a reader got back against what the producer
//! wrote: per partition, how many times each record of the round-trip
//! pattern was read and at which offset first; from that and the records'
//! outcomes, the figures the fault tests assert on (lost, duplicated,
//! reordered, not ours, misplaced, failed yet stored).

use std::fmt;

use klamm::protocol::records::Header;

use super::faults::{Outcomes, SIZE};
use super::pattern;
use super::read::Stored;

/// The record index a pattern key names, if it is `k-{p}-{i}` for this
/// partition.
pub fn index_of(p: i32, key: Option<&[u8]>) -> Option<u64> {
    let key = std::str::from_utf8(key?).ok()?;
    let rest = key.strip_prefix("k-")?;
    let (part, index) = rest.split_once('-')?;
    (part.parse::<i32>().ok()? == p).then_some(())?;
    index.parse().ok()
}

/// Checks a raw-read record against the pattern's `i`-th record of `p`.
pub fn check_stored(r: &Stored, p: i32, i: u64) -> Result<(), String> {
    let at = format!("{p}/{i} at offset {}", r.offset);
    if r.value.as_deref() != Some(&pattern::value(p, i, SIZE)[..]) {
        return Err(format!("{at}: value differs"));
    }
    let want = vec![
        Header::new("seq", i.to_string()),
        Header::new("part", p.to_string()),
    ];
    if r.headers != want {
        return Err(format!("{at}: headers {:?}", r.headers));
    }
    if r.timestamp != pattern::BASE_TS + i as i64 {
        return Err(format!("{at}: timestamp {}", r.timestamp));
    }
    Ok(())
}

/// What a reader got back, against what was written: per partition, how
/// many times each record index was read, and at which offset first.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    parts: Vec<PartTally>,
}

#[derive(Debug, Default, Clone)]
struct PartTally {
    seen: Vec<u32>,
    first_offset: Vec<i64>,
    read: u64,
    /// Records that are not the pattern's for this partition, or whose
    /// content differs from it.
    bad: u64,
    notes: Vec<String>,
}

/// The figures a scenario reports and asserts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// Records `send` accepted.
    pub written: u64,
    /// Records whose future resolved Ok.
    pub acked: u64,
    /// Records whose future resolved with an error.
    pub failed: u64,
    /// Records the reader got.
    pub read: u64,
    /// Acknowledged records the reader never got.
    pub lost: u64,
    /// Extra copies of records the reader got more than once.
    pub duplicated: u64,
    /// Acknowledged records stored before an acknowledged record written
    /// earlier to the same partition. (A record that failed may have been
    /// written all the same, and anywhere: a request the producer gave up
    /// on can reach the log after later ones, so failed records are only
    /// counted, in `failed_stored`.)
    pub reordered: u64,
    /// Records read that are not a written record (or differ from it).
    pub bad: u64,
    /// Acknowledged records read at another offset than acknowledged.
    pub misplaced: u64,
    /// Records that failed and were read all the same (the broker wrote
    /// them; the producer could not know).
    pub failed_stored: u64,
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "written={} acked={} failed={} read={} lost={} duplicated={} reordered={} bad={} misplaced={} failed_stored={}",
            self.written,
            self.acked,
            self.failed,
            self.read,
            self.lost,
            self.duplicated,
            self.reordered,
            self.bad,
            self.misplaced,
            self.failed_stored
        )
    }
}

impl Figures {
    /// Nothing lost, duplicated, reordered, foreign or misplaced, and
    /// every record written acknowledged.
    pub fn assert_exact(&self, what: &str) {
        assert_eq!(
            (self.acked, self.failed),
            (self.written, 0),
            "{what}: every record acknowledged ({self})"
        );
        self.assert_nothing_lost(what);
    }

    /// Nothing acknowledged lost, nothing duplicated, reordered, foreign
    /// or misplaced (records that failed may or may not be stored).
    pub fn assert_nothing_lost(&self, what: &str) {
        assert_eq!(self.lost, 0, "{what}: acknowledged records lost ({self})");
        assert_eq!(self.duplicated, 0, "{what}: duplicates ({self})");
        assert_eq!(self.reordered, 0, "{what}: out of order ({self})");
        assert_eq!(self.bad, 0, "{what}: records not written ({self})");
        assert_eq!(self.misplaced, 0, "{what}: offsets differ ({self})");
    }
}

/// The largest record index a tally accepts (a garbled key must not make
/// it allocate without bound).
const MAX_INDEX: u64 = 1 << 24;

impl Tally {
    pub fn new(partitions: i32) -> Tally {
        Tally {
            parts: vec![PartTally::default(); partitions as usize],
        }
    }

    /// Counts a record read from partition `p` at `offset`: `index` is the
    /// pattern index its key names (None when it names none), `content`
    /// whether the rest of it is the pattern's.
    pub fn add(&mut self, p: i32, offset: i64, index: Option<u64>, content: Result<(), String>) {
        let Some(t) = self.parts.get_mut(p as usize) else {
            panic!("a record from partition {p}, which was not written");
        };
        t.read += 1;
        let Some(i) = index.filter(|&i| i < MAX_INDEX) else {
            t.bad += 1;
            if t.notes.len() < 10 {
                t.notes
                    .push(format!("{p} offset {offset}: not a pattern key"));
            }
            return;
        };
        if let Err(e) = content {
            t.bad += 1;
            if t.notes.len() < 10 {
                t.notes.push(e);
            }
        }
        let i = i as usize;
        if t.seen.len() <= i {
            t.seen.resize(i + 1, 0);
            t.first_offset.resize(i + 1, -1);
        }
        t.seen[i] += 1;
        if t.seen[i] == 1 {
            t.first_offset[i] = offset;
        } else if t.notes.len() < 10 {
            t.notes.push(format!(
                "{p}/{i} again at offset {offset} (first at {})",
                t.first_offset[i]
            ));
        }
    }

    /// Records read so far.
    pub fn read(&self) -> u64 {
        self.parts.iter().map(|t| t.read).sum()
    }

    /// Records read so far from partition `p`.
    pub fn read_from(&self, p: i32) -> u64 {
        self.parts.get(p as usize).map_or(0, |t| t.read)
    }

    /// The first notes of what was wrong, for failure messages.
    pub fn notes(&self) -> Vec<String> {
        self.parts.iter().flat_map(|t| t.notes.clone()).collect()
    }

    /// The figures of this read against the producer's outcomes.
    pub fn figures(&self, out: &Outcomes) -> Figures {
        let mut f = Figures {
            written: out.written(),
            acked: out.acked(),
            failed: out.failed(),
            ..Figures::default()
        };
        for (p, t) in self.parts.iter().enumerate() {
            let offsets = out.offsets.get(p).map(Vec::as_slice).unwrap_or_default();
            f.read += t.read;
            f.bad += t.bad;
            f.duplicated += t
                .seen
                .iter()
                .map(|&n| u64::from(n.saturating_sub(1)))
                .sum::<u64>();
            // Indexes past what was written are not records of ours.
            f.bad += t
                .seen
                .iter()
                .skip(offsets.len())
                .map(|&n| u64::from(n))
                .sum::<u64>();
            // The highest offset of an acknowledged record so far, in the
            // order the records were written.
            let mut highest: Option<i64> = None;
            for (i, &acked_at) in offsets.iter().enumerate() {
                if acked_at < -1 {
                    f.failed_stored += u64::from(t.seen.get(i).is_some_and(|&n| n > 0));
                    continue;
                }
                match t.seen.get(i) {
                    None | Some(0) => f.lost += 1,
                    Some(_) => {
                        let at = t.first_offset[i];
                        if acked_at >= 0 && at != acked_at {
                            f.misplaced += 1;
                        }
                        if highest.is_some_and(|h| at < h) {
                            f.reordered += 1;
                        }
                        highest = Some(highest.map_or(at, |h| h.max(at)));
                    }
                }
            }
        }
        f
    }
}
