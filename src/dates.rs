//! Calendar arithmetic in UTC: days and `YYYY-MM-DD HH:MM:SS` texts from
//! unix seconds and back. Pure; the one place the civil-date algorithms live.

use anyhow::{bail, Context, Result};

/// Seconds per day.
pub const DAY_SECONDS: i64 = 86_400;

/// A calendar day, as days since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

impl Day {
    /// Parses `YYYY-MM-DD`, a day from 1970-01-01 (where unix time, and so
    /// KM's, starts) to 9999-12-31 (the last the databases store).
    pub fn parse(s: &str) -> Result<Day> {
        let text = s.trim();
        let parts: Vec<&str> = text.split('-').collect();
        let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
        if parts.len() != 3 || !digits(parts[0], 4) || !digits(parts[1], 2) || !digits(parts[2], 2)
        {
            bail!("{s:?} is not a date of the form YYYY-MM-DD");
        }
        let num = |p: &str| p.parse::<i64>().context("digits checked above");
        let (y, m, d) = (num(parts[0])?, num(parts[1])?, num(parts[2])?);
        let day = Day(days_from_civil(y, m, d));
        if !(1..=12).contains(&m) || day.to_string() != text {
            bail!("{text} is not a day of the calendar");
        }
        if y < 1970 {
            bail!("{text} is before 1970-01-01, where unix time (and so KM's timestamps) starts");
        }
        Ok(day)
    }

    /// The day holding unix second `secs`.
    pub fn of(secs: i64) -> Day {
        Day(secs.div_euclid(DAY_SECONDS))
    }

    /// Unix seconds at the start of the day.
    pub fn seconds(self) -> i64 {
        self.0 * DAY_SECONDS
    }

    /// `YYYY-MM-DD 00:00:00`, the text the databases compare against.
    pub fn midnight(self) -> [u8; 19] {
        datetime(self.seconds())
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ts = self.midnight();
        f.write_str(std::str::from_utf8(&ts[..10]).expect("ascii"))
    }
}

/// Unix seconds (0..=9999-12-31) as `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn datetime(secs: i64) -> [u8; 19] {
    let days = secs.div_euclid(DAY_SECONDS);
    let rem = secs.rem_euclid(DAY_SECONDS);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
    let mut out = *b"0000-00-00 00:00:00";
    let mut put = |at: usize, v: i64, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, y, 4);
    put(5, m, 2);
    put(8, d, 2);
    put(11, hh, 2);
    put(14, mm, 2);
    put(17, ss, 2);
    out
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01, the inverse of
/// [`civil_from_days`].
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        for s in ["1970-01-01", "2014-01-01", "2016-02-29", "9999-12-31"] {
            assert_eq!(Day::parse(s).unwrap().to_string(), s);
        }
        for (bad, says) in [
            ("2014-13-01", "not a day of the calendar"),
            ("2015-02-29", "not a day of the calendar"),
            ("14-01-01", "not a date of the form YYYY-MM-DD"),
            ("2014/01/01", "not a date of the form YYYY-MM-DD"),
            ("2014-1-01", "not a date of the form YYYY-MM-DD"),
            ("+014-01-01", "not a date of the form YYYY-MM-DD"),
            ("1969-12-31", "before 1970-01-01"),
            ("0001-01-01", "before 1970-01-01"),
        ] {
            let err = Day::parse(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn datetimes() {
        assert_eq!(&datetime(0), b"1970-01-01 00:00:00");
        assert_eq!(&datetime(253_402_300_799), b"9999-12-31 23:59:59");
        assert_eq!(&datetime(951_782_400), b"2000-02-29 00:00:00");
        assert_eq!(Day::of(1_351_187_402).to_string(), "2012-10-25");
        assert_eq!(Day::of(-1).0, -1);
        for z in [-800_000, -1, 0, 1, 16_436, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
