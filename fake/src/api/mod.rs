//! The request handlers, one module per family, and the table of the API
//! versions the fake brokers offer.

use std::sync::{Arc, MutexGuard};

use bytes::BytesMut;
use klamm::protocol::codec::Message;
use klamm::protocol::frame::encode_response;
use klamm::protocol::messages::{ApiKey, RequestBody};

use crate::server::Shared;
use crate::state::State;

pub(crate) mod admin;
pub(crate) mod errors;
pub(crate) mod fetch;
pub(crate) mod groups;
pub(crate) mod meta;
pub(crate) mod produce;
pub(crate) mod txn;

/// The APIs the fake brokers implement and the versions they offer (each
/// capped by what klamm's codec knows). Produce and Fetch stop before
/// topic ids (v13); transactions are Kafka's first protocol (no
/// `transaction.version` feature is finalized); groups are the classic
/// protocol.
pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 12),
    (ApiKey::Fetch, 0, 12),
    (ApiKey::ListOffsets, 0, 9),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::OffsetCommit, 0, 9),
    (ApiKey::OffsetFetch, 0, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ApiVersions, 0, 5),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
];

/// The versions offered for `key`, if it is implemented: the fake's own,
/// within the codec's, within what the test narrowed them to.
pub(crate) fn offered(st: &State, key: ApiKey) -> Option<(i16, i16)> {
    let (_, min, max) = SUPPORTED.iter().find(|(k, _, _)| *k == key)?;
    let (cmin, cmax) = key.versions();
    let (tmin, tmax) = st.version_caps.get(&key).copied().unwrap_or((cmin, cmax));
    let (min, max) = ((*min).max(cmin).max(tmin), (*max).min(cmax).min(tmax));
    (min <= max).then_some((min, max))
}

/// A request's context: which broker handles it, at what version, for
/// which client.
pub(crate) struct Cx<'a> {
    pub shared: &'a Arc<Shared>,
    pub broker: i32,
    pub version: i16,
    pub client_id: String,
}

impl Cx<'_> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }
}

/// What a handler gives the connection.
pub(crate) enum Reply {
    /// A complete response frame.
    Frame(BytesMut),
    /// No response (a Produce with `acks=0`).
    None,
    /// Close the connection (a request the broker cannot take), and why.
    Close(String),
}

/// Encodes `msg` as the response to request `id` of `key` at `version`.
pub(crate) fn frame<M: Message>(key: ApiKey, id: i32, msg: &M, version: i16) -> Reply {
    let mut out = BytesMut::new();
    match encode_response(&mut out, key, id, msg, version) {
        Ok(()) => Reply::Frame(out),
        Err(e) => Reply::Close(format!(
            "encoding the {} v{version} response: {e}",
            key.name()
        )),
    }
}

/// Hands a request to its handler. A request whose version the broker did
/// not offer closes the connection, as Kafka does.
pub(crate) async fn dispatch(cx: &Cx<'_>, id: i32, body: RequestBody) -> Reply {
    let key = body.api_key();
    let range = offered(&cx.lock(), key);
    match range {
        Some((min, max)) if cx.version >= min && cx.version <= max => {}
        // A newer client's ApiVersions (one the codec knows).
        Some(_) if key == ApiKey::ApiVersions => {
            return frame(key, id, &meta::unsupported_version(&cx.lock()), 0);
        }
        _ => {
            return Reply::Close(format!(
                "{} v{} is not offered by the fake cluster",
                key.name(),
                cx.version
            ));
        }
    }
    let v = cx.version;
    match body {
        RequestBody::ApiVersions(_) => {
            let versions = meta::api_versions(&cx.lock());
            frame(key, id, &versions, v)
        }
        RequestBody::Metadata(r) => frame(key, id, &meta::metadata(cx, r), v),
        RequestBody::FindCoordinator(r) => frame(key, id, &meta::find_coordinator(cx, r), v),
        RequestBody::Produce(r) => match produce::produce(cx, r) {
            Some(resp) => frame(key, id, &resp, v),
            None => Reply::None,
        },
        RequestBody::Fetch(r) => frame(key, id, &fetch::fetch(cx, r).await, v),
        RequestBody::ListOffsets(r) => frame(key, id, &fetch::list_offsets(cx, r), v),
        RequestBody::DeleteRecords(r) => frame(key, id, &admin::delete_records(cx, r), v),
        RequestBody::InitProducerId(r) => frame(key, id, &txn::init_producer_id(cx, r), v),
        RequestBody::AddPartitionsToTxn(r) => frame(key, id, &txn::add_partitions(cx, r), v),
        RequestBody::AddOffsetsToTxn(r) => frame(key, id, &txn::add_offsets(cx, r), v),
        RequestBody::EndTxn(r) => frame(key, id, &txn::end_txn(cx, r), v),
        RequestBody::TxnOffsetCommit(r) => frame(key, id, &txn::txn_offset_commit(cx, r), v),
        RequestBody::JoinGroup(r) => frame(key, id, &groups::join(cx, r).await, v),
        RequestBody::SyncGroup(r) => frame(key, id, &groups::sync(cx, r).await, v),
        RequestBody::Heartbeat(r) => frame(key, id, &groups::heartbeat(cx, r), v),
        RequestBody::LeaveGroup(r) => frame(key, id, &groups::leave(cx, r), v),
        RequestBody::OffsetCommit(r) => frame(key, id, &groups::offset_commit(cx, r), v),
        RequestBody::OffsetFetch(r) => frame(key, id, &groups::offset_fetch(cx, r), v),
        RequestBody::ListGroups(r) => frame(key, id, &groups::list_groups(cx, r), v),
        RequestBody::DescribeGroups(r) => frame(key, id, &groups::describe_groups(cx, r), v),
        RequestBody::CreateTopics(r) => frame(key, id, &admin::create_topics(cx, r), v),
        RequestBody::DeleteTopics(r) => frame(key, id, &admin::delete_topics(cx, r), v),
        RequestBody::CreatePartitions(r) => frame(key, id, &admin::create_partitions(cx, r), v),
        RequestBody::DescribeConfigs(r) => frame(key, id, &admin::describe_configs(cx, r), v),
        RequestBody::AlterConfigs(r) => frame(key, id, &admin::alter_configs(cx, r), v),
        RequestBody::IncrementalAlterConfigs(r) => {
            frame(key, id, &admin::incremental_alter_configs(cx, r), v)
        }
        _ => Reply::Close(format!(
            "{} is not implemented by the fake cluster",
            key.name()
        )),
    }
}
