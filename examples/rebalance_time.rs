//! How long a consumer group takes to consume every partition again when
//! a member joins: `--members - 1` members share a topic of
//! `--partitions` partitions while a producer writes a record to every
//! partition every 10 ms; once every partition is being read, one more
//! member joins, and the tool measures, for each partition, the time from
//! the join until the partition's final owner delivers a record of it
//! under the assignment it ends with (for an eager protocol every
//! partition stops and starts again; for a cooperative one only the moved
//! partitions do). The largest of those is the run's figure; the median of
//! the runs is printed with a `REBALANCE {json}` line, which the Java
//! counterpart (`peers/java`, `RebalanceTime`) prints too.
//!
//! ```sh
//! cargo run --release --example rebalance_time -- --brokers 127.0.0.1:9092 \
//!     --topic rebalance-60 --partitions 60 --members 6 --protocol classic \
//!     --assignor cooperative-sticky --runs 3
//! ```
//!
//! `--protocol consumer` uses KIP-848 (then `--assignor` names the
//! broker's assignor: `uniform` or `range`). Heartbeat and session
//! settings are the Java defaults unless `-X key=value` changes them.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use klamm::admin::{Admin, NewTopic};
use klamm::group::{GroupConsumer, GroupEvent};
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::error_codes::ErrorCode;
use klamm::{Client, Config};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    brokers: String,
    topic: String,
    partitions: i32,
    members: usize,
    protocol: String,
    assignor: String,
    runs: usize,
    extra: Vec<(String, String)>,
}

const USAGE: &str = "usage: rebalance_time --brokers HOST:PORT --topic T [--partitions 60] \
[--members 6] [--protocol classic|consumer] [--assignor NAME] [--runs 3] [-X key=value]...";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        brokers: String::new(),
        topic: String::new(),
        partitions: 60,
        members: 6,
        protocol: "classic".into(),
        assignor: "range".into(),
        runs: 3,
        extra: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--brokers" => a.brokers = val()?,
            "--topic" => a.topic = val()?,
            "--partitions" => a.partitions = num(val()?)? as i32,
            "--members" => a.members = num(val()?)?,
            "--protocol" => a.protocol = val()?,
            "--assignor" => a.assignor = val()?,
            "--runs" => a.runs = num(val()?)?,
            "-X" => {
                let kv = val()?;
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("-X {kv}: want key=value"))?;
                a.extra.push((k.to_string(), v.to_string()));
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if a.brokers.is_empty() || a.topic.is_empty() || a.members < 2 || a.runs == 0 {
        return Err(USAGE.to_string());
    }
    if !["classic", "consumer"].contains(&a.protocol.as_str()) {
        return Err(format!("unknown protocol {}", a.protocol));
    }
    Ok(a)
}

fn config(a: &Args, group: Option<&str>) -> Result<Config, BoxError> {
    let mut props = vec![
        ("bootstrap.servers".to_string(), a.brokers.clone()),
        ("client.id".to_string(), "klamm-rebalance-time".to_string()),
        ("auto.offset.reset".to_string(), "latest".to_string()),
        ("group.protocol".to_string(), a.protocol.clone()),
    ];
    if let Some(g) = group {
        props.push(("group.id".to_string(), g.to_string()));
        if a.protocol == "classic" {
            props.push((
                "partition.assignment.strategy".to_string(),
                a.assignor.clone(),
            ));
        } else {
            props.push(("group.remote.assignor".to_string(), a.assignor.clone()));
        }
    }
    props.extend(a.extra.iter().cloned());
    Ok(Config::from_properties(props)?)
}

/// What every member saw, shared by the member tasks.
#[derive(Default)]
struct Seen {
    /// (member, partition) → when the member was last given the partition.
    assigned_at: BTreeMap<(usize, i32), Instant>,
    /// partition → its owner now.
    owner: BTreeMap<i32, usize>,
    /// (member, partition) → deliveries' times, in order.
    deliveries: BTreeMap<(usize, i32), Vec<Instant>>,
    /// The last assignment change anywhere.
    last_change: Option<Instant>,
}

fn lock(s: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

async fn member(
    id: usize,
    cfg: Config,
    topic: String,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<tokio::sync::Notify>,
) -> Result<(), BoxError> {
    let client = Client::connect(cfg).await?;
    let mut g = GroupConsumer::new(client.clone(), [&topic]).await?;
    loop {
        let ev = tokio::select! {
            _ = stop.notified() => break,
            ev = g.recv() => match ev {
                None => return Err("the member stopped".into()),
                Some(ev) => ev?,
            },
        };
        let now = Instant::now();
        let mut s = lock(&seen);
        match ev {
            GroupEvent::Records(b) => {
                let p = b.iter().next().map(|r| r.partition);
                if let Some(p) = p {
                    s.deliveries.entry((id, p)).or_default().push(now);
                }
            }
            GroupEvent::Assigned(tps) => {
                if !tps.is_empty() {
                    s.last_change = Some(now);
                }
                for tp in tps {
                    s.assigned_at.insert((id, tp.partition), now);
                    s.owner.insert(tp.partition, id);
                }
            }
            GroupEvent::Revoked(tps)
            | GroupEvent::Lost {
                partitions: tps, ..
            } => {
                if !tps.is_empty() {
                    s.last_change = Some(now);
                }
                for tp in tps {
                    if s.owner.get(&tp.partition) == Some(&id) {
                        s.owner.remove(&tp.partition);
                    }
                }
            }
            _ => {}
        }
    }
    g.close().await?;
    client.close().await;
    Ok(())
}

/// Per partition, the time from `join` until its owner delivered a record
/// under its current assignment; `None` until every partition has.
fn resumed(s: &Seen, partitions: i32, join: Instant) -> Option<Vec<Duration>> {
    (0..partitions)
        .map(|p| {
            let owner = *s.owner.get(&p)?;
            let since = (*s.assigned_at.get(&(owner, p))?).max(join);
            let first = s
                .deliveries
                .get(&(owner, p))?
                .iter()
                .find(|t| **t >= since)?;
            Some(first.duration_since(join))
        })
        .collect()
}

async fn one_run(a: &Args, run: usize) -> Result<Duration, BoxError> {
    let group = format!(
        "klamm-rebalance-{}-{}-{run}-{}",
        a.protocol,
        a.assignor,
        std::process::id()
    );
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    let spawn = |id: usize| -> Result<_, BoxError> {
        let m = member(
            id,
            config(a, Some(&group))?,
            a.topic.clone(),
            seen.clone(),
            stop.clone(),
        );
        Ok(tokio::spawn(async move {
            let r = m.await;
            if let Err(e) = &r {
                eprintln!("rebalance_time: member {id}: {e}");
            }
            r
        }))
    };
    for id in 0..a.members - 1 {
        tasks.push(spawn(id)?);
    }
    // Steady: `members` members each own their share, every partition is
    // delivering under its owner's current assignment, and no assignment
    // changed for 2 s.
    let settle = |join: Instant, members: usize, limit: Duration| {
        let seen = seen.clone();
        let partitions = a.partitions;
        async move {
            let deadline = Instant::now() + limit;
            let share = partitions as usize / members;
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let s = lock(&seen);
                let quiet = s
                    .last_change
                    .is_some_and(|t| t >= join && t.elapsed() > Duration::from_secs(2));
                let shared =
                    (0..members).all(|m| s.owner.values().filter(|o| **o == m).count() >= share);
                if quiet
                    && shared
                    && let Some(d) = resumed(&s, partitions, join)
                {
                    return Ok(d);
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "not settled within {limit:?}: {} of {partitions} partitions owned, \
                         by {members} members: {:?}",
                        s.owner.len(),
                        s.owner
                    ));
                }
            }
        }
    };
    settle(Instant::now(), a.members - 1, Duration::from_secs(120)).await?;
    let join = Instant::now();
    tasks.push(spawn(a.members - 1)?);
    let per_partition = settle(join, a.members, Duration::from_secs(120)).await?;
    let new_owned = lock(&seen)
        .owner
        .values()
        .filter(|m| **m == a.members - 1)
        .count();
    stop.notify_waiters();
    for t in tasks {
        t.await??;
    }
    if new_owned == 0 {
        return Err("the joining member was given no partition".into());
    }
    let worst = per_partition.iter().max().copied().unwrap_or_default();
    let mut sorted = per_partition.clone();
    sorted.sort();
    let unmoved_p50 = sorted[sorted.len() / 2];
    eprintln!(
        "rebalance_time: run {run}: all {} partitions consumed again {:.0} ms after the join \
         (median partition {:.0} ms); the new member owns {new_owned}",
        a.partitions,
        worst.as_secs_f64() * 1e3,
        unmoved_p50.as_secs_f64() * 1e3
    );
    Ok(worst)
}

async fn ensure_topic(client: &Client, a: &Args) -> Result<(), BoxError> {
    let created = Admin::new(client.clone())
        .create_topics(&[NewTopic::new(&a.topic, a.partitions, -1)])
        .await;
    match created.get(&a.topic) {
        Some(Ok(_)) => {}
        Some(Err(e)) if e.kafka_code() == Some(ErrorCode::TOPIC_ALREADY_EXISTS) => {}
        Some(Err(e)) => return Err(format!("creating {}: {e}", a.topic).into()),
        None => return Err("no outcome for the topic".into()),
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        client
            .refresh_metadata(Some(std::slice::from_ref(&a.topic)))
            .await?;
        let ps = client.partitions(&a.topic).await?;
        if ps.len() == a.partitions as usize {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("topic {} has {} partitions", a.topic, ps.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run(a: Args) -> Result<(), BoxError> {
    let client = Client::connect(config(&a, None)?).await?;
    ensure_topic(&client, &a).await?;
    // The producer: a record to every partition every 10 ms.
    let producer = AsyncProducer::new(client.clone()).await?;
    let producing = {
        let (producer, topic, partitions) = (producer.clone(), a.topic.clone(), a.partitions);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            loop {
                tick.tick().await;
                for p in 0..partitions {
                    let r = ProducerRecord::new(topic.clone(), "x").with_partition(p);
                    if producer.send(r).await.is_err() {
                        return;
                    }
                }
            }
        })
    };
    let mut figures = Vec::new();
    let mut result = Ok(());
    for run in 0..a.runs {
        match one_run(&a, run).await {
            Ok(d) => figures.push(d.as_secs_f64() * 1e3),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    producing.abort();
    producer.close().await?;
    client.close().await;
    result?;
    figures.sort_by(f64::total_cmp);
    let median = figures[figures.len() / 2];
    println!(
        "REBALANCE {{\"client\":\"klamm\",\"protocol\":\"{}\",\"assignor\":\"{}\",\"members\":{},\
         \"partitions\":{},\"runs_ms\":{:?},\"median_ms\":{median:.0}}}",
        a.protocol,
        a.assignor,
        a.members,
        a.partitions,
        figures.iter().map(|f| f.round() as i64).collect::<Vec<_>>(),
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rebalance_time: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rebalance_time: {e}");
            ExitCode::FAILURE
        }
    }
}
