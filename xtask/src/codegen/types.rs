//! Rust types and expressions for spec field types.

use crate::spec::Field;

#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    Bool,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    F64,
    Varint,
    Varlong,
    Uvarint,
    Uuid,
    Str,
    Bytes,
    Records,
    Struct(String),
    Array(Box<Ty>),
}

impl Ty {
    pub fn parse(s: &str) -> Ty {
        if let Some(inner) = s.strip_prefix("[]") {
            return Ty::Array(Box::new(Ty::parse(inner)));
        }
        match s {
            "bool" => Ty::Bool,
            "int8" => Ty::I8,
            "int16" => Ty::I16,
            "uint16" => Ty::U16,
            "int32" => Ty::I32,
            "uint32" => Ty::U32,
            "int64" => Ty::I64,
            "float64" => Ty::F64,
            "varint" => Ty::Varint,
            "varlong" => Ty::Varlong,
            "uvarint" => Ty::Uvarint,
            "uuid" => Ty::Uuid,
            "string" => Ty::Str,
            "bytes" => Ty::Bytes,
            "records" => Ty::Records,
            other => Ty::Struct(other.to_string()),
        }
    }

    pub fn can_be_null(&self) -> bool {
        matches!(
            self,
            Ty::Str | Ty::Bytes | Ty::Records | Ty::Struct(_) | Ty::Array(_)
        )
    }

    /// The Rust type of a non-null value.
    pub fn rust(&self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::I8 => "i8".into(),
            Ty::I16 => "i16".into(),
            Ty::U16 => "u16".into(),
            Ty::I32 | Ty::Varint => "i32".into(),
            Ty::U32 | Ty::Uvarint => "u32".into(),
            Ty::I64 | Ty::Varlong => "i64".into(),
            Ty::F64 => "f64".into(),
            Ty::Uuid => "Uuid".into(),
            Ty::Str => "String".into(),
            Ty::Bytes | Ty::Records => "Bytes".into(),
            Ty::Struct(n) => n.clone(),
            Ty::Array(e) if **e == Ty::I32 => "Int32List".into(),
            Ty::Array(e) => format!("Vec<{}>", e.rust()),
        }
    }

    /// An expression of type `Result<T, DecodeError>` reading one non-null value.
    pub fn read(&self, buf: &str, compact: &str) -> String {
        match self {
            Ty::Array(e) if **e == Ty::I32 => {
                format!("required(read_i32_array({buf}, {compact}))")
            }
            Ty::Array(e) => format!(
                "required(read_array({buf}, {compact}, {}))",
                e.read_fn(compact)
            ),
            Ty::Struct(n) => format!("{n}::decode_body({buf}, version)"),
            Ty::Str => format!("read_string({buf}, {compact})"),
            Ty::Bytes | Ty::Records => format!("read_bytes({buf}, {compact})"),
            _ => format!("{}({buf})", self.simple_reader()),
        }
    }

    /// An expression of type `Result<Option<T>, DecodeError>` reading a nullable value.
    pub fn read_nullable(&self, buf: &str, compact: &str) -> String {
        match self {
            Ty::Array(e) if **e == Ty::I32 => format!("read_i32_array({buf}, {compact})"),
            Ty::Array(e) => format!("read_array({buf}, {compact}, {})", e.read_fn(compact)),
            Ty::Struct(n) => {
                format!("read_nullable_struct({buf}, |b| {n}::decode_body(b, version))")
            }
            Ty::Str => format!("read_nullable_string({buf}, {compact})"),
            Ty::Bytes | Ty::Records => format!("read_nullable_bytes({buf}, {compact})"),
            _ => unreachable!("{self:?} cannot be null"),
        }
    }

    fn simple_reader(&self) -> &'static str {
        match self {
            Ty::Bool => "read_bool",
            Ty::I8 => "read_i8",
            Ty::I16 => "read_i16",
            Ty::U16 => "read_u16",
            Ty::I32 => "read_i32",
            Ty::U32 => "read_u32",
            Ty::I64 => "read_i64",
            Ty::F64 => "read_f64",
            Ty::Varint => "read_varint",
            Ty::Varlong => "read_varlong",
            Ty::Uvarint => "read_unsigned_varint",
            Ty::Uuid => "read_uuid",
            _ => unreachable!(),
        }
    }

    /// A function (path or closure) reading one array element.
    fn read_fn(&self, compact: &str) -> String {
        match self {
            Ty::Array(_) | Ty::Struct(_) | Ty::Str | Ty::Bytes | Ty::Records => {
                format!("|b| {}", self.read("b", compact))
            }
            _ => self.simple_reader().to_string(),
        }
    }

    /// Statements writing the non-null value `v` (a reference).
    pub fn write(&self, v: &str, buf: &str, compact: &str) -> String {
        let (val, meth) = (val(v), meth(v));
        match self {
            Ty::Bool => format!("{buf}.put_u8(u8::from({val}));"),
            Ty::I8 => format!("{buf}.put_i8({val});"),
            Ty::I16 => format!("{buf}.put_i16({val});"),
            Ty::U16 => format!("{buf}.put_u16({val});"),
            Ty::I32 => format!("{buf}.put_i32({val});"),
            Ty::U32 => format!("{buf}.put_u32({val});"),
            Ty::I64 => format!("{buf}.put_i64({val});"),
            Ty::F64 => format!("{buf}.put_f64({val});"),
            Ty::Varint => format!("put_varint({buf}, {val});"),
            Ty::Varlong => format!("put_varlong({buf}, {val});"),
            Ty::Uvarint => format!("put_unsigned_varint({buf}, {val});"),
            Ty::Uuid => format!("put_uuid({buf}, {v});"),
            Ty::Str => format!("put_string({buf}, {v}, {compact})?;"),
            Ty::Bytes | Ty::Records => format!("put_bytes({buf}, {v}, {compact})?;"),
            Ty::Struct(_) => format!("{meth}.encode_body({buf}, version)?;"),
            Ty::Array(e) => format!(
                "put_array({buf}, Some({v}), {compact}, |b, e| {{ {} Ok(()) }})?;",
                e.write("e", "b", compact)
            ),
        }
    }

    /// Statements writing the nullable value `v` (an `&Option<T>`).
    pub fn write_nullable(&self, v: &str, buf: &str, compact: &str) -> String {
        match self {
            Ty::Str => format!("put_nullable_string({buf}, {v}.as_deref(), {compact})?;"),
            Ty::Bytes | Ty::Records => {
                format!("put_nullable_bytes({buf}, {v}.as_deref(), {compact})?;")
            }
            Ty::Struct(_) => format!(
                "put_nullable_struct({buf}, {v}.as_ref(), |b, s| s.encode_body(b, version))?;"
            ),
            Ty::Array(e) => format!(
                "put_array({buf}, {v}.as_deref(), {compact}, |b, e| {{ {} Ok(()) }})?;",
                e.write("e", "b", compact)
            ),
            _ => unreachable!(),
        }
    }

    /// The encoded size of the non-null value `v` (a reference).
    pub fn len(&self, v: &str, compact: &str) -> String {
        let (val, meth) = (val(v), meth(v));
        match self {
            Ty::Bool | Ty::I8 => "1".into(),
            Ty::I16 | Ty::U16 => "2".into(),
            Ty::I32 | Ty::U32 => "4".into(),
            Ty::I64 | Ty::F64 => "8".into(),
            Ty::Uuid => "16".into(),
            Ty::Varint => format!("varint_len({val})"),
            Ty::Varlong => format!("varlong_len({val})"),
            Ty::Uvarint => format!("unsigned_varint_len({val})"),
            Ty::Str => format!("string_len({v}, {compact})"),
            Ty::Bytes | Ty::Records => format!("bytes_len({v}, {compact})"),
            Ty::Struct(_) => format!("{meth}.body_len(version)"),
            Ty::Array(e) => {
                format!(
                    "array_len(Some({v}), {compact}, |e| {})",
                    e.len_elem(compact)
                )
            }
        }
    }

    fn len_elem(&self, compact: &str) -> String {
        let l = self.len("e", compact);
        if l.contains('e') {
            l
        } else {
            format!("{{ let _ = e; {l} }}")
        }
    }

    /// The encoded size of the nullable value `v` (an `&Option<T>`).
    pub fn len_nullable(&self, v: &str, compact: &str) -> String {
        match self {
            Ty::Str => format!("nullable_string_len({v}.as_deref(), {compact})"),
            Ty::Bytes | Ty::Records => format!("nullable_bytes_len({v}.as_deref(), {compact})"),
            Ty::Struct(_) => format!("1 + {v}.as_ref().map_or(0, |s| s.body_len(version))"),
            Ty::Array(e) => {
                format!(
                    "array_len({v}.as_deref(), {compact}, |e| {})",
                    e.len_elem(compact)
                )
            }
            _ => unreachable!(),
        }
    }

    /// An expression producing a random non-null value (for tests).
    pub fn random(&self) -> String {
        match self {
            Ty::Bool => "rng.bool()".into(),
            Ty::I8 => "rng.next_u64() as i8".into(),
            Ty::I16 => "rng.next_u64() as i16".into(),
            Ty::U16 => "rng.next_u64() as u16".into(),
            Ty::I32 | Ty::Varint => "rng.next_u64() as i32".into(),
            Ty::U32 | Ty::Uvarint => "rng.next_u64() as u32".into(),
            Ty::I64 | Ty::Varlong => "rng.next_u64() as i64".into(),
            Ty::F64 => "rng.f64()".into(),
            Ty::Uuid => "rng.uuid()".into(),
            Ty::Str => "rng.string()".into(),
            Ty::Bytes | Ty::Records => "rng.bytes()".into(),
            Ty::Struct(n) => format!("{n}::random(rng, version)"),
            Ty::Array(e) if **e == Ty::I32 => {
                format!("Int32List::from(rng.vec(|rng| {}))", e.random())
            }
            Ty::Array(e) => format!("rng.vec(|rng| {})", e.random()),
        }
    }
}

/// The value of a `Copy` field given a reference expression (`&self.x` or `e`).
fn val(v: &str) -> String {
    match v.strip_prefix('&') {
        Some(place) => place.to_string(),
        None => format!("*{v}"),
    }
}

/// The receiver for a method call given a reference expression.
fn meth(v: &str) -> String {
    v.strip_prefix('&').unwrap_or(v).to_string()
}

/// Parses an integer default as written in the spec (decimal or `0x` hex).
fn int_literal(d: &str) -> Result<i128, String> {
    let (neg, digits) = match d.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, d),
    };
    let v = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i128::from_str_radix(h, 16)
    } else {
        digits.parse::<i128>()
    }
    .map_err(|_| format!("bad integer default `{d}`"))?;
    Ok(if neg { -v } else { v })
}

fn rust_str(s: &str) -> String {
    format!("{s:?}")
}

/// The default value expression for a field, and whether the field is an `Option`.
pub fn default_expr(f: &Field, ty: &Ty, nullable: bool) -> Result<String, String> {
    let d = f.default.as_deref();
    let is_null = d == Some("null");
    if is_null && !nullable {
        return Err(format!("field {}: default null but never nullable", f.name));
    }
    let base = match ty {
        Ty::Bool => match d {
            None | Some("false") => "false".to_string(),
            Some("true") => "true".to_string(),
            Some(o) => return Err(format!("field {}: bad bool default {o}", f.name)),
        },
        Ty::F64 => match d {
            None => "0.0".to_string(),
            Some(o) => {
                let v: f64 = o
                    .parse()
                    .map_err(|_| format!("field {}: bad float {o}", f.name))?;
                format!("{v:?}")
            }
        },
        Ty::I8
        | Ty::I16
        | Ty::U16
        | Ty::I32
        | Ty::U32
        | Ty::I64
        | Ty::Varint
        | Ty::Varlong
        | Ty::Uvarint => {
            let v = d.map(int_literal).transpose()?.unwrap_or(0);
            let (lo, hi): (i128, i128) = match ty {
                Ty::I8 => (i8::MIN.into(), i8::MAX.into()),
                Ty::I16 => (i16::MIN.into(), i16::MAX.into()),
                Ty::U16 => (0, u16::MAX.into()),
                Ty::I32 | Ty::Varint => (i32::MIN.into(), i32::MAX.into()),
                Ty::U32 | Ty::Uvarint => (0, u32::MAX.into()),
                _ => (i64::MIN.into(), i64::MAX.into()),
            };
            if v < lo || v > hi {
                return Err(format!("field {}: default {v} out of range", f.name));
            }
            v.to_string()
        }
        Ty::Uuid => match d {
            None => "Uuid::ZERO".to_string(),
            Some(o) => return Err(format!("field {}: uuid default {o} unsupported", f.name)),
        },
        Ty::Str => match d {
            None | Some("") | Some("null") => "String::new()".to_string(),
            Some(s) => format!("String::from({})", rust_str(s)),
        },
        Ty::Bytes | Ty::Records => "Bytes::new()".to_string(),
        Ty::Struct(n) => format!("{n}::default()"),
        Ty::Array(e) if **e == Ty::I32 => "Int32List::new()".to_string(),
        Ty::Array(_) => "Vec::new()".to_string(),
    };
    if !nullable {
        if d.is_some() && matches!(ty, Ty::Bytes | Ty::Records | Ty::Array(_) | Ty::Struct(_)) {
            return Err(format!("field {}: unsupported default for {ty:?}", f.name));
        }
        return Ok(base);
    }
    // Records fields default to null, like the Java client's.
    if is_null || (matches!(ty, Ty::Records) && d.is_none()) {
        Ok("None".into())
    } else {
        Ok(format!("Some({base})"))
    }
}

/// An expression that is true when `v` (a place like `self.x`) does not hold the default.
pub fn is_not_default_expr(v: &str, ty: &Ty, nullable: bool, default: &str) -> String {
    if nullable {
        return if default == "None" {
            format!("{v}.is_some()")
        } else {
            format!("{v} != {default}")
        };
    }
    match ty {
        Ty::Bool if default == "false" => v.to_string(),
        Ty::Bool => format!("!{v}"),
        Ty::Str if default == "String::new()" => format!("!{v}.is_empty()"),
        Ty::Str => format!(
            "{v} != {}",
            default
                .trim_start_matches("String::from(")
                .trim_end_matches(')')
        ),
        Ty::Bytes | Ty::Records | Ty::Array(_) => format!("!{v}.is_empty()"),
        _ => format!("{v} != {default}"),
    }
}

/// Whether a default expression is what `#[derive(Default)]` would give.
pub fn is_type_default(default: &str) -> bool {
    matches!(
        default,
        "0" | "false"
            | "0.0"
            | "String::new()"
            | "Bytes::new()"
            | "Vec::new()"
            | "Int32List::new()"
            | "None"
            | "Uuid::ZERO"
    ) || (default.ends_with("::default()") && !default.starts_with("Some("))
}
