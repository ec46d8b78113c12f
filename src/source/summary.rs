//! What KM's `index.csv` and `status.csv` say about an export, in a line.

use crate::dates::Day;

/// Summary line of index.csv/status.csv for the user, e.g. `KM says: 275 revisions
/// exported; index lists 136 files (revisions 140..275) covering 2012-10-25 .. 2013-03-10
/// (KM receive times)`. Tolerant of unknown or missing columns; None if nothing readable.
pub fn describe_export(index_csv: Option<&str>, status_csv: Option<&str>) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(s) = status_csv.and_then(describe_status) {
        parts.push(s);
    }
    if let Some(s) = index_csv.and_then(describe_index) {
        parts.push(s);
    }
    if parts.is_empty() {
        None
    } else {
        Some(format!("KM says: {}", parts.join("; ")))
    }
}

fn describe_status(csv: &str) -> Option<String> {
    let (header, rows) = parse_csv(csv)?;
    let row = rows.last()?;
    let get = |name: &str| -> Option<u64> {
        let i = header.iter().position(|h| h == name)?;
        row.get(i)?.trim().parse().ok()
    };
    let exported = get("exported_revisions");
    let total = get("total_revisions");
    let mut s = match (exported, total) {
        (Some(e), Some(t)) if e == t => format!("{e} revisions exported"),
        (Some(e), Some(t)) => format!("{e} of {t} revisions exported"),
        (Some(e), None) => format!("{e} revisions exported"),
        (None, Some(t)) => format!("{t} revisions in total"),
        (None, None) => return None,
    };
    let latest = get("max_exported_revision_timestamp")
        .map(unix_date)
        .or_else(|| {
            let i = header
                .iter()
                .position(|h| h == "max_exported_revision_utc_date")?;
            row.get(i)
                .map(|d| d.trim().chars().take(10).collect::<String>())
                .filter(|d| !d.is_empty())
        });
    if let Some(d) = latest {
        s.push_str(&format!(" (latest {d})"));
    }
    Some(s)
}

fn describe_index(csv: &str) -> Option<String> {
    let (header, rows) = parse_csv(csv)?;
    let col = |name: &str| header.iter().position(|h| h == name);
    let (file_c, min_c, max_c) = (col("filename"), col("min_timestamp"), col("max_timestamp"));
    let (min_d, max_d) = (col("min_utc_date"), col("max_utc_date"));
    let field = |row: &Vec<String>, c: Option<usize>| {
        c.and_then(|i| row.get(i)).map(|s| s.trim().to_string())
    };
    let mut revs: Option<(u64, u64)> = None;
    let mut times: Option<(u64, u64)> = None;
    let mut dates: Option<(String, String)> = None;
    for row in &rows {
        let rev = field(row, file_c).and_then(|f| {
            let name = f.rsplit('/').next()?;
            let digits = name.split('.').next()?;
            digits.parse::<u64>().ok()
        });
        if let Some(n) = rev {
            revs = Some(revs.map_or((n, n), |(a, b)| (a.min(n), b.max(n))));
        }
        let lo = field(row, min_c).and_then(|s| s.parse::<u64>().ok());
        let hi = field(row, max_c).and_then(|s| s.parse::<u64>().ok());
        if let (Some(lo), Some(hi)) = (lo, hi) {
            times = Some(times.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
        }
        let dlo = field(row, min_d).map(|s| s.chars().take(10).collect::<String>());
        let dhi = field(row, max_d).map(|s| s.chars().take(10).collect::<String>());
        if let (Some(dlo), Some(dhi)) = (dlo, dhi) {
            if !dlo.is_empty() && !dhi.is_empty() {
                dates = Some(match dates {
                    None => (dlo, dhi),
                    Some((a, b)) => (a.min(dlo), b.max(dhi)),
                });
            }
        }
    }
    let span = times.map(|(a, b)| (unix_date(a), unix_date(b))).or(dates);
    if rows.is_empty() || (revs.is_none() && span.is_none()) {
        return None;
    }
    let mut s = format!(
        "index lists {} file{}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    if let Some((a, b)) = revs {
        s.push_str(&format!(" (revisions {a}..{b})"));
    }
    if let Some((a, b)) = span {
        s.push_str(&format!(" covering {a} .. {b} (KM receive times)"));
    }
    Some(s)
}

/// The first and last time `index.csv` gives its files (unix seconds, from
/// `min_timestamp` / `max_timestamp`, else the days of `min_utc_date` /
/// `max_utc_date`); `None` when it gives none.
pub fn index_times(index_csv: &str) -> Option<(i64, i64)> {
    let (header, rows) = parse_csv(index_csv)?;
    let col = |name: &str| header.iter().position(|h| h == name);
    let field = |row: &[String], c: Option<usize>| -> Option<String> {
        c.and_then(|i| row.get(i)).map(|s| s.trim().to_owned())
    };
    let seconds = |row: &[String], secs: &str, date: &str| -> Option<i64> {
        field(row, col(secs))
            .and_then(|s| s.parse::<i64>().ok())
            .or_else(|| {
                let d = field(row, col(date))?;
                Some(Day::parse(d.get(..10)?).ok()?.seconds())
            })
    };
    let mut range: Option<(i64, i64)> = None;
    for row in &rows {
        let lo = seconds(row, "min_timestamp", "min_utc_date");
        let hi = seconds(row, "max_timestamp", "max_utc_date");
        if let (Some(lo), Some(hi)) = (lo, hi) {
            range = Some(range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
        }
    }
    range
}

/// Header (trimmed, lower-cased) and non-empty data rows. Handles double-quoted fields.
fn parse_csv(text: &str) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let mut lines = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty());
    let header: Vec<String> = split_csv_line(lines.next()?)
        .into_iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let rows = lines.map(split_csv_line).collect();
    Some((header, rows))
}

fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// `YYYY-MM-DD` (UTC) of a Unix timestamp in seconds.
fn unix_date(secs: u64) -> String {
    Day::of(secs.min(i64::MAX as u64) as i64).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(unix_date(0), "1970-01-01");
        assert_eq!(unix_date(1351187402), "2012-10-25");
        assert_eq!(unix_date(1362921003), "2013-03-10");
        assert_eq!(unix_date(951_782_400), "2000-02-29");
    }

    #[test]
    fn describes_km_csvs() {
        let index = "filename,min_timestamp,max_timestamp,min_utc_date,max_utc_date\n\
            revisions/140.json,1351187402,1351188301,2012-10-25 17:50 GMT,2012-10-25 18:05 GMT\n\
            revisions/275.json,1362921002,1362921003,2013-03-10 13:10 GMT,2013-03-10 13:10 GMT\n";
        let status = "total_revisions,exported_revisions,max_exported_revision_timestamp,max_exported_revision_utc_date\n\
            275,275,1362921003,2013-03-10 13:10 GMT\n";
        assert_eq!(
            describe_export(Some(index), Some(status)).unwrap(),
            "KM says: 275 revisions exported (latest 2013-03-10); index lists 2 files (revisions 140..275) \
             covering 2012-10-25 .. 2013-03-10 (KM receive times)"
        );
        assert_eq!(
            describe_export(
                None,
                Some("exported_revisions,total_revisions,extra\r\n3,5,x\r\n")
            )
            .unwrap(),
            "KM says: 3 of 5 revisions exported"
        );
        // Dates only, unknown columns, quoted fields.
        let odd = "\"filename\",other,min_utc_date,max_utc_date\n\"revisions/1.json.gz\",\"a,b\",2014-01-03 00:00 GMT,2014-01-04 GMT\n";
        assert_eq!(
            describe_export(Some(odd), None).unwrap(),
            "KM says: index lists 1 file (revisions 1..1) covering 2014-01-03 .. 2014-01-04 (KM receive times)"
        );
        assert_eq!(index_times(index), Some((1351187402, 1362921003)));
        assert_eq!(index_times(odd), Some((1388707200, 1388793600)));
        assert_eq!(
            index_times("filename,min_timestamp\nrevisions/1.json,,\n"),
            None
        );
        assert_eq!(describe_export(None, None), None);
        assert_eq!(describe_export(Some(""), Some("garbage\n")), None);
        assert_eq!(describe_export(Some("a,b\n1,2\n"), Some("x\ny\n")), None);
    }
}
