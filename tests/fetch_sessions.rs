//! Incremental fetch sessions (KIP-227) between klamm's consumer and Apache
//! Kafka (the single node), observed on the wire: the consumer reaches the
//! broker through the relay, which records every Fetch request and answer,
//! so session ids and epochs are the broker's and the requests' own, not
//! klamm's idea of them.
//!
//! - The first fetch is full (session 0, epoch 0) and the broker answers
//!   with a non-zero session id; the fetches after it are incremental in
//!   that session, their epochs 1, 2, 3, ... with no gap, and they list
//!   only partitions whose fetch position changed (an idle fetch lists
//!   none).
//! - A new partition consumer adds its partition to the session; pausing a
//!   partition forgets it, resuming adds it back; closing one forgets it.
//! - Session errors, made by the real broker: another client closes the
//!   session (a full fetch naming its id at the final epoch -1), so the
//!   consumer's next fetch gets FETCH_SESSION_ID_NOT_FOUND; another client
//!   takes the session's next epoch, so the consumer's fetch gets
//!   INVALID_FETCH_SESSION_EPOCH. Each time the consumer starts over with a
//!   full fetch and gets a new session.
//! - Across all of it every record arrives exactly once, in order.
//!
//! Evicting a session through a small `max.incremental.fetch.session.
//! cache.slots` is not used: the setting is static (a broker restart), and
//! a new session evicts only sessions idle for
//! `min.incremental.fetch.session.eviction.ms` (2 minutes) or smaller ones
//! of lower privilege, so on one node the close and the epoch theft above
//! are the ways to make the broker itself answer with the session errors.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use klamm::Client;
use klamm::client::TrafficClass;
use klamm::consumer::{Consumer, PartitionConsumer, StartOffset};
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::{FetchRequest, FetchResponse};
use support::read::config;
use support::relay::{Exchange, Log, Relay};
use support::topics::create_topic;

const WAIT: Duration = Duration::from_secs(20);

/// One of the consumer's session fetches (epoch 0 or more), as recorded.
#[derive(Debug, Clone)]
struct Fetch {
    /// Its place in the relay's log.
    index: usize,
    session_id: i32,
    epoch: i32,
    /// (partition, fetch offset) of the partitions it lists.
    partitions: Vec<(i32, i64)>,
    forgotten: Vec<i32>,
    /// (error code, session id, partitions answered), once answered.
    answer: Option<(ErrorCode, i32, Vec<i32>)>,
}

/// Topic ids by name, for matching fetches by id (Fetch v13+ names
/// topics by id only).
static TOPIC_IDS: std::sync::Mutex<BTreeMap<String, klamm::protocol::primitives::Uuid>> =
    std::sync::Mutex::new(BTreeMap::new());

/// Whether a fetch topic (by `name`, or by `id` from v13) is `topic`.
fn is_topic(name: &str, id: klamm::protocol::primitives::Uuid, topic: &str) -> bool {
    name == topic || TOPIC_IDS.lock().unwrap().get(topic) == Some(&id)
}

fn fetches(log: &[Exchange], topic: &str) -> Vec<Fetch> {
    log.iter()
        .enumerate()
        .filter_map(|(index, e)| {
            let req: &FetchRequest = e.fetch()?;
            if req.session_epoch < 0 {
                // Sessionless (the high-watermark probe) or a close.
                return None;
            }
            let answer = e.fetch_response().map(|r: &FetchResponse| {
                let parts = r
                    .responses
                    .iter()
                    .filter(|t| is_topic(&t.topic, t.topic_id, topic))
                    .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
                    .collect();
                (ErrorCode(r.error_code), r.session_id, parts)
            });
            Some(Fetch {
                index,
                session_id: req.session_id,
                epoch: req.session_epoch,
                partitions: req
                    .topics
                    .iter()
                    .filter(|t| is_topic(&t.topic, t.topic_id, topic))
                    .flat_map(|t| t.partitions.iter().map(|p| (p.partition, p.fetch_offset)))
                    .collect(),
                forgotten: req
                    .forgotten_topics_data
                    .iter()
                    .filter(|t| is_topic(&t.topic, t.topic_id, topic))
                    .flat_map(|t| t.partitions.iter().copied())
                    .collect(),
                answer,
            })
        })
        .collect()
}

/// Waits until a fetch after log position `after` matches `f`; returns it.
async fn wait_fetch(
    log: &Log,
    topic: &str,
    after: usize,
    what: &str,
    f: impl Fn(&Fetch) -> bool,
) -> Fetch {
    log.wait_for(what, WAIT, |entries| {
        fetches(entries, topic)
            .into_iter()
            .find(|x| x.index >= after && f(x))
    })
    .await
}

/// A session's fetches (incremental ones, by id) up to log position
/// `before`: their epochs must run 1, 2, 3, ... and every answer carry
/// the session id.
fn check_epochs(log: &Log, topic: &str, session: i32, before: usize) -> usize {
    let mine: Vec<Fetch> = fetches(&log.snapshot(), topic)
        .into_iter()
        .filter(|f| f.session_id == session && f.index < before)
        .collect();
    for (i, f) in mine.iter().enumerate() {
        assert_eq!(
            f.epoch,
            i as i32 + 1,
            "session {session}: fetch {i} has epoch {}: {mine:?}",
            f.epoch
        );
        if let Some((code, id, _)) = &f.answer
            && code.is_ok()
        {
            assert_eq!(*id, session, "the answer names the session");
        }
    }
    mine.len()
}

async fn produce(producer: &AsyncProducer, topic: &Arc<str>, p: i32, from: usize, n: usize) {
    let mut futures = Vec::new();
    for i in from..from + n {
        let r = ProducerRecord::new(Arc::clone(topic), format!("p{p}-{i}")).with_partition(p);
        futures.push(producer.send(r).await.expect("send"));
    }
    producer.flush().await.expect("flush");
    for (k, f) in futures.into_iter().enumerate() {
        assert_eq!(f.await.expect("written").offset, (from + k) as i64);
    }
}

/// Reads `n` records of the partition consumer into `got`.
async fn read(pc: &mut PartitionConsumer, n: usize, got: &mut BTreeMap<i32, Vec<(i64, String)>>) {
    let seen = got.entry(pc.partition()).or_default();
    let deadline = tokio::time::Instant::now() + WAIT;
    for _ in 0..n {
        let r = tokio::time::timeout_at(deadline, pc.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "partition {}: records within {WAIT:?}: {seen:?}",
                    pc.partition()
                )
            })
            .expect("the partition consumer is open")
            .expect("a record");
        let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
        seen.push((r.offset, v));
    }
}

/// Sends a Fetch in session `id` at `epoch` with no partitions, from a
/// connection of `client` (not the consumer's): the broker's answer code.
/// It goes at v18, as the consumer's session does (a session opened by
/// topic id refuses a request by name with FETCH_SESSION_TOPIC_ID_ERROR).
async fn foreign_fetch(client: &Client, id: i32, epoch: i32) -> ErrorCode {
    let broker = client.broker(1).expect("broker 1 in the metadata");
    let conn = client
        .connection(&broker, TrafficClass::Other)
        .await
        .expect("connection");
    let req = FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 1,
        session_id: id,
        session_epoch: epoch,
        ..Default::default()
    };
    let resp = conn.send_version(&req, 18).await.expect("fetch");
    ErrorCode(resp.error_code)
}

#[test]
fn incremental_sessions_additions_removals_and_session_errors() {
    support::run_within(150, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let relay = Relay::with_rules(addr.clone(), Default::default()).await;
        let direct = Client::connect(config(&addr)).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-sessions").into();
        create_topic(&direct, &topic, 3).await;
        let id = direct.metadata().topics[&*topic].id;
        TOPIC_IDS.lock().unwrap().insert(topic.to_string(), id);
        let producer = AsyncProducer::new(direct.clone()).await.expect("producer");
        let mut written = [0usize; 3];
        let mut got: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
        macro_rules! produce {
            ($p:expr, $n:expr) => {{
                let p: usize = $p;
                produce(&producer, &topic, p as i32, written[p], $n).await;
                written[p] += $n;
            }};
        }
        for p in 0..3 {
            produce!(p, 10);
        }

        let mut cfg = config(&relay.addr);
        cfg.consumer.fetch_max_wait = Duration::from_millis(100);
        let consumer = Consumer::new(Client::connect(cfg).await.expect("connect via the relay"));
        let log = &relay.log;

        // A full fetch opens the session.
        let mut pc0 = consumer
            .consume_partition(&topic, 0, StartOffset::Oldest)
            .await
            .expect("consume p0");
        read(&mut pc0, 10, &mut got).await;
        let full = wait_fetch(log, &topic, 0, "the first fetch answered", |f| {
            f.answer.is_some()
        })
        .await;
        assert_eq!((full.session_id, full.epoch), (0, 0), "{full:?}");
        assert_eq!(full.partitions, [(0, 0)]);
        let (code, session, _) = full.answer.clone().expect("answered");
        assert_eq!(code, ErrorCode::NONE);
        assert_ne!(session, 0, "the broker opened a session");

        // Idle: incremental fetches that list no partition.
        wait_fetch(log, &topic, full.index, "an idle incremental fetch", |f| {
            f.session_id == session && f.partitions.is_empty() && f.forgotten.is_empty()
        })
        .await;

        // A new partition consumer: added to the session.
        let mut pc1 = consumer
            .consume_partition(&topic, 1, StartOffset::Oldest)
            .await
            .expect("consume p1");
        read(&mut pc1, 10, &mut got).await;
        let added = wait_fetch(log, &topic, full.index, "p1 added", |f| {
            f.session_id == session && f.partitions.contains(&(1, 0))
        })
        .await;
        assert_eq!(added.partitions, [(1, 0)], "only the new partition");

        // New data on p0 only: only p0 is listed again (at its new offset).
        let mark = log.len();
        produce!(0, 5);
        read(&mut pc0, 5, &mut got).await;
        let moved = wait_fetch(log, &topic, mark, "p0 listed at 15", |f| {
            f.session_id == session && f.partitions.contains(&(0, 15))
        })
        .await;
        assert_eq!(moved.partitions, [(0, 15)], "p1 did not change: {moved:?}");

        // Paused: forgotten; records written meanwhile stay unfetched.
        pc1.pause();
        let forgot = wait_fetch(log, &topic, moved.index, "p1 forgotten", |f| {
            f.session_id == session && f.forgotten == [1]
        })
        .await;
        produce!(1, 5);
        let mark = log.len();
        // Two answered fetches after the write: p1 is in neither answer.
        let later = wait_fetch(log, &topic, mark, "a fetch after the write", |f| {
            f.answer.is_some()
        })
        .await;
        wait_fetch(log, &topic, later.index + 1, "another fetch", |f| {
            f.answer.is_some()
        })
        .await;
        for f in fetches(&log.snapshot(), &topic)
            .iter()
            .filter(|f| f.index > forgot.index)
        {
            if let Some((_, _, parts)) = &f.answer {
                assert!(!parts.contains(&1), "p1 fetched while paused: {f:?}");
            }
            assert!(!f.partitions.iter().any(|(p, _)| *p == 1), "{f:?}");
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(300), pc1.recv())
                .await
                .is_err(),
            "a paused partition delivered records"
        );
        // Resumed: added back at its position.
        pc1.resume();
        wait_fetch(log, &topic, forgot.index, "p1 added back", |f| {
            f.session_id == session && f.partitions.contains(&(1, 10))
        })
        .await;
        read(&mut pc1, 5, &mut got).await;

        // A third partition, and the first one closed: added, forgotten.
        let mut pc2 = consumer
            .consume_partition(&topic, 2, StartOffset::Oldest)
            .await
            .expect("consume p2");
        read(&mut pc2, 10, &mut got).await;
        let mark = log.len();
        pc0.close().await;
        let closed = wait_fetch(log, &topic, mark, "p0 forgotten", |f| {
            f.session_id == session && f.forgotten == [0]
        })
        .await;
        // All of that in one session, epochs without gaps.
        let n = check_epochs(log, &topic, session, closed.index + 1);
        assert!(n >= 6, "{n} incremental fetches");
        let fulls = fetches(&log.snapshot(), &topic)
            .iter()
            .filter(|f| f.session_id == 0)
            .count();
        assert_eq!(fulls, 1, "one full fetch so far");

        // FETCH_SESSION_ID_NOT_FOUND: another client closes the session.
        assert_eq!(foreign_fetch(&direct, session, -1).await, ErrorCode::NONE);
        let lost = wait_fetch(
            log,
            &topic,
            closed.index,
            "FETCH_SESSION_ID_NOT_FOUND",
            |f| {
                f.session_id == session
                    && f.answer
                        .as_ref()
                        .is_some_and(|a| a.0 == ErrorCode::FETCH_SESSION_ID_NOT_FOUND)
            },
        )
        .await;
        let refull = wait_fetch(log, &topic, lost.index + 1, "a new full fetch", |f| {
            f.answer.is_some()
        })
        .await;
        assert_eq!((refull.session_id, refull.epoch), (0, 0), "{refull:?}");
        let mut listed: Vec<i32> = refull.partitions.iter().map(|(p, _)| *p).collect();
        listed.sort();
        assert_eq!(
            listed,
            [1, 2],
            "the full fetch lists every partition consumed"
        );
        let (code, session2, _) = refull.answer.clone().expect("answered");
        assert_eq!(code, ErrorCode::NONE);
        assert_ne!(session2, 0);
        assert_ne!(session2, session, "a new session");
        produce!(1, 5);
        produce!(2, 5);
        read(&mut pc1, 5, &mut got).await;
        read(&mut pc2, 5, &mut got).await;

        // INVALID_FETCH_SESSION_EPOCH: another client takes the epoch the
        // consumer's next fetch needs (the broker moves a session's epoch
        // on as each fetch arrives, so the one in flight or the next one
        // finds it taken). If the consumer got there first, try again.
        let mut stolen = None;
        for _ in 0..50 {
            // The consumer's last fetch so far (in flight or answered): the
            // broker expects the epoch after it next.
            let mine = fetches(&log.snapshot(), &topic);
            let last = mine
                .iter()
                .rev()
                .find(|f| f.session_id == session2 || f.index == refull.index)
                .cloned()
                .expect("a fetch in the new session");
            let next = if last.session_id == 0 {
                1
            } else {
                last.epoch + 1
            };
            match foreign_fetch(&direct, session2, next).await {
                ErrorCode::NONE => {
                    stolen = Some(last.index);
                    break;
                }
                ErrorCode::INVALID_FETCH_SESSION_EPOCH => continue,
                other => panic!("taking epoch {next} of session {session2}: {other:?}"),
            }
        }
        let last = stolen.expect("took the session's next epoch");
        // The fetch in flight during the theft, or the one after it.
        let refused = wait_fetch(log, &topic, last, "INVALID_FETCH_SESSION_EPOCH", |f| {
            f.session_id == session2
                && f.answer
                    .as_ref()
                    .is_some_and(|a| a.0 == ErrorCode::INVALID_FETCH_SESSION_EPOCH)
        })
        .await;
        let before: Vec<Fetch> = fetches(&log.snapshot(), &topic)
            .into_iter()
            .filter(|f| f.session_id == session2 && f.index < refused.index)
            .collect();
        assert!(
            before
                .iter()
                .all(|f| f.answer.as_ref().is_some_and(|a| a.0.is_ok())),
            "every fetch before the theft was answered: {before:?}"
        );
        check_epochs(log, &topic, session2, refused.index + 1);
        let refull = wait_fetch(log, &topic, refused.index + 1, "a third full fetch", |f| {
            f.answer.is_some()
        })
        .await;
        assert_eq!((refull.session_id, refull.epoch), (0, 0), "{refull:?}");
        let (code, session3, _) = refull.answer.clone().expect("answered");
        assert_eq!(code, ErrorCode::NONE);
        assert!(session3 != 0 && session3 != session2);
        produce!(1, 5);
        produce!(2, 5);
        read(&mut pc1, 5, &mut got).await;
        read(&mut pc2, 5, &mut got).await;
        // Incremental again in the third session.
        wait_fetch(
            log,
            &topic,
            refull.index + 1,
            "an incremental fetch in session 3",
            |f| f.session_id == session3 && f.epoch >= 1 && f.answer.is_some(),
        )
        .await;

        let summary: Vec<String> = fetches(&log.snapshot(), &topic)
            .iter()
            .map(|f| {
                let answer = f
                    .answer
                    .as_ref()
                    .map(|(c, id, parts)| format!("{c:?} {id} {parts:?}"));
                format!(
                    "{}/{} {:?} -{:?} => {}",
                    f.session_id,
                    f.epoch,
                    f.partitions,
                    f.forgotten,
                    answer.unwrap_or_default()
                )
            })
            .collect();
        eprintln!("fetches:\n{}", summary.join("\n"));

        // Exactly once, in order, across every transition.
        for (p, pc) in [(1, &mut pc1), (2, &mut pc2)] {
            assert!(
                tokio::time::timeout(Duration::from_millis(300), pc.recv())
                    .await
                    .is_err(),
                "partition {p}: more records than were written"
            );
        }
        for (p, seen) in &got {
            let want: Vec<(i64, String)> = (0..written[*p as usize])
                .map(|i| (i as i64, format!("p{p}-{i}")))
                .collect();
            assert_eq!(seen, &want, "partition {p}");
        }
        assert_eq!(got.len(), 3);
        drop((pc1, pc2));
        consumer.close().await;
        producer.close().await.expect("close");
    });
}
