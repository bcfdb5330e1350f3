//! Transactions on the [`AsyncProducer`]: the calls a transactional
//! producer makes, each a thin step around its [`TransactionManager`].
//!
//! The sender adds a partition to the transaction (AddPartitionsToTxn)
//! before the partition's first batch goes out and reports batches that
//! fail for good to the manager; the rest happens here: the producer id
//! comes from the manager, a commit flushes first, an abort fails the
//! records still buffered and restarts sequences when the epoch moved.

use super::async_producer::AsyncProducer;
use super::transaction::{ConsumerGroupMetadata, TransactionManager, TransactionState};
use crate::error::{Error, Result};

impl AsyncProducer {
    fn transaction_manager(&self, op: &str) -> Result<&TransactionManager> {
        self.inner.txn.as_ref().ok_or_else(|| {
            Error::config(
                "transactional.id",
                format!("{op} needs a transactional producer: set transactional.id"),
            )
        })
    }

    /// The transaction state, for a transactional producer.
    pub fn transaction_state(&self) -> Option<TransactionState> {
        self.inner.txn.as_ref().map(TransactionManager::state)
    }

    /// Registers the `transactional.id` with its coordinator
    /// (InitProducerId): fences older producers with the same id, lets the
    /// coordinator finish their open transaction, and gets this producer's
    /// id and epoch. Call once, before the first transaction.
    ///
    /// ```no_run
    /// # async fn example() -> klamm::Result<()> {
    /// use klamm::producer::{AsyncProducer, ProducerRecord};
    /// use klamm::{Client, Config};
    ///
    /// let mut config = Config::default();
    /// config.net.bootstrap_servers = vec!["localhost:9092".into()];
    /// config.producer.transactional_id = Some("orders-writer-1".into());
    /// let producer = AsyncProducer::new(Client::connect(config).await?).await?;
    /// producer.init_transactions().await?;
    ///
    /// producer.begin_transaction()?;
    /// let a = producer.send(ProducerRecord::new("orders", "a")).await?;
    /// let b = producer.send(ProducerRecord::new("orders", "b")).await?;
    /// producer.commit_transaction().await?;
    /// // Both are written, and visible to read_committed consumers.
    /// a.await?;
    /// b.await?;
    /// producer.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn init_transactions(&self) -> Result<()> {
        let txn = self.transaction_manager("init_transactions")?;
        let pid = txn.init_transactions().await?;
        self.adopt(pid.id, pid.epoch);
        Ok(())
    }

    /// Opens a transaction: records sent from now on belong to it.
    pub fn begin_transaction(&self) -> Result<()> {
        self.transaction_manager("begin_transaction")?
            .begin_transaction()
    }

    /// Adds a consumer's offsets to the transaction (AddOffsetsToTxn, then
    /// TxnOffsetCommit to the group coordinator): they are committed if and
    /// only if the transaction commits (consume-transform-produce).
    /// `offsets` are (topic, partition, next offset to read, metadata).
    pub async fn send_offsets_to_transaction<T: AsRef<str>>(
        &self,
        offsets: &[(T, i32, i64, Option<&str>)],
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        self.transaction_manager("send_offsets_to_transaction")?
            .send_offsets_to_transaction(offsets, group)
            .await
    }

    /// Sends every record of the transaction, then commits it (EndTxn).
    /// If a record of the transaction failed, the commit fails with an
    /// error that says to call [`abort_transaction`](Self::abort_transaction).
    pub async fn commit_transaction(&self) -> Result<()> {
        let txn = self.transaction_manager("commit_transaction")?;
        self.flush().await?;
        let before = txn.producer_id_and_epoch();
        txn.commit_transaction().await?;
        // Transactions V2: every EndTxn bumps the epoch.
        if let Some(pid) = txn.producer_id_and_epoch()
            && Some(pid) != before
        {
            self.adopt(pid.id, pid.epoch);
        }
        Ok(())
    }

    /// Aborts the transaction (EndTxn): records still buffered are not
    /// sent and their futures fail with [`Error::Aborted`]; those already
    /// sent are waited for, and read_committed consumers never see them.
    /// The way out of a failed transaction. If the abort bumped the epoch
    /// (after a failed batch, KIP-360; after every abort in transactions
    /// V2), sequence numbers restart at 0.
    pub async fn abort_transaction(&self) -> Result<()> {
        let txn = self.transaction_manager("abort_transaction")?;
        let acc = &self.inner.acc;
        let reason = format!(
            "the transaction of transactional.id '{}' was aborted before this record was sent",
            txn.transactional_id()
        );
        for batch in acc.take_queued() {
            let error = Error::Aborted {
                reason: reason.clone(),
            };
            if batch.attempts > 0 || batch.stamp.is_some() {
                // It had sequence numbers: the next transaction must start
                // under a new epoch.
                txn.fail_transaction(&error);
            }
            acc.complete(batch, Err(error));
        }
        for batch in acc.incomplete() {
            batch.settled().await;
        }
        let before = txn.producer_id_and_epoch();
        txn.abort_transaction().await?;
        if let Some(pid) = txn.producer_id_and_epoch()
            && Some(pid) != before
        {
            self.adopt(pid.id, pid.epoch);
        }
        Ok(())
    }

    /// Uses `producer_id`/`epoch` from now on, sequences from 0.
    fn adopt(&self, producer_id: i64, epoch: i16) {
        if let Some(identity) = &self.inner.identity {
            identity.set(producer_id, epoch);
        }
        self.inner.acc.reset_sequences();
    }
}
