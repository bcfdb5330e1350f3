//! Transactions (KIP-98): the [`TransactionManager`] that keeps one
//! `transactional.id`'s state and talks to its transaction coordinator.
//!
//! The manager owns the producer id and epoch of a transactional producer
//! and the set of partitions in the open transaction. The producer calls
//! it at these points (see DESIGN.md, "Transactions"):
//!
//! - once, before the first send: [`TransactionManager::init_transactions`]
//!   (its [`ProducerIdAndEpoch`] goes into every batch; sequences start at
//!   0 per partition);
//! - in `send`: [`TransactionManager::check_send`] (records may only be
//!   sent inside a transaction);
//! - before a partition's first batch in a transaction is sent:
//!   [`TransactionManager::add_partitions`] (cheap and idempotent for
//!   partitions already added; [`TransactionManager::is_partition_added`]
//!   is a lock-only fast path). In transactions V2 (KIP-890, Kafka 4.0+
//!   clusters: [`TransactionManager::is_transaction_v2`]) this is local
//!   and the batches must go at Produce v12 or later, which adds the
//!   partition; before, at v11 or lower;
//! - when a transactional batch fails for good:
//!   [`TransactionManager::fail_transaction`]; after the abort that
//!   follows, the epoch may have been bumped: compare
//!   [`TransactionManager::producer_id_and_epoch`] and restart sequences at
//!   0 if it changed;
//! - in `commit_transaction`: flush every buffered record first, then
//!   [`TransactionManager::commit_transaction`]; in transactions V2 every
//!   commit and abort bumps the epoch, so compare
//!   [`TransactionManager::producer_id_and_epoch`] after each and restart
//!   sequences at 0 when it changed.
//!
//! ```no_run
//! use klamm::{Client, Config};
//! use klamm::producer::transaction::{ConsumerGroupMetadata, TransactionManager};
//!
//! # async fn run() -> klamm::Result<()> {
//! let mut config = Config::default();
//! config.net.bootstrap_servers = vec!["localhost:9092".into()];
//! config.producer.idempotence = true;
//! config.producer.transactional_id = Some("orders-1".into());
//! let client = Client::connect(config).await?;
//! let txn = TransactionManager::new(client)?;
//! let pid = txn.init_transactions().await?;
//! println!("producer id {} epoch {}", pid.id, pid.epoch);
//! txn.begin_transaction()?;
//! txn.add_partitions(&[("orders", 0)]).await?;
//! // ... produce batches with pid, is_transactional = true ...
//! let group = ConsumerGroupMetadata::new("order-processor");
//! txn.send_offsets_to_transaction(&[("incoming", 0, 42, None)], &group).await?;
//! txn.commit_transaction().await?;
//! # Ok(())
//! # }
//! ```

mod coordinator;
mod state;

#[cfg(test)]
mod tests;

use crate::determinism::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use state::TransactionState;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::ApiKey;
use coordinator::{Coordinators, Failure};
use state::{StoredError, is_fencing, wrong_state};

/// A producer id and its epoch, as InitProducerId hands them out; every
/// batch of an idempotent or transactional producer carries both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProducerIdAndEpoch {
    /// The producer id.
    pub id: i64,
    /// The epoch; a higher one fences older instances.
    pub epoch: i16,
}

/// A consumer's group membership, for
/// [`TransactionManager::send_offsets_to_transaction`]: the coordinator
/// rejects the offsets if the member is no longer part of this generation
/// (consume-transform-produce fencing, KIP-447).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    /// The group id.
    pub group_id: String,
    /// The generation the member joined (-1 if unknown).
    pub generation_id: i32,
    /// The member id ("" if unknown).
    pub member_id: String,
    /// The static member id (`group.instance.id`), if any.
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// Metadata for `group_id` without a membership (generation -1, no
    /// member id): the coordinator then checks only the producer.
    ///
    /// ```
    /// use klamm::producer::transaction::ConsumerGroupMetadata;
    ///
    /// let g = ConsumerGroupMetadata::new("billing");
    /// assert_eq!((g.generation_id, g.member_id.as_str()), (-1, ""));
    /// ```
    pub fn new(group_id: impl Into<String>) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

/// The transactional state of one `transactional.id`.
struct Core {
    state: TransactionState,
    producer: Option<ProducerIdAndEpoch>,
    /// Partitions the coordinator has added to the open transaction.
    partitions: HashMap<String, HashSet<i32>>,
    /// Whether the coordinator knows of the open transaction (partitions or
    /// offsets were added); if not, ending it needs no request.
    started: bool,
    /// Whether the epoch must be bumped (InitProducerId with the current
    /// id and epoch, KIP-360) once the transaction is aborted: after a
    /// failed batch the partitions' sequence numbers are uncertain.
    bump_epoch: bool,
    /// Whether the open (or last) transaction runs transactions V2
    /// (KIP-890): fixed when it begins, from what the coordinator offered.
    tv2: bool,
    /// The error that put the manager into `AbortableError` or
    /// `FatalError`.
    error: Option<StoredError>,
}

struct Inner {
    coordinators: Coordinators,
    transaction_timeout: Duration,
    core: Mutex<Core>,
    /// Held for the length of each coordinator operation: they run one at
    /// a time, in call order.
    op: tokio::sync::Mutex<()>,
}

/// Runs the transactions of one `transactional.id` (Java's
/// `TransactionManager`): InitProducerId, AddPartitionsToTxn,
/// AddOffsetsToTxn + TxnOffsetCommit and EndTxn, with the Java client's
/// state machine ([`TransactionState`]). Cheap to clone; every clone
/// shares the state. See the [module docs](self) for where a producer
/// calls in.
///
/// Errors say what to do. Fencing by a newer instance with the same id
/// (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH) and authorization failures
/// are fatal: every later call returns the same error and the producer
/// must be closed. Errors that doom only the open transaction
/// (INVALID_TXN_STATE after a timeout, a group rebalance, ...) are
/// abortable: only [`abort_transaction`](Self::abort_transaction) works
/// until it succeeds. Calling an operation in the wrong state is an
/// [`ErrorKind::State`](crate::ErrorKind::State) error that names the
/// state and what to call first. Each operation waits at most
/// `max.block.ms` and then fails with [`Error::Timeout`]; it may be called
/// again (a commit or abort resumes).
///
/// ```no_run
/// use klamm::producer::transaction::{TransactionManager, TransactionState};
///
/// # async fn run(txn: TransactionManager) -> klamm::Result<()> {
/// txn.begin_transaction()?;
/// txn.add_partitions(&[("payments", 3)]).await?;
/// // ... produce, flush ...
/// if let Err(e) = txn.commit_transaction().await {
///     match txn.state() {
///         TransactionState::AbortableError => txn.abort_transaction().await?,
///         // Fenced or another fatal error: close the producer.
///         _ => return Err(e),
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TransactionManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TransactionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionManager")
            .field("transactional_id", &self.transactional_id())
            .field("state", &self.state())
            .field("producer", &self.producer_id_and_epoch())
            .finish()
    }
}

impl TransactionManager {
    /// A manager for `client.config().producer.transactional_id`, with its
    /// `transaction.timeout.ms`, `max.block.ms` and `retry.backoff.ms`.
    /// Fails with a configuration error if no transactional id is set.
    pub fn new(client: Client) -> Result<TransactionManager> {
        let producer = &client.config().producer;
        let id = producer
            .transactional_id
            .clone()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                Error::config(
                    "transactional.id",
                    "must be set to use transactions (TransactionManager::new)",
                )
            })?;
        let transaction_timeout = producer.transaction_timeout;
        let max_block = producer.max_block;
        let retry_backoff = producer.retry_backoff;
        Ok(TransactionManager {
            inner: Arc::new(Inner {
                coordinators: Coordinators {
                    client,
                    transactional_id: id,
                    max_block,
                    retry_backoff,
                    tv2: Default::default(),
                },
                transaction_timeout,
                core: Mutex::new(Core {
                    state: TransactionState::Uninitialized,
                    producer: None,
                    partitions: HashMap::default(),
                    started: false,
                    bump_epoch: false,
                    tv2: false,
                    error: None,
                }),
                op: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The transactional id.
    pub fn transactional_id(&self) -> &str {
        &self.inner.coordinators.transactional_id
    }

    /// The current state.
    pub fn state(&self) -> TransactionState {
        self.core().state
    }

    /// The producer id and epoch, once `init_transactions` succeeded.
    pub fn producer_id_and_epoch(&self) -> Option<ProducerIdAndEpoch> {
        self.core().producer
    }

    /// Whether the open (or, between transactions, the last) transaction
    /// runs transactions V2 (KIP-890): the coordinator's cluster has
    /// finalized `transaction.version` 2 (Kafka 4.0+). Then
    /// [`add_partitions`](Self::add_partitions) only notes the partitions
    /// (the producer's first Produce, v12+, adds each one),
    /// [`send_offsets_to_transaction`](Self::send_offsets_to_transaction)
    /// needs no AddOffsetsToTxn, and every EndTxn bumps the epoch: the
    /// producer must take the new [`producer_id_and_epoch`](Self::producer_id_and_epoch)
    /// and restart its sequences after each commit or abort.
    pub fn is_transaction_v2(&self) -> bool {
        self.core().tv2
    }

    /// Whether `topic`/`partition` is already part of the open transaction.
    pub fn is_partition_added(&self, topic: &str, partition: i32) -> bool {
        self.core()
            .partitions
            .get(topic)
            .is_some_and(|p| p.contains(&partition))
    }

    /// Whether a record may be sent now (the producer's `send` calls this
    /// for a transactional producer): only inside a transaction. Returns
    /// the stored error in `AbortableError` and `FatalError`, a state error
    /// otherwise (e.g. a send before `begin_transaction`).
    pub fn check_send(&self) -> Result<()> {
        let core = self.core();
        self.usable_in_transaction(&core, "send").map(|_| ())
    }

    /// Gets a producer id and epoch for the transactional id from its
    /// coordinator (InitProducerId), fencing any older producer with the
    /// same id and letting the coordinator finish that one's open
    /// transaction. Call once, before anything else; may be called again
    /// after it timed out.
    pub async fn init_transactions(&self) -> Result<ProducerIdAndEpoch> {
        let _op = self.inner.op.lock().await;
        self.transition("init_transactions", TransactionState::Initializing)?;
        let timeout_ms = self.timeout_ms()?;
        let result = self
            .inner
            .coordinators
            .init_producer_id(timeout_ms, None)
            .await;
        match result {
            Ok(pid) => {
                let mut core = self.core();
                core.producer = Some(pid);
                core.state = TransactionState::Ready;
                Ok(pid)
            }
            Err(f) => Err(self.fail(f)),
        }
    }

    /// Opens a transaction. Local only: the coordinator learns of it with
    /// the first [`add_partitions`](Self::add_partitions) or
    /// [`send_offsets_to_transaction`](Self::send_offsets_to_transaction).
    pub fn begin_transaction(&self) -> Result<()> {
        let mut core = self.core();
        if let Some(e) = stored_fatal(&core) {
            return Err(e);
        }
        if core.state != TransactionState::Ready {
            return Err(wrong_state("begin_transaction", core.state));
        }
        core.state = TransactionState::InTransaction;
        core.partitions.clear();
        core.started = false;
        core.tv2 = self.inner.coordinators.tv2.load(Ordering::Relaxed);
        Ok(())
    }

    /// Adds partitions to the open transaction (AddPartitionsToTxn, one
    /// request for all partitions not yet added; nothing for the others).
    /// The producer must call this before it sends a partition's first
    /// batch in the transaction, and send only after it returned `Ok`.
    /// In transactions V2 ([`is_transaction_v2`](Self::is_transaction_v2))
    /// no request is sent: the partitions are noted, and the producer's
    /// Produce (v12+) adds them; a partition noted here must then get its
    /// Produce before the commit, or the coordinator, which never heard of
    /// the transaction, refuses the EndTxn (INVALID_TXN_STATE).
    pub async fn add_partitions<T: AsRef<str>>(&self, partitions: &[(T, i32)]) -> Result<()> {
        let _op = self.inner.op.lock().await;
        let (pid, new) = {
            let core = self.core();
            let pid = self.usable_in_transaction(&core, "add_partitions")?;
            let mut new: Vec<(String, i32)> = Vec::new();
            for (t, p) in partitions {
                let (t, p) = (t.as_ref(), *p);
                let added = core.partitions.get(t).is_some_and(|s| s.contains(&p));
                if !added && !new.iter().any(|(nt, np)| nt == t && *np == p) {
                    new.push((t.to_string(), p));
                }
            }
            (pid, new)
        };
        if new.is_empty() {
            return Ok(());
        }
        if self.core().tv2 {
            let mut core = self.core();
            core.started = true;
            for (t, p) in new {
                core.partitions.entry(t).or_default().insert(p);
            }
            return Ok(());
        }
        match self.inner.coordinators.add_partitions(pid, &new).await {
            Ok(()) => {
                let mut core = self.core();
                core.started = true;
                for (t, p) in new {
                    core.partitions.entry(t).or_default().insert(p);
                }
                Ok(())
            }
            Err(f) => Err(self.fail(f)),
        }
    }

    /// Adds consumed offsets to the open transaction, so they commit (or
    /// are discarded) with it: AddOffsetsToTxn to the transaction
    /// coordinator (not in transactions V2, where TxnOffsetCommit v5 does
    /// it), then TxnOffsetCommit to the group's coordinator. Each offset
    /// is `(topic, partition, next offset to consume, metadata)`.
    pub async fn send_offsets_to_transaction<T: AsRef<str>>(
        &self,
        offsets: &[(T, i32, i64, Option<&str>)],
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let _op = self.inner.op.lock().await;
        let (pid, tv2) = {
            let core = self.core();
            let pid = self.usable_in_transaction(&core, "send_offsets_to_transaction")?;
            (pid, core.tv2)
        };
        if group.group_id.is_empty() {
            return Err(Error::config(
                "group.id",
                "send_offsets_to_transaction needs a group id",
            ));
        }
        let c = &self.inner.coordinators;
        if !tv2 && let Err(f) = c.add_offsets(pid, &group.group_id).await {
            return Err(self.fail(f));
        }
        self.core().started = true;
        let offsets: Vec<(String, i32, i64, Option<String>)> = offsets
            .iter()
            .map(|(t, p, o, m)| (t.as_ref().to_string(), *p, *o, m.map(str::to_string)))
            .collect();
        if offsets.is_empty() {
            return Ok(());
        }
        c.txn_offset_commit(pid, &offsets, group, tv2)
            .await
            .map_err(|f| self.fail(f))
    }

    /// Commits the open transaction (EndTxn). **The producer must have
    /// flushed first**: every record sent in the transaction must be
    /// acknowledged, or failed (then [`fail_transaction`](Self::fail_transaction)
    /// makes this return the abortable error). A transaction that never
    /// reached the coordinator ends without a request. After a timeout,
    /// calling it again resumes the commit.
    pub async fn commit_transaction(&self) -> Result<()> {
        self.end(true).await
    }

    /// Aborts the open transaction (EndTxn): what it wrote is never
    /// visible to read_committed consumers. Also the way out of
    /// [`TransactionState::AbortableError`]. The producer should drop (or
    /// fail) the transaction's records still buffered first.
    ///
    /// After a failed batch ([`fail_transaction`](Self::fail_transaction))
    /// or an UNKNOWN_PRODUCER_ID answer, the abort also bumps the epoch
    /// (InitProducerId with the current id and epoch, KIP-360): the
    /// producer then finds a new [`producer_id_and_epoch`](Self::producer_id_and_epoch)
    /// and must restart every partition's sequence at 0.
    pub async fn abort_transaction(&self) -> Result<()> {
        self.end(false).await
    }

    /// Tells the manager that a batch of the open transaction failed for
    /// good (the producer's sender calls this): fencing and authorization
    /// errors make the manager fatal, anything else makes the transaction
    /// abortable, and its abort bumps the epoch. No effect outside a
    /// transaction or when already failed.
    pub fn fail_transaction(&self, error: &Error) {
        let mut core = self.core();
        let (api, code) = match error {
            Error::Broker { api, code, .. } => (*api, *code),
            // Not a broker answer (a closed connection, a timeout): the
            // transaction is abortable as if the broker had said so.
            _ => (ApiKey::Produce, ErrorCode::TRANSACTION_ABORTABLE),
        };
        let id = self.transactional_id();
        if is_fencing(code) || code == ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED {
            core.error = Some(state::describe(api, code, id, None));
            core.state = TransactionState::FatalError;
        } else if matches!(
            core.state,
            TransactionState::InTransaction | TransactionState::Committing
        ) {
            core.error = Some(StoredError {
                api,
                code,
                message: format!(
                    "a record of the transaction failed ({error}); call abort_transaction \
                     (transactional.id '{id}')"
                ),
            });
            core.state = TransactionState::AbortableError;
            core.bump_epoch = true;
        }
    }

    async fn end(&self, commit: bool) -> Result<()> {
        let op = if commit {
            "commit_transaction"
        } else {
            "abort_transaction"
        };
        let _op = self.inner.op.lock().await;
        let pid = {
            let mut core = self.core();
            if let Some(e) = stored_fatal(&core) {
                return Err(e);
            }
            if commit && core.state == TransactionState::AbortableError {
                return Err(core
                    .error
                    .as_ref()
                    .map(StoredError::to_error)
                    .unwrap_or_else(|| wrong_state(op, core.state)));
            }
            let to = if commit {
                TransactionState::Committing
            } else {
                TransactionState::Aborting
            };
            if !core.state.can_become(to) {
                return Err(wrong_state(op, core.state));
            }
            core.state = to;
            match core.producer {
                Some(p) => (p, core.started, !commit && core.bump_epoch, core.tv2),
                None => return Err(wrong_state(op, TransactionState::Uninitialized)),
            }
        };
        let (pid, started, mut bump, tv2) = pid;
        if started {
            match self.inner.coordinators.end_txn(pid, commit, tv2).await {
                // Transactions V2: the coordinator bumped the epoch itself.
                Ok(Some(next)) => {
                    let mut core = self.core();
                    core.started = false;
                    core.producer = Some(next);
                    core.bump_epoch = false;
                    bump = false;
                }
                // A repeated abort (after a timeout) goes straight to the
                // epoch bump.
                Ok(None) => self.core().started = false,
                // An abort that fails for good leaves nothing else to try.
                Err(Failure::Abortable(e)) if !commit => {
                    return Err(self.fail(Failure::Fatal(e)));
                }
                Err(f) => return Err(self.fail(f)),
            }
        }
        if bump {
            let timeout_ms = self.timeout_ms()?;
            match self
                .inner
                .coordinators
                .init_producer_id(timeout_ms, Some(pid))
                .await
            {
                Ok(new) => {
                    let mut core = self.core();
                    core.producer = Some(new);
                    core.bump_epoch = false;
                }
                Err(Failure::Abortable(e)) => return Err(self.fail(Failure::Fatal(e))),
                Err(f) => return Err(self.fail(f)),
            }
        }
        self.finish(&mut self.core());
        Ok(())
    }

    fn timeout_ms(&self) -> Result<i32> {
        i32::try_from(self.inner.transaction_timeout.as_millis())
            .map_err(|_| Error::config("transaction.timeout.ms", "does not fit in 32 bits"))
    }

    fn finish(&self, core: &mut Core) {
        core.state = TransactionState::Ready;
        core.partitions.clear();
        core.started = false;
        core.error = None;
    }

    /// Records a failed operation in the state and returns its error.
    fn fail(&self, failure: Failure) -> Error {
        let mut core = self.core();
        match failure {
            Failure::Plain(e) => e,
            Failure::Fatal(e) => {
                let err = e.to_error();
                core.state = TransactionState::FatalError;
                core.error = Some(e);
                err
            }
            Failure::Abortable(e) => {
                let err = e.to_error();
                if e.code == ErrorCode::UNKNOWN_PRODUCER_ID
                    || e.code == ErrorCode::INVALID_PRODUCER_ID_MAPPING
                {
                    core.bump_epoch = true;
                }
                if core.state.can_become(TransactionState::AbortableError) {
                    core.state = TransactionState::AbortableError;
                    core.error = Some(e);
                }
                err
            }
        }
    }

    /// The producer id, if adding to the transaction is allowed now.
    fn usable_in_transaction(&self, core: &Core, op: &str) -> Result<ProducerIdAndEpoch> {
        if let Some(e) = stored_fatal(core) {
            return Err(e);
        }
        match (core.state, core.producer) {
            (TransactionState::InTransaction, Some(p)) => Ok(p),
            (TransactionState::AbortableError, _) => Err(core
                .error
                .as_ref()
                .map(StoredError::to_error)
                .unwrap_or_else(|| wrong_state(op, core.state))),
            (state, _) => Err(wrong_state(op, state)),
        }
    }

    fn transition(&self, op: &str, to: TransactionState) -> Result<()> {
        let mut core = self.core();
        if let Some(e) = stored_fatal(&core) {
            return Err(e);
        }
        if !core.state.can_become(to) {
            return Err(wrong_state(op, core.state));
        }
        core.state = to;
        Ok(())
    }

    fn core(&self) -> std::sync::MutexGuard<'_, Core> {
        self.inner.core.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The stored error of a manager in `FatalError`.
fn stored_fatal(core: &Core) -> Option<Error> {
    (core.state == TransactionState::FatalError).then(|| {
        core.error
            .as_ref()
            .map(StoredError::to_error)
            .unwrap_or_else(|| wrong_state("this operation", TransactionState::FatalError))
    })
}
