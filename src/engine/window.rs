//! Per-key state with a hard capacity, and the sliding-window counters rules keep in it.

use std::hash::Hash;

use ahash::RandomState;
use parking_lot::Mutex;

const SHARDS: usize = 16;
/// How many entries an eviction looks at to find the least recently touched one.
const EVICTION_SAMPLE: usize = 8;

/// A concurrent map that never holds more than its capacity.
///
/// Sixteen shards, each a mutex around a small hash map with capacity `cap / 16`. When a shard is
/// full, an insert evicts one of a sample of its entries: the one holding the least evidence
/// ([`Weight`]) among those touched within the map's horizon, then the least recently touched.
/// A flood of one-off keys therefore displaces other one-off keys and stale entries, not the
/// window of a key that has been piling up events (an attacker cannot reset its own count of
/// failed logins by sending requests from many other addresses).
pub(crate) struct BoundedMap<K, V> {
    shards: Box<[Mutex<Shard<K, V>>]>,
    per_shard: usize,
    hasher: RandomState,
    /// How long (ms) an entry's weight protects it after its last touch.
    horizon: i64,
}

/// How much evidence an entry holds, for eviction (see [`BoundedMap`]).
pub(crate) trait Weight {
    /// Events or values held; 0 when it does not matter.
    fn weight(&self) -> usize {
        0
    }
}

impl Weight for u32 {}
impl Weight for std::sync::Arc<str> {}

/// Weights above this all count the same: an entry with 8 events is as worth keeping as one
/// with 800.
const MAX_WEIGHT: usize = 8;

struct Shard<K, V> {
    map: hashbrown_like::Map<K, (V, i64)>,
    evicted: u64,
}

// std's HashMap with ahash; kept behind a module name so the choice is in one place.
mod hashbrown_like {
    pub(crate) type Map<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
}

impl<K: Hash + Eq + Clone, V: Weight> BoundedMap<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    map: hashbrown_like::Map::with_capacity_and_hasher(0, RandomState::new()),
                    evicted: 0,
                })
            })
            .collect();
        BoundedMap {
            shards,
            per_shard,
            hasher: RandomState::new(),
            horizon: 0,
        }
    }

    /// Lets an entry's weight protect it from eviction for `ms` after its last touch (the
    /// rule's window: past it, the events no longer count anyway).
    pub(crate) fn with_horizon(mut self, ms: i64) -> Self {
        self.horizon = ms.max(0);
        self
    }

    fn shard(&self, key: &K) -> &Mutex<Shard<K, V>> {
        let h = self.hasher.hash_one(key) as usize;
        &self.shards[h % SHARDS]
    }

    /// Runs `f` on the entry for `key`, creating it with `init` when absent. `now` marks it as
    /// touched (event time, milliseconds).
    pub(crate) fn with<R>(
        &self,
        key: &K,
        now: i64,
        init: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> R {
        let mut shard = self.shard(key).lock();
        if let Some((v, touched)) = shard.map.get_mut(key) {
            *touched = (*touched).max(now);
            return f(v);
        }
        if shard.map.len() >= self.per_shard {
            shard.evict_one(now, self.horizon);
        }
        let mut v = init();
        let r = f(&mut v);
        shard.map.insert(key.clone(), (v, now));
        r
    }

    /// Runs `f` on the entry for `key` if there is one.
    pub(crate) fn get<R>(&self, key: &K, f: impl FnOnce(&V) -> R) -> Option<R> {
        let shard = self.shard(key).lock();
        shard.map.get(key).map(|(v, _)| f(v))
    }

    pub(crate) fn remove(&self, key: &K) {
        self.shard(key).lock().map.remove(key);
    }

    /// Entries held now.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }

    /// The most entries it will ever hold.
    pub(crate) fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    /// Entries evicted to make room so far.
    pub(crate) fn evicted(&self) -> u64 {
        self.shards.iter().map(|s| s.lock().evicted).sum()
    }
}

impl<K: Hash + Eq + Clone, V: Weight> Shard<K, V> {
    fn evict_one(&mut self, now: i64, horizon: i64) {
        let victim = self
            .map
            .iter()
            .take(EVICTION_SAMPLE)
            .min_by_key(|(_, (v, touched))| {
                let fresh = now.saturating_sub(*touched) < horizon;
                let weight = if fresh { v.weight().min(MAX_WEIGHT) } else { 0 };
                (weight, *touched)
            })
            .map(|(k, _)| k.clone());
        if let Some(k) = victim {
            self.map.remove(&k);
            self.evicted += 1;
        }
    }
}

/// Exact sliding-window counter for "at least `n` events within `window`": the timestamps of
/// the last `n` events. The condition holds when the oldest of them is still inside the window,
/// so memory is at most `n` timestamps per key whatever the event rate. The buffer grows as
/// events arrive (never beyond `n`): a rule with a large `count` costs nothing for a key until
/// that key actually sends events.
#[derive(Debug, Clone)]
pub(crate) struct Recent {
    times: Vec<i64>,
    next: usize,
    n: usize,
}

/// Grows `v` by one slot's worth for a push, doubling but never past `cap` elements.
fn reserve_capped<T>(v: &mut Vec<T>, cap: usize) {
    if v.len() == v.capacity() && v.len() < cap {
        let more = v.len().max(4).min(cap - v.len());
        v.reserve_exact(more);
    }
}

impl Weight for Recent {
    fn weight(&self) -> usize {
        self.times.len()
    }
}

impl Weight for Distinct {
    fn weight(&self) -> usize {
        self.seen.len()
    }
}

impl Recent {
    pub(crate) fn new(n: usize) -> Self {
        Recent {
            times: Vec::new(),
            next: 0,
            n: n.max(1),
        }
    }

    /// Records an event at `t` and tells whether at least `n` events fell in `(t - window, t]`.
    pub(crate) fn record(&mut self, t: i64, window: i64) -> bool {
        if self.times.len() < self.n {
            reserve_capped(&mut self.times, self.n);
            self.times.push(t);
        } else {
            self.times[self.next] = t;
            self.next = (self.next + 1) % self.n;
        }
        self.holds(t, window)
    }

    /// Whether at least `n` of the recorded events fall in `(now - window, now]`.
    pub(crate) fn holds(&self, now: i64, window: i64) -> bool {
        self.times.len() >= self.n && self.times.iter().all(|&t| now - t < window)
    }

    /// Bytes held on the heap now.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.times.capacity() * std::mem::size_of::<i64>()
    }

    /// How many recorded events fall in `(now - window, now]` (at most `n`).
    #[cfg(test)]
    pub(crate) fn count(&self, now: i64, window: i64) -> usize {
        self.times
            .iter()
            .filter(|&&t| now - t < window && t <= now)
            .count()
    }
}

/// Distinct values of a field seen within a window, keeping at most `n` of them (the most
/// recent): enough to decide "at least `n` distinct values", never more memory than that.
#[derive(Debug, Clone)]
pub(crate) struct Distinct {
    seen: Vec<(u64, i64)>,
    cap: usize,
}

impl Distinct {
    pub(crate) fn new(n: usize) -> Self {
        Distinct {
            seen: Vec::new(),
            cap: n.max(1),
        }
    }

    /// Records value `v` (hashed) at `t`; returns how many distinct values fall in the window.
    pub(crate) fn record(&mut self, v: u64, t: i64, window: i64) -> usize {
        self.seen.retain(|&(_, s)| t - s < window);
        if let Some(e) = self.seen.iter_mut().find(|(h, _)| *h == v) {
            e.1 = e.1.max(t);
        } else {
            if self.seen.len() >= self.cap {
                if let Some(oldest) = self
                    .seen
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, (_, s))| *s)
                    .map(|(i, _)| i)
                {
                    self.seen.swap_remove(oldest);
                }
            }
            reserve_capped(&mut self.seen, self.cap);
            self.seen.push((v, t));
        }
        self.seen.len()
    }

    /// Whether `v` was seen (at any time still remembered).
    pub(crate) fn contains(&self, v: u64) -> bool {
        self.seen.iter().any(|(h, _)| *h == v)
    }

    /// Remembers `v` without a window (for novelty's known set).
    pub(crate) fn remember(&mut self, v: u64, t: i64) {
        self.record(v, t, i64::MAX);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_map_never_exceeds_capacity() {
        let m: BoundedMap<u64, u32> = BoundedMap::new(1000);
        for i in 0..100_000u64 {
            m.with(&i, i as i64, || 0, |v| *v += 1);
        }
        assert!(m.len() <= m.capacity(), "{} > {}", m.len(), m.capacity());
        assert!(m.capacity() >= 1000 && m.capacity() < 1000 + SHARDS);
        assert!(m.evicted() >= 99_000 - SHARDS as u64);
    }

    #[test]
    fn a_flood_of_one_off_keys_does_not_evict_a_window_piling_up_events() {
        // Eight entries a shard: each eviction's sample is the whole shard, so which entry
        // goes depends on the ordering alone, not on where the hasher put it.
        let m: BoundedMap<u64, Recent> =
            BoundedMap::new(SHARDS * EVICTION_SAMPLE).with_horizon(600_000);
        // Key 0 collects 5 events.
        for t in 0..5 {
            m.with(&0, t, || Recent::new(10), |w| w.record(t, 600_000));
        }
        // 100,000 one-off keys, all touched later than key 0.
        for i in 1..100_000u64 {
            let t = 10 + i as i64;
            m.with(&i, t, || Recent::new(10), |w| w.record(t, 600_000));
        }
        assert_eq!(
            m.get(&0, Weight::weight),
            Some(5),
            "the piled-up window was evicted"
        );
        // Past the horizon its weight no longer protects it.
        for i in 100_000..200_000u64 {
            let t = 700_000 + i as i64;
            m.with(&i, t, || Recent::new(10), |w| w.record(t, 600_000));
        }
        assert_eq!(
            m.get(&0, Weight::weight),
            None,
            "a stale window is kept forever"
        );
    }

    #[test]
    fn recent_is_an_exact_sliding_window() {
        let mut r = Recent::new(3);
        assert!(!r.record(0, 100));
        assert!(!r.record(50, 100));
        assert!(r.record(99, 100)); // 0, 50, 99 all within (−1, 99]
        assert!(!r.record(150, 100)); // 50, 99, 150: 50 is out of (50, 150]
        assert!(r.record(151, 100)); // 99, 150, 151
        assert_eq!(r.count(151, 100), 3);
        assert_eq!(r.count(1000, 100), 0);
    }

    #[test]
    fn a_large_count_costs_nothing_until_used() {
        // The largest `count` a rule may have: nothing is allocated for a key that has sent no
        // event, and the buffer grows with the events, never past `n`.
        let mut r = Recent::new(10_000);
        assert_eq!(r.heap_bytes(), 0);
        r.record(0, 1000);
        assert!(r.heap_bytes() <= 4 * 8, "{}", r.heap_bytes());
        for t in 1..20_000 {
            r.record(t, 1_000_000);
        }
        assert!(r.holds(19_999, 1_000_000));
        assert_eq!(r.heap_bytes(), 10_000 * 8, "capped at n");
        let mut small = Recent::new(5);
        for t in 0..100 {
            small.record(t, 1000);
        }
        assert_eq!(small.heap_bytes(), 5 * 8, "never past n");
    }

    #[test]
    fn distinct_counts_within_window_and_stays_bounded() {
        let mut d = Distinct::new(4);
        assert_eq!(d.record(1, 0, 100), 1);
        assert_eq!(d.record(1, 10, 100), 1);
        assert_eq!(d.record(2, 20, 100), 2);
        assert_eq!(d.record(3, 30, 100), 3);
        assert_eq!(d.record(4, 40, 100), 4);
        assert_eq!(d.record(5, 50, 100), 4, "capped at n");
        assert_eq!(d.record(6, 200, 100), 1, "old values left the window");
    }
}
