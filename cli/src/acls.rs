//! `klamm acls`: the jobs of kafka-acls.sh, and a declarative ACL table
//! applied with a dry run first.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use klamm::admin::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, AclTable, Admin, PatternType,
    ResourceType,
};
use klamm::{Error, Result};
use serde_json::{Value, json};

use crate::Outcome;
use crate::out::{Table, out, outcome_json, outln, print_json};

#[derive(Debug, Subcommand)]
pub enum AclsCommand {
    /// List the ACLs that match a filter (default: all).
    List(FilterArgs),
    /// Create ACLs: one per operation given.
    Create {
        /// Who: User:name.
        #[arg(long)]
        principal: String,
        /// What they may do (read, write, describe, …); repeatable.
        #[arg(long = "operation", required = true)]
        operations: Vec<String>,
        /// topic, group, cluster, transactional-id, delegation-token, user.
        #[arg(long = "resource-type")]
        resource_type: String,
        /// The resource's name (kafka-cluster for the cluster).
        #[arg(long = "resource-name")]
        resource_name: String,
        /// literal or prefixed.
        #[arg(long = "pattern-type", default_value = "literal")]
        pattern_type: String,
        /// From which host.
        #[arg(long, default_value = "*")]
        host: String,
        /// A deny ACL rather than an allow.
        #[arg(long)]
        deny: bool,
    },
    /// Delete the ACLs that match a filter (at least one of its fields, or
    /// --all).
    Delete {
        #[command(flatten)]
        filter: FilterArgs,
        /// Delete every ACL of the cluster.
        #[arg(long)]
        all: bool,
    },
    /// Make the ACLs of the principals a table names exactly the table's
    /// (lines of `RESOURCE PRINCIPAL OPERATIONS`; see the README): shows
    /// the changes, makes them unless --dry-run.
    Apply {
        /// The table.
        file: PathBuf,
        /// Show the changes only.
        #[arg(long = "dry-run")]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only this principal.
    #[arg(long)]
    pub principal: Option<String>,
    /// Only this resource type.
    #[arg(long = "resource-type")]
    pub resource_type: Option<String>,
    /// Only this resource name.
    #[arg(long = "resource-name")]
    pub resource_name: Option<String>,
    /// any (default), match (every ACL that applies to the name), literal,
    /// prefixed.
    #[arg(long = "pattern-type")]
    pub pattern_type: Option<String>,
    /// Only this operation.
    #[arg(long)]
    pub operation: Option<String>,
}

impl FilterArgs {
    fn filter(&self) -> Result<AclBindingFilter> {
        Ok(AclBindingFilter {
            resource_type: self
                .resource_type
                .as_deref()
                .map(str::parse)
                .transpose()?
                .unwrap_or(ResourceType::Any),
            resource_name: self.resource_name.clone(),
            pattern_type: self
                .pattern_type
                .as_deref()
                .map(str::parse)
                .transpose()?
                .unwrap_or(PatternType::Any),
            principal: self.principal.clone(),
            host: None,
            operation: self
                .operation
                .as_deref()
                .map(str::parse)
                .transpose()?
                .unwrap_or(AclOperation::Any),
            permission: AclPermission::Any,
        })
    }

    fn is_empty(&self) -> bool {
        self.principal.is_none()
            && self.resource_type.is_none()
            && self.resource_name.is_none()
            && self.pattern_type.is_none()
            && self.operation.is_none()
    }
}

fn acl_json(a: &AclBinding) -> Value {
    json!({
        "principal": a.principal, "permission": a.permission.as_str(), "operation": a.operation.as_str(),
        "resource_type": a.resource_type.as_str(), "resource_name": a.resource_name,
        "pattern_type": a.pattern_type.as_str(), "host": a.host,
    })
}

fn print_acls(acls: &[AclBinding]) {
    let mut t = Table::new(&[
        "PRINCIPAL",
        "PERMISSION",
        "OPERATION",
        "RESOURCE-TYPE",
        "RESOURCE-NAME",
        "PATTERN",
        "HOST",
    ]);
    for a in acls {
        t.row(vec![
            a.principal.clone(),
            a.permission.to_string(),
            a.operation.to_string(),
            a.resource_type.to_string(),
            a.resource_name.clone(),
            a.pattern_type.to_string(),
            a.host.clone(),
        ]);
    }
    t.print();
}

pub async fn run(admin: &Admin, command: AclsCommand, json_out: bool) -> Result<Outcome> {
    match command {
        AclsCommand::List(f) => {
            let acls = admin.describe_acls(&f.filter()?).await?;
            if json_out {
                print_json(&Value::Array(acls.iter().map(acl_json).collect()));
            } else {
                print_acls(&acls);
            }
            Ok(Outcome::Done)
        }
        AclsCommand::Create {
            principal,
            operations,
            resource_type,
            resource_name,
            pattern_type,
            host,
            deny,
        } => {
            let resource_type: ResourceType = resource_type.parse()?;
            let pattern_type: PatternType = pattern_type.parse()?;
            let acls = operations
                .iter()
                .map(|op| {
                    Ok(AclBinding {
                        resource_type,
                        resource_name: resource_name.clone(),
                        pattern_type,
                        principal: principal.clone(),
                        host: host.clone(),
                        operation: op.parse()?,
                        permission: if deny {
                            AclPermission::Deny
                        } else {
                            AclPermission::Allow
                        },
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let created = admin.create_acls(&acls).await;
            if json_out {
                print_json(&Value::Array(
                    created
                        .iter()
                        .map(|(a, r)| {
                            let mut v = outcome_json(r);
                            v["acl"] = acl_json(a);
                            v
                        })
                        .collect(),
                ));
            } else {
                for (a, r) in &created {
                    match r {
                        Ok(()) => outln!("created: {a}"),
                        Err(e) => outln!("failed: {a}: {e}"),
                    }
                }
            }
            Ok(Outcome::of(created.values().all(|r| r.is_ok())))
        }
        AclsCommand::Delete { filter, all } => {
            if filter.is_empty() && !all {
                return Err(Error::config(
                    "acls delete",
                    "give a filter (--principal, --resource-name, …) or --all",
                ));
            }
            let f = filter.filter()?;
            let mut deleted = admin.delete_acls(std::slice::from_ref(&f)).await;
            match deleted.remove(&f) {
                Some(Ok(acls)) => {
                    if json_out {
                        print_json(&Value::Array(acls.iter().map(acl_json).collect()));
                    } else {
                        outln!("deleted {} ACL(s):", acls.len());
                        print_acls(&acls);
                    }
                    Ok(Outcome::Done)
                }
                Some(Err(e)) => Err(e),
                None => Ok(Outcome::SomeFailed),
            }
        }
        AclsCommand::Apply { file, dry_run } => {
            let table = AclTable::from_file(&file)?;
            let plan = if dry_run {
                admin.plan_acls(&table).await?
            } else {
                admin.apply_acls(&table).await?
            };
            if json_out {
                let change = |sign: &str, a: &AclBinding| {
                    let mut v = acl_json(a);
                    v["change"] = json!(sign);
                    if let Some(r) = plan.outcomes.get(a) {
                        v["outcome"] = outcome_json(r);
                    }
                    v
                };
                let changes: Vec<Value> = plan
                    .create
                    .iter()
                    .map(|a| change("create", a))
                    .chain(plan.delete.iter().map(|a| change("delete", a)))
                    .collect();
                print_json(&json!({"dry_run": dry_run, "changes": changes}));
            } else {
                out!("{plan}");
                if dry_run && !plan.is_empty() {
                    outln!("(a dry run: run without --dry-run to make these changes)");
                }
            }
            Ok(Outcome::of(plan.succeeded()))
        }
    }
}
