//! The three-node Apache Kafka cluster `scripts/kafka start --cluster`
//! runs, and its nodes' processes: killed, restarted, paused and resumed
//! through the same script, by pid.

use std::path::PathBuf;
use std::process::Command;

/// The running three-node cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// `127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3` (nodes 1, 2, 3 in order).
    pub bootstrap: String,
    /// The cluster's run directory (`KLAMM_TEST_CLUSTER_DIR`).
    pub dir: PathBuf,
}

/// The cluster from `KLAMM_TEST_CLUSTER` and `KLAMM_TEST_CLUSTER_DIR`.
pub fn cluster() -> Option<Cluster> {
    let bootstrap = super::require("KLAMM_TEST_CLUSTER", "three-node Apache Kafka cluster")?;
    let dir = super::require("KLAMM_TEST_CLUSTER_DIR", "three-node cluster's directory")?;
    Some(Cluster {
        bootstrap,
        dir: dir.into(),
    })
}

impl Cluster {
    /// The bootstrap addresses, node 1 first.
    pub fn addrs(&self) -> Vec<String> {
        self.bootstrap
            .split(',')
            .map(|s| s.trim().to_string())
            .collect()
    }

    /// Runs `scripts/kafka node N ACTION --cluster`.
    fn run(&self, node: i32, action: &str) -> std::process::Output {
        let run_dir = self.dir.parent().map(PathBuf::from).unwrap_or_default();
        Command::new(super::peers::script("kafka"))
            .args(["node", &node.to_string(), action, "--cluster"])
            .env("KLAMM_RUN_DIR", run_dir)
            .output()
            .expect("run scripts/kafka")
    }

    /// Runs `scripts/kafka node N ACTION --cluster` and returns its stdout;
    /// fails the test when the script fails.
    pub fn node(&self, node: i32, action: &str) -> String {
        let out = self.run(node, action);
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success(),
            "scripts/kafka node {node} {action} failed"
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// SIGKILL: the node dies at once, mid-request, without a controlled
    /// shutdown.
    pub fn kill(&self, node: i32) {
        self.node(node, "kill");
    }

    /// Starts a killed node again and waits until it serves.
    pub fn restart(&self, node: i32) {
        self.node(node, "start");
    }

    /// SIGSTOP: the node hangs (its sockets stay open, nothing answers).
    pub fn pause(&self, node: i32) {
        self.node(node, "pause");
    }

    /// SIGCONT after [`Cluster::pause`].
    pub fn resume(&self, node: i32) {
        self.node(node, "resume");
    }

    /// Whether the node's process runs.
    pub fn is_running(&self, node: i32) -> bool {
        self.run(node, "pid").status.success()
    }
}

/// Brings every node of the cluster back when a fault test ends, passed or
/// failed, so the next test finds three nodes serving.
pub struct Heal<'a>(pub &'a Cluster);

impl Drop for Heal<'_> {
    fn drop(&mut self) {
        for n in 1..=3 {
            if self.0.is_running(n) {
                self.0.run(n, "resume");
            } else {
                self.0.run(n, "start");
            }
        }
    }
}
