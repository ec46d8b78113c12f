//! Time partitions of `events`, `properties` and `aliases`: the plan of
//! `kmdb partition`, and the map from a row's `t` to its partition. Pure.

use anyhow::{bail, Result};

pub use crate::dates::Day;

/// Partitions per table MySQL 8 and MariaDB 10.11 allow.
pub const MAX_PARTITIONS: usize = 8192;

/// Name of the catch-all partition holding everything past the plan.
pub const LAST: &str = "pLast";

/// Name of the partition holding rows before `bound`: `pYYYYMMDD`.
pub fn name_for(bound: Day) -> String {
    format!("p{}", bound.to_string().replace('-', ""))
}

/// The last day the databases store (`DATETIME` and `timestamp` end there).
pub const LAST_DAY: Day = Day(2_932_896);

/// Upper bounds of the planned partitions: the first holds everything before
/// `min + days`, the last planned one ends on or after `max`; `pLast` follows.
pub fn plan(min: Day, max: Day, days: u32) -> Result<Vec<Day>> {
    if days == 0 {
        bail!("--days-per-partition must be at least 1");
    }
    if max <= min {
        bail!("--max-date ({max}) must be after --min-date ({min})");
    }
    let span = max.0 - min.0;
    if i64::from(days) > span {
        bail!(
            "--days-per-partition {days} is longer than {min} .. {max} ({span} days): its one \
             partition would end on {}, past --max-date; use at most {span}",
            Day(min.0 + i64::from(days))
        );
    }
    let count = (span as usize).div_ceil(days as usize);
    if count + 1 > MAX_PARTITIONS {
        bail!(
            "{min} .. {max} in {days}-day partitions needs {} partitions per table; \
             the server allows at most {MAX_PARTITIONS}: use a larger --days-per-partition",
            count + 1
        );
    }
    let last = Day(min.0 + count as i64 * i64::from(days));
    if last > LAST_DAY {
        bail!(
            "the last partition would end on day {} after 9999-12-31, the last day the database \
             stores: use an earlier --max-date or fewer --days-per-partition",
            last.0 - LAST_DAY.0
        );
    }
    Ok((1..=count as i64)
        .map(|i| Day(min.0 + i * i64::from(days)))
        .collect())
}

/// How the partitions of a table stand against a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fit {
    /// The table has the planned partitions (and maybe more of the same
    /// plan past them): nothing to do.
    Same,
    /// The table's partitions are the plan's first ones: `adding` follow.
    Extends { adding: Vec<Day> },
    /// The table is partitioned otherwise; `adding` are the planned bounds
    /// past its last one (later days can still follow the new plan).
    Differs { adding: Vec<Day> },
}

/// How a table with the partition bounds `existing` stands against the
/// `planned` ones.
pub fn fit(existing: &[Day], planned: &[Day]) -> Fit {
    if existing.starts_with(planned) {
        Fit::Same
    } else if planned.starts_with(existing) {
        Fit::Extends {
            adding: planned[existing.len()..].to_vec(),
        }
    } else {
        let last = existing.last().copied().unwrap_or(Day(i64::MIN));
        Fit::Differs {
            adding: planned.iter().copied().filter(|&b| b > last).collect(),
        }
    }
}

/// A table's partitions in words, from their bounds: `no partitions but
/// pLast`, or `27 partitions of 28 days with bounds 2013-12-29 .. 2016-01-31,
/// then pLast`.
pub fn describe(bounds: &[Day]) -> String {
    let (Some(first), Some(last)) = (bounds.first(), bounds.last()) else {
        return format!("no partitions but {LAST}");
    };
    if bounds.len() == 1 {
        return format!("1 partition, of the rows before {first}, then {LAST}");
    }
    let steps: Vec<i64> = bounds.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let (lo, hi) = (
        steps.iter().min().copied().unwrap_or(0),
        steps.iter().max().copied().unwrap_or(0),
    );
    let size = if lo == hi {
        format!("of {lo} day(s)")
    } else {
        format!("of {lo} to {hi} days")
    };
    format!(
        "{} partitions {size} with bounds {first} .. {last}, then {LAST}",
        bounds.len()
    )
}

/// The range a plan covers for rows timed `min_t ..= max_t` (unix seconds,
/// as the export says): from the first one's day to the day after the last.
pub fn range_of(min_t: i64, max_t: i64) -> (Day, Day) {
    let min = Day::of(min_t.max(0));
    let max = Day::of(max_t.max(min_t).max(0)).0 + 1;
    (min, Day(max.min(LAST_DAY.0)))
}

/// The range a plan covers for rows counted per day (`days`: days since
/// 1970-01-01 → rows): from the first busy day to the day after the last,
/// leaving out the stray days at either end that hold together at most
/// 1/2000 of the rows (a clock set to 1970 or 2038 should not stretch the
/// plan over decades: such rows land in the first partition or `pLast`).
pub fn busy_range(days: &std::collections::BTreeMap<i64, u64>) -> Option<(Day, Day)> {
    let total: u64 = days.values().sum();
    let stray = total / 2000;
    let first = |it: &mut dyn Iterator<Item = (&i64, &u64)>| {
        let mut skipped = 0;
        for (&day, &n) in it {
            skipped += n;
            if skipped > stray {
                return Some(day);
            }
        }
        None
    };
    let lo = first(&mut days.iter())?;
    let hi = first(&mut days.iter().rev())?;
    Some((
        Day(lo.max(0)),
        Day((hi + 1).clamp(lo.max(0) + 1, LAST_DAY.0)),
    ))
}

/// The partitions of one table, in order, with their upper bounds.
#[derive(Clone, Debug)]
pub struct PartitionMap {
    names: Vec<String>,
    /// Upper bound of each partition; `None` for MAXVALUE.
    bounds: Vec<Option<[u8; 19]>>,
    /// The bounds as [`order_key`]s, for [`PartitionMap::locate`].
    keys: Vec<Option<(u128, u32)>>,
}

/// A `YYYY-MM-DD HH:MM:SS` text as a pair of numbers that order like the
/// text: two integer comparisons instead of a `memcmp` call.
fn order_key(t: &[u8; 19]) -> (u128, u32) {
    let (head, tail) = t.split_at(16);
    let head = u128::from_be_bytes(head.try_into().unwrap_or_default());
    (head, u32::from_be_bytes([0, tail[0], tail[1], tail[2]]))
}

impl PartitionMap {
    /// A table without partitions: one unnamed slot.
    pub fn unpartitioned() -> PartitionMap {
        PartitionMap {
            names: vec![String::new()],
            bounds: vec![None],
            keys: vec![None],
        }
    }

    /// From `(PARTITION_NAME, PARTITION_DESCRIPTION)` rows in ordinal order,
    /// e.g. `("p20140108", "'2014-01-08 00:00:00'")` or `("pLast", "MAXVALUE")`.
    pub fn from_descriptions(rows: &[(String, String)]) -> Result<PartitionMap> {
        if rows.is_empty() {
            return Ok(PartitionMap::unpartitioned());
        }
        let mut map = PartitionMap {
            names: Vec::new(),
            bounds: Vec::new(),
            keys: Vec::new(),
        };
        for (name, desc) in rows {
            let desc = desc.trim().trim_matches('\'');
            let bound = if desc.eq_ignore_ascii_case("MAXVALUE") {
                None
            } else {
                let mut b = *b"0000-00-00 00:00:00";
                match desc.len() {
                    19 => b.copy_from_slice(desc.as_bytes()),
                    10 => b[..10].copy_from_slice(desc.as_bytes()),
                    _ => bail!("partition {name} has a bound kmdb cannot read: {desc}"),
                }
                Some(b)
            };
            map.names.push(name.clone());
            map.bounds.push(bound);
            map.keys.push(bound.as_ref().map(order_key));
        }
        Ok(map)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Partition name (empty for an unpartitioned table).
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// The days of the bounded partitions, in order (kmdb's bounds are
    /// midnights; a bound with a time of day counts as its day).
    pub fn day_bounds(&self) -> Vec<Day> {
        self.bounds
            .iter()
            .flatten()
            .filter_map(|b| Day::parse(std::str::from_utf8(&b[..10]).ok()?).ok())
            .collect()
    }

    /// Whether the table has a partition for every time, and more than
    /// one (a table whose rows all go to `pLast` has not).
    pub fn is_planned(&self) -> bool {
        self.names.len() > 1
    }

    /// The last bounded partition's bound, if any.
    pub fn last_bound(&self) -> Option<Day> {
        self.bounds
            .iter()
            .rev()
            .flatten()
            .next()
            .and_then(|b| Day::parse(std::str::from_utf8(&b[..10]).ok()?).ok())
    }

    /// What pruning the rows before `day` does to this table: the
    /// partitions that end on or before `day` (dropped whole; never the
    /// last one), and the partition holding `day`, whose rows before it are
    /// deleted (`""` for an unpartitioned table).
    pub fn split_before(&self, day: Day) -> (Vec<String>, String) {
        let midnight = day.midnight();
        let last = self.names.len() - 1;
        let whole: Vec<String> = (0..last)
            .filter(|&i| matches!(self.bounds[i], Some(b) if b <= midnight))
            .map(|i| self.names[i].clone())
            .collect();
        (whole, self.names[self.locate(&midnight)].clone())
    }

    /// Index of the partition a row with time `t` belongs to; rows past the
    /// last bound go to the last partition.
    pub fn locate(&self, t: &[u8; 19]) -> usize {
        let t = order_key(t);
        let i = self
            .keys
            .partition_point(|b| matches!(b, Some(b) if *b <= t));
        i.min(self.names.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_covers_range() {
        let p = plan(
            Day::parse("2014-01-01").unwrap(),
            Day::parse("2014-01-20").unwrap(),
            7,
        )
        .unwrap();
        let names: Vec<String> = p.iter().map(|&d| name_for(d)).collect();
        assert_eq!(names, ["p20140108", "p20140115", "p20140122"]);
    }

    #[test]
    fn plan_refuses_too_many_partitions() {
        let err = plan(
            Day::parse("1970-01-01").unwrap(),
            Day::parse("2000-01-01").unwrap(),
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("at most 8192"), "{err}");
    }

    #[test]
    fn plan_refuses_what_it_cannot_keep() {
        let d = |s| Day::parse(s).unwrap();
        let err = plan(d("2013-12-01"), d("2016-02-01"), 10_000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("longer than 2013-12-01 .. 2016-02-01 (792 days)"),
            "{err}"
        );
        assert!(err.contains("use at most 792"), "{err}");
        assert_eq!(
            plan(d("2013-12-01"), d("2016-02-01"), 792).unwrap(),
            [d("2016-02-01")]
        );
        let err = plan(d("9999-01-01"), d("9999-12-31"), 30)
            .unwrap_err()
            .to_string();
        assert!(err.contains("after 9999-12-31"), "{err}");
        assert!(plan(d("9999-01-01"), d("9999-12-31"), 1).is_ok());
    }

    #[test]
    fn plans_fit_extend_or_differ() {
        let d = |s| Day::parse(s).unwrap();
        let weeks = plan(d("2014-01-01"), d("2014-02-01"), 7).unwrap();
        let more = plan(d("2014-01-01"), d("2014-03-01"), 7).unwrap();
        assert_eq!(fit(&weeks, &weeks), Fit::Same);
        assert_eq!(fit(&more, &weeks), Fit::Same);
        assert_eq!(
            fit(&weeks, &more),
            Fit::Extends {
                adding: more[weeks.len()..].to_vec()
            }
        );
        assert_eq!(
            fit(&[], &weeks),
            Fit::Extends {
                adding: weeks.clone()
            }
        );
        // One partition past the range, then a weekly plan: nothing fits.
        let huge = [d("2041-04-18")];
        assert_eq!(fit(&huge, &weeks), Fit::Differs { adding: vec![] });
        let months = plan(d("2014-01-01"), d("2014-03-01"), 30).unwrap();
        assert_eq!(
            fit(&months, &plan(d("2014-01-01"), d("2014-04-01"), 7).unwrap()),
            Fit::Differs {
                adding: vec![
                    d("2014-03-05"),
                    d("2014-03-12"),
                    d("2014-03-19"),
                    d("2014-03-26"),
                    d("2014-04-02")
                ]
            }
        );
    }

    #[test]
    fn plans_in_words() {
        let d = |s| Day::parse(s).unwrap();
        assert_eq!(describe(&[]), "no partitions but pLast");
        assert_eq!(
            describe(&[d("2041-04-18")]),
            "1 partition, of the rows before 2041-04-18, then pLast"
        );
        assert_eq!(
            describe(&plan(d("2013-12-01"), d("2016-02-01"), 28).unwrap()),
            "29 partitions of 28 day(s) with bounds 2013-12-29 .. 2016-02-21, then pLast"
        );
        assert_eq!(
            describe(&[d("2014-01-01"), d("2014-01-31"), d("2014-02-07")]),
            "3 partitions of 7 to 30 days with bounds 2014-01-01 .. 2014-02-07, then pLast"
        );
    }

    #[test]
    fn ranges_cover_the_last_second() {
        let (min, max) = range_of(1_388_554_222, 1_451_583_507);
        assert_eq!(
            (min.to_string(), max.to_string()),
            ("2014-01-01".into(), "2016-01-01".into())
        );
        let (min, max) = range_of(-5, 0);
        assert_eq!(
            (min.to_string(), max.to_string()),
            ("1970-01-01".into(), "1970-01-02".into())
        );
    }

    #[test]
    fn busy_ranges_leave_stray_days_out() {
        let mut days = std::collections::BTreeMap::new();
        assert_eq!(busy_range(&days), None);
        for day in 16_000..16_100 {
            days.insert(day, 1_000);
        }
        days.insert(0, 3); // 1970-01-01: a client clock
        days.insert(24_837, 5); // 2038-01-01
        let (lo, hi) = busy_range(&days).unwrap();
        assert_eq!((lo.0, hi.0), (16_000, 16_100));
        days.insert(15_000, 1_000); // a real day, however far
        assert_eq!(busy_range(&days).unwrap().0 .0, 15_000);
        let one: std::collections::BTreeMap<i64, u64> = [(16_000, 1)].into();
        assert_eq!(
            busy_range(&one).map(|(a, b)| (a.0, b.0)),
            Some((16_000, 16_001))
        );
    }

    #[test]
    fn locate_rows() {
        let rows = vec![
            ("p20140108".to_string(), "'2014-01-08 00:00:00'".to_string()),
            ("p20140115".to_string(), "'2014-01-15 00:00:00'".to_string()),
            ("pLast".to_string(), "MAXVALUE".to_string()),
        ];
        let m = PartitionMap::from_descriptions(&rows).unwrap();
        assert_eq!(m.locate(b"1970-01-01 00:00:00"), 0);
        assert_eq!(m.locate(b"2014-01-07 23:59:59"), 0);
        assert_eq!(m.locate(b"2014-01-08 00:00:00"), 1);
        assert_eq!(m.locate(b"2014-01-15 00:00:00"), 2);
        assert_eq!(m.locate(b"9999-12-31 23:59:59"), 2);
        assert_eq!(m.last_bound(), Some(Day::parse("2014-01-15").unwrap()));
        let m = PartitionMap::from_descriptions(&[
            ("p0".into(), "'2014-01-08 10:20:30'".into()),
            ("pLast".into(), "MAXVALUE".into()),
        ])
        .unwrap();
        assert_eq!(m.locate(b"2014-01-08 10:20:29"), 0);
        assert_eq!(m.locate(b"2014-01-08 10:20:30"), 1);
    }
}
