//! The transaction state machine and what each coordinator answer means for
//! it: pure functions, no I/O.

use std::fmt;

use crate::error::Error;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::ApiKey;

/// Where a [`TransactionManager`](super::TransactionManager) is, after the
/// Java client's `TransactionManager.State`.
///
/// ```text
/// Uninitialized --init_transactions--> Initializing --> Ready
/// Ready --begin_transaction--> InTransaction
/// InTransaction --commit_transaction--> Committing --> Ready
/// InTransaction | AbortableError --abort_transaction--> Aborting --> Ready
/// InTransaction | Committing --abortable error--> AbortableError
/// any --fencing, authorization or unexpected error--> FatalError (final)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionState {
    /// `init_transactions` has not succeeded yet.
    Uninitialized,
    /// `init_transactions` is under way (or timed out and may be called
    /// again).
    Initializing,
    /// Initialized, no transaction open.
    Ready,
    /// A transaction is open: records and offsets may be added.
    InTransaction,
    /// `commit_transaction` is under way (or timed out and may be called
    /// again).
    Committing,
    /// `abort_transaction` is under way (or timed out and may be called
    /// again).
    Aborting,
    /// The open transaction cannot commit; only `abort_transaction` helps.
    AbortableError,
    /// The producer cannot continue (fenced, not authorized, or an
    /// unexpected error); it must be closed.
    FatalError,
}

impl TransactionState {
    /// The Java client's name of the state.
    ///
    /// ```
    /// use klamm::producer::transaction::TransactionState;
    ///
    /// assert_eq!(TransactionState::InTransaction.name(), "IN_TRANSACTION");
    /// assert_eq!(TransactionState::AbortableError.to_string(), "ABORTABLE_ERROR");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            TransactionState::Uninitialized => "UNINITIALIZED",
            TransactionState::Initializing => "INITIALIZING",
            TransactionState::Ready => "READY",
            TransactionState::InTransaction => "IN_TRANSACTION",
            TransactionState::Committing => "COMMITTING_TRANSACTION",
            TransactionState::Aborting => "ABORTING_TRANSACTION",
            TransactionState::AbortableError => "ABORTABLE_ERROR",
            TransactionState::FatalError => "FATAL_ERROR",
        }
    }

    /// Whether the state machine may go from `self` to `to`.
    pub(crate) fn can_become(self, to: TransactionState) -> bool {
        use TransactionState as S;
        match to {
            S::Uninitialized => false,
            S::Initializing => matches!(self, S::Uninitialized | S::Initializing),
            S::Ready => matches!(
                self,
                S::Initializing | S::Committing | S::Aborting | S::Ready
            ),
            S::InTransaction => self == S::Ready,
            S::Committing => matches!(self, S::InTransaction | S::Committing),
            S::Aborting => matches!(self, S::InTransaction | S::AbortableError | S::Aborting),
            S::AbortableError => {
                matches!(self, S::InTransaction | S::Committing | S::AbortableError)
            }
            S::FatalError => true,
        }
    }
}

impl fmt::Display for TransactionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to do with one coordinator answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Disposition {
    /// Success.
    Done,
    /// Ask the same coordinator again after a backoff.
    Retry,
    /// Look the coordinator up again, then retry.
    Rediscover,
    /// The transaction must be aborted.
    Abortable,
    /// The producer must be closed.
    Fatal,
}

/// Whether `code` means another producer with the same transactional id
/// took over (KIP-98 fencing; PRODUCER_FENCED since KIP-588).
pub(crate) fn is_fencing(code: ErrorCode) -> bool {
    code == ErrorCode::PRODUCER_FENCED || code == ErrorCode::INVALID_PRODUCER_EPOCH
}

/// What an error code from `api` means, following the Java client's
/// transaction handlers. TxnOffsetCommit goes to the group coordinator, so
/// its coordinator errors (and REQUEST_TIMED_OUT) rediscover that one.
pub(crate) fn classify(api: ApiKey, code: ErrorCode) -> Disposition {
    use Disposition as D;
    if code.is_ok() {
        return D::Done;
    }
    if code == ErrorCode::NOT_COORDINATOR || code == ErrorCode::COORDINATOR_NOT_AVAILABLE {
        return D::Rediscover;
    }
    if api == ApiKey::TxnOffsetCommit && code == ErrorCode::REQUEST_TIMED_OUT {
        return D::Rediscover;
    }
    if is_fencing(code) || code == ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED {
        return D::Fatal;
    }
    if code == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
        || code == ErrorCode::CONCURRENT_TRANSACTIONS
        || code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        || code.is_retriable()
    {
        return D::Retry;
    }
    if api == ApiKey::InitProducerId {
        // No transaction is open yet: nothing to abort.
        return D::Fatal;
    }
    let abortable = [
        ErrorCode::INVALID_TXN_STATE,
        ErrorCode::TRANSACTION_ABORTABLE,
        ErrorCode::UNKNOWN_PRODUCER_ID,
        ErrorCode::INVALID_PRODUCER_ID_MAPPING,
        ErrorCode::TOPIC_AUTHORIZATION_FAILED,
        ErrorCode::GROUP_AUTHORIZATION_FAILED,
        ErrorCode::UNKNOWN_MEMBER_ID,
        ErrorCode::ILLEGAL_GENERATION,
        ErrorCode::FENCED_INSTANCE_ID,
        ErrorCode::OPERATION_NOT_ATTEMPTED,
    ];
    if abortable.contains(&code) {
        D::Abortable
    } else {
        D::Fatal
    }
}

/// An error kept to be returned again: a fatal error is returned by every
/// later call, an abortable one by every call but `abort_transaction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredError {
    pub(crate) api: ApiKey,
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

impl StoredError {
    pub(crate) fn to_error(&self) -> Error {
        Error::Broker {
            api: self.api,
            code: self.code,
            context: Some(self.message.clone()),
        }
    }
}

/// The error for `code` from `api`, with a message that says what to do.
pub(crate) fn describe(
    api: ApiKey,
    code: ErrorCode,
    transactional_id: &str,
    detail: Option<&str>,
) -> StoredError {
    let detail = detail.map(|d| format!("{d}: ")).unwrap_or_default();
    let message = if is_fencing(code) {
        format!(
            "{detail}the producer was fenced by another instance with the same \
             transactional.id '{transactional_id}' (it called init_transactions later); \
             this producer must be closed"
        )
    } else if code == ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED {
        format!(
            "{detail}not authorized to use transactional.id '{transactional_id}'; \
             this producer must be closed"
        )
    } else if code == ErrorCode::INVALID_TRANSACTION_TIMEOUT {
        format!(
            "{detail}transaction.timeout.ms is above the broker's \
             transaction.max.timeout.ms; lower it and create a new producer"
        )
    } else {
        match classify(api, code) {
            Disposition::Abortable => {
                let why = if code == ErrorCode::INVALID_TXN_STATE {
                    "the coordinator rejects the transaction's state; it may have timed out \
                     (transaction.timeout.ms)"
                } else if code == ErrorCode::UNKNOWN_MEMBER_ID
                    || code == ErrorCode::ILLEGAL_GENERATION
                    || code == ErrorCode::FENCED_INSTANCE_ID
                {
                    "the consumer group moved on (rebalance); the offsets cannot be committed"
                } else {
                    "the transaction cannot be committed"
                };
                format!(
                    "{detail}{why}; call abort_transaction (transactional.id \
                     '{transactional_id}')"
                )
            }
            _ => format!(
                "{detail}unexpected error for transactional.id '{transactional_id}'; \
                 this producer must be closed"
            ),
        }
    };
    StoredError { api, code, message }
}

/// The error for calling `operation` in `state`.
pub(crate) fn wrong_state(operation: &str, state: TransactionState) -> Error {
    let hint = match state {
        TransactionState::Uninitialized | TransactionState::Initializing => {
            "call init_transactions first"
        }
        TransactionState::Ready => "no transaction is open; call begin_transaction first",
        TransactionState::InTransaction => "a transaction is already open",
        TransactionState::Committing => "a commit is under way; call commit_transaction again",
        TransactionState::Aborting => "an abort is under way; call abort_transaction again",
        TransactionState::AbortableError => "the transaction failed; call abort_transaction",
        TransactionState::FatalError => "the producer failed and must be closed",
    };
    Error::State {
        reason: format!("{operation} is not allowed in transaction state {state}: {hint}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use TransactionState as S;

    const ALL: [S; 8] = [
        S::Uninitialized,
        S::Initializing,
        S::Ready,
        S::InTransaction,
        S::Committing,
        S::Aborting,
        S::AbortableError,
        S::FatalError,
    ];

    #[test]
    fn transitions_follow_the_java_state_machine() {
        let allowed = [
            (S::Uninitialized, S::Initializing),
            (S::Initializing, S::Initializing),
            (S::Initializing, S::Ready),
            (S::Ready, S::Ready),
            (S::Ready, S::InTransaction),
            (S::InTransaction, S::Committing),
            (S::InTransaction, S::Aborting),
            (S::InTransaction, S::AbortableError),
            (S::Committing, S::Committing),
            (S::Committing, S::Ready),
            (S::Committing, S::AbortableError),
            (S::Aborting, S::Aborting),
            (S::Aborting, S::Ready),
            (S::AbortableError, S::Aborting),
            (S::AbortableError, S::AbortableError),
        ];
        for from in ALL {
            for to in ALL {
                let expected = to == S::FatalError || allowed.contains(&(from, to));
                assert_eq!(from.can_become(to), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn coordinator_codes_are_classified_as_the_java_client_does() {
        use Disposition as D;
        let cases = [
            (ApiKey::EndTxn, ErrorCode::NONE, D::Done),
            (ApiKey::EndTxn, ErrorCode::NOT_COORDINATOR, D::Rediscover),
            (
                ApiKey::AddPartitionsToTxn,
                ErrorCode::COORDINATOR_NOT_AVAILABLE,
                D::Rediscover,
            ),
            (
                ApiKey::InitProducerId,
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
                D::Retry,
            ),
            (ApiKey::EndTxn, ErrorCode::CONCURRENT_TRANSACTIONS, D::Retry),
            (
                ApiKey::AddPartitionsToTxn,
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                D::Retry,
            ),
            (
                ApiKey::TxnOffsetCommit,
                ErrorCode::REQUEST_TIMED_OUT,
                D::Rediscover,
            ),
            (ApiKey::EndTxn, ErrorCode::PRODUCER_FENCED, D::Fatal),
            (
                ApiKey::AddPartitionsToTxn,
                ErrorCode::INVALID_PRODUCER_EPOCH,
                D::Fatal,
            ),
            (
                ApiKey::InitProducerId,
                ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                D::Fatal,
            ),
            (ApiKey::EndTxn, ErrorCode::INVALID_TXN_STATE, D::Abortable),
            (
                ApiKey::AddPartitionsToTxn,
                ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                D::Abortable,
            ),
            (
                ApiKey::TxnOffsetCommit,
                ErrorCode::ILLEGAL_GENERATION,
                D::Abortable,
            ),
            (
                ApiKey::InitProducerId,
                ErrorCode::INVALID_TRANSACTION_TIMEOUT,
                D::Fatal,
            ),
            (ApiKey::EndTxn, ErrorCode::UNSUPPORTED_VERSION, D::Fatal),
        ];
        for (api, code, want) in cases {
            assert_eq!(classify(api, code), want, "{api} {code}");
        }
    }

    #[test]
    fn fencing_says_the_producer_must_be_closed() {
        for code in [
            ErrorCode::PRODUCER_FENCED,
            ErrorCode::INVALID_PRODUCER_EPOCH,
        ] {
            let err = describe(ApiKey::EndTxn, code, "tx-1", None).to_error();
            assert_eq!(err.kind(), ErrorKind::Broker);
            assert_eq!(err.kafka_code(), Some(code));
            assert!(!err.is_retriable());
            let text = err.to_string();
            assert!(text.contains("fenced by another instance"), "{text}");
            assert!(text.contains("transactional.id 'tx-1'"), "{text}");
            assert!(text.contains("must be closed"), "{text}");
        }
        let err = describe(
            ApiKey::InitProducerId,
            ErrorCode::INVALID_TRANSACTION_TIMEOUT,
            "tx-1",
            None,
        )
        .to_error();
        assert!(
            err.to_string().contains("transaction.max.timeout.ms"),
            "{err}"
        );
        assert_eq!(
            classify(ApiKey::EndTxn, ErrorCode::TRANSACTION_COORDINATOR_FENCED),
            Disposition::Fatal
        );
        let err = describe(
            ApiKey::EndTxn,
            ErrorCode::TRANSACTION_COORDINATOR_FENCED,
            "tx-1",
            None,
        )
        .to_error();
        assert!(err.to_string().contains("unexpected error"), "{err}");
        let err = describe(
            ApiKey::InitProducerId,
            ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            "tx-1",
            None,
        )
        .to_error();
        assert!(err.to_string().contains("not authorized"), "{err}");
        assert!(err.to_string().contains("must be closed"), "{err}");
    }

    #[test]
    fn abortable_errors_say_to_abort() {
        let err = describe(
            ApiKey::EndTxn,
            ErrorCode::INVALID_TXN_STATE,
            "tx-1",
            Some("t/0"),
        )
        .to_error();
        assert_eq!(err.kafka_code(), Some(ErrorCode::INVALID_TXN_STATE));
        let text = err.to_string();
        assert!(
            text.starts_with("EndTxn failed: INVALID_TXN_STATE"),
            "{text}"
        );
        assert!(text.contains("t/0: "), "{text}");
        assert!(text.contains("timed out"), "{text}");
        assert!(text.contains("call abort_transaction"), "{text}");
    }

    #[test]
    fn wrong_state_errors_name_the_state() {
        let err = wrong_state("commit_transaction", S::Ready);
        assert_eq!(err.kind(), ErrorKind::State);
        assert_eq!(err.config_key(), None);
        let text = err.to_string();
        assert!(text.contains("commit_transaction"), "{text}");
        assert!(text.contains("state READY"), "{text}");
        assert!(text.contains("begin_transaction"), "{text}");
        for s in ALL {
            assert!(wrong_state("x", s).to_string().contains(s.name()));
        }
    }
}
