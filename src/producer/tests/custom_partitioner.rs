//! A partitioner of the application's own
//! (`AsyncProducer::with_partitioner`) against klamm-fake's cluster: it
//! places every record sent without a partition, a record that names its
//! partition keeps it, and a partition outside the topic (or none) fails
//! that send alone.

use std::sync::Arc;

use bytes::Bytes;

use super::cluster::{cluster, config, values};
use crate::producer::{AsyncProducer, PartitionView, Partitioner, ProducerRecord, from_config};
use crate::test_support::bounded;
use crate::{Client, ErrorKind, config as settings};

/// A record's partition is its key's length; a record without a key has
/// none.
#[derive(Debug)]
struct KeyLength;

impl Partitioner for KeyLength {
    fn partition(&self, _topic: &str, key: Option<&[u8]>, _view: &PartitionView) -> Option<i32> {
        key.map(|k| k.len() as i32)
    }
}

fn keyed(key: &str, value: &str) -> ProducerRecord {
    ProducerRecord::new("t", value.to_owned()).with_key(key.to_owned())
}

#[tokio::test(start_paused = true)]
async fn the_producer_places_records_with_the_partitioner_it_is_given() {
    bounded(async {
        let fake = cluster(1, 3).await;
        let client = Client::connect(config(&fake)).await.expect("connect");
        let p = AsyncProducer::with_partitioner(client, Arc::new(KeyLength))
            .await
            .expect("producer");
        let mut sent = Vec::new();
        for (key, value) in [("", "k0"), ("a", "k1"), ("bb", "k2")] {
            sent.push(p.send(keyed(key, value)).await.expect("queued"));
        }
        sent.push(
            p.send(keyed("bb", "named").with_partition(0))
                .await
                .expect("queued"),
        );
        let outside = p.send(keyed("ccc", "k3")).await.expect_err("partition 3");
        assert_eq!(outside.kind(), ErrorKind::Config, "{outside}");
        assert_eq!(outside.config_key(), Some("partitioner"));
        assert!(
            outside
                .to_string()
                .contains("partition 3, which is not one of its 3"),
            "{outside}"
        );
        let unkeyed = p
            .send(ProducerRecord::new("t", "none"))
            .await
            .expect_err("no partition");
        assert!(
            unkeyed.to_string().contains("placed no partition"),
            "{unkeyed}"
        );
        p.flush().await.expect("flush");
        let partitions: Vec<i32> = {
            let mut v = Vec::new();
            for f in sent {
                v.push(f.await.expect("delivered").partition);
            }
            v
        };
        assert_eq!(partitions, [0, 1, 2, 0]);
        let held = |p: i32| values(&fake, p);
        assert_eq!(held(0), [Bytes::from("k0"), Bytes::from("named")]);
        assert_eq!(held(1), [Bytes::from("k1")]);
        assert_eq!(held(2), [Bytes::from("k2")]);
        p.close().await.expect("close");
    })
    .await;

    // Control: the default partitioner (murmur2) places these keys
    // otherwise, so the placement above is the given partitioner's.
    let view = PartitionView::new(3, &[0, 1, 2]);
    let default = from_config(&settings::Partitioner::Murmur2);
    let placed: Vec<_> = ["", "a", "bb"]
        .iter()
        .map(|k| default.partition("t", Some(k.as_bytes()), &view))
        .collect();
    assert_ne!(placed, [Some(0), Some(1), Some(2)]);
}
