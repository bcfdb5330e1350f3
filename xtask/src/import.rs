//! `cargo xtask import-specs <path>`: reads Apache Kafka's JSON message
//! definitions and writes klamm's spec files. Only facts are carried over
//! (names, types, versions, tags, defaults, flags); descriptions are not.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value};

use crate::merge;
use crate::spec::{self, CommonStruct, Field, Kind, Spec, Versions};

/// Removes `//` comments (outside string literals) from Kafka's JSON files.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') {
            for n in chars.by_ref() {
                if n == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn str_attr(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(v) => Err(format!("`{key}` has an unexpected value {v}")),
    }
}

fn versions_attr(obj: &Map<String, Value>, key: &str) -> Result<Option<Versions>, String> {
    str_attr(obj, key)?.map(|s| Versions::parse(&s)).transpose()
}

const FIELD_KEYS: &[&str] = &[
    "name",
    "type",
    "versions",
    "nullableVersions",
    "taggedVersions",
    "tag",
    "ignorable",
    "default",
    "entityType",
    "mapKey",
    "zeroCopy",
    "flexibleVersions",
    "fields",
    "about",
];

fn import_field(v: &Value) -> Result<Field, String> {
    let obj = v.as_object().ok_or("a field is not an object")?;
    if let Some(k) = obj.keys().find(|k| !FIELD_KEYS.contains(&k.as_str())) {
        return Err(format!("unknown field key `{k}`"));
    }
    let name = str_attr(obj, "name")?.ok_or("field without name")?;
    let ty = str_attr(obj, "type")?.ok_or_else(|| format!("field {name} without type"))?;
    let bool_attr = |k: &str| obj.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut default = str_attr(obj, "default")?;
    if ty == "bool" {
        // Kafka's files write booleans both as `false` and `False`.
        default = default.map(|d| d.to_ascii_lowercase());
    }
    let fields = match obj.get("fields") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.iter().map(import_field).collect::<Result<_, _>>()?,
        Some(_) => return Err(format!("field {name}: fields is not an array")),
    };
    Ok(Field {
        versions: versions_attr(obj, "versions")?
            .ok_or_else(|| format!("field {name} without versions"))?,
        nullable: versions_attr(obj, "nullableVersions")?,
        tagged: versions_attr(obj, "taggedVersions")?,
        tag: str_attr(obj, "tag")?
            .map(|t| {
                t.parse::<u32>()
                    .map_err(|_| format!("field {name}: bad tag {t}"))
            })
            .transpose()?,
        ignorable: bool_attr("ignorable"),
        default,
        entity: str_attr(obj, "entityType")?,
        map_key: bool_attr("mapKey"),
        zero_copy: bool_attr("zeroCopy"),
        flexible: versions_attr(obj, "flexibleVersions")?,
        fields,
        name,
        ty,
    })
}

const MESSAGE_KEYS: &[&str] = &[
    "apiKey",
    "type",
    "name",
    "validVersions",
    "flexibleVersions",
    "deprecatedVersions",
    "listeners",
    "latestVersionUnstable",
    "fields",
    "commonStructs",
];

pub fn import_message(json_text: &str) -> Result<Spec, String> {
    let v: Value = serde_json::from_str(&strip_comments(json_text)).map_err(|e| e.to_string())?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    if let Some(k) = obj.keys().find(|k| !MESSAGE_KEYS.contains(&k.as_str())) {
        return Err(format!("unknown message key `{k}`"));
    }
    let kind = match str_attr(obj, "type")?.as_deref() {
        Some("request") => Kind::Request,
        Some("response") => Kind::Response,
        Some("header") => Kind::Header,
        Some("data") => Kind::Data,
        other => return Err(format!("unknown message type {other:?}")),
    };
    let name = str_attr(obj, "name")?.ok_or("message without name")?;
    let fields_of = |v: Option<&Value>| -> Result<Vec<Field>, String> {
        match v {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a.iter().map(import_field).collect(),
            Some(_) => Err("fields is not an array".into()),
        }
    };
    let mut common = Vec::new();
    if let Some(Value::Array(cs)) = obj.get("commonStructs") {
        for c in cs {
            let c = c.as_object().ok_or("common struct is not an object")?;
            common.push(CommonStruct {
                name: str_attr(c, "name")?.ok_or("common struct without name")?,
                versions: versions_attr(c, "versions")?.ok_or("common struct without versions")?,
                fields: fields_of(c.get("fields"))?,
            });
        }
    }
    let valid = versions_attr(obj, "validVersions")?.ok_or("no validVersions")?;
    Ok(Spec {
        kind,
        api_key: str_attr(obj, "apiKey")?
            .map(|k| k.parse::<i16>().map_err(|_| format!("bad apiKey {k}")))
            .transpose()?,
        valid,
        // A message Kafka removed (`validVersions: none`) has no versions
        // left to be flexible.
        flexible: match versions_attr(obj, "flexibleVersions")? {
            Some(f) => f,
            None if valid == Versions::None => Versions::None,
            None => return Err("no flexibleVersions".into()),
        },
        deprecated: versions_attr(obj, "deprecatedVersions")?,
        listeners: match obj.get("listeners") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|l| l.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        },
        latest_unstable: obj.get("latestVersionUnstable").and_then(Value::as_bool),
        fields: fields_of(obj.get("fields"))?,
        common,
        name,
    })
}

/// Finds the message folder: the path itself, or Kafka's source layout
/// below a checkout.
fn message_dir(path: &Path) -> PathBuf {
    let nested = path.join("clients/src/main/resources/common/message");
    if nested.is_dir() {
        nested
    } else {
        path.to_path_buf()
    }
}

/// Downloads `org.apache.kafka:kafka-clients:<release>` with Maven (`$MVN`,
/// default `mvn`) and unpacks its `common/message/*.json` with the JDK's
/// `jar` tool (`$JAR`, default `jar`) into a fresh folder; returns it.
pub fn fetch_release(release: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("klamm-import-{release}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mvn = std::env::var("MVN").unwrap_or_else(|_| "mvn".into());
    let status = Command::new(&mvn)
        .args(["-q", "-B", "dependency:copy"])
        .arg(format!(
            "-Dartifact=org.apache.kafka:kafka-clients:{release}:jar"
        ))
        .arg(format!("-DoutputDirectory={}", dir.display()))
        .status()
        .map_err(|e| format!("running {mvn}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "{mvn} could not fetch org.apache.kafka:kafka-clients:{release} ({status})"
        ));
    }
    let jar_file = dir.join(format!("kafka-clients-{release}.jar"));
    let jar = std::env::var("JAR").unwrap_or_else(|_| "jar".into());
    let status = Command::new(&jar)
        .arg("xf")
        .arg(&jar_file)
        .arg("common/message")
        .current_dir(&dir)
        .status()
        .map_err(|e| format!("running {jar}: {e}"))?;
    let messages = dir.join("common/message");
    if !status.success() || !messages.is_dir() {
        return Err(format!(
            "{} has no common/message folder ({status})",
            jar_file.display()
        ));
    }
    Ok(messages)
}

/// The specs of the previous import, each with the release its oldest
/// versions came from, and that import's release.
type Previous = (Vec<(Spec, String)>, Option<String>);

/// The release the versions kept in a previous spec came from: named in
/// its header when that import already kept them, else `prev`.
fn kept_from(text: &str, prev: &str) -> String {
    let header: String = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    for (start, end) in [("previous import (", ")"), ("as ", " defined it")] {
        if let Some(i) = header.find(start) {
            let rest = &header[i + start.len()..];
            if let Some(j) = rest.find(end) {
                return rest[..j].to_string();
            }
        }
    }
    prev.to_string()
}

/// Reads the specs of the previous import in `out_dir`, if any, each with
/// the release its oldest versions came from.
fn previous(out_dir: &Path) -> Result<Previous, String> {
    let mut specs = Vec::new();
    let Ok(dir) = std::fs::read_dir(out_dir) else {
        return Ok((specs, None));
    };
    let mut paths: Vec<PathBuf> = dir
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "spec"))
        .collect();
    paths.sort();
    let release = std::fs::read_to_string(out_dir.join("KAFKA_RELEASE"))
        .ok()
        .map(|r| r.trim().to_string());
    let prev = release.as_deref().unwrap_or("an earlier release");
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let spec = spec::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        specs.push((spec, kept_from(&text, prev)));
    }
    Ok((specs, release))
}

/// Imports the message definitions in `path` (a Kafka checkout or a
/// folder of JSON files) as release `release`, merged with the previous
/// import in `out_dir` so no version klamm had is lost (see
/// [`crate::merge`]).
pub fn run(path: &Path, release: &str, out_dir: &Path) -> Result<(), String> {
    let dir = message_dir(path);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    if entries.is_empty() {
        return Err(format!(
            "no *.json message definitions in {}",
            dir.display()
        ));
    }
    let (old, _) = previous(out_dir)?;
    let mut written: Vec<(Spec, String)> = Vec::new();
    let mut used = vec![false; old.len()];
    let mut kept = 0;
    for p in &entries {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let new = import_message(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        // The previous definition: by name, or a message renamed under
        // the same API key (ListClientMetricsResources became
        // ListConfigResources in 4.1).
        let before = old
            .iter()
            .position(|(o, _)| o.name == new.name)
            .or_else(|| {
                old.iter().position(|(o, _)| {
                    new.api_key.is_some() && o.api_key == new.api_key && o.kind == new.kind
                })
            });
        let mut header = format!(
            "Facts of Kafka's {} (Apache Kafka {release}), imported by `cargo xtask import-specs`.",
            new.name
        );
        let spec = match before {
            None => new,
            Some(i) => {
                used[i] = true;
                let (o, prev) = &old[i];
                if new.valid == Versions::None {
                    header = format!(
                        "Facts of Kafka's {} as {prev} defined it; Apache Kafka {release} no longer \
                         does (klamm still speaks it to older brokers).",
                        o.name
                    );
                } else if merge::drops_versions(o, &new) {
                    let min = new.valid.min().unwrap_or(0);
                    header.push_str(&format!(
                        "\nVersions below {min}, which {release} no longer defines, are kept from \
                         the previous import ({prev}) for older brokers."
                    ));
                }
                merge::merge(o, &new)?
            }
        };
        written.push((spec, header));
    }
    for ((o, prev), used) in old.iter().zip(&used) {
        if !used {
            kept += 1;
            let header = format!(
                "Facts of Kafka's {} as {prev} defined it; Apache Kafka {release} has no \
                 definition of it.",
                o.name
            );
            written.push((o.clone(), header));
        }
    }
    // Remove old spec files so that a renamed message leaves no copy.
    for (o, _) in &old {
        let _ = std::fs::remove_file(out_dir.join(format!("{}.spec", o.name)));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| e.to_string())?;
    for (spec, header) in &written {
        let out = spec::write(spec, header);
        // Everything written must parse back to the same facts.
        let back = spec::parse(&out).map_err(|e| format!("{}: re-parse: {e}", spec.name))?;
        if &back != spec {
            return Err(format!(
                "{}: the written spec does not parse back identically",
                spec.name
            ));
        }
        let file = out_dir.join(format!("{}.spec", spec.name));
        std::fs::write(&file, out).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    std::fs::write(out_dir.join("KAFKA_RELEASE"), format!("{release}\n"))
        .map_err(|e| e.to_string())?;
    println!(
        "imported {} message definitions from {} ({kept} kept from earlier releases only)",
        entries.len(),
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_comments_but_not_urls_in_strings() {
        let s = strip_comments("{ // c\n \"a\": \"http://x\" // d\n}");
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["a"], "http://x");
    }

    #[test]
    fn imports_facts_without_prose() {
        let json = r#"{ "apiKey": 7, "type": "request", "name": "XRequest",
          "validVersions": "0-2", "flexibleVersions": "2+", "listeners": ["broker"],
          "fields": [
            { "name": "A", "type": "[]B", "versions": "0+", "about": "prose",
              "fields": [ { "name": "C", "type": "bool", "versions": "1+", "default": "False",
                            "taggedVersions": "2+", "tag": "0", "ignorable": true } ] } ] }"#;
        let spec = import_message(json).unwrap();
        let text = spec::write(&spec, "h");
        assert!(!text.contains("prose"));
        assert!(text.contains("C bool versions=1+ tagged=2+ tag=0 default=false ignorable"));
    }
}
