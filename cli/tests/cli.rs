//! The `klamm` binary against Apache Kafka 4.4 (the single node
//! `scripts/test` starts), each result checked by an independent tool:
//! the Java console consumer prints the records `klamm consume` prints,
//! ConsumerGroupCommand shows the lag `klamm groups describe` shows,
//! ConfigCommand and AclCommand see what `klamm configs` and `klamm acls`
//! changed, DumpLogSegments reads the codec `klamm produce -z` wrote; and
//! `klamm decode` prints every field of frames captured from other
//! clients and from the broker.

#[path = "../../tests/support/env.rs"]
mod env;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What a command printed, and how it ended.
struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self, what: &str) -> Run {
        assert_eq!(
            self.status, 0,
            "{what} failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs `program` with `args` (and `stdin`), killing it after `limit`.
fn run(mut cmd: Command, stdin: &[u8], limit: Duration) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still ran after {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    Run {
        status: status.code().unwrap_or(-1),
        stdout: reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// `klamm ARGS` against `broker` (none at all when empty).
fn klamm(broker: &str, args: &[&str], stdin: &[u8]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_klamm"));
    cmd.args(args);
    if broker.is_empty() {
        cmd.env_remove("KLAMM_BROKERS");
    } else {
        cmd.env("KLAMM_BROKERS", broker);
    }
    run(cmd, stdin, Duration::from_secs(90))
}

/// A Kafka tool class (`scripts/kafka run CLASS ARGS`).
fn kafka_tool(class: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka"));
    cmd.arg("run").arg(class).args(args);
    run(cmd, b"", Duration::from_secs(120))
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[test]
fn produce_and_consume_print_what_the_java_console_consumer_prints() {
    let Some(broker) = env::broker() else { return };
    let topic = env::unique_topic("klamm-cli");
    let created = klamm(
        &broker,
        &[
            "topics",
            "create",
            &topic,
            "--partitions",
            "2",
            "--replication-factor",
            "1",
        ],
        b"",
    )
    .ok("topics create");
    assert!(
        created.stdout.contains(&format!("created: {topic}")),
        "{}",
        created.stdout
    );

    // 20 keyed records with a header, lz4: the partitioner spreads them.
    let input: String = (0..20).map(|i| format!("key-{i}:value {i}: ü\n")).collect();
    let produced = klamm(
        &broker,
        &[
            "produce", "-t", &topic, "-K", ":", "-H", "src=cli", "-z", "lz4",
        ],
        input.as_bytes(),
    )
    .ok("produce");
    assert!(
        produced.stderr.contains("20 record(s) produced"),
        "{}",
        produced.stderr
    );

    let ours = klamm(
        &broker,
        &["consume", "-t", &topic, "-e", "-f", "%p|%o|%k|%s|%h\\n"],
        b"",
    )
    .ok("consume");
    let ours: BTreeSet<(String, String, String, String)> = lines(&ours.stdout)
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            assert_eq!(f[4], "src=cli", "{l}");
            (f[0].into(), f[1].into(), f[2].into(), f[3].into())
        })
        .collect();
    assert_eq!(ours.len(), 20);
    let keys: BTreeSet<&str> = ours.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(keys.len(), 20, "every key once");

    let java = kafka_tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        &[
            "--bootstrap-server",
            &broker,
            "--topic",
            &topic,
            "--from-beginning",
            "--max-messages",
            "20",
            "--timeout-ms",
            "30000",
            "--formatter-property",
            "print.partition=true",
            "--formatter-property",
            "print.offset=true",
            "--formatter-property",
            "print.key=true",
            "--formatter-property",
            "print.headers=true",
        ],
    )
    .ok("the Java console consumer");
    // Partition:P<TAB>Offset:O<TAB>src:cli<TAB>KEY<TAB>VALUE
    let theirs: BTreeSet<(String, String, String, String)> = lines(&java.stdout)
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f[2], "src:cli", "{l}");
            (
                f[0].trim_start_matches("Partition:").into(),
                f[1].trim_start_matches("Offset:").into(),
                f[3].into(),
                f[4].into(),
            )
        })
        .collect();
    assert_eq!(
        ours, theirs,
        "klamm consume and the Java console consumer print the same records"
    );

    // The codec reached the log (the control: a topic written without -z).
    let plain = format!("{topic}-plain");
    klamm(
        &broker,
        &["topics", "create", &plain, "--partitions", "1"],
        b"",
    )
    .ok("create");
    klamm(&broker, &["produce", "-t", &plain], b"a\nb\n").ok("produce plain");
    // Where the broker keeps its logs: its log.dirs, asked with klamm.
    let broker_configs = klamm(
        &broker,
        &[
            "configs",
            "describe",
            "--entity-type",
            "broker",
            "--entity-name",
            "1",
            "--all",
            "--json",
        ],
        b"",
    )
    .ok("broker configs")
    .json();
    let dir = broker_configs["log.dirs"]["value"]
        .as_str()
        .expect("log.dirs")
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let dump = |t: &str| {
        let segment = format!("{dir}/{t}-0/00000000000000000000.log");
        kafka_tool(
            "org.apache.kafka.tools.DumpLogSegments",
            &["--files", &segment],
        )
        .ok("DumpLogSegments")
        .stdout
    };
    let stored = dump(&topic);
    let control = dump(&plain);
    assert!(
        stored.contains("compresscodec: lz4"),
        "no lz4 batch in partition 0:\n{stored}"
    );
    assert!(!stored.contains("compresscodec: none"), "{stored}");
    assert!(
        control.contains("compresscodec: none") && !control.contains("compresscodec: lz4"),
        "{control}"
    );

    // JSON envelopes, a count, the last N of a partition, kcat's flags.
    let env_run = klamm(
        &broker,
        &["consume", "-t", &topic, "-p", "0", "-J", "-c", "3"],
        b"",
    )
    .ok("consume -J");
    let envelopes: Vec<Value> = lines(&env_run.stdout)
        .iter()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(envelopes.len(), 3);
    for (i, e) in envelopes.iter().enumerate() {
        assert_eq!(e["topic"], topic.as_str());
        assert_eq!(e["partition"], 0);
        assert_eq!(e["offset"], i as i64);
        assert_eq!(e["headers"], serde_json::json!(["src", "cli"]));
        assert!(e["payload"].as_str().unwrap().ends_with(": ü"));
    }
    let in_p1 = ours_in(&ours, "1");
    let last2 = klamm(
        &broker,
        &[
            "-C", "-t", &topic, "-p", "1", "-o", "-2", "-e", "-f", "%o\\n",
        ],
        b"",
    )
    .ok("consume -o -2");
    let want: Vec<String> = ((in_p1 - 2)..in_p1).map(|o| o.to_string()).collect();
    assert_eq!(lines(&last2.stdout), want);
    let meta = klamm(&broker, &["-L", "-t", &topic, "--json"], b"").ok("metadata");
    let m = meta.json();
    assert_eq!(m["topics"][0]["partitions"].as_array().unwrap().len(), 2);
    assert_eq!(m["brokers"][0]["id"], 1);
    let offsets = klamm(
        &broker,
        &["-Q", "-t", &format!("{topic}:1:-1"), "--json"],
        b"",
    )
    .ok("offsets");
    assert_eq!(offsets.json()[0]["offset"], in_p1);

    // Where consuming starts: an offset, a time, the end.
    let from_one = klamm(
        &broker,
        &[
            "consume", "-t", &topic, "-p", "1", "-o", "1", "-e", "-f", "%o\\n",
        ],
        b"",
    )
    .ok("-o 1");
    let want: Vec<String> = (1..in_p1).map(|o| o.to_string()).collect();
    assert_eq!(lines(&from_one.stdout), want);
    let all_p1 = klamm(
        &broker,
        &["consume", "-t", &topic, "-p", "1", "-e", "-J"],
        b"",
    )
    .ok("-J p1");
    let stamps: Vec<(i64, i64)> = lines(&all_p1.stdout)
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["offset"].as_i64().unwrap(), v["ts"].as_i64().unwrap())
        })
        .collect();
    let (last_offset, last_ts) = *stamps.last().unwrap();
    let first_at = stamps.iter().find(|(_, ts)| *ts >= last_ts).unwrap().0;
    let by_time = klamm(
        &broker,
        &[
            "consume",
            "-t",
            &topic,
            "-p",
            "1",
            "-o",
            &format!("s@{last_ts}"),
            "-e",
            "-f",
            "%o\\n",
        ],
        b"",
    )
    .ok("-o s@");
    let want: Vec<String> = (first_at..=last_offset).map(|o| o.to_string()).collect();
    assert_eq!(lines(&by_time.stdout), want);
    let at_end = klamm(&broker, &["consume", "-t", &topic, "-o", "end", "-e"], b"").ok("-o end");
    assert_eq!(at_end.stdout, "", "nothing after the end");

    // A properties file, and SASL like kcat: -X security settings; the
    // wrong password is exit 4.
    let props = std::env::temp_dir().join(format!("{topic}.properties"));
    std::fs::write(
        &props,
        format!("# from a file\nbootstrap.servers={broker}\nclient.id=from-file\n"),
    )
    .unwrap();
    let listed = klamm(
        "",
        &["-F", &props.display().to_string(), "topics", "list"],
        b"",
    )
    .ok("-F");
    assert!(
        listed.stdout.lines().any(|l| l == topic),
        "{}",
        listed.stdout
    );
    if let Some(sasl) = env::require("KLAMM_TEST_SASL", "SASL_PLAINTEXT listener") {
        let login = |password: &str| {
            klamm(
                &sasl,
                &[
                    "-X",
                    "security.protocol=SASL_PLAINTEXT",
                    "-X",
                    "sasl.mechanism=SCRAM-SHA-256",
                    "-X",
                    "sasl.username=alice",
                    "-X",
                    &format!("sasl.password={password}"),
                    "topics",
                    "list",
                ],
                b"",
            )
        };
        let ok = login("alice-secret").ok("SASL");
        assert!(ok.stdout.lines().any(|l| l == topic), "{}", ok.stdout);
        let refused = login("wrong");
        assert_eq!(refused.status, 4, "{}", refused.stderr);
        assert!(
            !refused.stderr.contains("wrong"),
            "the password is not printed: {}",
            refused.stderr
        );
    }

    // A transaction: committed, with its marker in the log (read to its
    // end with -e, the marker after the last record notwithstanding).
    let txn_topic = format!("{topic}-txn");
    klamm(
        &broker,
        &["topics", "create", &txn_topic, "--partitions", "1"],
        b"",
    )
    .ok("create");
    klamm(
        &broker,
        &[
            "produce",
            "-t",
            &txn_topic,
            "--transactional-id",
            &format!("{topic}-tx"),
        ],
        b"one\ntwo\n",
    )
    .ok("produce in a transaction");
    // The coordinator writes the COMMIT marker after it answers: read once
    // the last stable offset (what -e ends at under read_committed) has
    // passed it.
    let lso_query = format!("{txn_topic}:0:-1");
    let mut lso = Value::Null;
    for _ in 0..50 {
        lso = klamm(
            &broker,
            &["offsets", "-t", &lso_query, "--read-committed", "--json"],
            b"",
        )
        .ok("offsets --read-committed")
        .json()[0]["offset"]
            .clone();
        if lso == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(lso, 3, "two records and the marker");
    let committed = klamm(
        &broker,
        &[
            "consume",
            "-t",
            &txn_topic,
            "-X",
            "isolation.level=read_committed",
            "-e",
        ],
        b"",
    )
    .ok("read_committed");
    assert_eq!(lines(&committed.stdout), vec!["one", "two"]);
    let log = dump(&txn_topic);
    assert!(
        log.contains("isTransactional: true") && log.contains("isControl: true"),
        "{log}"
    );
    assert!(
        !dump(&plain).contains("isTransactional: true"),
        "the control is not transactional"
    );

    // Deleting topics: gone, and a second delete fails with exit 1.
    klamm(&broker, &["topics", "delete", &plain, &txn_topic], b"").ok("delete");
    let again = klamm(&broker, &["topics", "delete", &plain], b"");
    assert_eq!(again.status, 1, "{}", again.stdout);
    assert!(
        again.stdout.contains("UNKNOWN_TOPIC_OR_PARTITION"),
        "{}",
        again.stdout
    );
}

/// How many of `records` (partition, offset, key, value) are in
/// partition `p`.
fn ours_in(records: &BTreeSet<(String, String, String, String)>, p: &str) -> i64 {
    records.iter().filter(|r| r.0 == p).count() as i64
}

/// The lag per partition ConsumerGroupCommand prints for `group`.
fn java_lag(broker: &str, group: &str) -> BTreeMap<i64, (String, String)> {
    let out = kafka_tool(
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        &["--bootstrap-server", broker, "--describe", "--group", group],
    )
    .ok("ConsumerGroupCommand");
    let mut rows = BTreeMap::new();
    let mut header: Vec<&str> = Vec::new();
    for l in lines(&out.stdout) {
        let cols: Vec<&str> = l.split_whitespace().collect();
        if cols.first() == Some(&"GROUP") {
            header = cols;
            continue;
        }
        let at = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .map(|i| cols.get(i).copied().unwrap_or("-"))
        };
        if let (Some(p), Some(current), Some(lag)) =
            (at("PARTITION"), at("CURRENT-OFFSET"), at("LAG"))
        {
            if let Ok(p) = p.parse() {
                rows.insert(p, (current.to_string(), lag.to_string()));
            }
        }
    }
    rows
}

#[test]
fn groups_show_the_lag_consumer_group_command_shows_and_offsets_reset() {
    let Some(broker) = env::broker() else { return };
    let topic = env::unique_topic("klamm-cli-groups");
    let group = format!("{topic}-g");
    klamm(
        &broker,
        &[
            "topics",
            "create",
            &topic,
            "--partitions",
            "2",
            "--replication-factor",
            "1",
        ],
        b"",
    )
    .ok("create");
    let twenty: String = (0..20).map(|i| format!("a{i}\n")).collect();
    let ten: String = (0..10).map(|i| format!("b{i}\n")).collect();
    klamm(
        &broker,
        &["produce", "-t", &topic, "-p", "0"],
        twenty.as_bytes(),
    )
    .ok("produce p0");
    klamm(
        &broker,
        &["produce", "-t", &topic, "-p", "1"],
        ten.as_bytes(),
    )
    .ok("produce p1");

    // -e and -N have no meaning for a member: refused (exit 2).
    let refused = klamm(&broker, &["consume", "-G", &group, "-t", &topic, "-e"], b"");
    assert_eq!(refused.status, 2, "{}", refused.stderr);
    let refused = klamm(
        &broker,
        &["consume", "-G", &group, "-t", &topic, "-o", "-5"],
        b"",
    );
    assert_eq!(refused.status, 2, "{}", refused.stderr);

    // A member reads 12 and commits as it leaves.
    let read = klamm(
        &broker,
        &["consume", "-G", &group, "-t", &topic, "-c", "12"],
        b"",
    )
    .ok("consume -G");
    assert_eq!(lines(&read.stdout).len(), 12);

    let ours = klamm(&broker, &["groups", "describe", &group, "--json"], b"").ok("groups describe");
    let doc = ours.json();
    // The member committed the 12 records it printed; partitions it never
    // committed are not rows (as in ConsumerGroupCommand for an empty
    // group).
    let rows = doc[&group]["lag"].as_array().expect("lag rows").clone();
    let current: i64 = rows.iter().map(|r| r["current"].as_i64().unwrap()).sum();
    assert_eq!(current, 12, "{doc}");
    let total = doc[&group]["total_lag"].as_i64().unwrap();
    let ends: i64 = rows.iter().map(|r| r["log_end"].as_i64().unwrap()).sum();
    assert_eq!(total, ends - 12, "{doc}");
    let java = java_lag(&broker, &group);
    assert_eq!(java.len(), rows.len(), "the same partitions: {java:?}");
    for row in &rows {
        let p = row["partition"].as_i64().unwrap();
        let (current, lag) = &java[&p];
        assert_eq!(&row["current"].to_string(), current, "partition {p}");
        assert_eq!(&row["lag"].to_string(), lag, "partition {p}");
    }
    let table = klamm(&broker, &["groups", "describe", &group], b"").ok("groups describe (table)");
    assert!(
        table.stdout.contains("LOG-END-OFFSET")
            && table.stdout.contains(&format!("total lag {total}")),
        "{}",
        table.stdout
    );

    // Reset: a dry run changes nothing (the control), --execute does.
    let dry = klamm(
        &broker,
        &[
            "groups",
            "reset-offsets",
            &group,
            "--topic",
            &topic,
            "--to-earliest",
        ],
        b"",
    )
    .ok("dry run");
    assert!(dry.stdout.contains("dry run"), "{}", dry.stdout);
    assert_eq!(
        java_lag(&broker, &group)
            .values()
            .map(|(_, l)| l.parse::<i64>().unwrap())
            .sum::<i64>(),
        total,
        "a dry run changes nothing"
    );
    klamm(
        &broker,
        &[
            "groups",
            "reset-offsets",
            &group,
            "--topic",
            &topic,
            "--to-earliest",
            "--execute",
        ],
        b"",
    )
    .ok("to earliest");
    let java = java_lag(&broker, &group);
    assert_eq!((java[&0].0.as_str(), java[&1].0.as_str()), ("0", "0"));
    klamm(
        &broker,
        &[
            "groups",
            "reset-offsets",
            &group,
            "--topic",
            &format!("{topic}:0"),
            "--shift-by",
            "5",
            "--execute",
        ],
        b"",
    )
    .ok("shift");
    klamm(
        &broker,
        &[
            "groups",
            "reset-offsets",
            &group,
            "--topic",
            &format!("{topic}:1"),
            "--to-offset",
            "7",
            "--execute",
        ],
        b"",
    )
    .ok("to offset");
    let java = java_lag(&broker, &group);
    assert_eq!((java[&0].0.as_str(), java[&1].0.as_str()), ("5", "7"));
    klamm(
        &broker,
        &[
            "groups",
            "reset-offsets",
            &group,
            "--topic",
            &topic,
            "--to-datetime",
            "2100-01-01T00:00:00Z",
            "--execute",
        ],
        b"",
    )
    .ok("to datetime");
    let java = java_lag(&broker, &group);
    assert_eq!(
        (java[&0].0.as_str(), java[&1].0.as_str()),
        ("20", "10"),
        "a time after every record is the log end"
    );

    // Delete one partition's offset, then the group.
    klamm(
        &broker,
        &[
            "groups",
            "delete-offsets",
            &group,
            "--topic",
            &format!("{topic}:1"),
        ],
        b"",
    )
    .ok("delete offsets");
    let left = klamm(&broker, &["groups", "describe", &group, "--json"], b"")
        .ok("describe")
        .json();
    let committed: Vec<i64> = left[&group]["lag"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["current"].is_null())
        .map(|r| r["partition"].as_i64().unwrap())
        .collect();
    assert_eq!(committed, vec![0]);
    klamm(&broker, &["groups", "delete", &group], b"").ok("delete group");
    let listed = klamm(&broker, &["groups", "list", "--json"], b"")
        .ok("list")
        .json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["group"] != group.as_str())
    );
}

#[test]
fn topics_configs_and_acls_commands_and_their_exit_codes() {
    let Some(broker) = env::broker() else { return };
    let topic = env::unique_topic("klamm-cli-admin");
    klamm(
        &broker,
        &[
            "topics",
            "create",
            &topic,
            "--partitions",
            "1",
            "--replication-factor",
            "1",
        ],
        b"",
    )
    .ok("create");

    // One existing and one new: the new is created, the status says one failed.
    let again = klamm(
        &broker,
        &[
            "topics",
            "create",
            &topic,
            &format!("{topic}-2"),
            "--partitions",
            "1",
        ],
        b"",
    );
    assert_eq!(again.status, 1, "{}", again.stdout);
    assert!(
        again.stdout.contains(&format!("created: {topic}-2"))
            && again.stdout.contains("TOPIC_ALREADY_EXISTS"),
        "{}",
        again.stdout
    );
    klamm(
        &broker,
        &["topics", "create", &topic, "--if-not-exists"],
        b"",
    )
    .ok("if not exists");
    klamm(
        &broker,
        &["topics", "alter", &topic, "--partitions", "3"],
        b"",
    )
    .ok("alter");
    let described = klamm(&broker, &["topics", "describe", &topic, "--json"], b"")
        .ok("describe")
        .json();
    assert_eq!(described[&topic]["partitions"].as_array().unwrap().len(), 3);
    assert!(
        klamm(&broker, &["topics", "list"], b"")
            .ok("list")
            .stdout
            .lines()
            .any(|l| l == topic)
    );

    // Configs: klamm sets, ConfigCommand reads; klamm lists what is set.
    klamm(
        &broker,
        &[
            "configs",
            "alter",
            "--entity-type",
            "topic",
            "--entity-name",
            &topic,
            "--add-config",
            "retention.ms=3600000,cleanup.policy=[compact,delete]",
        ],
        b"",
    )
    .ok("configs alter");
    let java = kafka_tool(
        "org.apache.kafka.tools.ConfigCommand",
        &[
            "--bootstrap-server",
            &broker,
            "--describe",
            "--entity-type",
            "topics",
            "--entity-name",
            &topic,
        ],
    )
    .ok("ConfigCommand");
    assert!(
        java.stdout.contains("retention.ms=3600000")
            && java.stdout.contains("cleanup.policy=compact,delete"),
        "{}",
        java.stdout
    );
    let set = klamm(
        &broker,
        &[
            "configs",
            "describe",
            "--entity-type",
            "topic",
            "--entity-name",
            &topic,
            "--json",
        ],
        b"",
    )
    .ok("describe")
    .json();
    assert_eq!(set["retention.ms"]["value"], "3600000");
    assert!(
        set.get("segment.bytes").is_none(),
        "only what is set, without --all"
    );
    let all = klamm(
        &broker,
        &[
            "configs",
            "describe",
            "--entity-type",
            "topic",
            "--entity-name",
            &topic,
            "--all",
            "--json",
        ],
        b"",
    )
    .ok("describe --all")
    .json();
    assert_eq!(all["segment.bytes"]["source"], "DEFAULT_CONFIG");
    klamm(
        &broker,
        &[
            "configs",
            "alter",
            "--entity-type",
            "topic",
            "--entity-name",
            &topic,
            "--delete-config",
            "retention.ms",
        ],
        b"",
    )
    .ok("delete config");
    let set = klamm(
        &broker,
        &[
            "configs",
            "describe",
            "--entity-type",
            "topic",
            "--entity-name",
            &topic,
            "--json",
        ],
        b"",
    )
    .ok("describe")
    .json();
    assert!(set.get("retention.ms").is_none(), "{set}");

    // ACLs: a table, planned, applied, applied again; AclCommand sees it.
    let principal = format!("User:{}", topic.replace('-', "_"));
    let table = std::env::temp_dir().join(format!("{topic}.acl"));
    std::fs::write(
        &table,
        format!("{topic}  {principal}  read,describe\ngroup:{topic}-g  {principal}  read\n"),
    )
    .unwrap();
    let table = table.display().to_string();
    let acl_list = || {
        kafka_tool(
            "org.apache.kafka.tools.AclCommand",
            &[
                "--bootstrap-server",
                &broker,
                "--list",
                "--principal",
                &principal,
            ],
        )
        .ok("AclCommand")
        .stdout
    };
    let plan = klamm(&broker, &["acls", "apply", &table, "--dry-run"], b"").ok("dry run");
    assert_eq!(plan.stdout.matches("+ ").count(), 3, "{}", plan.stdout);
    assert!(
        !acl_list().contains("operation=READ"),
        "a dry run changes nothing"
    );
    let applied = klamm(&broker, &["acls", "apply", &table], b"").ok("apply");
    assert_eq!(
        applied.stdout.matches("[done]").count(),
        3,
        "{}",
        applied.stdout
    );
    let mut seen = String::new();
    for _ in 0..50 {
        seen = acl_list();
        if seen.matches("operation=").count() == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(seen.matches("operation=").count(), 3, "{seen}");
    assert!(
        seen.contains("operation=DESCRIBE") && seen.contains("operation=READ"),
        "{seen}"
    );
    let mut second = String::new();
    for _ in 0..50 {
        second = klamm(&broker, &["acls", "apply", &table], b"")
            .ok("apply again")
            .stdout;
        if second.contains("nothing to change") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(second.contains("nothing to change"), "{second}");
    let listed = klamm(
        &broker,
        &["acls", "list", "--principal", &principal, "--json"],
        b"",
    )
    .ok("list")
    .json();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    klamm(&broker, &["acls", "delete", "--principal", &principal], b"").ok("delete");
    let refused = klamm(&broker, &["acls", "delete"], b"");
    assert_eq!(refused.status, 2, "deleting every ACL needs --all");

    // Exit codes: bad configuration 2, no cluster 3; help everywhere.
    let bad = klamm(
        &broker,
        &["-X", "no.such.property=1", "topics", "list"],
        b"",
    );
    assert_eq!(bad.status, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("no.such.property"), "{}", bad.stderr);
    let nobody = klamm(
        "127.0.0.1:1",
        &[
            "-X",
            "socket.connection.setup.timeout.ms=500",
            "-X",
            "socket.connection.setup.timeout.max.ms=500",
            "topics",
            "list",
        ],
        b"",
    );
    assert_eq!(nobody.status, 3, "{}", nobody.stderr);
    for sub in [
        vec!["--help"],
        vec!["produce", "--help"],
        vec!["consume", "--help"],
        vec!["metadata", "--help"],
        vec!["offsets", "--help"],
        vec!["topics", "create", "--help"],
        vec!["groups", "reset-offsets", "--help"],
        vec!["configs", "alter", "--help"],
        vec!["acls", "apply", "--help"],
        vec!["decode", "--help"],
    ] {
        let help = klamm(&broker, &sub, b"").ok("help");
        assert!(help.stdout.contains("Usage:"), "{sub:?}: {}", help.stdout);
    }
}

/// A compact string: its length + 1 as an unsigned varint, then the bytes.
/// `klamm decode FILE` with stdout given as `stdout`; its status and stderr.
fn decode_into(stdout: Stdio) -> (i32, String) {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/produce");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{file}/MANIFEST.json")).unwrap())
            .unwrap();
    let first = manifest["fixtures"][0]["file"].as_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_klamm"))
        .args(["decode", &format!("{file}/{first}")])
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("run klamm decode");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_ends_klamm_quietly_and_a_failing_one_with_an_error() {
    // A pipe whose reader is gone before klamm writes (`klamm ... | head`
    // after head has its lines): every write fails with EPIPE. klamm ends
    // with status 0 and says nothing; it used to panic (status 101).
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let (status, stderr) = decode_into(Stdio::from(writer));
    assert_eq!((status, stderr.as_str()), (0, ""), "closed pipe");
    // Control: a stdout that fails otherwise (/dev/full: no space) is an
    // error with a message and status 1, so the quiet exit above is the
    // closed pipe's, not every failed write's.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let (status, stderr) = decode_into(Stdio::from(full));
    assert_eq!(status, 1, "stderr: {stderr}");
    assert!(
        stderr.contains("cannot write to stdout"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

fn compact(s: &str) -> Vec<u8> {
    let mut v = vec![(s.len() + 1) as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

#[test]
fn decode_prints_every_field_of_captured_frames() {
    // Produce requests captured from confluent-kafka and kafka-python.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/produce");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/MANIFEST.json")).unwrap())
            .unwrap();
    let fixtures = manifest["fixtures"].as_array().unwrap();
    assert!(fixtures.len() >= 10);
    for f in fixtures {
        let file = format!("{dir}/{}", f["file"].as_str().unwrap());
        let doc = klamm("unused:1", &["decode", &file], b"")
            .ok("decode")
            .json();
        assert_eq!(doc["api"], "Produce", "{file}");
        assert_eq!(doc["version"], f["produce_api_version"], "{file}");
        assert_eq!(doc["header"]["client_id"], f["client_id"], "{file}");
        assert_eq!(doc["body"]["acks"], f["acks"], "{file}");
        assert_eq!(
            doc["body"]["transactional_id"], f["transactional_id"],
            "{file}"
        );
        let t = &doc["body"]["topic_data"][0];
        assert_eq!(t["name"], f["topic"], "{file}");
        assert_eq!(t["partition_data"][0]["index"], f["partition"], "{file}");
        // Every record of the batches, in order: keys and values as sent.
        let mut got = Vec::new();
        collect_records(&t["partition_data"][0]["records"], &mut got);
        let want: Vec<(Value, Value)> = f["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["key"].clone(), r["value"].clone()))
            .collect();
        assert_eq!(got, want, "{file}");
        // The same frame as hex on stdin decodes the same.
        let bytes = std::fs::read(&file).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let from_hex = klamm("unused:1", &["decode"], hex.as_bytes())
            .ok("decode hex")
            .json();
        assert_eq!(from_hex, doc, "{file}");
    }

    // A response, captured from the broker: ApiVersions v3.
    let Some(broker) = env::broker() else { return };
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    body.extend_from_slice(&3i16.to_be_bytes());
    body.extend_from_slice(&77i32.to_be_bytes());
    body.extend_from_slice(&8i16.to_be_bytes());
    body.extend_from_slice(b"cli-test");
    body.push(0); // header tags
    body.extend(compact("klamm-cli-test"));
    body.extend(compact("1.0"));
    body.push(0); // body tags
    let mut request = (body.len() as i32).to_be_bytes().to_vec();
    request.extend_from_slice(&body);
    let mut sock = std::net::TcpStream::connect(&broker).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock.write_all(&request).unwrap();
    let mut size = [0u8; 4];
    sock.read_exact(&mut size).unwrap();
    let mut response = vec![0u8; i32::from_be_bytes(size) as usize];
    sock.read_exact(&mut response).unwrap();
    let files = std::env::temp_dir().join(format!("klamm-cli-decode-{}", std::process::id()));
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("request.bin"), &request).unwrap();
    std::fs::write(files.join("response.bin"), &response).unwrap();

    let req = klamm(
        "unused:1",
        &["decode", &files.join("request.bin").display().to_string()],
        b"",
    )
    .ok("decode request")
    .json();
    assert_eq!(
        (req["api"].as_str(), req["version"].as_i64()),
        (Some("ApiVersions"), Some(3))
    );
    assert_eq!(req["body"]["client_software_name"], "klamm-cli-test");
    assert_eq!(req["header"]["correlation_id"], 77);
    let resp = klamm(
        "unused:1",
        &[
            "decode",
            "--response",
            "--api",
            "ApiVersions",
            "--version",
            "3",
            &files.join("response.bin").display().to_string(),
        ],
        b"",
    )
    .ok("decode response")
    .json();
    assert_eq!(resp["header"]["correlation_id"], 77);
    assert_eq!(resp["body"]["error_code"], 0);
    let keys = resp["body"]["api_keys"].as_array().expect("api_keys");
    let produce = keys
        .iter()
        .find(|k| k["api_key"] == 0)
        .expect("Produce listed");
    for field in ["api_key", "min_version", "max_version"] {
        assert!(produce.get(field).is_some(), "{field} in {produce}");
    }
    for field in [
        "throttle_time_ms",
        "supported_features",
        "finalized_features_epoch",
        "finalized_features",
    ] {
        assert!(resp["body"].get(field).is_some(), "{field} in the body");
    }
    let finalized: Vec<&str> = resp["body"]["finalized_features"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(finalized.contains(&"metadata.version"), "{finalized:?}");
    // The wrong version for the bytes is a decode error, exit 1.
    let wrong = klamm(
        "unused:1",
        &[
            "decode",
            "--response",
            "--api",
            "Fetch",
            "--version",
            "12",
            &files.join("response.bin").display().to_string(),
        ],
        b"",
    );
    assert_eq!(wrong.status, 1, "{}", wrong.stderr);
    let _ = std::fs::remove_dir_all(files);
}

/// The (key, value) of every record under `v`, in order.
fn collect_records(v: &Value, out: &mut Vec<(Value, Value)>) {
    match v {
        Value::Object(m) => {
            if m.contains_key("key") && m.contains_key("value") && !m.contains_key("records") {
                out.push((m["key"].clone(), m["value"].clone()));
                return;
            }
            for (_, child) in m {
                collect_records(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_records(i, out)),
        _ => {}
    }
}
