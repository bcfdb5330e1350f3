//! The Java admin client (kafka-clients 4.4.0, through the Java peer's
//! `admin` mode) as the independent witness of klamm's admin tests: it
//! reads what klamm's `Admin` changed, and changes what klamm then reads.

use std::time::Duration;

use serde_json::Value;

use super::interop_peers::PeerProgram;

/// The Java admin on one listener.
pub struct JavaAdmin {
    peer: PeerProgram,
    bootstrap: String,
    config: String,
}

impl JavaAdmin {
    /// On `bootstrap` (PLAINTEXT); `None` when the Java peer is missing
    /// and the run opted out.
    pub fn new(bootstrap: &str) -> Option<JavaAdmin> {
        Some(JavaAdmin {
            peer: PeerProgram::java()?,
            bootstrap: bootstrap.to_string(),
            config: String::new(),
        })
    }

    /// The same admin with client properties, one `k=v` per line (SASL
    /// settings).
    pub fn with_config(mut self, config: &str) -> JavaAdmin {
        self.config = config.to_string();
        self
    }

    /// Runs the operations (one per entry) in one JVM: each operation's
    /// line, `result` or `error`, in order.
    pub async fn run(&self, ops: &[String]) -> Vec<Value> {
        let script = ops.join("\n");
        let mut args = vec!["admin", "--bootstrap", &self.bootstrap, "--script", &script];
        if !self.config.is_empty() {
            args.extend(["--config", &self.config]);
        }
        let run = self.peer.run(&args, Duration::from_secs(60)).await;
        run.assert_ok();
        let lines: Vec<Value> = run.of_type("admin").cloned().collect();
        assert_eq!(
            lines.len(),
            ops.len(),
            "one line per operation\n{}",
            run.describe()
        );
        lines
    }

    /// Runs one operation and returns its result; fails the test if Java
    /// reported an error.
    pub async fn result(&self, op: &str) -> Value {
        let line = self.run(&[op.to_string()]).await.remove(0);
        assert!(
            line.get("error").is_none(),
            "Java admin `{op}` failed: {line}"
        );
        line["result"].clone()
    }

    /// Runs one operation that must fail, and returns Kafka's name of the
    /// error (`TOPIC_ALREADY_EXISTS`, …).
    pub async fn error(&self, op: &str) -> String {
        let line = self.run(&[op.to_string()]).await.remove(0);
        line["error"]
            .as_str()
            .unwrap_or_else(|| panic!("Java admin `{op}` should fail: {line}"))
            .to_string()
    }
}

/// The single node's PLAINTEXT address and the Java admin on it; `None`
/// when either is missing and the run opted out.
pub fn single_node() -> Option<(String, JavaAdmin)> {
    let addr = super::broker()?;
    let java = JavaAdmin::new(&addr)?;
    Some((addr, java))
}

/// klamm's `Admin` on a plain client of `addr`.
pub async fn klamm_admin(addr: &str) -> klamm::admin::Admin {
    klamm::admin::Admin::new(
        klamm::Client::connect(super::read::config(addr))
            .await
            .expect("client"),
    )
}
