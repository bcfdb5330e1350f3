//! `klamm configs`: the jobs of kafka-configs.sh.

use clap::{Subcommand, ValueEnum};
use klamm::admin::{Admin, AlterConfigOp, ConfigResource, ConfigResourceType, ConfigSource};
use klamm::{Error, Result};
use serde_json::{Value, json};

use crate::Outcome;
use crate::out::{Table, error_json, opt, outln, print_json};
use crate::topics::report;

/// The kinds of resource with configs.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EntityType {
    Topic,
    Broker,
    BrokerLogger,
    Group,
    ClientMetrics,
}

impl EntityType {
    fn resource(self, name: &str) -> ConfigResource {
        let kind = match self {
            EntityType::Topic => ConfigResourceType::Topic,
            EntityType::Broker => ConfigResourceType::Broker,
            EntityType::BrokerLogger => ConfigResourceType::BrokerLogger,
            EntityType::Group => ConfigResourceType::Group,
            EntityType::ClientMetrics => ConfigResourceType::ClientMetrics,
        };
        ConfigResource::new(kind, name)
    }
}

#[derive(Debug, Subcommand)]
pub enum ConfigsCommand {
    /// Show a resource's configs: the ones set on it (dynamic), or --all.
    Describe {
        /// The kind of resource.
        #[arg(long = "entity-type", value_enum)]
        entity_type: EntityType,
        /// Its name (a topic, a broker id, a group; empty for the
        /// cluster-wide broker defaults).
        #[arg(long = "entity-name", default_value = "")]
        entity_name: String,
        /// Every config, with its source, not only the ones set on it.
        #[arg(long)]
        all: bool,
        /// Each config's values at lower-precedence sources too.
        #[arg(long)]
        synonyms: bool,
    },
    /// Change configs incrementally: the others stay as they are.
    Alter {
        /// The kind of resource.
        #[arg(long = "entity-type", value_enum)]
        entity_type: EntityType,
        /// Its name.
        #[arg(long = "entity-name", default_value = "")]
        entity_name: String,
        /// Set: k=v,k2=v2 (a list value in brackets: k=[a,b]); repeatable.
        #[arg(long = "add-config")]
        add: Vec<String>,
        /// Remove the resource's own value: k,k2; repeatable.
        #[arg(long = "delete-config")]
        delete: Vec<String>,
        /// Add to a list config: k=v; repeatable.
        #[arg(long = "append-config")]
        append: Vec<String>,
        /// Remove from a list config: k=v; repeatable.
        #[arg(long = "subtract-config")]
        subtract: Vec<String>,
        /// Check, change nothing.
        #[arg(long = "validate-only")]
        validate_only: bool,
    },
}

/// Splits at commas outside square brackets: `a=1,b=[x,y]` → `a=1`,
/// `b=[x,y]`.
pub fn split_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `k=v` with brackets around a list value dropped.
fn pair(s: &str, flag: &str) -> Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| Error::config(s.to_string(), format!("{flag} takes KEY=VALUE")))?;
    let v = v
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(v);
    Ok((k.trim().to_string(), v.to_string()))
}

/// The operations the flags ask for.
pub fn operations(
    add: &[String],
    delete: &[String],
    append: &[String],
    subtract: &[String],
) -> Result<Vec<AlterConfigOp>> {
    let mut ops = Vec::new();
    for s in add.iter().flat_map(|a| split_list(a)) {
        let (k, v) = pair(&s, "--add-config")?;
        ops.push(AlterConfigOp::set(k, v));
    }
    for k in delete.iter().flat_map(|d| split_list(d)) {
        ops.push(AlterConfigOp::delete(k));
    }
    for s in append {
        let (k, v) = pair(s, "--append-config")?;
        ops.push(AlterConfigOp::append(k, v));
    }
    for s in subtract {
        let (k, v) = pair(s, "--subtract-config")?;
        ops.push(AlterConfigOp::subtract(k, v));
    }
    if ops.is_empty() {
        return Err(Error::config(
            "configs alter",
            "nothing to change: give --add-config, --delete-config, --append-config or --subtract-config",
        ));
    }
    Ok(ops)
}

pub async fn run(admin: &Admin, command: ConfigsCommand, json_out: bool) -> Result<Outcome> {
    match command {
        ConfigsCommand::Describe {
            entity_type,
            entity_name,
            all,
            synonyms,
        } => {
            let resource = entity_type.resource(&entity_name);
            let mut described = admin
                .describe_configs_with(std::slice::from_ref(&resource), &[], synonyms, false)
                .await;
            let entries = match described.remove(&resource) {
                Some(Ok(e)) => e,
                Some(Err(e)) => {
                    if json_out {
                        print_json(&error_json(&e));
                        return Ok(Outcome::SomeFailed);
                    }
                    return Err(e);
                }
                None => return Ok(Outcome::SomeFailed),
            };
            let cluster_defaults =
                resource.resource_type == ConfigResourceType::Broker && resource.name.is_empty();
            let set_here = |source: ConfigSource| match source {
                ConfigSource::DynamicDefaultBroker => cluster_defaults,
                ConfigSource::Default | ConfigSource::StaticBroker | ConfigSource::Unknown => false,
                _ => !cluster_defaults,
            };
            let shown: Vec<_> = entries
                .iter()
                .filter(|e| all || set_here(e.source))
                .collect();
            if json_out {
                let v: serde_json::Map<String, Value> = shown
                    .iter()
                    .map(|e| {
                        (e.name.clone(), json!({
                            "value": e.value, "source": e.source.as_str(), "read_only": e.read_only, "sensitive": e.sensitive,
                            "synonyms": e.synonyms.iter().map(|s| json!({"name": s.name, "value": s.value, "source": s.source.as_str()})).collect::<Vec<_>>(),
                        }))
                    })
                    .collect();
                print_json(&Value::Object(v));
            } else {
                outln!(
                    "configs of {resource}{}:",
                    if all { "" } else { " set on it" }
                );
                let mut t = Table::new(&["NAME", "VALUE", "SOURCE", "READ-ONLY"]);
                for e in &shown {
                    let value = if e.sensitive {
                        "(sensitive)".to_string()
                    } else {
                        opt(e.value.as_ref())
                    };
                    t.row(vec![
                        e.name.clone(),
                        value,
                        e.source.as_str().to_string(),
                        e.read_only.to_string(),
                    ]);
                    for s in &e.synonyms {
                        t.row(vec![
                            format!("  {}", s.name),
                            opt(s.value.as_ref()),
                            s.source.as_str().to_string(),
                            String::new(),
                        ]);
                    }
                }
                t.print();
            }
            Ok(Outcome::Done)
        }
        ConfigsCommand::Alter {
            entity_type,
            entity_name,
            add,
            delete,
            append,
            subtract,
            validate_only,
        } => {
            let resource = entity_type.resource(&entity_name);
            let ops = operations(&add, &delete, &append, &subtract)?;
            let altered = admin
                .incremental_alter_configs_with(&[(resource, ops)], validate_only)
                .await;
            report(
                &altered,
                json_out,
                if validate_only { "valid" } else { "altered" },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_keep_bracketed_values_whole() {
        assert_eq!(
            split_list("a=1,b=[x,y], c=2"),
            vec!["a=1", "b=[x,y]", "c=2"]
        );
        let ops = operations(
            &["retention.ms=1000,cleanup.policy=[compact,delete]".into()],
            &["x".into()],
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(
            ops,
            vec![
                AlterConfigOp::set("retention.ms", "1000"),
                AlterConfigOp::set("cleanup.policy", "compact,delete"),
                AlterConfigOp::delete("x"),
            ]
        );
        assert!(operations(&[], &[], &[], &[]).is_err());
        assert!(operations(&["novalue".into()], &[], &[], &[]).is_err());
    }
}
