//! A tiny JSON writer: build a [`Value`], then print it compact or indented.
//!
//! A value tree rather than a streaming writer: whatever is built prints as well-formed JSON, with no
//! open object or missing comma to get wrong, and our outputs (`status -o json`, `nbft show -o json`)
//! are a few kilobytes. Object keys keep the order they were given in, so the output is stable.
//!
//! Strings are escaped as RFC 8259 requires (`"`, `\` and U+0000..U+001F) plus DEL; everything
//! else, non-ASCII included, passes through as UTF-8. A float that is not finite prints as `null`,
//! since JSON has no NaN or infinity.
//!
//! # References
//! - RFC 8259 section 7 (strings), section 6 (numbers)

use std::fmt::Write;

/// One JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    String(String),
    Array(Vec<Value>),
    /// Members in the order given; duplicate keys are the builder's mistake, printed as given.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// An object from `(key, value)` pairs, in that order.
    pub fn object<K: Into<String>>(members: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(members.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn array(items: impl IntoIterator<Item = Value>) -> Value {
        Value::Array(items.into_iter().collect())
    }

    /// On one line, no spaces.
    pub fn to_compact(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, None);
        out
    }

    /// Two spaces per level, `"key": value`, as nvme-cli's `-o json` prints; no final newline.
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, Some(0));
        out
    }

    /// `depth`: `None` for compact output, else the current indentation level.
    fn write(&self, out: &mut String, depth: Option<usize>) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Value::UInt(n) => {
                let _ = write!(out, "{n}");
            }
            // Rust prints finite floats without an exponent, which JSON accepts as is.
            Value::Float(x) if x.is_finite() => {
                let _ = write!(out, "{x}");
            }
            Value::Float(_) => out.push_str("null"),
            Value::String(s) => write_string(out, s),
            Value::Array(items) => {
                write_seq(out, depth, '[', ']', items, |out, v, d| v.write(out, d));
            }
            Value::Object(members) => {
                write_seq(out, depth, '{', '}', members, |out, (k, v), d| {
                    write_string(out, k);
                    out.push_str(if d.is_some() { ": " } else { ":" });
                    v.write(out, d);
                });
            }
        }
    }
}

/// The brackets, the items separated by commas, and (when pretty) one item per indented line.
/// An empty container stays `[]` or `{}` on one line.
fn write_seq<T>(
    out: &mut String,
    depth: Option<usize>,
    open: char,
    close: char,
    items: &[T],
    mut item: impl FnMut(&mut String, &T, Option<usize>),
) {
    out.push(open);
    let inner = depth.map(|d| d + 1);
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, inner);
        item(out, v, inner);
    }
    if !items.is_empty() {
        newline(out, depth);
    }
    out.push(close);
}

fn newline(out: &mut String, depth: Option<usize>) {
    if let Some(d) = depth {
        out.push('\n');
        for _ in 0..d {
            out.push_str("  ");
        }
    }
}

/// `s` as a JSON string literal, quotes included.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            // DEL is legal raw, but as invisible on a terminal as the C0 controls.
            c if c < ' ' || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::UInt(n)
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::UInt(n.into())
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Value {
        Value::Int(n.into())
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float(x)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

/// `None` is `null`.
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> String {
        Value::from(text).to_compact()
    }

    #[test]
    fn scalars() {
        assert_eq!(Value::Null.to_compact(), "null");
        assert_eq!(Value::from(true).to_compact(), "true");
        assert_eq!(Value::from(false).to_pretty(), "false");
        assert_eq!(Value::from(u64::MAX).to_compact(), "18446744073709551615");
        assert_eq!(Value::from(i64::MIN).to_compact(), "-9223372036854775808");
        assert_eq!(Value::from(-1i32).to_compact(), "-1");
        assert_eq!(Value::from(7u32).to_compact(), "7");
        assert_eq!(Value::from(0.5).to_compact(), "0.5");
        assert_eq!(Value::from(1e21).to_compact(), "1000000000000000000000");
        assert_eq!(Value::from(-2.0).to_compact(), "-2");
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(Value::from(x).to_compact(), "null");
        }
        assert_eq!(Value::from(None::<u64>).to_compact(), "null");
        assert_eq!(Value::from(Some("x")).to_compact(), "\"x\"");
    }

    #[test]
    fn string_escapes() {
        assert_eq!(s(""), r#""""#);
        assert_eq!(s(r#"a"b\c/d"#), r#""a\"b\\c/d""#);
        assert_eq!(s("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(s("\0\u{1}\u{1f}\u{7f}"), r#""\u0000\u0001\u001f\u007f""#);
        assert_eq!(s("\u{1b}[31mred"), r#""\u001b[31mred""#);
        // Not ASCII: as is, in UTF-8, including the line separators JavaScript once choked on.
        assert_eq!(s("é ü 日本 🦀 \u{2028}"), "\"é ü 日本 🦀 \u{2028}\"");
        assert_eq!(s(" "), "\" \"");
    }

    #[test]
    fn every_control_character_is_escaped() {
        for b in (0u8..0x20).chain([0x7f]) {
            let out = s(&(b as char).to_string());
            assert!(out.starts_with("\"\\") && out.is_ascii(), "{b:#x}: {out}");
            assert!(!out.bytes().any(|c| c < 0x20 || c == 0x7f), "{b:#x}");
        }
    }

    #[test]
    fn containers_compact() {
        let v = Value::object([
            ("a", Value::from(1u64)),
            ("b", Value::array([Value::Null, Value::from("x")])),
            ("c", Value::object::<&str>([])),
            ("d", Value::array([])),
        ]);
        assert_eq!(v.to_compact(), r#"{"a":1,"b":[null,"x"],"c":{},"d":[]}"#);
    }

    #[test]
    fn containers_pretty() {
        let v = Value::object([
            ("name", Value::from("nvme0")),
            (
                "list",
                Value::array([
                    Value::from(1u64),
                    Value::object([("k", Value::from(false))]),
                ]),
            ),
            ("empty", Value::array([])),
            ("none", Value::object::<String>([])),
        ]);
        let want = r#"{
  "name": "nvme0",
  "list": [
    1,
    {
      "k": false
    }
  ],
  "empty": [],
  "none": {}
}"#;
        assert_eq!(v.to_pretty(), want);
        assert_eq!(Value::array([]).to_pretty(), "[]");
    }

    #[test]
    fn keys_are_escaped_and_keep_their_order() {
        let v = Value::object([("z\"\n", Value::Null), ("a", Value::Null)]);
        assert_eq!(v.to_compact(), r#"{"z\"\n":null,"a":null}"#);
    }
}
