//! Members of one consumer group running side by side, each writing a
//! [`MemberLog`] as it goes: klamm's `GroupConsumer` on a task of its own,
//! and the peers' `group-consume` mode (peers/PATTERN.md, "Group members")
//! as child processes whose JSON lines are read as they come. A peer runs
//! until its stdin closes ([`PeerMember::stop`]); dropped, it is killed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use klamm::Client;
use klamm::group::{GroupConsumer, GroupEvent, TopicPartition};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::interop_peers::{PeerProgram, tail};
use super::ownership::{MemberLog, Tp, What, now_us};

/// A member's log, shared with whatever writes it.
pub type SharedLog = Arc<Mutex<MemberLog>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Copies of the logs as they are now.
pub fn snapshot(logs: &[SharedLog]) -> Vec<MemberLog> {
    logs.iter().map(|l| lock(l).clone()).collect()
}

/// klamm's `GroupConsumer`, driven on its own task: every event goes into
/// its log the moment `recv` returns it, and `recv` is called again at once
/// (which acknowledges a revocation).
///
/// Commits are logged as they become visible: on `Revoked` the task
/// commits first (`GroupConsumer::commit`, which covers everything
/// returned so far) and logs what the offset manager then holds as
/// committed for the partitions, before logging the revocation; the
/// auto-commits in between are logged when the committed offset of an
/// owned partition equals its mark (so an offset read at assignment is
/// never taken for a commit of this member's).
pub struct KlammMember {
    pub name: String,
    log: SharedLog,
    problems: Arc<Mutex<Vec<String>>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl KlammMember {
    /// Joins the group `client`'s config names, subscribed to `topics`.
    pub async fn start(name: &str, client: Client, topics: &[&str]) -> KlammMember {
        let mut g = GroupConsumer::new(client, topics.iter().copied())
            .await
            .expect("klamm's GroupConsumer");
        let log: SharedLog = Arc::new(Mutex::new(MemberLog::new(name)));
        let problems = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = oneshot::channel::<()>();
        let (task_log, task_problems) = (log.clone(), problems.clone());
        let task = tokio::spawn(async move {
            // What was last logged as committed, per partition owned.
            let mut logged: BTreeMap<Tp, i64> = BTreeMap::new();
            loop {
                // Cancelling `recv` could drop an event it is in the middle
                // of; the test stops klamm only once the group has settled
                // and nothing is happening to it.
                let ev = tokio::select! {
                    biased;
                    _ = &mut stopped => break,
                    ev = g.recv() => ev,
                };
                let ts = now_us();
                let what = match ev {
                    None => {
                        lock(&task_problems).push("the GroupConsumer stopped".into());
                        return;
                    }
                    Some(Err(e)) => {
                        lock(&task_problems).push(format!("recv at {ts}: {e}"));
                        continue;
                    }
                    Some(Ok(GroupEvent::Records(batch))) => {
                        log_commits(&g, &mut logged, &task_log, &g.assignment());
                        let mut log = lock(&task_log);
                        for r in batch.iter() {
                            let value = r
                                .value
                                .as_deref()
                                .map(|v| String::from_utf8_lossy(v).into_owned());
                            log.push(
                                ts,
                                What::Record {
                                    tp: (r.topic.to_string(), r.partition),
                                    offset: r.offset,
                                    value,
                                },
                            );
                        }
                        continue;
                    }
                    Some(Ok(GroupEvent::Assigned(tps))) => What::Assigned {
                        partitions: tps.into_iter().map(|tp| (tp.topic, tp.partition)).collect(),
                        generation: g.generation().id,
                    },
                    Some(Ok(GroupEvent::Revoked(tps))) => {
                        if let Err(e) = g.commit().await {
                            lock(&task_problems).push(format!("commit on revoke: {e}"));
                        }
                        log_commits(&g, &mut logged, &task_log, &tps);
                        for tp in &tps {
                            logged.remove(&(tp.topic.clone(), tp.partition));
                        }
                        What::Revoked {
                            partitions: tps
                                .into_iter()
                                .map(|tp| (tp.topic, tp.partition))
                                .collect(),
                        }
                    }
                    Some(Ok(GroupEvent::Lost { partitions, reason })) => {
                        for tp in &partitions {
                            logged.remove(&(tp.topic.clone(), tp.partition));
                        }
                        lock(&task_problems).push(format!(
                            "lost {} partitions at {ts}: {reason}",
                            partitions.len()
                        ));
                        What::Lost {
                            partitions: partitions
                                .into_iter()
                                .map(|tp| (tp.topic, tp.partition))
                                .collect(),
                        }
                    }
                    Some(Ok(other)) => {
                        lock(&task_problems).push(format!("unexpected event {other:?}"));
                        continue;
                    }
                };
                // Stamped now: a revocation after the commit logged for it.
                lock(&task_log).push(now_us(), what);
            }
            // Processing ends here: what it owns is committed, then given
            // up by `close`, which leaves the group.
            if let Err(e) = g.commit().await {
                lock(&task_problems).push(format!("commit before close: {e}"));
            }
            log_commits(&g, &mut logged, &task_log, &g.assignment());
            let ts = now_us();
            {
                let mut log = lock(&task_log);
                let owned: Vec<_> = log.owned().into_iter().collect();
                log.push(ts, What::Revoked { partitions: owned });
            }
            if let Err(e) = g.close().await {
                lock(&task_problems).push(format!("close: {e}"));
            }
        });
        KlammMember {
            name: name.to_string(),
            log,
            problems,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn log(&self) -> SharedLog {
        self.log.clone()
    }

    /// What went wrong so far (errors from `recv`, losses, a failed close).
    pub fn problems(&self) -> Vec<String> {
        lock(&self.problems).clone()
    }

    /// Stops reading, closes the consumer (leaving the group) and waits
    /// for it.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .unwrap_or_else(|_| panic!("{}: close took over 30 s", self.name))
                .expect("klamm member task");
        }
    }
}

/// Logs, as one `Committed` event, the partitions among `partitions` whose
/// committed offset changed since last logged and equals this member's mark
/// (so it is a commit of the mark, not the offset read at assignment).
fn log_commits(
    g: &GroupConsumer,
    logged: &mut BTreeMap<Tp, i64>,
    log: &SharedLog,
    partitions: &[TopicPartition],
) {
    let mut offsets = Vec::new();
    for tp in partitions {
        let (Some(marked), Some(committed)) = (g.offsets().marked(tp), g.offsets().committed(tp))
        else {
            continue;
        };
        if marked.offset != committed.offset {
            continue;
        }
        let key = (tp.topic.clone(), tp.partition);
        if logged.get(&key) != Some(&committed.offset) {
            logged.insert(key.clone(), committed.offset);
            offsets.push((key, committed.offset));
        }
    }
    if !offsets.is_empty() {
        lock(log).push(now_us(), What::Committed { offsets });
    }
}

impl Drop for KlammMember {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A peer in `group-consume` mode.
pub struct PeerMember {
    pub name: String,
    args: Vec<String>,
    child: Child,
    stdin: Option<ChildStdin>,
    log: SharedLog,
    /// Lines other than group events (the summary).
    other: Arc<Mutex<Vec<Value>>>,
    problems: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl PeerMember {
    /// Starts `program group-consume` with `args` (and `--timeout-ms`, the
    /// bound of the whole run).
    pub fn start(
        program: &PeerProgram,
        name: &str,
        args: &[String],
        timeout: Duration,
    ) -> PeerMember {
        let mut args: Vec<String> = std::iter::once("group-consume".to_string())
            .chain(args.iter().cloned())
            .collect();
        args.extend(["--timeout-ms".into(), timeout.as_millis().to_string()]);
        let mut child = Command::new(&program.path)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({}): {e}", program.path.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr_pipe = child.stderr.take().expect("stderr");
        let log: SharedLog = Arc::new(Mutex::new(MemberLog::new(name)));
        let other = Arc::new(Mutex::new(Vec::new()));
        let problems = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (l, o, p) = (log.clone(), other.clone(), problems.clone());
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                let value: Value = match serde_json::from_str(&line) {
                    Ok(v) => v,
                    Err(e) => {
                        lock(&p).push(format!("not JSON ({e}): {line}"));
                        continue;
                    }
                };
                match super::ownership::Event::from_json(&value) {
                    Ok(Some(ev)) => lock(&l).events.push(ev),
                    Ok(None) => lock(&o).push(value),
                    Err(e) => lock(&p).push(e),
                }
            }
        });
        let e = stderr.clone();
        let err_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                lock(&e).push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        PeerMember {
            name: name.to_string(),
            args,
            child,
            stdin,
            log,
            other,
            problems,
            stderr,
            readers: vec![out_reader, err_reader],
            status: None,
        }
    }

    pub fn log(&self) -> SharedLog {
        self.log.clone()
    }

    /// Asks the peer to finish: closes its stdin.
    pub fn stop(&mut self) {
        self.stdin.take();
    }

    /// Waits up to `limit` for the peer to exit and returns its summary
    /// line; fails the test if it does not exit, or its output was not all
    /// JSON lines of the expected kinds.
    pub async fn wait(&mut self, limit: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if tokio::time::Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not exit within {limit:?} of being stopped; killed\n{}",
                    self.name,
                    self.describe()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        self.status = Some(status);
        for r in self.readers.drain(..) {
            let _ = tokio::task::spawn_blocking(move || r.join()).await;
        }
        let problems = lock(&self.problems).clone();
        assert!(
            problems.is_empty(),
            "{} printed lines that are not group events: {problems:?}\n{}",
            self.name,
            self.describe()
        );
        let summary = lock(&self.other)
            .iter()
            .rev()
            .find(|l| l["type"] == "summary")
            .cloned();
        summary.unwrap_or_else(|| panic!("{}: no summary line\n{}", self.name, self.describe()))
    }

    /// Whether the peer exited with status 0.
    pub fn exited_ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// For failure messages: arguments, status, non-record lines, stderr.
    pub fn describe(&self) -> String {
        let mut s = format!("  args: {:?}\n  status: {:?}\n", self.args, self.status);
        for l in lock(&self.other).iter() {
            s += &format!("  {l}\n");
        }
        s + &format!("  stderr (end):\n{}", tail(&lock(&self.stderr), 30))
    }
}

impl Drop for PeerMember {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
