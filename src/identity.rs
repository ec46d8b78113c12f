//! Identity groups (SPEC §5): a union-find over every identity seen, with the
//! numeric-conflict rule and the canonical choice. Pure and in memory; the
//! state store loads and saves it.

use crate::intern::Interner;
use crate::record::is_numeric;

/// Index of an identity; its `users.id` is `index + 1`.
pub type Ident = u32;

/// All identities and the groups their aliases form.
#[derive(Default)]
pub struct Identities {
    names: Interner,
    parent: Vec<Ident>,
    /// Canonical member of each group, valid on roots.
    canon: Vec<Ident>,
}

impl Identities {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn name(&self, id: Ident) -> &str {
        self.names.name(id)
    }

    pub fn get(&self, name: &str) -> Option<Ident> {
        self.names.get(name)
    }

    /// The identity's index, adding it as a group of its own when new.
    pub fn intern(&mut self, name: &str) -> Ident {
        if let Some(id) = self.names.get(name) {
            return id;
        }
        let id = Ident::try_from(self.names.len()).expect("more than 4 billion identities");
        self.push(name, id);
        id
    }

    /// Restores one saved identity; `root` may be itself or an earlier one.
    pub fn restore(&mut self, id: Ident, name: &str, root: Ident) {
        assert_eq!(
            id as usize,
            self.names.len(),
            "identities restored out of order"
        );
        self.push(name, root);
        let root_canon = self.canon[root as usize];
        if root != id && self.better(id, root_canon) {
            self.canon[root as usize] = id;
        }
    }

    fn push(&mut self, name: &str, parent: Ident) {
        let id = self.names.push(name);
        self.parent.push(parent);
        self.canon.push(id);
    }

    /// The root of `id`'s group (with path halving).
    pub fn find(&mut self, mut id: Ident) -> Ident {
        while self.parent[id as usize] != id {
            let grand = self.parent[self.parent[id as usize] as usize];
            self.parent[id as usize] = grand;
            id = grand;
        }
        id
    }

    /// The canonical identity of `id`'s group.
    pub fn canonical(&mut self, id: Ident) -> Ident {
        let root = self.find(id);
        self.canon[root as usize]
    }

    fn has_numeric(&self, root: Ident) -> bool {
        is_numeric(self.name(self.canon[root as usize]).as_bytes())
    }

    /// Whether `a` should be canonical over `b`: numeric first, then the
    /// lowest in byte order.
    fn better(&self, a: Ident, b: Ident) -> bool {
        let (na, nb) = (self.name(a), self.name(b));
        match (is_numeric(na.as_bytes()), is_numeric(nb.as_bytes())) {
            (true, false) => true,
            (false, true) => false,
            _ => na.as_bytes() < nb.as_bytes(),
        }
    }

    /// Links two identities. Returns false, changing nothing, when both groups
    /// already hold a numeric identity (two accounts never merge).
    pub fn link(&mut self, a: Ident, b: Ident) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return true;
        }
        if self.has_numeric(ra) && self.has_numeric(rb) {
            return false;
        }
        let (ca, cb) = (self.canon[ra as usize], self.canon[rb as usize]);
        let canon = if self.better(ca, cb) { ca } else { cb };
        // Keep the older root so that saved parents stay mostly unchanged.
        let (root, child) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent[child as usize] = root;
        self.canon[root as usize] = canon;
        true
    }

    /// Every identity with its current root, for saving.
    pub fn roots(&mut self) -> Vec<Ident> {
        (0..self.names.len() as Ident)
            .map(|i| self.find(i))
            .collect()
    }

    /// Every identity with its current canonical identity.
    pub fn canonicals(&mut self) -> Vec<Ident> {
        (0..self.names.len() as Ident)
            .map(|i| self.canonical(i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon_name(g: &mut Identities, id: Ident) -> String {
        let c = g.canonical(id);
        g.name(c).to_owned()
    }

    fn ids(names: &[&str]) -> (Identities, Vec<Ident>) {
        let mut g = Identities::default();
        let v = names.iter().map(|n| g.intern(n)).collect();
        (g, v)
    }

    #[test]
    fn canonical_is_lowest_without_numeric() {
        let (mut g, v) = ids(&["zeta", "alpha", "Mid"]);
        assert!(g.link(v[0], v[1]));
        assert!(g.link(v[1], v[2]));
        // Byte order: uppercase sorts before lowercase.
        for &i in &v {
            assert_eq!(canon_name(&mut g, i), "Mid");
        }
    }

    #[test]
    fn numeric_identity_wins() {
        let (mut g, v) = ids(&["aaa", "987", "bbb"]);
        g.link(v[0], v[2]);
        g.link(v[2], v[1]);
        assert_eq!(canon_name(&mut g, v[0]), "987");
    }

    #[test]
    fn two_numeric_groups_never_merge() {
        let (mut g, v) = ids(&["cookie", "100", "200", "mail@x"]);
        assert!(g.link(v[0], v[1]));
        assert!(g.link(v[3], v[2]));
        assert!(
            !g.link(v[0], v[3]),
            "shared browser must not merge accounts"
        );
        assert_eq!(canon_name(&mut g, v[0]), "100");
        assert_eq!(canon_name(&mut g, v[3]), "200");
        // A link inside one group is applied (it changes nothing).
        assert!(g.link(v[1], v[0]));
    }

    #[test]
    fn restore_rebuilds_groups() {
        let (mut g, v) = ids(&["b", "a", "c", "5"]);
        g.link(v[0], v[1]);
        g.link(v[2], v[3]);
        let roots = g.roots();
        let mut h = Identities::default();
        for (i, &r) in roots.iter().enumerate() {
            h.restore(i as Ident, g.name(i as Ident), r);
        }
        assert_eq!(canon_name(&mut h, v[0]), "a");
        assert_eq!(canon_name(&mut h, v[2]), "5");
        assert!(!h.link(v[3], v[3]) || h.find(v[3]) == h.find(v[2]));
    }
}
