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

/// Upper bounds of the planned partitions: the first holds everything before
/// `min + days`, the last planned one ends on or after `max`; `pLast` follows.
pub fn plan(min: Day, max: Day, days: u32) -> Result<Vec<Day>> {
    if days == 0 {
        bail!("--days-per-partition must be at least 1");
    }
    if max <= min {
        bail!("--max-date ({max}) must be after --min-date ({min})");
    }
    let count = ((max.0 - min.0) as usize).div_ceil(days as usize);
    if count + 1 > MAX_PARTITIONS {
        bail!(
            "{min} .. {max} in {days}-day partitions needs {} partitions per table; \
             the server allows at most {MAX_PARTITIONS}: use a larger --days-per-partition",
            count + 1
        );
    }
    Ok((1..=count as i64)
        .map(|i| Day(min.0 + i * days as i64))
        .collect())
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

    /// The last bounded partition's bound, if any.
    pub fn last_bound(&self) -> Option<Day> {
        self.bounds
            .iter()
            .rev()
            .flatten()
            .next()
            .and_then(|b| Day::parse(std::str::from_utf8(&b[..10]).ok()?).ok())
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
