//! Removing members from a group: LeaveGroup v3+ (KIP-345) on behalf of
//! static members, named by `group.instance.id`.

use std::collections::{BTreeMap, BTreeSet};

use super::GroupAdmin;
use super::offsets::coordinator_step;
use crate::client::Step;
use crate::error::{Error, Result};
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::leave_group_request::MemberIdentity;
use crate::protocol::messages::{ApiKey, LeaveGroupRequest, LeaveGroupResponse};

/// The reason LeaveGroup v5+ carries for members the admin removes.
const REASON: &str = "removed by klamm's group admin";

/// Each instance's outcome of a LeaveGroup: a group code stops the call
/// (or asks again, for coordinator codes); member codes
/// (UNKNOWN_MEMBER_ID: no member has that instance id) are that
/// instance's error.
pub(super) fn leave_results(
    group: &str,
    asked: &BTreeSet<String>,
    resp: LeaveGroupResponse,
) -> Step<BTreeMap<String, Result<()>>, Error> {
    let code = ErrorCode(resp.error_code);
    if let Some(step) = coordinator_step(ApiKey::LeaveGroup, code, group) {
        return step;
    }
    if !code.is_ok() {
        return Step::Stop(Error::Broker {
            api: ApiKey::LeaveGroup,
            code,
            context: Some(format!("group '{group}'")),
        });
    }
    let mut out = BTreeMap::new();
    for m in resp.members {
        let Some(id) = m.group_instance_id.filter(|id| asked.contains(id)) else {
            continue;
        };
        let code = ErrorCode(m.error_code);
        let outcome = if code.is_ok() {
            Ok(())
        } else {
            Err(Error::Broker {
                api: ApiKey::LeaveGroup,
                code,
                context: Some(format!("group '{group}', instance '{id}'")),
            })
        };
        out.insert(id, outcome);
    }
    for id in asked {
        out.entry(id.clone()).or_insert_with(|| {
            Err(Error::ProtocolViolation {
                broker: format!("the coordinator of group '{group}'"),
                reason: format!("LeaveGroup answer leaves out instance '{id}'"),
            })
        });
    }
    Step::Done(out)
}

impl GroupAdmin {
    /// Removes the static members `instance_ids` (their
    /// `group.instance.id`s) from `group` at once, as if each had sent a
    /// LeaveGroup: the group rebalances without waiting for their session
    /// timeouts. Each instance's outcome on its own (UNKNOWN_MEMBER_ID
    /// when no member has that id). A group-wide error fails the call as
    /// an [`Error::Broker`] naming the group; a coordinator without
    /// LeaveGroup v3 (Kafka before 2.4) is an
    /// [`Error::UnsupportedVersion`].
    ///
    /// ```no_run
    /// use klamm::group::GroupAdmin;
    ///
    /// # async fn run(admin: GroupAdmin) -> klamm::Result<()> {
    /// let gone = admin.remove_members("billing", &["worker-7".to_string()]).await?;
    /// if let Some(Err(e)) = gone.get("worker-7") {
    ///     eprintln!("worker-7 stays: {e}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn remove_members(
        &self,
        group: &str,
        instance_ids: &[String],
    ) -> Result<BTreeMap<String, Result<()>>> {
        if instance_ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let asked: BTreeSet<String> = instance_ids.iter().cloned().collect();
        let asked = &asked;
        self.at_coordinator(group, ApiKey::LeaveGroup, |conn| async move {
            let version = conn
                .api_versions()
                .version_for(ApiKey::LeaveGroup, conn.broker())?;
            if version < 3 {
                return Err(Error::UnsupportedVersion {
                    broker: conn.broker().to_string(),
                    api: ApiKey::LeaveGroup,
                    broker_versions: conn.api_versions().broker_range(ApiKey::LeaveGroup),
                    ours: (3, crate::net::client_max(ApiKey::LeaveGroup)),
                });
            }
            let req = LeaveGroupRequest {
                group_id: group.to_string(),
                members: asked
                    .iter()
                    .map(|id| MemberIdentity {
                        member_id: String::new(),
                        group_instance_id: Some(id.clone()),
                        reason: Some(REASON.to_string()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            let resp = conn.send_version(&req, version).await?;
            Ok(leave_results(group, asked, resp))
        })
        .await
    }
}
