//! Which partitions a load session of this process is loading: two sessions
//! must not both find a partition empty and bulk-load it.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex};

use crate::table::Table;

/// Partitions being loaded by some session of this process.
#[derive(Default)]
pub struct PartitionLocks {
    busy: Mutex<HashSet<(Table, String)>>,
    freed: Condvar,
}

impl PartitionLocks {
    /// Waits until no other session holds `partition` of `table`, then
    /// holds it until the guard is dropped.
    pub fn lock(&self, table: Table, partition: &str) -> PartitionGuard<'_> {
        let key = (table, partition.to_owned());
        let mut busy = self.busy.lock().expect("partition locks");
        while busy.contains(&key) {
            busy = self.freed.wait(busy).expect("partition locks");
        }
        busy.insert(key.clone());
        PartitionGuard { locks: self, key }
    }
}

pub struct PartitionGuard<'a> {
    locks: &'a PartitionLocks,
    key: (Table, String),
}

impl Drop for PartitionGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.locks.busy.lock() {
            busy.remove(&self.key);
        }
        self.locks.freed.notify_all();
    }
}
