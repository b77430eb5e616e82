//! Where entity risk lives: the [`RiskStore`] trait and its in-process default.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use ipnet::IpNet;
use parking_lot::{Mutex, RwLock};

use crate::engine::{EntityKey, EntityState};

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
mod redis;
#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, RedisStoreBuilder, RedisStoreError};

/// Storage for per-entity risk state.
///
/// The gate reads it on every request, synchronously: an implementation must answer from
/// memory (a networked store keeps a local near-cache in front).
///
/// An implementation must not let other entities' traffic evict a state whose
/// [`hold`](EntityState::hold) is running (a block, an allow, a throttle, the history behind
/// repeat-offender blocks): otherwise an attacker unblocks itself by sending requests from many
/// addresses. It may drop such states only to stay within a bound of its own, least severe and
/// soonest to end first, and should count what it dropped.
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
    /// The prefix lengths of the [`EntityKey::Net`] entities it may hold, so the gate looks up
    /// only those networks of a client address (none, on nearly every request).
    fn net_prefixes(&self) -> NetPrefixes {
        NetPrefixes::default()
    }
    /// Counters of the decisions kept out of reach of eviction.
    fn decisions(&self) -> DecisionStats {
        DecisionStats::default()
    }
    /// Counters of the decisions shared with other replicas, for a store that shares them.
    fn shared(&self) -> Option<SharedStats> {
        None
    }
    /// Whether the engine should hand it the observations its threshold and distinct-count
    /// rules record ([`share_observation`](Self::share_observation)) and take the other
    /// replicas' ([`take_observations`](Self::take_observations)). Asked once, when the
    /// engine is built.
    fn shares_windows(&self) -> bool {
        false
    }
    /// One observation a rule of this replica recorded, to pass on to the other replicas. Must
    /// not block: a full queue drops it (and counts it).
    fn share_observation(&self, _observation: Observation) {}
    /// Hands the other replicas' observations received since the last call to `f`, which
    /// records them in the engine's windows (they never fire a rule on this replica). Called
    /// before every event the engine applies: must return at once when there is none.
    fn take_observations(&self, _f: &mut dyn FnMut(Observation)) {}
}

/// One event counted in a rule's window, as replicas share it: the rule, the key and (for a
/// distinct-count rule) the value, as the engine hashes them, and the event's time. Hashes,
/// never the names or values themselves: nothing a client sent leaves the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The rule's id, hashed.
    pub rule: u64,
    /// The rule's key (an address, a user, …), hashed.
    pub key: u64,
    /// The counted value of a distinct-count rule, hashed; 0 for a threshold rule.
    pub value: u64,
    /// When it happened (ms since the epoch).
    pub at: i64,
}

/// The prefix lengths of the network entities a store holds: bit `n` of `v4` for an IPv4 `/n`,
/// bit `n % 64` of `v6[n / 64]` for an IPv6 `/n`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetPrefixes {
    /// IPv4 prefix lengths (0–32).
    pub v4: u64,
    /// IPv6 prefix lengths (0–128).
    pub v6: [u64; 3],
}

impl NetPrefixes {
    /// Whether no network entity is held.
    pub fn is_empty(&self) -> bool {
        self.v4 == 0 && self.v6 == [0; 3]
    }

    /// The prefix lengths held for an address family, shortest first.
    pub fn lengths(&self, ipv6: bool) -> impl Iterator<Item = u8> + '_ {
        let words: &[u64] = if ipv6 {
            &self.v6
        } else {
            std::slice::from_ref(&self.v4)
        };
        words.iter().enumerate().flat_map(|(i, &w)| {
            // Visits only the set bits.
            std::iter::successors((w != 0).then_some(w), |&rest| {
                let rest = rest & (rest - 1);
                (rest != 0).then_some(rest)
            })
            .map(move |bits| (i * 64) as u8 + bits.trailing_zeros() as u8)
        })
    }
}

/// Counters of a store's decisions (entities whose [`hold`](EntityState::hold) runs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DecisionStats {
    /// Decisions held now.
    pub held: u64,
    /// The most it holds.
    pub capacity: u64,
    /// Decisions dropped to stay within `capacity` (least severe and soonest to end first).
    pub evicted: u64,
    /// Entities blocked now (at the latest event time the store has seen).
    pub blocked: u64,
}

/// Counters of a store that shares decisions with other replicas (`RedisStore`, feature
/// `redis`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SharedStats {
    /// Whether the store is connected to Redis now.
    pub connected: bool,
    /// Decisions of this replica written to Redis and published.
    pub published: u64,
    /// Decisions of other replicas received and applied.
    pub received: u64,
    /// Decisions read from Redis on (re)connecting.
    pub loaded: u64,
    /// Live decisions of this replica written back after Redis came back empty.
    pub reseeded: u64,
    /// Decisions not shared because the queue to the background task was full, or because
    /// the entity's name is longer than 512 bytes (they still hold on this replica).
    pub dropped: u64,
    /// Messages on the channel or values under our keys that were not ours to read.
    pub malformed: u64,
    /// Failed connections and commands (each one, while Redis is away, is a moment this
    /// replica decided alone).
    pub errors: u64,
    /// Completed synchronisations with Redis (the first connection and every reconnection).
    pub resyncs: u64,
    /// Decisions of other replicas lifted on reconnecting because they were gone from Redis
    /// (an unblock missed while disconnected).
    pub lifted: u64,
    /// Gate lookups answered from this replica's memory alone while Redis was away
    /// (fail-open, the default).
    pub failed_open: u64,
    /// Gate lookups answered "blocked" because Redis was away (with `fail_closed`).
    pub failed_closed: u64,
    /// Window observations of this replica published (with `share_windows`).
    pub observations_published: u64,
    /// Window observations of other replicas received (applied, or waiting for this
    /// replica's next event).
    pub observations_received: u64,
    /// Window observations of other replicas recorded in this replica's windows.
    pub observations_applied: u64,
    /// Window observations dropped: a full queue or inbox, a failed publish (never retried, so
    /// never counted twice), or a batch from a build that hashes differently.
    pub observations_dropped: u64,
}

impl SharedStats {
    /// The window observations shared, by way, named as the metrics' `way` label.
    pub fn observations_by_way(&self) -> [(&'static str, u64); 4] {
        [
            ("published", self.observations_published),
            ("received", self.observations_received),
            ("applied", self.observations_applied),
            ("dropped", self.observations_dropped),
        ]
    }

    /// The decisions shared, by way, named as the metrics' `way` label.
    pub fn by_way(&self) -> [(&'static str, u64); 7] {
        [
            ("published", self.published),
            ("received", self.received),
            ("loaded", self.loaded),
            ("reseeded", self.reseeded),
            ("dropped", self.dropped),
            ("malformed", self.malformed),
            ("lifted", self.lifted),
        ]
    }
}

/// The in-process store, in two tiers.
///
/// - Decided entities (blocked, allow-listed, throttled, or with a repeat-offender history:
///   see [`Hold`](crate::engine::Hold)) live in a bounded table that no other entity's traffic
///   can empty. When it is full, the least severe decision that ends soonest goes first, and
///   that is counted ([`DecisionStats::evicted`]).
/// - Every other entity (a score below throttling) lives in a bounded moka cache: past its
///   `capacity` the least useful are evicted (TinyLFU), and entities idle for 24 h are
///   forgotten.
///
/// A flood of random addresses can therefore displace only other undecided entities, never a
/// block.
#[derive(Clone)]
pub struct MemoryStore {
    cache: moka::sync::Cache<EntityKey, EntityState, ahash::RandomState>,
    capacity: u64,
    held: std::sync::Arc<Held>,
}

/// The decided tier.
struct Held {
    /// Entries in `table` (read without the lock: most requests find it 0).
    len: AtomicUsize,
    table: RwLock<Table>,
    /// Serialises updates across both tiers, so a state moving between them is never lost.
    writer: Mutex<()>,
    capacity: usize,
    evicted: AtomicU64,
    /// The latest event time seen in an update: the tier's notion of now.
    now: AtomicI64,
    /// [`NetPrefixes`] of the networks ever held: IPv4 word, then the three IPv6 words.
    prefix_bits: [AtomicU64; 4],
}

/// Rank and end of an entry's current hold; ordered so the first is evicted first.
type Rank = (u8, i64);

#[derive(Default)]
struct Table {
    map: HashMap<EntityKey, (EntityState, Rank), ahash::RandomState>,
    /// Every entry by (rank, end): the first is the least severe, soonest to end.
    by_rank: BTreeSet<(Rank, EntityKey)>,
    /// Every entry by the end of its current rank, to re-rank entries as time passes.
    by_end: BTreeSet<(i64, EntityKey)>,
}

impl Table {
    fn insert(&mut self, key: EntityKey, state: EntityState, rank: Rank) {
        self.remove(&key);
        self.by_rank.insert((rank, key.clone()));
        self.by_end.insert((rank.1, key.clone()));
        self.map.insert(key, (state, rank));
    }

    fn remove(&mut self, key: &EntityKey) -> Option<EntityState> {
        let (state, rank) = self.map.remove(key)?;
        self.by_rank.remove(&(rank, key.clone()));
        self.by_end.remove(&(rank.1, key.clone()));
        Some(state)
    }
}

impl MemoryStore {
    /// A store holding at most `capacity` undecided entities, each forgotten after 24 h
    /// without events, and at most `capacity` decided ones.
    pub fn new(capacity: u64) -> Self {
        MemoryStore::with_idle(capacity, Duration::from_secs(24 * 3600))
    }

    /// A store with a custom idle time.
    pub fn with_idle(capacity: u64, idle: Duration) -> Self {
        MemoryStore::with_limits(capacity, capacity, idle)
    }

    /// A store holding at most `capacity` undecided entities (forgotten after `idle` without
    /// events) and at most `decisions` decided ones (blocks, allows, throttles, offence
    /// histories).
    pub fn with_limits(capacity: u64, decisions: u64, idle: Duration) -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .time_to_idle(idle)
            .build_with_hasher(ahash::RandomState::new());
        MemoryStore {
            cache,
            capacity,
            held: std::sync::Arc::new(Held {
                len: AtomicUsize::new(0),
                table: RwLock::new(Table::default()),
                writer: Mutex::new(()),
                capacity: usize::try_from(decisions.max(1)).unwrap_or(usize::MAX),
                evicted: AtomicU64::new(0),
                now: AtomicI64::new(i64::MIN),
                prefix_bits: Default::default(),
            }),
        }
    }

    fn held_get(&self, key: &EntityKey) -> Option<EntityState> {
        if self.held.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.held.table.read().map.get(key).map(|(s, _)| s.clone())
    }

    /// Puts a decided state in the table, making room by rank; a state that ranks below
    /// everything in a full table stays in the cache instead (and is counted as evicted).
    fn hold(&self, key: &EntityKey, state: EntityState, rank: Rank, now: i64) -> bool {
        let mut t = self.held.table.write();
        self.rerank(&mut t, now);
        if !t.map.contains_key(key) && t.map.len() >= self.held.capacity {
            let first = t.by_rank.first().cloned();
            match first {
                Some((r, victim)) if r < rank => {
                    if let Some(s) = t.remove(&victim) {
                        self.cache.insert(victim, s);
                    }
                    self.held.evicted.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    self.held.evicted.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
            }
        }
        if let EntityKey::Net(net) = key {
            let len = usize::from(net.prefix_len());
            let (word, bit) = match net {
                IpNet::V4(_) => (0, len),
                IpNet::V6(_) => (1 + len / 64, len % 64),
            };
            self.held.prefix_bits[word].fetch_or(1 << bit, Ordering::Release);
        }
        t.insert(key.clone(), state, rank);
        self.held.len.store(t.map.len(), Ordering::Release);
        true
    }

    /// Re-ranks the entries whose current rank ended by `now`; those with nothing left to
    /// hold go back to the cache.
    fn rerank(&self, t: &mut Table, now: i64) {
        while let Some((end, key)) = t.by_end.first().cloned() {
            if end > now {
                break;
            }
            let Some(state) = t.remove(&key) else {
                break;
            };
            let rank = state.hold.at(now);
            if rank.0 == 0 {
                self.cache.insert(key, state);
            } else {
                t.insert(key, state, rank);
            }
        }
        self.held.len.store(t.map.len(), Ordering::Release);
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
            .field("decisions", &self.held.len.load(Ordering::Relaxed))
            .finish()
    }
}

impl RiskStore for MemoryStore {
    fn get(&self, key: &EntityKey) -> Option<EntityState> {
        if let Some(s) = self.held_get(key) {
            return Some(s);
        }
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
        let _writer = self.held.writer.lock();
        let held = self.held_get(key);
        let was_held = held.is_some();
        let cur = held.or_else(|| self.cache.get(key));
        let Some(new) = f(cur) else {
            self.cache.invalidate(key);
            if was_held {
                let mut t = self.held.table.write();
                t.remove(key);
                self.held.len.store(t.map.len(), Ordering::Release);
            }
            return;
        };
        let now = self
            .held
            .now
            .fetch_max(new.last_seen.max(new.at), Ordering::AcqRel)
            .max(new.last_seen.max(new.at));
        let rank = new.hold.at(now);
        if rank.0 > 0 {
            // Into the table first, then out of the cache: a reader sees it in one or both.
            if self.hold(key, new.clone(), rank, now) {
                self.cache.invalidate(key);
                return;
            }
        }
        self.cache.insert(key.clone(), new);
        if was_held {
            let mut t = self.held.table.write();
            t.remove(key);
            self.held.len.store(t.map.len(), Ordering::Release);
        }
    }

    fn remove(&self, key: &EntityKey) {
        let _writer = self.held.writer.lock();
        self.cache.invalidate(key);
        if self.held.len.load(Ordering::Acquire) > 0 {
            let mut t = self.held.table.write();
            t.remove(key);
            self.held.len.store(t.map.len(), Ordering::Release);
        }
    }

    fn for_each(&self, f: &mut dyn FnMut(&EntityKey, &EntityState)) {
        let held: Vec<(EntityKey, EntityState)> = self
            .held
            .table
            .read()
            .map
            .iter()
            .map(|(k, (s, _))| (k.clone(), s.clone()))
            .collect();
        for (k, v) in &held {
            f(k, v);
        }
        let held: std::collections::HashSet<EntityKey, ahash::RandomState> =
            held.into_iter().map(|(k, _)| k).collect();
        for (k, v) in self.cache.iter() {
            if !held.contains(&*k) {
                f(&k, &v);
            }
        }
    }

    fn len(&self) -> u64 {
        self.cache.entry_count() + self.held.len.load(Ordering::Acquire) as u64
    }

    fn capacity(&self) -> u64 {
        self.capacity + self.held.capacity as u64
    }

    fn sync(&self) {
        self.cache.run_pending_tasks();
    }

    fn net_prefixes(&self) -> NetPrefixes {
        let b = &self.held.prefix_bits;
        NetPrefixes {
            v4: b[0].load(Ordering::Acquire),
            v6: [
                b[1].load(Ordering::Acquire),
                b[2].load(Ordering::Acquire),
                b[3].load(Ordering::Acquire),
            ],
        }
    }

    fn decisions(&self) -> DecisionStats {
        let now = self.held.now.load(Ordering::Acquire);
        let blocked = if self.held.len.load(Ordering::Acquire) == 0 {
            0
        } else {
            let t = self.held.table.read();
            t.map
                .values()
                .filter(|(s, _)| s.blocked_until > now)
                .count() as u64
        };
        DecisionStats {
            held: self.held.len.load(Ordering::Acquire) as u64,
            capacity: self.held.capacity as u64,
            evicted: self.held.evicted.load(Ordering::Relaxed),
            blocked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_prefix_lengths_are_the_set_bits_shortest_first() {
        let p = NetPrefixes {
            v4: 1 << 16 | 1 << 24 | 1 << 32,
            v6: [1 << 48, 0, 1],
        };
        assert_eq!(p.lengths(false).collect::<Vec<_>>(), [16, 24, 32]);
        assert_eq!(p.lengths(true).collect::<Vec<_>>(), [48, 128]);
        assert_eq!(NetPrefixes::default().lengths(true).count(), 0);
        assert!(NetPrefixes::default().is_empty());
    }
}
