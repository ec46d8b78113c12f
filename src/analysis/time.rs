//! Dates and durations of the analysis commands (SPEC §9): `--from` / `--to`
//! (UTC), `--within` and a funnel's `window`. Times are seconds since
//! 1970-01-01 00:00:00 UTC, as `events.t` holds them.

use anyhow::{bail, Result};

use crate::dates::{datetime, days_from_civil};
pub use crate::db::read::{END_T, MIN_T};

/// Parses `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS` (a `T` may stand for the
/// space), UTC, between 1970-01-01 and 9999-12-31 23:59:59.
pub fn parse_datetime(s: &str) -> Result<i64> {
    let bad = || {
        anyhow::anyhow!(
            "{s:?} is not a date: expected YYYY-MM-DD or YYYY-MM-DD HH:MM:SS (UTC), \
             from 1970-01-01 to 9999-12-31"
        )
    };
    let text = s.trim();
    let (date, time) = match text.len() {
        10 => (text, None),
        19 if matches!(text.as_bytes()[10], b' ' | b'T') => (&text[..10], Some(&text[11..])),
        _ => return Err(bad()),
    };
    let fields = |part: &str, sep: char, widths: &[usize]| -> Option<Vec<i64>> {
        let pieces: Vec<&str> = part.split(sep).collect();
        if pieces.len() != widths.len() {
            return None;
        }
        pieces
            .iter()
            .zip(widths)
            .map(|(p, &w)| {
                (p.len() == w && p.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| p.parse().ok())
                    .flatten()
            })
            .collect()
    };
    let d = fields(date, '-', &[4, 2, 2]).ok_or_else(bad)?;
    let (y, m, day) = (d[0], d[1], d[2]);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || day < 1 || day > month_days(y, m) {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, m, day) * 86_400;
    if let Some(time) = time {
        let t = fields(time, ':', &[2, 2, 2]).ok_or_else(bad)?;
        if t[0] > 23 || t[1] > 59 || t[2] > 59 {
            return Err(bad());
        }
        secs += t[0] * 3600 + t[1] * 60 + t[2];
    }
    Ok(secs)
}

/// Parses a duration: `N` (seconds), `Ns`, `Nm`, `Nh` or `Nd`.
pub fn parse_duration(s: &str) -> Result<i64> {
    let text = s.trim();
    let (digits, unit) = match text.as_bytes().last() {
        Some(b's') => (&text[..text.len() - 1], 1),
        Some(b'm') => (&text[..text.len() - 1], 60),
        Some(b'h') => (&text[..text.len() - 1], 3600),
        Some(b'd') => (&text[..text.len() - 1], 86_400),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        bail!(
            "{s:?} is not a duration: expected a whole number of seconds, or one followed \
             by s, m, h or d (e.g. 90s, 30m, 12h, 7d)"
        );
    }
    match digits.parse::<i64>().ok().and_then(|n| n.checked_mul(unit)) {
        Some(secs) if secs <= END_T => Ok(secs),
        _ => bail!("duration {s:?} is too long (more than 10,000 years)"),
    }
}

/// `YYYY-MM-DD HH:MM:SS` of a time (`MIN_T <= t < END_T`).
pub fn format_datetime(t: i64) -> String {
    String::from_utf8_lossy(&datetime(t)).into_owned()
}

/// A duration as the shortest of `Nd`, `Nh`, `Nm`, `Ns` that says it exactly.
pub fn format_duration(secs: i64) -> String {
    for (unit, name) in [(86_400, "d"), (3600, "h"), (60, "m")] {
        if secs != 0 && secs % unit == 0 {
            return format!("{}{name}", secs / unit);
        }
    }
    format!("{secs}s")
}

fn month_days(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_with_and_without_time() {
        assert_eq!(parse_datetime("1970-01-01").unwrap(), 0);
        assert_eq!(parse_datetime("2015-01-01").unwrap(), 1_420_070_400);
        assert_eq!(
            parse_datetime("2015-01-01 10:20:30").unwrap(),
            1_420_070_400 + 37_230
        );
        assert_eq!(
            parse_datetime("2015-01-01T10:20:30").unwrap(),
            1_420_070_400 + 37_230
        );
        assert_eq!(parse_datetime("2016-02-29").unwrap(), 1_456_704_000);
        assert_eq!(parse_datetime("9999-12-31 23:59:59").unwrap(), END_T - 1);
    }

    #[test]
    fn bad_dates_are_named() {
        for bad in [
            "",
            "2015-1-01",
            "2015-13-01",
            "2015-02-29",
            "2015-04-31",
            "1969-12-31",
            "2015-01-01 24:00:00",
            "2015-01-01 10:60:00",
            "2015-01-01 10:00",
            "2015/01/01",
            "yesterday",
            "+015-01-01",
        ] {
            let err = parse_datetime(bad).unwrap_err().to_string();
            assert!(
                err.contains("expected YYYY-MM-DD or YYYY-MM-DD HH:MM:SS (UTC)"),
                "{bad}: {err}"
            );
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert_eq!(parse_duration("45").unwrap(), 45);
        assert_eq!(parse_duration("45s").unwrap(), 45);
        assert_eq!(parse_duration("30m").unwrap(), 1800);
        assert_eq!(parse_duration("12h").unwrap(), 43_200);
        assert_eq!(parse_duration("7d").unwrap(), 604_800);
        for bad in ["", "d", "7w", "-1d", "1.5h", "7 d", "h7", "1e3"] {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(err.contains("is not a duration"), "{bad}: {err}");
        }
        assert!(parse_duration("99999999999999999999d")
            .unwrap_err()
            .to_string()
            .contains("too long"));
        assert!(parse_duration("9999999999999d")
            .unwrap_err()
            .to_string()
            .contains("too long"));
    }

    #[test]
    fn formatting_round_trips() {
        for s in [
            "1970-01-01 00:00:00",
            "2015-06-30 23:59:59",
            "9999-12-31 23:59:59",
        ] {
            assert_eq!(format_datetime(parse_datetime(s).unwrap()), s);
        }
        assert_eq!(format_duration(604_800), "7d");
        assert_eq!(format_duration(7200), "2h");
        assert_eq!(format_duration(90), "90s");
        assert_eq!(format_duration(0), "0s");
    }
}
