//! `klamm decode`: a Kafka frame, request or response, printed as JSON
//! with every field named — and the records of Produce requests and Fetch
//! answers decoded too.
//!
//! The field names come from the codec's own `Debug` output (every
//! generated message derives it), read back by a small parser into JSON:
//! one source of truth for names, and nothing added to the library.

use std::path::PathBuf;

use bytes::Bytes;
use clap::Args;
use klamm::protocol::frame::{decode_request, decode_response};
use klamm::protocol::messages::ApiKey;
use klamm::protocol::primitives::Uuid;
use klamm::protocol::records::{DecodeOptions, decode_record_set};
use klamm::{Error, Result};
use serde_json::{Map, Value, json};

use crate::Outcome;
use crate::out::outln;

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The frame (default: stdin): binary, or hex text (spaces and line
    /// breaks ignored), with or without its 4-byte size prefix.
    pub file: Option<PathBuf>,
    /// Read a response (to a request of --api at --version) rather than a
    /// request.
    #[arg(long, requires_all = ["api", "version"])]
    pub response: bool,
    /// The API of a response: its name (Produce, Fetch, …) or key.
    #[arg(long)]
    pub api: Option<String>,
    /// The version of a response.
    #[arg(long)]
    pub version: Option<i16>,
    /// Leave `records` fields as bytes instead of decoding their batches.
    #[arg(long = "raw-records")]
    pub raw_records: bool,
}

pub fn run(args: DecodeArgs) -> Result<Outcome> {
    let input = match &args.file {
        Some(path) => std::fs::read(path)
            .map_err(|e| Error::config(path.display().to_string(), format!("cannot read: {e}")))?,
        None => {
            use std::io::Read;
            let mut v = Vec::new();
            std::io::stdin()
                .read_to_end(&mut v)
                .map_err(|e| Error::config("stdin", format!("cannot read: {e}")))?;
            v
        }
    };
    let doc = decode_frame(&input, &args)?;
    outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    Ok(Outcome::Done)
}

/// The frame's bytes: hex text decoded, the size prefix dropped when it
/// matches the length.
pub fn frame_bytes(input: &[u8]) -> Result<Vec<u8>> {
    let text: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let is_hex = !text.is_empty() && text.len() % 2 == 0 && text.iter().all(u8::is_ascii_hexdigit);
    let raw = if is_hex {
        text.chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap_or("zz"), 16))
            .collect::<std::result::Result<Vec<u8>, _>>()
            .map_err(|_| Error::config("frame", "bad hex"))?
    } else {
        input.to_vec()
    };
    if raw.len() >= 4 {
        let size = i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        if size >= 0 && size as usize == raw.len() - 4 {
            return Ok(raw[4..].to_vec());
        }
    }
    Ok(raw)
}

/// Parses an API given by name or key.
pub fn parse_api(s: &str) -> Result<ApiKey> {
    if let Ok(code) = s.parse::<i16>() {
        return ApiKey::from_code(code)
            .ok_or_else(|| Error::config("--api", format!("no API has key {code}")));
    }
    let wanted = s.to_ascii_lowercase().replace(['-', '_'], "");
    ApiKey::ALL
        .iter()
        .copied()
        .find(|k| k.name().to_ascii_lowercase() == wanted)
        .ok_or_else(|| Error::config("--api", format!("unknown API '{s}'")))
}

/// The JSON document for a frame.
pub fn decode_frame(input: &[u8], args: &DecodeArgs) -> Result<Value> {
    let frame = Bytes::from(frame_bytes(input)?);
    let records = !args.raw_records;
    if args.response {
        let api = parse_api(args.api.as_deref().unwrap_or_default())?;
        let version = args.version.unwrap_or_default();
        let (header, body) = decode_response(frame, api, version)?;
        Ok(json!({
            "kind": "response",
            "api": api.name(),
            "api_key": api.code(),
            "version": version,
            "header": to_json(&format!("{header:?}"), records),
            "body": unwrap_variant(to_json(&format!("{body:?}"), records)),
        }))
    } else {
        let (header, body) = decode_request(frame)?;
        let api = body.api_key();
        Ok(json!({
            "kind": "request",
            "api": api.name(),
            "api_key": api.code(),
            "version": header.request_api_version,
            "header": to_json(&format!("{header:?}"), records),
            "body": unwrap_variant(to_json(&format!("{body:?}"), records)),
        }))
    }
}

/// `RequestBody::Produce(ProduceRequest {..})` reads as the inner message.
fn unwrap_variant(v: Value) -> Value {
    match v {
        Value::Array(mut items) if items.len() == 1 => items.remove(0),
        other => other,
    }
}

/// The JSON of a value's `Debug` text; with `records`, byte fields named
/// `records` are decoded as record sets.
pub fn to_json(debug: &str, records: bool) -> Value {
    let mut p = Parser {
        s: debug.as_bytes(),
        i: 0,
        records,
    };
    match p.value(None) {
        Some(v) => v,
        None => Value::String(debug.to_string()),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    records: bool,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> String {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    /// One value; `field` is the name of the field it is the value of.
    fn value(&mut self, field: Option<&str>) -> Option<Value> {
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(Value::String),
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                while !self.eat(b']') {
                    items.push(self.value(field)?);
                    self.eat(b',');
                }
                Some(Value::Array(items))
            }
            b'{' => {
                self.i += 1;
                let mut map = Map::new();
                while !self.eat(b'}') {
                    let k = match self.value(None)? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    if !self.eat(b':') {
                        return None;
                    }
                    map.insert(k, self.value(None)?);
                    self.eat(b',');
                }
                Some(Value::Object(map))
            }
            b'b' if self.s.get(self.i + 1) == Some(&b'"') => {
                self.i += 1;
                let bytes = self.byte_string()?;
                Some(self.bytes_value(field, bytes))
            }
            c if c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                self.i += 1;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_alphanumeric()
                        || self.s[self.i] == b'.'
                        || self.s[self.i] == b'-'
                        || self.s[self.i] == b'+')
                {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
                Some(
                    text.parse::<i64>()
                        .map(Value::from)
                        .or_else(|_| text.parse::<f64>().map(Value::from))
                        .unwrap_or_else(|_| Value::String(text.to_string())),
                )
            }
            _ => {
                let name = self.ident();
                if name.is_empty() {
                    return None;
                }
                if self.eat(b'{') {
                    let mut map = Map::new();
                    while !self.eat(b'}') {
                        if self.eat(b'.') {
                            self.eat(b'.'); // `..` of a non-exhaustive Debug
                            continue;
                        }
                        let key = self.ident();
                        if !self.eat(b':') {
                            return None;
                        }
                        let v = self.value(Some(&key))?;
                        self.eat(b',');
                        let empty_tags = key == "unknown_tagged_fields"
                            && v.as_array().is_some_and(|a| a.is_empty());
                        if key != "tags_present" && !empty_tags {
                            map.insert(key, v);
                        }
                    }
                    return Some(Value::Object(map));
                }
                if name == "Uuid" && self.eat(b'(') {
                    // 32 hex digits, read as text (digits alone would
                    // otherwise read as a number).
                    let start = self.i;
                    let end = start + self.s[start..].iter().position(|&b| b == b')')?;
                    let text = std::str::from_utf8(&self.s[start..end])
                        .ok()?
                        .trim()
                        .to_string();
                    self.i = end + 1;
                    return Some(Value::String(
                        Uuid::parse(&text)
                            .map(|u| u.to_kafka_string())
                            .unwrap_or(text),
                    ));
                }
                if self.eat(b'(') {
                    let mut items = Vec::new();
                    while !self.eat(b')') {
                        items.push(self.value(field)?);
                        self.eat(b',');
                    }
                    // Some(x) is x; a variant around a value (the body's
                    // API, a batch's V2) is a one-element array that
                    // unwrap_variant opens where it is expected.
                    return Some(match (name.as_str(), items.len()) {
                        ("Some", 1) => items.remove(0),
                        _ => Value::Array(items),
                    });
                }
                Some(match name.as_str() {
                    "None" => Value::Null,
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => Value::String(name),
                })
            }
        }
    }

    /// Bytes as JSON: record sets decoded in `records` fields, text that
    /// reads as text, hex otherwise.
    fn bytes_value(&self, field: Option<&str>, bytes: Vec<u8>) -> Value {
        if self.records && field == Some("records") {
            return match decode_record_set(Bytes::from(bytes.clone()), &DecodeOptions::default()) {
                Ok(set) => {
                    let mut v = to_json(&format!("{set:?}"), false);
                    if let Some(batches) = v.get_mut("batches").and_then(Value::as_array_mut) {
                        for b in batches.iter_mut() {
                            *b = unwrap_variant(b.take());
                        }
                    }
                    v
                }
                Err(e) => json!({"undecodable": e.to_string(), "hex": hex(&bytes)}),
            };
        }
        match std::str::from_utf8(&bytes) {
            Ok(s) if s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') => {
                Value::String(s.to_string())
            }
            _ => json!({"hex": hex(&bytes)}),
        }
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.escaped()?).ok()
    }

    fn byte_string(&mut self) -> Option<Vec<u8>> {
        self.escaped()
    }

    /// The bytes of a quoted `Debug` string or byte string (the cursor on
    /// its opening quote), escapes undone: `\n \t \r \0 \\ \" \'`,
    /// `\xHH` (bytes) and `\u{HEX}` (chars, as UTF-8).
    fn escaped(&mut self) -> Option<Vec<u8>> {
        self.i += 1; // "
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return Some(out),
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'0' => out.push(0),
                        b'x' => {
                            let h = std::str::from_utf8(self.s.get(self.i..self.i + 2)?).ok()?;
                            out.push(u8::from_str_radix(h, 16).ok()?);
                            self.i += 2;
                        }
                        b'u' => {
                            let start = self.i + 1; // past {
                            let end =
                                start + self.s.get(start..)?.iter().position(|&b| b == b'}')?;
                            let hex = std::str::from_utf8(&self.s[start..end]).ok()?;
                            let ch = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                            self.i = end + 1;
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_text_reads_as_json() {
        let v = to_json(
            r#"Outer { name: "a\"b", n: -5, f: 1.5, opt: None, some: Some(7), list: [1, 2], id: Uuid(ab50672cbf2f400999a4a9cac759564f), raw: b"\x00\x01", text: b"hi", tags_present: TagPresence(0b0), unknown_tagged_fields: [], kind: CreateTime }"#,
            true,
        );
        assert_eq!(
            v,
            json!({"name": "a\"b", "n": -5, "f": 1.5, "opt": null, "some": 7, "list": [1, 2],
                   "id": "q1BnLL8vQAmZpKnKx1lWTw", "raw": {"hex": "0001"}, "text": "hi", "kind": "CreateTime"})
        );
    }

    #[test]
    fn escapes_and_multibyte_text_survive() {
        let v = to_json(r#"X { s: "ü\u{1b}\'q", b: b"\xff\\" }"#, false);
        assert_eq!(v, json!({"s": "ü\u{1b}'q", "b": {"hex": "ff5c"}}));
    }

    #[test]
    fn frames_lose_their_size_prefix_and_hex_is_read() {
        assert_eq!(frame_bytes(b"00000002 abcd").unwrap(), vec![0xab, 0xcd]);
        assert_eq!(frame_bytes(&[0, 0, 0, 1, 9]).unwrap(), vec![9]);
        assert_eq!(frame_bytes(&[1, 2, 3]).unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_api("produce").unwrap(), ApiKey::Produce);
        assert_eq!(parse_api("1").unwrap(), ApiKey::Fetch);
        assert!(parse_api("nope").is_err());
    }
}
