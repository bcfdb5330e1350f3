//! What every test file of klamm-fake shares: the time bound and a
//! client's settings for a cluster.

#![allow(dead_code)] // each test file uses its own share of these

use std::time::Duration;

use klamm::Config;
use klamm_fake::FakeCluster;

/// Every test is bounded: the fake answers at once, so 60 s means a hang.
pub async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the test hung")
}

/// A client's settings for `cluster`: every broker as a seed, 1 ms linger
/// and 10 ms retry backoff.
pub fn config(cluster: &FakeCluster) -> Config {
    let mut config = Config::default();
    config.net.bootstrap_servers = cluster.addresses();
    config.producer.linger = Duration::from_millis(1);
    config.producer.retry_backoff = Duration::from_millis(10);
    config
}
