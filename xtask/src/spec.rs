//! klamm's protocol-spec format: the model, a strict parser and a writer.
//!
//! One file per message. Lines starting with `#` are comments. The first
//! non-comment line declares the message; each field is one line, indented
//! two spaces per nesting level; common structs are declared at the top
//! level with `struct`. Attributes are `key=value` (values may be
//! double-quoted) or bare flags. Unknown keywords and attributes are errors.
//!
//! ```text
//! request ProduceRequest api-key=0 valid=0-11 flexible=9+
//!   TransactionalId string versions=3+ nullable=3+ default=null entity=transactionalId
//!   TopicData []TopicProduceData versions=0+
//!     Name string versions=0+ entity=topicName map-key
//! struct SomeCommonStruct versions=0+
//!   Field int32 versions=0+
//! ```

use std::fmt::{self, Write as _};

/// A version range: `none`, `N`, `N+` or `N-M`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    None,
    Range(i16, Option<i16>),
}

impl Versions {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "none" {
            return Ok(Versions::None);
        }
        let num = |t: &str| {
            t.trim()
                .parse::<i16>()
                .map_err(|_| format!("bad version number `{t}`"))
        };
        if let Some(min) = s.strip_suffix('+') {
            return Ok(Versions::Range(num(min)?, None));
        }
        if let Some((a, b)) = s.split_once('-') {
            let (a, b) = (num(a)?, num(b)?);
            if b < a {
                return Err(format!("empty version range `{s}`"));
            }
            return Ok(Versions::Range(a, Some(b)));
        }
        let n = num(s)?;
        Ok(Versions::Range(n, Some(n)))
    }

    pub fn contains(&self, v: i16) -> bool {
        match *self {
            Versions::None => false,
            Versions::Range(min, max) => v >= min && max.is_none_or(|m| v <= m),
        }
    }

    pub fn min(&self) -> Option<i16> {
        match *self {
            Versions::None => None,
            Versions::Range(min, _) => Some(min),
        }
    }
}

impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Versions::None => f.write_str("none"),
            Versions::Range(a, None) => write!(f, "{a}+"),
            Versions::Range(a, Some(b)) if a == b => write!(f, "{a}"),
            Versions::Range(a, Some(b)) => write!(f, "{a}-{b}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
    Header,
    Data,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Response => "response",
            Kind::Header => "header",
            Kind::Data => "data",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "request" => Kind::Request,
            "response" => Kind::Response,
            "header" => Kind::Header,
            "data" => Kind::Data,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    /// As written: `int32`, `string`, `[]int32`, `[]SomeStruct`, `SomeStruct`, ...
    pub ty: String,
    pub versions: Versions,
    pub nullable: Option<Versions>,
    pub tagged: Option<Versions>,
    pub tag: Option<u32>,
    pub ignorable: bool,
    pub default: Option<String>,
    pub entity: Option<String>,
    pub map_key: bool,
    pub zero_copy: bool,
    /// Field-level override of the message's flexible versions.
    pub flexible: Option<Versions>,
    /// Inline struct fields, when `ty` names a struct defined here.
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommonStruct {
    pub name: String,
    pub versions: Versions,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub kind: Kind,
    pub name: String,
    pub api_key: Option<i16>,
    pub valid: Versions,
    pub flexible: Versions,
    pub deprecated: Option<Versions>,
    pub listeners: Vec<String>,
    pub latest_unstable: Option<bool>,
    pub fields: Vec<Field>,
    pub common: Vec<CommonStruct>,
}

pub const PRIMITIVES: &[&str] = &[
    "bool", "int8", "int16", "uint16", "int32", "uint32", "int64", "float64", "uuid", "string",
    "bytes", "records", "varint", "varlong", "uvarint",
];

// ---------------------------------------------------------------------------
// Tokenising attribute lines
// ---------------------------------------------------------------------------

fn tokenize(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut tok = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c == '"' {
                // Quoted value: backslash escapes `"` and `\`.
                tok.push('"');
                loop {
                    match chars.next() {
                        None => return Err("unterminated quoted value".into()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\')) => tok.push(e),
                            _ => return Err("bad escape in quoted value".into()),
                        },
                        Some(c) => tok.push(c),
                    }
                }
                tok.push('"');
            } else {
                tok.push(c);
            }
        }
        out.push(tok);
    }
    Ok(out)
}

/// Splits `key=value`, unquoting a quoted value.
fn attr(tok: &str) -> (&str, Option<String>) {
    match tok.split_once('=') {
        None => (tok, None),
        Some((k, v)) => {
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (k, Some(v.to_string()))
        }
    }
}

fn quote(v: &str) -> String {
    let bare = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.+-:,/".contains(c));
    if bare {
        v.to_string()
    } else {
        let mut s = String::from("\"");
        for c in v.chars() {
            if c == '"' || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('"');
        s
    }
}

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------

struct Line<'a> {
    no: usize,
    depth: usize,
    text: &'a str,
}

fn parse_field(line: &Line<'_>) -> Result<Field, String> {
    let toks = tokenize(line.text)?;
    let [name, ty, rest @ ..] = toks.as_slice() else {
        return Err("a field needs a name and a type".into());
    };
    let mut f = Field {
        name: name.clone(),
        ty: ty.clone(),
        versions: Versions::None,
        nullable: None,
        tagged: None,
        tag: None,
        ignorable: false,
        default: None,
        entity: None,
        map_key: false,
        zero_copy: false,
        flexible: None,
        fields: Vec::new(),
    };
    let mut have_versions = false;
    for t in rest {
        match attr(t) {
            ("versions", Some(v)) => {
                f.versions = Versions::parse(&v)?;
                have_versions = true;
            }
            ("nullable", Some(v)) => f.nullable = Some(Versions::parse(&v)?),
            ("tagged", Some(v)) => f.tagged = Some(Versions::parse(&v)?),
            ("flexible", Some(v)) => f.flexible = Some(Versions::parse(&v)?),
            ("tag", Some(v)) => f.tag = Some(v.parse().map_err(|_| format!("bad tag `{v}`"))?),
            ("default", Some(v)) => f.default = Some(v),
            ("entity", Some(v)) => f.entity = Some(v),
            ("ignorable", None) => f.ignorable = true,
            ("map-key", None) => f.map_key = true,
            ("zero-copy", None) => f.zero_copy = true,
            (k, _) => return Err(format!("unknown field attribute `{k}`")),
        }
    }
    if !have_versions {
        return Err(format!("field {} has no versions", f.name));
    }
    if f.tag.is_some() != f.tagged.is_some() {
        return Err(format!("field {}: tag and tagged go together", f.name));
    }
    Ok(f)
}

/// Builds the field tree from lines at `depth` starting at `*i`.
fn parse_fields(lines: &[Line<'_>], i: &mut usize, depth: usize) -> Result<Vec<Field>, String> {
    let mut out: Vec<Field> = Vec::new();
    while *i < lines.len() {
        let l = &lines[*i];
        if l.depth < depth {
            break;
        }
        if l.depth > depth {
            return Err(format!("line {}: unexpected indentation", l.no));
        }
        let mut f = parse_field(l).map_err(|e| format!("line {}: {e}", l.no))?;
        *i += 1;
        if *i < lines.len() && lines[*i].depth > depth {
            f.fields = parse_fields(lines, i, depth + 1)?;
        }
        out.push(f);
    }
    Ok(out)
}

pub fn parse(text: &str) -> Result<Spec, String> {
    let mut lines = Vec::new();
    for (no, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start_matches(' ');
        if trimmed.trim().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = raw.len() - trimmed.len();
        if indent % 2 != 0 || raw.contains('\t') {
            return Err(format!("line {}: indent with two spaces per level", no + 1));
        }
        lines.push(Line {
            no: no + 1,
            depth: indent / 2,
            text: trimmed.trim_end(),
        });
    }
    let Some(first) = lines.first() else {
        return Err("empty spec".into());
    };
    if first.depth != 0 {
        return Err("the message line must not be indented".into());
    }
    let toks = tokenize(first.text)?;
    let [kind, name, rest @ ..] = toks.as_slice() else {
        return Err("line 1: expected `<kind> <Name> ...`".into());
    };
    let kind = Kind::parse(kind).ok_or_else(|| format!("unknown message kind `{kind}`"))?;
    let mut spec = Spec {
        kind,
        name: name.clone(),
        api_key: None,
        valid: Versions::None,
        flexible: Versions::None,
        deprecated: None,
        listeners: Vec::new(),
        latest_unstable: None,
        fields: Vec::new(),
        common: Vec::new(),
    };
    let (mut have_valid, mut have_flexible) = (false, false);
    for t in rest {
        match attr(t) {
            ("api-key", Some(v)) => {
                spec.api_key = Some(v.parse().map_err(|_| format!("bad api key `{v}`"))?)
            }
            ("valid", Some(v)) => {
                spec.valid = Versions::parse(&v)?;
                have_valid = true;
            }
            ("flexible", Some(v)) => {
                spec.flexible = Versions::parse(&v)?;
                have_flexible = true;
            }
            ("deprecated", Some(v)) => spec.deprecated = Some(Versions::parse(&v)?),
            ("listeners", Some(v)) => spec.listeners = v.split(',').map(String::from).collect(),
            ("latest-unstable", Some(v)) => {
                spec.latest_unstable = Some(
                    v.parse()
                        .map_err(|_| format!("bad latest-unstable `{v}`"))?,
                )
            }
            (k, _) => return Err(format!("line 1: unknown message attribute `{k}`")),
        }
    }
    if !have_valid || !have_flexible {
        return Err("the message line needs valid= and flexible=".into());
    }
    if matches!(kind, Kind::Request | Kind::Response) != spec.api_key.is_some() {
        return Err("requests and responses (and only they) have an api-key".into());
    }
    let mut i = 1;
    spec.fields = parse_fields(&lines, &mut i, 1)?;
    while i < lines.len() {
        let l = &lines[i];
        let toks = tokenize(l.text)?;
        let strs: Vec<&str> = toks.iter().map(String::as_str).collect();
        let ["struct", name, rest @ ..] = strs.as_slice() else {
            return Err(format!(
                "line {}: expected `struct <Name> versions=...`",
                l.no
            ));
        };
        let mut versions = None;
        for t in rest {
            match attr(t) {
                ("versions", Some(v)) => versions = Some(Versions::parse(&v)?),
                (k, _) => return Err(format!("line {}: unknown struct attribute `{k}`", l.no)),
            }
        }
        i += 1;
        let fields = parse_fields(&lines, &mut i, 1)?;
        spec.common.push(CommonStruct {
            name: name.to_string(),
            versions: versions.ok_or_else(|| format!("line {}: struct needs versions=", l.no))?,
            fields,
        });
    }
    validate(&spec)?;
    Ok(spec)
}

/// Checks that every type resolves and struct names are unique.
fn validate(spec: &Spec) -> Result<(), String> {
    let mut structs: Vec<&str> = spec.common.iter().map(|c| c.name.as_str()).collect();
    fn collect<'a>(fields: &'a [Field], out: &mut Vec<&'a str>) {
        for f in fields {
            if !f.fields.is_empty() {
                out.push(f.ty.trim_start_matches("[]"));
                collect(&f.fields, out);
            }
        }
    }
    collect(&spec.fields, &mut structs);
    for c in &spec.common {
        collect(&c.fields, &mut structs);
    }
    let mut sorted = structs.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("struct {} is defined twice", w[0]));
    }
    fn check(fields: &[Field], structs: &[&str]) -> Result<(), String> {
        let mut tags: Vec<u32> = Vec::new();
        for f in fields {
            let base = f.ty.trim_start_matches("[]");
            if !PRIMITIVES.contains(&base) && !structs.contains(&base) {
                return Err(format!("field {}: unknown type `{}`", f.name, f.ty));
            }
            if PRIMITIVES.contains(&base) && !f.fields.is_empty() {
                return Err(format!("field {}: a primitive type has no fields", f.name));
            }
            if let Some(t) = f.tag {
                if tags.contains(&t) {
                    return Err(format!("tag {t} used twice"));
                }
                tags.push(t);
            }
            check(&f.fields, structs)?;
        }
        Ok(())
    }
    check(&spec.fields, &structs)?;
    for c in &spec.common {
        check(&c.fields, &structs)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------

fn write_fields(out: &mut String, fields: &[Field], depth: usize) {
    for f in fields {
        let _ = write!(
            out,
            "{}{} {} versions={}",
            "  ".repeat(depth),
            f.name,
            f.ty,
            f.versions
        );
        if let Some(v) = f.nullable {
            let _ = write!(out, " nullable={v}");
        }
        if let Some(v) = f.tagged {
            let _ = write!(out, " tagged={v}");
        }
        if let Some(t) = f.tag {
            let _ = write!(out, " tag={t}");
        }
        if let Some(v) = f.flexible {
            let _ = write!(out, " flexible={v}");
        }
        if let Some(d) = &f.default {
            let _ = write!(out, " default={}", quote(d));
        }
        if let Some(e) = &f.entity {
            let _ = write!(out, " entity={}", quote(e));
        }
        if f.ignorable {
            out.push_str(" ignorable");
        }
        if f.map_key {
            out.push_str(" map-key");
        }
        if f.zero_copy {
            out.push_str(" zero-copy");
        }
        out.push('\n');
        write_fields(out, &f.fields, depth + 1);
    }
}

pub fn write(spec: &Spec, header_comment: &str) -> String {
    let mut out = String::new();
    for l in header_comment.lines() {
        let _ = writeln!(out, "# {l}");
    }
    let _ = write!(out, "{} {}", spec.kind.as_str(), spec.name);
    if let Some(k) = spec.api_key {
        let _ = write!(out, " api-key={k}");
    }
    let _ = write!(out, " valid={} flexible={}", spec.valid, spec.flexible);
    if let Some(d) = spec.deprecated {
        let _ = write!(out, " deprecated={d}");
    }
    if !spec.listeners.is_empty() {
        let _ = write!(out, " listeners={}", spec.listeners.join(","));
    }
    if let Some(u) = spec.latest_unstable {
        let _ = write!(out, " latest-unstable={u}");
    }
    out.push('\n');
    write_fields(&mut out, &spec.fields, 1);
    for c in &spec.common {
        let _ = writeln!(out, "struct {} versions={}", c.name, c.versions);
        write_fields(&mut out, &c.fields, 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# comment
request SampleRequest api-key=99 valid=0-3 flexible=2+ deprecated=0
  Name string versions=0+ nullable=1+ default=null entity=topicName
  Items []Item versions=1+
    Id int32 versions=1+ map-key
    Label string versions=3+ tagged=3+ tag=0 default=\"a b\" ignorable
  Shared Common versions=0+
struct Common versions=0+
  X int64 versions=0+ default=-1
";

    #[test]
    fn parses_and_writes_back() {
        let spec = parse(SAMPLE).unwrap();
        assert_eq!(spec.api_key, Some(99));
        assert_eq!(spec.fields.len(), 3);
        assert_eq!(spec.fields[1].fields[1].default.as_deref(), Some("a b"));
        assert_eq!(spec.common[0].fields[0].default.as_deref(), Some("-1"));
        let again = parse(&write(&spec, "x")).unwrap();
        assert_eq!(spec, again);
    }

    #[test]
    fn rejects_unknown_attributes_and_types() {
        assert!(
            parse(&SAMPLE.replace("map-key", "mapkey"))
                .unwrap_err()
                .contains("mapkey")
        );
        assert!(
            parse(&SAMPLE.replace("Shared Common", "Shared Nope"))
                .unwrap_err()
                .contains("Nope")
        );
        assert!(parse(&SAMPLE.replace("api-key=99 ", "")).is_err());
    }

    #[test]
    fn version_ranges() {
        let v = Versions::parse("3-5").unwrap();
        assert!(v.contains(3) && v.contains(5) && !v.contains(6));
        assert!(Versions::parse("2+").unwrap().contains(1000));
        assert!(!Versions::parse("none").unwrap().contains(0));
        assert_eq!(Versions::parse("4").unwrap().to_string(), "4");
        assert!(Versions::parse("5-3").is_err());
    }
}
