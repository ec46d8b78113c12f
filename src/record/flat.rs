//! The fast reader of a line's members: compact, flat objects in one
//! pass, borrowing strings without escapes. Anything else is left to
//! [`super::full`].

use std::borrow::Cow;

use super::{is_json_number, push_char_kept, push_kept, Members, Value};

/// Reads a compact, flat object (`{"k":v,...}`: no whitespace, no arrays or
/// objects as values, except objects that `fields` [enters](Members::enter),
/// read the same way) into `fields`. `None` for anything else, valid or not,
/// which [`full_object`] then reads from the start: this never decides that
/// a line is malformed, and what it accepts sonic-rs reads the same way.
///
/// [`full_object`]: super::full_object
pub fn flat_object<'a, M: Members<'a>>(text: &'a str, fields: &mut M) -> Option<()> {
    let mut cur = Cursor { text, at: 0 };
    cur.members(fields, 0)?;
    cur.at_end()
}

/// Objects nested deeper than this are left to the full reader, which
/// refuses them (see `full::MAX_DEPTH`).
const MAX_DEPTH: usize = 128;

/// A position in a line, for [`flat_object`]. Every method returns `None`
/// when the text there is not what it reads.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    /// An object entered at `depth` (see [`Cursor::members`]); not inlined,
    /// so that the line's own loop is.
    #[inline(never)]
    fn nested<M: Members<'a>>(&mut self, fields: &mut M, depth: usize) -> Option<()> {
        self.members(fields, depth)
    }

    /// An object's members, from its `{` to its `}`, at `depth` objects
    /// inside the line's.
    #[inline(always)]
    fn members<M: Members<'a>>(&mut self, fields: &mut M, depth: usize) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let key = self.string(false)?;
            self.eat(b':')?;
            if self.text.as_bytes().get(self.at) == Some(&b'{') {
                if depth >= MAX_DEPTH || !fields.enter(&key) {
                    return None;
                }
                self.nested(fields, depth + 1)?;
                fields.leave();
            } else {
                let value = self.value(fields.read_whole(&key))?;
                fields.member(key, value);
            }
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    fn next(&mut self) -> Option<u8> {
        let byte = *self.text.as_bytes().get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.text.as_bytes().get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    fn at_end(&self) -> Option<()> {
        (self.at == self.text.len()).then_some(())
    }

    /// A string, a number, `true`, `false` or `null`; a string with
    /// escapes is only decoded as far as its cut needs, unless `whole`.
    fn value(&mut self, whole: bool) -> Option<Value<'a>> {
        match *self.text.as_bytes().get(self.at)? {
            b'"' => self.string(whole).map(Value::Str),
            b'-' | b'0'..=b'9' => self.number().map(Value::Number),
            b't' => self.literal("true").map(Value::Other),
            b'f' => self.literal("false").map(Value::Other),
            b'n' => self.literal("null").map(|_| Value::Null),
            _ => None,
        }
    }

    fn literal(&mut self, word: &'static str) -> Option<Cow<'a, str>> {
        let rest = &self.text.as_bytes()[self.at..];
        rest.starts_with(word.as_bytes()).then(|| {
            self.at += word.len();
            Cow::Borrowed(word)
        })
    }

    /// A number's text, if it follows the JSON grammar.
    fn number(&mut self) -> Option<Cow<'a, str>> {
        let start = self.at;
        let len = self.text.as_bytes()[start..]
            .iter()
            .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .count();
        let number = &self.text[start..start + len];
        is_json_number(number).then(|| {
            self.at += len;
            Cow::Borrowed(number)
        })
    }

    /// A string's content, borrowed unless it has escapes; decoded only as
    /// far as its cut needs ([`super::KEPT`] bytes) unless `whole`, though
    /// read to its end. Inlined: a line is mostly short strings.
    #[inline(always)]
    fn string(&mut self, whole: bool) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let (text, start) = (self.text, self.at);
        let end = start + find_special(&text.as_bytes()[start..])?;
        if text.as_bytes()[end] == b'"' {
            self.at = end + 1;
            return Some(Cow::Borrowed(&text[start..end]));
        }
        self.unplain(start, end, whole)
    }

    /// The rest of [`Cursor::string`] when the first special byte, at `at`,
    /// is not its closing quote.
    #[cold]
    fn unplain(&mut self, start: usize, at: usize, whole: bool) -> Option<Cow<'a, str>> {
        match self.text.as_bytes()[at] {
            b'\\' => self.escaped(start, at, whole).map(Cow::Owned),
            _ => None,
        }
    }

    /// The content of a string starting at `start` whose first backslash is
    /// at `at` (its first [`super::KEPT`] bytes unless `whole`).
    fn escaped(&mut self, start: usize, mut at: usize, whole: bool) -> Option<String> {
        let (text, bytes) = (self.text, self.text.as_bytes());
        let push = if whole { String::push_str } else { push_kept };
        let push_char = if whole { String::push } else { push_char_kept };
        let mut out = String::with_capacity((at - start).min(super::KEPT) + 16);
        let mut plain = start;
        loop {
            at += find_special(&bytes[at..])?;
            match bytes[at] {
                b'"' => {
                    push(&mut out, &text[plain..at]);
                    self.at = at + 1;
                    return Some(out);
                }
                b'\\' => {
                    push(&mut out, &text[plain..at]);
                    let (c, len) = escape(&bytes[at + 1..])?;
                    push_char(&mut out, c);
                    at += 1 + len;
                    plain = at;
                }
                _ => return None, // a control character
            }
        }
    }
}

/// Bytes that end the plain part of a JSON string.
fn special(byte: u8) -> bool {
    byte == b'"' || byte == b'\\' || byte < 0x20
}

/// Position of the first [`special`] byte: sixteen bytes at a time with
/// SSE2 on x86_64, then eight at a time.
pub(super) fn find_special(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    #[cfg(target_arch = "x86_64")]
    for block in bytes.chunks_exact(16) {
        let mask = special_mask(block.try_into().unwrap_or(&[0; 16]));
        if mask != 0 {
            return Some(at + mask.trailing_zeros() as usize);
        }
        at += 16;
    }
    find_special_swar(&bytes[at..]).map(|i| at + i)
}

/// One bit per [`special`] byte of `block`, the first byte lowest.
#[cfg(target_arch = "x86_64")]
fn special_mask(block: &[u8; 16]) -> u32 {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of every x86_64 target; the unaligned load reads
    // exactly the 16 bytes of `block`.
    unsafe {
        let x = _mm_loadu_si128(block.as_ptr().cast());
        let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
        // x <= 0x1f, unsigned: min(x, 0x1f) == x.
        let control = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
    }
}

/// [`find_special`] eight bytes at a time, in plain Rust.
///
/// In each word, a byte is flagged when it is below 0x20 or, after an XOR,
/// zero (`"` or `\`). Borrows can flag bytes above a real hit, never below,
/// so the lowest flag is the first special byte.
fn find_special_swar(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES * 0x80;
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let x = u64::from_le_bytes(word.try_into().unwrap_or_default());
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        let hits = (below(quote, 1) | below(backslash, 1) | below(x, 0x20)) & HIGH;
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let rest = words.remainder().iter().position(|&b| special(b));
    rest.map(|i| at + i)
}

/// The character of the JSON escape after a backslash, and its length.
/// `None` for invalid escapes and for surrogates (`\ud83d`), which are left
/// to sonic-rs and [`unescape_lossy`].
fn escape(bytes: &[u8]) -> Option<(char, usize)> {
    let c = match *bytes.first()? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let hex = bytes.get(1..5)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let code = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            return char::from_u32(code).map(|c| (c, 5));
        }
        _ => return None,
    };
    Some((c, 1))
}
