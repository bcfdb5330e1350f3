//! TransactionManager tests against a scripted in-process cluster of two
//! fake brokers that play transaction and group coordinator.

use std::time::Duration;

use super::*;
use crate::error::ErrorKind;
use crate::protocol::messages::*;
use crate::test_support::bounded;

mod fake;

use fake::{Cluster, PRODUCER_ID};

async fn ready(cluster: &Cluster, id: &str) -> TransactionManager {
    let txn = cluster.manager(cluster.client_config(id)).await;
    txn.init_transactions().await.expect("init");
    txn
}

#[tokio::test(start_paused = true)]
async fn a_transaction_walks_the_state_machine() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = cluster.manager(cluster.client_config("tx-a")).await;
        assert_eq!(txn.state(), TransactionState::Uninitialized);
        assert_eq!(txn.producer_id_and_epoch(), None);
        let pid = txn.init_transactions().await.unwrap();
        assert_eq!(
            pid,
            ProducerIdAndEpoch {
                id: PRODUCER_ID,
                epoch: 1
            }
        );
        assert_eq!(txn.producer_id_and_epoch(), Some(pid));
        assert_eq!(txn.state(), TransactionState::Ready);
        assert_eq!(cluster.script().timeouts, [30_000]);
        assert_eq!(cluster.requests(ApiKey::InitProducerId), [(1, 5)]);

        txn.begin_transaction().unwrap();
        assert_eq!(txn.state(), TransactionState::InTransaction);
        txn.add_partitions(&[("t", 0), ("u", 1), ("t", 0), ("t", 2)])
            .await
            .unwrap();
        assert!(txn.is_partition_added("t", 2));
        assert!(!txn.is_partition_added("t", 1));
        // Already added: no request.
        txn.add_partitions(&[("u", 1), ("t", 0)]).await.unwrap();
        txn.add_partitions(&[("t", 1), ("t", 0)]).await.unwrap();
        let want: Vec<Vec<(String, i32)>> = vec![
            vec![("t".into(), 0), ("t".into(), 2), ("u".into(), 1)],
            vec![("t".into(), 1)],
        ];
        assert_eq!(cluster.script().added, want);
        // Clients use AddPartitionsToTxn v3 even where v4+ is offered.
        assert_eq!(
            cluster.requests(ApiKey::AddPartitionsToTxn),
            [(1, 3), (1, 3)]
        );

        txn.commit_transaction().await.unwrap();
        assert_eq!(txn.state(), TransactionState::Ready);
        assert!(!txn.is_partition_added("t", 0));
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        txn.abort_transaction().await.unwrap();
        assert_eq!(txn.state(), TransactionState::Ready);
        assert_eq!(cluster.script().ended, [true, false]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn add_partitions_uses_the_v4_shape_where_only_v4_is_offered() {
    bounded(async {
        let cluster = Cluster::start().await;
        cluster.script().add_partitions_versions = Some((4, 5));
        let txn = ready(&cluster, "tx-v4").await;
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 3), ("t", 4)]).await.unwrap();
        assert_eq!(cluster.requests(ApiKey::AddPartitionsToTxn), [(1, 5)]);
        assert_eq!(
            cluster.script().added,
            [vec![("t".to_string(), 3), ("t".to_string(), 4)]]
        );
        assert!(txn.is_partition_added("t", 4));
        txn.commit_transaction().await.unwrap();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_empty_transaction_ends_without_a_request() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-empty").await;
        txn.begin_transaction().unwrap();
        txn.commit_transaction().await.unwrap();
        txn.begin_transaction().unwrap();
        txn.abort_transaction().await.unwrap();
        assert_eq!(txn.state(), TransactionState::Ready);
        assert!(cluster.requests(ApiKey::EndTxn).is_empty());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn not_coordinator_rediscovers_the_moved_coordinator() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-move").await;
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        let lookups_before = cluster.script().lookups.len();
        // The coordinator moves to broker 2: broker 1 answers NOT_COORDINATOR.
        cluster.script().txn_coordinator = 2;
        txn.commit_transaction().await.unwrap();
        assert_eq!(cluster.requests(ApiKey::EndTxn), [(1, 4), (2, 4)]);
        let lookups = cluster.script().lookups.clone();
        assert_eq!(lookups.len(), lookups_before + 1);
        assert_eq!(lookups.last().unwrap(), &(1, "tx-move".to_string()));
        assert_eq!(cluster.script().ended, [true]);

        // COORDINATOR_NOT_AVAILABLE also looks it up again.
        txn.begin_transaction().unwrap();
        cluster.push_errors(
            ApiKey::AddPartitionsToTxn,
            &[ErrorCode::COORDINATOR_NOT_AVAILABLE],
        );
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        assert_eq!(cluster.script().lookups.len(), lookups_before + 2);
        assert_eq!(txn.state(), TransactionState::InTransaction);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn concurrent_transactions_and_loading_are_retried() {
    bounded(async {
        let cluster = Cluster::start().await;
        cluster.push_errors(
            ApiKey::InitProducerId,
            &[
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
                ErrorCode::CONCURRENT_TRANSACTIONS,
            ],
        );
        let txn = ready(&cluster, "tx-busy").await;
        assert_eq!(cluster.requests(ApiKey::InitProducerId).len(), 3);
        txn.begin_transaction().unwrap();
        cluster.push_errors(
            ApiKey::AddPartitionsToTxn,
            &[
                ErrorCode::CONCURRENT_TRANSACTIONS,
                ErrorCode::CONCURRENT_TRANSACTIONS,
            ],
        );
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        assert_eq!(cluster.requests(ApiKey::AddPartitionsToTxn).len(), 3);
        cluster.push_errors(ApiKey::EndTxn, &[ErrorCode::CONCURRENT_TRANSACTIONS]);
        txn.commit_transaction().await.unwrap();
        assert_eq!(cluster.requests(ApiKey::EndTxn).len(), 2);
        assert_eq!(cluster.script().ended, [true]);
        // Retries stay on the coordinator: no new lookups.
        assert_eq!(cluster.script().lookups.len(), 1);
    })
    .await;
}

fn assert_fenced(err: &Error, code: ErrorCode) {
    assert_eq!(err.kind(), ErrorKind::Broker, "{err}");
    assert_eq!(err.kafka_code(), Some(code), "{err}");
    assert!(!err.is_retriable());
    let text = err.to_string();
    assert!(text.contains("fenced by another instance"), "{text}");
    assert!(text.contains("must be closed"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_second_instance_fences_the_first() {
    bounded(async {
        let cluster = Cluster::start().await;
        let first = ready(&cluster, "tx-fence").await;
        first.begin_transaction().unwrap();
        first.add_partitions(&[("t", 0)]).await.unwrap();
        let second = ready(&cluster, "tx-fence").await;
        assert_eq!(second.producer_id_and_epoch().unwrap().epoch, 2);

        let err = first.add_partitions(&[("t", 1)]).await.unwrap_err();
        assert_fenced(&err, ErrorCode::PRODUCER_FENCED);
        assert_eq!(first.state(), TransactionState::FatalError);
        // Every later call returns the same error.
        let again = first.commit_transaction().await.unwrap_err();
        assert_eq!(again.to_string(), err.to_string());
        assert_fenced(
            &first.abort_transaction().await.unwrap_err(),
            ErrorCode::PRODUCER_FENCED,
        );
        assert_fenced(
            &first.begin_transaction().unwrap_err(),
            ErrorCode::PRODUCER_FENCED,
        );
        assert!(cluster.script().ended.is_empty());

        // INVALID_PRODUCER_EPOCH on EndTxn is fencing too.
        second.begin_transaction().unwrap();
        second.add_partitions(&[("t", 0)]).await.unwrap();
        cluster.push_errors(ApiKey::EndTxn, &[ErrorCode::INVALID_PRODUCER_EPOCH]);
        let err = second.commit_transaction().await.unwrap_err();
        assert_fenced(&err, ErrorCode::INVALID_PRODUCER_EPOCH);
        assert_eq!(second.state(), TransactionState::FatalError);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn authorization_failure_on_init_is_fatal() {
    bounded(async {
        let cluster = Cluster::start().await;
        cluster.push_errors(
            ApiKey::InitProducerId,
            &[ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED],
        );
        let txn = cluster.manager(cluster.client_config("tx-auth")).await;
        let err = txn.init_transactions().await.unwrap_err();
        assert_eq!(
            err.kafka_code(),
            Some(ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        );
        assert!(err.to_string().contains("not authorized"), "{err}");
        assert_eq!(txn.state(), TransactionState::FatalError);
        let again = txn.init_transactions().await.unwrap_err();
        assert_eq!(again.to_string(), err.to_string());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn invalid_txn_state_makes_the_transaction_abortable() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-abortable").await;
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        cluster.push_errors(ApiKey::EndTxn, &[ErrorCode::INVALID_TXN_STATE]);
        let err = txn.commit_transaction().await.unwrap_err();
        assert_eq!(err.kafka_code(), Some(ErrorCode::INVALID_TXN_STATE));
        assert!(err.to_string().contains("call abort_transaction"), "{err}");
        assert_eq!(txn.state(), TransactionState::AbortableError);
        // Only abort helps.
        let again = txn.commit_transaction().await.unwrap_err();
        assert_eq!(again.to_string(), err.to_string());
        let add = txn.add_partitions(&[("t", 1)]).await.unwrap_err();
        assert_eq!(add.to_string(), err.to_string());
        let begin = txn.begin_transaction().unwrap_err();
        assert_eq!(begin.kind(), ErrorKind::Config);
        assert!(begin.to_string().contains("ABORTABLE_ERROR"), "{begin}");
        txn.abort_transaction().await.unwrap();
        assert_eq!(txn.state(), TransactionState::Ready);
        assert_eq!(cluster.script().ended, [false]);
        txn.begin_transaction().unwrap();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_batch_makes_the_transaction_abortable_or_fatal() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-batch").await;
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        txn.fail_transaction(&Error::Disconnected {
            broker: "b:1".into(),
            reason: "gone".into(),
        });
        assert_eq!(txn.state(), TransactionState::AbortableError);
        let err = txn.commit_transaction().await.unwrap_err();
        assert!(err.to_string().contains("gone"), "{err}");
        assert_eq!(err.kafka_code(), Some(ErrorCode::TRANSACTION_ABORTABLE));
        assert_eq!(txn.check_send().unwrap_err().to_string(), err.to_string());
        assert!(err.to_string().contains("call abort_transaction"), "{err}");
        txn.abort_transaction().await.unwrap();

        txn.begin_transaction().unwrap();
        txn.fail_transaction(&Error::Broker {
            api: ApiKey::Produce,
            code: ErrorCode::PRODUCER_FENCED,
            context: None,
        });
        assert_eq!(txn.state(), TransactionState::FatalError);
        assert_fenced(
            &txn.commit_transaction().await.unwrap_err(),
            ErrorCode::PRODUCER_FENCED,
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn calls_in_the_wrong_state_name_the_state() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = cluster.manager(cluster.client_config("tx-order")).await;
        let state_error = |e: Error, state: &str| {
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
            assert!(e.to_string().contains(state), "{e}");
        };
        state_error(txn.begin_transaction().unwrap_err(), "UNINITIALIZED");
        state_error(txn.check_send().unwrap_err(), "UNINITIALIZED");
        state_error(txn.commit_transaction().await.unwrap_err(), "UNINITIALIZED");
        state_error(
            txn.add_partitions(&[("t", 0)]).await.unwrap_err(),
            "UNINITIALIZED",
        );
        txn.init_transactions().await.unwrap();
        state_error(txn.init_transactions().await.unwrap_err(), "READY");
        state_error(txn.commit_transaction().await.unwrap_err(), "READY");
        state_error(txn.abort_transaction().await.unwrap_err(), "READY");
        state_error(txn.check_send().unwrap_err(), "READY");
        let group = ConsumerGroupMetadata::new("g");
        state_error(
            txn.send_offsets_to_transaction(&[("t", 0, 1, None)], &group)
                .await
                .unwrap_err(),
            "READY",
        );
        txn.begin_transaction().unwrap();
        txn.check_send().unwrap();
        state_error(txn.begin_transaction().unwrap_err(), "IN_TRANSACTION");
        assert!(cluster.requests(ApiKey::EndTxn).is_empty());

        let mut config = cluster.client_config("x");
        config.producer.transactional_id = None;
        let client = Client::connect(config).await.unwrap();
        let err = TransactionManager::new(client).unwrap_err();
        assert_eq!(err.config_key(), Some("transactional.id"));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn offsets_go_to_the_group_coordinator() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-offsets").await;
        txn.begin_transaction().unwrap();
        let group = ConsumerGroupMetadata {
            group_id: "g1".into(),
            generation_id: 7,
            member_id: "m-1".into(),
            group_instance_id: None,
        };
        // The group coordinator (broker 2) first says it is loading.
        cluster.push_errors(
            ApiKey::TxnOffsetCommit,
            &[ErrorCode::COORDINATOR_LOAD_IN_PROGRESS],
        );
        txn.send_offsets_to_transaction(
            &[("in", 0, 10, Some("meta")), ("in", 1, 20, None)],
            &group,
        )
        .await
        .unwrap();
        assert_eq!(cluster.requests(ApiKey::AddOffsetsToTxn), [(1, 4)]);
        assert_eq!(cluster.requests(ApiKey::TxnOffsetCommit), [(2, 4), (2, 4)]);
        let want = vec![
            (
                "g1".to_string(),
                7,
                "m-1".to_string(),
                "in".to_string(),
                0,
                10,
            ),
            (
                "g1".to_string(),
                7,
                "m-1".to_string(),
                "in".to_string(),
                1,
                20,
            ),
        ];
        assert_eq!(cluster.script().offsets, want);
        assert!(cluster.script().lookups.contains(&(0, "g1".to_string())));
        // Offsets alone start the transaction: commit sends EndTxn.
        txn.commit_transaction().await.unwrap();
        assert_eq!(cluster.script().ended, [true]);

        // A rebalance (ILLEGAL_GENERATION) makes the transaction abortable.
        txn.begin_transaction().unwrap();
        cluster.push_errors(ApiKey::TxnOffsetCommit, &[ErrorCode::ILLEGAL_GENERATION]);
        let err = txn
            .send_offsets_to_transaction(&[("in", 0, 11, None)], &group)
            .await
            .unwrap_err();
        assert_eq!(err.kafka_code(), Some(ErrorCode::ILLEGAL_GENERATION));
        assert!(err.to_string().contains("rebalance"), "{err}");
        assert_eq!(txn.state(), TransactionState::AbortableError);
        txn.abort_transaction().await.unwrap();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_commit_that_times_out_can_be_resumed() {
    bounded(async {
        let cluster = Cluster::start().await;
        let mut config = cluster.client_config("tx-slow");
        config.producer.max_block = Duration::from_millis(300);
        let txn = cluster.manager(config).await;
        txn.init_transactions().await.unwrap();
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        cluster.push_errors(ApiKey::EndTxn, &[ErrorCode::CONCURRENT_TRANSACTIONS; 1000]);
        let started = tokio::time::Instant::now();
        let err = txn.commit_transaction().await.unwrap_err();
        // On the paused clock: retried until max.block.ms, to the
        // millisecond.
        assert_eq!(started.elapsed(), Duration::from_millis(300));
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(err.to_string().contains("EndTxn"), "{err}");
        assert!(err.to_string().contains("CONCURRENT_TRANSACTIONS"), "{err}");
        assert_eq!(txn.state(), TransactionState::Committing);
        state_is_kept_for_abort(&txn).await;
        cluster.script().errors.clear();
        txn.commit_transaction().await.unwrap();
        assert_eq!(txn.state(), TransactionState::Ready);
        assert_eq!(cluster.script().ended, [true]);
    })
    .await;
}

/// A retry whose backoff ends at or past max.block.ms is not started: it
/// would put a request on the wire and give up on it at once, and that
/// request could still land after the caller moved on (a commit resumed
/// later would then be the second). The backoff (0.1 ms) ends within the
/// 0.5 ms, but the clock's timers round it up to 1 ms.
#[tokio::test(start_paused = true)]
async fn no_attempt_starts_after_max_block() {
    bounded(async {
        let cluster = Cluster::start().await;
        let mut config = cluster.client_config("tx-deadline");
        config.producer.max_block = Duration::from_micros(500);
        config.producer.retry_backoff = Duration::from_micros(100);
        let txn = cluster.manager(config).await;
        txn.init_transactions().await.unwrap();
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        cluster.push_errors(ApiKey::EndTxn, &[ErrorCode::CONCURRENT_TRANSACTIONS; 1000]);
        let err = txn.commit_transaction().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        // Anything still on its way has arrived 10 ms later.
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            cluster.requests(ApiKey::EndTxn).len(),
            1,
            "EndTxn requests sent"
        );
    })
    .await;
}

/// A commit under way cannot turn into an abort.
async fn state_is_kept_for_abort(txn: &TransactionManager) {
    let err = txn.abort_transaction().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("COMMITTING_TRANSACTION"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn the_abort_after_a_failed_batch_bumps_the_epoch() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-bump").await;
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        txn.fail_transaction(&Error::Broker {
            api: ApiKey::Produce,
            code: ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
            context: None,
        });
        assert_eq!(txn.state(), TransactionState::AbortableError);
        txn.abort_transaction().await.unwrap();
        assert_eq!(cluster.script().ended, [false]);
        // EndTxn, then InitProducerId with the current id and epoch.
        assert_eq!(cluster.script().inits, [(-1, -1), (PRODUCER_ID, 1)]);
        assert_eq!(
            txn.producer_id_and_epoch(),
            Some(ProducerIdAndEpoch {
                id: PRODUCER_ID,
                epoch: 2
            })
        );
        assert_eq!(txn.state(), TransactionState::Ready);
        // The next transaction uses the new epoch (the fake fences epoch 1).
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        txn.commit_transaction().await.unwrap();

        // UNKNOWN_PRODUCER_ID from the coordinator also bumps after abort,
        // even when nothing reached the coordinator.
        txn.begin_transaction().unwrap();
        cluster.push_errors(
            ApiKey::AddPartitionsToTxn,
            &[ErrorCode::UNKNOWN_PRODUCER_ID],
        );
        let err = txn.add_partitions(&[("t", 1)]).await.unwrap_err();
        assert_eq!(err.kafka_code(), Some(ErrorCode::UNKNOWN_PRODUCER_ID));
        txn.abort_transaction().await.unwrap();
        assert_eq!(cluster.script().inits.last(), Some(&(PRODUCER_ID, 2)));
        assert_eq!(txn.producer_id_and_epoch().unwrap().epoch, 3);
        // A plain abort does not bump.
        txn.begin_transaction().unwrap();
        txn.abort_transaction().await.unwrap();
        assert_eq!(cluster.script().inits.len(), 3);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn only_failed_offsets_are_sent_again() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-offsets-retry").await;
        txn.begin_transaction().unwrap();
        cluster.script().offset_errors.insert(
            ("in".into(), 1),
            [ErrorCode::UNKNOWN_TOPIC_OR_PARTITION].into(),
        );
        let group = ConsumerGroupMetadata::new("g2");
        txn.send_offsets_to_transaction(&[("in", 0, 5, None), ("in", 1, 6, None)], &group)
            .await
            .unwrap();
        let want: Vec<Vec<(String, i32)>> = vec![
            vec![("in".into(), 0), ("in".into(), 1)],
            vec![("in".into(), 1)],
        ];
        assert_eq!(cluster.script().offset_requests, want);
        let committed: Vec<(i32, i64)> = cluster
            .script()
            .offsets
            .iter()
            .map(|o| (o.4, o.5))
            .collect();
        assert_eq!(committed, [(0, 5), (1, 6)]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_init_that_timed_out_can_be_repeated() {
    bounded(async {
        let cluster = Cluster::start().await;
        let mut config = cluster.client_config("tx-slow-init");
        config.producer.max_block = Duration::from_millis(200);
        let txn = cluster.manager(config).await;
        cluster.push_errors(
            ApiKey::InitProducerId,
            &[ErrorCode::COORDINATOR_LOAD_IN_PROGRESS; 1000],
        );
        let started = tokio::time::Instant::now();
        let err = txn.init_transactions().await.unwrap_err();
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(200),
            "max.block.ms"
        );
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(
            err.to_string().contains("COORDINATOR_LOAD_IN_PROGRESS"),
            "{err}"
        );
        assert_eq!(txn.state(), TransactionState::Initializing);
        cluster.script().errors.clear();
        let pid = txn.init_transactions().await.unwrap();
        assert_eq!(pid.id, PRODUCER_ID);
        assert_eq!(txn.state(), TransactionState::Ready);
    })
    .await;
}
