//! Line decoding (SPEC §2): bytes of one export line → clean UTF-8 JSON text.
//!
//! KM exports are *almost* JSON. Two things need repair before a JSON parser
//! sees a line:
//!
//! * octal escapes such as `\303\251`, which stand for raw bytes: each run of
//!   adjacent escapes becomes the UTF-8 text it encodes, or Windows-1252 text
//!   when the bytes are not valid UTF-8 (older exports);
//! * raw bytes that are not valid UTF-8, which become U+FFFD.
//!
//! Almost every line needs neither, so the common path is one scan for `\`
//! plus UTF-8 validation, and hands back the input borrowed.

use std::borrow::Cow;
use std::fmt::Write as _;

/// One input line after decoding.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Empty or only whitespace.
    Blank,
    /// UTF-8 text ready for the JSON parser; borrowed when nothing had to change.
    Text(Cow<'a, str>),
}

/// Decodes one line (without its `\n`; a trailing `\r` is dropped here).
#[must_use]
pub fn decode_line(raw: &[u8]) -> Decoded<'_> {
    let line = raw.strip_suffix(b"\r").unwrap_or(raw);
    if line.iter().all(|&b| is_blank_byte(b)) {
        return Decoded::Blank;
    }
    let text = match next_escape(line, 0) {
        // simdutf8: std's check took a twentieth of the parse time.
        None => match simdutf8::basic::from_utf8(line) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(line),
        },
        Some(first) => Cow::Owned(decode_escapes(line, first)),
    };
    Decoded::Text(text)
}

/// Windows-1252 → char (undefined bytes give U+FFFD).
#[must_use]
pub fn cp1252(byte: u8) -> char {
    /// 0x80..=0x9F, the only range where Windows-1252 differs from Latin-1.
    const C1: [char; 32] = [
        '\u{20AC}', '\u{FFFD}', '\u{201A}', '\u{0192}', // € _ ‚ ƒ
        '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}', // „ … † ‡
        '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', // ˆ ‰ Š ‹
        '\u{0152}', '\u{FFFD}', '\u{017D}', '\u{FFFD}', // Œ _ Ž _
        '\u{FFFD}', '\u{2018}', '\u{2019}', '\u{201C}', // _ ‘ ’ “
        '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}', // ” • – —
        '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', // ˜ ™ š ›
        '\u{0153}', '\u{FFFD}', '\u{017E}', '\u{0178}', // œ _ ž Ÿ
    ];
    match byte {
        0x80..=0x9F => C1[usize::from(byte - 0x80)],
        _ => char::from(byte),
    }
}

/// Whitespace as the spec defines it: ASCII whitespace *including* `\x0b`,
/// which `u8::is_ascii_whitespace` leaves out.
fn is_blank_byte(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

/// The byte encoded by an octal escape (`\` + `[0-3][0-7][0-7]`) at the start
/// of `bytes`, if there is one.
fn octal_escape(bytes: &[u8]) -> Option<u8> {
    match *bytes {
        [b'\\', hi @ b'0'..=b'3', mid @ b'0'..=b'7', lo @ b'0'..=b'7', ..] => {
            Some((hi - b'0') << 6 | (mid - b'0') << 3 | (lo - b'0'))
        }
        _ => None,
    }
}

/// Position of the next octal escape in `line` at or after `from`, which must
/// not be in the middle of a `\x` pair.
///
/// Any other backslash is skipped together with the byte after it, so the
/// second backslash of `\\303` never starts an escape.
fn next_escape(line: &[u8], mut from: usize) -> Option<usize> {
    while let Some(offset) = memchr::memchr(b'\\', &line[from..]) {
        let at = from + offset;
        if octal_escape(&line[at..]).is_some() {
            return Some(at);
        }
        from = (at + 2).min(line.len());
    }
    None
}

/// Slow path: rebuilds `line`, whose first octal escape is at `first`.
fn decode_escapes(line: &[u8], first: usize) -> String {
    let mut out = String::with_capacity(line.len());
    let mut run = Vec::new();
    let mut copied = 0;
    let mut next = Some(first);
    while let Some(start) = next {
        push_lossy(&mut out, &line[copied..start]);
        run.clear();
        let mut end = start;
        while let Some(byte) = octal_escape(&line[end..]) {
            run.push(byte);
            end += 4;
        }
        push_run(&mut out, &run);
        copied = end;
        next = next_escape(line, end);
    }
    push_lossy(&mut out, &line[copied..]);
    out
}

/// Appends raw bytes, replacing invalid UTF-8 exactly as
/// `String::from_utf8_lossy` does (one U+FFFD per maximal invalid subpart).
fn push_lossy(out: &mut String, bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        // Fast path: `from_utf8` validates much faster than `utf8_chunks`.
        out.push_str(text);
        return;
    }
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

/// Appends the text of one run of octal-escaped bytes: UTF-8 if the whole run
/// is valid UTF-8, otherwise each byte as Windows-1252.
fn push_run(out: &mut String, run: &[u8]) {
    match std::str::from_utf8(run) {
        Ok(text) => text.chars().for_each(|c| push_json_char(out, c)),
        Err(_) => run.iter().for_each(|&b| push_json_char(out, cp1252(b))),
    }
}

/// Appends `c` escaped as it must be inside a JSON string.
///
/// Decoded characters land where the escape was, usually inside a string, so
/// a decoded `"` must not end that string and a decoded control character
/// must not make it invalid.
fn push_json_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\u{0}'..='\u{1f}' => {
            // Writing to a `String` cannot fail.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        }
        _ => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `raw` and returns the text, failing on a blank line.
    fn text(raw: &[u8]) -> Cow<'_, str> {
        match decode_line(raw) {
            Decoded::Text(text) => text,
            Decoded::Blank => panic!("unexpected blank line for {raw:?}"),
        }
    }

    fn assert_borrowed(raw: &[u8], expected: &str) {
        match text(raw) {
            Cow::Borrowed(s) => assert_eq!(s, expected),
            Cow::Owned(s) => panic!("allocated for {raw:?}: {s:?}"),
        }
    }

    #[test]
    fn trailing_cr_is_dropped() {
        assert_borrowed(b"{\"a\":1}\r", "{\"a\":1}");
        // Only one, and only at the end.
        assert_borrowed(b"{}\r\r", "{}\r");
        assert_borrowed(b"a\rb", "a\rb");
    }

    #[test]
    fn blank_lines() {
        for raw in [
            &b""[..],
            b" ",
            b"   ",
            b"\t",
            b" \t ",
            b"\r",
            b"  \r",
            b"\x0b\x0c\n",
        ] {
            assert_eq!(decode_line(raw), Decoded::Blank, "{raw:?}");
        }
        assert_ne!(decode_line(b" x "), Decoded::Blank);
        // Non-breaking space (0xA0) is not ASCII whitespace.
        assert_ne!(decode_line(b"\xa0"), Decoded::Blank);
    }

    #[test]
    fn valid_text_is_borrowed() {
        let line = r#"{"_n":"viewed page","_p":"user42@example.com","_t":1400000000}"#;
        assert_borrowed(line.as_bytes(), line);
        assert_borrowed(
            "{\"city\":\"Zürich 😀\"}".as_bytes(),
            "{\"city\":\"Zürich 😀\"}",
        );
        // Ordinary JSON escapes are not octal escapes.
        let escaped = r#"{"url":"http:\/\/x.com\/a","q":"\"hi\"\n\u00e9"}"#;
        assert_borrowed(escaped.as_bytes(), escaped);
    }

    #[test]
    fn octal_utf8_run() {
        assert_eq!(text(br"Caf\303\251"), "Café");
        assert_eq!(
            text(br#"{"name":"Caf\303\251 au lait"}"#),
            r#"{"name":"Café au lait"}"#
        );
    }

    #[test]
    fn octal_four_byte_utf8() {
        assert_eq!(text(br"\360\237\230\200!"), "😀!");
    }

    #[test]
    fn octal_cp1252_run() {
        assert_eq!(text(br"Frigidman\231"), "Frigidman™");
        // Valid UTF-8 followed by a stray byte: the run as a whole is invalid,
        // so all three bytes are Windows-1252.
        assert_eq!(text(br"\303\251\231"), "Ã©™");
        // Latin-1 range.
        assert_eq!(text(br"na\357ve"), "naïve");
    }

    #[test]
    fn separate_runs_decode_independently() {
        assert_eq!(text(br"\303\251 \231"), "é ™");
        // A run is broken by anything in between, even a backslash pair.
        assert_eq!(text(br"\303\\\251"), r"Ã\\©");
    }

    #[test]
    fn cp1252_undefined_bytes() {
        for byte in [0x81, 0x8D, 0x8F, 0x90, 0x9D] {
            assert_eq!(cp1252(byte), '\u{FFFD}', "{byte:#x}");
        }
        assert_eq!(text(br"a\201b"), "a\u{FFFD}b");
        assert_eq!(text(br"\220\235"), "\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn cp1252_table() {
        assert_eq!(cp1252(b'A'), 'A');
        assert_eq!(cp1252(0x80), '€');
        assert_eq!(cp1252(0x92), '’');
        assert_eq!(cp1252(0x9F), 'Ÿ');
        assert_eq!(cp1252(0xA0), '\u{A0}');
        assert_eq!(cp1252(0xE9), 'é');
        assert_eq!(cp1252(0xFF), 'ÿ');
        let defined = (0x80..=0x9F).filter(|&b| cp1252(b) != '\u{FFFD}').count();
        assert_eq!(defined, 27);
    }

    #[test]
    fn escaped_backslash_is_left_alone() {
        assert_borrowed(br"a\\303b", r"a\\303b");
        // Escaped backslash, then a real escape.
        assert_eq!(text(br"\\\303\251"), r"\\é");
        // Two escaped backslashes, then digits.
        assert_borrowed(br"\\\\303", r"\\\\303");
    }

    #[test]
    fn decoded_specials_are_json_escaped() {
        assert_eq!(text(br#""say \042hi\042""#), r#""say \"hi\"""#);
        assert_eq!(text(br#""C:\134dir""#), r#""C:\\dir""#);
        assert_eq!(text(br#""a\000b""#), r#""a\u0000b""#);
        assert_eq!(text(br#""line\012next""#), r#""line\u000anext""#);
        assert_eq!(text(br"\037\040\177"), "\\u001f \u{7f}");
        // Also when the characters come from a Windows-1252 run.
        assert_eq!(text(br"\042\231"), r#"\"™"#);
    }

    #[test]
    fn non_escapes_are_copied() {
        // First digit above 3: the value would exceed 255.
        assert_borrowed(br"\477", r"\477");
        assert_borrowed(br"a\777b", r"a\777b");
        // 8 and 9 are not octal digits.
        assert_borrowed(br"\308", r"\308");
        // Truncated escapes at the end of the line.
        assert_borrowed(br"x\30", r"x\30");
        assert_borrowed(br"x\3", r"x\3");
        // Trailing lone backslash.
        assert_borrowed(br"x\", r"x\");
        assert_borrowed(br"\", r"\");
        // A complete escape right before the non-escape still decodes.
        assert_eq!(text(br"\303\251\30"), r"é\30");
    }

    #[test]
    fn invalid_raw_bytes_become_replacement() {
        assert_eq!(text(b"a\xffb"), "a\u{FFFD}b");
        // Truncated multibyte sequence: one U+FFFD per maximal subpart.
        assert_eq!(text(b"a\xe2\x82"), "a\u{FFFD}");
        assert_eq!(text(b"\xe2\x82\xe2\x82\xac"), "\u{FFFD}€");
        assert_eq!(text(b"\xf0\x9f\x98 "), "\u{FFFD} ");
        // Surrogates are not UTF-8: each byte is its own maximal subpart.
        assert_eq!(text(b"\xed\xa0\x80"), "\u{FFFD}\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn raw_bytes_and_escapes_do_not_merge() {
        // A raw lead byte and an escaped continuation byte are separate:
        // the raw byte is invalid, the run is Windows-1252.
        assert_eq!(text(b"\xc3\\251"), "\u{FFFD}©");
        assert_eq!(text(b"\\303\xa9"), "Ã\u{FFFD}");
        // Both problems on one line.
        assert_eq!(text(b"\xff Caf\\303\\251 \xff"), "\u{FFFD} Café \u{FFFD}");
    }

    #[test]
    fn output_stays_json_shaped() {
        let raw = br#"{"_n":"purchased","_p":"Fran\303\247ois","Item":"Frigidman\231 \042XL\042","Path":"C:\134tmp","_t":1400000000}"#;
        assert_eq!(
            text(raw),
            r#"{"_n":"purchased","_p":"François","Item":"Frigidman™ \"XL\"","Path":"C:\\tmp","_t":1400000000}"#
        );
        let raw = b"{\"note\":\"a\\012b\\011c\",\"esc\":\"\\\\303 \\\" \\/\"}\r";
        assert_eq!(
            text(raw),
            r#"{"note":"a\u000ab\u0009c","esc":"\\303 \" \/"}"#
        );
    }

    #[test]
    fn long_lines_cross_search_blocks() {
        for pad in 0..100 {
            let prefix = "x".repeat(pad);
            let raw = format!(r"{prefix}\303\251{prefix}\\303");
            assert_eq!(text(raw.as_bytes()), format!(r"{prefix}é{prefix}\\303"));
            let raw = format!(r"{prefix}\\303{prefix}");
            assert_borrowed(raw.as_bytes(), &raw);
        }
    }

    /// Tiny deterministic PRNG (xorshift64) for the brute-force test.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> usize {
            (self.next() % n) as usize
        }
    }

    /// Random lines biased toward the interesting bytes never panic, and the
    /// output is clean: decoding it again finds nothing left to change.
    #[test]
    fn brute_force_never_panics_and_output_is_clean() {
        const INTERESTING: &[u8] = b"\\\\\\\\01234567\"\"\r \tax{}";
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut line = Vec::new();
        for _ in 0..200_000 {
            line.clear();
            for _ in 0..rng.below(40) {
                let byte = match rng.below(4) {
                    0 => 0x80 | rng.below(0x80) as u8,
                    1 => rng.below(256) as u8,
                    _ => INTERESTING[rng.below(INTERESTING.len() as u64)],
                };
                line.push(byte);
            }
            let out = match decode_line(&line) {
                Decoded::Blank => continue,
                Decoded::Text(out) => out,
            };
            if let Ok(input) = std::str::from_utf8(&line) {
                if !input.contains('\\') {
                    assert!(matches!(out, Cow::Borrowed(_)), "{line:?}");
                }
            }
            // Decoding is idempotent apart from a trailing `\r` or a line that
            // decoded to whitespace (`\040`).
            let expected = out.strip_suffix('\r').unwrap_or(&out);
            match decode_line(out.as_bytes()) {
                Decoded::Blank => assert!(expected.bytes().all(is_blank_byte), "{line:?}"),
                Decoded::Text(again) => {
                    assert!(matches!(again, Cow::Borrowed(_)), "{line:?} -> {out:?}");
                    assert_eq!(again, expected, "{line:?}");
                }
            }
        }
    }
}
