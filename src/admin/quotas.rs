//! Client quotas: describe and alter (byte rates, request rates,
//! connection rates per user, client id or IP).

use std::collections::BTreeMap;

use super::Admin;
use super::call::{Route, check_top, outcomes};
use crate::error::Result;
use crate::protocol::messages::describe_client_quotas_request::ComponentData;
use crate::protocol::messages::{
    AlterClientQuotasRequest, ApiKey, DescribeClientQuotasRequest,
    alter_client_quotas_request as acq,
};

/// Whom a quota applies to: entity type (`user`, `client-id`, `ip`) →
/// name, or `None` for that type's default entity.
///
/// ```
/// use klamm::admin::ClientQuotaEntity;
/// let alice = ClientQuotaEntity::new([("user", Some("alice"))]);
/// let every_user = ClientQuotaEntity::new([("user", None::<&str>)]);
/// assert_eq!(alice.to_string(), "user=alice");
/// assert_eq!(every_user.to_string(), "user=<default>");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientQuotaEntity(pub BTreeMap<String, Option<String>>);

impl ClientQuotaEntity {
    /// An entity of these components.
    pub fn new<N: Into<String>>(
        components: impl IntoIterator<Item = (&'static str, Option<N>)>,
    ) -> ClientQuotaEntity {
        ClientQuotaEntity(
            components
                .into_iter()
                .map(|(t, n)| (t.to_string(), n.map(Into::into)))
                .collect(),
        )
    }
}

impl std::fmt::Display for ClientQuotaEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("<default>")))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Which quotas to describe: per entity type, a name, the default
/// entity, or any entity of that type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientQuotaFilter {
    /// `(entity type, Some(Some(name)))` for that name,
    /// `Some(None)` for the default entity, `None` for any.
    pub components: Vec<(String, Option<Option<String>>)>,
    /// Only entities with exactly these component types.
    pub strict: bool,
}

impl ClientQuotaFilter {
    /// Every quota.
    pub fn all() -> ClientQuotaFilter {
        ClientQuotaFilter::default()
    }

    /// The quotas of one user (`None`: the default user entity).
    pub fn user(name: Option<&str>) -> ClientQuotaFilter {
        ClientQuotaFilter {
            components: vec![("user".into(), Some(name.map(str::to_string)))],
            strict: false,
        }
    }
}

/// Changes of one entity's quotas: each key (`producer_byte_rate`,
/// `consumer_byte_rate`, `request_percentage`,
/// `controller_mutation_rate`, `connection_creation_rate`) set to a value
/// or, with `None`, removed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientQuotaAlteration {
    /// Whom.
    pub entity: ClientQuotaEntity,
    /// Key → new value, or `None` to remove it.
    pub ops: Vec<(String, Option<f64>)>,
}

impl Admin {
    /// The quotas that match `filter`: entity → quota key → value.
    ///
    /// ```no_run
    /// use klamm::admin::ClientQuotaFilter;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// for (entity, values) in admin.describe_client_quotas(&ClientQuotaFilter::all()).await? {
    ///     println!("{entity}: {values:?}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn describe_client_quotas(
        &self,
        filter: &ClientQuotaFilter,
    ) -> Result<BTreeMap<ClientQuotaEntity, BTreeMap<String, f64>>> {
        self.single(
            ApiKey::DescribeClientQuotas,
            Route::Any,
            |conn| async move {
                let req = DescribeClientQuotasRequest {
                    components: filter
                        .components
                        .iter()
                        .map(|(t, m)| ComponentData {
                            entity_type: t.clone(),
                            match_type: match m {
                                Some(Some(_)) => 0,
                                Some(None) => 1,
                                None => 2,
                            },
                            r#match: m.clone().flatten(),
                            ..Default::default()
                        })
                        .collect(),
                    strict: filter.strict,
                    ..Default::default()
                };
                let resp = conn.send(&req).await?;
                check_top(
                    &conn,
                    ApiKey::DescribeClientQuotas,
                    resp.error_code,
                    resp.error_message.as_deref(),
                )?;
                Ok(resp
                    .entries
                    .unwrap_or_default()
                    .into_iter()
                    .map(|e| {
                        (
                            ClientQuotaEntity(
                                e.entity
                                    .into_iter()
                                    .map(|c| (c.entity_type, c.entity_name))
                                    .collect(),
                            ),
                            e.values.into_iter().map(|v| (v.key, v.value)).collect(),
                        )
                    })
                    .collect())
            },
        )
        .await
    }

    /// Alters quotas; each entity's outcome on its own.
    ///
    /// ```no_run
    /// use klamm::admin::{ClientQuotaAlteration, ClientQuotaEntity};
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let alice = ClientQuotaEntity::new([("user", Some("alice"))]);
    /// let change = ClientQuotaAlteration {
    ///     entity: alice.clone(),
    ///     ops: vec![
    ///         ("producer_byte_rate".into(), Some(1_048_576.0)),
    ///         ("consumer_byte_rate".into(), None), // removed
    ///     ],
    /// };
    /// admin.alter_client_quotas(&[change], false).await[&alice].as_ref().map_err(|e| e.to_string()).unwrap();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn alter_client_quotas(
        &self,
        alterations: &[ClientQuotaAlteration],
        validate_only: bool,
    ) -> BTreeMap<ClientQuotaEntity, Result<()>> {
        // An entity named twice gets the changes of both, in order.
        let mut by_entity: BTreeMap<&ClientQuotaEntity, Vec<&(String, Option<f64>)>> =
            BTreeMap::new();
        for a in alterations {
            by_entity.entry(&a.entity).or_default().extend(&a.ops);
        }
        self.per_item(
            ApiKey::AlterClientQuotas,
            alterations.iter().map(|a| a.entity.clone()),
            |_| Route::Any,
            |conn, entities| {
                let req = AlterClientQuotasRequest {
                    entries: entities
                        .iter()
                        .filter_map(|e| by_entity.get(e).map(|ops| (e, ops)))
                        .map(|(e, ops)| acq::EntryData {
                            entity: e
                                .0
                                .iter()
                                .map(|(t, n)| acq::EntityData {
                                    entity_type: t.clone(),
                                    entity_name: n.clone(),
                                    ..Default::default()
                                })
                                .collect(),
                            ops: ops
                                .iter()
                                .map(|(k, v)| acq::OpData {
                                    key: k.clone(),
                                    value: v.unwrap_or(0.0),
                                    remove: v.is_none(),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    validate_only,
                    ..Default::default()
                };
                async move {
                    let resp = conn.send(&req).await?;
                    Ok(outcomes(
                        ApiKey::AlterClientQuotas,
                        resp.entries.into_iter().map(|e| {
                            let entity = ClientQuotaEntity(
                                e.entity
                                    .into_iter()
                                    .map(|c| (c.entity_type, c.entity_name))
                                    .collect(),
                            );
                            let label = format!("quota entity {entity}");
                            (entity, label, e.error_code, e.error_message)
                        }),
                    ))
                }
            },
        )
        .await
    }
}
