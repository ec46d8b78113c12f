//! A format's lines for a database whose text cannot hold U+0000
//! (PostgreSQL, SPEC §8): every U+0000 becomes U+FFFD before anything reads
//! the line, so identities, filters and the 255 cut all see U+FFFD.

use std::borrow::Cow;

use super::Format;
use crate::record::{Entry, Reject, Texts};
use crate::source::FileNames;

/// `F`, with U+0000 read as U+FFFD.
pub struct NulAsReplacement<F: 'static>(pub &'static F);

/// The text of `line` with its `\u0000` escapes written `\ufffd` (the same
/// length) and its raw NUL bytes as U+FFFD; borrowed when it has neither.
/// An escaped backslash (`\\u0000`) is text, and stays.
pub fn replace_nul(line: &str) -> Cow<'_, str> {
    let bytes = line.as_bytes();
    let has_escape = memchr::memmem::find(bytes, b"\\u0000").is_some();
    let has_raw = memchr::memchr(0, bytes).is_some();
    if !has_escape && !has_raw {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if bytes[i + 1..].starts_with(b"u0000") => {
                out.push_str("\\ufffd");
                i += 6;
            }
            b'\\' if i + 1 < bytes.len() => {
                // Any other escape, kept whole (its second byte is ASCII
                // in valid JSON; otherwise it starts a character, kept below).
                out.push('\\');
                i += 1;
                if bytes[i].is_ascii() {
                    out.push(bytes[i] as char);
                    i += 1;
                }
            }
            0 => {
                out.push('\u{FFFD}');
                i += 1;
            }
            _ => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'\\' && bytes[i] != 0 {
                    i += 1;
                }
                out.push_str(&line[start..i]);
            }
        }
    }
    Cow::Owned(out)
}

impl<F: FileNames + Sync> FileNames for NulAsReplacement<F> {
    fn revision_of(&self, name: &str) -> Option<(u64, bool)> {
        self.0.revision_of(name)
    }

    fn near_miss(&self, name: &str) -> bool {
        self.0.near_miss(name)
    }

    fn folder(&self) -> Option<&'static str> {
        self.0.folder()
    }

    fn names(&self) -> &'static str {
        self.0.names()
    }

    fn rejects_name_files(&self) -> bool {
        self.0.rejects_name_files()
    }
}

impl<F: Format> Format for NulAsReplacement<F> {
    fn classify_plain(&self, line: &str, texts: &mut Texts) -> Option<Result<Entry, Reject>> {
        // `None` sends the line (as it came) through the decoder, then
        // through [`Format::classify`] here.
        self.0.classify_plain(&replace_nul(line), texts)
    }

    fn classify(&self, text: &str, texts: &mut Texts) -> Result<Entry, Reject> {
        self.0.classify(&replace_nul(text), texts)
    }

    fn classify_full(&self, text: &str, texts: &mut Texts) -> Result<Entry, Reject> {
        match replace_nul(text) {
            Cow::Borrowed(text) => self.0.classify_full(text, texts),
            Cow::Owned(text) => self.0.classify(&text, texts),
        }
    }

    fn alias_markers(&self) -> &'static [&'static [u8]] {
        self.0.alias_markers()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_escapes_and_bytes_become_replacement() {
        assert!(matches!(replace_nul(r#"{"a":"b"}"#), Cow::Borrowed(_)));
        assert_eq!(replace_nul(r#""nul\u0000""#), r#""nul\ufffd""#);
        assert_eq!(replace_nul(r#""\\u0000""#), r#""\\u0000""#);
        assert_eq!(replace_nul(r#""\\\u0000x""#), r#""\\\ufffdx""#);
        assert_eq!(replace_nul("\"a\0é\""), "\"a\u{FFFD}é\"");
        assert_eq!(replace_nul(r#""\u00001\"\u0000""#), r#""\ufffd1\"\ufffd""#);
    }

    #[test]
    fn the_wrapped_format_names_the_files_of_rejects() {
        use crate::format::{km::Km, mixpanel::Mixpanel};
        assert!(NulAsReplacement(&Mixpanel).rejects_name_files());
        assert!(!NulAsReplacement(&Km).rejects_name_files());
    }
}
