//! Where entity risk lives: the [`RiskStore`] trait and its in-process default.

use std::fmt;
use std::time::Duration;

use moka::ops::compute::Op;

use crate::engine::{EntityKey, EntityState};

/// Storage for per-entity risk state.
///
/// The gate reads it on every request, synchronously: an implementation must answer from
/// memory (a networked store keeps a local near-cache in front).
pub trait RiskStore: Send + Sync + 'static {
    /// The state of one entity.
    fn get(&self, key: &EntityKey) -> Option<EntityState>;
    /// Atomically replaces the state of one entity with `f(current)`; `None` removes it.
    fn update(
        &self,
        key: &EntityKey,
        f: &mut dyn FnMut(Option<EntityState>) -> Option<EntityState>,
    );
    /// Forgets one entity.
    fn remove(&self, key: &EntityKey);
    /// Visits every entity held (for the admin offender list).
    fn for_each(&self, f: &mut dyn FnMut(&EntityKey, &EntityState));
    /// Entities held now.
    fn len(&self) -> u64;
    /// Whether nothing is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The most entities it will hold.
    fn capacity(&self) -> u64;
    /// Finishes pending maintenance (eviction) so `len` is exact.
    fn sync(&self) {}
}

/// The in-process store: a bounded moka cache. Entities idle for `idle` are forgotten; past
/// `capacity`, the least useful are evicted (TinyLFU).
#[derive(Clone)]
pub struct MemoryStore {
    cache: moka::sync::Cache<EntityKey, EntityState, ahash::RandomState>,
    capacity: u64,
}

impl MemoryStore {
    /// A store holding at most `capacity` entities, each forgotten after 24 h without events.
    pub fn new(capacity: u64) -> Self {
        MemoryStore::with_idle(capacity, Duration::from_secs(24 * 3600))
    }

    /// A store with a custom idle time.
    pub fn with_idle(capacity: u64, idle: Duration) -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .time_to_idle(idle)
            .build_with_hasher(ahash::RandomState::new());
        MemoryStore { cache, capacity }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(100_000)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &self.capacity)
            .field("len", &self.cache.entry_count())
            .finish()
    }
}

impl RiskStore for MemoryStore {
    fn get(&self, key: &EntityKey) -> Option<EntityState> {
        // Most clients have no state: answer a miss without recording a read.
        if !self.cache.contains_key(key) {
            return None;
        }
        self.cache.get(key)
    }

    fn update(
        &self,
        key: &EntityKey,
        f: &mut dyn FnMut(Option<EntityState>) -> Option<EntityState>,
    ) {
        self.cache
            .entry_by_ref(key)
            .and_compute_with(|cur| match f(cur.map(|e| e.into_value())) {
                Some(v) => Op::Put(v),
                None => Op::Remove,
            });
    }

    fn remove(&self, key: &EntityKey) {
        self.cache.invalidate(key);
    }

    fn for_each(&self, f: &mut dyn FnMut(&EntityKey, &EntityState)) {
        for (k, v) in self.cache.iter() {
            f(&k, &v);
        }
    }

    fn len(&self) -> u64 {
        self.cache.entry_count()
    }

    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn sync(&self) {
        self.cache.run_pending_tasks();
    }
}
