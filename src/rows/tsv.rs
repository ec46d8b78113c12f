//! How a row looks in a batch file: tab-separated, in the escaping of
//! MySQL's default `LOAD DATA` rules, which PostgreSQL's `COPY` text format
//! reads the same way (`\\N` is NULL).

/// Appends `s` escaped for `LOAD DATA ... FIELDS ESCAPED BY '\\'`.
pub fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            0 => b"\\0",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

/// The first two columns of every table, `id` and `t`, and their tabs.
pub(super) fn id_and_time(out: &mut Vec<u8>, id: u64, ts: &[u8; 19]) {
    int(out, id);
    out.push(b'\t');
    out.extend_from_slice(ts);
    out.push(b'\t');
}

// Bounds of a row's line: escaping at most doubles a text, hence the
// `2 * len` terms next to these.
/// Digits of the longest `u64`.
pub(super) const INT_DIGITS: usize = 20;
/// Bytes of a datetime column.
pub(super) const TIME_BYTES: usize = 19;

/// Appends `n` in decimal (faster than `write!` on this hot path).
pub(super) fn int(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends a `users` row: the canonical row has no `alias_of` (`\N`).
pub fn user_line(out: &mut Vec<u8>, id: u64, name: &str, alias_of: Option<u64>) {
    int(out, id);
    out.push(b'\t');
    escape_into(out, name.as_bytes());
    match alias_of {
        Some(canonical) => {
            out.push(b'\t');
            int(out, canonical);
            out.push(b'\n');
        }
        None => out.extend_from_slice(b"\t\\N\n"),
    }
}

/// Appends a `keys` row.
pub fn key_line(out: &mut Vec<u8>, id: u32, string: &str) {
    int(out, id as u64);
    out.push(b'\t');
    escape_into(out, string.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_mysql_specials() {
        let mut out = Vec::new();
        escape_into(&mut out, "a\tb\nc\rd\\e\0f\\N".as_bytes());
        assert_eq!(out, b"a\\tb\\nc\\rd\\\\e\\0f\\\\N");
    }

    #[test]
    fn users_and_keys_rows() {
        let mut out = Vec::new();
        user_line(&mut out, 7, "a\tb", None);
        user_line(&mut out, 8, "c", Some(7));
        key_line(&mut out, 3, "x\\y");
        assert_eq!(out, b"7\ta\\tb\t\\N\n8\tc\t7\n3\tx\\\\y\n");
    }
}
