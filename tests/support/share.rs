//! Share-group set-up for the share tests.

use klamm::Client;

/// Sets share-group configs of `group`: start at the earliest offset,
/// heartbeat every 500 ms, and the given record lock.
pub async fn configure_group(client: &Client, group: &str, lock_ms: u32) {
    let lock = lock_ms.to_string();
    super::group::set_group_configs(
        client,
        group,
        &[
            ("share.auto.offset.reset", "earliest"),
            ("share.heartbeat.interval.ms", "500"),
            ("share.record.lock.duration.ms", &lock),
        ],
    )
    .await;
}
