//! Strings stored once, each with a dense index from 0: the names of the
//! identity map and of the key table.
//!
//! The strings sit back to back in one arena, and the hash table holds
//! where each one is (with its index), so a lookup reads the table slot and
//! the string: one cache miss fewer than a table of indexes into boxed
//! strings, which mattered at millions of identities (2 GB export: the
//! identity lookups were 14 % of the import's CPU). The table hashes with
//! foldhash: several times faster than std's SipHash on short strings, and
//! seeded per process, so identities crafted by a site's visitors cannot be
//! chosen to collide.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

/// Where a string is in the arena, and its index.
#[derive(Clone, Copy)]
struct Slot {
    start: u64,
    len: u32,
    index: u32,
}

#[derive(Default)]
pub struct Interner {
    /// Every string, back to back, in the order pushed.
    arena: String,
    /// Per index: where its string ends in `arena`.
    ends: Vec<u64>,
    table: HashTable<Slot>,
    hasher: RandomState,
}

impl Interner {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn text(&self, slot: Slot) -> &str {
        &self.arena[slot.start as usize..slot.start as usize + slot.len as usize]
    }

    pub fn get(&self, s: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(s);
        self.table
            .find(hash, |&slot| {
                slot.len as usize == s.len() && self.text(slot) == s
            })
            .map(|slot| slot.index)
    }

    /// Appends `s`, which must not be there yet, and returns its index.
    pub fn push(&mut self, s: &str) -> u32 {
        let index = u32::try_from(self.ends.len()).expect("more than 4 billion strings");
        let len = u32::try_from(s.len()).expect("a string over 4 GiB");
        let slot = Slot {
            start: self.arena.len() as u64,
            len,
            index,
        };
        self.arena.push_str(s);
        self.ends.push(self.arena.len() as u64);
        let (arena, hasher) = (&self.arena, &self.hasher);
        let hash = hasher.hash_one(s);
        self.table.insert_unique(hash, slot, |&slot| {
            hasher.hash_one(&arena[slot.start as usize..slot.start as usize + slot.len as usize])
        });
        index
    }

    /// The string at `index`.
    pub fn name(&self, index: u32) -> &str {
        let i = index as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.arena[start as usize..self.ends[i] as usize]
    }

    /// The strings from index `from` on.
    pub fn since(&self, from: usize) -> impl Iterator<Item = &str> {
        (from..self.len()).map(|i| self.name(i as u32))
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
            assert_eq!(names.push(w), i as u32);
        }
        for (i, w) in words.iter().enumerate() {
            assert_eq!(names.get(w), Some(i as u32));
            assert_eq!(names.name(i as u32), w);
        }
        assert_eq!(names.get("name-10000"), None);
        assert_eq!(names.get(""), None);
        assert_eq!(names.len(), 10_000);
        assert_eq!(names.since(9_999).collect::<Vec<_>>(), ["name-9999"]);
    }
}
