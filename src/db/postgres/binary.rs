//! COPY's binary format, made from kmdb's TSV rows on the way to the server.
//!
//! In the text format the server parses every field by its own rules (a
//! timestamp's text under the session's `DateStyle`); in the binary one it
//! takes each as stored: 8 bytes for a `bigint`, microseconds since
//! 2000-01-01 for a `timestamp`, the bytes of a text. Measured on the 2 GB
//! export (benches/RESULTS.md), the server loads ready files of either
//! format at the same speed (binary 1.04 × text, within the noise), and
//! kmdb's import with binary COPY ran at 0.97 × the floor.

use std::io::{self, Write};

use memchr::memchr;

use crate::dates::{days_from_civil, DAY_SECONDS};

/// A column's type, as the binary format writes its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Int2,
    Int4,
    Int8,
    Timestamp,
    Text,
}

/// The signature `PGCOPY\n\377\r\n\0`, no flags, no header extension.
const HEADER: &[u8; 19] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The end of the rows: a field count of -1.
const TRAILER: [u8; 2] = (-1i16).to_be_bytes();
/// The length that marks a NULL field.
const NULL: [u8; 4] = (-1i32).to_be_bytes();
/// 2000-01-01, PostgreSQL's epoch, in days since 1970-01-01.
const EPOCH_DAYS: i64 = 10_957;
/// Tuples gathered before they are written on.
const BATCH_BYTES: usize = 1 << 20;

/// A writer that takes TSV lines (`\t` between fields, `\n` after each row,
/// MySQL `LOAD DATA` escapes, `\N` for NULL) in pieces of any size and
/// writes them on to `out` as binary COPY tuples of `fields`; [`finish`]
/// ends them.
///
/// [`finish`]: BinaryRows::finish
pub struct BinaryRows<W: Write> {
    out: W,
    fields: &'static [Field],
    /// A line whose end has not come yet.
    partial: Vec<u8>,
    /// Tuples not written on yet (the header first).
    tuples: Vec<u8>,
    /// Rows converted, for the message of a row that cannot be.
    rows: u64,
}

impl<W: Write> BinaryRows<W> {
    pub fn new(out: W, fields: &'static [Field]) -> BinaryRows<W> {
        let mut tuples = Vec::with_capacity(BATCH_BYTES + 4096);
        tuples.extend_from_slice(HEADER);
        BinaryRows {
            out,
            fields,
            partial: Vec::new(),
            tuples,
            rows: 0,
        }
    }

    /// Converts a last line without its `\n`, writes the trailer, and
    /// returns the rows written.
    pub fn finish(mut self) -> io::Result<u64> {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.row(&line)?;
        }
        self.tuples.extend_from_slice(&TRAILER);
        self.out.write_all(&self.tuples)?;
        self.out.flush()?;
        Ok(self.rows)
    }

    /// Appends the tuple of one TSV line.
    fn row(&mut self, line: &[u8]) -> io::Result<()> {
        self.rows += 1;
        let count = self.fields.len() as i16;
        self.tuples.extend_from_slice(&count.to_be_bytes());
        let mut texts = line.split(|&b| b == b'\t');
        for &field in self.fields {
            let Some(text) = texts.next() else {
                return Err(self.bad(line, "too few fields"));
            };
            if text == b"\\N" {
                self.tuples.extend_from_slice(&NULL);
                continue;
            }
            let ok = match field {
                Field::Int2 => int(text)
                    .and_then(|v| i16::try_from(v).ok())
                    .map(|v| self.value(&v.to_be_bytes())),
                Field::Int4 => int(text)
                    .and_then(|v| i32::try_from(v).ok())
                    .map(|v| self.value(&v.to_be_bytes())),
                Field::Int8 => int(text).map(|v| self.value(&v.to_be_bytes())),
                Field::Timestamp => micros(text).map(|v| self.value(&v.to_be_bytes())),
                Field::Text => {
                    let at = self.tuples.len();
                    self.tuples.extend_from_slice(&[0; 4]);
                    unescape_into(&mut self.tuples, text);
                    let len = (self.tuples.len() - at - 4) as i32;
                    self.tuples[at..at + 4].copy_from_slice(&len.to_be_bytes());
                    Some(())
                }
            };
            if ok.is_none() {
                let what = format!("{field:?} field {:?}", String::from_utf8_lossy(text));
                return Err(self.bad(line, &what));
            }
        }
        if texts.next().is_some() {
            return Err(self.bad(line, "too many fields"));
        }
        Ok(())
    }

    /// Appends a fixed-size value with its length.
    fn value(&mut self, bytes: &[u8]) {
        self.tuples
            .extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        self.tuples.extend_from_slice(bytes);
    }

    fn bad(&self, line: &[u8], what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "row {} of the rows sent is not a row of this table ({what}): {:?}",
                self.rows,
                String::from_utf8_lossy(line)
            ),
        )
    }
}

impl<W: Write> Write for BinaryRows<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(end) = memchr(b'\n', rest) {
            if self.partial.is_empty() {
                self.row(&rest[..end])?;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&rest[..end]);
                self.row(&line)?;
                line.clear();
                self.partial = line;
            }
            rest = &rest[end + 1..];
            if self.tuples.len() >= BATCH_BYTES {
                self.out.write_all(&self.tuples)?;
                self.tuples.clear();
            }
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Tuples are written on in batches and by `finish`; a flush in
        // between has nothing whole to pass on.
        Ok(())
    }
}

/// A decimal integer (digits, perhaps after a `-`).
fn int(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((b - b'0') as i64)?;
    }
    Some(if negative { -v } else { v })
}

/// `YYYY-MM-DD HH:MM:SS` as microseconds since 2000-01-01 00:00:00.
fn micros(text: &[u8]) -> Option<i64> {
    let &[y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1, b' ', h0, h1, b':', i0, i1, b':', s0, s1] =
        text
    else {
        return None;
    };
    let n = |digits: &[u8]| -> Option<i64> {
        digits.iter().try_fold(0i64, |v, &b| {
            b.is_ascii_digit().then(|| v * 10 + (b - b'0') as i64)
        })
    };
    let (y, m, d) = (n(&[y0, y1, y2, y3])?, n(&[m0, m1])?, n(&[d0, d1])?);
    let (h, i, s) = (n(&[h0, h1])?, n(&[i0, i1])?, n(&[s0, s1])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || i > 59 || s > 59 {
        return None;
    }
    let days = days_from_civil(y, m, d) - EPOCH_DAYS;
    Some((days * DAY_SECONDS + h * 3600 + i * 60 + s) * 1_000_000)
}

/// Appends `text` with the escapes of [`crate::rows::escape_into`]
/// undone (a backslash before any other byte stands for that byte, as in
/// both `LOAD DATA` and COPY's text format).
fn unescape_into(out: &mut Vec<u8>, text: &[u8]) {
    let mut rest = text;
    while let Some(at) = memchr(b'\\', rest) {
        out.extend_from_slice(&rest[..at]);
        match rest.get(at + 1) {
            Some(&b) => {
                out.push(match b {
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b'0' => 0,
                    other => other,
                });
                rest = &rest[at + 2..];
            }
            None => {
                out.push(b'\\');
                rest = &[];
            }
        }
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::escape_into;

    const EVENTS: &[Field] = &[Field::Int8, Field::Timestamp, Field::Int4, Field::Int8];

    fn convert(fields: &'static [Field], pieces: &[&[u8]]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut rows = BinaryRows::new(&mut out, fields);
        for piece in pieces {
            rows.write_all(piece)?;
        }
        rows.finish()?;
        Ok(out)
    }

    #[test]
    fn rows_become_tuples_between_header_and_trailer() {
        let out = convert(EVENTS, &[b"7\t2000-01-02 00:00:01\t3\t9\n"]).unwrap();
        let mut want = HEADER.to_vec();
        want.extend_from_slice(&4i16.to_be_bytes());
        want.extend_from_slice(&8i32.to_be_bytes());
        want.extend_from_slice(&7i64.to_be_bytes());
        want.extend_from_slice(&8i32.to_be_bytes());
        want.extend_from_slice(&(86_401i64 * 1_000_000).to_be_bytes());
        want.extend_from_slice(&4i32.to_be_bytes());
        want.extend_from_slice(&3i32.to_be_bytes());
        want.extend_from_slice(&8i32.to_be_bytes());
        want.extend_from_slice(&9i64.to_be_bytes());
        want.extend_from_slice(&TRAILER);
        assert_eq!(out, want);
    }

    #[test]
    fn lines_split_anywhere_give_the_same_bytes() {
        let text = b"1\t2014-03-04 05:06:07\t2\t3\n4\t1970-01-01 00:00:00\t5\t6\n";
        let whole = convert(EVENTS, &[text]).unwrap();
        for cut in 0..text.len() {
            let (a, b) = text.split_at(cut);
            assert_eq!(convert(EVENTS, &[a, b]).unwrap(), whole, "cut at {cut}");
        }
        // A last line without its newline is a row too.
        assert_eq!(convert(EVENTS, &[&text[..text.len() - 1]]).unwrap(), whole);
    }

    #[test]
    fn times_count_from_2000_in_microseconds() {
        assert_eq!(micros(b"2000-01-01 00:00:00"), Some(0));
        assert_eq!(
            micros(b"1970-01-01 00:00:00"),
            Some(-EPOCH_DAYS * DAY_SECONDS * 1_000_000)
        );
        assert_eq!(
            micros(b"2016-02-29 23:59:59"),
            Some(((days_from_civil(2016, 2, 29) - EPOCH_DAYS) * DAY_SECONDS + 86_399) * 1_000_000)
        );
        for bad in [
            &b"2016-02-29 23:59"[..],
            b"2016-13-01 00:00:00",
            b"2016-01-01T00:00:00",
            b"x",
        ] {
            assert_eq!(micros(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn texts_are_unescaped_and_nulls_have_no_bytes() {
        const USERS: &[Field] = &[Field::Int8, Field::Text, Field::Int8];
        let name = "a\\b\tc\nd\re ü";
        let mut line = b"5\t".to_vec();
        escape_into(&mut line, name.as_bytes());
        line.extend_from_slice(b"\t\\N\n");
        let out = convert(USERS, &[&line]).unwrap();
        let body = &out[HEADER.len()..out.len() - TRAILER.len()];
        let mut want = 3i16.to_be_bytes().to_vec();
        want.extend_from_slice(&8i32.to_be_bytes());
        want.extend_from_slice(&5i64.to_be_bytes());
        want.extend_from_slice(&(name.len() as i32).to_be_bytes());
        want.extend_from_slice(name.as_bytes());
        want.extend_from_slice(&NULL);
        assert_eq!(body, want);
    }

    #[test]
    fn a_line_that_is_no_row_is_an_error_naming_it() {
        for (line, why) in [
            (&b"1\t2014-03-04 05:06:07\t2\n"[..], "too few fields"),
            (b"1\t2014-03-04 05:06:07\t2\t3\t4\n", "too many fields"),
            (b"1\t2014-03-04\t2\t3\n", "Timestamp field \"2014-03-04\""),
            (b"x\t2014-03-04 05:06:07\t2\t3\n", "Int8 field \"x\""),
            (b"1\t2014-03-04 05:06:07\t4294967296\t3\n", "Int4 field"),
        ] {
            let err = convert(EVENTS, &[line]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            let text = err.to_string();
            assert!(text.starts_with("row 1 of the rows sent"), "{text}");
            assert!(text.contains(why), "{text}");
        }
    }
}
