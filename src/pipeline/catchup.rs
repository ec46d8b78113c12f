//! The rows of earlier imports follow this import's links (SPEC §4, §5):
//! merged groups are re-pointed to their new canonical user, groups joined
//! to an ignored identity lose their rows. The decisions are here; the
//! statements are the target's.

use std::collections::HashSet;

use anyhow::Result;

use crate::db::Target;
use crate::resolve::Catchup;
use crate::state::Snapshot;

pub fn apply(target: &mut dyn Target, c: &Catchup, snap: &mut Snapshot) -> Result<()> {
    if !c.drop_users.is_empty() {
        // Identities named only by an alias with an ignored identity (one
        // that was not applied) lose their reason to be a user too. Found
        // before the aliases go, so that a re-run after a crash finds them.
        let dropped: HashSet<&str> = c.drop_names.iter().map(String::as_str).collect();
        let mut partners: HashSet<String> = HashSet::new();
        for (a, b) in target.aliases_naming(&c.drop_names)? {
            partners.extend([a, b].into_iter().filter(|n| !dropped.contains(n.as_str())));
        }
        for name in partners {
            let Some(id) = snap.identities.get(&name) else {
                continue;
            };
            let user = id as u64 + 1;
            let named = target
                .aliases_naming(std::slice::from_ref(&name))?
                .iter()
                .any(|(a, b)| {
                    let other = if *a == name { b } else { a };
                    !dropped.contains(other.as_str())
                });
            if !named && !target.user_has_rows(user)? {
                target.delete_user(user)?;
                if let Some(s) = snap.stored.get_mut(id as usize) {
                    *s = false;
                }
            }
        }
        let ids: Vec<u64> = c.drop_users.iter().copied().collect();
        target.delete_rows_of_users(&ids)?;
        target.delete_identities(&c.drop_names)?;
        // Names only those rows used leave the dictionary, as if never seen;
        // the import puts back any it uses again.
        target.delete_unused_keys()?;
    }
    if !c.remap.is_empty() {
        let pairs: Vec<(u64, u64)> = c.remap.iter().map(|(&a, &b)| (a, b)).collect();
        target.repoint_users(&pairs)?;
    }
    Ok(())
}
