//! Record classification (SPEC §3): decoded JSON text → event, property set,
//! alias, or a reject reason. Pure: no I/O, no filters (those need the
//! identity groups, see `resolve`).

use std::fmt;

use sonic_rs::{JsonType, JsonValueTrait, LazyValue};

/// Longest name or value stored, in characters (`VARCHAR(255)`).
pub const MAX_CHARS: usize = 255;

/// Largest `_t` accepted: 9999-12-31 23:59:59 UTC.
pub const MAX_UNIX_SECONDS: i64 = 253_402_300_799;

/// Why a line was not stored. The order is the order of the accounting table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    BadTimestamp,
    Empty,
    IgnoredUser,
    Malformed,
    NoIdentity,
    NotWhitelisted,
    NumericAlias,
    SelfAlias,
}

impl Reject {
    pub const ALL: [Reject; 8] = [
        Reject::BadTimestamp,
        Reject::Empty,
        Reject::IgnoredUser,
        Reject::Malformed,
        Reject::NoIdentity,
        Reject::NotWhitelisted,
        Reject::NumericAlias,
        Reject::SelfAlias,
    ];

    /// The reason's name as printed, stored and written to the rejects file.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::BadTimestamp => "bad_timestamp",
            Reject::Empty => "empty",
            Reject::IgnoredUser => "ignored_user",
            Reject::Malformed => "malformed",
            Reject::NoIdentity => "no_identity",
            Reject::NotWhitelisted => "not_whitelisted",
            Reject::NumericAlias => "numeric_alias",
            Reject::SelfAlias => "self_alias",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One classified line. Strings are already cut to [`MAX_CHARS`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Event {
        identity: String,
        t: i64,
        name: String,
        props: Vec<(String, String)>,
    },
    PropertySet {
        identity: String,
        t: i64,
        props: Vec<(String, String)>,
    },
    Alias {
        identity: String,
        other: String,
        t: i64,
    },
}

impl Record {
    pub fn props(&self) -> &[(String, String)] {
        match self {
            Record::Event { props, .. } | Record::PropertySet { props, .. } => props,
            Record::Alias { .. } => &[],
        }
    }
}

/// True for identities made only of ASCII digits: KM's numeric account ids.
pub fn is_numeric(identity: &[u8]) -> bool {
    !identity.is_empty() && identity.iter().all(u8::is_ascii_digit)
}

/// Classifies one decoded line, checking the conditions of SPEC §3 in order.
pub fn classify(text: &str) -> Result<Record, Reject> {
    let fields = parse_object(text).ok_or(Reject::Malformed)?;

    let mut identity = None;
    let mut other = None;
    let mut name = None;
    let mut t = None;
    let mut props: Vec<(String, String)> = Vec::new();
    // Position of each property name, for lines with many keys (a linear
    // scan would make a hostile line quadratic).
    let mut positions: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut dropped: Vec<usize> = Vec::new();
    for (key, value) in fields {
        match &*key {
            "_p" => identity = Some(value),
            "_p2" => other = Some(value),
            "_n" => name = Some(value),
            "_t" => t = Some(value),
            _ => {
                let key = cut(key);
                // Duplicate keys: the last value wins, in the place of the
                // first; a null drops the key (kept as an empty slot here).
                let slot = if props.len() < 16 {
                    props.iter().position(|(k, _)| *k == key)
                } else {
                    if positions.is_empty() {
                        positions
                            .extend(props.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)));
                    }
                    positions.get(&key).copied()
                };
                match (value_text(&value), slot) {
                    (Some(v), Some(i)) => {
                        props[i].1 = v;
                        dropped.retain(|&d| d != i);
                    }
                    (Some(v), None) => {
                        if !positions.is_empty() {
                            positions.insert(key.clone(), props.len());
                        }
                        props.push((key, v));
                    }
                    (None, Some(i)) => dropped.push(i),
                    (None, None) => {}
                }
            }
        }
    }

    if !dropped.is_empty() {
        // A later null removes the key, unless a later value set it again.
        let mut keep = vec![true; props.len()];
        for i in dropped {
            keep[i] = false;
        }
        let mut i = 0;
        props.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }
    let identity = non_empty_text(identity.as_ref()).ok_or(Reject::NoIdentity)?;
    let t = t
        .as_ref()
        .and_then(|v| timestamp(v))
        .ok_or(Reject::BadTimestamp)?;

    if let Some(other) = non_empty_text(other.as_ref()) {
        if identity == other {
            return Err(Reject::SelfAlias);
        }
        if is_numeric(identity.as_bytes()) && is_numeric(other.as_bytes()) {
            return Err(Reject::NumericAlias);
        }
        return Ok(Record::Alias { identity, other, t });
    }
    if let Some(name) = non_empty_text(name.as_ref()) {
        return Ok(Record::Event {
            identity,
            t,
            name,
            props,
        });
    }
    if props.is_empty() {
        return Err(Reject::Empty);
    }
    Ok(Record::PropertySet { identity, t, props })
}

/// Parses a JSON object into its members, in order. `None` when the text is
/// not exactly one JSON object (garbage after the closing brace included).
fn parse_object(text: &str) -> Option<Vec<(String, LazyValue<'_>)>> {
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if !trimmed.starts_with('{') || !trimmed.ends_with('}') || too_deep(trimmed.as_bytes()) {
        return None;
    }
    let mut fields = Vec::with_capacity(8);
    let mut end = 1; // just past the opening brace
    for member in sonic_rs::to_object_iter(trimmed) {
        let (key, value) = member.ok()?;
        let raw = value.as_raw_str();
        let offset = (raw.as_ptr() as usize).checked_sub(trimmed.as_ptr() as usize)?;
        end = offset + raw.len();
        if end > trimmed.len() {
            return None;
        }
        fields.push((String::from(&*key), value));
    }
    // The lazy iterator stops at the closing brace without looking further:
    // what follows the last value must be exactly `}`.
    let rest = trimmed[end..].trim_start_matches(|c: char| c.is_ascii_whitespace());
    if rest != "}" {
        return None;
    }
    Some(fields)
}

/// Deepest nesting of arrays and objects accepted: the parser recurses, and
/// a hostile line must not exhaust a worker's stack.
const MAX_DEPTH: usize = 128;

/// True when brackets outside strings nest deeper than [`MAX_DEPTH`].
fn too_deep(text: &[u8]) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The text of a value (SPEC §3): strings as they are, numbers as their JSON
/// text, booleans, arrays and objects as compact JSON; `None` for null.
fn value_text(value: &LazyValue<'_>) -> Option<String> {
    let text = match value.get_type() {
        JsonType::Null => return None,
        JsonType::String => string_value(value),
        JsonType::Number | JsonType::Boolean => value.as_raw_str().to_owned(),
        JsonType::Array | JsonType::Object => compact_json(value.as_raw_str()),
    };
    Some(cut(text))
}

fn non_empty_text(value: Option<&LazyValue<'_>>) -> Option<String> {
    value.and_then(value_text).filter(|s| !s.is_empty())
}

/// A JSON string's content. Lone surrogates (`"\ud800"`), which sonic-rs
/// refuses to decode, become U+FFFD like any other invalid text.
fn string_value(value: &LazyValue<'_>) -> String {
    match value.as_str() {
        Some(s) => s.to_owned(),
        None => unescape_lossy(value.as_raw_str()),
    }
}

/// Decodes a raw JSON string literal (quotes included), replacing invalid
/// `\u` escapes with U+FFFD. Only used on the rare strings sonic-rs refuses.
fn unescape_lossy(raw: &str) -> String {
    let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    let hex4 = |chars: &mut std::str::Chars<'_>| -> Option<u32> {
        let s: String = chars.by_ref().take(4).collect();
        u32::from_str_radix(&s, 16).ok().filter(|_| s.len() == 4)
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let Some(hi) = hex4(&mut chars) else {
                    out.push(char::REPLACEMENT_CHARACTER);
                    continue;
                };
                if (0xD800..0xDC00).contains(&hi) {
                    let mut look = chars.clone();
                    if look.next() == Some('\\') && look.next() == Some('u') {
                        if let Some(lo) = hex4(&mut look).filter(|lo| (0xDC00..0xE000).contains(lo))
                        {
                            let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                            out.push(char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER));
                            chars = look;
                            continue;
                        }
                    }
                    out.push(char::REPLACEMENT_CHARACTER);
                } else {
                    out.push(char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Removes insignificant whitespace from valid JSON text.
fn compact_json(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

/// `_t` as unix seconds: an integer, a float (truncated) or a string holding
/// either, between 1970-01-01 and 9999-12-31 inclusive.
fn timestamp(value: &LazyValue<'_>) -> Option<i64> {
    match value.get_type() {
        JsonType::Number => parse_seconds(value.as_raw_str()),
        JsonType::String => value.as_str().and_then(parse_seconds),
        _ => None,
    }
}

/// Parses a JSON-number-shaped text into seconds within the allowed range.
pub fn parse_seconds(text: &str) -> Option<i64> {
    if !is_json_number(text) {
        return None;
    }
    if let Ok(n) = text.parse::<i64>() {
        return (0..=MAX_UNIX_SECONDS).contains(&n).then_some(n);
    }
    // Truncated from the text itself, not rounded through f64: the
    // integer part of `mantissa × 10^exp`, range-checked on the real value.
    let (mantissa, exp) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().ok()?),
        None => (text, 0),
    };
    let negative = mantissa.starts_with('-');
    let mantissa = mantissa.trim_start_matches('-');
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = format!("{int}{frac}");
    if digits.bytes().all(|b| b == b'0') {
        return Some(0);
    }
    if negative {
        return None;
    }
    // Position of the decimal point within `digits`.
    let point = int.len() as i64 + exp;
    if point <= 0 {
        return Some(0);
    }
    let whole = digits.trim_start_matches('0').len() as i64 - (digits.len() as i64 - point);
    if whole > 12 {
        return None; // more than 12 integer digits is past 9999
    }
    let point = point as usize;
    let int_digits: String = if point <= digits.len() {
        digits[..point].to_owned()
    } else {
        format!("{digits}{}", "0".repeat(point - digits.len()))
    };
    let n: i64 = int_digits.trim_start_matches('0').parse().unwrap_or(0);
    (n <= MAX_UNIX_SECONDS).then_some(n)
}

/// JSON number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if b.first() == Some(&b'-') {
        i += 1;
    }
    if b.get(i) == Some(&b'0') {
        i += 1;
    } else if !digits(&mut i) {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// Cuts a string to [`MAX_CHARS`] characters.
pub fn cut(mut s: String) -> String {
    if s.len() > MAX_CHARS {
        if let Some((i, _)) = s.char_indices().nth(MAX_CHARS) {
            s.truncate(i);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn event_with_properties() {
        let r = classify(
            r#"{"_n":"signed up","_p":"a@b.c","_t":1400000000,"Plan":"gold","n":12,"f":3.50,"ok":true,"x":null}"#,
        );
        assert_eq!(
            r,
            Ok(Record::Event {
                identity: "a@b.c".into(),
                t: 1400000000,
                name: "signed up".into(),
                props: props(&[("Plan", "gold"), ("n", "12"), ("f", "3.50"), ("ok", "true")]),
            })
        );
    }

    #[test]
    fn property_set_and_empty() {
        assert_eq!(
            classify(r#"{"_p":"x","_t":5,"_q":"y"}"#),
            Ok(Record::PropertySet {
                identity: "x".into(),
                t: 5,
                props: props(&[("_q", "y")]),
            })
        );
        assert_eq!(classify(r#"{"_p":"x","_t":5}"#), Err(Reject::Empty));
        assert_eq!(
            classify(r#"{"_p":"x","_t":5,"a":null}"#),
            Err(Reject::Empty)
        );
    }

    #[test]
    fn identity_rules() {
        assert_eq!(classify(r#"{"_t":5,"a":1}"#), Err(Reject::NoIdentity));
        assert_eq!(
            classify(r#"{"_p":null,"_t":5,"a":1}"#),
            Err(Reject::NoIdentity)
        );
        assert_eq!(
            classify(r#"{"_p":"","_t":5,"a":1}"#),
            Err(Reject::NoIdentity)
        );
        // Checked before the timestamp.
        assert_eq!(
            classify(r#"{"_p":"","_t":"never"}"#),
            Err(Reject::NoIdentity)
        );
        match classify(r#"{"_p":100004,"_t":5,"a":1}"#) {
            Ok(Record::PropertySet { identity, .. }) => assert_eq!(identity, "100004"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timestamps() {
        let t = |s: &str| match classify(&format!(r#"{{"_p":"x","_t":{s},"a":1}}"#)) {
            Ok(r) => match r {
                Record::PropertySet { t, .. } => Ok(t),
                _ => unreachable!(),
            },
            Err(e) => Err(e),
        };
        assert_eq!(t("1400000000"), Ok(1400000000));
        assert_eq!(t("1400000000.75"), Ok(1400000000));
        assert_eq!(t(r#""1400000000""#), Ok(1400000000));
        assert_eq!(t(r#""1400000000.5""#), Ok(1400000000));
        assert_eq!(t("0"), Ok(0));
        assert_eq!(t("253402300799"), Ok(MAX_UNIX_SECONDS));
        assert_eq!(t("253402300799.9"), Ok(MAX_UNIX_SECONDS));
        assert_eq!(t("1.4e9"), Ok(1400000000));
        for bad in [
            "253402300800",
            "-1",
            "-0.5",
            r#""yesterday""#,
            r#"" 1400000000""#,
            r#""NaN""#,
            r#""inf""#,
            "true",
            "null",
            "[1]",
            "1e999",
            "99999999999999999999999",
        ] {
            assert_eq!(t(bad), Err(Reject::BadTimestamp), "{bad}");
        }
        assert_eq!(classify(r#"{"_p":"x","a":1}"#), Err(Reject::BadTimestamp));
    }

    #[test]
    fn aliases() {
        assert_eq!(
            classify(r#"{"_p":"cookie","_p2":"a@b.c","_t":7}"#),
            Ok(Record::Alias {
                identity: "cookie".into(),
                other: "a@b.c".into(),
                t: 7
            })
        );
        assert_eq!(
            classify(r#"{"_p":"a","_p2":"a","_t":7}"#),
            Err(Reject::SelfAlias)
        );
        assert_eq!(
            classify(r#"{"_p":"12","_p2":34,"_t":7}"#),
            Err(Reject::NumericAlias)
        );
        assert!(matches!(
            classify(r#"{"_p":"12","_p2":"34a","_t":7}"#),
            Ok(Record::Alias { .. })
        ));
        // An alias wins over an event name.
        assert!(matches!(
            classify(r#"{"_p":"a","_p2":"b","_n":"e","_t":7}"#),
            Ok(Record::Alias { .. })
        ));
    }

    #[test]
    fn malformed() {
        for bad in [
            "this is not json at all",
            "[1,2,3]",
            "{\"_p\":\"x\",\"_t\":1",
            "{\"_p\":\"x\",\"_t\":1}}",
            "{\"_p\":\"x\",\"_t\":1} trailing",
            "\"string\"",
            "{\"_p\":\"x\" \"_t\":1}",
            "{\"a\":[1,2,}",
        ] {
            assert_eq!(classify(bad), Err(Reject::Malformed), "{bad}");
        }
        assert_eq!(classify("  {} "), Err(Reject::NoIdentity));
    }

    #[test]
    fn values_are_compact_and_cut() {
        let long = "é".repeat(300);
        let line =
            format!(r#"{{"_p":"x","_t":1,"arr":[1, "two" , {{"three": 3}}],"{long}":"{long}"}}"#);
        let Ok(Record::PropertySet { props, .. }) = classify(&line) else {
            panic!()
        };
        assert_eq!(props[0].1, r#"[1,"two",{"three":3}]"#);
        assert_eq!(props[1].0.chars().count(), 255);
        assert_eq!(props[1].1.chars().count(), 255);
    }

    #[test]
    fn duplicate_keys_last_wins() {
        let Ok(Record::PropertySet { props, .. }) =
            classify(r#"{"_p":"x","_t":1,"a":"1","b":"2","a":"3"}"#)
        else {
            panic!()
        };
        assert_eq!(props, super::tests::props(&[("a", "3"), ("b", "2")]));
    }

    #[test]
    fn escapes_and_lone_surrogates() {
        let Ok(Record::PropertySet { props, .. }) =
            classify(r#"{"_p":"x","_t":1,"a":"t\tn\n\\N\u0000","b":"\ud800z","c":"\ud83d\ude00"}"#)
        else {
            panic!()
        };
        assert_eq!(props[0].1, "t\tn\n\\N\0");
        assert_eq!(props[1].1, "\u{FFFD}z");
        assert_eq!(props[2].1, "😀");
    }

    #[test]
    fn numeric_identities() {
        assert!(is_numeric(b"0123"));
        assert!(!is_numeric(b""));
        assert!(!is_numeric(b"12a"));
        assert!(!is_numeric(b"-12"));
    }
}
