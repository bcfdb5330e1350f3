//! Emits one Rust struct with its `Message` impl and test-only random
//! generator.

use std::fmt::Write as _;

use super::types::{Ty, default_expr, is_not_default_expr, is_type_default};
use crate::spec::{Field, Versions};

/// The version context of one message file: every struct in it is encoded
/// at the message's version, so conditions are folded over `lo..=hi`.
pub struct Ctx {
    pub lo: i16,
    pub hi: i16,
    pub flexible: Versions,
}

/// A set of versions within `lo..=hi`.
#[derive(Clone, PartialEq)]
pub struct Set(Vec<bool>);

impl Ctx {
    pub fn set(&self, v: &Versions) -> Set {
        Set((self.lo..=self.hi).map(|x| v.contains(x)).collect())
    }

    pub fn set_where(&self, f: impl Fn(i16) -> bool) -> Set {
        Set((self.lo..=self.hi).map(f).collect())
    }

    /// A boolean Rust expression over `version` true exactly on the set.
    pub fn cond(&self, s: &Set) -> String {
        if s.0.iter().all(|&b| b) {
            return "true".into();
        }
        if s.0.iter().all(|&b| !b) {
            return "false".into();
        }
        let mut runs = Vec::new();
        let mut i = 0;
        while i < s.0.len() {
            if s.0[i] {
                let start = i;
                while i + 1 < s.0.len() && s.0[i + 1] {
                    i += 1;
                }
                runs.push((self.lo + start as i16, self.lo + i as i16));
            }
            i += 1;
        }
        let parts: Vec<String> = runs
            .iter()
            .map(|&(a, b)| match (a == self.lo, b == self.hi) {
                (true, _) => format!("version <= {b}"),
                (_, true) => format!("version >= {a}"),
                _ if a == b => format!("version == {a}"),
                _ => format!("({a}..={b}).contains(&version)"),
            })
            .collect();
        if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("({})", parts.join(" || "))
        }
    }
}

impl Set {
    pub fn all(&self) -> bool {
        self.0.iter().all(|&b| b)
    }
    pub fn none(&self) -> bool {
        self.0.iter().all(|&b| !b)
    }
    fn and(&self, o: &Set) -> Set {
        Set(self.0.iter().zip(&o.0).map(|(a, b)| *a && *b).collect())
    }
    fn not(&self) -> Set {
        Set(self.0.iter().map(|b| !*b).collect())
    }
    fn minus(&self, o: &Set) -> Set {
        Set(self.0.iter().zip(&o.0).map(|(a, b)| *a && !*b).collect())
    }
}

/// `a && b`, folding constant `true`.
fn and(a: &str, b: &str) -> String {
    match (a, b) {
        ("true", x) | (x, "true") => x.to_string(),
        _ => format!("{a} && {b}"),
    }
}

/// Whether `fields` hold a `records` field, directly or in a struct
/// defined inline among them.
fn holds_records(fields: &[Field]) -> bool {
    fields
        .iter()
        .any(|f| f.ty.trim_start_matches("[]") == "records" || holds_records(&f.fields))
}

/// Whether `ident` appears in generated code outside string literals.
fn uses(code: &str, ident: &str) -> bool {
    let mut stripped = String::with_capacity(code.len());
    let mut in_str = false;
    let mut prev = ' ';
    for c in code.chars() {
        if in_str {
            if c == '"' && prev != '\\' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else {
            stripped.push(c);
        }
        prev = c;
    }
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    stripped.match_indices(ident).any(|(i, _)| {
        let before = stripped[..i].chars().next_back();
        let after = stripped[i + ident.len()..].chars().next();
        let rest = &stripped[i + ident.len()..];
        // Not a field access (`self.version`) nor a field name in a literal (`version: x`).
        let field_init = rest.starts_with(':') && !rest.starts_with("::");
        !before.is_some_and(|c| is_ident(c) || c == '.')
            && !after.is_some_and(is_ident)
            && !field_init
    })
}

pub fn snake(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_ascii_uppercase())) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    match out.as_str() {
        "type" | "match" | "ref" | "self" | "move" | "loop" | "async" | "await" | "mod" | "use"
        | "where" | "static" | "const" | "fn" | "in" | "impl" | "trait" | "struct" | "enum" => {
            format!("r#{out}")
        }
        _ => out,
    }
}

/// Everything the emitter needs about one field.
struct F<'a> {
    spec: &'a Field,
    ident: String,
    ty: Ty,
    /// The field is an `Option` in Rust (nullable in some version).
    nullable: bool,
    /// Versions where null is allowed.
    null_set: Set,
    /// Versions where the field is a regular (positional) field.
    regular: Set,
    /// Versions where it is a tagged field (always within flexible versions).
    tagged: Set,
    default: String,
    compact: String,
}

impl F<'_> {
    /// The local variable holding the field while decoding (prefixed so a
    /// field named like a parameter, e.g. `Version`, cannot shadow it).
    fn local(&self) -> String {
        format!("f_{}", self.ident.trim_start_matches("r#"))
    }

    fn rust_type(&self) -> String {
        if self.nullable {
            format!("Option<{}>", self.ty.rust())
        } else {
            self.ty.rust()
        }
    }

    fn not_default(&self, place: &str) -> String {
        is_not_default_expr(place, &self.ty, self.nullable, &self.default)
    }

    fn read(&self, ctx: &Ctx, buf: &str, compact: &str) -> String {
        if !self.nullable {
            return self.ty.read(buf, compact);
        }
        let r = self.ty.read_nullable(buf, compact);
        if self.null_set.all() {
            r
        } else {
            format!("nullable_if({r}, {})", ctx.cond(&self.null_set))
        }
    }

    fn write(&self, ctx: &Ctx, msg: &str, place: &str, buf: &str, compact: &str) -> String {
        if !self.nullable {
            return self.ty.write(&format!("&{place}"), buf, compact);
        }
        self.null_guarded(ctx, msg, place, self.ty.write_nullable(place, buf, compact))
    }

    /// `w` (the write of the nullable field at `place`), behind the
    /// `NullNotAllowed` check for the versions where null is not allowed.
    fn null_guarded(&self, ctx: &Ctx, msg: &str, place: &str, w: String) -> String {
        if self.null_set.all() {
            return w;
        }
        format!(
            "if {} {{ return Err(EncodeError::NullNotAllowed {{ message: {msg:?}, field: {:?}, version }}); }} {w}",
            and(
                &format!("{place}.is_none()"),
                &ctx.cond(&self.null_set.not())
            ),
            self.spec.name
        )
    }

    /// [`F::write`] for `encode_body_parts`: record batches and structs
    /// holding them go through the parts writer `w`; everything else is
    /// written into its current buffer.
    fn write_parts(&self, ctx: &Ctx, msg: &str, place: &str, compact: &str) -> String {
        let carries = holds_records(&self.spec.fields);
        let w = match (&self.ty, self.nullable) {
            (Ty::Records, false) => format!("w.put_records(Some(&{place}), {compact})?;"),
            (Ty::Records, true) => format!("w.put_records({place}.as_ref(), {compact})?;"),
            (Ty::Struct(_), false) if carries => format!("{place}.encode_body_parts(w, version)?;"),
            (Ty::Array(e), nullable) if carries && matches!(**e, Ty::Struct(_)) => {
                let v = if nullable {
                    format!("{place}.as_deref()")
                } else {
                    format!("Some(&{place})")
                };
                format!(
                    "put_array_parts(w, {v}, {compact}, |w, e| e.encode_body_parts(w, version))?;"
                )
            }
            _ => {
                return format!(
                    "{{ let buf = w.buf(); {} }}",
                    self.write(ctx, msg, place, "buf", compact)
                );
            }
        };
        if !self.nullable {
            return w;
        }
        self.null_guarded(ctx, msg, place, w)
    }

    fn len(&self, place: &str, compact: &str) -> String {
        if self.nullable {
            self.ty.len_nullable(place, compact)
        } else {
            self.ty.len(&format!("&{place}"), compact)
        }
    }
}

fn doc_for_field(f: &Field) -> String {
    let mut parts = vec![format!("Versions {}", f.versions)];
    if let Some(n) = f.nullable {
        parts.push(format!("nullable {n}"));
    }
    if let (Some(t), Some(tv)) = (f.tag, f.tagged) {
        parts.push(format!("tagged field {t} in versions {tv}"));
    }
    if let Some(d) = &f.default {
        parts.push(format!("default `{d}`"));
    }
    if let Some(e) = &f.entity {
        parts.push(format!("entity `{e}`"));
    }
    if f.ignorable {
        parts.push("ignorable".into());
    }
    if f.map_key {
        parts.push("map key".into());
    }
    format!("Kafka field `{}`: {}.", f.name, parts.join("; "))
}

/// Emits a struct named `name` with `fields`, documented by `doc`.
pub fn emit_struct(
    out: &mut String,
    ctx: &Ctx,
    name: &str,
    doc: &str,
    fields: &[Field],
) -> Result<(), String> {
    let flex = ctx.set(&ctx.flexible);
    let mut fs = Vec::new();
    for f in fields {
        let ty = Ty::parse(&f.ty);
        let nullable = f.nullable.is_some_and(|n| n != Versions::None);
        if nullable && !ty.can_be_null() {
            return Err(format!("{name}.{}: {:?} cannot be nullable", f.name, f.ty));
        }
        let present = ctx.set(&f.versions);
        let tagged = match f.tagged {
            Some(t) => ctx.set(&t).and(&present),
            None => ctx.set(&Versions::None),
        };
        if !tagged.minus(&flex).none() {
            return Err(format!(
                "{name}.{}: tagged outside flexible versions",
                f.name
            ));
        }
        let field_flex = f.flexible.unwrap_or(ctx.flexible);
        let compact = ctx.cond(&ctx.set(&field_flex));
        fs.push(F {
            spec: f,
            ident: snake(&f.name),
            default: default_expr(f, &ty, nullable).map_err(|e| format!("{name}: {e}"))?,
            null_set: ctx.set(&f.nullable.unwrap_or(Versions::None)),
            regular: present.minus(&tagged),
            tagged,
            ty,
            nullable,
            compact,
        });
    }
    let flex_cond = ctx.cond(&flex);

    // The struct.
    let derive_default = fs.iter().all(|f| is_type_default(&f.default));
    let derives = if derive_default {
        "Debug, Clone, PartialEq, Default"
    } else {
        "Debug, Clone, PartialEq"
    };
    let _ = writeln!(out, "/// {doc}\n#[derive({derives})]\npub struct {name} {{");
    for f in &fs {
        let _ = writeln!(
            out,
            "    /// {}\n    pub {}: {},",
            doc_for_field(f.spec),
            f.ident,
            f.rust_type()
        );
    }
    let mut tagged_fields: Vec<&F> = fs.iter().filter(|f| !f.tagged.none()).collect();
    tagged_fields.sort_by_key(|f| f.spec.tag);
    if tagged_fields.len() > 16 {
        return Err(format!(
            "{name}: more than 16 known tagged fields (TagPresence keeps 16 bits)"
        ));
    }
    let has_tags = !tagged_fields.is_empty();
    if has_tags {
        let _ = writeln!(
            out,
            "    /// Which known tagged fields were on the wire (see [`TagPresence`]); written again even at their defaults.\n    pub tags_present: TagPresence,"
        );
    }
    let _ = writeln!(
        out,
        "    /// Tagged fields this version of klamm does not know, kept for re-encoding.\n    pub unknown_tagged_fields: Vec<RawTaggedField>,\n}}\n"
    );

    // Default, where the spec's defaults differ from the types' own.
    if !derive_default {
        let _ = writeln!(
            out,
            "impl Default for {name} {{\n    fn default() -> Self {{\n        Self {{"
        );
        for f in &fs {
            let _ = writeln!(out, "            {}: {},", f.ident, f.default);
        }
        if has_tags {
            let _ = writeln!(out, "            tags_present: TagPresence::default(),");
        }
        let _ = writeln!(
            out,
            "            unknown_tagged_fields: Vec::new(),\n        }}\n    }}\n}}\n"
        );
    }

    // A tagged field goes on the wire when it is not at its default, or
    // when the decoded frame had it (its presence bit).
    let tag_written = |i: usize, f: &F, place: &str| -> String {
        let either = format!("{} || self.tags_present.has({i})", f.not_default(place));
        match ctx.cond(&f.tagged).as_str() {
            "true" => either,
            cond => format!("{cond} && ({either})"),
        }
    };

    // encode_body, and encode_body_parts for structs holding records
    let parts = holds_records(fields);
    let mut enc = String::new();
    let mut enc_parts = String::new();
    for f in &fs {
        let place = format!("self.{}", f.ident);
        let write = f.write(ctx, name, &place, "buf", &f.compact);
        let write_parts = f.write_parts(ctx, name, &place, &f.compact);
        let absent = ctx.set_where(|_| true).minus(&f.regular).minus(&f.tagged);
        let check = if f.spec.ignorable || absent.none() {
            String::new()
        } else {
            format!(
                "if {} {{ return Err(EncodeError::FieldNotSupported {{ message: {name:?}, field: {:?}, version }}); }}",
                and(&ctx.cond(&absent), &f.not_default(&place)),
                f.spec.name
            )
        };
        for (out, write) in [(&mut enc, &write), (&mut enc_parts, &write_parts)] {
            if f.regular.all() {
                let _ = writeln!(out, "        {write}");
            } else if !f.regular.none() {
                let _ = writeln!(out, "        if {} {{ {write} }}", ctx.cond(&f.regular));
            }
            if !check.is_empty() {
                let _ = writeln!(out, "        {check}");
            }
        }
    }
    let mut enc_tags = String::new();
    let mut len_tags = String::new();
    if !flex.none() {
        let n_mut = if tagged_fields.is_empty() { "" } else { "mut " };
        let _ = writeln!(
            enc_tags,
            "            let {n_mut}n = self.unknown_tagged_fields.len();"
        );
        let _ = writeln!(
            len_tags,
            "            let {n_mut}n = self.unknown_tagged_fields.len();\n            len += unknown_tagged_len(&self.unknown_tagged_fields);"
        );
        for (i, f) in tagged_fields.iter().enumerate() {
            let place = format!("self.{}", f.ident);
            let present = tag_written(i, f, &place);
            let _ = writeln!(enc_tags, "            if {present} {{ n += 1; }}");
            let _ = writeln!(
                len_tags,
                "            if {present} {{ n += 1; len += tagged_field_len({}, {}); }}",
                f.spec.tag.unwrap_or_default(),
                f.len(&place, "true")
            );
        }
        let _ = writeln!(
            enc_tags,
            "            put_unsigned_varint(buf, tagged_count(n)?);"
        );
        let _ = writeln!(
            len_tags,
            "            len += unsigned_varint_len(n as u32);"
        );
        let mut lo: u64 = 0;
        for (i, f) in tagged_fields.iter().enumerate() {
            let tag = u64::from(f.spec.tag.unwrap_or_default());
            let place = format!("self.{}", f.ident);
            let _ = writeln!(
                enc_tags,
                "            put_unknown_tagged(buf, &self.unknown_tagged_fields, {lo}, {tag})?;\n            if {} {{ put_unsigned_varint(buf, {tag}); put_unsigned_varint(buf, tagged_size({})?); {} }}",
                tag_written(i, f, &place),
                f.len(&place, "true"),
                f.write(ctx, name, &place, "buf", "true")
            );
            // The next range starts at this tag, not after it: at a version
            // where this field does not exist its tag is an unknown one,
            // and it must still be written (it is counted in `n` and in
            // the length).
            lo = tag;
        }
        let _ = writeln!(
            enc_tags,
            "            put_unknown_tagged(buf, &self.unknown_tagged_fields, {lo}, u64::MAX)?;"
        );
    }
    let unknown_err = format!(
        "if !self.unknown_tagged_fields.is_empty() {{ return Err(EncodeError::FieldNotSupported {{ message: {name:?}, field: \"unknown_tagged_fields\", version }}); }}"
    );
    let tags_parts = format!("            let buf = w.buf();\n{enc_tags}");
    for (out, tags) in [(&mut enc, &enc_tags), (&mut enc_parts, &tags_parts)] {
        if flex.all() {
            let _ = writeln!(out, "        {{\n{tags}        }}");
        } else if flex.none() {
            let _ = writeln!(out, "        {unknown_err}");
        } else {
            let _ = writeln!(
                out,
                "        if {flex_cond} {{\n{tags}        }} else {{ {unknown_err} }}"
            );
        }
    }

    // body_len
    let mut len = String::from("        let mut len = 0usize;\n");
    for f in &fs {
        let place = format!("self.{}", f.ident);
        let l = f.len(&place, &f.compact);
        if f.regular.all() {
            let _ = writeln!(len, "        len += {l};");
        } else if !f.regular.none() {
            let _ = writeln!(len, "        if {} {{ len += {l}; }}", ctx.cond(&f.regular));
        }
    }
    if flex.all() {
        let _ = writeln!(len, "        {{\n{len_tags}        }}");
    } else if !flex.none() {
        let _ = writeln!(len, "        if {flex_cond} {{\n{len_tags}        }}");
    }
    len.push_str("        len\n");

    // decode_body
    let mut dec = String::new();
    for f in &fs {
        let read = format!(
            "{}.map_err(|e| e.context({:?}).at_remaining(buf.len()))?",
            f.read(ctx, "buf", &f.compact),
            f.spec.name
        );
        let mutable = if f.tagged.none() { "" } else { "mut " };
        if f.regular.all() {
            let _ = writeln!(dec, "        let {}{} = {read};", mutable, f.local());
        } else if f.regular.none() {
            let _ = writeln!(
                dec,
                "        let {}{}: {} = {};",
                mutable,
                f.local(),
                f.rust_type(),
                f.default
            );
        } else {
            let _ = writeln!(
                dec,
                "        let {}{} = if {} {{ {read} }} else {{ {} }};",
                mutable,
                f.local(),
                ctx.cond(&f.regular),
                f.default
            );
        }
    }
    let unknown_mut = if flex.none() { "" } else { "mut " };
    let _ = writeln!(
        dec,
        "        let {unknown_mut}unknown_tagged_fields = Vec::new();"
    );
    if has_tags {
        let _ = writeln!(
            dec,
            "        let mut tags_present = TagPresence::default();"
        );
    }
    if !flex.none() {
        let mut arms = String::new();
        for (i, f) in tagged_fields.iter().enumerate() {
            let _ = writeln!(
                arms,
                "                    {} if {} => {{ {} = {}.map_err(|e| e.context({:?}))?; expect_empty(&data).map_err(|e| e.context({:?}))?; tags_present.set({i}); }}",
                f.spec.tag.unwrap_or_default(),
                ctx.cond(&f.tagged),
                f.local(),
                f.read(ctx, "&mut data", "true"),
                f.spec.name,
                f.spec.name
            );
        }
        let data_mut = if tagged_fields.is_empty() { "" } else { "mut " };
        let dispatch = if arms.is_empty() {
            "                push_unknown_tagged(&mut unknown_tagged_fields, tag, data);\n"
                .to_string()
        } else {
            format!(
                "                match tag {{\n{arms}                    _ => push_unknown_tagged(&mut unknown_tagged_fields, tag, data),\n                }}\n"
            )
        };
        let body = format!(
            "            let n = read_unsigned_varint(buf).map_err(|e| e.context(\"tagged fields\"))?;\n            for _ in 0..n {{\n                let (tag, {data_mut}data) = read_tagged_field(buf).map_err(|e| e.context(\"tagged fields\"))?;\n{dispatch}            }}\n"
        );
        if flex.all() {
            let _ = writeln!(dec, "        {{\n{body}        }}");
        } else {
            let _ = writeln!(dec, "        if {flex_cond} {{\n{body}        }}");
        }
    }
    let _ = write!(dec, "        Ok(Self {{");
    for f in &fs {
        let _ = write!(dec, " {}: {},", f.ident, f.local());
    }
    if has_tags {
        let _ = write!(dec, " tags_present,");
    }
    let _ = writeln!(dec, " unknown_tagged_fields }})");

    let uses_version = |s: &str| uses(s, "version");
    let v_enc = if uses_version(&enc) {
        "version"
    } else {
        "_version"
    };
    let v_len = if uses_version(&len) {
        "version"
    } else {
        "_version"
    };
    let v_dec = if uses_version(&dec) {
        "version"
    } else {
        "_version"
    };
    let b_enc = if uses(&enc, "buf") { "buf" } else { "_buf" };
    let b_dec = if uses(&dec, "buf") { "buf" } else { "_buf" };
    let has_records = if parts {
        "    const HAS_RECORDS: bool = true;\n"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "impl Message for {name} {{\n    const NAME: &'static str = {name:?};\n    const VERSIONS: (i16, i16) = ({}, {});\n{has_records}",
        ctx.lo, ctx.hi
    );
    let _ = writeln!(
        out,
        "    fn encode_body<B: BufMut>(&self, {b_enc}: &mut B, {v_enc}: i16) -> Result<(), EncodeError> {{\n{enc}        Ok(())\n    }}\n"
    );
    if parts {
        let v_parts = if uses_version(&enc_parts) {
            "version"
        } else {
            "_version"
        };
        let _ = writeln!(
            out,
            "    fn encode_body_parts(&self, w: &mut PartsWriter, {v_parts}: i16) -> Result<(), EncodeError> {{\n{enc_parts}        Ok(())\n    }}\n"
        );
    }
    let _ = writeln!(
        out,
        "    fn decode_body({b_dec}: &mut Bytes, {v_dec}: i16) -> Result<Self, DecodeError> {{\n{dec}    }}\n"
    );
    let _ = writeln!(
        out,
        "    fn body_len(&self, {v_len}: i16) -> usize {{\n{len}    }}\n}}\n"
    );

    // Test-only random generator.
    let mut rnd = String::new();
    for f in &fs {
        let present = ctx.cond(&Set(f
            .regular
            .0
            .iter()
            .zip(&f.tagged.0)
            .map(|(a, b)| *a || *b)
            .collect()));
        let value = if f.nullable {
            let v = f.ty.random();
            if f.null_set.all() {
                format!("rng.option(|rng| {v})")
            } else {
                format!(
                    "if {} {{ rng.option(|rng| {v}) }} else {{ Some({v}) }}",
                    ctx.cond(&f.null_set)
                )
            }
        } else {
            f.ty.random()
        };
        let expr = match present.as_str() {
            "true" => value,
            "false" => f.default.clone(),
            c => format!("if {c} {{ {value} }} else {{ {} }}", f.default),
        };
        let _ = writeln!(rnd, "            {}: {expr},", f.ident);
    }
    if has_tags {
        // Random presence: tagged fields at their defaults are written
        // sometimes, as some senders do.
        let _ = writeln!(
            rnd,
            "            tags_present: TagPresence::from_bits(rng.next_u64() as u16),"
        );
    }
    let _ = writeln!(
        rnd,
        "            unknown_tagged_fields: rng.unknown_tagged({flex_cond}),"
    );
    let v_rnd = if uses(&rnd, "version") {
        "version"
    } else {
        "_version"
    };
    let r_rnd = if uses(&rnd, "rng") { "rng" } else { "_rng" };
    let _ = writeln!(
        out,
        "#[cfg(test)]\nimpl {name} {{\n    pub(crate) fn random({r_rnd}: &mut TestRng, {v_rnd}: i16) -> Self {{\n        Self {{\n{rnd}        }}\n    }}\n}}\n"
    );
    Ok(())
}

/// Collects every struct defined inline in `fields` (depth first), as
/// (name, fields, versions of the defining field).
pub fn inline_structs<'a>(fields: &'a [Field], out: &mut Vec<(&'a str, &'a [Field], Versions)>) {
    for f in fields {
        if !f.fields.is_empty() {
            out.push((f.ty.trim_start_matches("[]"), &f.fields, f.versions));
            inline_structs(&f.fields, out);
        }
    }
}
