//! The general reader of a line's members: any JSON object, with
//! sonic-rs, for the lines the fast reader [`super::flat`] leaves.

use std::borrow::Cow;

use sonic_rs::{JsonType, JsonValueTrait, LazyValue};

use super::{Members, Value, KEPT};

/// Reads any JSON object into `fields` with sonic-rs, objects that `fields`
/// [enters](Members::enter) member by member. `None` when the text is not
/// exactly one JSON object (garbage after the closing brace included) or
/// nests too deep.
pub fn full_object<'a, M: Members<'a>>(text: &'a str, fields: &mut M) -> Option<()> {
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if !trimmed.starts_with('{') || !trimmed.ends_with('}') || too_deep(trimmed.as_bytes()) {
        return None;
    }
    let end = members(trimmed, fields)?;
    // The lazy iterator stops at the closing brace without looking further:
    // what follows the last value must be exactly `}`.
    let rest = trimmed[end..].trim_start_matches(|c: char| c.is_ascii_whitespace());
    (rest == "}").then_some(())
}

/// Reads the members of the object `object` (from its `{`); returns where
/// its last value ends (just past the `{` when it has none).
fn members<'a, M: Members<'a>>(object: &'a str, fields: &mut M) -> Option<usize> {
    let mut end = 1; // just past the opening brace
    for member in sonic_rs::to_object_iter(object) {
        let (key, value) = member.ok()?;
        let raw = value.as_raw_str();
        let offset = (raw.as_ptr() as usize).checked_sub(object.as_ptr() as usize)?;
        end = offset + raw.len();
        if end > object.len() {
            return None;
        }
        if value.get_type() == JsonType::Object && fields.enter(&key) {
            let inner = &object[offset..end];
            let last = members(inner, fields)?;
            if inner[last..].trim_start_matches(|c: char| c.is_ascii_whitespace()) != "}" {
                return None;
            }
            fields.leave();
        } else {
            let whole = fields.read_whole(&key);
            fields.member(key, lazy_value(&value, whole));
        }
    }
    Some(end)
}

/// The items of a JSON array as values (an array or object item as its
/// compact JSON text); `None` when `text` is not exactly one array.
pub fn array_values(text: &str) -> Option<Vec<Value<'_>>> {
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if !trimmed.starts_with('[') || !trimmed.ends_with(']') || too_deep(trimmed.as_bytes()) {
        return None;
    }
    let mut end = 1;
    let mut out = Vec::new();
    for item in sonic_rs::to_array_iter(trimmed) {
        let item = item.ok()?;
        let raw = item.as_raw_str();
        let offset = (raw.as_ptr() as usize).checked_sub(trimmed.as_ptr() as usize)?;
        end = offset + raw.len();
        out.push(lazy_value(&item, false));
    }
    let rest = trimmed.get(end..)?;
    (rest.trim_start_matches(|c: char| c.is_ascii_whitespace()) == "]").then_some(out)
}

/// Deepest nesting of arrays and objects accepted: the parser recurses, and
/// a hostile line must not exhaust a worker's stack.
const MAX_DEPTH: usize = 128;

/// True when brackets outside strings nest deeper than [`MAX_DEPTH`].
fn too_deep(text: &[u8]) -> bool {
    // Without that many opening brackets, the nesting cannot be that deep.
    if memchr::memchr2_iter(b'[', b'{', text).count() <= MAX_DEPTH {
        return false;
    }
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

/// A sonic-rs value as classification needs it: numbers and booleans as
/// their JSON text, arrays and objects as compact JSON. Strings, arrays and
/// objects are only built as far as their cut needs, unless `whole`.
fn lazy_value<'a>(value: &LazyValue<'a>, whole: bool) -> Value<'a> {
    match value.get_type() {
        JsonType::Null => Value::Null,
        JsonType::String => Value::Str(Cow::Owned(string_value(value, whole))),
        JsonType::Number => Value::Number(value.as_raw_cow()),
        JsonType::Boolean => Value::Other(value.as_raw_cow()),
        JsonType::Array | JsonType::Object => {
            Value::Other(Cow::Owned(compact_json(value.as_raw_str(), whole)))
        }
    }
}

/// A JSON string's content (its first [`KEPT`] bytes or more unless
/// `whole`). Lone surrogates (`"\ud800"`), which sonic-rs refuses to
/// decode, become U+FFFD like any other invalid text.
fn string_value(value: &LazyValue<'_>, whole: bool) -> String {
    let raw = value.as_raw_str();
    if !whole && raw.len() > LONG_STRING {
        // sonic-rs would decode all of it: decode the start ourselves.
        return if memchr::memchr(b'\\', raw.as_bytes()).is_some() {
            unescape_lossy(raw, KEPT)
        } else {
            super::cut(&raw[1..raw.len() - 1]).to_owned()
        };
    }
    match value.as_str() {
        Some(s) => s.to_owned(),
        None => unescape_lossy(raw, usize::MAX),
    }
}

/// Raw length past which [`string_value`] decodes only the start of a
/// string itself; shorter ones go through sonic-rs, faster.
const LONG_STRING: usize = 16 * KEPT;

/// Decodes a raw JSON string literal (quotes included), replacing invalid
/// `\u` escapes with U+FFFD, until the output holds `enough` bytes. Used on
/// the rare strings sonic-rs refuses, and on the start of long ones: for a
/// valid string it gives what sonic-rs does.
fn unescape_lossy(raw: &str, enough: usize) -> String {
    let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
    let mut out = String::with_capacity(inner.len().min(enough));
    let mut chars = inner.chars();
    let hex4 = |chars: &mut std::str::Chars<'_>| -> Option<u32> {
        let s: String = chars.by_ref().take(4).collect();
        u32::from_str_radix(&s, 16).ok().filter(|_| s.len() == 4)
    };
    while let Some(c) = chars.next() {
        if out.len() >= enough {
            break;
        }
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

/// Removes insignificant whitespace from valid JSON text, as far as the
/// first [`KEPT`] bytes of the result unless `whole`: arrays and objects are
/// stored cut.
fn compact_json(raw: &str, whole: bool) -> String {
    let enough = if whole { usize::MAX } else { KEPT };
    let mut out = String::with_capacity(raw.len().min(KEPT + 4));
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if out.len() >= enough {
            break;
        }
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
