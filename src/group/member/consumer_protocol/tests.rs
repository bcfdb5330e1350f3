//! The consumer-protocol engine against a scripted coordinator, on
//! tokio's paused clock: each heartbeat reaches the test, which answers
//! it, so the order of heartbeats and events and the instants they happen
//! at are exact.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::*;
use crate::protocol::messages::consumer_group_heartbeat_response::{
    Assignment, TopicPartitions as RespTp,
};
use crate::protocol::primitives::Uuid;
use crate::test_support::bounded;

const A: Uuid = Uuid::from_u128(0xa);
const B: Uuid = Uuid::from_u128(0xb);
const C: Uuid = Uuid::from_u128(0xc);

type Answer = oneshot::Sender<Result<ConsumerGroupHeartbeatResponse>>;

#[derive(Clone)]
struct Fake {
    calls: mpsc::UnboundedSender<(ConsumerGroupHeartbeatRequest, Answer)>,
    /// What metadata names now.
    names: Arc<Mutex<HashMap<Uuid, String>>>,
    /// What each refresh brings, in turn.
    refreshed: Arc<Mutex<Vec<HashMap<Uuid, String>>>>,
    refreshes: Arc<AtomicUsize>,
    rediscovers: Arc<AtomicUsize>,
}

impl Coordinator for Fake {
    async fn heartbeat(
        &self,
        req: ConsumerGroupHeartbeatRequest,
    ) -> Result<ConsumerGroupHeartbeatResponse> {
        let (tx, rx) = oneshot::channel();
        if self.calls.send((req, tx)).is_err() {
            return Err(disconnected());
        }
        rx.await.unwrap_or_else(|_| Err(disconnected()))
    }

    async fn rediscover(&self) {
        self.rediscovers.fetch_add(1, Ordering::SeqCst);
    }

    fn topic_names(&self) -> HashMap<Uuid, String> {
        self.names.lock().unwrap().clone()
    }

    async fn refresh_topics(&self, _topics: &[String]) {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        let mut queue = self.refreshed.lock().unwrap();
        if !queue.is_empty() {
            let next = queue.remove(0);
            self.names.lock().unwrap().extend(next);
        }
    }
}

fn disconnected() -> Error {
    Error::Disconnected {
        broker: "fake:9092".into(),
        reason: "test".into(),
    }
}

struct Harness {
    calls: mpsc::UnboundedReceiver<(ConsumerGroupHeartbeatRequest, Answer)>,
    events: mpsc::Receiver<MemberEvent>,
    commands: mpsc::UnboundedSender<Command>,
    poll: Arc<PollClock>,
    generations: Arc<Mutex<Vec<Generation>>>,
    fake: Fake,
    task: JoinHandle<()>,
}

fn settings(instance: Option<&str>) -> Settings {
    Settings {
        group: "g".into(),
        instance_id: instance.map(str::to_string),
        rack: None,
        rebalance_timeout: Duration::from_secs(60),
        max_poll_interval: Duration::from_secs(300),
        heartbeat_interval: Duration::from_secs(3),
        retry_backoff: Duration::from_millis(100),
        server_assignor: None,
    }
}

fn start(s: Settings) -> Harness {
    let (calls_tx, calls) = mpsc::unbounded_channel();
    let (commands, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, events) = mpsc::channel(16);
    let poll = Arc::new(PollClock::new());
    poll.touch();
    let generations = Arc::new(Mutex::new(Vec::new()));
    let g = generations.clone();
    let names: HashMap<Uuid, String> = [(A, "a".to_string()), (B, "b".to_string())].into();
    let fake = Fake {
        calls: calls_tx,
        names: Arc::new(Mutex::new(names)),
        refreshed: Arc::new(Mutex::new(Vec::new())),
        refreshes: Arc::new(AtomicUsize::new(0)),
        rediscovers: Arc::new(AtomicUsize::new(0)),
    };
    let engine = Engine::new(
        fake.clone(),
        s,
        vec!["a".into(), "b".into()],
        "member-1".into(),
        ev_tx,
        cmd_rx,
        poll.clone(),
        Box::new(move |gen_| g.lock().unwrap().push(gen_)),
    );
    let task = tokio::spawn(engine.run());
    Harness {
        calls,
        events,
        commands,
        poll,
        generations,
        fake,
        task,
    }
}

fn ok(epoch: i32, assignment: Option<&[(Uuid, &[i32])]>) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse {
        member_id: Some("member-1".into()),
        member_epoch: epoch,
        heartbeat_interval_ms: 5000,
        assignment: assignment.map(|a| Assignment {
            topic_partitions: a
                .iter()
                .map(|(id, ps)| RespTp {
                    topic_id: *id,
                    partitions: ps.iter().copied().collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn failed(code: ErrorCode) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse {
        error_code: code.0,
        error_message: Some("scripted".into()),
        ..Default::default()
    }
}

/// The owned partitions a heartbeat reports, `None` for "unchanged".
fn owned(req: &ConsumerGroupHeartbeatRequest) -> Option<BTreeMap<Uuid, Vec<i32>>> {
    req.topic_partitions.as_ref().map(|tps| {
        tps.iter()
            .map(|t| (t.topic_id, t.partitions.to_vec()))
            .collect()
    })
}

fn tps(parts: &[(&str, &[i32])]) -> TopicPartitions {
    parts
        .iter()
        .map(|(t, ps)| (t.to_string(), ps.to_vec()))
        .collect()
}

impl Harness {
    async fn call(&mut self) -> (ConsumerGroupHeartbeatRequest, Answer) {
        self.calls.recv().await.expect("a heartbeat")
    }

    async fn event(&mut self) -> MemberEvent {
        self.events.recv().await.expect("an event")
    }

    /// Joins and takes `parts` at epoch 1, acknowledged.
    async fn joined(&mut self, parts: &[(Uuid, &[i32])]) {
        let (req, answer) = self.call().await;
        assert_eq!(req.member_epoch, 0);
        answer.send(Ok(ok(1, Some(parts)))).unwrap();
        let MemberEvent::Assigned { .. } = self.event().await else {
            panic!("assigned")
        };
        let (ack, answer) = self.call().await;
        assert!(ack.topic_partitions.is_some());
        answer.send(Ok(ok(1, None))).unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn joins_with_every_field_and_acknowledges_an_assignment_at_once() {
    bounded(async {
        let mut h = start(settings(None));
        let t0 = Instant::now();
        let (join, answer) = h.call().await;
        assert_eq!(t0.elapsed(), Duration::ZERO, "the join goes at once");
        assert_eq!(join.member_epoch, 0);
        assert_eq!(join.member_id, "member-1");
        assert_eq!(
            join.subscribed_topic_names,
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(join.rebalance_timeout_ms, 60_000);
        assert_eq!(owned(&join), Some(BTreeMap::new()), "an empty owned list");
        answer
            .send(Ok(ok(4, Some(&[(A, &[1, 0]), (B, &[2])]))))
            .unwrap();

        let MemberEvent::Assigned { added, generation } = h.event().await else {
            panic!("assigned")
        };
        assert_eq!(added, tps(&[("a", &[0, 1]), ("b", &[2])]));
        assert_eq!(generation.id, 4, "the epoch the assignment came with");
        assert_eq!(generation.member_id, "member-1");

        let (ack, answer) = h.call().await;
        assert_eq!(
            t0.elapsed(),
            Duration::ZERO,
            "the acknowledgement goes at once"
        );
        assert_eq!(ack.member_epoch, 4);
        assert_eq!(
            owned(&ack),
            Some([(A, vec![0, 1]), (B, vec![2])].into()),
            "the acknowledgement reports what is owned now"
        );
        assert_eq!(
            ack.subscribed_topic_names, None,
            "unchanged fields are null"
        );
        answer.send(Ok(ok(4, None))).unwrap();

        // Control: the next one waits for the coordinator's interval and
        // reports nothing new.
        let (beat, answer) = h.call().await;
        assert_eq!(t0.elapsed(), Duration::from_secs(5));
        assert_eq!(owned(&beat), None);
        answer.send(Ok(ok(4, None))).unwrap();
        assert_eq!(
            h.generations
                .lock()
                .unwrap()
                .iter()
                .map(|g| g.id)
                .collect::<Vec<_>>(),
            [4],
            "commits carry the epoch"
        );
        h.task.abort();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn revokes_before_it_assigns_and_reports_the_old_set_until_acknowledged() {
    bounded(async {
        let mut h = start(settings(None));
        h.joined(&[(A, &[0, 1, 2, 3])]).await;

        // Epoch 2 moves a-2 and a-3 away and brings b-0.
        let (_, answer) = h.call().await;
        answer
            .send(Ok(ok(2, Some(&[(A, &[0, 1]), (B, &[0])]))))
            .unwrap();
        let MemberEvent::Revoked { partitions, ack } = h.event().await else {
            panic!("revoked first")
        };
        assert_eq!(partitions, tps(&[("a", &[2, 3])]));

        // The consumer takes its time: heartbeats go on, reporting no
        // change of the owned set, and nothing is assigned meanwhile.
        let (beat, answer) = h.call().await;
        assert_eq!(owned(&beat), None, "still owns the old set");
        answer.send(Err(disconnected())).unwrap();
        let (beat, answer) = h.call().await;
        assert_eq!(
            owned(&beat),
            Some([(A, vec![0, 1, 2, 3])].into()),
            "after a failure the full request reports the old set"
        );
        answer.send(Ok(ok(2, None))).unwrap();
        assert!(
            h.events.try_recv().is_err(),
            "nothing assigned before the revocation is done"
        );

        ack.send(()).unwrap();
        let MemberEvent::Assigned { added, generation } = h.event().await else {
            panic!("then assigned")
        };
        assert_eq!(added, tps(&[("b", &[0])]));
        assert_eq!(generation.id, 2);
        let (ack_beat, answer) = h.call().await;
        assert_eq!(
            owned(&ack_beat),
            Some([(A, vec![0, 1]), (B, vec![0])].into())
        );
        answer.send(Ok(ok(2, None))).unwrap();
        h.task.abort();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_newer_assignment_during_a_revocation_is_reconciled_after_it() {
    bounded(async {
        let mut h = start(settings(None));
        h.joined(&[(A, &[0, 1, 2, 3])]).await;
        let (_, answer) = h.call().await;
        answer
            .send(Ok(ok(2, Some(&[(A, &[0, 1]), (B, &[0])]))))
            .unwrap();
        let MemberEvent::Revoked { partitions, ack } = h.event().await else {
            panic!("revoked")
        };
        assert_eq!(partitions, tps(&[("a", &[2, 3])]));
        // Epoch 3 arrives while the consumer is at it: b-0 is no longer
        // this member's, and a-1 goes too.
        let (_, answer) = h.call().await;
        answer.send(Ok(ok(3, Some(&[(A, &[0])])))).unwrap();
        tokio::task::yield_now().await;
        assert!(
            h.events.try_recv().is_err(),
            "the first step finishes first"
        );
        ack.send(()).unwrap();
        let MemberEvent::Revoked { partitions, ack } = h.event().await else {
            panic!("a second revocation, against the newest assignment")
        };
        assert_eq!(partitions, tps(&[("a", &[1])]));
        // The first step is reported done at once, while the consumer
        // works on the second.
        let (beat, answer) = h.call().await;
        assert_eq!(owned(&beat), Some([(A, vec![0, 1])].into()));
        answer.send(Ok(ok(3, None))).unwrap();
        ack.send(()).unwrap();
        let (beat, answer) = h.call().await;
        assert_eq!(owned(&beat), Some([(A, vec![0])].into()));
        answer.send(Ok(ok(3, None))).unwrap();
        assert!(
            h.events.try_recv().is_err(),
            "b-0, of the superseded assignment, is never assigned"
        );
        h.task.abort();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn fencing_loses_the_partitions_and_rejoins_at_epoch_zero_at_once() {
    for code in [
        ErrorCode::FENCED_MEMBER_EPOCH,
        ErrorCode::UNKNOWN_MEMBER_ID,
        ErrorCode::GROUP_ID_NOT_FOUND,
    ] {
        bounded(async {
            let mut h = start(settings(None));
            h.joined(&[(A, &[0, 1])]).await;
            let (_, answer) = h.call().await;
            let fenced_at = Instant::now();
            answer.send(Ok(failed(code))).unwrap();
            let MemberEvent::Lost { partitions, reason } = h.event().await else {
                panic!("lost")
            };
            assert_eq!(partitions, tps(&[("a", &[0, 1])]));
            assert!(reason.contains(code.name()), "{reason}");
            let (rejoin, answer) = h.call().await;
            assert_eq!(fenced_at.elapsed(), Duration::ZERO, "no backoff");
            assert_eq!(rejoin.member_epoch, 0);
            assert_eq!(rejoin.member_id, "member-1", "the same member id");
            assert_eq!(owned(&rejoin), Some(BTreeMap::new()));
            assert!(rejoin.subscribed_topic_names.is_some());
            assert_eq!(
                h.generations.lock().unwrap().last().map(|g| g.id),
                Some(-1),
                "no commits under the fenced epoch"
            );
            answer.send(Ok(ok(5, Some(&[(A, &[0])])))).unwrap();
            let MemberEvent::Assigned { added, generation } = h.event().await else {
                panic!("assigned again")
            };
            assert_eq!(added, tps(&[("a", &[0])]));
            assert_eq!(generation.id, 5);
            h.task.abort();
        })
        .await;
    }
}

#[tokio::test(start_paused = true)]
async fn retriable_errors_keep_the_membership_and_back_off() {
    bounded(async {
        let mut h = start(settings(None));
        h.joined(&[(A, &[0])]).await;
        let (_, answer) = h.call().await;
        let at = Instant::now();
        answer
            .send(Ok(failed(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)))
            .unwrap();
        let (again, answer) = h.call().await;
        assert!(at.elapsed() >= Duration::from_millis(80), "a backoff");
        assert!(at.elapsed() < Duration::from_secs(1));
        assert_eq!(again.member_epoch, 1, "still a member");
        assert!(again.topic_partitions.is_some(), "a full request after it");
        answer.send(Ok(failed(ErrorCode::NOT_COORDINATOR))).unwrap();
        let (_, answer) = h.call().await;
        assert_eq!(h.fake.rediscovers.load(Ordering::SeqCst), 1);
        answer.send(Ok(ok(1, None))).unwrap();
        assert!(h.events.try_recv().is_err(), "nothing lost");
        h.task.abort();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn fatal_codes_stop_the_member_with_what_to_fix() {
    let cases = [
        (ErrorCode::FENCED_INSTANCE_ID, "group.instance.id"),
        (ErrorCode::UNSUPPORTED_ASSIGNOR, "group.remote.assignor"),
        (ErrorCode::GROUP_AUTHORIZATION_FAILED, "READ"),
        (ErrorCode::GROUP_MAX_SIZE_REACHED, "group.consumer.max.size"),
        (ErrorCode::INVALID_REQUEST, "scripted"),
        (ErrorCode::UNSUPPORTED_VERSION, "group.protocol=classic"),
    ];
    for (code, says) in cases {
        bounded(async {
            let mut h = start(settings(Some("i-1")));
            h.joined(&[(A, &[0])]).await;
            let (_, answer) = h.call().await;
            answer.send(Ok(failed(code))).unwrap();
            let MemberEvent::Lost { .. } = h.event().await else {
                panic!("the partitions are lost first")
            };
            let MemberEvent::Fatal(e) = h.event().await else {
                panic!("fatal")
            };
            assert_eq!(e.kafka_code(), Some(code));
            assert!(e.to_string().contains(says), "{code}: {e}");
            assert!(h.events.recv().await.is_none(), "the member stopped");
        })
        .await;
    }
}

/// The control of GROUP_ID_NOT_FOUND as fencing: to a member still
/// joining (epoch 0) it is no fencing, and it stops the member.
#[tokio::test(start_paused = true)]
async fn group_id_not_found_to_a_joining_member_is_fatal() {
    bounded(async {
        let mut h = start(settings(None));
        let (join, answer) = h.call().await;
        assert_eq!(join.member_epoch, 0);
        answer
            .send(Ok(failed(ErrorCode::GROUP_ID_NOT_FOUND)))
            .unwrap();
        loop {
            match h.event().await {
                MemberEvent::Fatal(e) => {
                    assert_eq!(e.kafka_code(), Some(ErrorCode::GROUP_ID_NOT_FOUND));
                    break;
                }
                MemberEvent::Lost { partitions, .. } => assert!(partitions.is_empty()),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(h.events.recv().await.is_none(), "the member stopped");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn unreleased_instance_ids_are_retried_a_few_times_then_fatal() {
    bounded(async {
        let mut h = start(settings(Some("i-1")));
        for _ in 0..UNRELEASED_RETRIES {
            let (join, answer) = h.call().await;
            assert_eq!(join.member_epoch, 0);
            assert_eq!(join.instance_id.as_deref(), Some("i-1"));
            answer
                .send(Ok(failed(ErrorCode::UNRELEASED_INSTANCE_ID)))
                .unwrap();
        }
        // Control: retries so far, no event.
        assert!(h.events.try_recv().is_err());
        let (_, answer) = h.call().await;
        answer
            .send(Ok(failed(ErrorCode::UNRELEASED_INSTANCE_ID)))
            .unwrap();
        let MemberEvent::Fatal(e) = h.event().await else {
            panic!("fatal")
        };
        assert_eq!(e.kafka_code(), Some(ErrorCode::UNRELEASED_INSTANCE_ID));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn topic_ids_metadata_does_not_know_wait_until_a_refresh_names_them() {
    bounded(async {
        let mut h = start(settings(None));
        // The first refresh does not know c yet; the second does.
        h.fake
            .refreshed
            .lock()
            .unwrap()
            .extend([HashMap::new(), [(C, "c".to_string())].into()]);
        let (_, answer) = h.call().await;
        answer
            .send(Ok(ok(1, Some(&[(A, &[0]), (C, &[0, 1])]))))
            .unwrap();
        let MemberEvent::Assigned { added, .. } = h.event().await else {
            panic!("assigned")
        };
        assert_eq!(added, tps(&[("a", &[0])]), "what can be named, at once");
        let (ack, answer) = h.call().await;
        assert_eq!(owned(&ack), Some([(A, vec![0])].into()));
        answer.send(Ok(ok(1, None))).unwrap();
        let MemberEvent::Assigned { added, generation } = h.event().await else {
            panic!("the rest once metadata names it")
        };
        assert_eq!(added, tps(&[("c", &[0, 1])]));
        assert_eq!(generation.id, 1);
        assert_eq!(h.fake.refreshes.load(Ordering::SeqCst), 2);
        let (ack, answer) = h.call().await;
        assert_eq!(owned(&ack), Some([(A, vec![0]), (C, vec![0, 1])].into()));
        answer.send(Ok(ok(1, None))).unwrap();
        h.task.abort();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn close_revokes_everything_then_leaves() {
    for (instance, epoch) in [(None, -1), (Some("i-1"), -2)] {
        bounded(async {
            let mut h = start(settings(instance));
            h.joined(&[(A, &[0, 1])]).await;
            let (done, closed) = oneshot::channel();
            h.commands.send(Command::Close(done)).unwrap();
            let MemberEvent::Revoked { partitions, ack } = h.event().await else {
                panic!("revoked")
            };
            assert_eq!(partitions, tps(&[("a", &[0, 1])]));
            // Control: nothing leaves before the consumer is done.
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert!(h.calls.try_recv().is_err());
            ack.send(()).unwrap();
            let (leave, answer) = h.call().await;
            assert_eq!(leave.member_epoch, epoch);
            assert_eq!(leave.instance_id.as_deref(), instance);
            answer.send(Ok(ok(epoch, None))).unwrap();
            closed.await.expect("closed");
            (&mut h.task).await.expect("the engine ends");
            assert_eq!(h.generations.lock().unwrap().last().map(|g| g.id), Some(-1));
        })
        .await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_poll_timeout_leaves_loses_and_rejoins_when_the_application_polls() {
    bounded(async {
        let mut s = settings(None);
        s.max_poll_interval = Duration::from_secs(4);
        let mut h = start(s);
        h.joined(&[(A, &[0])]).await;
        let start = Instant::now();
        // Heartbeats go on while the application is away...
        loop {
            let (req, answer) = h.call().await;
            if req.member_epoch == -1 {
                assert!(start.elapsed() >= Duration::from_secs(4));
                answer.send(Ok(ok(-1, None))).unwrap();
                break;
            }
            answer.send(Ok(ok(1, None))).unwrap();
        }
        let MemberEvent::Lost { partitions, reason } = h.event().await else {
            panic!("lost")
        };
        assert_eq!(partitions, tps(&[("a", &[0])]));
        assert!(reason.contains("max.poll.interval.ms"), "{reason}");
        // ...and stop once it left: none until the application polls.
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(
            h.calls.try_recv().is_err(),
            "no heartbeat outside the group"
        );
        h.poll.touch();
        let (rejoin, answer) = h.call().await;
        assert_eq!(rejoin.member_epoch, 0);
        answer.send(Ok(ok(3, Some(&[(A, &[0])])))).unwrap();
        let MemberEvent::Assigned { added, .. } = h.event().await else {
            panic!("assigned again")
        };
        assert_eq!(added, tps(&[("a", &[0])]));
        h.task.abort();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_stale_epoch_on_a_commit_heartbeats_at_once_and_keeps_the_membership() {
    bounded(async {
        let mut h = start(settings(None));
        h.joined(&[(A, &[0])]).await;
        let at = Instant::now();
        h.commands
            .send(Command::Rejoin {
                reason: "a commit answered STALE_MEMBER_EPOCH".into(),
                lost: true,
            })
            .unwrap();
        let (beat, answer) = h.call().await;
        assert_eq!(at.elapsed(), Duration::ZERO, "at once");
        assert_eq!(beat.member_epoch, 1, "not a rejoin");
        answer.send(Ok(ok(2, None))).unwrap();
        tokio::task::yield_now().await;
        assert!(h.events.try_recv().is_err(), "nothing lost");
        assert_eq!(
            h.generations.lock().unwrap().last().map(|g| g.id),
            Some(2),
            "the newer epoch reaches the offset manager"
        );
        // A subscription change goes at once too, with the new topics.
        h.commands
            .send(Command::Subscribe(vec!["a".into(), "c".into()]))
            .unwrap();
        let (beat, answer) = h.call().await;
        assert_eq!(at.elapsed(), Duration::ZERO);
        assert_eq!(
            beat.subscribed_topic_names,
            Some(vec!["a".to_string(), "c".to_string()])
        );
        answer.send(Ok(ok(2, None))).unwrap();
        h.task.abort();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_revocation_not_finished_within_the_rebalance_timeout_loses_the_partitions() {
    bounded(async {
        let mut s = settings(None);
        s.rebalance_timeout = Duration::from_secs(8);
        let mut h = start(s);
        h.joined(&[(A, &[0, 1])]).await;
        let (_, answer) = h.call().await;
        answer.send(Ok(ok(2, Some(&[(A, &[0])])))).unwrap();
        let MemberEvent::Revoked { ack: _ack, .. } = h.event().await else {
            panic!("revoked")
        };
        let asked = Instant::now();
        // Heartbeats go on meanwhile; the rejoin may reach the test before
        // the event does.
        let mut rejoin = None;
        let lost = loop {
            tokio::select! {
                call = h.calls.recv() => {
                    let (req, answer) = call.expect("heartbeat");
                    if req.member_epoch == 0 {
                        rejoin = Some((req, answer));
                    } else {
                        assert!(asked.elapsed() < Duration::from_secs(8));
                        answer.send(Ok(ok(2, None))).unwrap();
                    }
                }
                ev = h.events.recv() => break ev.expect("event"),
            }
        };
        let MemberEvent::Lost { partitions, .. } = lost else {
            panic!("lost")
        };
        assert_eq!(asked.elapsed(), Duration::from_secs(8));
        assert_eq!(partitions, tps(&[("a", &[0, 1])]));
        let (rejoin, answer) = match rejoin {
            Some(r) => r,
            None => h.call().await,
        };
        assert_eq!(asked.elapsed(), Duration::from_secs(8), "at once");
        assert_eq!(rejoin.member_epoch, 0);
        answer.send(Ok(ok(3, None))).unwrap();
        h.task.abort();
    })
    .await;
}

#[test]
fn member_ids_are_random_version_4_uuids_in_kafka_text_form() {
    use base64::Engine as _;
    let a = new_member_id();
    let b = new_member_id();
    assert_eq!(a.len(), 22);
    assert_ne!(a, b);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&a)
        .expect("base64");
    assert_eq!(bytes[6] >> 4, 4, "version 4");
    assert_eq!(bytes[8] >> 6, 0b10, "the RFC 4122 variant");
}
