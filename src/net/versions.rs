//! ApiVersions negotiation: which version of each API to use with a broker.
//!
//! # References
//! - KIP-35 (ApiVersions), KIP-511 (client software name and version;
//!   ApiVersions responses always use response header v0)

use crate::error::{Error, Result};
use crate::protocol::messages::{ApiKey, ApiVersionsResponse};

/// The API versions a broker supports, and the version klamm uses for each.
///
/// ```
/// use klamm::net::ApiVersions;
/// use klamm::protocol::messages::{ApiKey, ApiVersionsResponse, api_versions_response::ApiVersion};
///
/// let resp = ApiVersionsResponse {
///     api_keys: vec![ApiVersion { api_key: 3, min_version: 0, max_version: 99, ..Default::default() }],
///     ..Default::default()
/// };
/// let versions = ApiVersions::from_response(&resp);
/// // The broker offers Metadata up to v99; klamm's highest is v13.
/// assert_eq!(versions.version_for(ApiKey::Metadata, "b:9092").unwrap(), 13);
/// assert!(versions.version_for(ApiKey::Produce, "b:9092").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersions {
    /// Broker (min, max) per API key code, `None` where not offered.
    broker: Vec<Option<(i16, i16)>>,
    /// The cluster's finalized features (ApiVersions v3+, KIP-584): name
    /// and finalized level.
    finalized: Vec<(String, i16)>,
}

impl ApiVersions {
    /// From a broker's ApiVersions response.
    pub fn from_response(resp: &ApiVersionsResponse) -> Self {
        let mut broker = Vec::new();
        for k in &resp.api_keys {
            let Ok(i) = usize::try_from(k.api_key) else {
                continue;
            };
            // Keys far beyond any Kafka API are ignored rather than sized for.
            if i > 4096 || k.min_version > k.max_version {
                continue;
            }
            if broker.len() <= i {
                broker.resize(i + 1, None);
            }
            broker[i] = Some((k.min_version, k.max_version));
        }
        let finalized = resp
            .finalized_features
            .iter()
            .map(|f| (f.name.clone(), f.max_version_level))
            .collect();
        ApiVersions { broker, finalized }
    }

    /// The level the cluster has finalized for feature `name`
    /// (`transaction.version`, `group.version`, `share.version`,
    /// `metadata.version`, ...), if the broker reported it (ApiVersions
    /// v3+; brokers before Kafka 2.7 report none).
    ///
    /// ```
    /// use klamm::net::ApiVersions;
    /// use klamm::protocol::messages::ApiVersionsResponse;
    /// use klamm::protocol::messages::api_versions_response::FinalizedFeatureKey;
    ///
    /// let resp = ApiVersionsResponse {
    ///     finalized_features: vec![FinalizedFeatureKey {
    ///         name: "transaction.version".into(),
    ///         max_version_level: 2,
    ///         ..Default::default()
    ///     }],
    ///     ..Default::default()
    /// };
    /// let v = ApiVersions::from_response(&resp);
    /// assert_eq!(v.finalized_feature("transaction.version"), Some(2));
    /// assert_eq!(v.finalized_feature("group.version"), None);
    /// ```
    pub fn finalized_feature(&self, name: &str) -> Option<i16> {
        self.finalized
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, level)| *level)
    }

    /// The broker's supported range for `api`, if it offers it.
    pub fn broker_range(&self, api: ApiKey) -> Option<(i16, i16)> {
        self.broker.get(api.code() as usize).copied().flatten()
    }

    /// The highest version of `api` both sides support, up to the highest
    /// klamm's own code fills in ([`client_max`]).
    pub fn version_for(&self, api: ApiKey, broker: &str) -> Result<i16> {
        self.version_up_to(api, broker, client_max(api))
    }

    /// The highest version of `api` both sides support, up to `max` (for
    /// the producer and the fetcher, which fill in the topic-id versions
    /// of Produce and Fetch that [`client_max`] keeps from requests built
    /// by hand).
    pub fn version_up_to(&self, api: ApiKey, broker: &str, max: i16) -> Result<i16> {
        let ours = (api.versions().0, max.min(api.versions().1));
        let theirs = self.broker_range(api);
        if let Some((min, max)) = theirs {
            let v = max.min(ours.1);
            if v >= min.max(ours.0) {
                return Ok(v);
            }
        }
        Err(Error::UnsupportedVersion {
            broker: broker.to_string(),
            api,
            broker_versions: theirs,
            ours,
        })
    }
}

/// The highest version of `api` klamm's clients (producer, consumer,
/// groups, transactions, the client itself) fill in and understand.
///
/// The generated codecs cover every version of Apache Kafka's definitions
/// (see [`ApiKey::versions`]); an API whose newer versions change what a
/// client must send or do (topic ids instead of names, a new error to act
/// on) is negotiated only up to the version klamm implements. APIs klamm
/// itself never sends negotiate up to the codec's highest, for tools that
/// build the requests themselves; [`Connection::send_version`] sends any
/// version.
///
/// [`Connection::send_version`]: crate::net::Connection::send_version
///
/// ```
/// use klamm::net::client_max;
/// use klamm::protocol::messages::ApiKey;
///
/// assert!(client_max(ApiKey::Produce) <= ApiKey::Produce.versions().1);
/// assert_eq!(client_max(ApiKey::ShareFetch), ApiKey::ShareFetch.versions().1);
/// ```
pub const fn client_max(api: ApiKey) -> i16 {
    match api {
        // v10 names topics by id only (the name fields are ignorable and
        // would be dropped from a request built by hand), so the default
        // stays at v9; klamm's offset manager and GroupAdmin ask for v10
        // themselves (ApiVersions::version_up_to) when metadata knows
        // every topic's id, and read the answer back by those ids.
        ApiKey::OffsetCommit => 9,
        ApiKey::OffsetFetch => 9,
        // Transactions V2 (KIP-890: the epoch bumped by every EndTxn v5,
        // partitions added by Produce v12, offsets by TxnOffsetCommit v5)
        // is one set, whose versions say which protocol the client runs:
        // by hand they default to the V1 set; klamm's TransactionManager
        // and producer ask for the V2 versions themselves
        // (ApiVersions::version_up_to) when the cluster has finalized
        // transaction.version 2 (ApiVersions::finalized_feature).
        ApiKey::TxnOffsetCommit => 4,
        ApiKey::EndTxn => 4,
        // v6 is unstable in 4.4 (KIP-939, two-phase commit).
        ApiKey::InitProducerId => 5,
        // Produce v13 and Fetch v13 name topics by id, and their name
        // fields are "ignorable": a request built by hand with names and
        // sent at those versions would lose them silently. So these are
        // negotiated by default (Connection::send) only up to the last
        // versions with names (and Produce v12 means transactions V2);
        // klamm's producer and fetcher ask for the id versions themselves
        // (ApiVersions::version_up_to) and fill the ids in.
        ApiKey::Produce => 11,
        ApiKey::Fetch => 12,
        // Metadata v13: its top-level error is checked, and
        // REBOOTSTRAP_REQUIRED bootstraps again (Client::refresh_metadata).
        // Raised with no change for a client: ApiVersions v5 (cluster and
        // node ids left unset: no identity check), ListOffsets v11
        // (TimeoutMs set), FindCoordinator v6, DescribeGroups v6,
        // DeleteGroups v3, ConsumerGroupDescribe v1. ConsumerGroupHeartbeat
        // v1 (KIP-1082): the member id is the client's own from the first
        // heartbeat (klamm's always was), and GROUP_ID_NOT_FOUND to a
        // member already in the group means its group was removed: it
        // rejoins, as on UNKNOWN_MEMBER_ID.
        other => other.versions().1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::api_versions_response::ApiVersion;

    fn resp(keys: &[(i16, i16, i16)]) -> ApiVersionsResponse {
        ApiVersionsResponse {
            api_keys: keys
                .iter()
                .map(|&(api_key, min_version, max_version)| ApiVersion {
                    api_key,
                    min_version,
                    max_version,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn picks_the_highest_common_version() {
        let v = ApiVersions::from_response(&resp(&[(0, 3, 9), (1, 0, 20), (18, 0, 2)]));
        assert_eq!(v.version_for(ApiKey::Produce, "b").unwrap(), 9);
        // Fetch by hand: up to v12 (names); the fetcher asks for more.
        assert_eq!(v.version_for(ApiKey::Fetch, "b").unwrap(), 12);
        assert_eq!(v.version_up_to(ApiKey::Fetch, "b", 18).unwrap(), 18);
        assert_eq!(v.version_for(ApiKey::ApiVersions, "b").unwrap(), 2);
        let err = v.version_for(ApiKey::Metadata, "b").unwrap_err();
        assert!(matches!(
            err,
            Error::UnsupportedVersion {
                broker_versions: None,
                ..
            }
        ));
    }

    #[test]
    fn no_overlap_is_an_error() {
        // A broker that only speaks OffsetCommit v10+ (beyond klamm's v9).
        let v = ApiVersions::from_response(&resp(&[(8, 10, 12)]));
        let err = v.version_for(ApiKey::OffsetCommit, "b").unwrap_err();
        assert!(matches!(
            err,
            Error::UnsupportedVersion {
                broker_versions: Some((10, 12)),
                ..
            }
        ));
        assert!(!err.is_retriable());
    }

    #[test]
    fn hostile_responses_do_not_size_tables() {
        let v = ApiVersions::from_response(&resp(&[(30000, 0, 1), (-5, 0, 1), (3, 5, 1)]));
        assert_eq!(v.broker_range(ApiKey::Metadata), None);
        assert!(v.broker.len() <= 4097);
    }
}
