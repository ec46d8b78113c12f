//! Record classification (SPEC §3): decoded JSON text → event, property set,
//! alias, or a reject reason. Pure: no I/O, no filters (those need the
//! identity groups, see `resolve`).
//!
//! Almost every line is a compact, flat object, which [`flat_object`] reads
//! in one pass, borrowing its strings. Anything else (whitespace between
//! tokens, nested values, control characters, surrogate escapes, errors) is
//! read again from the start by sonic-rs, which has the last word.

use std::borrow::Cow;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use std::fmt;

mod flat;
mod full;

use flat::flat_object;
use full::full_object;

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
/// What a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Event,
    PropertySet,
    Alias,
}

/// A byte range of a record's texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// The value of a property that a later null dropped.
    const DROPPED: Span = Span {
        start: usize::MAX,
        end: usize::MAX,
    };
}

/// Appends `s` to `text` and returns where it went.
fn push(text: &mut String, s: &str) -> Span {
    let start = text.len();
    text.push_str(s);
    Span {
        start,
        end: text.len(),
    }
}

/// The texts of classified lines, already cut to [`MAX_CHARS`]: one string
/// and one list of property spans that all the records of a chunk share, so
/// that a record costs no allocation of its own (per-record allocations and
/// frees took a tenth of the parse).
#[derive(Clone, Default)]
pub struct Texts {
    text: String,
    props: Vec<(Span, Span)>,
}

impl Texts {
    /// Room for the records of `len` bytes of lines: decoded JSON is never
    /// longer than its source.
    pub fn with_capacity(len: usize) -> Texts {
        Texts {
            text: String::with_capacity(len),
            props: Vec::new(),
        }
    }

    fn text(&self, span: Span) -> &str {
        &self.text[span.start..span.end]
    }
}

/// One classified line: its kind, its time and where its texts are in the
/// [`Texts`] it was classified into; [`Entry::view`] shows it as borrowed
/// strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    kind: Kind,
    t: i64,
    identity: Span,
    /// The event name or the alias's other identity; empty for property sets.
    second: Span,
    /// A range of [`Texts`]'s property spans.
    props: Span,
}

impl Entry {
    pub fn view<'a>(&self, texts: &'a Texts) -> View<'a> {
        let (identity, t) = (texts.text(self.identity), self.t);
        let props = Props {
            texts: &texts.text,
            spans: &texts.props[self.props.start..self.props.end],
        };
        match self.kind {
            Kind::Event => View::Event {
                identity,
                t,
                name: texts.text(self.second),
                props,
            },
            Kind::PropertySet => View::PropertySet { identity, t, props },
            Kind::Alias => View::Alias {
                identity,
                other: texts.text(self.second),
                t,
            },
        }
    }
}

/// One classified line with texts of its own.
#[derive(Clone)]
pub struct Record {
    entry: Entry,
    texts: Texts,
}

/// A record seen as borrowed strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View<'a> {
    Event {
        identity: &'a str,
        t: i64,
        name: &'a str,
        props: Props<'a>,
    },
    PropertySet {
        identity: &'a str,
        t: i64,
        props: Props<'a>,
    },
    Alias {
        identity: &'a str,
        other: &'a str,
        t: i64,
    },
}

impl<'a> View<'a> {
    /// The properties of an event or property set (none for an alias).
    pub fn props(&self) -> Props<'a> {
        match *self {
            View::Event { props, .. } | View::PropertySet { props, .. } => props,
            View::Alias { .. } => Props {
                texts: "",
                spans: &[],
            },
        }
    }
}

impl Record {
    /// `entry` with `texts`, the texts it was classified into.
    pub(crate) fn new(entry: Entry, texts: Texts) -> Record {
        Record { entry, texts }
    }

    pub fn view(&self) -> View<'_> {
        self.entry.view(&self.texts)
    }

    pub fn kind(&self) -> Kind {
        self.entry.kind
    }

    pub fn identity(&self) -> &str {
        self.texts.text(self.entry.identity)
    }

    pub fn t(&self) -> i64 {
        self.entry.t
    }

    /// The properties of an event or property set (none for an alias).
    pub fn props(&self) -> Props<'_> {
        self.view().props()
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.view().fmt(f)
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Record) -> bool {
        self.view() == other.view()
    }
}

impl Eq for Record {}

/// The properties of a record: `(name, value)` pairs in line order.
#[derive(Clone, Copy)]
pub struct Props<'a> {
    texts: &'a str,
    spans: &'a [(Span, Span)],
}

impl<'a> Props<'a> {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + 'a {
        let texts = self.texts;
        self.spans
            .iter()
            .map(move |&(k, v)| (&texts[k.start..k.end], &texts[v.start..v.end]))
    }
}

impl fmt::Debug for Props<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Props<'_> {
    fn eq(&self, other: &Props<'_>) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Props<'_> {}

/// True for identities made only of ASCII digits: KM's numeric account ids.
pub fn is_numeric(identity: &[u8]) -> bool {
    !identity.is_empty() && identity.iter().all(u8::is_ascii_digit)
}

/// Classifies one decoded line, checking the conditions of SPEC §3 in order.
pub fn classify(text: &str) -> Result<Record, Reject> {
    let mut texts = Texts::default();
    let entry = classify_into(text, &mut texts)?;
    Ok(Record::new(entry, texts))
}

/// [`classify`] into shared texts.
pub fn classify_into(text: &str, texts: &mut Texts) -> Result<Entry, Reject> {
    let mut fields = Fields::new(texts, text.len());
    match flat_object(text, &mut fields) {
        Some(()) => fields.into_entry(),
        None => {
            fields.abandon();
            classify_full(text, texts)
        }
    }
}

/// [`classify_into`] with sonic-rs alone, for a text the flat reader failed on.
pub fn classify_full(text: &str, texts: &mut Texts) -> Result<Entry, Reject> {
    let mut fields = Fields::new(texts, text.len());
    if full_object(text, &mut fields).is_none() {
        fields.abandon();
        return Err(Reject::Malformed);
    }
    fields.into_entry()
}

/// Classifies a UTF-8 line that [`crate::decode::decode_line`] would hand
/// back unchanged, if the flat reader can read it; `None` leaves the line to
/// `decode_line` and [`classify_into`]. The flat reader fails on every octal
/// escape (`\303` is not a JSON escape) and on blank lines, so a line it
/// reads needs no decoding once its `\r` is dropped: the common line skips
/// the decoder's scan for escapes.
pub fn classify_plain(line: &str, texts: &mut Texts) -> Option<Result<Entry, Reject>> {
    let text = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = Fields::new(texts, text.len());
    match flat_object(text, &mut fields) {
        Some(()) => Some(fields.into_entry()),
        None => {
            fields.abandon();
            None
        }
    }
}

/// A member's value, as far as classification needs it.
enum Value<'a> {
    Null,
    /// A string's content.
    Str(Cow<'a, str>),
    /// A number's JSON text.
    Number(Cow<'a, str>),
    /// `true` or `false`, or an array or object as compact JSON.
    Other(Cow<'a, str>),
}

impl Value<'_> {
    /// The text of a value (SPEC §3), cut to [`MAX_CHARS`]; `None` for null.
    fn text(&self) -> Option<&str> {
        match self {
            Value::Null => None,
            Value::Str(s) | Value::Number(s) | Value::Other(s) => Some(cut(s)),
        }
    }

    /// `_t` as unix seconds: an integer, a float (truncated) or a string
    /// holding either, between 1970-01-01 and 9999-12-31 inclusive.
    fn timestamp(&self) -> Option<i64> {
        match self {
            Value::Number(s) | Value::Str(s) => parse_seconds(s),
            Value::Null | Value::Other(_) => None,
        }
    }
}

fn non_empty<'v>(value: Option<&'v Value<'_>>) -> Option<&'v str> {
    value.and_then(Value::text).filter(|s| !s.is_empty())
}

/// The members of one line, gathered as SPEC §3 needs them. Property names
/// and values go straight into the shared texts; what a line leaves there
/// when it is not a record is taken out again.
struct Fields<'a, 't> {
    identity: Option<Value<'a>>,
    other: Option<Value<'a>>,
    name: Option<Value<'a>>,
    t: Option<Value<'a>>,
    texts: &'t mut Texts,
    /// Where this line's texts and property spans start in `texts`.
    text_start: usize,
    props_start: usize,
    /// Position of each property name once there are many (a linear scan
    /// would make a hostile line with many keys quadratic).
    positions: Option<Box<Positions>>,
}

/// Where a line's properties are in [`Texts::props`], by name: indexes
/// hashed by the names they point to, so that no name is copied again (a
/// line can hold millions). Out of line: most lines have a few properties
/// and never build one.
struct Positions {
    table: HashTable<usize>,
    hasher: foldhash::fast::RandomState,
}

impl Positions {
    /// The positions of the properties of `texts` from `start` on, whose
    /// names are all different (see [`Fields::property`]).
    #[inline(never)]
    fn new(texts: &Texts, start: usize) -> Box<Positions> {
        let mut positions = Box::new(Positions {
            table: HashTable::with_capacity(texts.props.len() - start),
            hasher: foldhash::fast::RandomState::default(),
        });
        for i in start..texts.props.len() {
            positions.insert(texts, texts.text(texts.props[i].0), i);
        }
        positions
    }

    #[inline(never)]
    fn find(&self, texts: &Texts, key: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(key);
        let found = self
            .table
            .find(hash, |&i| texts.text(texts.props[i].0) == key);
        found.copied()
    }

    /// Adds `key`, the name of property `index` (pushed next, or already
    /// in `texts`), which is not there yet.
    #[inline(never)]
    fn insert(&mut self, texts: &Texts, key: &str, index: usize) {
        let hasher = &self.hasher;
        let rehash = |&i: &usize| hasher.hash_one(texts.text(texts.props[i].0));
        self.table
            .insert_unique(hasher.hash_one(key), index, rehash);
    }
}

impl<'a, 't> Fields<'a, 't> {
    /// Room for the texts of a line of `len` bytes: decoded JSON is never
    /// longer than its source.
    fn new(texts: &'t mut Texts, len: usize) -> Fields<'a, 't> {
        texts.text.reserve(len);
        Fields {
            identity: None,
            other: None,
            name: None,
            t: None,
            text_start: texts.text.len(),
            props_start: texts.props.len(),
            texts,
            positions: None,
        }
    }

    fn member(&mut self, key: Cow<'a, str>, value: Value<'a>) {
        match &*key {
            "_p" => self.identity = Some(value),
            "_p2" => self.other = Some(value),
            "_n" => self.name = Some(value),
            "_t" => self.t = Some(value),
            _ => self.property(cut(&key), value.text()),
        }
    }

    /// Duplicate keys: the last value wins, in the place of the first; a
    /// null drops the key (until a later value sets it again).
    fn property(&mut self, key: &str, value: Option<&str>) {
        match (value, self.slot(key)) {
            (Some(v), Some(i)) => self.texts.props[i].1 = push(&mut self.texts.text, v),
            (Some(v), None) => {
                if let Some(positions) = &mut self.positions {
                    positions.insert(self.texts, key, self.texts.props.len());
                }
                let k = push(&mut self.texts.text, key);
                let v = push(&mut self.texts.text, v);
                self.texts.props.push((k, v));
            }
            (None, Some(i)) => self.texts.props[i].1 = Span::DROPPED,
            (None, None) => {}
        }
    }

    /// Index in `texts.props` of this line's property named `key`, if any.
    fn slot(&mut self, key: &str) -> Option<usize> {
        let Texts { text, props } = &*self.texts;
        let name = |k: &Span| &text[k.start..k.end];
        let start = self.props_start;
        let mine = &props[start..];
        if mine.len() < 16 {
            return mine
                .iter()
                .position(|(k, _)| name(k) == key)
                .map(|i| start + i);
        }
        let texts = &*self.texts;
        let positions = self
            .positions
            .get_or_insert_with(|| Positions::new(texts, start));
        positions.find(texts, key)
    }

    /// Takes this line's texts out again: the line was not a record.
    fn abandon(self) {
        self.texts.text.truncate(self.text_start);
        self.texts.props.truncate(self.props_start);
    }

    /// The record, or the first condition of SPEC §3 it fails.
    fn into_entry(mut self) -> Result<Entry, Reject> {
        let entry = self.entry();
        if entry.is_err() {
            self.abandon();
        }
        entry
    }

    fn entry(&mut self) -> Result<Entry, Reject> {
        let texts = &mut *self.texts;
        let identity = non_empty(self.identity.as_ref()).ok_or(Reject::NoIdentity)?;
        let t = self.t.as_ref();
        let t = t.and_then(Value::timestamp).ok_or(Reject::BadTimestamp)?;
        // A property a later null dropped leaves no span.
        let mut kept = self.props_start;
        for i in self.props_start..texts.props.len() {
            if texts.props[i].1 != Span::DROPPED {
                texts.props[kept] = texts.props[i];
                kept += 1;
            }
        }
        texts.props.truncate(kept);
        let (kind, second) = if let Some(other) = non_empty(self.other.as_ref()) {
            if identity == other {
                return Err(Reject::SelfAlias);
            }
            if is_numeric(identity.as_bytes()) && is_numeric(other.as_bytes()) {
                return Err(Reject::NumericAlias);
            }
            texts.props.truncate(self.props_start);
            (Kind::Alias, other)
        } else if let Some(name) = non_empty(self.name.as_ref()) {
            (Kind::Event, name)
        } else if texts.props.len() == self.props_start {
            return Err(Reject::Empty);
        } else {
            (Kind::PropertySet, "")
        };
        Ok(Entry {
            kind,
            t,
            identity: push(&mut texts.text, identity),
            second: push(&mut texts.text, second),
            props: Span {
                start: self.props_start,
                end: texts.props.len(),
            },
        })
    }
}

/// `_t` as unix seconds (SPEC §3): a JSON number, truncated toward zero,
/// then checked against 1970-01-01..9999-12-31. So `-0.5` is 0 and
/// `253402300799.9` is [`MAX_UNIX_SECONDS`], while `-1.5` (truncated to
/// -1) is out of range. Worked out on the decimal text, never rounded
/// through `f64`, and without allocating.
pub fn parse_seconds(text: &str) -> Option<i64> {
    if let Some(n) = plain_seconds(text.as_bytes()) {
        return (n <= MAX_UNIX_SECONDS).then_some(n);
    }
    if !is_json_number(text) {
        return None;
    }
    let (negative, magnitude) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let whole = whole_part(magnitude)?;
    // A negative number whose truncation is not 0 is before 1970.
    (whole == 0 || !negative).then_some(whole)
}

/// The integer part of an unsigned JSON number; `None` when it is above
/// [`MAX_UNIX_SECONDS`].
fn whole_part(number: &str) -> Option<i64> {
    let (mantissa, exp) = match number.split_once(['e', 'E']) {
        Some((m, e)) => (m, exponent(e)),
        None => (number, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // The decimal point comes after `point` digits of `int` then `frac`.
    let point = (int.len() as i64).saturating_add(exp);
    let before_point = usize::try_from(point).unwrap_or(0);
    let mut n: i64 = 0;
    let mut taken = 0;
    for d in int.bytes().chain(frac.bytes()).take(before_point) {
        n = n * 10 + i64::from(d - b'0');
        if n > MAX_UNIX_SECONDS {
            return None;
        }
        taken += 1;
    }
    // Zeros the exponent adds past the last digit.
    let mut zeros = before_point - taken;
    while n != 0 && zeros > 0 {
        n *= 10;
        if n > MAX_UNIX_SECONDS {
            return None;
        }
        zeros -= 1;
    }
    Some(n)
}

/// The value of a JSON exponent's text (`5`, `+5`, `-12`), saturating: an
/// exponent past `i64` means the same as a very large one.
fn exponent(text: &str) -> i64 {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = digits.bytes().fold(0i64, |n, d| {
        n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// The common `_t`: 1 to 12 digits without a leading zero (or just `0`).
fn plain_seconds(text: &[u8]) -> Option<i64> {
    let plain = match text {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.len() < 12 && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    plain.then(|| text.iter().fold(0, |n, &d| n * 10 + i64::from(d - b'0')))
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
#[inline]
pub fn cut(s: &str) -> &str {
    if s.len() <= MAX_CHARS {
        s
    } else {
        cut_long(s)
    }
}

#[cold]
fn cut_long(s: &str) -> &str {
    match s.char_indices().nth(MAX_CHARS) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Bytes of a text that are enough to cut it: a text of this many bytes
/// holds at least [`MAX_CHARS`] characters (4 bytes at most each), so the
/// readers build only this much of a long string or compact array and cut
/// that, instead of copying the whole value (a value can be as long as its
/// line, hundreds of megabytes) to keep 255 characters of it.
const KEPT: usize = 4 * MAX_CHARS - 3;

/// Appends `s` to `out` as far as [`KEPT`] bytes (rounded up to a whole
/// character): `cut(out)` is then the cut of everything appended.
fn push_kept(out: &mut String, s: &str) {
    let room = KEPT.saturating_sub(out.len());
    if s.len() <= room {
        out.push_str(s);
    } else if room > 0 {
        let end = (room..s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        out.push_str(&s[..end]);
    }
}

/// [`push_kept`] for one character.
fn push_char_kept(out: &mut String, c: char) {
    if out.len() < KEPT {
        out.push(c);
    }
}

/// The one member whose text is read whole: `_t`, parsed as a number.
/// Every other text is only ever stored cut.
fn read_whole(key: &str) -> bool {
    key == "_t"
}

#[cfg(test)]
mod tests {
    use super::flat::find_special;
    use super::*;

    /// A record as owned parts: kind, identity, t, name or other, properties.
    type Parts = (Kind, String, i64, String, Vec<(String, String)>);

    fn parts(text: &str) -> Result<Parts, Reject> {
        let r = classify(text)?;
        let second = match r.view() {
            View::Event { name, .. } => name,
            View::Alias { other, .. } => other,
            View::PropertySet { .. } => "",
        };
        let props = r.props().iter().map(|(k, v)| (k.into(), v.into()));
        Ok((
            r.kind(),
            r.identity().into(),
            r.t(),
            second.into(),
            props.collect(),
        ))
    }

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn prop_values(text: &str) -> Vec<(String, String)> {
        parts(text).expect("a record").4
    }

    #[test]
    fn event_with_properties() {
        let r = parts(
            r#"{"_n":"signed up","_p":"a@b.c","_t":1400000000,"Plan":"gold","n":12,"f":3.50,"ok":true,"x":null}"#,
        );
        assert_eq!(
            r,
            Ok((
                Kind::Event,
                "a@b.c".into(),
                1400000000,
                "signed up".into(),
                props(&[("Plan", "gold"), ("n", "12"), ("f", "3.50"), ("ok", "true")]),
            ))
        );
    }

    #[test]
    fn property_set_and_empty() {
        assert_eq!(
            parts(r#"{"_p":"x","_t":5,"_q":"y"}"#),
            Ok((
                Kind::PropertySet,
                "x".into(),
                5,
                "".into(),
                props(&[("_q", "y")])
            ))
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
        match parts(r#"{"_p":100004,"_t":5,"a":1}"#) {
            Ok((Kind::PropertySet, identity, ..)) => assert_eq!(identity, "100004"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timestamps() {
        let t = |s: &str| {
            classify(&format!(r#"{{"_p":"x","_t":{s},"a":1}}"#)).map(|r| {
                assert_eq!(r.kind(), Kind::PropertySet);
                r.t()
            })
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

    /// SPEC §3: a float is truncated toward zero, then range-checked.
    #[test]
    fn timestamps_are_truncated_toward_zero_then_checked() {
        let t = |s: &str| classify(&format!(r#"{{"_p":"x","_t":{s},"a":1}}"#)).map(|r| r.t());
        for zero in [
            "-0.5",
            "-0.999",
            "-5e-1",
            "-0.0",
            "-0",
            "-0e0",
            "-0.0e5",
            "-9e-1",
            "-1e-1",
            "-0.9999999999999999999999",
            "-1e-999999",
            "-99999e-5",
            "0.5",
            "5e-1",
            "0.0",
            "1e-99999999999999999999",
            "-1e-99999999999999999999",
            "0e99999999999999999999",
        ] {
            assert_eq!(t(zero), Ok(0), "{zero}");
            assert_eq!(t(&format!(r#""{zero}""#)), Ok(0), "\"{zero}\"");
        }
        for bad in [
            "-1",
            "-1.0",
            "-1.5",
            "-1e0",
            "-10e-1",
            "-0.1e1",
            "-100000e-5",
            "-1400000000.5",
            "-253402300799.9",
            "-1e999999",
            "253402300800",
            "253402300800.0",
            "2534023008e2",
            "2.534023008e11",
            "253402300799.9e1",
            "1e12",
            "1e99999999999999999999",
        ] {
            assert_eq!(t(bad), Err(Reject::BadTimestamp), "{bad}");
            let quoted = format!(r#""{bad}""#);
            assert_eq!(t(&quoted), Err(Reject::BadTimestamp), "{quoted}");
        }
        for (text, want) in [
            ("253402300799.9", MAX_UNIX_SECONDS),
            ("253402300799.999999999999", MAX_UNIX_SECONDS),
            ("2534023007999e-1", MAX_UNIX_SECONDS),
            ("2.534023007999e11", MAX_UNIX_SECONDS),
            ("25340230079900000e-5", MAX_UNIX_SECONDS),
            ("0.000001400000000e15", 1400000000),
            ("14e8", 1400000000),
            ("1.4E+9", 1400000000),
            ("1400000000.99e0", 1400000000),
            ("0.99", 0),
            ("1.99", 1),
            ("9.99e-1", 0),
        ] {
            assert_eq!(t(text), Ok(want), "{text}");
            assert_eq!(t(&format!(r#""{text}""#)), Ok(want), "\"{text}\"");
        }
        // Only a JSON number's text, as a number or a string.
        for bad in [
            r#""-.5""#,
            r#""-0.""#,
            r#""- 0.5""#,
            r#""+0.5""#,
            r#""-0x1""#,
            "-.5",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_seconds_agree_with_the_general_rule() {
        for s in [
            "0",
            "1",
            "9",
            "10",
            "1400000000",
            "253402300799",
            "253402300800",
            "999999999999",
            "1000000000000",
            "00",
            "01",
            "-0",
            "-1",
            "",
            "1a",
            "12345678901234567890",
        ] {
            // `.0` takes the same value down the general path.
            let general = if is_json_number(s) {
                parse_seconds(&format!("{s}.0"))
            } else {
                None
            };
            assert_eq!(parse_seconds(s), general, "{s}");
        }
    }

    #[test]
    fn aliases() {
        assert_eq!(
            parts(r#"{"_p":"cookie","_p2":"a@b.c","_t":7}"#),
            Ok((Kind::Alias, "cookie".into(), 7, "a@b.c".into(), Vec::new()))
        );
        assert_eq!(
            classify(r#"{"_p":"a","_p2":"a","_t":7}"#),
            Err(Reject::SelfAlias)
        );
        assert_eq!(
            classify(r#"{"_p":"12","_p2":34,"_t":7}"#),
            Err(Reject::NumericAlias)
        );
        assert_eq!(
            classify(r#"{"_p":"12","_p2":"34a","_t":7}"#).map(|r| r.kind()),
            Ok(Kind::Alias)
        );
        // An alias wins over an event name, and has no properties.
        let r = classify(r#"{"_p":"a","_p2":"b","_n":"e","_t":7,"x":1}"#).unwrap();
        assert_eq!(r.kind(), Kind::Alias);
        assert!(r.props().is_empty());
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
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":tru}",
            "{\"a\":\"\\x\"}",
            "{\"a\":1,}",
        ] {
            assert_eq!(classify(bad), Err(Reject::Malformed), "{bad}");
        }
        assert_eq!(classify("  {} "), Err(Reject::NoIdentity));
        assert_eq!(classify("{}"), Err(Reject::NoIdentity));
    }

    #[test]
    fn values_are_compact_and_cut() {
        let long = "é".repeat(300);
        let line =
            format!(r#"{{"_p":"x","_t":1,"arr":[1, "two" , {{"three": 3}}],"{long}":"{long}"}}"#);
        let props = prop_values(&line);
        assert_eq!(props[0].1, r#"[1,"two",{"three":3}]"#);
        assert_eq!(props[1].0.chars().count(), 255);
        assert_eq!(props[1].1.chars().count(), 255);
    }

    /// The first 255 characters of `s`.
    fn first_chars(s: &str) -> String {
        s.chars().take(MAX_CHARS).collect()
    }

    /// Long strings and arrays (past what the readers build of them, with
    /// escapes, multi-byte characters and surrogate pairs on every side of
    /// that edge) are cut exactly as when decoded whole, by both readers.
    #[test]
    fn long_values_are_cut_as_if_decoded_whole() {
        let pieces = [
            "a",
            "é",
            "😀",
            "\\n",
            "\\\"",
            "\\\\",
            "\\u00e9",
            "\\ud83d\\ude00",
            "\\/",
            "\\u0000",
        ];
        let mut literals = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            for len in [KEPT - 2, KEPT, KEPT + 1, 16 * KEPT + 7, 100_000] {
                // Text that decodes to about `len` bytes, then the piece
                // again and again: the edge falls on and around escapes.
                let filler = pieces[(i + 1) % pieces.len()];
                let filler_len = sonic_rs::from_str::<String>(&format!("\"{filler}\""))
                    .unwrap()
                    .len();
                let mut content = String::new();
                for _ in 0..len.div_ceil(filler_len) {
                    content.push_str(filler);
                }
                for _ in 0..40 {
                    content.push_str(piece);
                }
                let literal = format!("\"{content}\"");
                let decoded: String = sonic_rs::from_str(&literal).unwrap();
                literals.push((literal, decoded));
            }
        }
        let surrogates = (
            format!("\"{}\\ud800\\udc00x\\ud800\"", "\\ud800".repeat(5000)),
            "\u{FFFD}".repeat(5000) + "\u{10000}x\u{FFFD}",
        );
        let lines = literals.iter().flat_map(|(literal, decoded)| {
            let want = vec![(first_chars(decoded), first_chars(decoded))];
            [
                (
                    format!(r#"{{"_p":"x","_t":1,{literal}:{literal}}}"#),
                    want.clone(),
                ),
                (format!(r#"{{ "_p":"x","_t":1,{literal}:{literal}}}"#), want),
            ]
        });
        // Lone surrogates, which sonic-rs does not decode, past the edge
        // (in a value: sonic-rs refuses them in a name).
        let (literal, decoded) = &surrogates;
        let want = vec![("k".to_owned(), first_chars(decoded))];
        let surrogate_line = format!(r#"{{"_p":"x","_t":1,"k":{literal}}}"#);
        for (line, want) in lines.chain([(surrogate_line, want)]) {
            let start: String = line.chars().take(60).collect();
            assert!(prop_values(&line) == want, "{} bytes: {start}", line.len());
        }
    }

    #[test]
    fn long_arrays_and_objects_are_compacted_and_cut() {
        for n in [10, 100, 100_000] {
            let items: Vec<String> = (0..n)
                .map(|i| format!(r#"{{"k {i}": [{i}, "é\"", null]}}"#))
                .collect();
            let spaced = items.join(" , ").replace(": ", " :\t ");
            let compact: String = items.join(",").replace(": ", ":").replace(", ", ",");
            let line =
                format!(r#"{{"_p":"x","_t":1,"v":[ {spaced} ],"o":{{ "a" : [ {spaced} ] }}}}"#);
            let want = [
                ("v".to_owned(), first_chars(&format!("[{compact}]"))),
                (
                    "o".to_owned(),
                    first_chars(&format!(r#"{{"a":[{compact}]}}"#)),
                ),
            ];
            assert_eq!(prop_values(&line), want, "{n} items");
        }
    }

    /// `_t` is the one text read whole: a long numeric string, with an
    /// escape or read by sonic-rs, keeps its exponent.
    #[test]
    fn a_long_timestamp_string_is_read_whole() {
        let long = format!("1.4{}e9", "0".repeat(40_000));
        for line in [
            format!(r#"{{"_p":"x","_t":"{long}","a":1}}"#),
            format!(r#"{{"_p":"x","_t":"\u0031{}","a":1}}"#, &long[1..]),
            format!(r#"{{ "_p":"x","_t":"{long}","a":1}}"#),
            format!(r#"{{ "_p":"x","_t":"\u0031{}","a":1}}"#, &long[1..]),
        ] {
            assert_eq!(
                classify(&line).map(|r| r.t()),
                Ok(1_400_000_000),
                "{}",
                &line[..40]
            );
        }
    }

    #[test]
    fn duplicate_keys_last_wins() {
        assert_eq!(
            prop_values(r#"{"_p":"x","_t":1,"a":"1","b":"2","a":"3"}"#),
            props(&[("a", "3"), ("b", "2")])
        );
        // A null drops the key, a later value brings it back in its place.
        assert_eq!(
            prop_values(r#"{"_p":"x","_t":1,"a":"1","b":"2","a":null,"c":3}"#),
            props(&[("b", "2"), ("c", "3")])
        );
        assert_eq!(
            prop_values(r#"{"_p":"x","_t":1,"a":"1","b":"2","a":null,"a":4}"#),
            props(&[("a", "4"), ("b", "2")])
        );
        // Names that only differ past the cut are the same name.
        let (k1, k2) = ("k".repeat(255) + "1", "k".repeat(255) + "2");
        let line = format!(r#"{{"_p":"x","_t":1,"{k1}":1,"{k2}":2}}"#);
        assert_eq!(prop_values(&line), props(&[(&"k".repeat(255), "2")]));
    }

    #[test]
    fn many_duplicate_keys() {
        let mut line = String::from(r#"{"_p":"x","_t":1"#);
        for i in 0..40 {
            line += &format!(r#","k{i}":{i}"#);
        }
        line += r#","k3":"x","k30":null,"k3":null,"k3":"y","new":1}"#;
        let props = prop_values(&line);
        assert_eq!(props.len(), 40);
        assert_eq!(props[3], ("k3".into(), "y".into()));
        assert!(!props.iter().any(|(k, _)| k == "k30"));
        assert_eq!(props[39], ("new".into(), "1".into()));
    }

    #[test]
    fn escapes_and_lone_surrogates() {
        let values = prop_values(
            r#"{"_p":"x","_t":1,"a":"t\tn\n\\N\u0000","b":"\ud800z","c":"\ud83d\ude00","d":"\/\"\u00e9\b\f\r"}"#,
        );
        assert_eq!(values[0].1, "t\tn\n\\N\0");
        assert_eq!(values[1].1, "\u{FFFD}z");
        assert_eq!(values[2].1, "😀");
        assert_eq!(values[3].1, "/\"é\u{8}\u{c}\r");
        // Escapes in names too, reserved ones included.
        let r = parts(r#"{"\u005fp":"x","_t":1,"\u00e9":"\u00e9"}"#);
        assert_eq!(
            r,
            Ok((
                Kind::PropertySet,
                "x".into(),
                1,
                "".into(),
                props(&[("é", "é")])
            ))
        );
    }

    #[test]
    fn flat_and_full_readers_agree() {
        for line in [
            r#"{"_n":"e","_p":"u","_t":1,"a":"b","n":-1.5e3,"t":true,"f":false,"z":null}"#,
            r#"{"_n":"e","_p":"u","_t":"1","a":"b\"c\\d\u00e9"}"#,
            r#"{"_p":"u","_t":1.5,"":"","a":"1","a":"2"}"#,
            r#"{"_p":7,"_p2":"x","_t":0}"#,
            r#"{}"#,
        ] {
            let (mut a, mut b) = (Texts::default(), Texts::default());
            let mut flat = Fields::new(&mut a, line.len());
            assert!(flat_object(line, &mut flat).is_some(), "{line}");
            let flat = flat.into_entry();
            let mut full = Fields::new(&mut b, line.len());
            assert!(full_object(line, &mut full).is_some(), "{line}");
            let full = full.into_entry();
            assert_eq!(
                format!("{:?}", flat.map(|e| e.view(&a))),
                format!("{:?}", full.map(|e| e.view(&b))),
                "{line}"
            );
        }
        // Left to sonic-rs.
        for line in [
            r#"{ "_p":"u"}"#,
            r#"{"_p":"u","a":[1]}"#,
            r#"{"_p":"u","a":{}}"#,
            "{\"_p\":\"u\t\"}",
            r#"{"_p":"\ud800"}"#,
            r#"{"_p":"u"} "#,
            r#"{"_p":"u",}"#,
            r#"{"_p":01}"#,
        ] {
            let mut texts = Texts::default();
            let mut flat = Fields::new(&mut texts, line.len());
            assert!(flat_object(line, &mut flat).is_none(), "{line}");
        }
    }

    #[test]
    fn deep_nesting_is_malformed() {
        let deep = |n: usize| {
            format!(
                r#"{{"_p":"x","_t":1,"a":{}1{}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        assert!(classify(&deep(127)).is_ok());
        assert_eq!(classify(&deep(128)), Err(Reject::Malformed));
        // Many brackets, but shallow, or inside strings.
        let wide = format!(r#"{{"_p":"x","_t":1,"a":[{}1]}}"#, "[],".repeat(300));
        assert!(classify(&wide).is_ok());
        let quoted = format!(r#"{{"_p":"x","_t":1,"a":"{}"}}"#, "[".repeat(300));
        assert!(classify(&quoted).is_ok());
    }

    #[test]
    fn special_bytes_are_found_first() {
        let mut line = vec![b'a'; 40];
        assert_eq!(find_special(&line), None);
        for at in 0..line.len() {
            for byte in [b'"', b'\\', 0, 0x1f] {
                line[at] = byte;
                // Bytes just above and below the special ones do not count.
                for after in at + 1..line.len() {
                    line[after] = [b'!', b'#', b'[', b']', b' ', 0x7f, 0xff][after % 7];
                }
                assert_eq!(find_special(&line), Some(at), "{byte} at {at}");
                assert_eq!(find_special(&line[..at]), None);
                line[at + 1..].fill(b'"');
                assert_eq!(find_special(&line), Some(at), "{byte} at {at}");
            }
            line.fill(b'a');
        }
    }

    #[test]
    fn numeric_identities() {
        assert!(is_numeric(b"0123"));
        assert!(!is_numeric(b""));
        assert!(!is_numeric(b"12a"));
        assert!(!is_numeric(b"-12"));
    }
}
