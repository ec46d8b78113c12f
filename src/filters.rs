//! The filter tables of SPEC §4 (ignored users, whitelisted events,
//! blacklisted properties), as read at the start of an import.

use std::collections::HashSet;

/// The three filter tables of SPEC §4, as read at the start of an import.
#[derive(Default, Debug)]
pub struct Filters {
    pub ignored_users: Vec<String>,
    pub whitelisted_events: HashSet<String>,
    pub blacklisted_properties: HashSet<String>,
}

impl Filters {
    /// A fingerprint of the three lists (FNV-1a over the sorted names), to
    /// tell whether they changed between an interrupted import and its re-run.
    pub fn digest(&self) -> String {
        fn sorted<'s>(names: impl Iterator<Item = &'s String>) -> Vec<&'s str> {
            let mut v: Vec<&str> = names.map(String::as_str).collect();
            v.sort_unstable();
            v
        }
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for &b in bytes {
                hash = (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3);
            }
        };
        for list in [
            sorted(self.ignored_users.iter()),
            sorted(self.whitelisted_events.iter()),
            sorted(self.blacklisted_properties.iter()),
        ] {
            // Each name after its length + 1, each list ended by a 0.
            for name in list {
                feed(&(name.len() as u64 + 1).to_le_bytes());
                feed(name.as_bytes());
            }
            feed(&0u64.to_le_bytes());
        }
        format!("{hash:016x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(ignored: &[&str], white: &[&str], black: &[&str]) -> Filters {
        let own = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Filters {
            ignored_users: own(ignored),
            whitelisted_events: own(white).into_iter().collect(),
            blacklisted_properties: own(black).into_iter().collect(),
        }
    }

    #[test]
    fn digest_tells_filter_lists_apart() {
        let none = filters(&[], &[], &[]).digest();
        assert_eq!(none, filters(&[], &[], &[]).digest());
        assert_eq!(
            filters(&["a", "b"], &[], &[]).digest(),
            filters(&["b", "a"], &[], &[]).digest()
        );
        let all = [
            none,
            filters(&[""], &[], &[]).digest(),
            filters(&[], &[""], &[]).digest(),
            filters(&[], &[], &[""]).digest(),
            filters(&["ab"], &[], &[]).digest(),
            filters(&["a", "b"], &[], &[]).digest(),
            filters(&["a"], &["b"], &[]).digest(),
        ];
        let distinct: HashSet<&String> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "{all:?}");
    }
}
