//! Configs of topics, brokers, broker loggers, client-metrics
//! subscriptions and groups: describe, alter incrementally, replace.

use std::collections::BTreeMap;

use super::Admin;
use super::call::{Answers, Route, check, outcomes};
use crate::error::Result;
use crate::protocol::messages::describe_configs_request::DescribeConfigsResource;
use crate::protocol::messages::{
    ApiKey, DescribeConfigsRequest, IncrementalAlterConfigsRequest, alter_configs_request as ac,
    incremental_alter_configs_request as iac,
};

/// The kinds of resource that have configs (Kafka's `ConfigResource.Type`,
/// its wire values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigResourceType {
    /// A topic (by name).
    Topic,
    /// A broker (by id; an empty name means the cluster-wide defaults).
    Broker,
    /// A broker's log4j loggers (by broker id).
    BrokerLogger,
    /// A client-metrics subscription (KIP-714, by name).
    ClientMetrics,
    /// A consumer or share group (KIP-848, by group id).
    Group,
}

impl ConfigResourceType {
    /// The wire value.
    pub fn code(self) -> i8 {
        match self {
            ConfigResourceType::Topic => 2,
            ConfigResourceType::Broker => 4,
            ConfigResourceType::BrokerLogger => 8,
            ConfigResourceType::ClientMetrics => 16,
            ConfigResourceType::Group => 32,
        }
    }

    /// The type of a wire value.
    pub fn from_code(code: i8) -> Option<ConfigResourceType> {
        Some(match code {
            2 => ConfigResourceType::Topic,
            4 => ConfigResourceType::Broker,
            8 => ConfigResourceType::BrokerLogger,
            16 => ConfigResourceType::ClientMetrics,
            32 => ConfigResourceType::Group,
            _ => return None,
        })
    }

    /// The name the Kafka tools use (`topics`, `brokers`, …'s singular).
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigResourceType::Topic => "topic",
            ConfigResourceType::Broker => "broker",
            ConfigResourceType::BrokerLogger => "broker-logger",
            ConfigResourceType::ClientMetrics => "client-metrics",
            ConfigResourceType::Group => "group",
        }
    }
}

/// A resource whose configs are described or altered.
///
/// ```
/// use klamm::admin::{ConfigResource, ConfigResourceType};
/// let r = ConfigResource::broker(1);
/// assert_eq!((r.resource_type, r.name.as_str()), (ConfigResourceType::Broker, "1"));
/// assert_eq!(ConfigResource::topic("orders").to_string(), "topic 'orders'");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigResource {
    /// What kind of resource.
    pub resource_type: ConfigResourceType,
    /// Its name (a topic, a broker id, a group id, …).
    pub name: String,
}

impl ConfigResource {
    /// A resource of any type.
    pub fn new(resource_type: ConfigResourceType, name: impl Into<String>) -> ConfigResource {
        ConfigResource {
            resource_type,
            name: name.into(),
        }
    }

    /// A topic.
    pub fn topic(name: impl Into<String>) -> ConfigResource {
        Self::new(ConfigResourceType::Topic, name)
    }

    /// A broker, by id.
    pub fn broker(id: i32) -> ConfigResource {
        Self::new(ConfigResourceType::Broker, id.to_string())
    }

    /// The cluster-wide broker defaults (a broker resource with an empty
    /// name).
    pub fn cluster_defaults() -> ConfigResource {
        Self::new(ConfigResourceType::Broker, "")
    }

    /// A broker's loggers, by broker id.
    pub fn broker_logger(id: i32) -> ConfigResource {
        Self::new(ConfigResourceType::BrokerLogger, id.to_string())
    }

    /// A group.
    pub fn group(id: impl Into<String>) -> ConfigResource {
        Self::new(ConfigResourceType::Group, id)
    }

    /// A client-metrics subscription.
    pub fn client_metrics(name: impl Into<String>) -> ConfigResource {
        Self::new(ConfigResourceType::ClientMetrics, name)
    }

    /// Where requests about it go: a broker's own configs to that
    /// broker, the rest anywhere (brokers forward changes to the
    /// controller).
    fn route(&self) -> Route {
        match self.resource_type {
            ConfigResourceType::Broker | ConfigResourceType::BrokerLogger => {
                match self.name.parse::<i32>() {
                    Ok(id) => Route::Broker(id),
                    Err(_) => Route::Any,
                }
            }
            _ => Route::Any,
        }
    }
}

impl std::fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} '{}'", self.resource_type.as_str(), self.name)
    }
}

/// Where a config's value comes from (Kafka's `ConfigEntry.ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigSource {
    /// Set on the topic.
    DynamicTopic,
    /// Set dynamically for this broker.
    DynamicBroker,
    /// Set dynamically for all brokers.
    DynamicDefaultBroker,
    /// From the broker's properties file.
    StaticBroker,
    /// Kafka's default.
    Default,
    /// Set dynamically for a broker logger.
    DynamicBrokerLogger,
    /// A client-metrics subscription's.
    ClientMetrics,
    /// Set on the group.
    DynamicGroup,
    /// A source this client does not know.
    Unknown,
}

impl ConfigSource {
    pub(crate) fn from_wire(code: i8) -> ConfigSource {
        match code {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            6 => ConfigSource::DynamicBrokerLogger,
            7 => ConfigSource::ClientMetrics,
            8 => ConfigSource::DynamicGroup,
            _ => ConfigSource::Unknown,
        }
    }

    /// The name Java's tools print (`DYNAMIC_TOPIC_CONFIG`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
            ConfigSource::Default => "DEFAULT_CONFIG",
            ConfigSource::DynamicBrokerLogger => "DYNAMIC_BROKER_LOGGER_CONFIG",
            ConfigSource::ClientMetrics => "CLIENT_METRICS_CONFIG",
            ConfigSource::DynamicGroup => "DYNAMIC_GROUP_CONFIG",
            ConfigSource::Unknown => "UNKNOWN",
        }
    }
}

/// A value of the same config from a source of lower precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The config's name at that source (brokers have synonyms such as
    /// `log.retention.hours` for a topic's `retention.ms`).
    pub name: String,
    /// The value there (`None` for sensitive ones).
    pub value: Option<String>,
    /// The source.
    pub source: ConfigSource,
}

/// One config of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The name.
    pub name: String,
    /// The value; `None` for sensitive configs (passwords).
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it cannot be changed.
    pub read_only: bool,
    /// Whether it is sensitive (its value is never sent).
    pub sensitive: bool,
    /// Its values at lower-precedence sources, highest first (when asked
    /// for).
    pub synonyms: Vec<ConfigSynonym>,
    /// Its type (`BOOLEAN`, `INT`, `LIST`, …; DescribeConfigs v3+).
    pub config_type: Option<&'static str>,
    /// Its documentation (when asked for; DescribeConfigs v3+).
    pub documentation: Option<String>,
}

impl ConfigEntry {
    /// Whether the value is Kafka's default.
    pub fn is_default(&self) -> bool {
        self.source == ConfigSource::Default
    }
}

/// One change of an incremental alter.
///
/// ```
/// use klamm::admin::AlterConfigOp;
/// let ops = [
///     AlterConfigOp::set("retention.ms", "3600000"),
///     AlterConfigOp::delete("max.message.bytes"),
///     AlterConfigOp::append("cleanup.policy", "compact"),
/// ];
/// assert_eq!(ops[2].name(), "cleanup.policy");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    /// Set the config to the value.
    Set(String, String),
    /// Remove the resource's own value (back to the inherited one).
    Delete(String),
    /// Add the value to a list config.
    Append(String, String),
    /// Remove the value from a list config.
    Subtract(String, String),
}

impl AlterConfigOp {
    /// Set `name` to `value`.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp::Set(name.into(), value.into())
    }

    /// Remove `name`'s own value.
    pub fn delete(name: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp::Delete(name.into())
    }

    /// Add `value` to the list config `name`.
    pub fn append(name: impl Into<String>, value: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp::Append(name.into(), value.into())
    }

    /// Remove `value` from the list config `name`.
    pub fn subtract(name: impl Into<String>, value: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp::Subtract(name.into(), value.into())
    }

    /// The config it changes.
    pub fn name(&self) -> &str {
        match self {
            AlterConfigOp::Set(n, _)
            | AlterConfigOp::Delete(n)
            | AlterConfigOp::Append(n, _)
            | AlterConfigOp::Subtract(n, _) => n,
        }
    }

    fn wire(&self) -> iac::AlterableConfig {
        let (op, value) = match self {
            AlterConfigOp::Set(_, v) => (0, Some(v.clone())),
            AlterConfigOp::Delete(_) => (1, None),
            AlterConfigOp::Append(_, v) => (2, Some(v.clone())),
            AlterConfigOp::Subtract(_, v) => (3, Some(v.clone())),
        };
        iac::AlterableConfig {
            name: self.name().to_string(),
            config_operation: op,
            value,
            ..Default::default()
        }
    }
}

fn config_type_name(code: i8) -> Option<&'static str> {
    Some(match code {
        1 => "BOOLEAN",
        2 => "STRING",
        3 => "INT",
        4 => "SHORT",
        5 => "LONG",
        6 => "DOUBLE",
        7 => "LIST",
        8 => "CLASS",
        9 => "PASSWORD",
        _ => return None,
    })
}

impl Admin {
    /// Every config of each resource (names sorted); each resource's
    /// outcome on its own. A broker's configs are asked of that broker.
    ///
    /// ```no_run
    /// use klamm::admin::ConfigResource;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let wanted = [ConfigResource::topic("orders"), ConfigResource::broker(1)];
    /// for (resource, entries) in admin.describe_configs(&wanted).await {
    ///     for e in entries? {
    ///         if !e.is_default() {
    ///             println!("{resource}: {} = {:?} ({})", e.name, e.value, e.source.as_str());
    ///         }
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
    ) -> BTreeMap<ConfigResource, Result<Vec<ConfigEntry>>> {
        self.describe_configs_with(resources, &[], false, false)
            .await
    }

    /// Like [`describe_configs`](Self::describe_configs): only the configs
    /// named in `keys` (all when empty), with each config's synonyms and
    /// documentation when asked for.
    pub async fn describe_configs_with(
        &self,
        resources: &[ConfigResource],
        keys: &[&str],
        synonyms: bool,
        documentation: bool,
    ) -> BTreeMap<ConfigResource, Result<Vec<ConfigEntry>>> {
        let keys: Option<Vec<String>> =
            (!keys.is_empty()).then(|| keys.iter().map(|k| k.to_string()).collect());
        self.per_item(
            ApiKey::DescribeConfigs,
            resources.iter().cloned(),
            ConfigResource::route,
            |conn, resources| {
                let req = DescribeConfigsRequest {
                    resources: resources
                        .iter()
                        .map(|r| DescribeConfigsResource {
                            resource_type: r.resource_type.code(),
                            resource_name: r.name.clone(),
                            configuration_keys: keys.clone(),
                            ..Default::default()
                        })
                        .collect(),
                    include_synonyms: synonyms,
                    include_documentation: documentation,
                    ..Default::default()
                };
                async move {
                    let version = conn
                        .api_versions()
                        .version_for(ApiKey::DescribeConfigs, conn.broker())?;
                    let resp = conn.send_version(&req, version).await?;
                    let mut answers = Vec::new();
                    for r in resp.results {
                        let Some(kind) = ConfigResourceType::from_code(r.resource_type) else {
                            continue;
                        };
                        let resource = ConfigResource::new(kind, r.resource_name);
                        let outcome = check(
                            ApiKey::DescribeConfigs,
                            r.error_code,
                            &resource,
                            r.error_message.as_deref(),
                        )
                        .map(|()| {
                            let mut entries: Vec<ConfigEntry> = r
                                .configs
                                .into_iter()
                                .map(|c| ConfigEntry {
                                    source: if version == 0 {
                                        if c.is_default {
                                            ConfigSource::Default
                                        } else {
                                            ConfigSource::Unknown
                                        }
                                    } else {
                                        ConfigSource::from_wire(c.config_source)
                                    },
                                    name: c.name,
                                    value: c.value,
                                    read_only: c.read_only,
                                    sensitive: c.is_sensitive,
                                    synonyms: c
                                        .synonyms
                                        .into_iter()
                                        .map(|s| ConfigSynonym {
                                            name: s.name,
                                            value: s.value,
                                            source: ConfigSource::from_wire(s.source),
                                        })
                                        .collect(),
                                    config_type: config_type_name(c.config_type),
                                    documentation: c.documentation,
                                })
                                .collect();
                            entries.sort_by(|a, b| a.name.cmp(&b.name));
                            entries
                        });
                        answers.push((resource, outcome));
                    }
                    Ok(answers)
                }
            },
        )
        .await
    }

    /// Changes configs incrementally (IncrementalAlterConfigs, Kafka
    /// 2.3+): set, delete, append to or subtract from each named config,
    /// leaving the others as they are; each resource's outcome on its own
    /// (INVALID_CONFIG, POLICY_VIOLATION, … with the broker's message).
    ///
    /// ```no_run
    /// use klamm::admin::{AlterConfigOp, ConfigResource};
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let changes = [(
    ///     ConfigResource::topic("orders"),
    ///     vec![
    ///         AlterConfigOp::set("retention.ms", "86400000"),
    ///         AlterConfigOp::append("cleanup.policy", "compact"),
    ///         AlterConfigOp::delete("max.message.bytes"),
    ///     ],
    /// )];
    /// for (resource, outcome) in admin.incremental_alter_configs(&changes).await {
    ///     println!("{resource}: {:?}", outcome.map_err(|e| e.to_string()));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn incremental_alter_configs(
        &self,
        changes: &[(ConfigResource, Vec<AlterConfigOp>)],
    ) -> BTreeMap<ConfigResource, Result<()>> {
        self.incremental_alter_configs_with(changes, false).await
    }

    /// Like [`incremental_alter_configs`](Self::incremental_alter_configs);
    /// with `validate_only` nothing changes.
    pub async fn incremental_alter_configs_with(
        &self,
        changes: &[(ConfigResource, Vec<AlterConfigOp>)],
        validate_only: bool,
    ) -> BTreeMap<ConfigResource, Result<()>> {
        // A resource named twice gets both lists of changes, in order.
        let mut by_resource: BTreeMap<&ConfigResource, Vec<&AlterConfigOp>> = BTreeMap::new();
        for (r, ops) in changes {
            by_resource.entry(r).or_default().extend(ops);
        }
        self.per_item(
            ApiKey::IncrementalAlterConfigs,
            changes.iter().map(|(r, _)| r.clone()),
            ConfigResource::route,
            |conn, resources| {
                let req = IncrementalAlterConfigsRequest {
                    resources: resources
                        .iter()
                        .map(|r| iac::AlterConfigsResource {
                            resource_type: r.resource_type.code(),
                            resource_name: r.name.clone(),
                            configs: by_resource
                                .get(r)
                                .map(|ops| ops.iter().map(|op| op.wire()).collect())
                                .unwrap_or_default(),
                            ..Default::default()
                        })
                        .collect(),
                    validate_only,
                    ..Default::default()
                };
                async move {
                    let resp = conn.send(&req).await?;
                    Ok(altered(
                        ApiKey::IncrementalAlterConfigs,
                        resp.responses.into_iter().map(|r| {
                            (
                                r.resource_type,
                                r.resource_name,
                                r.error_code,
                                r.error_message,
                            )
                        }),
                    ))
                }
            },
        )
        .await
    }

    /// Replaces each resource's configs with the ones given (AlterConfigs,
    /// the legacy call: every config not given goes back to its default,
    /// which is why [`incremental_alter_configs`](Self::incremental_alter_configs)
    /// is usually what is wanted); each resource's outcome on its own.
    ///
    /// ```no_run
    /// use std::collections::BTreeMap;
    /// use klamm::admin::ConfigResource;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// // Every config of the topic not named here goes back to its default.
    /// let whole = BTreeMap::from([("retention.ms".to_string(), "3600000".to_string())]);
    /// admin.alter_configs(&[(ConfigResource::topic("orders"), whole)], false).await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn alter_configs(
        &self,
        changes: &[(ConfigResource, BTreeMap<String, String>)],
        validate_only: bool,
    ) -> BTreeMap<ConfigResource, Result<()>> {
        // A resource named twice gets the configs of both (the later value
        // of a config named in each).
        let mut by_resource: BTreeMap<&ConfigResource, BTreeMap<String, String>> = BTreeMap::new();
        for (r, c) in changes {
            by_resource
                .entry(r)
                .or_default()
                .extend(c.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        self.per_item(
            ApiKey::AlterConfigs,
            changes.iter().map(|(r, _)| r.clone()),
            ConfigResource::route,
            |conn, resources| {
                let req = crate::protocol::messages::AlterConfigsRequest {
                    resources: resources
                        .iter()
                        .map(|r| ac::AlterConfigsResource {
                            resource_type: r.resource_type.code(),
                            resource_name: r.name.clone(),
                            configs: by_resource
                                .get(r)
                                .map(|c| {
                                    c.iter()
                                        .map(|(k, v)| ac::AlterableConfig {
                                            name: k.clone(),
                                            value: Some(v.clone()),
                                            ..Default::default()
                                        })
                                        .collect()
                                })
                                .unwrap_or_default(),
                            ..Default::default()
                        })
                        .collect(),
                    validate_only,
                    ..Default::default()
                };
                async move {
                    let resp = conn.send(&req).await?;
                    Ok(altered(
                        ApiKey::AlterConfigs,
                        resp.responses.into_iter().map(|r| {
                            (
                                r.resource_type,
                                r.resource_name,
                                r.error_code,
                                r.error_message,
                            )
                        }),
                    ))
                }
            },
        )
        .await
    }
}

/// The per-resource outcomes of an alter answer (resources of a type
/// this client does not know are left out: it never asks about them).
fn altered(
    api: ApiKey,
    results: impl Iterator<Item = (i8, String, i16, Option<String>)>,
) -> Answers<ConfigResource, ()> {
    outcomes(
        api,
        results.filter_map(|(kind, name, code, message)| {
            let resource = ConfigResource::new(ConfigResourceType::from_code(kind)?, name);
            let label = resource.to_string();
            Some((resource, label, code, message))
        }),
    )
}
