//! What a line of an input format becomes: every format's lines are
//! decoded (SPEC §2) and read as JSON the same way; a [`Format`] says which
//! files are its revisions and which member means what. KissMetrics is
//! [`km`]; a format is added with a file here and a variant of
//! [`InputFormat`].

pub mod km;
pub mod mixpanel;
pub mod nul;

use std::borrow::Cow;

use crate::decode::{decode_line, Decoded};
use crate::record::{Entry, Record, Reject, Texts, View};
use crate::source::{Chunk, FileNames};

pub use km::KM;
pub use mixpanel::MIXPANEL;

/// An input format: its file names, and its lines as records.
pub trait Format: FileNames + Sync {
    /// A UTF-8 line that needs no decoding, if the format's fast reader can
    /// read it whole (a trailing `\r` dropped); `None` sends the line
    /// through the decoder and [`Format::classify`].
    fn classify_plain(&self, line: &str, texts: &mut Texts) -> Option<Result<Entry, Reject>>;
    /// A decoded line (SPEC §2 done).
    fn classify(&self, text: &str, texts: &mut Texts) -> Result<Entry, Reject>;
    /// [`Format::classify`] for a text the fast reader already failed on.
    fn classify_full(&self, text: &str, texts: &mut Texts) -> Result<Entry, Reject> {
        self.classify(text, texts)
    }
    /// Bytes one of which a raw line must hold to be an alias (besides a
    /// backslash, which may escape anything): the first pass parses only
    /// those lines.
    fn alias_markers(&self) -> &'static [&'static [u8]];

    /// [`Format::classify`] into texts of its own.
    fn classify_record(&self, text: &str) -> Result<Record, Reject> {
        let mut texts = Texts::default();
        let entry = self.classify(text, &mut texts)?;
        Ok(Record::new(entry, texts))
    }

    /// [`parse_chunk`] with this format (one dynamic call per chunk).
    fn parse_chunk(&self, chunk: Chunk) -> ParsedChunk {
        parse_chunk(self, chunk)
    }

    /// [`chunk_aliases`] with this format.
    fn chunk_aliases(&self, chunk: Chunk) -> (u64, Vec<AliasLink>) {
        chunk_aliases(self, chunk)
    }

    /// [`parse_line`] with this format.
    fn parse_line(&self, raw: &[u8]) -> Outcome {
        parse_line(self, raw)
    }
}

/// The formats `kmdb import --format` takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// KissMetrics Data Export (`revisions/N.json[.gz]`).
    #[default]
    Km,
    /// Mixpanel raw event export (`YYYY-MM-DD.json[l][.gz]`, SPEC §10).
    Mixpanel,
}

impl InputFormat {
    pub fn format(self) -> &'static dyn Format {
        match self {
            InputFormat::Km => &KM,
            InputFormat::Mixpanel => &MIXPANEL,
        }
    }

    /// The format for a database that cannot store U+0000: it reads every
    /// U+0000 as U+FFFD (SPEC §8).
    pub fn format_without_nul(self) -> &'static dyn Format {
        static KM_NO_NUL: nul::NulAsReplacement<km::Km> = nul::NulAsReplacement(&KM);
        static MIXPANEL_NO_NUL: nul::NulAsReplacement<mixpanel::Mixpanel> =
            nul::NulAsReplacement(&MIXPANEL);
        match self {
            InputFormat::Km => &KM_NO_NUL,
            InputFormat::Mixpanel => &MIXPANEL_NO_NUL,
        }
    }
}

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
pub fn parse_line<F: Format + ?Sized>(format: &F, raw: &[u8]) -> Outcome {
    let mut texts = Texts::default();
    match parse_line_into(format, raw, &mut texts) {
        Outcome::Blank => Outcome::Blank,
        Outcome::Rejected(reason) => Outcome::Rejected(reason),
        Outcome::Record(entry) => Outcome::Record(Record::new(entry, texts)),
    }
}

/// [`parse_line`] into shared texts.
fn parse_line_into<F: Format + ?Sized>(
    format: &F,
    raw: &[u8],
    texts: &mut Texts,
) -> Outcome<Entry> {
    match simdutf8::basic::from_utf8(raw) {
        Ok(text) => parse_text(format, text, texts),
        Err(_) => parse_decoded(format, raw, texts),
    }
}

/// [`parse_line_into`] for a line already known to be UTF-8.
fn parse_text<F: Format + ?Sized>(format: &F, text: &str, texts: &mut Texts) -> Outcome<Entry> {
    match format.classify_plain(text, texts) {
        Some(classified) => classified.into(),
        None => parse_decoded(format, text.as_bytes(), texts),
    }
}

/// The line through the decoder, then the classifier.
fn parse_decoded<F: Format + ?Sized>(format: &F, raw: &[u8], texts: &mut Texts) -> Outcome<Entry> {
    match decode_line(raw) {
        Decoded::Blank => Outcome::Blank,
        // Borrowed: decoding changed nothing, so `classify_plain` already
        // tried the fast reader on this very text.
        Decoded::Text(Cow::Borrowed(text)) => format.classify_full(text, texts).into(),
        Decoded::Text(text) => format.classify(&text, texts).into(),
    }
}

/// A chunk with the outcome of each of its lines.
pub struct ParsedChunk {
    pub chunk: Chunk,
    pub texts: Texts,
    pub outcomes: Vec<Outcome<Entry>>,
}

/// Decodes and classifies every line of `chunk`, into texts the chunk's
/// records share.
pub fn parse_chunk<F: Format + ?Sized>(format: &F, chunk: Chunk) -> ParsedChunk {
    let mut texts = Texts::with_capacity(chunk.bytes().len());
    let outcomes = match chunk.text_lines() {
        Some(lines) => lines.map(|l| parse_text(format, l, &mut texts)).collect(),
        None => chunk
            .lines()
            .map(|l| parse_line_into(format, l, &mut texts))
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
/// parsed: after decoding, an alias needs one of the format's
/// [`Format::alias_markers`] in the line, or a backslash (JSON or octal
/// escapes). They are searched for in the whole chunk, not line by line:
/// most lines have none.
pub fn chunk_aliases<F: Format + ?Sized>(format: &F, chunk: Chunk) -> (u64, Vec<AliasLink>) {
    let mut out = Vec::new();
    let markers = format.alias_markers();
    for (line, raw) in candidate_lines(chunk.bytes(), chunk.first_line, markers) {
        if let Outcome::Record(record) = parse_line(format, raw) {
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
/// that hold one of `markers` or a backslash.
fn candidate_lines<'b>(
    bytes: &'b [u8],
    first_line: u64,
    markers: &[&[u8]],
) -> impl Iterator<Item = (u64, &'b [u8])> + 'b {
    let finders: Vec<memchr::memmem::Finder<'static>> = markers
        .iter()
        .map(|m| memchr::memmem::Finder::new(m).into_owned())
        .collect();
    // Where each marker occurs next, each searched again only once passed
    // (searching every marker from every hit would read the chunk to its
    // end once per hit for a marker it does not hold).
    let mut next_each: Vec<Option<usize>> = vec![None; finders.len()];
    let mut find_marker = move |from: usize| {
        let mut first = bytes.len();
        for (next, finder) in next_each.iter_mut().zip(&finders) {
            let at = match *next {
                Some(at) if at >= from => at,
                _ => finder
                    .find(&bytes[from..])
                    .map_or(bytes.len(), |i| from + i),
            };
            *next = Some(at);
            first = first.min(at);
        }
        first
    };
    let find_backslash =
        move |from: usize| memchr::memchr(b'\\', &bytes[from..]).map_or(bytes.len(), |i| from + i);
    let (mut next_marker, mut next_backslash) = (find_marker(0), find_backslash(0));
    // `pos`: where the next line starts; `line`: the number of the line
    // that starts at `counted`.
    let (mut pos, mut counted, mut line) = (0, 0, first_line);
    std::iter::from_fn(move || {
        if pos >= bytes.len() {
            return None;
        }
        if next_marker < pos {
            next_marker = find_marker(pos);
        }
        if next_backslash < pos {
            next_backslash = find_backslash(pos);
        }
        let hit = next_marker.min(next_backslash);
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
        assert_eq!(
            candidate_lines(data, 7, &[b"_p2"]).collect::<Vec<_>>(),
            want
        );
        let mut with_end = data.to_vec();
        with_end.push(b'\n');
        assert_eq!(
            candidate_lines(&with_end, 7, &[b"_p2"]).collect::<Vec<_>>(),
            want
        );
        assert_eq!(candidate_lines(b"", 1, &[b"_p2"]).count(), 0);
        assert_eq!(candidate_lines(b"a\nb\n", 1, &[b"_p2"]).count(), 0);
        assert_eq!(
            candidate_lines(b"\\", 3, &[b"_p2"]).collect::<Vec<_>>(),
            [(3, &b"\\"[..])]
        );
    }

    /// With several markers, a line is a candidate when it holds any of
    /// them (or a backslash), however they interleave.
    #[test]
    fn candidate_lines_with_several_markers() {
        let markers: [&[u8]; 3] = [b"$identify", b"$create_alias", b"$merge"];
        let pieces = [
            "$identify",
            "$merge",
            "$create_alias",
            "\\",
            "x",
            "$mer",
            "",
            "ge",
        ];
        // Every line of 0 to 2 pieces, in a fixed shuffled order.
        let mut lines: Vec<String> = Vec::new();
        for a in pieces {
            for b in pieces {
                lines.push(format!("{a}{b}"));
            }
        }
        for rotate in [0, 7, 31] {
            lines.rotate_left(rotate);
            let data = lines.join("\n");
            let want: Vec<(u64, &[u8])> = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| {
                    let b = l.as_bytes();
                    b.contains(&b'\\')
                        || markers.iter().any(|m| b.windows(m.len()).any(|w| w == *m))
                })
                .map(|(i, l)| (1 + i as u64, l.as_bytes()))
                .collect();
            assert!(want.len() > 20);
            let got: Vec<(u64, &[u8])> = candidate_lines(data.as_bytes(), 1, &markers).collect();
            assert_eq!(got, want);
        }
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
                Decoded::Text(text) => KM.classify_record(&text).into(),
            };
            assert_eq!(
                format!("{:?}", parse_line(&KM, raw)),
                format!("{slow:?}"),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let mut texts = Texts::default();
        let octal = r#"{"_p":"caf\303\251","_n":"x","_t":1}"#;
        assert!(KM.classify_plain(octal, &mut texts).is_none());
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
                .map(|raw| format!("{:?}", parse_line(&KM, raw)))
                .collect();
            let parsed = parse_chunk(&KM, chunk);
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
}
