//! Share-group set-up for the share tests.

use klamm::Client;
use klamm::client::TrafficClass;
use klamm::protocol::messages::IncrementalAlterConfigsRequest;
use klamm::protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};

/// Sets share-group configs of `group` (IncrementalAlterConfigs on the
/// GROUP resource): start at the earliest offset, heartbeat every 500 ms,
/// and the given record lock.
pub async fn configure_group(client: &Client, group: &str, lock_ms: u32) {
    let set = |name: &str, value: &str| AlterableConfig {
        name: name.to_string(),
        config_operation: 0, // SET
        value: Some(value.to_string()),
        ..Default::default()
    };
    let controller = client.controller().await.expect("controller");
    let conn = client
        .connection(&controller, TrafficClass::Other)
        .await
        .expect("connection");
    let resp = conn
        .send(&IncrementalAlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: 32, // GROUP
                resource_name: group.to_string(),
                configs: vec![
                    set("share.auto.offset.reset", "earliest"),
                    set("share.heartbeat.interval.ms", "500"),
                    set("share.record.lock.duration.ms", &lock_ms.to_string()),
                ],
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("IncrementalAlterConfigs");
    for r in &resp.responses {
        assert_eq!(
            r.error_code, 0,
            "group config of {group}: {:?}",
            r.error_message
        );
    }
}
