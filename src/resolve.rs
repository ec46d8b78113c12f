//! Parsed lines → rows: the filters of SPEC §4, canonical users of §5 and
//! the stable ids of §7. Runs on one thread, in input order, so that ids of
//! new identities and keys are the same on every run.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use anyhow::{bail, Result};

use crate::decode::{decode_line, Decoded};
use crate::filters::Filters;
use crate::identity::{Ident, Identities};
use crate::record::{
    classify_full, classify_into, classify_plain, is_numeric, Entry, Props, Record, Reject, Texts,
    View,
};
use crate::report::{Accounting, RejectsFile};
use crate::rows::RowSink;
use crate::source::Chunk;
use crate::state::Snapshot;

/// What one line turned out to be, before filters: a [`Record`] with texts
/// of its own, or an [`Entry`] of a chunk's shared [`Texts`].
#[derive(Debug)]
pub enum Outcome<R = Record> {
    Blank,
    Rejected(Reject),
    Record(R),
}

impl<R> From<Result<R, Reject>> for Outcome<R> {
    fn from(classified: Result<R, Reject>) -> Outcome<R> {
        match classified {
            Ok(record) => Outcome::Record(record),
            Err(reason) => Outcome::Rejected(reason),
        }
    }
}

/// Decodes and classifies one raw line.
pub fn parse_line(raw: &[u8]) -> Outcome {
    let mut texts = Texts::default();
    match parse_line_into(raw, &mut texts) {
        Outcome::Blank => Outcome::Blank,
        Outcome::Rejected(reason) => Outcome::Rejected(reason),
        Outcome::Record(entry) => Outcome::Record(Record::new(entry, texts)),
    }
}

/// [`parse_line`] into shared texts.
fn parse_line_into(raw: &[u8], texts: &mut Texts) -> Outcome<Entry> {
    match simdutf8::basic::from_utf8(raw) {
        Ok(text) => parse_text(text, texts),
        Err(_) => parse_decoded(raw, texts),
    }
}

/// [`parse_line_into`] for a line already known to be UTF-8.
fn parse_text(text: &str, texts: &mut Texts) -> Outcome<Entry> {
    match classify_plain(text, texts) {
        Some(classified) => classified.into(),
        None => parse_decoded(text.as_bytes(), texts),
    }
}

/// The line through the decoder, then the classifier.
fn parse_decoded(raw: &[u8], texts: &mut Texts) -> Outcome<Entry> {
    match decode_line(raw) {
        Decoded::Blank => Outcome::Blank,
        // Borrowed: decoding changed nothing, so `classify_plain` already
        // tried the flat reader on this very text.
        Decoded::Text(Cow::Borrowed(text)) => classify_full(text, texts).into(),
        Decoded::Text(text) => classify_into(&text, texts).into(),
    }
}

/// A chunk with the outcome of each of its lines.
pub struct ParsedChunk {
    pub chunk: Chunk,
    pub texts: Texts,
    pub outcomes: Vec<Outcome<Entry>>,
}

pub fn parse_chunk(chunk: Chunk) -> ParsedChunk {
    let mut texts = Texts::with_capacity(chunk.bytes().len());
    let outcomes = match chunk.text_lines() {
        Some(lines) => lines.map(|l| parse_text(l, &mut texts)).collect(),
        None => chunk
            .lines()
            .map(|l| parse_line_into(l, &mut texts))
            .collect(),
    };
    ParsedChunk {
        chunk,
        texts,
        outcomes,
    }
}

/// An alias of the first pass: `(line, identity, other)`.
pub type AliasLink = (u64, String, String);

/// The alias records of a chunk. Only lines that can hold an alias are
/// parsed: after decoding, the key `_p2` needs the bytes `_p2` in the line,
/// or a backslash (JSON or octal escapes). Both are searched for in the
/// whole chunk, not line by line: most lines have neither.
pub fn chunk_aliases(chunk: Chunk) -> (u64, Vec<AliasLink>) {
    let mut out = Vec::new();
    for (line, raw) in candidate_lines(chunk.bytes(), chunk.first_line) {
        if let Outcome::Record(record) = parse_line(raw) {
            if let View::Alias {
                identity, other, ..
            } = record.view()
            {
                out.push((line, identity.to_owned(), other.to_owned()));
            }
        }
    }
    (chunk.revision, out)
}

/// The lines of `bytes` (numbered from `first_line`, without their `\n`)
/// that hold `_p2` or a backslash.
fn candidate_lines(bytes: &[u8], first_line: u64) -> impl Iterator<Item = (u64, &[u8])> {
    let p2 = memchr::memmem::Finder::new(b"_p2");
    // The first `_p2` and the first backslash at or after `from`.
    let find_p2 = move |from: usize| p2.find(&bytes[from..]).map_or(bytes.len(), |i| from + i);
    let find_backslash =
        |from: usize| memchr::memchr(b'\\', &bytes[from..]).map_or(bytes.len(), |i| from + i);
    let (mut next_p2, mut next_backslash) = (find_p2(0), find_backslash(0));
    // `pos`: where the next line starts; `line`: the number of the line
    // that starts at `counted`.
    let (mut pos, mut counted, mut line) = (0, 0, first_line);
    std::iter::from_fn(move || {
        if pos >= bytes.len() {
            return None;
        }
        if next_p2 < pos {
            next_p2 = find_p2(pos);
        }
        if next_backslash < pos {
            next_backslash = find_backslash(pos);
        }
        let hit = next_p2.min(next_backslash);
        if hit >= bytes.len() {
            return None;
        }
        let start = memchr::memrchr(b'\n', &bytes[pos..hit]).map_or(pos, |i| pos + i + 1);
        let end = memchr::memchr(b'\n', &bytes[hit..]).map_or(bytes.len(), |i| hit + i);
        line += memchr::memchr_iter(b'\n', &bytes[counted..start]).count() as u64;
        counted = start;
        pos = end + 1;
        Some((line, &bytes[start..end]))
    })
}

/// Applies first-pass links in input order; returns the aliases not applied.
pub fn apply_links(
    ids: &mut Identities,
    revision: u64,
    links: Vec<AliasLink>,
    unapplied: &mut HashSet<(u64, u64)>,
) {
    for (line, a, b) in links {
        let (a, b) = (ids.intern(&a), ids.intern(&b));
        if !ids.link(a, b) {
            unapplied.insert((revision, line));
        }
    }
}

/// `(revision, n)` → a row id; revisions stay below 2^23, `n` below 2^40.
pub fn row_id(revision: u64, n: u64) -> u64 {
    (revision << 40) | n
}

/// Turns parsed chunks into rows (handed to a [`RowSink`]) and rejects.
pub struct Resolver<'a, S> {
    pub snap: &'a mut Snapshot,
    pub filters: &'a Filters,
    ignored_roots: HashSet<Ident>,
    /// Ignored names, for identities first seen in this pass.
    ignored_names: HashSet<&'a str>,
    /// Identities known before this pass: later ones are singletons.
    known: usize,
    unapplied: HashSet<(u64, u64)>,
    pub sink: S,
    pub rejects: RejectsFile,
    pub total: Accounting,
    /// Lines per revision, for the state store.
    pub revisions: Vec<(u64, u64)>,
    revision: u64,
    prop_seq: u64,
}

impl<'a, S: RowSink> Resolver<'a, S> {
    pub fn new(
        snap: &'a mut Snapshot,
        filters: &'a Filters,
        unapplied: HashSet<(u64, u64)>,
        sink: S,
        rejects: RejectsFile,
    ) -> Resolver<'a, S> {
        let ignored_roots = ignored_roots(&mut snap.identities, filters);
        let known = snap.identities.len();
        Resolver {
            snap,
            filters,
            ignored_roots,
            ignored_names: filters.ignored_users.iter().map(String::as_str).collect(),
            known,
            unapplied,
            sink,
            rejects,
            total: Accounting::default(),
            revisions: Vec::new(),
            revision: u64::MAX,
            prop_seq: 0,
        }
    }

    /// Resolves one chunk.
    pub fn consume(&mut self, parsed: ParsedChunk) -> Result<()> {
        let chunk = &parsed.chunk;
        if chunk.revision != self.revision {
            if self.revision != u64::MAX {
                self.sink.end_revision()?;
            }
            self.revision = chunk.revision;
            self.prop_seq = 0;
            self.revisions.push((chunk.revision, 0));
        }
        for ((i, raw), outcome) in chunk.lines().enumerate().zip(parsed.outcomes) {
            let line = chunk.first_line + i as u64;
            self.total.lines += 1;
            if let Some(last) = self.revisions.last_mut() {
                last.1 += 1;
            }
            let reject = match outcome {
                Outcome::Blank => {
                    self.total.blank += 1;
                    None
                }
                Outcome::Rejected(reason) => Some(reason),
                Outcome::Record(entry) => self.record(line, entry.view(&parsed.texts))?,
            };
            if let Some(reason) = reject {
                self.total.rejected[reason.index()] += 1;
                self.rejects.write(chunk.revision, line, reason, raw)?;
            }
        }
        Ok(())
    }

    /// Stores one record, or says why not.
    fn record(&mut self, line: u64, record: View<'_>) -> Result<Option<Reject>> {
        let rev = self.revision;
        // Property ids count every property of every event and property set,
        // so that they do not move when filters change.
        let first_prop = self.prop_seq;
        self.prop_seq += record.props().len() as u64;
        match record {
            View::Alias { identity, other, t } => {
                let (Some(a), Some(b)) = (
                    self.snap.identities.get(identity),
                    self.snap.identities.get(other),
                ) else {
                    bail!("internal error: alias at revision {rev} line {line} was missed by the first pass");
                };
                if self.is_ignored(a) || self.is_ignored(b) {
                    return Ok(Some(Reject::IgnoredUser));
                }
                self.mark_stored(a);
                self.mark_stored(b);
                let (n1, n2) = alias_names(identity, other);
                let applied = !self.unapplied.contains(&(rev, line));
                self.sink.alias(row_id(rev, line), t, n1, n2, applied)?;
                self.total.aliases += 1;
            }
            View::Event {
                identity,
                t,
                name,
                props,
            } => {
                let u = self.intern(identity);
                if self.is_ignored(u) {
                    return Ok(Some(Reject::IgnoredUser));
                }
                let wl = &self.filters.whitelisted_events;
                if !wl.is_empty() && !wl.contains(name) {
                    return Ok(Some(Reject::NotWhitelisted));
                }
                let user = self.user_id(u);
                let event_id = row_id(rev, line);
                let n = self.snap.keys.id(name);
                self.sink.event(event_id, t, n, user)?;
                self.properties(first_prop, t, user, Some(event_id), props)?;
                self.total.events += 1;
            }
            View::PropertySet { identity, t, props } => {
                let u = self.intern(identity);
                if self.is_ignored(u) {
                    return Ok(Some(Reject::IgnoredUser));
                }
                let user = self.user_id(u);
                self.properties(first_prop, t, user, None, props)?;
                self.total.property_sets += 1;
            }
        }
        Ok(None)
    }

    fn properties(
        &mut self,
        first: u64,
        t: i64,
        user: u64,
        event: Option<u64>,
        props: Props<'_>,
    ) -> Result<()> {
        for (i, (key, value)) in props.iter().enumerate() {
            if self.filters.blacklisted_properties.contains(key) {
                continue;
            }
            let k = self.snap.keys.id(key);
            let id = row_id(self.revision, first + i as u64);
            self.sink.property(id, t, k, value, user, event)?;
        }
        Ok(())
    }

    /// The identity of a row's `_p`. Ignored names get no number before
    /// they are seen, so that numbers do not depend on the filters.
    fn intern(&mut self, name: &str) -> Ident {
        let id = self.snap.identities.intern(name);
        if !self.ignored_names.is_empty()
            && id as usize >= self.known
            && self.ignored_names.contains(name)
        {
            self.ignored_roots.insert(id);
        }
        id
    }

    fn is_ignored(&mut self, id: Ident) -> bool {
        !self.ignored_roots.is_empty()
            && self.ignored_roots.contains(&self.snap.identities.find(id))
    }

    fn mark_stored(&mut self, id: Ident) {
        let i = id as usize;
        if self.snap.stored.len() <= i {
            self.snap.stored.resize(i + 1, false);
        }
        self.snap.stored[i] = true;
    }

    /// Marks the identity stored and returns its group's canonical `users.id`.
    fn user_id(&mut self, id: Ident) -> u64 {
        self.mark_stored(id);
        self.snap.identities.canonical(id) as u64 + 1
    }
}

/// Roots of the groups holding an ignored identity.
pub fn ignored_roots(ids: &mut Identities, filters: &Filters) -> HashSet<Ident> {
    filters
        .ignored_users
        .iter()
        .filter_map(|name| ids.get(name))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|id| ids.find(id))
        .collect()
}

/// `(name1, name2)` of an alias row: the numeric one first, else the lower
/// in byte order.
pub fn alias_names<'s>(a: &'s str, b: &'s str) -> (&'s str, &'s str) {
    match (is_numeric(a.as_bytes()), is_numeric(b.as_bytes())) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        _ if a.as_bytes() <= b.as_bytes() => (a, b),
        _ => (b, a),
    }
}

/// How rows of earlier imports must change after this import's links.
#[derive(Default, Debug)]
pub struct Catchup {
    /// `users.id` of a former canonical → `users.id` of the new one.
    pub remap: HashMap<u64, u64>,
    /// Former canonical `users.id`s of groups now ignored.
    pub drop_users: HashSet<u64>,
    /// Stored identities of groups now ignored (their `users` and `aliases`
    /// rows go).
    pub drop_names: Vec<String>,
}

/// Compares canonicals before and after the first pass for identities that
/// already had rows, and clears `stored` for ignored groups.
pub fn catchup(snap: &mut Snapshot, before: &[Ident], filters: &Filters) -> Catchup {
    let ignored = ignored_roots(&mut snap.identities, filters);
    let mut out = Catchup::default();
    for (i, &old) in before.iter().enumerate() {
        if !snap.stored.get(i).copied().unwrap_or(false) {
            continue;
        }
        let id = i as Ident;
        let root = snap.identities.find(id);
        if ignored.contains(&root) {
            // Rows may carry the old canonical or, re-pointed by an
            // interrupted run of this import, the current one.
            out.drop_users.insert(old as u64 + 1);
            out.drop_users
                .insert(snap.identities.canonical(id) as u64 + 1);
            out.drop_names.push(snap.identities.name(id).to_owned());
            snap.stored[i] = false;
            continue;
        }
        let new = snap.identities.canonical(id);
        if new != old {
            out.remap.insert(old as u64 + 1, new as u64 + 1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_lines_are_the_lines_with_p2_or_a_backslash() {
        let data: &[u8] =
            b"_p2 first\nplain\n\n{\"a\":\"\\u005fp2\"}\nx_p2 and \\ twice _p2\n_p\n2\nlast _p2";
        let want: Vec<(u64, &[u8])> = data
            .split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, l)| l.windows(3).any(|w| w == b"_p2") || l.contains(&b'\\'))
            .map(|(i, l)| (7 + i as u64, l))
            .collect();
        assert_eq!(want.len(), 4);
        assert_eq!(candidate_lines(data, 7).collect::<Vec<_>>(), want);
        let mut with_end = data.to_vec();
        with_end.push(b'\n');
        assert_eq!(candidate_lines(&with_end, 7).collect::<Vec<_>>(), want);
        assert_eq!(candidate_lines(b"", 1).count(), 0);
        assert_eq!(candidate_lines(b"a\nb\n", 1).count(), 0);
        assert_eq!(
            candidate_lines(b"\\", 3).collect::<Vec<_>>(),
            [(3, &b"\\"[..])]
        );
    }

    /// The shortcut of `parse_line` past the decoder gives what decoding
    /// first gives.
    #[test]
    fn parse_line_equals_decode_then_classify() {
        let lines: [&[u8]; 12] = [
            br#"{"_p":"a","_n":"x","_t":1}"#,
            b"{\"_p\":\"a\",\"_n\":\"x\",\"_t\":1}\r",
            br#"{"_p":"caf\303\251","_n":"x","_t":1}"#,
            br#"{"_p":"a\\303","_n":"x","_t":1}"#,
            br#"{"_p":"a","_n":"\u00e9\"","_t":"2"}"#,
            b"{\"_p\":\"caf\xe9\",\"_n\":\"x\",\"_t\":1}",
            br#"{"_p":"a","k":\303,"_t":1}"#,
            br#" {"_p":"a","_n":"x","_t":1}"#,
            b"  \r",
            b"",
            br#"{"_p":"a","_p2":"b","_t":1}"#,
            br#"{"_p":"a","_t":1"#,
        ];
        for raw in lines {
            let slow = match decode_line(raw) {
                Decoded::Blank => Outcome::Blank,
                Decoded::Text(text) => crate::record::classify(&text).into(),
            };
            assert_eq!(
                format!("{:?}", parse_line(raw)),
                format!("{slow:?}"),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let mut texts = Texts::default();
        let octal = r#"{"_p":"caf\303\251","_n":"x","_t":1}"#;
        assert!(classify_plain(octal, &mut texts).is_none());
    }

    /// The records of a chunk share their texts: a line that is not a record
    /// (rejected, or read again by sonic-rs after the flat reader gave up
    /// half-way) leaves nothing in them that shows up in a later record.
    #[test]
    fn a_chunk_gives_what_each_line_gives() {
        let lines: [&[u8]; 10] = [
            br#"{"_p":"a","_n":"x","_t":1,"k":"v","k":null,"j":"w"}"#,
            br#"{"_p":"a","_n":"x","k":"v"}"#,
            br#"{"_p":"a","k":"v","_t":1,"x":[1]}"#,
            br#"{"_p":"a","_p2":"a","k":"v","_t":1}"#,
            br#"{"_p":"a","_p2":"b","k":"v","_t":1}"#,
            br#"{"_p":"caf\303\251","_n":"x","_t":1,"k":"\303"}"#,
            b"",
            br#"{"_p":"b","_t":2,"k":null}"#,
            br#"{"_p":"c","_t":3,"k":"v2","l":"w2"}"#,
            b"{\"_p\":\"d\",\"_n\":\"y\",\"_t\":4}\r",
        ];
        for invalid_utf8 in [false, true] {
            let mut data = lines.join(&b'\n');
            if invalid_utf8 {
                data.extend_from_slice(b"\n{\"_p\":\"caf\xe9\",\"_n\":\"x\",\"_t\":1}");
            }
            let chunk = Chunk::new(1, 1, data);
            let one_by_one: Vec<String> = chunk
                .lines()
                .map(|raw| format!("{:?}", parse_line(raw)))
                .collect();
            let parsed = parse_chunk(chunk);
            let shared: Vec<String> = parsed
                .outcomes
                .iter()
                .map(|o| match o {
                    Outcome::Record(entry) => format!("Record({:?})", entry.view(&parsed.texts)),
                    other => format!("{other:?}"),
                })
                .collect();
            assert_eq!(shared, one_by_one);
        }
    }

    #[test]
    fn alias_name_order() {
        assert_eq!(alias_names("cookie", "123"), ("123", "cookie"));
        assert_eq!(alias_names("123", "cookie"), ("123", "cookie"));
        assert_eq!(alias_names("b@x", "a@x"), ("a@x", "b@x"));
        assert_eq!(alias_names("B", "a"), ("B", "a"));
    }

    #[test]
    fn row_ids_are_disjoint_per_revision() {
        assert_eq!(row_id(1, 1), (1 << 40) + 1);
        assert!(row_id(2, 0) > row_id(1, (1 << 40) - 1));
    }
}
