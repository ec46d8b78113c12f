//! Strings stored once, each with a dense index from 0: the names of the
//! identity map and of the key table.
//!
//! The hash table holds indexes, not a second copy of each string, and
//! hashes with foldhash: several times faster than std's SipHash on short
//! strings, and seeded per process, so identities crafted by a site's
//! visitors cannot be chosen to collide.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

#[derive(Default)]
pub struct Interner {
    strings: Vec<Box<str>>,
    table: HashTable<u32>,
    hasher: RandomState,
}

impl Interner {
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }

    pub fn get(&self, s: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(s);
        let strings = &self.strings;
        self.table
            .find(hash, |&i| &*strings[i as usize] == s)
            .copied()
    }

    /// Appends `s`, which must not be there yet, and returns its index.
    pub fn push(&mut self, s: Box<str>) -> u32 {
        let index = u32::try_from(self.strings.len()).expect("more than 4 billion strings");
        let (strings, hasher) = (&self.strings, &self.hasher);
        let hash = hasher.hash_one(&*s);
        self.table
            .insert_unique(hash, index, |&i| hasher.hash_one(&*strings[i as usize]));
        self.strings.push(s);
        index
    }

    /// The string at `index`.
    pub fn name(&self, index: u32) -> &str {
        &self.strings[index as usize]
    }

    /// The strings from index `from` on.
    pub fn since(&self, from: usize) -> &[Box<str>] {
        &self.strings[from..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_keep_their_index() {
        let mut names = Interner::default();
        let words: Vec<String> = (0..10_000).map(|i| format!("name-{i}")).collect();
        for (i, w) in words.iter().enumerate() {
            assert_eq!(names.get(w), None);
            assert_eq!(names.push(w.as_str().into()), i as u32);
        }
        for (i, w) in words.iter().enumerate() {
            assert_eq!(names.get(w), Some(i as u32));
            assert_eq!(names.name(i as u32), w);
        }
        assert_eq!(names.get("name-10000"), None);
        assert_eq!(names.get(""), None);
        assert_eq!(names.len(), 10_000);
        assert_eq!(&*names.since(9_999)[0], "name-9999");
    }
}
