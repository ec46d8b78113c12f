//! `kmdb next` (SPEC §9): what people do right after an event. Every
//! occurrence of the anchor event counts the names of the same person's next
//! `N` events; sequences are ranked by count.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::{marks_of, satisfies, Event, FastMap, Mark, Tally};

/// The name shown for "no more events" in a sequence.
pub const END: &str = "(end)";

/// `END` in a sequence of key ids (`keys.id` is a positive INT).
const END_ID: u32 = u32::MAX;

/// A resolved `kmdb next` query.
#[derive(Clone, Debug)]
pub struct NextQuery {
    /// The anchor's `keys.id`; `None` when the name is not in `keys`.
    pub anchor: Option<u32>,
    /// Conditions the anchor needs (sorted); `None` when a `where` key is
    /// not in `keys` (no event can match).
    pub needs: Option<Vec<u32>>,
    pub steps: usize,
    /// Seconds after the anchor within which the next events count.
    pub within: Option<i64>,
    pub from: i64,
    pub to: i64,
}

impl NextQuery {
    /// Whether any event can be an occurrence.
    pub fn can_match(&self) -> bool {
        self.anchor.is_some() && self.needs.is_some()
    }

    pub fn tally(&self) -> NextTally<'_> {
        NextTally {
            query: self,
            occurrences: 0,
            counts: FastMap::default(),
            buf: Vec::with_capacity(self.steps),
        }
    }
}

/// One worker's counts of sequences.
pub struct NextTally<'a> {
    query: &'a NextQuery,
    pub occurrences: u64,
    counts: FastMap<Vec<u32>, u64>,
    buf: Vec<u32>,
}

impl Tally for NextTally<'_> {
    fn person(&mut self, events: &[Event], marks: &[Mark]) {
        let q = self.query;
        let (Some(anchor), Some(needs)) = (q.anchor, &q.needs) else {
            return;
        };
        for (i, e) in events.iter().enumerate() {
            if e.n != anchor || e.t < q.from || e.t >= q.to {
                continue;
            }
            if !needs.is_empty() && !satisfies(needs, marks_of(marks, e.id)) {
                continue;
            }
            self.occurrences += 1;
            let limit = q.within.map_or(i64::MAX, |w| e.t.saturating_add(w));
            self.buf.clear();
            self.buf.extend(
                events[i + 1..]
                    .iter()
                    .take(q.steps)
                    .take_while(|next| next.t <= limit)
                    .map(|next| next.n),
            );
            if self.buf.len() < q.steps {
                self.buf.push(END_ID);
            }
            match self.counts.get_mut(self.buf.as_slice()) {
                Some(n) => *n += 1,
                None => {
                    self.counts.insert(self.buf.clone(), 1);
                }
            }
        }
    }

    fn merge(&mut self, other: Self) {
        self.occurrences += other.occurrences;
        for (seq, n) in other.counts {
            *self.counts.entry(seq).or_default() += n;
        }
    }
}

impl NextTally<'_> {
    /// Every key id the sequences name (to look their names up).
    pub fn ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .counts
            .keys()
            .flatten()
            .copied()
            .filter(|&n| n != END_ID)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The sequences by name, most frequent first, ties by the names in byte
    /// order element by element; the first `top` (all when `top` is 0).
    pub fn ranked(&self, names: &HashMap<u32, String>, top: usize) -> Vec<(Vec<String>, u64)> {
        let name = |n: &u32| match n {
            &END_ID => END.to_owned(),
            n => names
                .get(n)
                .cloned()
                .unwrap_or_else(|| format!("(key {n})")),
        };
        let mut seqs: Vec<(Vec<String>, u64)> = self
            .counts
            .iter()
            .map(|(seq, &n)| (seq.iter().map(name).collect(), n))
            .collect();
        seqs.sort_unstable_by(|a, b| match b.1.cmp(&a.1) {
            Ordering::Equal => by_bytes(&a.0, &b.0),
            other => other,
        });
        if top > 0 {
            seqs.truncate(top);
        }
        seqs
    }
}

fn by_bytes(a: &[String], b: &[String]) -> Ordering {
    a.iter()
        .map(|s| s.as_bytes())
        .cmp(b.iter().map(|s| s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: i64, id: i64, n: u32) -> Event {
        Event { user: 1, t, id, n }
    }

    fn names() -> HashMap<u32, String> {
        [(1, "x"), (2, "b"), (3, "a"), (4, "c")]
            .into_iter()
            .map(|(i, s)| (i, s.to_string()))
            .collect()
    }

    fn query(steps: usize, within: Option<i64>) -> NextQuery {
        NextQuery {
            anchor: Some(1),
            needs: Some(vec![]),
            steps,
            within,
            from: 0,
            to: i64::MAX,
        }
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn next_events_then_end() {
        let q = query(2, None);
        let mut t = q.tally();
        // x a b x a  -> [a, b] and [a, (end)]
        t.person(
            &[
                ev(1, 1, 1),
                ev(2, 2, 3),
                ev(3, 3, 2),
                ev(4, 4, 1),
                ev(5, 5, 3),
            ],
            &[],
        );
        assert_eq!(t.occurrences, 2);
        assert_eq!(
            t.ranked(&names(), 0),
            vec![(strs(&["a", "(end)"]), 1), (strs(&["a", "b"]), 1)]
        );
    }

    #[test]
    fn the_next_events_include_later_anchors_and_same_second_ones_after_by_id() {
        let q = query(1, None);
        let mut t = q.tally();
        t.person(&[ev(10, 1, 1), ev(10, 2, 1), ev(10, 3, 4)], &[]);
        assert_eq!(t.occurrences, 2);
        assert_eq!(
            t.ranked(&names(), 0),
            vec![(strs(&["c"]), 1), (strs(&["x"]), 1)]
        );
    }

    #[test]
    fn within_is_inclusive() {
        let q = query(3, Some(60));
        let mut t = q.tally();
        t.person(
            &[ev(0, 1, 1), ev(30, 2, 2), ev(60, 3, 3), ev(61, 4, 4)],
            &[],
        );
        assert_eq!(t.ranked(&names(), 0), vec![(strs(&["b", "a", "(end)"]), 1)]);
    }

    #[test]
    fn ties_by_names_byte_order_and_top() {
        let q = query(1, None);
        let mut t = q.tally();
        for n in [2, 3, 4, 4] {
            t.person(&[ev(1, 1, 1), ev(2, 2, n)], &[]);
        }
        t.person(&[ev(1, 1, 1)], &[]);
        assert_eq!(
            t.ranked(&names(), 0),
            vec![
                (strs(&["c"]), 2),
                (strs(&["(end)"]), 1),
                (strs(&["a"]), 1),
                (strs(&["b"]), 1)
            ]
        );
        assert_eq!(t.ranked(&names(), 2).len(), 2);
        assert_eq!(t.ids(), vec![2, 3, 4]);
    }

    #[test]
    fn from_to_bound_the_anchor_and_where_must_hold() {
        let mut q = query(1, None);
        q.from = 5;
        q.to = 10;
        q.needs = Some(vec![7]);
        let mut t = q.tally();
        let events = [
            ev(4, 1, 1),
            ev(5, 2, 1),
            ev(9, 3, 1),
            ev(10, 4, 1),
            ev(11, 5, 2),
        ];
        let marks = [
            Mark {
                user: 1,
                event: 1,
                cond: 7,
            },
            Mark {
                user: 1,
                event: 3,
                cond: 7,
            },
            Mark {
                user: 1,
                event: 4,
                cond: 7,
            },
        ];
        t.person(&events, &marks);
        // Only the event at 9 is in [5, 10) with the condition; the next
        // event (at 10, outside the range) still counts as the next one.
        assert_eq!(t.occurrences, 1);
        assert_eq!(t.ranked(&names(), 0), vec![(strs(&["x"]), 1)]);
    }

    #[test]
    fn merge_adds_counts() {
        let q = query(1, None);
        let mut a = q.tally();
        a.person(&[ev(1, 1, 1), ev(2, 2, 2)], &[]);
        let mut b = q.tally();
        b.person(&[ev(1, 3, 1), ev(2, 4, 2)], &[]);
        b.person(&[ev(1, 5, 1)], &[]);
        a.merge(b);
        assert_eq!(a.occurrences, 3);
        assert_eq!(
            a.ranked(&names(), 0),
            vec![(strs(&["b"]), 2), (strs(&["(end)"]), 1)]
        );
    }
}
