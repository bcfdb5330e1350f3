//! Partition ownership in a consumer group, checked from the members' own
//! logs: what each member was assigned, gave up, lost and processed, each
//! with a wall-clock timestamp (microseconds; every member runs on this
//! machine, so the clocks are one). The logs of klamm's `GroupConsumer` and
//! of the peers' `group-consume` mode (peers/PATTERN.md, "Group members")
//! become [`MemberLog`]s, and [`check`] replays them merged in time order.
//!
//! What it asserts (each a [`Rule`] a violation names):
//! - a partition is assigned only when no member owns it: ownership
//!   intervals (assigned to revoked or lost) never overlap, not even by a
//!   microsecond ([`Rule::Overlap`]);
//! - a member revokes only what it owns, processes records only of
//!   partitions it owns, in offset order, one after the other within one
//!   ownership ([`Rule::NotOwned`], [`Rule::RecordNotOwned`],
//!   [`Rule::OutOfOrder`]);
//! - eager protocols: a member owns nothing when it is assigned (it revoked
//!   everything first), and once the last member has reported a generation,
//!   every partition is owned by a member of that generation
//!   ([`Rule::EagerKept`], [`Rule::GenerationIncomplete`]);
//! - cooperative protocols (classic cooperative-sticky, and KIP-848): a
//!   generation may leave out only partitions revoked since the previous
//!   one (held back while they move), and a revoked partition goes next to
//!   another member: only partitions that move are revoked
//!   ([`Rule::RevokedUnmoved`]);
//! - at each [`Checkpoint`] (a point the test found the group settled),
//!   every partition is owned by exactly one of the members that should be
//!   there, evenly ([`Rule::CheckpointCoverage`], [`Rule::CheckpointBalance`]);
//! - every produced record was processed, with its value
//!   ([`Rule::RecordMissing`], [`Rule::RecordWrong`]); nothing was lost
//!   ([`Rule::Lost`]);
//! - a record is processed again only by a later owner of its partition
//!   (across a rebalance), and only if it was not committed when that
//!   ownership began; under [`Rules::exactly_once`] never
//!   ([`Rule::Duplicate`]);
//! - a member commits only partitions it owns, and never an offset beyond
//!   what the group has processed: committing `o` means every record of the
//!   partition below `o` was processed before ([`Rule::CommitNotOwned`],
//!   [`Rule::CommitBeyondConsumed`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

/// A topic and partition.
pub type Tp = (String, i32);

/// Microseconds since the epoch, on the clock every member uses.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// What happened to a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// Partitions added to the member, in `generation` (the classic
    /// protocol's generation id; KIP-848's member epoch).
    Assigned {
        partitions: Vec<Tp>,
        generation: i32,
    },
    /// Partitions the member gave up (after committing).
    Revoked { partitions: Vec<Tp> },
    /// Partitions the member lost (nothing committed).
    Lost { partitions: Vec<Tp> },
    /// Offsets the member committed (each the next offset to read).
    Committed { offsets: Vec<(Tp, i64)> },
    /// One record the member processed.
    Record {
        tp: Tp,
        offset: i64,
        value: Option<String>,
    },
}

/// One timestamped event of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub ts_us: i64,
    pub what: What,
}

impl Event {
    /// Events at the same microsecond on different members: a partition's
    /// release comes before its next assignment, which comes before records.
    fn rank(&self) -> u8 {
        match self.what {
            What::Committed { .. } | What::Revoked { .. } | What::Lost { .. } => 0,
            What::Assigned { .. } => 1,
            What::Record { .. } => 2,
        }
    }

    /// An event from a peer's JSON line (`"type":"group"`); `None` for the
    /// other lines.
    pub fn from_json(line: &Value) -> Result<Option<Event>, String> {
        if line["type"] != "group" {
            return Ok(None);
        }
        let ts_us = line["ts_us"]
            .as_i64()
            .ok_or_else(|| format!("no ts_us in {line}"))?;
        let partitions = || -> Result<Vec<Tp>, String> {
            line["partitions"]
                .as_array()
                .ok_or_else(|| format!("no partitions in {line}"))?
                .iter()
                .map(|tp| match (tp[0].as_str(), tp[1].as_i64()) {
                    (Some(t), Some(p)) => Ok((t.to_string(), p as i32)),
                    _ => Err(format!("bad partition {tp} in {line}")),
                })
                .collect()
        };
        let what = match line["event"].as_str() {
            Some("assigned") => What::Assigned {
                partitions: partitions()?,
                generation: line["generation"]
                    .as_i64()
                    .ok_or_else(|| format!("no generation in {line}"))?
                    as i32,
            },
            Some("revoked") => What::Revoked {
                partitions: partitions()?,
            },
            Some("lost") => What::Lost {
                partitions: partitions()?,
            },
            Some("committed") => What::Committed {
                offsets: line["offsets"]
                    .as_array()
                    .ok_or_else(|| format!("no offsets in {line}"))?
                    .iter()
                    .map(|o| match (o[0].as_str(), o[1].as_i64(), o[2].as_i64()) {
                        (Some(t), Some(p), Some(off)) => Ok(((t.to_string(), p as i32), off)),
                        _ => Err(format!("bad offset {o} in {line}")),
                    })
                    .collect::<Result<_, String>>()?,
            },
            Some("record") => What::Record {
                tp: (
                    line["topic"]
                        .as_str()
                        .ok_or_else(|| format!("no topic in {line}"))?
                        .to_string(),
                    line["partition"]
                        .as_i64()
                        .ok_or_else(|| format!("no partition in {line}"))?
                        as i32,
                ),
                offset: line["offset"]
                    .as_i64()
                    .ok_or_else(|| format!("no offset in {line}"))?,
                value: line["value"].as_str().map(str::to_string),
            },
            _ => return Err(format!("unknown group event in {line}")),
        };
        Ok(Some(Event { ts_us, what }))
    }
}

/// Everything one member did, in the order it did it.
#[derive(Debug, Clone, Default)]
pub struct MemberLog {
    pub name: String,
    pub events: Vec<Event>,
}

impl MemberLog {
    pub fn new(name: &str) -> MemberLog {
        MemberLog {
            name: name.to_string(),
            events: Vec::new(),
        }
    }

    pub fn push(&mut self, ts_us: i64, what: What) {
        self.events.push(Event { ts_us, what });
    }

    /// The partitions the member owns after its last event.
    pub fn owned(&self) -> BTreeSet<Tp> {
        let mut owned = BTreeSet::new();
        for e in &self.events {
            match &e.what {
                What::Assigned { partitions, .. } => owned.extend(partitions.iter().cloned()),
                What::Revoked { partitions } | What::Lost { partitions } => {
                    for tp in partitions {
                        owned.remove(tp);
                    }
                }
                What::Record { .. } | What::Committed { .. } => {}
            }
        }
        owned
    }

    /// How many (non-empty) assignments and revocations it had.
    pub fn rebalance_counts(&self) -> (usize, usize) {
        let mut counts = (0, 0);
        for e in &self.events {
            match &e.what {
                What::Assigned { partitions, .. } if !partitions.is_empty() => counts.0 += 1,
                What::Revoked { partitions } if !partitions.is_empty() => counts.1 += 1,
                _ => {}
            }
        }
        counts
    }

    pub fn records(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e.what, What::Record { .. }))
            .count()
    }

    /// How many commits it printed.
    pub fn commits(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e.what, What::Committed { .. }))
            .count()
    }
}

/// How the group rebalances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Classic protocol, eager assignor (range, roundrobin): everything is
    /// revoked before every assignment.
    Eager,
    /// Classic protocol, cooperative-sticky.
    Cooperative,
    /// KIP-848 (`group.protocol=consumer`): incremental like cooperative,
    /// but each member has its own epoch, so there are no group-wide
    /// generations to check.
    Consumer,
}

/// What [`check`] holds the logs to.
#[derive(Debug, Clone)]
pub struct Rules {
    pub protocol: Protocol,
    /// Every partition of the subscription.
    pub partitions: BTreeSet<Tp>,
    /// Whether every record processed twice is a violation, or only those
    /// processed twice in one ownership or after they were committed (the
    /// rest are counted in [`Report::duplicates`]).
    pub exactly_once: bool,
}

/// A point at which the test found the group settled: `members` (by name)
/// are the ones in the group.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub ts_us: i64,
    pub label: String,
    pub members: Vec<String>,
}

/// Which rule a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    Overlap,
    NotOwned,
    Foreign,
    EagerKept,
    GenerationIncomplete,
    RevokedUnmoved,
    CheckpointCoverage,
    CheckpointBalance,
    RecordNotOwned,
    OutOfOrder,
    RecordMissing,
    RecordWrong,
    Duplicate,
    Lost,
    CommitNotOwned,
    CommitBeyondConsumed,
}

#[derive(Debug, Clone)]
pub struct Violation {
    pub rule: Rule,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.rule, self.detail)
    }
}

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct Report {
    pub violations: Vec<Violation>,
    /// The generations members reported (classic protocols), in order.
    pub generations: Vec<i32>,
    /// Records processed, by all members.
    pub processed: usize,
    /// Records processed more than once (each counted once).
    pub duplicates: usize,
    /// Commits the members printed, and the partition offsets in them.
    pub commits: usize,
    pub committed_offsets: usize,
}

impl Report {
    pub fn has(&self, rule: Rule) -> bool {
        self.violations.iter().any(|v| v.rule == rule)
    }

    /// The violations, one a line (at most `n`).
    pub fn describe(&self, n: usize) -> String {
        let mut s: Vec<String> = self
            .violations
            .iter()
            .take(n)
            .map(|v| format!("  {v}"))
            .collect();
        if self.violations.len() > n {
            s.push(format!("  … {} more", self.violations.len() - n));
        }
        s.join("\n")
    }
}

/// Every member's events in one time order: each member's own events sorted
/// by timestamp (stably: Sarama's claims print from several goroutines),
/// merged by timestamp, ties going to releases, then assignments, then
/// records. Each entry is (member index, event).
pub fn merged(logs: &[MemberLog]) -> Vec<(usize, &Event)> {
    let sorted: Vec<Vec<&Event>> = logs
        .iter()
        .map(|l| {
            let mut v: Vec<&Event> = l.events.iter().collect();
            v.sort_by_key(|e| e.ts_us);
            v
        })
        .collect();
    let mut heads = vec![0usize; logs.len()];
    let mut out = Vec::with_capacity(sorted.iter().map(Vec::len).sum());
    loop {
        let mut best: Option<(i64, u8, usize)> = None;
        for (m, events) in sorted.iter().enumerate() {
            if let Some(e) = events.get(heads[m]) {
                let key = (e.ts_us, e.rank(), m);
                if best.is_none_or(|b| key < b) {
                    best = Some(key);
                }
            }
        }
        let Some((_, _, m)) = best else { break };
        out.push((m, sorted[m][heads[m]]));
        heads[m] += 1;
    }
    out
}

/// Who owns what after every event up to and including `ts_us`, by member
/// name (inconsistencies ignored; [`check`] reports them).
pub fn owners_at(logs: &[MemberLog], ts_us: i64) -> BTreeMap<Tp, String> {
    let mut owner: BTreeMap<Tp, usize> = BTreeMap::new();
    for (m, e) in merged(logs) {
        if e.ts_us > ts_us {
            break;
        }
        match &e.what {
            What::Assigned { partitions, .. } => {
                for tp in partitions {
                    owner.insert(tp.clone(), m);
                }
            }
            What::Revoked { partitions } | What::Lost { partitions } => {
                for tp in partitions {
                    if owner.get(tp) == Some(&m) {
                        owner.remove(tp);
                    }
                }
            }
            What::Record { .. } | What::Committed { .. } => {}
        }
    }
    owner
        .into_iter()
        .map(|(tp, m)| (tp, logs[m].name.clone()))
        .collect()
}

/// Whether `owners` is a settled assignment among `members`: every
/// partition owned by one of them, each holding its even share (within
/// one). `None` if so, else why not.
pub fn unsettled(
    owners: &BTreeMap<Tp, String>,
    members: &[String],
    partitions: &BTreeSet<Tp>,
) -> Option<String> {
    let missing: Vec<&Tp> = partitions
        .iter()
        .filter(|tp| !owners.contains_key(*tp))
        .collect();
    if !missing.is_empty() {
        return Some(format!("no owner for {missing:?}"));
    }
    if let Some((tp, m)) = owners.iter().find(|(_, m)| !members.contains(m)) {
        return Some(format!(
            "{tp:?} owned by {m}, which should not be in the group"
        ));
    }
    let n = partitions.len();
    let k = members.len().max(1);
    let (lo, hi) = (n / k, n.div_ceil(k));
    for m in members {
        let count = owners.values().filter(|o| *o == m).count();
        if count < lo || count > hi {
            return Some(format!(
                "{m} owns {count} partitions, not {lo}..={hi} of {n} among {k} members"
            ));
        }
    }
    None
}

/// Replays the logs and checks them against `rules`, the `checkpoints`,
/// and the `produced` records ((partition, offset) → value).
pub fn check(
    logs: &[MemberLog],
    rules: &Rules,
    checkpoints: &[Checkpoint],
    produced: &BTreeMap<(Tp, i64), String>,
) -> Report {
    let mut report = Report::default();
    let mut violations = Vec::new();
    let mut v = |rule: Rule, detail: String| violations.push(Violation { rule, detail });
    let name = |m: usize| logs[m].name.as_str();
    let classic = rules.protocol != Protocol::Consumer;
    let incremental = rules.protocol != Protocol::Eager;

    // Who owns each partition, since when.
    let mut owner: BTreeMap<Tp, (usize, i64)> = BTreeMap::new();
    let mut owned: Vec<BTreeSet<Tp>> = vec![BTreeSet::new(); logs.len()];
    // The offset a member's next record of a partition must have.
    let mut next: BTreeMap<(usize, Tp), i64> = BTreeMap::new();
    // The last revocation of a partition not yet followed by an assignment.
    let mut released: BTreeMap<Tp, (usize, i64)> = BTreeMap::new();
    // Revocations by position in the merged order.
    let mut revocations: Vec<(usize, Tp)> = Vec::new();
    // Per generation: the owners right after the last member reported it,
    // where that was, and who reported it.
    struct Snap {
        pos: usize,
        ts_us: i64,
        owners: BTreeMap<Tp, usize>,
        reporters: BTreeSet<usize>,
    }
    let mut generations: BTreeMap<i32, Snap> = BTreeMap::new();
    // Who processed each record, in which ownership, with what value.
    type Processing = (usize, Option<usize>, Option<String>);
    let mut processed: BTreeMap<(Tp, i64), Vec<Processing>> = BTreeMap::new();
    // Each ownership of a partition (an assignment to a member until its
    // release) has a number; `began_at` is the group's committed offset of
    // the partition when it began (-1: none).
    let mut ownership: BTreeMap<Tp, usize> = BTreeMap::new();
    let mut began_at: Vec<i64> = Vec::new();
    // The last offset committed for each partition.
    let mut committed: BTreeMap<Tp, i64> = BTreeMap::new();
    // Per partition, the first offset not yet processed by anyone since
    // the first produced one: every record below it was processed.
    let mut consumed: BTreeMap<Tp, i64> = BTreeMap::new();
    for (tp, offset) in produced.keys() {
        let c = consumed.entry(tp.clone()).or_insert(*offset);
        *c = (*c).min(*offset);
    }
    let (mut commits, mut committed_offsets) = (0, 0);
    let mut cps: Vec<&Checkpoint> = checkpoints.iter().collect();
    cps.sort_by_key(|c| c.ts_us);
    let mut cps = cps.into_iter().peekable();

    let at_checkpoint =
        |c: &Checkpoint, owner: &BTreeMap<Tp, (usize, i64)>, v: &mut dyn FnMut(Rule, String)| {
            let owners: BTreeMap<Tp, String> = owner
                .iter()
                .map(|(tp, (m, _))| (tp.clone(), name(*m).to_string()))
                .collect();
            if let Some(why) = unsettled(&owners, &c.members, &rules.partitions) {
                let rule = if why.contains(" owns ") {
                    Rule::CheckpointBalance
                } else {
                    Rule::CheckpointCoverage
                };
                v(
                    rule,
                    format!("at {} ({}), with {:?}: {why}", c.label, c.ts_us, c.members),
                );
            }
        };

    let events = merged(logs);
    for (pos, &(m, e)) in events.iter().enumerate() {
        while let Some(c) = cps.next_if(|c| c.ts_us < e.ts_us) {
            at_checkpoint(c, &owner, &mut v);
        }
        match &e.what {
            What::Assigned {
                partitions,
                generation,
            } => {
                if rules.protocol == Protocol::Eager && !owned[m].is_empty() {
                    v(
                        Rule::EagerKept,
                        format!(
                            "{} was assigned {partitions:?} in generation {generation} at {} while \
                             still owning {:?}: an eager member revokes everything first",
                            name(m),
                            e.ts_us,
                            owned[m]
                        ),
                    );
                }
                for tp in partitions {
                    if !rules.partitions.contains(tp) {
                        v(
                            Rule::Foreign,
                            format!("{} was assigned {tp:?}, not subscribed", name(m)),
                        );
                    }
                    match owner.get(tp) {
                        Some(&(o, since)) if o == m => v(
                            Rule::NotOwned,
                            format!(
                                "{} was assigned {tp:?} at {} but owned it already (since {since})",
                                name(m),
                                e.ts_us
                            ),
                        ),
                        Some(&(o, since)) => v(
                            Rule::Overlap,
                            format!(
                                "{tp:?} assigned to {} at {} (generation {generation}) while {} \
                                 owned it (since {since}, not revoked)",
                                name(m),
                                e.ts_us,
                                name(o)
                            ),
                        ),
                        None => {}
                    }
                    if incremental {
                        if let Some((from, at)) = released.remove(tp) {
                            if from == m {
                                v(
                                    Rule::RevokedUnmoved,
                                    format!(
                                        "{} revoked {tp:?} at {at} and got it back at {} \
                                         (generation {generation}): it did not move",
                                        name(m),
                                        e.ts_us
                                    ),
                                );
                            }
                        }
                    }
                    owner.insert(tp.clone(), (m, e.ts_us));
                    ownership.insert(tp.clone(), began_at.len());
                    began_at.push(committed.get(tp).copied().unwrap_or(-1));
                    owned[m].insert(tp.clone());
                    next.remove(&(m, tp.clone()));
                }
                if classic {
                    let snap = generations.entry(*generation).or_insert_with(|| Snap {
                        pos,
                        ts_us: e.ts_us,
                        owners: BTreeMap::new(),
                        reporters: BTreeSet::new(),
                    });
                    snap.pos = pos;
                    snap.ts_us = e.ts_us;
                    snap.reporters.insert(m);
                    snap.owners = owner.iter().map(|(tp, (o, _))| (tp.clone(), *o)).collect();
                }
            }
            What::Revoked { partitions } | What::Lost { partitions } => {
                let lost = matches!(e.what, What::Lost { .. });
                if lost {
                    v(
                        Rule::Lost,
                        format!("{} lost {partitions:?} at {}", name(m), e.ts_us),
                    );
                }
                for tp in partitions {
                    if owner.get(tp).map(|o| o.0) == Some(m) {
                        owner.remove(tp);
                        ownership.remove(tp);
                    } else {
                        v(
                            Rule::NotOwned,
                            format!(
                                "{} gave up {tp:?} at {} without owning it",
                                name(m),
                                e.ts_us
                            ),
                        );
                    }
                    owned[m].remove(tp);
                    next.remove(&(m, tp.clone()));
                    if !lost {
                        released.insert(tp.clone(), (m, e.ts_us));
                        revocations.push((pos, tp.clone()));
                    }
                }
            }
            What::Record { tp, offset, value } => {
                if owner.get(tp).map(|o| o.0) != Some(m) {
                    v(
                        Rule::RecordNotOwned,
                        format!(
                            "{} processed {tp:?} offset {offset} at {} without owning it (owner: {:?})",
                            name(m),
                            e.ts_us,
                            owner.get(tp).map(|o| name(o.0))
                        ),
                    );
                }
                let key = (m, tp.clone());
                if let Some(&want) = next.get(&key) {
                    if *offset != want {
                        v(
                            Rule::OutOfOrder,
                            format!(
                                "{} processed {tp:?} offset {offset} after {}, in one ownership",
                                name(m),
                                want - 1
                            ),
                        );
                    }
                }
                next.insert(key, offset + 1);
                let own = if owner.get(tp).map(|o| o.0) == Some(m) {
                    ownership.get(tp).copied()
                } else {
                    None
                };
                let seen = processed.entry((tp.clone(), *offset)).or_default();
                if !seen.is_empty() && !rules.exactly_once {
                    if own.is_some() && seen.iter().any(|(_, o, _)| *o == own) {
                        v(
                            Rule::Duplicate,
                            format!(
                                "{} processed {tp:?} offset {offset} again at {}, in the same ownership",
                                name(m),
                                e.ts_us
                            ),
                        );
                    } else if let Some(c) = own.map(|o| began_at[o]).filter(|c| *offset < *c) {
                        v(
                            Rule::Duplicate,
                            format!(
                                "{} processed {tp:?} offset {offset} again at {}, though offset {c} \
                                 was committed when it got the partition",
                                name(m),
                                e.ts_us
                            ),
                        );
                    }
                }
                seen.push((m, own, value.clone()));
                if let Some(c) = consumed.get_mut(tp) {
                    while processed.contains_key(&(tp.clone(), *c)) {
                        *c += 1;
                    }
                }
            }
            What::Committed { offsets } => {
                commits += 1;
                for (tp, offset) in offsets {
                    committed_offsets += 1;
                    if owner.get(tp).map(|o| o.0) != Some(m) {
                        v(
                            Rule::CommitNotOwned,
                            format!(
                                "{} committed {tp:?} offset {offset} at {} without owning it (owner: {:?})",
                                name(m),
                                e.ts_us,
                                owner.get(tp).map(|o| name(o.0))
                            ),
                        );
                    }
                    let upto = consumed.get(tp).copied().unwrap_or(0);
                    if *offset > upto {
                        v(
                            Rule::CommitBeyondConsumed,
                            format!(
                                "{} committed {tp:?} offset {offset} at {}, but offset {upto} was \
                                 not processed yet",
                                name(m),
                                e.ts_us
                            ),
                        );
                    }
                    committed.insert(tp.clone(), *offset);
                }
            }
        }
    }
    for c in cps {
        at_checkpoint(c, &owner, &mut v);
    }

    // Generations: complete once the last member reported one (eager), or
    // short only of partitions just revoked to move (cooperative).
    let mut prev_pos: Option<usize> = None;
    for (g, snap) in &generations {
        let missing: Vec<&Tp> = rules
            .partitions
            .iter()
            .filter(|tp| !snap.owners.contains_key(*tp))
            .collect();
        match rules.protocol {
            Protocol::Eager => {
                if !missing.is_empty() {
                    v(
                        Rule::GenerationIncomplete,
                        format!(
                            "generation {g}: when its last member reported it ({}), nobody owned {missing:?}",
                            snap.ts_us
                        ),
                    );
                }
                for (tp, o) in &snap.owners {
                    if !snap.reporters.contains(o) {
                        v(
                            Rule::GenerationIncomplete,
                            format!(
                                "generation {g}: {} still owned {tp:?} but was not assigned in it",
                                name(*o)
                            ),
                        );
                    }
                }
            }
            Protocol::Cooperative => {
                for tp in missing {
                    let moving = revocations.iter().any(|(p, r)| {
                        r == tp && prev_pos.is_none_or(|pp| *p > pp) && *p <= snap.pos
                    });
                    if !moving {
                        v(
                            Rule::GenerationIncomplete,
                            format!(
                                "generation {g}: nobody owned {tp:?} when its last member reported it \
                                 ({}), and it was not revoked to move since the generation before",
                                snap.ts_us
                            ),
                        );
                    }
                }
            }
            Protocol::Consumer => {}
        }
        prev_pos = Some(snap.pos);
    }

    // Records: every one produced was processed, as produced.
    for ((tp, offset), want) in produced {
        match processed.get(&(tp.clone(), *offset)) {
            None => v(
                Rule::RecordMissing,
                format!("{tp:?} offset {offset} ({want}) was never processed"),
            ),
            Some(seen) => {
                for (m, _, value) in seen {
                    if value.as_deref() != Some(want.as_str()) {
                        v(
                            Rule::RecordWrong,
                            format!(
                                "{} processed {tp:?} offset {offset} as {value:?}, produced {want:?}",
                                name(*m)
                            ),
                        );
                    }
                }
            }
        }
    }
    let mut duplicates = 0;
    for ((tp, offset), seen) in &processed {
        if !produced.contains_key(&(tp.clone(), *offset)) {
            v(
                Rule::RecordWrong,
                format!("{tp:?} offset {offset} was processed but never produced"),
            );
        }
        if seen.len() > 1 {
            duplicates += 1;
            if rules.exactly_once {
                let by: Vec<&str> = seen.iter().map(|(m, _, _)| name(*m)).collect();
                v(
                    Rule::Duplicate,
                    format!(
                        "{tp:?} offset {offset} processed {} times, by {by:?}",
                        seen.len()
                    ),
                );
            }
        }
    }
    report.violations = violations;
    report.generations = generations.keys().copied().collect();
    report.processed = processed.values().map(Vec::len).sum();
    report.duplicates = duplicates;
    report.commits = commits;
    report.committed_offsets = committed_offsets;
    report
}
