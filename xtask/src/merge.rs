//! Keeping the versions a new Kafka release no longer defines.
//!
//! Apache Kafka 4.0 stopped accepting many old versions (KIP-896) and
//! removed their definitions from its JSON files; klamm still speaks them
//! to older brokers. When a release is imported, each message is merged
//! with the spec of the previous import: the version range becomes the
//! union, fields keep their position, and a field that only old versions
//! had stays where it was. The merge is then checked version by version:
//! at every version the previous spec defined, the merged spec must lay
//! out exactly the same fields as before, and at every version the new
//! release defines, exactly what the release says. A merge that cannot
//! satisfy both is an error, never a guess.

use crate::spec::{CommonStruct, Field, PRIMITIVES, Spec, Versions};

/// The union of two version ranges that touch or overlap.
fn union(a: Versions, b: Versions) -> Result<Versions, String> {
    match (a, b) {
        (Versions::None, x) | (x, Versions::None) => Ok(x),
        (Versions::Range(a0, a1), Versions::Range(b0, b1)) => {
            let (lo, hi) = if a0 <= b0 {
                ((a0, a1), (b0, b1))
            } else {
                ((b0, b1), (a0, a1))
            };
            if let Some(end) = lo.1
                && end.saturating_add(1) < hi.0
            {
                return Err(format!("{a} and {b} leave a gap"));
            }
            let max = match (lo.1, hi.1) {
                (None, _) | (_, None) => None,
                (Some(x), Some(y)) => Some(x.max(y)),
            };
            Ok(Versions::Range(lo.0, max))
        }
    }
}

/// The part of `v` below version `below`.
fn before(v: Versions, below: i16) -> Versions {
    match v {
        Versions::Range(a, _) if a >= below => Versions::None,
        Versions::Range(a, b) => {
            Versions::Range(a, Some(b.map_or(below - 1, |b| b.min(below - 1))))
        }
        Versions::None => Versions::None,
    }
}

/// Old versions below `below` (the new release's first), new ones from there.
fn splice(old: Versions, new: Versions, below: i16) -> Result<Versions, String> {
    union(before(old, below), new)
}

fn splice_opt(
    old: Option<Versions>,
    new: Option<Versions>,
    below: i16,
) -> Result<Option<Versions>, String> {
    let old = old
        .map(|o| before(o, below))
        .filter(|o| *o != Versions::None);
    match (old, new) {
        (None, x) | (x, None) => Ok(x),
        (Some(a), Some(b)) => union(a, b).map(Some),
    }
}

fn merge_field(old: &Field, new: &Field, below: i16) -> Result<Field, String> {
    // A struct type may be renamed (CreatableTopicConfig became
    // CreatableTopicConfig); the layout check compares its contents.
    let is_struct = |t: &str| !PRIMITIVES.contains(&t.trim_start_matches("[]"));
    let renamed_struct = is_struct(&old.ty)
        && is_struct(&new.ty)
        && old.ty.starts_with("[]") == new.ty.starts_with("[]");
    if old.ty != new.ty && !renamed_struct {
        return Err(format!(
            "field {}: type {} became {}",
            new.name, old.ty, new.ty
        ));
    }
    if old.tag != new.tag && old.tag.is_some() && new.tag.is_some() {
        return Err(format!("field {}: tag changed", new.name));
    }
    let ctx = |e: String| format!("field {}: {e}", new.name);
    Ok(Field {
        name: new.name.clone(),
        ty: new.ty.clone(),
        versions: splice(old.versions, new.versions, below).map_err(ctx)?,
        nullable: splice_opt(old.nullable, new.nullable, below).map_err(ctx)?,
        tagged: splice_opt(old.tagged, new.tagged, below).map_err(ctx)?,
        tag: new.tag.or(old.tag),
        // Ignorable at the old versions still (RequestHeader.ClientId is
        // ignorable for v0 in 3.8; 4.x, without v0, dropped the flag).
        ignorable: new.ignorable || old.ignorable,
        default: new.default.clone().or_else(|| old.default.clone()),
        entity: new.entity.clone().or_else(|| old.entity.clone()),
        map_key: new.map_key,
        zero_copy: new.zero_copy,
        flexible: splice_opt(old.flexible, new.flexible, below).map_err(ctx)?,
        fields: merge_fields(&old.fields, &new.fields, below)?,
    })
}

/// The new fields in their order, each merged with its old namesake; a
/// field only the old spec has (at versions below `below`) goes right
/// after the field that preceded it there (first when nothing did).
fn merge_fields(old: &[Field], new: &[Field], below: i16) -> Result<Vec<Field>, String> {
    let mut out: Vec<Field> = Vec::with_capacity(new.len());
    for n in new {
        out.push(match old.iter().find(|o| o.name == n.name) {
            Some(o) => merge_field(o, n, below)?,
            None => n.clone(),
        });
    }
    for (i, o) in old.iter().enumerate() {
        if new.iter().any(|n| n.name == o.name) {
            continue;
        }
        let Some(o) = only_before(o, below) else {
            continue;
        };
        let at = match i.checked_sub(1) {
            None => 0,
            Some(prev) => {
                let prev = &old[prev].name;
                out.iter()
                    .position(|f| &f.name == prev)
                    .map_or(out.len(), |p| p + 1)
            }
        };
        out.insert(at, o);
    }
    Ok(out)
}

/// An old-only field cut to the versions below `below`; `None` when it
/// had none there.
fn only_before(f: &Field, below: i16) -> Option<Field> {
    let versions = before(f.versions, below);
    if versions == Versions::None {
        return None;
    }
    let cut = |v: Option<Versions>| v.map(|v| before(v, below)).filter(|v| *v != Versions::None);
    Some(Field {
        versions,
        nullable: cut(f.nullable),
        tagged: cut(f.tagged),
        flexible: cut(f.flexible),
        tag: cut(f.tagged).and(f.tag),
        fields: f
            .fields
            .iter()
            .filter_map(|c| only_before(c, below))
            .collect(),
        ..f.clone()
    })
}

fn merge_common(
    old: &[CommonStruct],
    new: &[CommonStruct],
    below: i16,
) -> Result<Vec<CommonStruct>, String> {
    let mut out = Vec::new();
    for n in new {
        out.push(match old.iter().find(|o| o.name == n.name) {
            Some(o) => CommonStruct {
                name: n.name.clone(),
                versions: splice(o.versions, n.versions, below)
                    .map_err(|e| format!("struct {}: {e}", n.name))?,
                fields: merge_fields(&o.fields, &n.fields, below)
                    .map_err(|e| format!("struct {}: {e}", n.name))?,
            },
            None => n.clone(),
        });
    }
    for o in old {
        if !new.iter().any(|n| n.name == o.name) {
            out.push(o.clone());
        }
    }
    Ok(out)
}

/// What goes on the wire for one field at one version.
#[derive(Debug, PartialEq)]
struct Laid {
    name: String,
    ty: String,
    nullable: bool,
    tag: Option<u32>,
    default: Option<String>,
    fields: Vec<Laid>,
}

/// The fields present at version `v`, as the wire carries them. Types
/// naming a common struct are expanded, so a struct moved between inline
/// and common still compares by its contents.
fn layout(fields: &[Field], common: &[CommonStruct], v: i16, names: bool) -> Vec<Laid> {
    fields
        .iter()
        .filter(|f| f.versions.contains(v))
        .map(|f| {
            let elem = f.ty.trim_start_matches("[]");
            let nested = if !f.fields.is_empty() {
                layout(&f.fields, common, v, names)
            } else if let Some(c) = common.iter().find(|c| c.name == elem) {
                layout(&c.fields, common, v, names)
            } else {
                Vec::new()
            };
            let tagged = f.tagged.is_some_and(|t| t.contains(v));
            Laid {
                name: if names { f.name.clone() } else { String::new() },
                ty: if nested.is_empty() {
                    f.ty.clone()
                } else if f.ty.starts_with("[]") {
                    "[]".into()
                } else {
                    "struct".into()
                },
                nullable: f.nullable.is_some_and(|n| n.contains(v)),
                tag: if tagged { f.tag } else { None },
                // A default only shapes the wire for a tagged field (left
                // out when it holds it).
                default: if tagged { f.default.clone() } else { None },
                fields: nested,
            }
        })
        .collect()
}

fn versions_of(v: Versions) -> Vec<i16> {
    match v {
        Versions::None => Vec::new(),
        Versions::Range(a, b) => (a..=b.unwrap_or(a.max(0))).collect(),
    }
}

/// Every version of `v` is laid out by `merged` as `by` lays it out.
fn check_same(
    merged: &Spec,
    by: &Spec,
    which: &str,
    versions: Versions,
    names: bool,
) -> Result<(), String> {
    for v in versions_of(versions) {
        let a = layout(&merged.fields, &merged.common, v, names);
        let b = layout(&by.fields, &by.common, v, names);
        if a != b {
            return Err(format!(
                "{}: at version {v} the merged spec differs from {which}",
                merged.name
            ));
        }
        if merged.flexible.contains(v) != by.flexible.contains(v) {
            return Err(format!(
                "{}: version {v} is flexible in one and not the other",
                merged.name
            ));
        }
    }
    Ok(())
}

/// Whether the new definition leaves out versions the old one had.
pub fn drops_versions(old: &Spec, new: &Spec) -> bool {
    match (old.valid.min(), new.valid.min()) {
        (Some(_), None) => true,
        (Some(o), Some(n)) => o < n,
        _ => false,
    }
}

/// The new release's definition, extended with the versions of `old` it
/// no longer defines. Checked: the result lays out every old version as
/// `old` does and every new version as `new` does.
pub fn merge(old: &Spec, new: &Spec) -> Result<Spec, String> {
    let merged = if new.valid == Versions::None {
        // Removed outright: the old definition is all there is.
        Spec {
            deprecated: new.deprecated.or(old.deprecated),
            ..old.clone()
        }
    } else if !drops_versions(old, new) {
        new.clone()
    } else {
        let Versions::Range(new_min, new_max) = new.valid else {
            unreachable!("handled above");
        };
        let valid =
            splice(old.valid, new.valid, new_min).map_err(|e| format!("{}: {e}", new.name))?;
        debug_assert_eq!(valid.min(), old.valid.min());
        debug_assert!(matches!(valid, Versions::Range(_, m) if m == new_max));
        let flexible = splice(old.flexible, new.flexible, new_min)
            .map_err(|e| format!("{}: {e}", new.name))?;
        Spec {
            kind: new.kind,
            name: new.name.clone(),
            api_key: new.api_key,
            valid,
            flexible,
            deprecated: new.deprecated,
            listeners: new.listeners.clone(),
            latest_unstable: new.latest_unstable,
            fields: merge_fields(&old.fields, &new.fields, new_min)
                .map_err(|e| format!("{}: {e}", new.name))?,
            common: merge_common(&old.common, &new.common, new_min)
                .map_err(|e| format!("{}: {e}", new.name))?,
        }
    };
    // Names may change between releases (a renamed field lays out the
    // same bytes); the wire may not. When the new release still defines
    // an old version, only the wire is compared.
    let names = drops_versions(old, new);
    check_same(&merged, old, "the previous import", old.valid, names)?;
    check_same(&merged, new, "the new release", new.valid, true)?;
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec;

    fn parse(text: &str) -> Spec {
        spec::parse(text).unwrap()
    }

    #[test]
    fn old_versions_come_back_with_their_fields() {
        let old = parse(
            "request XRequest api-key=1 valid=0-4 flexible=3+\n\
             \x20 A int32 versions=0+\n\
             \x20 Gone int64 versions=0-1\n\
             \x20 B string versions=2+ nullable=2+\n",
        );
        let new = parse(
            "request XRequest api-key=1 valid=2-6 flexible=3+\n\
             \x20 A int32 versions=2-5\n\
             \x20 B string versions=2+ nullable=2+\n\
             \x20 C uuid versions=6+\n",
        );
        let m = merge(&old, &new).unwrap();
        assert_eq!(m.valid, Versions::Range(0, Some(6)));
        let names: Vec<&str> = m.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["A", "Gone", "B", "C"]);
        // Old versions from the old spec, the new release's end kept (a
        // field the release stopped at v5 is not extended to v6).
        assert_eq!(m.fields[0].versions, Versions::Range(0, Some(5)));
        assert_eq!(m.fields[1].versions, Versions::Range(0, Some(1)));
    }

    #[test]
    fn a_removed_message_keeps_its_old_definition() {
        let old =
            parse("request XRequest api-key=7 valid=0-3 flexible=3+\n  A int32 versions=0+\n");
        let new = parse("request XRequest api-key=7 valid=none flexible=none\n");
        let m = merge(&old, &new).unwrap();
        assert_eq!(m, old);
    }

    #[test]
    fn a_merge_that_changes_an_old_version_is_refused() {
        // The control: a new release whose field list, merged, would put
        // a different type at an old version.
        let old =
            parse("request XRequest api-key=1 valid=0-2 flexible=none\n  A int32 versions=0+\n");
        let new =
            parse("request XRequest api-key=1 valid=1-3 flexible=none\n  A int64 versions=1+\n");
        assert!(
            merge(&old, &new)
                .unwrap_err()
                .contains("type int32 became int64")
        );
        // A flexible boundary that moved is refused too.
        let old =
            parse("request XRequest api-key=1 valid=0-2 flexible=2+\n  A int32 versions=0+\n");
        let new =
            parse("request XRequest api-key=1 valid=1-3 flexible=1+\n  A int32 versions=1+\n");
        assert!(merge(&old, &new).unwrap_err().contains("flexible"));
    }
}
