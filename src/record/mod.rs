//! Records (SPEC §3) and the JSON machinery every line-per-record format
//! shares: reading a line's members, the values' texts, the 255-character
//! cut, timestamps, and the table of §3 that decides what a record is. Which
//! member means what is the format's (see `format/`). Pure: no I/O, no
//! filters (those need the identity groups, see `resolve`).
//!
//! Almost every line is a compact, flat object, which [`flat_object`] reads
//! in one pass, borrowing its strings. Anything else (whitespace between
//! tokens, nested values, control characters, surrogate escapes, errors) is
//! read again from the start by [`full_object`] (sonic-rs), which has the
//! last word.

use std::borrow::Cow;
use std::fmt;
use std::hash::BuildHasher;

use hashbrown::HashTable;

mod flat;
mod full;

pub use flat::flat_object;
pub use full::{array_values, full_object};

/// Longest name or value stored, in characters (`VARCHAR(255)`).
pub const MAX_CHARS: usize = 255;

/// Largest `_t` accepted: 9999-12-31 23:59:59 UTC.
pub const MAX_UNIX_SECONDS: i64 = 253_402_300_799;

/// Why a line was not stored. The order is the order of the accounting table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    BadTimestamp,
    Duplicate,
    Empty,
    IgnoredUser,
    Malformed,
    NoIdentity,
    NotWhitelisted,
    NumericAlias,
    SelfAlias,
}

impl Reject {
    pub const ALL: [Reject; 9] = [
        Reject::BadTimestamp,
        Reject::Duplicate,
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
            Reject::Duplicate => "duplicate",
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
    /// The event's duplicate key (see [`Entry::with_duplicate_key`]); 0
    /// when it has none.
    duplicate_key: u64,
}

impl Entry {
    /// The kind of record.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The record's time, unix seconds.
    pub fn t(&self) -> i64 {
        self.t
    }

    /// This event with a key that an earlier event with the same key makes
    /// a duplicate of (a format that deduplicates, like Mixpanel's
    /// `$insert_id`, sets it). Any `u64`: 0 is taken as 1, so that 0 can
    /// mean "none".
    pub fn with_duplicate_key(self, key: u64) -> Entry {
        Entry {
            duplicate_key: key.max(1),
            ..self
        }
    }

    /// The key set by [`Entry::with_duplicate_key`], if any.
    #[inline]
    pub fn duplicate_key(&self) -> Option<u64> {
        (self.duplicate_key != 0).then_some(self.duplicate_key)
    }

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

/// Receives the members of a line as a reader finds them.
pub trait Members<'a> {
    fn member(&mut self, key: Cow<'a, str>, value: Value<'a>);
    /// Whether the text of member `key` is read whole: every other text is
    /// only ever stored cut, so the readers build just [`KEPT`] bytes of it.
    fn read_whole(&self, _key: &str) -> bool {
        false
    }

    /// Called for a member whose value is an object: true makes the reader
    /// hand that object's members to [`Members::member`] one by one, then
    /// call [`Members::leave`]; false (the default) gives the object as one
    /// value, its compact JSON text.
    #[inline]
    fn enter(&mut self, key: &str) -> bool {
        let _ = key;
        false
    }

    /// The end of an object [`Members::enter`] opened.
    #[inline]
    fn leave(&mut self) {}
}

/// A member's value, as far as classification needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
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
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Null => None,
            Value::Str(s) | Value::Number(s) | Value::Other(s) => Some(cut(s)),
        }
    }

    /// `_t` as unix seconds: an integer, a float (truncated) or a string
    /// holding either, between 1970-01-01 and 9999-12-31 inclusive.
    pub fn timestamp(&self) -> Option<i64> {
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
pub struct Fields<'a, 't> {
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
    /// The [`name_bits`] of this line's property names.
    names: u128,
}

/// Two bits of a 128-bit filter for a property name, from its length and
/// its first, middle and last bytes. A line's names set theirs: a name
/// whose bits are not both set is surely new, so most names skip the
/// search for an earlier one (a Mixpanel line has 15 to 20 properties).
#[inline]
fn name_bits(key: &str) -> u128 {
    let b = key.as_bytes();
    let (first, mid, last) = match b {
        [] => (0, 0, 0),
        _ => (b[0], b[b.len() / 2], b[b.len() - 1]),
    };
    let x = (b.len() as u32)
        ^ (u32::from(first) << 8)
        ^ (u32::from(mid) << 16)
        ^ (u32::from(last) << 24);
    let h = x.wrapping_mul(0x9e37_79b1);
    (1u128 << (h >> 25)) | (1u128 << ((h >> 18) & 127))
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
    pub fn new(texts: &'t mut Texts, len: usize) -> Fields<'a, 't> {
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
            names: 0,
        }
    }

    /// The record's identity (`_p`).
    pub fn identity(&mut self, value: Value<'a>) {
        self.identity = Some(value);
    }

    /// The other identity of an alias (`_p2`).
    pub fn other(&mut self, value: Value<'a>) {
        self.other = Some(value);
    }

    /// The event name (`_n`).
    pub fn name(&mut self, value: Value<'a>) {
        self.name = Some(value);
    }

    /// The time (`_t`).
    pub fn time(&mut self, value: Value<'a>) {
        self.t = Some(value);
    }

    /// Any other member: a property.
    pub fn member(&mut self, key: &str, value: &Value<'_>) {
        self.property(cut(key), value.text());
    }

    /// Duplicate keys: the last value wins, in the place of the first; a
    /// null drops the key (until a later value sets it again).
    fn property(&mut self, key: &str, value: Option<&str>) {
        let bits = name_bits(key);
        let slot = if self.names & bits == bits {
            self.slot(key)
        } else {
            None
        };
        match (value, slot) {
            (Some(v), Some(i)) => self.texts.props[i].1 = push(&mut self.texts.text, v),
            (Some(v), None) => {
                self.names |= bits;
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
        if mine.len() < 32 {
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

    /// Forgets the properties gathered so far (a record whose other members
    /// are not properties, such as an alias read from another format).
    pub fn drop_properties(&mut self) {
        self.texts.props.truncate(self.props_start);
        self.positions = None;
        self.names = 0;
    }

    /// Takes this line's texts out again: the line was not a record.
    pub fn abandon(self) {
        self.texts.text.truncate(self.text_start);
        self.texts.props.truncate(self.props_start);
    }

    /// The record, or the first condition of SPEC §3 it fails.
    pub fn into_entry(mut self) -> Result<Entry, Reject> {
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
            duplicate_key: 0,
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
pub fn is_json_number(s: &str) -> bool {
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
pub(crate) const KEPT: usize = 4 * MAX_CHARS - 3;

/// Appends `s` to `out` as far as [`KEPT`] bytes (rounded up to a whole
/// character): `cut(out)` is then the cut of everything appended.
pub(crate) fn push_kept(out: &mut String, s: &str) {
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
pub(crate) fn push_char_kept(out: &mut String, c: char) {
    if out.len() < KEPT {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::flat::find_special;
    use super::*;

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
