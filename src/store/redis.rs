//! [`RedisStore`]: decisions shared by every replica through Redis (feature `redis`).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use super::{DecisionStats, MemoryStore, NetPrefixes, Observation, RiskStore, SharedStats};
use crate::engine::{Contribution, EntityKey, EntityState, Hold};

/// A [`RiskStore`] whose decisions reach every replica: a block, an allow or an unblock made
/// on one process (by a rule or by an operator) is written to Redis and published to the
/// others, which apply it to their own gate.
///
/// The request path never waits on the network. Each replica keeps its whole state in an
/// in-process [`MemoryStore`] (the same two tiers, the same bounds) and the gate reads only
/// that; a decision is handed to a background task through a bounded queue, and decisions from
/// other replicas are applied by the same task as they arrive. While Redis is unreachable the
/// replica decides alone (fail-open: its own blocks still hold), counts the failure
/// ([`SharedStats::errors`]), and reconnects with backoff; on reconnecting it loads the
/// decisions it missed, lifts those of other replicas that were lifted meanwhile (their key is
/// gone), and if Redis came back empty it writes its own live decisions back.
///
/// Redis is trusted: whoever can write to the namespace's keys or channel can block or allow
/// any client on every replica. Give the replicas a Redis user (ACL) of their own.
///
/// What is shared: blocks (with the repeat-offender count behind them), allows and unblocks,
/// for every entity kind (addresses, networks, users, sessions and devices; session and device
/// keys are hashes, never the cookie). Scores and rule windows stay per replica.
///
/// In Redis, each live decision is a key `tower-siem:{<namespace>}:decision:<entity>` whose
/// TTL is the decision's remaining time (so Redis holds only live decisions), and changes are
/// published on `tower-siem:{<namespace>}:decisions`. The namespace is a hash tag: every key of
/// one namespace lives in one Redis Cluster slot.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use tower_siem::store::RedisStore;
/// let store = RedisStore::builder("redis://127.0.0.1:6379/")
///     .namespace("shop")
///     .build()?;
/// store.synced(std::time::Duration::from_secs(2)).await; // optional: wait for the first load
/// let siem = tower_siem::Siem::builder().store(store.clone()).build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
    /// Decisions to write and publish; closed when the last handle drops, which ends the task.
    tx: Arc<mpsc::Sender<Wire>>,
    /// This replica's window observations to publish (with `share_windows`).
    obs_tx: Arc<mpsc::Sender<Observation>>,
}

struct Shared {
    local: MemoryStore,
    /// Whether score rises are shared too (a fleet detector's store), not only decisions.
    share_scores: bool,
    /// Whether every lookup answers "blocked" while Redis is away.
    fail_closed: bool,
    /// Whether rule windows are shared (observations published and received).
    share_windows: bool,
    /// Other replicas' observations waiting for the engine; at most [`INBOX`].
    inbox: parking_lot::Mutex<Vec<Observation>>,
    /// `inbox.len()`, read without the lock on every event.
    inbox_len: AtomicUsize,
    /// This replica's id: its own messages are not applied twice.
    origin: String,
    keys: Keys,
    counters: Counters,
    connected: AtomicBool,
    /// Completed (re)synchronisations with Redis.
    synced: watch::Sender<u64>,
    /// Decisions written so far (the `published` counter, watchable).
    written: watch::Sender<u64>,
    /// Entities whose live decision came from another replica: on reconnecting, those whose
    /// key is gone from Redis were lifted (an unblock missed while disconnected) and are lifted
    /// here too. At most `remote_cap`.
    remote: parking_lot::Mutex<std::collections::HashSet<EntityKey, ahash::RandomState>>,
    remote_cap: usize,
}

#[derive(Default)]
struct Counters {
    lifted: AtomicU64,
    failed_open: AtomicU64,
    failed_closed: AtomicU64,
    /// Decisions handed to the background task.
    queued: AtomicU64,
    published: AtomicU64,
    received: AtomicU64,
    loaded: AtomicU64,
    reseeded: AtomicU64,
    dropped: AtomicU64,
    malformed: AtomicU64,
    errors: AtomicU64,
    resyncs: AtomicU64,
    obs_published: AtomicU64,
    obs_received: AtomicU64,
    obs_applied: AtomicU64,
    obs_dropped: AtomicU64,
    /// Observations handed to the background task (see [`RedisStore::flush`]).
    obs_queued: AtomicU64,
    /// Observations published or dropped by the background task.
    obs_done: AtomicU64,
}

/// Errors building a [`RedisStore`].
#[derive(Debug)]
pub struct RedisStoreError(String);

impl fmt::Display for RedisStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedisStoreError {}

/// Builds a [`RedisStore`]; see [`RedisStore::builder`].
#[derive(Clone)]
pub struct RedisStoreBuilder {
    url: String,
    namespace: String,
    capacity: u64,
    decisions: Option<u64>,
    idle: Duration,
    timeout: Duration,
    queue: usize,
    share_scores: bool,
    fail_closed: bool,
    share_windows: bool,
    #[cfg(feature = "redis-tls")]
    root_certificate: Option<Vec<u8>>,
}

impl RedisStoreBuilder {
    /// Shares every rise of an entity's score as well as its decisions (default off): the
    /// store of a [fleet detector](crate::detect::FleetDetector), whose step-ups and throttles
    /// (an account attacked from many networks) should reach every replica, not only its
    /// blocks. A replica that receives a higher score takes it (and the rules behind it,
    /// without samples); it never lowers its own. On a replica's own store it would send a
    /// message for every rule hit.
    pub fn share_scores(mut self, on: bool) -> Self {
        self.share_scores = on;
        self
    }

    /// Shares the windows of threshold and distinct-count rules with the other replicas of the
    /// namespace (default off), so that an attacker who spreads attempts over replicas meets
    /// the thresholds of one process: each observation a rule records (the rule, the key and
    /// the counted value, as 64-bit hashes, and the time) is published on
    /// `tower-siem:{<namespace>}:windows`, in batches, and every other replica records it in
    /// its own windows before its next event. A received observation never fires a rule by
    /// itself; the replica that sees the event that crosses the threshold decides, as a single
    /// process would. While an observation is in flight (a millisecond or so on a LAN) a
    /// replica may count one attempt short. Score rises are shared too (as with
    /// [`share_scores`](Self::share_scores)), so that a step-up decided on one replica holds on
    /// all of them.
    ///
    /// Nothing a client sent leaves the process: no address, user name or path, only keyed
    /// hashes. Replicas must run the same build of tower-siem (the hashes are those of its
    /// engine); a batch from a build that hashes differently is dropped and counted.
    /// Observations are published at most once: one lost to a Redis failure is not retried
    /// (and so never counted twice). Counted in [`SharedStats::observations_published`],
    /// [`observations_applied`](SharedStats::observations_applied) and
    /// [`observations_dropped`](SharedStats::observations_dropped).
    pub fn share_windows(mut self, on: bool) -> Self {
        self.share_windows = on;
        self
    }

    /// While Redis is away (before the first connection, and from a failure until the
    /// reconnection), refuse every client (default off: fail-open, each replica deciding alone
    /// with what it holds). For applications that would rather turn everyone away than let a
    /// client blocked elsewhere in: every entity looked up (addresses, and the users and
    /// sessions an application checks) reads as blocked for a second at a time. Counted in
    /// [`SharedStats::failed_closed`].
    pub fn fail_closed(mut self, on: bool) -> Self {
        self.fail_closed = on;
        self
    }

    /// For a `rediss://` URL: trust the certificate authority in `pem` (a private CA) instead
    /// of the system's roots (feature `redis-tls`).
    #[cfg(feature = "redis-tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-tls")))]
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificate = Some(pem.into());
        self
    }

    /// The namespace of the keys and channel (default `tower-siem`): replicas of one
    /// application share one; applications sharing a Redis use different ones.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Undecided entities held in memory (default 1,000,000), as [`MemoryStore::new`].
    pub fn capacity(mut self, n: u64) -> Self {
        self.capacity = n;
        self
    }

    /// Decided entities held in memory (default: the capacity), as
    /// [`MemoryStore::with_limits`].
    pub fn decision_capacity(mut self, n: u64) -> Self {
        self.decisions = Some(n);
        self
    }

    /// Time after which an undecided entity without events is forgotten (default 24 h).
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// Connection and command timeout (default 250 ms). It bounds how long the background
    /// task waits on Redis; requests never wait on it at all.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Decisions that may wait for the background task (default 4,096); past that they are
    /// counted in [`SharedStats::dropped`] and stay local.
    pub fn queue(mut self, n: usize) -> Self {
        self.queue = n;
        self
    }

    /// Checks the URL and starts the background task (on tower-siem's own I/O runtime, so it
    /// may be called from any context). It does not wait for Redis: the store works locally
    /// from the start and shares decisions once connected (see [`RedisStore::synced`]).
    pub fn build(self) -> Result<RedisStore, RedisStoreError> {
        if self.namespace.is_empty()
            || self.namespace.len() > 64
            || !self
                .namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(RedisStoreError(format!(
                "redis store: namespace {:?} must be 1 to 64 letters, digits, `_`, `-` or `.`",
                self.namespace
            )));
        }
        if self.timeout.is_zero() || self.queue == 0 {
            return Err(RedisStoreError(
                "redis store: timeout and queue must be above zero".to_owned(),
            ));
        }
        let client = self.client()?;
        let (tx, rx) = mpsc::channel(self.queue);
        let (obs_tx, obs_rx) = mpsc::channel(OUTBOX);
        let shared = Arc::new(Shared {
            share_windows: self.share_windows,
            inbox: parking_lot::Mutex::new(Vec::new()),
            inbox_len: AtomicUsize::new(0),
            share_scores: self.share_scores,
            fail_closed: self.fail_closed,
            local: MemoryStore::with_limits(
                self.capacity,
                self.decisions.unwrap_or(self.capacity),
                self.idle,
            ),
            origin: uuid::Uuid::new_v4().simple().to_string(),
            keys: Keys::new(&self.namespace),
            counters: Counters::default(),
            connected: AtomicBool::new(false),
            synced: watch::Sender::new(0),
            written: watch::Sender::new(0),
            remote: Default::default(),
            remote_cap: usize::try_from(self.decisions.unwrap_or(self.capacity))
                .unwrap_or(usize::MAX),
        });
        crate::sink::runtime::spawn(run(shared.clone(), client, rx, obs_rx, self.timeout))
            .map_err(|e| RedisStoreError(format!("redis store: {e}")))?;
        Ok(RedisStore {
            shared,
            tx: Arc::new(tx),
            obs_tx: Arc::new(obs_tx),
        })
    }
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &without_password(&self.url))
            .field("namespace", &self.namespace)
            .field("capacity", &self.capacity)
            .field("decisions", &self.decisions)
            .field("timeout", &self.timeout)
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

/// The URL with the password of its user part masked.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

impl RedisStoreBuilder {
    fn client(&self) -> Result<redis::Client, RedisStoreError> {
        let bad = |e: redis::RedisError| {
            RedisStoreError(format!(
                "redis store: cannot use the URL: {e}{}",
                if self.url.starts_with("rediss:") && cfg!(not(feature = "redis-tls")) {
                    " (rediss:// needs the `redis-tls` feature)"
                } else {
                    ""
                }
            ))
        };
        #[cfg(feature = "redis-tls")]
        if let Some(root) = &self.root_certificate {
            return redis::Client::build_with_tls(
                self.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root.clone()),
                },
            )
            .map_err(bad);
        }
        redis::Client::open(self.url.as_str()).map_err(bad)
    }
}

impl RedisStore {
    /// A store on the Redis at `url`: `redis://[user:password@]host:port/db`, or `rediss://…`
    /// for TLS (feature `redis-tls`). A user and password are sent with `AUTH` (an ACL user).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            namespace: "tower-siem".to_owned(),
            capacity: 1_000_000,
            decisions: None,
            idle: Duration::from_secs(24 * 3600),
            timeout: Duration::from_millis(250),
            queue: 4096,
            share_scores: false,
            fail_closed: false,
            share_windows: false,
            #[cfg(feature = "redis-tls")]
            root_certificate: None,
        }
    }

    /// Waits until the store has connected and loaded the fleet's decisions (or reloaded them
    /// after a reconnection), at most `timeout`. Returns whether it has.
    pub async fn synced(&self, timeout: Duration) -> bool {
        let mut rx = self.shared.synced.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|&n| n > 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until a synchronisation later than the ones completed now has finished (after a
    /// reconnection), at most `timeout`.
    /// The count is taken when this is called, not when the future is first polled.
    pub fn resynced(&self, timeout: Duration) -> impl std::future::Future<Output = bool> + Send {
        let mut rx = self.shared.synced.subscribe();
        let now = *rx.borrow_and_update();
        async move {
            tokio::time::timeout(timeout, rx.wait_for(|&n| n > now))
                .await
                .is_ok_and(|r| r.is_ok())
        }
    }

    /// The store's counters.
    pub fn stats(&self) -> SharedStats {
        let c = &self.shared.counters;
        SharedStats {
            connected: self.shared.connected.load(Ordering::Acquire),
            published: c.published.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            loaded: c.loaded.load(Ordering::Relaxed),
            reseeded: c.reseeded.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            resyncs: c.resyncs.load(Ordering::Relaxed),
            lifted: c.lifted.load(Ordering::Relaxed),
            failed_open: c.failed_open.load(Ordering::Relaxed),
            failed_closed: c.failed_closed.load(Ordering::Relaxed),
            observations_published: c.obs_published.load(Ordering::Relaxed),
            observations_received: c.obs_received.load(Ordering::Relaxed),
            observations_applied: c.obs_applied.load(Ordering::Relaxed),
            observations_dropped: c.obs_dropped.load(Ordering::Relaxed),
        }
    }

    /// Waits until every window observation handed to the background task before this call
    /// has been published (or dropped), at most `timeout`. Returns whether it has.
    pub fn flush_observations(
        &self,
        timeout: Duration,
    ) -> impl std::future::Future<Output = bool> + Send {
        let target = self.shared.counters.obs_queued.load(Ordering::Acquire);
        let shared = self.shared.clone();
        async move {
            let wait = async {
                let mut rx = shared.written.subscribe();
                loop {
                    if shared.counters.obs_done.load(Ordering::Acquire) >= target {
                        return;
                    }
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            };
            tokio::time::timeout(timeout, wait).await.is_ok()
                && shared.counters.obs_done.load(Ordering::Acquire) >= target
        }
    }

    /// Waits until every decision handed to the background task before this call has been
    /// written to Redis, at most `timeout`. Returns whether it has. (A fleet detector
    /// acknowledges the events behind its decisions only then.)
    pub fn flush(&self, timeout: Duration) -> impl std::future::Future<Output = bool> + Send {
        let target = self.shared.counters.queued.load(Ordering::Acquire);
        let mut rx = self.shared.written.subscribe();
        async move {
            tokio::time::timeout(timeout, rx.wait_for(|&n| n >= target))
                .await
                .is_ok_and(|r| r.is_ok())
        }
    }

    fn share(&self, wire: Wire) {
        // An entity named by a client (a user name typed into a login form) is shared only up
        // to a length: a megabyte-long name stays on this replica instead of in Redis.
        if wire.entity.len() > MAX_SHARED_ENTITY {
            self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match self.tx.try_send(wire) {
            Ok(()) => {
                self.shared.counters.queued.fetch_add(1, Ordering::AcqRel);
            }
            Err(_) => {
                self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("keys", &self.shared.keys.decision_prefix)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The decision fields of a state, compared before and after an update.
fn decision(s: &EntityState) -> (i64, bool, i64) {
    (s.blocked_until, s.manual_block, s.allow_until)
}

impl RiskStore for RedisStore {
    fn get(&self, key: &EntityKey) -> Option<EntityState> {
        if !self.shared.connected.load(Ordering::Relaxed) {
            let c = &self.shared.counters;
            if self.shared.fail_closed {
                c.failed_closed.fetch_add(1, Ordering::Relaxed);
                let now = jiff::Timestamp::now().as_millisecond();
                return Some(EntityState {
                    blocked_until: now + 1_000,
                    manual_block: true,
                    last_seen: now,
                    at: now,
                    ..EntityState::default()
                });
            }
            c.failed_open.fetch_add(1, Ordering::Relaxed);
        }
        self.shared.local.get(key)
    }

    fn update(
        &self,
        key: &EntityKey,
        f: &mut dyn FnMut(Option<EntityState>) -> Option<EntityState>,
    ) {
        let mut changed = None;
        let scores = self.shared.share_scores || self.shared.share_windows;
        self.shared.local.update(key, &mut |cur| {
            let before = cur.as_ref().map(decision);
            let before_score = cur.as_ref().map_or(0.0, |s| s.score);
            let next = f(cur);
            if let Some(s) = &next {
                let decided =
                    before != Some(decision(s)) && (s.blocked_until > 0 || s.allow_until > 0);
                let rose = scores && s.score > before_score;
                if decided || rose {
                    changed = Some(Wire::set(&self.shared.origin, key, s, scores));
                }
            }
            next
        });
        if let Some(wire) = changed {
            self.shared.remote.lock().remove(key);
            self.share(wire);
        }
    }

    fn remove(&self, key: &EntityKey) {
        self.shared.local.remove(key);
        self.shared.remote.lock().remove(key);
        self.share(Wire::clear(&self.shared.origin, key));
    }

    fn for_each(&self, f: &mut dyn FnMut(&EntityKey, &EntityState)) {
        self.shared.local.for_each(f);
    }

    fn len(&self) -> u64 {
        self.shared.local.len()
    }

    fn capacity(&self) -> u64 {
        self.shared.local.capacity()
    }

    fn sync(&self) {
        self.shared.local.sync();
    }

    fn net_prefixes(&self) -> NetPrefixes {
        self.shared.local.net_prefixes()
    }

    fn decisions(&self) -> DecisionStats {
        self.shared.local.decisions()
    }

    fn shared(&self) -> Option<SharedStats> {
        Some(self.stats())
    }

    fn shares_windows(&self) -> bool {
        self.shared.share_windows
    }

    fn share_observation(&self, observation: Observation) {
        let c = &self.shared.counters;
        match self.obs_tx.try_send(observation) {
            Ok(()) => {
                c.obs_queued.fetch_add(1, Ordering::AcqRel);
            }
            Err(_) => {
                c.obs_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn take_observations(&self, f: &mut dyn FnMut(Observation)) {
        if self.shared.inbox_len.load(Ordering::Acquire) == 0 {
            return;
        }
        let taken = {
            let mut inbox = self.shared.inbox.lock();
            self.shared.inbox_len.store(0, Ordering::Release);
            std::mem::take(&mut *inbox)
        };
        self.shared
            .counters
            .obs_applied
            .fetch_add(taken.len() as u64, Ordering::Relaxed);
        for o in taken {
            f(o);
        }
    }
}

/// Observations of this replica that may wait for the background task.
const OUTBOX: usize = 65_536;
/// Other replicas' observations that may wait for this replica's next event.
const INBOX: usize = 65_536;
/// Observations in one published message.
const BATCH: usize = 1024;
/// A batch: this magic, the origin (32 bytes), the probe (8), then 32 bytes an observation.
const MAGIC: &[u8; 4] = b"TSW1";

/// The engine's hash of a fixed text: replicas whose engines hash alike agree on it.
fn probe() -> u64 {
    crate::engine::window_hasher().hash_one("tower-siem window probe")
}

fn encode_batch(origin: &str, batch: &[Observation]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 32 + 8 + batch.len() * 32);
    out.extend_from_slice(MAGIC);
    let mut id = [b'0'; 32];
    let o = origin.as_bytes();
    id[..o.len().min(32)].copy_from_slice(&o[..o.len().min(32)]);
    out.extend_from_slice(&id);
    out.extend_from_slice(&probe().to_le_bytes());
    for ob in batch {
        out.extend_from_slice(&ob.rule.to_le_bytes());
        out.extend_from_slice(&ob.key.to_le_bytes());
        out.extend_from_slice(&ob.value.to_le_bytes());
        out.extend_from_slice(&ob.at.to_le_bytes());
    }
    out
}

/// Puts another replica's batch in the inbox. Ours are skipped; a malformed one is counted.
fn receive_batch(shared: &Shared, payload: &[u8]) {
    let c = &shared.counters;
    let Some(rest) = payload.strip_prefix(MAGIC) else {
        c.malformed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if rest.len() < 40 || (rest.len() - 40) % 32 != 0 {
        c.malformed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let (origin, rest) = rest.split_at(32);
    if origin == shared.origin.as_bytes() {
        return;
    }
    let (p, rest) = rest.split_at(8);
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    let n = rest.len() / 32;
    if word(p) != probe() {
        c.obs_dropped.fetch_add(n as u64, Ordering::Relaxed);
        return;
    }
    let mut inbox = shared.inbox.lock();
    for chunk in rest.chunks_exact(32) {
        if inbox.len() >= INBOX {
            c.obs_dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        inbox.push(Observation {
            rule: word(&chunk[..8]),
            key: word(&chunk[8..16]),
            value: word(&chunk[16..24]),
            at: word(&chunk[24..]) as i64,
        });
        c.obs_received.fetch_add(1, Ordering::Relaxed);
    }
    shared.inbox_len.store(inbox.len(), Ordering::Release);
}

/// Key and channel names of one namespace.
struct Keys {
    decision_prefix: String,
    channel: String,
    /// Where window observations are published.
    windows: String,
    epoch: String,
}

impl Keys {
    fn new(namespace: &str) -> Self {
        let base = format!("tower-siem:{{{namespace}}}");
        Keys {
            decision_prefix: format!("{base}:decision:"),
            channel: format!("{base}:decisions"),
            windows: format!("{base}:windows"),
            epoch: format!("{base}:epoch"),
        }
    }
}

/// One decision as written to Redis and published.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Wire {
    /// The replica that decided.
    origin: String,
    /// The entity, in its display form.
    entity: String,
    /// `set` (a block or an allow) or `clear` (an unblock).
    op: Op,
    #[serde(default)]
    blocked_until: i64,
    #[serde(default)]
    manual: bool,
    #[serde(default)]
    allow_until: i64,
    #[serde(default)]
    offenses: u32,
    #[serde(default)]
    hold: Hold,
    /// When it was decided (ms since the epoch, the deciding engine's clock).
    #[serde(default)]
    at: i64,
    /// The entity's score at `at`, from a store that shares scores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    /// The rules behind `score` (without samples).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    contributions: Vec<Contribution>,
}

/// How long Redis keeps an entity whose only shared state is a score (it decays meanwhile).
const SCORE_TTL_MS: i64 = 3600 * 1000;

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Op {
    Set,
    Clear,
}

impl Wire {
    fn set(origin: &str, key: &EntityKey, s: &EntityState, with_score: bool) -> Wire {
        Wire {
            score: with_score.then_some(s.score),
            contributions: if with_score {
                s.contributions
                    .iter()
                    .map(|c| Contribution {
                        sample: None,
                        ..c.clone()
                    })
                    .collect()
            } else {
                Vec::new()
            },
            origin: origin.to_owned(),
            entity: key.to_string(),
            op: Op::Set,
            blocked_until: s.blocked_until,
            manual: s.manual_block,
            allow_until: s.allow_until,
            offenses: s.offenses,
            hold: s.hold,
            at: s.last_seen.max(s.at),
        }
    }

    fn clear(origin: &str, key: &EntityKey) -> Wire {
        Wire {
            origin: origin.to_owned(),
            entity: key.to_string(),
            op: Op::Clear,
            blocked_until: 0,
            manual: true,
            allow_until: 0,
            offenses: 0,
            hold: Hold::default(),
            at: jiff::Timestamp::now().as_millisecond(),
            score: None,
            contributions: Vec::new(),
        }
    }

    /// Whether it carries a block or an allow still running at its own time.
    fn decides(&self) -> bool {
        self.blocked_until > self.at || self.allow_until > self.at
    }

    /// When the decision ends (ms): the key's TTL runs until then.
    fn ends(&self) -> i64 {
        let score = if self.score.is_some_and(|s| s > 0.0) {
            self.at.saturating_add(SCORE_TTL_MS)
        } else {
            0
        };
        self.blocked_until
            .max(self.allow_until)
            .max(self.hold.ends.into_iter().max().unwrap_or(0))
            .max(score)
    }

    /// The decision applied to this replica's state of the entity. An operator's decision
    /// (a manual block, an allow) replaces the local one; an automatic block lengthens a block
    /// but never overrides a local allow.
    fn merge(&self, cur: Option<EntityState>) -> EntityState {
        let mut s = cur.unwrap_or_default();
        if self.manual || self.allow_until > 0 {
            s.blocked_until = self.blocked_until;
            s.manual_block = self.manual;
            s.allow_until = self.allow_until;
            if self.allow_until > 0 {
                s.score = 0.0;
                s.contributions.clear();
                s.at = s.at.max(self.at);
            }
        } else if s.allow_until <= self.at && self.blocked_until > s.blocked_until {
            s.blocked_until = self.blocked_until;
            s.manual_block = false;
        }
        if let Some(score) = self.score {
            // A higher score is taken with the rules behind it; a lower one changes nothing
            // (this replica's own evidence stands). Never during an allow.
            if score > s.score && s.allow_until <= self.at {
                s.score = score;
                s.at = s.at.max(self.at);
                s.contributions = self.contributions.clone();
            }
        }
        s.offenses = s.offenses.max(self.offenses);
        s.last_seen = s.last_seen.max(self.at);
        for (mine, theirs) in s.hold.ends.iter_mut().zip(self.hold.ends) {
            *mine = (*mine).max(theirs);
        }
        s
    }
}

/// Applies a decision from Redis or another replica to the local store (never shared again).
fn apply(shared: &Shared, wire: &Wire) -> bool {
    let Some(key) = EntityKey::parse(&wire.entity) else {
        shared.counters.malformed.fetch_add(1, Ordering::Relaxed);
        return false;
    };
    match wire.op {
        Op::Clear => {
            shared.local.remove(&key);
            shared.remote.lock().remove(&key);
        }
        Op::Set => {
            shared.local.update(&key, &mut |cur| Some(wire.merge(cur)));
            // Tracked for lifting on reconnect only when it decides something.
            let mut remote = shared.remote.lock();
            if wire.decides() && remote.len() < shared.remote_cap {
                remote.insert(key);
            }
        }
    }
    true
}

/// After a reconnection: the decisions received from other replicas whose key is no longer in
/// Redis were lifted while this replica was away (an unblock it missed) or have ended; they
/// are removed here too.
fn reconcile(shared: &Shared, present: &std::collections::HashSet<String>) {
    let gone: Vec<EntityKey> = shared
        .remote
        .lock()
        .iter()
        .filter(|k| !present.contains(&k.to_string()))
        .cloned()
        .collect();
    for key in gone {
        shared.local.remove(&key);
        shared.remote.lock().remove(&key);
        shared.counters.lifted.fetch_add(1, Ordering::Relaxed);
    }
}

fn parse(shared: &Shared, payload: &[u8]) -> Option<Wire> {
    match serde_json::from_slice::<Wire>(payload) {
        Ok(w) => Some(w),
        Err(_) => {
            shared.counters.malformed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// Longest entity (display form, bytes) whose decisions are shared.
const MAX_SHARED_ENTITY: usize = 512;
const EPOCH_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The background task: connects, synchronises, then writes this replica's decisions and
/// applies the others' until the store is dropped; reconnects with backoff on any error.
async fn run(
    shared: Arc<Shared>,
    client: redis::Client,
    mut rx: mpsc::Receiver<Wire>,
    mut obs_rx: mpsc::Receiver<Observation>,
    timeout: Duration,
) {
    let mut epoch: Option<String> = None;
    let mut backoff = MIN_BACKOFF;
    // Decisions taken from the queue whose write failed: written first on reconnecting.
    let mut pending: Vec<Wire> = Vec::new();
    loop {
        let s = session(
            &shared,
            &client,
            &mut rx,
            &mut obs_rx,
            &mut pending,
            timeout,
            &mut epoch,
        );
        match s.await {
            Ok(()) => return,
            Err(e) => {
                let was = shared.connected.swap(false, Ordering::AcqRel);
                shared.counters.errors.fetch_add(1, Ordering::Relaxed);
                if was {
                    backoff = MIN_BACKOFF;
                    tracing::warn!(error = %e, "tower-siem redis store: disconnected; deciding locally until it is back");
                } else {
                    tracing::debug!(error = %e, "tower-siem redis store: cannot connect");
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        if rx.is_closed() && rx.is_empty() {
            return;
        }
    }
}

#[derive(Debug)]
struct SessionError(String);

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<redis::RedisError> for SessionError {
    fn from(e: redis::RedisError) -> Self {
        SessionError(e.to_string())
    }
}

async fn within<T>(
    timeout: Duration,
    what: &str,
    f: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, SessionError> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(SessionError(format!(
            "{what}: no answer within {timeout:?}"
        ))),
    }
}

/// One connection's life. `Ok` when the store was dropped; `Err` on any Redis trouble.
async fn session(
    shared: &Shared,
    client: &redis::Client,
    rx: &mut mpsc::Receiver<Wire>,
    obs_rx: &mut mpsc::Receiver<Observation>,
    pending: &mut Vec<Wire>,
    timeout: Duration,
    epoch: &mut Option<String>,
) -> Result<(), SessionError> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let mut conn = within(
        timeout,
        "connect",
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await?;
    let mut pubsub = within(timeout, "connect", client.get_async_pubsub()).await?;
    within(timeout, "subscribe", pubsub.subscribe(&shared.keys.channel)).await?;
    if shared.share_windows {
        within(timeout, "subscribe", pubsub.subscribe(&shared.keys.windows)).await?;
    }
    let mut messages = pubsub.into_on_message();

    // The epoch names one life of the Redis data set: if it changed or vanished since we last
    // saw it, Redis lost what we wrote, and our live decisions are written back.
    let fresh = uuid::Uuid::new_v4().simple().to_string();
    let set: Option<String> = within(
        timeout,
        "epoch",
        redis::cmd("SET")
            .arg(&shared.keys.epoch)
            .arg(&fresh)
            .arg("NX")
            // Bounded like every key: if it lapses, the next reconnection writes live
            // decisions back (with NX: nothing newer is replaced).
            .arg("PX")
            .arg(EPOCH_TTL_MS)
            .query_async(&mut conn),
    )
    .await?;
    let current: Option<String> = within(
        timeout,
        "epoch",
        redis::cmd("GET")
            .arg(&shared.keys.epoch)
            .query_async(&mut conn),
    )
    .await?;
    let lost = set.is_some() && epoch.is_some()
        || matches!((&*epoch, &current), (Some(mine), Some(now)) if mine != now);
    *epoch = current;

    let present = load(shared, &mut conn, timeout).await?;
    if lost {
        reseed(shared, &mut conn, timeout).await?;
    } else {
        reconcile(shared, &present);
    }
    if !pending.is_empty() {
        write(shared, &mut conn, timeout, pending).await?;
        pending.clear();
    }
    shared.connected.store(true, Ordering::Release);
    shared.counters.resyncs.fetch_add(1, Ordering::Relaxed);
    shared.synced.send_modify(|n| *n += 1);
    tracing::debug!(lost, "tower-siem redis store: synchronised");

    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(first) = out else { return Ok(()) };
                // Everything queued goes in one pipeline; kept until it is written.
                pending.push(first);
                while pending.len() < 256 {
                    match rx.try_recv() {
                        Ok(w) => pending.push(w),
                        Err(_) => break,
                    }
                }
                write(shared, &mut conn, timeout, pending).await?;
                pending.clear();
            }
            Some(first) = obs_rx.recv(), if shared.share_windows => {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match obs_rx.try_recv() {
                        Ok(o) => batch.push(o),
                        Err(_) => break,
                    }
                }
                let n = batch.len() as u64;
                let payload = encode_batch(&shared.origin, &batch);
                let sent = within(
                    timeout,
                    "publish",
                    redis::cmd("PUBLISH")
                        .arg(&shared.keys.windows)
                        .arg(payload)
                        .query_async::<()>(&mut conn),
                )
                .await;
                let c = &shared.counters;
                // At most once: a batch lost with the connection is not sent again.
                match &sent {
                    Ok(()) => c.obs_published.fetch_add(n, Ordering::Relaxed),
                    Err(_) => c.obs_dropped.fetch_add(n, Ordering::Relaxed),
                };
                c.obs_done.fetch_add(n, Ordering::AcqRel);
                shared.written.send_modify(|_| {});
                sent?;
            }
            msg = messages.next() => {
                let Some(msg) = msg else {
                    return Err(SessionError("subscription closed".to_owned()));
                };
                if shared.share_windows && msg.get_channel_name() == shared.keys.windows {
                    receive_batch(shared, msg.get_payload_bytes());
                    continue;
                }
                if let Some(wire) = parse(shared, msg.get_payload_bytes()) {
                    if wire.origin != shared.origin && apply(shared, &wire) {
                        shared.counters.received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// Writes and publishes decisions of this replica.
async fn write(
    shared: &Shared,
    conn: &mut redis::aio::MultiplexedConnection,
    timeout: Duration,
    batch: &[Wire],
) -> Result<(), SessionError> {
    let now = jiff::Timestamp::now().as_millisecond();
    let mut pipe = redis::pipe();
    for wire in batch {
        let key = format!("{}{}", shared.keys.decision_prefix, wire.entity);
        let json = serde_json::to_string(wire).unwrap_or_default();
        match wire.op {
            Op::Set => {
                // The key lives as long as the decision (at least a second: the message
                // carries it to replicas that are up either way).
                let ttl = (wire.ends() - now).clamp(1_000, 366 * 24 * 3600 * 1000);
                pipe.cmd("SET")
                    .arg(&key)
                    .arg(&json)
                    .arg("PX")
                    .arg(ttl)
                    .ignore();
            }
            Op::Clear => {
                pipe.cmd("DEL").arg(&key).ignore();
            }
        }
        pipe.cmd("PUBLISH")
            .arg(&shared.keys.channel)
            .arg(&json)
            .ignore();
    }
    within(timeout, "write", pipe.query_async::<()>(conn)).await?;
    let total = shared
        .counters
        .published
        .fetch_add(batch.len() as u64, Ordering::AcqRel)
        + batch.len() as u64;
    shared.written.send_replace(total);
    Ok(())
}

/// Reads every live decision from Redis into the local store; the entities found.
async fn load(
    shared: &Shared,
    conn: &mut redis::aio::MultiplexedConnection,
    timeout: Duration,
) -> Result<std::collections::HashSet<String>, SessionError> {
    let pattern = format!("{}*", shared.keys.decision_prefix);
    let mut cursor: u64 = 0;
    let mut present = std::collections::HashSet::new();
    loop {
        // Keys as bytes: a key that is not UTF-8 is skipped as malformed, not an error.
        let (next, keys): (u64, Vec<Vec<u8>>) = within(
            timeout,
            "scan",
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(512)
                .query_async(conn),
        )
        .await?;
        if !keys.is_empty() {
            let values: Vec<Option<Vec<u8>>> = within(
                timeout,
                "mget",
                redis::cmd("MGET").arg(&keys).query_async(conn),
            )
            .await?;
            for value in values.into_iter().flatten() {
                if let Some(wire) = parse(shared, &value) {
                    if apply(shared, &wire) {
                        shared.counters.loaded.fetch_add(1, Ordering::Relaxed);
                        present.insert(wire.entity);
                    }
                }
            }
        }
        if next == 0 {
            return Ok(present);
        }
        cursor = next;
    }
}

/// Writes this replica's live decisions back to a Redis that lost them (without replacing a
/// decision another replica wrote back first).
async fn reseed(
    shared: &Shared,
    conn: &mut redis::aio::MultiplexedConnection,
    timeout: Duration,
) -> Result<(), SessionError> {
    let now = jiff::Timestamp::now().as_millisecond();
    let mut live = Vec::new();
    shared.local.for_each(&mut |key, s| {
        if s.blocked_until > now || s.allow_until > now {
            live.push(Wire::set(&shared.origin, key, s, false));
        }
    });
    for chunk in live.chunks(256) {
        let mut pipe = redis::pipe();
        for wire in chunk {
            let ttl = (wire.ends() - now).max(1_000);
            pipe.cmd("SET")
                .arg(format!("{}{}", shared.keys.decision_prefix, wire.entity))
                .arg(serde_json::to_string(wire).unwrap_or_default())
                .arg("NX")
                .arg("PX")
                .arg(ttl)
                .ignore();
        }
        within(timeout, "reseed", pipe.query_async::<()>(conn)).await?;
        shared
            .counters
            .reseeded
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(blocked_until: i64, manual: bool, allow_until: i64, offenses: u32) -> EntityState {
        EntityState {
            blocked_until,
            manual_block: manual,
            allow_until,
            offenses,
            score: 50.0,
            ..EntityState::default()
        }
    }

    #[test]
    fn a_password_never_shows_in_debug_output() {
        let b = RedisStore::builder("redis://siem:s3cr3t-pw@cache.internal:6380/2");
        let shown = format!("{b:?}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(
            shown.contains("redis://siem:***@cache.internal:6380/2"),
            "{shown}"
        );
        assert_eq!(without_password("redis://:pw@h/"), "redis://:***@h/");
        assert_eq!(without_password("redis://h:6379/"), "redis://h:6379/");
        let err = RedisStore::builder("redis://u:s3cr3t-pw@[bad/")
            .build()
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cr3t-pw"), "{err}");
    }

    #[test]
    fn an_entity_named_at_length_stays_local() {
        let store = RedisStore::builder("redis://127.0.0.1:1/")
            .share_scores(true)
            .build()
            .unwrap();
        let long = EntityKey::User("a".repeat(64 * 1024).into());
        store.update(&long, &mut |_| Some(state(5_000, true, 0, 0)));
        assert!(store.get(&long).is_some(), "still decided here");
        let short = EntityKey::User("alice".into());
        store.update(&short, &mut |_| Some(state(5_000, true, 0, 0)));
        store.remove(&long);
        let c = &store.shared.counters;
        assert_eq!(c.dropped.load(Ordering::Relaxed), 2, "the long name, twice");
        assert_eq!(
            c.queued.load(Ordering::Relaxed),
            1,
            "only alice's block is queued"
        );
    }

    #[test]
    fn keys_share_one_cluster_slot() {
        let k = Keys::new("shop");
        assert_eq!(k.decision_prefix, "tower-siem:{shop}:decision:");
        assert_eq!(k.channel, "tower-siem:{shop}:decisions");
        assert_eq!(k.epoch, "tower-siem:{shop}:epoch");
    }

    #[test]
    fn an_automatic_block_lengthens_but_never_overrides_an_allow() {
        let key = EntityKey::parse("ip:203.0.113.7").unwrap();
        let auto = Wire::set("a", &key, &state(5_000, false, 0, 1), false);
        // Lengthens a shorter local block and keeps the higher offence count.
        let s = auto.merge(Some(state(2_000, false, 0, 3)));
        assert_eq!((s.blocked_until, s.offenses), (5_000, 3));
        // Does not shorten a longer one.
        assert_eq!(
            auto.merge(Some(state(9_000, false, 0, 0))).blocked_until,
            9_000
        );
        // An operator's allow on this replica wins over it.
        let mut allowed = state(0, false, 60_000, 0);
        allowed.last_seen = 1_000;
        assert_eq!(auto.merge(Some(allowed)).blocked_until, 0);
    }

    #[test]
    fn an_operators_decision_replaces_the_local_one() {
        let key = EntityKey::parse("user:alice").unwrap();
        let allow = Wire::set("a", &key, &state(0, false, 60_000, 0), false);
        let s = allow.merge(Some(state(90_000, true, 0, 2)));
        assert_eq!((s.blocked_until, s.allow_until, s.score), (0, 60_000, 0.0));
        let block = Wire::set("a", &key, &state(30_000, true, 0, 0), false);
        let s = block.merge(Some(state(0, false, 60_000, 0)));
        assert_eq!(
            (s.blocked_until, s.manual_block, s.allow_until),
            (30_000, true, 0)
        );
    }

    #[test]
    fn a_shared_score_is_taken_only_when_higher() {
        let key = EntityKey::parse("user:victim").unwrap();
        let mut theirs = state(0, false, 0, 0);
        theirs.score = 35.0;
        theirs.at = 1_000;
        theirs.contributions.push(Contribution {
            rule: "auth.distributed".into(),
            score: 35.0,
            hits: 1,
            sample: Some("203.0.113.9".into()),
            weak: false,
        });
        let wire = Wire::set("detector", &key, &theirs, true);
        assert_eq!(wire.contributions[0].sample, None, "samples stay home");
        let mut low = state(0, false, 0, 0);
        low.score = 5.0;
        let s = wire.merge(Some(low));
        assert_eq!(
            (s.score, &*s.contributions[0].rule),
            (35.0, "auth.distributed")
        );
        let mut high = state(0, false, 0, 0);
        high.score = 80.0;
        assert_eq!(wire.merge(Some(high)).score, 80.0);
        // Never during an allow.
        let mut allowed = state(0, false, 60_000, 0);
        allowed.score = 0.0;
        assert_eq!(wire.merge(Some(allowed)).score, 0.0);
        // Without score sharing the wire carries none.
        assert_eq!(Wire::set("r", &key, &theirs, false).score, None);
    }

    #[test]
    fn observation_batches_round_trip_and_foreign_ones_are_refused() {
        let store = RedisStore::builder("redis://127.0.0.1:1/")
            .share_windows(true)
            .build()
            .unwrap();
        let batch = [
            Observation {
                rule: 1,
                key: u64::MAX,
                value: 0,
                at: 1_700_000_000_000,
            },
            Observation {
                rule: 2,
                key: 3,
                value: 4,
                at: -5,
            },
        ];
        // Our own batch is skipped; another replica's lands in the inbox, in order.
        receive_batch(&store.shared, &encode_batch(&store.shared.origin, &batch));
        assert_eq!(store.stats().observations_received, 0);
        let other = "0123456789abcdef0123456789abcdef";
        receive_batch(&store.shared, &encode_batch(other, &batch));
        let mut got = Vec::new();
        store.take_observations(&mut |o| got.push(o));
        assert_eq!(got, batch);
        assert_eq!(store.stats().observations_applied, 2);
        store.take_observations(&mut |_| panic!("the inbox was emptied"));

        // Truncated, unknown, or from a build that hashes differently: never applied.
        let mut good = encode_batch(other, &batch);
        good.pop();
        receive_batch(&store.shared, &good);
        receive_batch(&store.shared, b"{\"origin\":\"x\"}");
        let mut other_build = encode_batch(other, &batch);
        other_build[36] ^= 1;
        receive_batch(&store.shared, &other_build);
        store.take_observations(&mut |_| panic!("nothing valid arrived"));
        let s = store.stats();
        assert_eq!((s.malformed, s.observations_dropped), (2, 2), "{s:?}");
    }

    #[test]
    fn foreign_payloads_are_counted_not_applied() {
        let store = RedisStore::builder("redis://127.0.0.1:1/").build().unwrap();
        for payload in [&b"not json"[..], b"{}", b"{\"origin\":\"x\"}", &[0xff; 9]] {
            assert!(parse(&store.shared, payload).is_none());
        }
        let bad_entity = Wire {
            entity: "planet:mars".to_owned(),
            ..Wire::clear("x", &EntityKey::parse("ip:192.0.2.1").unwrap())
        };
        assert!(!apply(&store.shared, &bad_entity));
        assert_eq!(store.stats().malformed, 5);
    }

    #[test]
    fn a_bad_url_or_namespace_is_refused() {
        assert!(RedisStore::builder("http://x").build().is_err());
        assert!(RedisStore::builder("redis://127.0.0.1:1/")
            .namespace("a}b")
            .build()
            .is_err());
        assert!(RedisStore::builder("redis://127.0.0.1:1/")
            .namespace("")
            .build()
            .is_err());
    }
}
