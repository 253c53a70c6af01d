//! The last known state of recently used aggregates, so that a busy
//! aggregate's next command does not load it again.
//!
//! A cached state may be stale (another process appended since): that is
//! safe because an append on stale state takes a sequence number that is
//! already taken and fails with a conflict, and the command queue answers a
//! command without appending only after deciding it on freshly loaded state.
//!
//! Two generations approximate least-recently-used at the cost of a map
//! swap: entries are written to the young map; when it is full the old map
//! is dropped and the young one takes its place. A hit in the old map moves
//! to the young one, so whatever stays in use stays cached, and memory is
//! bounded by twice the capacity whatever the number of aggregates.

use std::collections::HashMap;
use std::sync::Mutex;

pub(crate) struct StateCache<A> {
    capacity: usize,
    inner: Mutex<Generations<A>>,
}

struct Generations<A> {
    young: HashMap<String, (A, usize)>,
    old: HashMap<String, (A, usize)>,
}

impl<A: Clone> StateCache<A> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Generations {
                young: HashMap::new(),
                old: HashMap::new(),
            }),
        }
    }

    /// The state and sequence last stored for `id` by this process, if known.
    pub fn get(&self, id: &str) -> Option<(A, usize)> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = g.young.get(id) {
            return Some(hit.clone());
        }
        let hit = g.old.remove(id)?;
        self.insert_young(&mut g, id.to_string(), hit.clone());
        Some(hit)
    }

    pub fn put(&self, id: &str, state: A, sequence: usize) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.old.remove(id);
        self.insert_young(&mut g, id.to_string(), (state, sequence));
    }

    pub fn forget(&self, id: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.young.remove(id);
        g.old.remove(id);
    }

    fn insert_young(&self, g: &mut Generations<A>, id: String, entry: (A, usize)) {
        if g.young.len() >= self.capacity && !g.young.contains_key(&id) {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(id, entry);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.young.len() + g.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_bounded_and_used_entries_survive() {
        let cache = StateCache::new(4);
        cache.put("hot", 0u32, 1);
        for i in 0..100 {
            cache.put(&format!("w{i}"), i, 1);
            // Used all along: never evicted.
            assert!(cache.get("hot").is_some(), "evicted at {i}");
            assert!(cache.len() <= 8);
        }
        assert!(cache.get("w0").is_none());
        assert_eq!(cache.get("w99"), Some((99, 1)));
    }

    #[test]
    fn put_replaces_and_forget_removes() {
        let cache = StateCache::new(8);
        cache.put("a", 1u32, 1);
        cache.put("a", 2, 2);
        assert_eq!(cache.get("a"), Some((2, 2)));
        cache.forget("a");
        assert_eq!(cache.get("a"), None);
    }
}
