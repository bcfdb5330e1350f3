//! ACLs: create, describe and delete by filter, and the enums they are
//! made of (Kafka's `ResourceType`, `PatternType`, `AclOperation`,
//! `AclPermissionType`, with their wire values).

use std::collections::{BTreeMap, BTreeSet};

use super::Admin;
use super::call::{Route, check, check_top};
use crate::error::{Error, Result};
use crate::protocol::messages::create_acls_request::AclCreation;
use crate::protocol::messages::delete_acls_request::DeleteAclsFilter;
use crate::protocol::messages::{
    ApiKey, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
};

/// Declares a closed enum with its wire codes and text names, both ways.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:literal, $text:literal;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vm])* $variant,)*
        }

        impl $name {
            /// The wire value.
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code,)* }
            }

            /// The value of a wire code, `None` for one this client does
            /// not know.
            pub fn from_code(code: i8) -> Option<$name> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }

            /// The name Kafka's tools use, e.g. `TOPIC`, `PREFIXED`,
            /// `DESCRIBE_CONFIGS`, `ALLOW`.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// Every value, in wire order.
            pub const ALL_VALUES: &'static [$name] = &[$($name::$variant,)*];
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;

            /// Reads a name in any case, with `-` or `_` between words.
            fn from_str(s: &str) -> Result<$name> {
                let wanted = s.trim().to_ascii_uppercase().replace('-', "_");
                $name::ALL_VALUES
                    .iter()
                    .copied()
                    .find(|v| v.as_str().replace('-', "_") == wanted)
                    .ok_or_else(|| Error::config(
                        stringify!($name),
                        format!("unknown value '{s}'"),
                    ))
            }
        }
    };
}

wire_enum! {
    /// What kind of resource an ACL is about.
    ResourceType {
        /// In a filter: any type.
        Any = 1, "ANY";
        /// A topic.
        Topic = 2, "TOPIC";
        /// A consumer group.
        Group = 3, "GROUP";
        /// The cluster (name `kafka-cluster`).
        Cluster = 4, "CLUSTER";
        /// A transactional id.
        TransactionalId = 5, "TRANSACTIONAL_ID";
        /// A delegation token.
        DelegationToken = 6, "DELEGATION_TOKEN";
        /// A user (for delegation tokens created on behalf of one).
        User = 7, "USER";
    }
}

wire_enum! {
    /// How an ACL's resource name matches.
    PatternType {
        /// In a filter: any pattern type.
        Any = 1, "ANY";
        /// In a filter: every ACL that applies to the filter's name
        /// (literal, wildcard and prefix matches).
        Match = 2, "MATCH";
        /// The name exactly (or `*`, every resource).
        Literal = 3, "LITERAL";
        /// Every resource whose name starts with the name.
        Prefixed = 4, "PREFIXED";
    }
}

wire_enum! {
    /// What an ACL allows or denies.
    AclOperation {
        /// In a filter: any operation.
        Any = 1, "ANY";
        /// Every operation.
        All = 2, "ALL";
        /// Read (fetch, commit offsets, join a group).
        Read = 3, "READ";
        /// Write (produce).
        Write = 4, "WRITE";
        /// Create topics.
        Create = 5, "CREATE";
        /// Delete topics, groups, records.
        Delete = 6, "DELETE";
        /// Alter (partitions, ACLs).
        Alter = 7, "ALTER";
        /// Describe (metadata, offsets, groups).
        Describe = 8, "DESCRIBE";
        /// Broker-to-broker actions.
        ClusterAction = 9, "CLUSTER_ACTION";
        /// Describe configs.
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        /// Alter configs.
        AlterConfigs = 11, "ALTER_CONFIGS";
        /// Idempotent produce.
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        /// Create delegation tokens.
        CreateTokens = 13, "CREATE_TOKENS";
        /// Describe delegation tokens.
        DescribeTokens = 14, "DESCRIBE_TOKENS";
        /// Two-phase commit of transactions (KIP-939).
        TwoPhaseCommit = 15, "TWO_PHASE_COMMIT";
    }
}

wire_enum! {
    /// Whether an ACL allows or denies.
    AclPermission {
        /// In a filter: either.
        Any = 1, "ANY";
        /// Denies (wins over any allow).
        Deny = 2, "DENY";
        /// Allows.
        Allow = 3, "ALLOW";
    }
}

impl AclOperation {
    /// The operations of an "authorized operations" bit field (bit `n`
    /// for the operation of code `n`); `None` for Kafka's "not asked for"
    /// value (`i32::MIN`).
    pub fn from_bits(bits: i32) -> Option<BTreeSet<AclOperation>> {
        (bits != i32::MIN).then(|| {
            (0..31)
                .filter(|n| bits & (1 << n) != 0)
                .filter_map(|n| AclOperation::from_code(n as i8))
                .collect()
        })
    }
}

/// One ACL: on this resource, this principal from this host may (or may
/// not) perform this operation.
///
/// ```
/// use klamm::admin::{AclBinding, AclOperation, PatternType};
/// let acl = AclBinding::allow_topic("User:alice", "orders-", PatternType::Prefixed, AclOperation::Read);
/// assert_eq!(acl.host, "*");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    /// The kind of resource.
    pub resource_type: ResourceType,
    /// The resource's name (`*` for all; `kafka-cluster` for the cluster).
    pub resource_name: String,
    /// How the name matches.
    pub pattern_type: PatternType,
    /// Who: `User:alice`, `User:*`.
    pub principal: String,
    /// From where: a host's address or `*`.
    pub host: String,
    /// What.
    pub operation: AclOperation,
    /// Allowed or denied.
    pub permission: AclPermission,
}

impl AclBinding {
    /// An allow ACL on a topic (or topics, with a prefix pattern) for
    /// `principal` from any host.
    pub fn allow_topic(
        principal: &str,
        topic: &str,
        pattern_type: PatternType,
        operation: AclOperation,
    ) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: topic.to_string(),
            pattern_type,
            principal: principal.to_string(),
            host: "*".to_string(),
            operation,
            permission: AclPermission::Allow,
        }
    }

    /// The first field that holds a filter's value (`Any`, `Match`),
    /// which an ACL cannot have.
    pub fn indefinite_field(&self) -> Option<&'static str> {
        if self.resource_type == ResourceType::Any {
            Some("the resource type")
        } else if matches!(self.pattern_type, PatternType::Any | PatternType::Match) {
            Some("the pattern type")
        } else if self.operation == AclOperation::Any {
            Some("the operation")
        } else if self.permission == AclPermission::Any {
            Some("the permission")
        } else {
            None
        }
    }

    /// The filter that matches exactly this ACL.
    pub fn to_filter(&self) -> AclBindingFilter {
        AclBindingFilter {
            resource_type: self.resource_type,
            resource_name: Some(self.resource_name.clone()),
            pattern_type: self.pattern_type,
            principal: Some(self.principal.clone()),
            host: Some(self.host.clone()),
            operation: self.operation,
            permission: self.permission,
        }
    }
}

impl std::fmt::Display for AclBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} on {} '{}' ({}) from {}",
            self.principal,
            self.permission,
            self.operation,
            self.resource_type,
            self.resource_name,
            self.pattern_type,
            self.host
        )
    }
}

/// Which ACLs to describe or delete: `None` and the `Any` values match
/// everything.
///
/// ```
/// use klamm::admin::{AclBindingFilter, ResourceType};
/// let alices = AclBindingFilter { principal: Some("User:alice".into()), ..AclBindingFilter::any() };
/// let on_topics = AclBindingFilter { resource_type: ResourceType::Topic, ..AclBindingFilter::any() };
/// # let _ = (alices, on_topics);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBindingFilter {
    /// The kind of resource, or `Any`.
    pub resource_type: ResourceType,
    /// The resource name, or `None` for any.
    pub resource_name: Option<String>,
    /// The pattern type, `Any`, or `Match` (every ACL that applies to
    /// `resource_name`).
    pub pattern_type: PatternType,
    /// The principal, or `None` for any.
    pub principal: Option<String>,
    /// The host, or `None` for any.
    pub host: Option<String>,
    /// The operation, or `Any`.
    pub operation: AclOperation,
    /// The permission, or `Any`.
    pub permission: AclPermission,
}

impl AclBindingFilter {
    /// The filter that matches every ACL.
    pub fn any() -> AclBindingFilter {
        AclBindingFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        }
    }
}

impl std::fmt::Display for AclBindingFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let or_any = |v: &Option<String>| v.clone().unwrap_or_else(|| "ANY".into());
        write!(
            f,
            "filter {} {} {} on {} '{}' ({}) from {}",
            or_any(&self.principal),
            self.permission,
            self.operation,
            self.resource_type,
            or_any(&self.resource_name),
            self.pattern_type,
            or_any(&self.host)
        )
    }
}

/// An ACL from the wire, `None` when it has a value this client does not
/// know.
fn binding(
    (resource_type, resource_name, pattern_type): (i8, String, i8),
    (principal, host, operation, permission): (String, String, i8, i8),
) -> Option<AclBinding> {
    Some(AclBinding {
        resource_type: ResourceType::from_code(resource_type)?,
        resource_name,
        pattern_type: PatternType::from_code(pattern_type)?,
        principal,
        host,
        operation: AclOperation::from_code(operation)?,
        permission: AclPermission::from_code(permission)?,
    })
}

impl Admin {
    /// Creates ACLs; each ACL's outcome on its own. Creating one that
    /// exists succeeds and changes nothing. An ACL with a filter's value
    /// (`Any`, `Match`) is refused before anything is sent, with an
    /// [`Error::Config`] (Kafka's controller would fail the whole request
    /// for it; Java's admin refuses it the same way).
    ///
    /// ```no_run
    /// use klamm::admin::{AclBinding, AclOperation, PatternType};
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let read = AclBinding::allow_topic("User:billing", "orders", PatternType::Literal, AclOperation::Read);
    /// let created = admin.create_acls(std::slice::from_ref(&read)).await;
    /// created[&read].as_ref().map_err(|e| e.to_string()).unwrap();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create_acls(&self, acls: &[AclBinding]) -> BTreeMap<AclBinding, Result<()>> {
        let (definite, indefinite): (Vec<&AclBinding>, Vec<&AclBinding>) =
            acls.iter().partition(|a| a.indefinite_field().is_none());
        let mut outcomes = self.create_definite(definite).await;
        for a in indefinite {
            let field = a.indefinite_field().unwrap_or_default();
            outcomes.insert(
                a.clone(),
                Err(Error::config(
                    "acl",
                    format!("{a}: {field} must name one value, not a filter's ANY or MATCH"),
                )),
            );
        }
        outcomes
    }

    async fn create_definite(&self, acls: Vec<&AclBinding>) -> BTreeMap<AclBinding, Result<()>> {
        self.per_item(
            ApiKey::CreateAcls,
            acls.into_iter().cloned(),
            |_| Route::Any,
            |conn, acls| async move {
                let req = CreateAclsRequest {
                    creations: acls
                        .iter()
                        .map(|a| AclCreation {
                            resource_type: a.resource_type.code(),
                            resource_name: a.resource_name.clone(),
                            resource_pattern_type: a.pattern_type.code(),
                            principal: a.principal.clone(),
                            host: a.host.clone(),
                            operation: a.operation.code(),
                            permission_type: a.permission.code(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                let resp = conn.send(&req).await?;
                // Results come in the order of the creations.
                Ok(acls
                    .into_iter()
                    .zip(resp.results)
                    .map(|(a, r)| {
                        let outcome = check(
                            ApiKey::CreateAcls,
                            r.error_code,
                            &a,
                            r.error_message.as_deref(),
                        );
                        (a, outcome)
                    })
                    .collect())
            },
        )
        .await
    }

    /// The ACLs that match `filter`, sorted.
    ///
    /// ```no_run
    /// use klamm::admin::AclBindingFilter;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let billing = AclBindingFilter { principal: Some("User:billing".into()), ..AclBindingFilter::any() };
    /// for acl in admin.describe_acls(&billing).await? {
    ///     println!("{acl}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn describe_acls(&self, filter: &AclBindingFilter) -> Result<Vec<AclBinding>> {
        self.single(ApiKey::DescribeAcls, Route::Any, |conn| async move {
            let req = DescribeAclsRequest {
                resource_type_filter: filter.resource_type.code(),
                resource_name_filter: filter.resource_name.clone(),
                pattern_type_filter: filter.pattern_type.code(),
                principal_filter: filter.principal.clone(),
                host_filter: filter.host.clone(),
                operation: filter.operation.code(),
                permission_type: filter.permission.code(),
                ..Default::default()
            };
            let resp = conn.send(&req).await?;
            check_top(
                &conn,
                ApiKey::DescribeAcls,
                resp.error_code,
                resp.error_message.as_deref(),
            )?;
            let mut acls: Vec<AclBinding> = resp
                .resources
                .into_iter()
                .flat_map(|r| {
                    let resource = (r.resource_type, r.resource_name, r.pattern_type);
                    r.acls.into_iter().filter_map(move |a| {
                        binding(
                            resource.clone(),
                            (a.principal, a.host, a.operation, a.permission_type),
                        )
                    })
                })
                .collect();
            acls.sort();
            Ok(acls)
        })
        .await
    }

    /// Deletes the ACLs each filter matches; each filter's outcome on its
    /// own: the ACLs it deleted, or its error (an ACL the broker could not
    /// delete fails its filter, naming the ACL).
    ///
    /// ```no_run
    /// use klamm::admin::{AclBindingFilter, ResourceType};
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let on_orders = AclBindingFilter {
    ///     resource_type: ResourceType::Topic,
    ///     resource_name: Some("orders".into()),
    ///     ..AclBindingFilter::any()
    /// };
    /// for (filter, outcome) in admin.delete_acls(&[on_orders]).await {
    ///     println!("{filter}: deleted {}", outcome?.len());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
    ) -> BTreeMap<AclBindingFilter, Result<Vec<AclBinding>>> {
        self.per_item(
            ApiKey::DeleteAcls,
            filters.iter().cloned(),
            |_| Route::Any,
            |conn, filters| async move {
                let req = DeleteAclsRequest {
                    filters: filters
                        .iter()
                        .map(|f| DeleteAclsFilter {
                            resource_type_filter: f.resource_type.code(),
                            resource_name_filter: f.resource_name.clone(),
                            pattern_type_filter: f.pattern_type.code(),
                            principal_filter: f.principal.clone(),
                            host_filter: f.host.clone(),
                            operation: f.operation.code(),
                            permission_type: f.permission.code(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                let resp = conn.send(&req).await?;
                Ok(filters
                    .into_iter()
                    .zip(resp.filter_results)
                    .map(|(f, r)| {
                        let outcome = check(
                            ApiKey::DeleteAcls,
                            r.error_code,
                            &f,
                            r.error_message.as_deref(),
                        )
                        .and_then(|()| {
                            let mut deleted = Vec::new();
                            for m in r.matching_acls {
                                let acl = binding(
                                    (m.resource_type, m.resource_name, m.pattern_type),
                                    (m.principal, m.host, m.operation, m.permission_type),
                                );
                                let label = acl
                                    .as_ref()
                                    .map(|a| a.to_string())
                                    .unwrap_or_else(|| "an ACL".into());
                                check(
                                    ApiKey::DeleteAcls,
                                    m.error_code,
                                    label,
                                    m.error_message.as_deref(),
                                )?;
                                deleted.extend(acl);
                            }
                            deleted.sort();
                            Ok(deleted)
                        });
                        (f, outcome)
                    })
                    .collect())
            },
        )
        .await
    }
}
