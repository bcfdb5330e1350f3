//! The librdkafka mock cluster (`scripts/mock-cluster`): its bootstrap list
//! and a client for its control port.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A running mock cluster: brokers 1..=N on loopback, and the driver's
/// control port that takes one-line commands (`topic`, `leader`, `errors`,
/// `down`, `up`, `coordinator`, ...; see `scripts/mock_cluster_driver.py`).
#[derive(Debug, Clone)]
pub struct MockCluster {
    /// The bootstrap list, `127.0.0.1:P1,127.0.0.1:P2,...` (broker ids 1..=N
    /// in this order).
    pub bootstrap: String,
    /// `host:port` of the driver's control port.
    pub ctrl: String,
}

/// The mock cluster from `KLAMM_TEST_MOCK` and `KLAMM_TEST_MOCK_CTRL`.
pub fn mock() -> Option<MockCluster> {
    let bootstrap = super::require("KLAMM_TEST_MOCK", "librdkafka mock cluster")?;
    let ctrl = super::require("KLAMM_TEST_MOCK_CTRL", "mock cluster's control port")?;
    Some(MockCluster { bootstrap, ctrl })
}

impl MockCluster {
    /// The bootstrap addresses, in broker id order.
    pub fn addrs(&self) -> Vec<String> {
        self.bootstrap
            .split(',')
            .map(|s| s.trim().to_string())
            .collect()
    }

    /// Sends one control command; `Ok(rest of the "ok" line)` or
    /// `Err(the "err" line)`.
    pub fn try_command(&self, cmd: &str) -> Result<String, String> {
        let io = |e: std::io::Error| format!("mock control {}: {e}", self.ctrl);
        let mut s = TcpStream::connect(&self.ctrl).map_err(io)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(io)?;
        s.write_all(format!("{cmd}\n").as_bytes()).map_err(io)?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).map_err(io)?;
        let line = line.trim();
        match line.strip_prefix("ok") {
            Some(rest) => Ok(rest.trim().to_string()),
            None => Err(format!("{cmd}: {line}")),
        }
    }

    /// Sends one control command and panics unless it succeeded.
    pub fn command(&self, cmd: &str) -> String {
        self.try_command(cmd)
            .unwrap_or_else(|e| panic!("mock command failed: {e}"))
    }

    /// Creates a topic (the mock has no CreateTopics).
    pub fn create_topic(&self, name: &str, partitions: i32, replication: i32) {
        self.command(&format!("topic {name} {partitions} {replication}"));
    }

    /// Moves a partition's leadership to `broker`.
    pub fn set_leader(&self, topic: &str, partition: i32, broker: i32) {
        self.command(&format!("leader {topic} {partition} {broker}"));
    }

    /// The next requests of `api_key` (to any broker) fail with `codes`, in
    /// order.
    pub fn push_errors(&self, api_key: i16, codes: &[i16]) {
        let codes: Vec<String> = codes.iter().map(i16::to_string).collect();
        self.command(&format!("errors {api_key} {}", codes.join(" ")));
    }

    /// Drops queued errors for `api_key`.
    pub fn clear_errors(&self, api_key: i16) {
        self.command(&format!("clear {api_key}"));
    }

    /// Takes a broker down (connections closed, new ones never answered).
    pub fn down(&self, broker: i32) {
        self.command(&format!("down {broker}"));
    }

    /// Brings a broker back up.
    pub fn up(&self, broker: i32) {
        self.command(&format!("up {broker}"));
    }

    /// Pins the coordinator of a group.
    pub fn set_group_coordinator(&self, group: &str, broker: i32) {
        self.command(&format!("coordinator group {group} {broker}"));
    }
}
