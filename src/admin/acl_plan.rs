//! Declarative ACLs: the wanted table of resource → principal →
//! operations, compared with what the cluster has, and the exact creates
//! and deletes that make the two agree.

use std::collections::{BTreeMap, BTreeSet};

use super::Admin;
use super::acls::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, PatternType, ResourceType,
};
use crate::error::{Error, Result};

/// One row of an [`AclTable`]: `principal` may perform `operations` on a
/// resource, from any host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AclTableEntry {
    /// The kind of resource.
    pub resource_type: ResourceType,
    /// Its name (`kafka-cluster` for the cluster).
    pub resource_name: String,
    /// Literal or prefixed.
    pub pattern_type: PatternType,
    /// Who (`User:alice`).
    pub principal: String,
    /// What they may do.
    pub operations: BTreeSet<AclOperation>,
}

/// The ACLs a cluster should have, for the principals it names: every
/// ACL of such a principal that the table does not list is deleted by
/// [`Admin::apply_acls`], every listed one missing is created. ACLs of
/// principals the table does not name are left alone; a principal listed
/// with [`manage`](Self::manage) and no rows loses all its ACLs.
///
/// The text form has one row per line — resource, principal, operations
/// separated by commas — with `#` comments:
///
/// ```
/// use klamm::admin::AclTable;
///
/// let table: AclTable = "
///     orders                   User:billing  read,describe   # a topic
///     topic-prefix:audit-      User:auditor  read
///     group:billing            User:billing  read
///     transactional-id:pay-1   User:billing  write,describe
///     cluster                  User:billing  idempotent-write
/// ".parse()?;
/// assert_eq!(table.entries().len(), 5);
/// assert_eq!(table.bindings().len(), 7);
/// # Ok::<(), klamm::Error>(())
/// ```
///
/// A bare resource name is a topic; the prefixes are `topic:`,
/// `topic-prefix:`, `group:`, `group-prefix:`, `transactional-id:`,
/// `transactional-id-prefix:` and `cluster`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclTable {
    entries: Vec<AclTableEntry>,
    principals: BTreeSet<String>,
}

impl AclTable {
    /// An empty table (managing no principal).
    pub fn new() -> AclTable {
        AclTable::default()
    }

    /// The same table with `principal` allowed `operations` on a
    /// resource.
    pub fn allow(
        mut self,
        resource_type: ResourceType,
        resource_name: &str,
        pattern_type: PatternType,
        principal: &str,
        operations: impl IntoIterator<Item = AclOperation>,
    ) -> AclTable {
        self.principals.insert(principal.to_string());
        self.entries.push(AclTableEntry {
            resource_type,
            resource_name: resource_name.to_string(),
            pattern_type,
            principal: principal.to_string(),
            operations: operations.into_iter().collect(),
        });
        self
    }

    /// The same table with `principal` allowed `operations` on the topic.
    pub fn allow_topic(
        self,
        topic: &str,
        principal: &str,
        operations: impl IntoIterator<Item = AclOperation>,
    ) -> AclTable {
        self.allow(
            ResourceType::Topic,
            topic,
            PatternType::Literal,
            principal,
            operations,
        )
    }

    /// The same table managing `principal`'s ACLs even without rows for
    /// it (so applying it removes them all).
    pub fn manage(mut self, principal: &str) -> AclTable {
        self.principals.insert(principal.to_string());
        self
    }

    /// The rows.
    pub fn entries(&self) -> &[AclTableEntry] {
        &self.entries
    }

    /// The principals whose ACLs the table manages.
    pub fn principals(&self) -> &BTreeSet<String> {
        &self.principals
    }

    /// The ACLs the table wants: one allow ACL per row and operation,
    /// from any host.
    pub fn bindings(&self) -> BTreeSet<AclBinding> {
        self.entries
            .iter()
            .flat_map(|e| {
                e.operations.iter().map(move |op| AclBinding {
                    resource_type: e.resource_type,
                    resource_name: e.resource_name.clone(),
                    pattern_type: e.pattern_type,
                    principal: e.principal.clone(),
                    host: "*".to_string(),
                    operation: *op,
                    permission: AclPermission::Allow,
                })
            })
            .collect()
    }

    /// Reads a table from a file in the text form.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<AclTable> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(
                path.display().to_string(),
                format!("cannot read the ACL table: {e}"),
            )
        })?;
        text.parse()
    }

    /// What applying the table to a cluster that has `existing` ACLs
    /// does (pure: no broker involved).
    pub fn plan(&self, existing: &[AclBinding]) -> AclPlan {
        let wanted = self.bindings();
        let managed: BTreeSet<&AclBinding> = existing
            .iter()
            .filter(|a| self.principals.contains(&a.principal))
            .collect();
        AclPlan {
            create: wanted
                .iter()
                .filter(|a| !managed.contains(a))
                .cloned()
                .collect(),
            delete: managed
                .into_iter()
                .filter(|a| !wanted.contains(*a))
                .cloned()
                .collect(),
            outcomes: BTreeMap::new(),
        }
    }
}

impl std::str::FromStr for AclTable {
    type Err = Error;

    fn from_str(text: &str) -> Result<AclTable> {
        let mut table = AclTable::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = |why: String| Error::config(format!("ACL table line {}", n + 1), why);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [resource, principal, operations] = fields[..] else {
                return Err(bad(format!(
                    "expected 'resource principal operations', got '{line}'"
                )));
            };
            if !principal.contains(':') {
                return Err(bad(format!(
                    "principal '{principal}' should look like User:name"
                )));
            }
            let (resource_type, pattern_type, name) = parse_resource(resource).map_err(bad)?;
            let operations = operations
                .split(',')
                .filter(|o| !o.is_empty())
                .map(|o| o.parse::<AclOperation>())
                .collect::<Result<BTreeSet<_>>>()
                .map_err(|e| bad(e.to_string()))?;
            if operations.is_empty() || operations.contains(&AclOperation::Any) {
                return Err(bad(
                    "operations must name at least one operation (not ANY)".into()
                ));
            }
            table = table.allow(resource_type, &name, pattern_type, principal, operations);
        }
        Ok(table)
    }
}

fn parse_resource(s: &str) -> std::result::Result<(ResourceType, PatternType, String), String> {
    if s == "cluster" {
        return Ok((
            ResourceType::Cluster,
            PatternType::Literal,
            "kafka-cluster".into(),
        ));
    }
    let (kind, name) = s.split_once(':').unwrap_or(("topic", s));
    let (resource_type, pattern_type) = match kind {
        "topic" => (ResourceType::Topic, PatternType::Literal),
        "topic-prefix" => (ResourceType::Topic, PatternType::Prefixed),
        "group" => (ResourceType::Group, PatternType::Literal),
        "group-prefix" => (ResourceType::Group, PatternType::Prefixed),
        "transactional-id" => (ResourceType::TransactionalId, PatternType::Literal),
        "transactional-id-prefix" => (ResourceType::TransactionalId, PatternType::Prefixed),
        other => return Err(format!("unknown resource kind '{other}' in '{s}'")),
    };
    if name.is_empty() {
        return Err(format!("resource '{s}' has no name"));
    }
    Ok((resource_type, pattern_type, name.to_string()))
}

/// The changes that make a cluster's ACLs match an [`AclTable`], and,
/// once applied, each change's outcome.
#[derive(Debug, Default)]
pub struct AclPlan {
    /// ACLs to create.
    pub create: BTreeSet<AclBinding>,
    /// ACLs to delete.
    pub delete: BTreeSet<AclBinding>,
    /// After [`Admin::apply_acls`]: each change's outcome (empty for a
    /// dry run).
    pub outcomes: BTreeMap<AclBinding, Result<()>>,
}

impl AclPlan {
    /// Whether there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.delete.is_empty()
    }

    /// Whether every applied change succeeded.
    pub fn succeeded(&self) -> bool {
        self.outcomes.values().all(|o| o.is_ok())
    }
}

impl std::fmt::Display for AclPlan {
    /// One line per change: `+ ACL` to create, `- ACL` to delete, and
    /// the outcome after it once applied.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return writeln!(f, "ACLs already as the table says: nothing to change");
        }
        for (sign, acls) in [('+', &self.create), ('-', &self.delete)] {
            for acl in acls {
                write!(f, "{sign} {acl}")?;
                match self.outcomes.get(acl) {
                    Some(Ok(())) => writeln!(f, "  [done]")?,
                    Some(Err(e)) => writeln!(f, "  [failed: {e}]")?,
                    None => writeln!(f)?,
                }
            }
        }
        Ok(())
    }
}

impl Admin {
    /// What [`apply_acls`](Self::apply_acls) would change, without
    /// changing it (the dry run).
    ///
    /// ```no_run
    /// use klamm::admin::AclTable;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let table = AclTable::from_file("acls.txt")?;
    /// let plan = admin.plan_acls(&table).await?;
    /// print!("{plan}"); // + to create, - to delete
    /// # Ok(())
    /// # }
    /// ```
    pub async fn plan_acls(&self, table: &AclTable) -> Result<AclPlan> {
        let mut existing = Vec::new();
        for principal in table.principals() {
            let filter = AclBindingFilter {
                principal: Some(principal.clone()),
                ..AclBindingFilter::any()
            };
            existing.extend(self.describe_acls(&filter).await?);
        }
        Ok(table.plan(&existing))
    }

    /// Makes the cluster's ACLs for the table's principals exactly the
    /// table's: creates the missing ones, deletes the others (each with a
    /// filter that matches it alone). Applying the same table again
    /// changes nothing. The plan comes back with each change's outcome.
    ///
    /// ```no_run
    /// use klamm::admin::{AclOperation, AclTable};
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let table = AclTable::new()
    ///     .allow_topic("orders", "User:billing", [AclOperation::Read, AclOperation::Describe]);
    /// println!("{}", admin.plan_acls(&table).await?); // dry run
    /// let applied = admin.apply_acls(&table).await?;
    /// assert!(applied.succeeded());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn apply_acls(&self, table: &AclTable) -> Result<AclPlan> {
        let mut plan = self.plan_acls(table).await?;
        let create: Vec<AclBinding> = plan.create.iter().cloned().collect();
        if !create.is_empty() {
            plan.outcomes.extend(self.create_acls(&create).await);
        }
        let filters: Vec<AclBindingFilter> = plan.delete.iter().map(|a| a.to_filter()).collect();
        if !filters.is_empty() {
            let deleted = self.delete_acls(&filters).await;
            for acl in &plan.delete {
                let outcome = match deleted.get(&acl.to_filter()) {
                    Some(Ok(_)) => Ok(()),
                    Some(Err(e)) => Err(e.duplicate()),
                    None => Err(Error::State {
                        reason: format!("no outcome for deleting {acl}"),
                    }),
                };
                plan.outcomes.insert(acl.clone(), outcome);
            }
        }
        Ok(plan)
    }
}
