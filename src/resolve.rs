//! Parsed lines → rows: the filters of SPEC §4, canonical users of §5 and
//! the stable ids of §7. Runs on one thread, in input order, so that ids of
//! new identities and keys are the same on every run.

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Result};

use crate::filters::Filters;
use crate::format::{AliasLink, Outcome, ParsedChunk};
use crate::identity::{Ident, Identities};
use crate::record::{is_numeric, Props, Reject, View};
use crate::report::{Accounting, RejectsFile};
use crate::rows::RowSink;
use crate::state::Snapshot;

/// Applies first-pass links in input order; returns the aliases not applied.
pub fn apply_links(
    ids: &mut Identities,
    revision: u64,
    links: Vec<AliasLink>,
    unapplied: &mut HashSet<(u64, u64)>,
) {
    for (line, a, b) in links {
        let (a, b) = (ids.intern(&a), ids.intern(&b));
        if !ids.link(a, b) {
            unapplied.insert((revision, line));
        }
    }
}

/// `(revision, n)` → a row id; revisions stay below 2^23, `n` below 2^40.
pub fn row_id(revision: u64, n: u64) -> u64 {
    (revision << 40) | n
}

/// Turns parsed chunks into rows (handed to a [`RowSink`]) and rejects.
pub struct Resolver<'a, S> {
    pub snap: &'a mut Snapshot,
    pub filters: &'a Filters,
    ignored_roots: HashSet<Ident>,
    /// Ignored names, for identities first seen in this pass.
    ignored_names: HashSet<&'a str>,
    /// Identities known before this pass: later ones are singletons.
    known: usize,
    unapplied: HashSet<(u64, u64)>,
    pub sink: S,
    pub rejects: RejectsFile,
    pub total: Accounting,
    /// Lines per revision, for the state store.
    pub revisions: Vec<(u64, u64)>,
    revision: u64,
    prop_seq: u64,
}

impl<'a, S: RowSink> Resolver<'a, S> {
    pub fn new(
        snap: &'a mut Snapshot,
        filters: &'a Filters,
        unapplied: HashSet<(u64, u64)>,
        sink: S,
        rejects: RejectsFile,
    ) -> Resolver<'a, S> {
        let ignored_roots = ignored_roots(&mut snap.identities, filters);
        let known = snap.identities.len();
        Resolver {
            snap,
            filters,
            ignored_roots,
            ignored_names: filters.ignored_users.iter().map(String::as_str).collect(),
            known,
            unapplied,
            sink,
            rejects,
            total: Accounting::default(),
            revisions: Vec::new(),
            revision: u64::MAX,
            prop_seq: 0,
        }
    }

    /// Resolves one chunk.
    pub fn consume(&mut self, parsed: ParsedChunk) -> Result<()> {
        let chunk = &parsed.chunk;
        if chunk.revision != self.revision {
            if self.revision != u64::MAX {
                self.sink.end_revision()?;
            }
            self.revision = chunk.revision;
            self.prop_seq = 0;
            self.revisions.push((chunk.revision, 0));
        }
        for ((i, raw), outcome) in chunk.lines().enumerate().zip(parsed.outcomes) {
            let line = chunk.first_line + i as u64;
            self.total.lines += 1;
            if let Some(last) = self.revisions.last_mut() {
                last.1 += 1;
            }
            let reject = match outcome {
                Outcome::Blank => {
                    self.total.blank += 1;
                    None
                }
                Outcome::Rejected(reason) => Some(reason),
                Outcome::Record(entry) => {
                    self.record(line, entry.view(&parsed.texts), entry.duplicate_key())?
                }
            };
            if let Some(reason) = reject {
                self.total.rejected[reason.index()] += 1;
                self.rejects.write(chunk.revision, line, reason, raw)?;
            }
        }
        Ok(())
    }

    /// Stores one record, or says why not. `duplicate_key`: the event's key
    /// (SPEC §10), if its format gives it one.
    fn record(
        &mut self,
        line: u64,
        record: View<'_>,
        duplicate_key: Option<u64>,
    ) -> Result<Option<Reject>> {
        let rev = self.revision;
        // Property ids count every property of every event and property set,
        // so that they do not move when filters change.
        let first_prop = self.prop_seq;
        self.prop_seq += record.props().len() as u64;
        match record {
            View::Alias { identity, other, t } => {
                let (Some(a), Some(b)) = (
                    self.snap.identities.get(identity),
                    self.snap.identities.get(other),
                ) else {
                    bail!("internal error: alias at revision {rev} line {line} was missed by the first pass");
                };
                if self.is_ignored(a) || self.is_ignored(b) {
                    return Ok(Some(Reject::IgnoredUser));
                }
                self.mark_stored(a);
                self.mark_stored(b);
                let (n1, n2) = alias_names(identity, other);
                let applied = !self.unapplied.contains(&(rev, line));
                self.sink.alias(row_id(rev, line), t, n1, n2, applied)?;
                self.total.aliases += 1;
            }
            View::Event {
                identity,
                t,
                name,
                props,
            } => {
                // Before the filters: a duplicate of an event the filters
                // rejected is a duplicate all the same.
                if let Some(key) = duplicate_key {
                    if self.snap.duplicates.seen_before(t, key)? {
                        return Ok(Some(Reject::Duplicate));
                    }
                }
                let u = self.intern(identity);
                if self.is_ignored(u) {
                    return Ok(Some(Reject::IgnoredUser));
                }
                let wl = &self.filters.whitelisted_events;
                if !wl.is_empty() && !wl.contains(name) {
                    return Ok(Some(Reject::NotWhitelisted));
                }
                let user = self.user_id(u);
                let event_id = row_id(rev, line);
                let n = self.snap.keys.id(name);
                self.sink.event(event_id, t, n, user)?;
                self.properties(first_prop, t, user, Some(event_id), props)?;
                self.total.events += 1;
            }
            View::PropertySet { identity, t, props } => {
                let u = self.intern(identity);
                if self.is_ignored(u) {
                    return Ok(Some(Reject::IgnoredUser));
                }
                let user = self.user_id(u);
                self.properties(first_prop, t, user, None, props)?;
                self.total.property_sets += 1;
            }
        }
        Ok(None)
    }

    fn properties(
        &mut self,
        first: u64,
        t: i64,
        user: u64,
        event: Option<u64>,
        props: Props<'_>,
    ) -> Result<()> {
        for (i, (key, value)) in props.iter().enumerate() {
            if self.filters.blacklisted_properties.contains(key) {
                continue;
            }
            let k = self.snap.keys.id(key);
            let id = row_id(self.revision, first + i as u64);
            self.sink.property(id, t, k, value, user, event)?;
        }
        Ok(())
    }

    /// The identity of a row's `_p`. Ignored names get no number before
    /// they are seen, so that numbers do not depend on the filters.
    fn intern(&mut self, name: &str) -> Ident {
        let id = self.snap.identities.intern(name);
        if !self.ignored_names.is_empty()
            && id as usize >= self.known
            && self.ignored_names.contains(name)
        {
            self.ignored_roots.insert(id);
        }
        id
    }

    fn is_ignored(&mut self, id: Ident) -> bool {
        !self.ignored_roots.is_empty()
            && self.ignored_roots.contains(&self.snap.identities.find(id))
    }

    fn mark_stored(&mut self, id: Ident) {
        let i = id as usize;
        if self.snap.stored.len() <= i {
            self.snap.stored.resize(i + 1, false);
        }
        self.snap.stored[i] = true;
    }

    /// Marks the identity stored and returns its group's canonical `users.id`.
    fn user_id(&mut self, id: Ident) -> u64 {
        self.mark_stored(id);
        self.snap.identities.canonical(id) as u64 + 1
    }
}

/// Roots of the groups holding an ignored identity.
pub fn ignored_roots(ids: &mut Identities, filters: &Filters) -> HashSet<Ident> {
    filters
        .ignored_users
        .iter()
        .filter_map(|name| ids.get(name))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|id| ids.find(id))
        .collect()
}

/// `(name1, name2)` of an alias row: the numeric one first, else the lower
/// in byte order.
pub fn alias_names<'s>(a: &'s str, b: &'s str) -> (&'s str, &'s str) {
    match (is_numeric(a.as_bytes()), is_numeric(b.as_bytes())) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        _ if a.as_bytes() <= b.as_bytes() => (a, b),
        _ => (b, a),
    }
}

/// How rows of earlier imports must change after this import's links.
#[derive(Default, Debug)]
pub struct Catchup {
    /// `users.id` of a former canonical → `users.id` of the new one.
    pub remap: HashMap<u64, u64>,
    /// Former canonical `users.id`s of groups now ignored.
    pub drop_users: HashSet<u64>,
    /// Stored identities of groups now ignored (their `users` and `aliases`
    /// rows go).
    pub drop_names: Vec<String>,
}

/// Compares canonicals before and after the first pass for identities that
/// already had rows, and clears `stored` for ignored groups.
pub fn catchup(snap: &mut Snapshot, before: &[Ident], filters: &Filters) -> Catchup {
    let ignored = ignored_roots(&mut snap.identities, filters);
    let mut out = Catchup::default();
    for (i, &old) in before.iter().enumerate() {
        if !snap.stored.get(i).copied().unwrap_or(false) {
            continue;
        }
        let id = i as Ident;
        let root = snap.identities.find(id);
        if ignored.contains(&root) {
            // Rows may carry the old canonical or, re-pointed by an
            // interrupted run of this import, the current one.
            out.drop_users.insert(old as u64 + 1);
            out.drop_users
                .insert(snap.identities.canonical(id) as u64 + 1);
            out.drop_names.push(snap.identities.name(id).to_owned());
            snap.stored[i] = false;
            continue;
        }
        let new = snap.identities.canonical(id);
        if new != old {
            out.remap.insert(old as u64 + 1, new as u64 + 1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_name_order() {
        assert_eq!(alias_names("cookie", "123"), ("123", "cookie"));
        assert_eq!(alias_names("123", "cookie"), ("123", "cookie"));
        assert_eq!(alias_names("b@x", "a@x"), ("a@x", "b@x"));
        assert_eq!(alias_names("B", "a"), ("B", "a"));
    }

    #[test]
    fn row_ids_are_disjoint_per_revision() {
        assert_eq!(row_id(1, 1), (1 << 40) + 1);
        assert!(row_id(2, 0) > row_id(1, (1 << 40) - 1));
    }
}
