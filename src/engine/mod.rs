//! The detection engine: rules over events, per-entity scores, verdicts.
//!
//! The engine knows nothing of HTTP transport or sinks. It takes [`Event`]s (and, for inline
//! signatures, a request's path, query and user agent), updates sliding windows and entity
//! scores synchronously, and answers with a [`Verdict`]. Everything it keeps per key is bounded.

mod allowlist;
mod clock;
mod config;
mod ruleset;
mod score;
mod verdict;
pub(crate) mod window;

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ahash::RandomState;
use arc_swap::ArcSwap;
use ipnet::IpNet;
use serde::Serialize;

pub(crate) use allowlist::{canonical as allowlist_canonical, parse_network as allowlist_parse};
pub use allowlist::{AllowListError, AllowedNetwork, NetSource, MAX_ADDED_NETWORKS};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    After, ConfigError, Dur, EntityKind, MaxAction, RuleConfig, RuleKind, RuleSet, Scoring,
    SubnetEscalation, ValueField, DEFAULT_RULES,
};
pub use ruleset::{ReloadReport, RuleInfo};
pub use score::{Contribution, EntityKey, EntityState, Evidence, Hold};
pub use verdict::{Action, Verdict};

use crate::event::{Event, EventName, Redactor, Subject};
use crate::identify::mask;
use crate::signature::Hit;
use crate::store::{Observation, RiskStore};
use window::{BoundedMap, Distinct, Recent};

/// Capacities and keying of the engine's per-key structures.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Keys each rule keeps window state for.
    pub window_capacity: usize,
    /// Sessions remembered as belonging to a user (from `auth.success` events carrying both).
    pub session_capacity: usize,
    /// IPv4 addresses are keyed by this prefix.
    pub ipv4_prefix: u8,
    /// IPv6 addresses are keyed by this prefix.
    pub ipv6_prefix: u8,
    /// Networks never acted against: no score, no gate, no subnet escalation (offices,
    /// monitors, partners).
    pub allowed_networks: Vec<IpNet>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            window_capacity: 65_536,
            session_capacity: 65_536,
            ipv4_prefix: 32,
            ipv6_prefix: 64,
            allowed_networks: Vec::new(),
        }
    }
}

enum State {
    Recent(Recent),
    Distinct(Distinct),
    Novelty {
        known: Distinct,
        recent: Option<Recent>,
    },
}

impl window::Weight for State {
    fn weight(&self) -> usize {
        match self {
            State::Recent(r) => r.weight(),
            State::Distinct(d) => d.weight(),
            State::Novelty { known, recent } => {
                known.weight() + recent.as_ref().map_or(0, window::Weight::weight)
            }
        }
    }
}

struct Compiled {
    id: Arc<str>,
    kind: RuleKind,
    on: Vec<Box<str>>,
    key: EntityKind,
    target: EntityKind,
    count: usize,
    window: i64,
    field: Option<ValueField>,
    score: f64,
    status: Vec<u16>,
    gate: Option<Action>,
    after: Option<(Vec<Box<str>>, usize, i64)>,
    remember: usize,
    keep: f64,
    shadow: bool,
    /// Shared with the set a reload replaces when the rule's state keeps its shape.
    windows: Arc<BoundedMap<u64, State>>,
    /// The id hashed: how replicas sharing windows name the rule.
    tag: u64,
    hits: AtomicU64,
    shadow_hits: AtomicU64,
}

impl Compiled {
    /// The rule's status and gate filters, shared by `apply` and the layer's precheck.
    fn accepts(&self, status: Option<u16>, gate: Option<Action>) -> bool {
        (self.status.is_empty() || status.is_some_and(|s| self.status.contains(&s)))
            && self.gate.is_none_or(|g| Some(g) == gate)
    }
}

/// The seeds of the engine's hasher. Fixed, so that replicas of one build hash keys and values
/// alike and can share window observations ([`RiskStore::shares_windows`]).
pub(crate) const WINDOW_SEEDS: [u64; 4] = [0x5EED, 0x7051, 0xE5C0, 0x2B1D];

/// The engine's hasher.
pub(crate) fn window_hasher() -> RandomState {
    let [a, b, c, d] = WINDOW_SEEDS;
    RandomState::with_seeds(a, b, c, d)
}

/// Statuses whose `wants_request` answer is kept in a table (every status HTTP defines).
const WANTS_TABLE: u16 = 1000;
const ACTIONS: [Action; 4] = [
    Action::Allow,
    Action::StepUp,
    Action::Throttle,
    Action::Block,
];

/// Receives the engine's `siem.alert` events (see [`Engine::with_alerts`]).
type AlertHook = Box<dyn Fn(Event) + Send + Sync>;

/// The detection engine. Shared behind an `Arc` by [`Siem`](crate::Siem).
pub struct Engine {
    /// The rules in force, swapped whole by [`Engine::reload`]; loaded once per event or
    /// inspection.
    rules: ArcSwap<ruleset::Rules>,
    /// Serialises reloads (never taken by an event).
    reloading: parking_lot::Mutex<()>,
    store: Arc<dyn RiskStore>,
    scoring: Scoring,
    config: EngineConfig,
    sessions: BoundedMap<u64, Arc<str>>,
    hasher: RandomState,
    events: AtomicU64,
    /// Verdicts given, by action (`Action as usize`).
    verdicts: [AtomicU64; 4],
    alerts: Option<AlertHook>,
    /// Blocked client keys per network, for subnet escalation.
    subnets: BoundedMap<IpNet, Distinct>,
    /// The rule id network blocks are reported under.
    subnet_rule: Arc<str>,
    /// Allowed networks: configured, and added at run time.
    allowed_nets: allowlist::AllowList,
    /// Masks the samples kept in contributions (and so in offenders, alerts, reports).
    redactor: Redactor,
    /// Whether the store shares window observations with other replicas.
    shares_windows: bool,
}

/// The pack id a signature rule names to fire on repeated singleton headers (see
/// [`Engine::report_duplicate_headers`]); the layer detects them, no pattern is involved.
pub const DUPLICATE_HEADER_PACK: &str = "duplicate_header";

/// The rule id under which subnet escalation blocks a network.
pub const SUBNET_RULE: &str = "subnet.escalation";

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field(
                "rules",
                &self
                    .rules
                    .load()
                    .rules
                    .iter()
                    .map(|r| &*r.id)
                    .collect::<Vec<_>>(),
            )
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An entity with a verdict against it, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Offender {
    /// Who.
    pub entity: EntityKey,
    /// The verdict now.
    pub verdict: Verdict,
    /// The rules behind the score, strongest first.
    pub contributions: Vec<Contribution>,
    /// End of the current block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_until: Option<jiff::Timestamp>,
    /// Automatic blocks earned so far.
    pub offenses: u32,
    /// Last event seen for the entity.
    pub last_seen: Option<jiff::Timestamp>,
}

/// How often one rule fired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleStats {
    /// Rule id.
    pub id: String,
    /// Times it fired and acted.
    pub hits: u64,
    /// Times it would have acted in shadow mode.
    pub shadow_hits: u64,
}

/// Counters and sizes of the engine's structures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    /// Events ingested.
    pub events: u64,
    /// Per-rule hit counts.
    pub rules: Vec<RuleStats>,
    /// Entities in the risk store.
    pub entities: u64,
    /// Its capacity.
    pub entity_capacity: u64,
    /// Largest number of keys any one rule holds window state for.
    pub max_window_keys: u64,
    /// Per-rule window capacity.
    pub window_capacity: u64,
    /// Sessions bound to users.
    pub sessions: u64,
    /// Capacity of the session binding map.
    pub session_capacity: u64,
    /// Window entries evicted to stay within capacity.
    pub window_evictions: u64,
    /// Decided entities (blocked, allowed, throttled, repeat offenders) held out of reach of
    /// others' traffic, their bound, and how many were dropped to stay within it.
    pub decisions: crate::store::DecisionStats,
    /// Decisions shared with other replicas, when the store shares them
    /// (`store::RedisStore`).
    pub shared: Option<crate::store::SharedStats>,
    /// Verdicts given: one per request the layer saw (its gate's), one per application event
    /// fired through [`Siem::fire`](crate::Siem::fire).
    pub verdicts: VerdictCounts,
}

/// Verdicts given, by action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerdictCounts {
    /// Let through.
    pub allow: u64,
    /// Let through, asking for a second factor.
    pub step_up: u64,
    /// Refused with 429.
    pub throttle: u64,
    /// Refused with 403.
    pub block: u64,
}

impl VerdictCounts {
    /// The counts by action, named as the metrics' `action` label.
    pub fn by_action(&self) -> [(&'static str, u64); 4] {
        [
            ("allow", self.allow),
            ("step_up", self.step_up),
            ("throttle", self.throttle),
            ("block", self.block),
        ]
    }
}

impl Engine {
    /// Compiles a rule set against a store.
    ///
    /// # Errors
    /// The rule set does not validate, or a custom signature pack does not compile.
    pub fn new(
        rules: &RuleSet,
        store: Arc<dyn RiskStore>,
        config: EngineConfig,
    ) -> Result<Engine, ConfigError> {
        let (compiled, _) = ruleset::Rules::compile(rules, &config, None)?;
        Ok(Engine {
            shares_windows: store.shares_windows(),
            rules: ArcSwap::from_pointee(compiled),
            reloading: parking_lot::Mutex::new(()),
            store,
            scoring: rules.scoring.clone(),
            sessions: BoundedMap::new(config.session_capacity),
            subnets: BoundedMap::new(config.window_capacity),
            subnet_rule: SUBNET_RULE.into(),
            allowed_nets: allowlist::AllowList::new(&config.allowed_networks),
            config,
            hasher: window_hasher(),
            events: AtomicU64::new(0),
            verdicts: Default::default(),
            alerts: None,
            redactor: Redactor::default(),
        })
    }

    /// Calls `hook` with a `siem.alert` event whenever a rule raises an entity's action
    /// (allow → step-up, step-up → throttle, … → block); not when it stays or falls, and not for
    /// operator decisions. The event's subject is the entity; its attributes are `entity`,
    /// `action`, `previous_action`, `score`, `rules` (comma-separated, strongest first) and
    /// `trigger` (the rule that fired), and it carries the new verdict. The hook runs inline,
    /// wherever the rule fired (possibly a request): it must not block.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use tower_siem::engine::{Engine, EngineConfig};
    /// use tower_siem::store::MemoryStore;
    /// use tower_siem::{Event, RuleSet};
    ///
    /// let alerts = Arc::new(Mutex::new(Vec::new()));
    /// let seen = Arc::clone(&alerts);
    /// let engine = Engine::new(&RuleSet::default(), Arc::new(MemoryStore::default()), EngineConfig::default())?
    ///     .with_alerts(move |e| seen.lock().unwrap().push(e));
    /// for _ in 0..6 {
    ///     engine.ingest(&Event::new("auth.failure").user("alice"));
    /// }
    /// let alerts = alerts.lock().unwrap();
    /// assert_eq!(alerts.len(), 1);
    /// assert_eq!(alerts[0].get_attr("action"), Some("step_up"));
    /// assert_eq!(alerts[0].get_attr("previous_action"), Some("allow"));
    /// # Ok::<(), tower_siem::engine::ConfigError>(())
    /// ```
    pub fn with_alerts(mut self, hook: impl Fn(Event) + Send + Sync + 'static) -> Self {
        self.alerts = Some(Box::new(hook));
        self
    }

    /// Masks samples with this redactor's rules (the SIEM's own, when built by
    /// [`SiemBuilder`](crate::SiemBuilder)): a secret a rule matched never reaches a
    /// contribution, `/offenders`, an alert or a report.
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// The scoring parameters in force.
    pub fn scoring(&self) -> &Scoring {
        &self.scoring
    }

    /// The risk store.
    pub fn store(&self) -> &Arc<dyn RiskStore> {
        &self.store
    }

    /// The key an address is counted under (IPv6 by prefix, IPv4-mapped normalised).
    pub fn ip_key(&self, ip: IpAddr) -> IpAddr {
        mask(ip, self.config.ipv4_prefix, self.config.ipv6_prefix)
    }

    /// Applies an event and returns the verdict for its subject at the event's time.
    pub fn ingest(&self, event: &Event) -> Verdict {
        self.ingest_only(event);
        self.verdict_at(&event.subject, event.millis())
    }

    /// Whether any rule would look at an `http.request` with this status and gate action. The
    /// layer skips building the event when nothing would read it.
    pub fn wants_request(&self, status: Option<u16>, gate: Action) -> bool {
        let rules = self.rules.load();
        if let Some(bits) = status.and_then(|s| rules.request_wants.get(usize::from(s))) {
            return bits & 1 << gate as u8 != 0;
        }
        rules
            .request_rules
            .iter()
            .any(|&i| rules.rules[i].accepts(status, Some(gate)))
    }

    /// Counts a verdict given (see [`EngineStats::verdicts`]).
    #[inline]
    pub fn count_verdict(&self, action: Action) {
        self.verdicts[action as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an event that no rule reads (kept so `stats().events` is every event seen).
    pub fn count_event(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
    }

    /// Applies an event without computing a verdict (the layer's post-response path).
    pub fn ingest_only(&self, event: &Event) {
        self.events.fetch_add(1, Ordering::Relaxed);
        self.take_observations();
        let t = event.millis();
        self.bind_session(event);
        // One load: the whole event sees one rule set, whatever a reload does meanwhile.
        let rules = self.rules.load();
        if let Some(idxs) = rules.by_name.get(event.name.as_str()) {
            for &i in idxs {
                self.apply(&rules.rules[i], event, t);
            }
        }
    }

    /// Runs the signature packs over a request and applies the matching rules to `subject` at
    /// time `t`. Returns the matches (empty for a clean request, without allocating).
    pub fn inspect(
        &self,
        subject: &Subject,
        path: &str,
        query: Option<&str>,
        user_agent: Option<&str>,
        t: i64,
    ) -> Vec<Hit> {
        self.inspect_request(subject, path, query, user_agent.map(str::as_bytes), t)
    }

    /// [`inspect`](Engine::inspect) with the user agent as raw header bytes.
    pub fn inspect_request(
        &self,
        subject: &Subject,
        path: &str,
        query: Option<&str>,
        user_agent: Option<&[u8]>,
        t: i64,
    ) -> Vec<Hit> {
        let rules = self.rules.load();
        let Some(insp) = &rules.inspector else {
            return Vec::new();
        };
        let hits = insp.inspect_raw(path, query, user_agent);
        for h in &hits {
            if let Some(&i) = rules.by_pack.get(&*h.pack) {
                let r = &rules.rules[i];
                let sample = self.redactor.hit_sample(h, path, query);
                self.fire_evidence(r, subject, t, Some(&sample), h.weak);
            }
        }
        hits
    }

    /// Inspects one more `User-Agent` value of a request (a request may repeat the header:
    /// every value is inspected, not only the first) and applies the matching rules.
    pub fn inspect_user_agent(&self, subject: &Subject, user_agent: &[u8], t: i64) -> Vec<Hit> {
        self.inspect_request(subject, "/", None, Some(user_agent), t)
    }

    /// Reports headers that a request repeated although HTTP allows them once (two `Host`s,
    /// two `User-Agent`s): the rule bound to the `duplicate_header` pack fires with the names
    /// as its sample. Returns the hit, if a rule took it.
    pub fn report_duplicate_headers(&self, subject: &Subject, names: &str, t: i64) -> Option<Hit> {
        let rules = self.rules.load();
        let &i = rules.by_pack.get(DUPLICATE_HEADER_PACK)?;
        let r = &rules.rules[i];
        self.fire_evidence(r, subject, t, Some(names), false);
        Some(Hit {
            pack: DUPLICATE_HEADER_PACK.into(),
            field: crate::signature::Field::UserAgent,
            sample: names.to_owned(),
            weak: false,
        })
    }

    /// The verdict for a subject at time `t` (ms): the strongest over its entities.
    pub fn verdict_at(&self, subject: &Subject, t: i64) -> Verdict {
        let mut v = Verdict::allow();
        let mut seen_user = false;
        if let Some(ip) = subject.ip.map(crate::identify::normalize) {
            if !self.is_allowed_network(ip, t) {
                v = v.merge(self.entity_verdict(&EntityKey::Ip(self.ip_key(ip)), t));
                let nets = self.store.net_prefixes();
                if !nets.is_empty() {
                    for len in nets.lengths(ip.is_ipv6()) {
                        if let Ok(net) = IpNet::new(ip, len) {
                            v = v.merge(self.entity_verdict(&EntityKey::Net(net.trunc()), t));
                        }
                    }
                }
            }
        }
        if let Some(u) = &subject.user {
            seen_user = true;
            v = v.merge(self.entity_verdict(&EntityKey::User(u.as_str().into()), t));
        }
        if let Some(s) = &subject.session {
            v = v.merge(self.entity_verdict(&EntityKey::Session(s.as_str().into()), t));
            if !seen_user {
                if let Some(u) = self.sessions.get(&self.hash_str(s), Arc::clone) {
                    v = v.merge(self.entity_verdict(&EntityKey::User(u), t));
                }
            }
        }
        if let Some(d) = &subject.device {
            v = v.merge(self.entity_verdict(&EntityKey::Device(d.as_str().into()), t));
        }
        v
    }

    /// The user a session was bound to by an earlier `auth.success`, if remembered.
    pub fn session_user(&self, session: &str) -> Option<Arc<str>> {
        self.sessions.get(&self.hash_str(session), Arc::clone)
    }

    fn entity_verdict(&self, key: &EntityKey, t: i64) -> Verdict {
        match self.store.get(key) {
            Some(s) => s.verdict(t, &self.scoring, self.cap(key.kind())),
            None => Verdict::allow(),
        }
    }

    fn cap(&self, kind: EntityKind) -> Action {
        let m = &self.scoring.max_action;
        match kind {
            EntityKind::Ip => m.ip,
            EntityKind::User => m.user,
            EntityKind::Session => m.session,
            EntityKind::Device => m.device,
        }
    }

    fn hash_str(&self, s: &str) -> u64 {
        self.hasher.hash_one(s)
    }

    fn bind_session(&self, event: &Event) {
        let (Some(s), Some(u)) = (&event.subject.session, &event.subject.user) else {
            return;
        };
        let n = event.name.as_str();
        let h = self.hash_str(s);
        if n == "auth.logout" {
            self.sessions.remove(&h);
        } else if n == "auth.success" || n == "mfa.success" {
            let user: Arc<str> = u.as_str().into();
            self.sessions
                .with(&h, event.millis(), || user.clone(), |v| *v = user.clone());
        }
    }

    fn entity_key(&self, kind: EntityKind, s: &Subject) -> Option<EntityKey> {
        Some(match kind {
            EntityKind::Ip => EntityKey::Ip(self.ip_key(s.ip?)),
            EntityKind::User => EntityKey::User(s.user.as_deref()?.into()),
            EntityKind::Session => EntityKey::Session(s.session.as_deref()?.into()),
            EntityKind::Device => EntityKey::Device(s.device.as_deref()?.into()),
        })
    }

    /// A hash of the entity a rule counts per, without allocating.
    fn key_hash(&self, kind: EntityKind, s: &Subject) -> Option<u64> {
        let mut h = self.hasher.build_hasher();
        match kind {
            EntityKind::Ip => {
                0u8.hash(&mut h);
                self.ip_key(s.ip?).hash(&mut h);
            }
            EntityKind::User => {
                1u8.hash(&mut h);
                s.user.as_deref()?.hash(&mut h);
            }
            EntityKind::Session => {
                2u8.hash(&mut h);
                s.session.as_deref()?.hash(&mut h);
            }
            EntityKind::Device => {
                3u8.hash(&mut h);
                s.device.as_deref()?.hash(&mut h);
            }
        }
        Some(h.finish())
    }

    fn value_hash(&self, field: ValueField, e: &Event) -> Option<u64> {
        let s = &e.subject;
        Some(match field {
            ValueField::Ip => self.hasher.hash_one(self.ip_key(s.ip?)),
            ValueField::Network => self.hasher.hash_one(mask(s.ip?, 24, 48)),
            ValueField::User => self.hash_str(s.user.as_deref()?),
            ValueField::Session => self.hash_str(s.session.as_deref()?),
            ValueField::Device => self.hash_str(s.device.as_deref()?),
            ValueField::UserAgent => self.hash_str(e.user_agent.as_deref()?),
            ValueField::Path => self.hash_str(&e.http.as_ref()?.path),
        })
    }

    fn apply(&self, r: &Compiled, e: &Event, t: i64) {
        if !r.accepts(e.status(), e.verdict.as_ref().map(|v| v.action)) {
            return;
        }
        let name = e.name.as_str();
        match r.kind {
            RuleKind::Threshold => {
                let Some(k) = self.key_hash(r.key, &e.subject) else {
                    return;
                };
                let fired = r.windows.with(
                    &k,
                    t,
                    || State::Recent(Recent::new(r.count)),
                    |st| match st {
                        State::Recent(w) => w.record(t, r.window),
                        _ => false,
                    },
                );
                self.share(r, k, 0, t);
                if fired {
                    self.fire(r, &e.subject, t, sample_of(e));
                }
            }
            RuleKind::Distinct => {
                let (Some(k), Some(v)) = (
                    self.key_hash(r.key, &e.subject),
                    r.field.and_then(|f| self.value_hash(f, e)),
                ) else {
                    return;
                };
                let n = r.windows.with(
                    &k,
                    t,
                    || State::Distinct(Distinct::new(r.count)),
                    |st| match st {
                        State::Distinct(d) => d.record(v, t, r.window),
                        _ => 0,
                    },
                );
                self.share(r, k, v, t);
                if n >= r.count {
                    self.fire(r, &e.subject, t, sample_of(e));
                }
            }
            RuleKind::Novelty => {
                let Some(k) = self.key_hash(r.key, &e.subject) else {
                    return;
                };
                let is_after = r
                    .after
                    .as_ref()
                    .is_some_and(|(on, _, _)| on.iter().any(|n| &**n == name));
                let is_on = r.on.iter().any(|n| &**n == name);
                let value = r.field.and_then(|f| self.value_hash(f, e));
                let fired = r.windows.with(
                    &k,
                    t,
                    || State::Novelty {
                        known: Distinct::new(r.remember),
                        recent: r.after.as_ref().map(|(_, c, _)| Recent::new(*c)),
                    },
                    |st| {
                        let State::Novelty { known, recent } = st else {
                            return false;
                        };
                        if is_after {
                            if let (Some(rc), Some((_, _, w))) = (recent.as_mut(), &r.after) {
                                rc.record(t, *w);
                            }
                        }
                        if !is_on {
                            return false;
                        }
                        let Some(v) = value else { return false };
                        let novel = !known.contains(v);
                        let primed = match (recent.as_ref(), &r.after) {
                            (Some(rc), Some((_, _, w))) => rc.holds(t, *w),
                            // Without a precondition, the very first value is not news.
                            _ => !known.is_empty(),
                        };
                        known.remember(v, t);
                        novel && primed
                    },
                );
                if fired {
                    self.fire(r, &e.subject, t, sample_of(e));
                }
            }
            RuleKind::Relief => {
                if r.shadow {
                    r.shadow_hits.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let Some(key) = self.entity_key(r.target, &e.subject) else {
                    return;
                };
                r.hits.fetch_add(1, Ordering::Relaxed);
                let keep = r.keep;
                self.store.update(&key, &mut |cur| {
                    let mut s = cur?;
                    s.relieve(keep, t, &self.scoring);
                    s.refresh_hold(t, &self.scoring, self.cap(key.kind()));
                    Some(s)
                });
            }
            RuleKind::Signature => {}
        }
    }

    /// Passes an observation of a threshold or distinct-count rule on to the other replicas.
    fn share(&self, r: &Compiled, key: u64, value: u64, at: i64) {
        if self.shares_windows {
            self.store.share_observation(Observation {
                rule: r.tag,
                key,
                value,
                at,
            });
        }
    }

    /// Records the other replicas' observations in this replica's windows. They count towards
    /// the next event of the key seen here, and never fire a rule by themselves: the replica
    /// that saw the event decides.
    fn take_observations(&self) {
        if !self.shares_windows {
            return;
        }
        let rules = self.rules.load();
        self.store.take_observations(&mut |o| {
            let Some(r) = rules.by_tag.get(&o.rule).map(|&i| &rules.rules[i]) else {
                return;
            };
            match r.kind {
                RuleKind::Threshold => {
                    r.windows.with(
                        &o.key,
                        o.at,
                        || State::Recent(Recent::new(r.count)),
                        |st| {
                            if let State::Recent(w) = st {
                                w.record(o.at, r.window);
                            }
                        },
                    );
                }
                RuleKind::Distinct => {
                    r.windows.with(
                        &o.key,
                        o.at,
                        || State::Distinct(Distinct::new(r.count)),
                        |st| {
                            if let State::Distinct(d) = st {
                                d.record(o.value, o.at, r.window);
                            }
                        },
                    );
                }
                _ => {}
            }
        });
    }

    fn fire(&self, r: &Compiled, subject: &Subject, t: i64, sample: Option<&str>) {
        self.fire_evidence(r, subject, t, sample, false);
    }

    fn fire_evidence(
        &self,
        r: &Compiled,
        subject: &Subject,
        t: i64,
        sample: Option<&str>,
        weak: bool,
    ) {
        if r.shadow {
            r.shadow_hits.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(key) = self.entity_key(r.target, subject) else {
            return;
        };
        if let EntityKey::Ip(ip) = key {
            if self.is_allowed_network(ip, t) {
                return;
            }
        }
        r.hits.fetch_add(1, Ordering::Relaxed);
        // Paths of events: tokens in a link. A user id (maybe a hash, which looks like a token)
        // is the entity's own name, kept.
        let sample = sample.map(|s| match subject.user.as_deref() {
            Some(u) if u == s => std::borrow::Cow::Borrowed(s),
            _ => self.redactor.text(s),
        });
        let sample = sample.as_deref();
        let evidence = if weak {
            Evidence::Weak
        } else if r.kind == RuleKind::Signature && r.score < self.scoring.throttle {
            // Rules that act on their first hit (attack tools, Log4Shell) count in full.
            Evidence::Signature
        } else {
            Evidence::Full
        };
        let blocked = self.add_to(&key, &r.id, r.score, sample, evidence, t);
        if blocked {
            if let EntityKey::Ip(ip) = key {
                self.escalate_subnet(ip, t);
            }
        }
    }

    /// Adds a rule's score to one entity, raising an alert if its action rose. Returns whether
    /// a new automatic block started.
    fn add_to(
        &self,
        key: &EntityKey,
        rule: &Arc<str>,
        score: f64,
        sample: Option<&str>,
        evidence: Evidence,
        t: i64,
    ) -> bool {
        let cap = self.cap(key.kind());
        let scoring = &self.scoring;
        let watch = self.alerts.is_some();
        let mut rise = None;
        let mut blocked = false;
        self.store.update(key, &mut |cur| {
            let before = match (&cur, watch) {
                (Some(s), true) => s.verdict(t, scoring, cap).action,
                _ => Action::Allow,
            };
            let mut s = cur.unwrap_or_default();
            blocked = s.add_evidence(rule, score, sample, evidence, t, scoring, cap);
            s.refresh_hold(t, scoring, cap);
            if watch {
                let after = s.verdict(t, scoring, cap);
                rise = (after.action > before).then_some((before, after));
            }
            Some(s)
        });
        if let Some((before, after)) = rise {
            self.alert(key, before, after, rule, t);
        }
        blocked
    }

    /// The network an address is escalated to (IPv4 /24, IPv6 /48 by default).
    pub fn subnet_of(&self, ip: IpAddr) -> IpNet {
        let sub = &self.scoring.subnet;
        match mask(ip, sub.ipv4_prefix, sub.ipv6_prefix) {
            IpAddr::V4(a) => {
                IpNet::V4(ipnet::Ipv4Net::new(a, sub.ipv4_prefix.min(32)).unwrap_or_default())
            }
            IpAddr::V6(a) => {
                IpNet::V6(ipnet::Ipv6Net::new(a, sub.ipv6_prefix.min(128)).unwrap_or_default())
            }
        }
    }

    /// Counts a new block of `ip` towards its network; blocks the network once enough of its
    /// addresses were blocked within the window (never a network on the allow-list).
    fn escalate_subnet(&self, ip: IpAddr, t: i64) {
        let sub = &self.scoring.subnet;
        if !sub.enabled || sub.count < 2 {
            return;
        }
        let net = self.subnet_of(ip);
        if self.allowed_nets.overlaps(&net, t) {
            return;
        }
        let n = self.subnets.with(
            &net,
            t,
            || Distinct::new(sub.count as usize),
            |d| d.record(self.hasher.hash_one(ip), t, sub.window.millis()),
        );
        if n < sub.count as usize {
            return;
        }
        let key = EntityKey::Net(net);
        let rule: Arc<str> = Arc::clone(&self.subnet_rule);
        let sample = format!("{n} addresses blocked within {}", sub.window);
        let score = self.scoring.block.max(0.0);
        self.add_to(&key, &rule, score, Some(&sample), Evidence::Full, t);
    }

    fn is_allowed_network(&self, ip: IpAddr, t: i64) -> bool {
        self.allowed_nets.contains(ip, t)
    }

    /// Whether `ip` is in a network allow-listed at `t` (configured, or added at run time).
    pub fn is_allowed(&self, ip: IpAddr, t: i64) -> bool {
        self.allowed_nets
            .contains(crate::identify::normalize(ip), t)
    }

    /// The networks allow-listed at `t`: configured ones first, then those added at run time.
    pub fn allowed_networks(&self, t: i64) -> Vec<AllowedNetwork> {
        self.allowed_nets.list(t)
    }

    /// Allow-lists `net` until `until` (ms since the epoch; `None`: until removed), from
    /// the next lookup on. Adding a network already added renews it.
    ///
    /// # Errors
    /// See [`AllowListError`]: a network too broad, a configured one, or
    /// [`MAX_ADDED_NETWORKS`] added already.
    pub fn allow_network(
        &self,
        net: IpNet,
        until: Option<i64>,
        t: i64,
    ) -> Result<(), AllowListError> {
        self.allowed_nets.add(net, until, t)
    }

    /// Removes a network added at run time.
    ///
    /// # Errors
    /// [`AllowListError::Configured`] for a configured network, [`AllowListError::NotFound`]
    /// for one not on the list.
    pub fn disallow_network(&self, net: IpNet, t: i64) -> Result<(), AllowListError> {
        self.allowed_nets.remove(net, t)
    }

    /// Hands a `siem.alert` for an entity whose action rose to the alert hook.
    fn alert(&self, key: &EntityKey, before: Action, after: Verdict, rule: &str, t: i64) {
        let Some(hook) = &self.alerts else {
            return;
        };
        let subject = match key {
            EntityKey::Ip(ip) => Subject::ip(*ip),
            EntityKey::Net(net) => Subject::ip(net.network()),
            EntityKey::User(u) => Subject::user(&**u),
            EntityKey::Session(s) => Subject::default().with_session(&**s),
            EntityKey::Device(d) => Subject::default().with_device(&**d),
        };
        let time = jiff::Timestamp::from_millisecond(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let mut event = Event::new_at(EventName::SIEM_ALERT, time)
            .subject(subject)
            .attr("entity", key.to_string())
            .attr("action", after.action.as_str())
            .attr("previous_action", before.as_str())
            .attr("score", format!("{:.1}", after.score))
            .attr("rules", after.reasons.join(","))
            .attr("trigger", rule);
        event.verdict = Some(after);
        hook(event);
    }

    /// Entities with a verdict above `Allow` at time `t`, highest score first.
    pub fn offenders(&self, t: i64) -> Vec<Offender> {
        let mut out = Vec::new();
        self.store.for_each(&mut |k, s| {
            let o = self.offender(k, s, t);
            if o.verdict.action > Action::Allow {
                out.push(o);
            }
        });
        out.sort_by(|a, b| {
            b.verdict
                .score
                .total_cmp(&a.verdict.score)
                .then_with(|| a.entity.cmp(&b.entity))
        });
        out
    }

    /// Everything known about one entity at time `t`.
    pub fn explain(&self, key: &EntityKey, t: i64) -> Option<Offender> {
        self.store.get(key).map(|s| self.offender(key, &s, t))
    }

    fn offender(&self, k: &EntityKey, s: &EntityState, t: i64) -> Offender {
        let mut s2 = s.clone();
        s2.decay(t, &self.scoring);
        let mut contributions = s2.contributions;
        contributions.sort_by(|a, b| b.score.total_cmp(&a.score));
        let ts = |ms: i64| jiff::Timestamp::from_millisecond(ms).ok();
        Offender {
            entity: k.clone(),
            verdict: s.verdict(t, &self.scoring, self.cap(k.kind())),
            contributions,
            blocked_until: (s.blocked_until > t).then(|| ts(s.blocked_until)).flatten(),
            offenses: s.offenses,
            last_seen: ts(s.last_seen),
        }
    }

    /// Blocks an entity until `until` (ms) by operator decision, whatever its kind.
    pub fn block(&self, key: &EntityKey, until: i64, t: i64) {
        self.store.update(key, &mut |cur| {
            let mut s = cur.unwrap_or_default();
            s.decay(t, &self.scoring);
            s.blocked_until = until;
            s.manual_block = true;
            s.allow_until = 0;
            s.last_seen = s.last_seen.max(t);
            s.refresh_hold(t, &self.scoring, self.cap(key.kind()));
            Some(s)
        });
    }

    /// Lifts any block and clears the entity's score and windows.
    pub fn unblock(&self, key: &EntityKey) {
        self.store.remove(key);
        self.forget_windows(key);
    }

    /// Allow-lists an entity until `until` (ms): no action against it, no score added.
    pub fn allow(&self, key: &EntityKey, until: i64, t: i64) {
        self.forget_windows(key);
        self.store.update(key, &mut |cur| {
            let mut s = cur.unwrap_or_default();
            s.score = 0.0;
            s.at = t;
            s.contributions.clear();
            s.blocked_until = 0;
            s.manual_block = false;
            s.allow_until = until;
            s.last_seen = s.last_seen.max(t);
            s.refresh_hold(t, &self.scoring, self.cap(key.kind()));
            Some(s)
        });
    }

    fn forget_windows(&self, key: &EntityKey) {
        let subject = match key {
            EntityKey::Net(net) => {
                self.subnets.remove(net);
                return;
            }
            EntityKey::Ip(ip) => Subject::ip(*ip),
            EntityKey::User(u) => Subject::user(&**u),
            EntityKey::Session(s) => Subject::default().with_session(&**s),
            EntityKey::Device(d) => Subject::default().with_device(&**d),
        };
        for r in &self.rules.load().rules {
            if r.key == key.kind() {
                if let Some(h) = self.key_hash(r.key, &subject) {
                    r.windows.remove(&h);
                }
            }
        }
    }

    /// Replaces the rules in force with `rules`, compiled whole first: on error nothing
    /// changes. Events and inspections under way finish with the set they loaded; each sees
    /// one whole set. Window state of a rule that keeps its id and the shape of its state
    /// moves over, a rule whose shape changed starts fresh (see [`ReloadReport`]); entity
    /// scores and blocks live in the store and are untouched.
    ///
    /// The scoring (`[scoring]`) is read when the engine is built: a set whose scoring differs
    /// from the one in force is refused (restart to change it).
    ///
    /// # Errors
    /// The set does not validate, a custom signature pack does not compile, or its scoring
    /// differs.
    pub fn reload(&self, rules: &RuleSet) -> Result<ReloadReport, ConfigError> {
        let _one = self.reloading.lock();
        if rules.scoring != self.scoring {
            return Err(ConfigError::new(
                "[scoring] differs from the scoring in force; scoring changes need a restart",
            )
            .field("scoring"));
        }
        let old = self.rules.load_full();
        let (new, report) = ruleset::Rules::compile(rules, &self.config, Some(&old))?;
        self.rules.store(Arc::new(new));
        Ok(report)
    }

    /// The rules in force: id, kind and whether in shadow mode, in file order.
    pub fn rules(&self) -> Vec<RuleInfo> {
        self.rules.load().info()
    }

    /// The rule set in force, as given to [`Engine::new`] or the last [`Engine::reload`].
    pub fn rule_set(&self) -> RuleSet {
        self.rules.load().source.clone()
    }

    /// Counters and the sizes of every bounded structure.
    pub fn stats(&self) -> EngineStats {
        self.store.sync();
        let rules = self.rules.load();
        EngineStats {
            events: self.events.load(Ordering::Relaxed),
            rules: rules
                .rules
                .iter()
                .map(|r| RuleStats {
                    id: r.id.to_string(),
                    hits: r.hits.load(Ordering::Relaxed),
                    shadow_hits: r.shadow_hits.load(Ordering::Relaxed),
                })
                .collect(),
            entities: self.store.len(),
            entity_capacity: self.store.capacity(),
            max_window_keys: rules
                .rules
                .iter()
                .map(|r| r.windows.len() as u64)
                .max()
                .unwrap_or(0),
            window_capacity: rules
                .rules
                .iter()
                .map(|r| r.windows.capacity() as u64)
                .max()
                .unwrap_or(0),
            sessions: self.sessions.len() as u64,
            session_capacity: self.sessions.capacity() as u64,
            window_evictions: rules.rules.iter().map(|r| r.windows.evicted()).sum(),
            decisions: self.store.decisions(),
            shared: self.store.shared(),
            verdicts: {
                let n = |a: Action| self.verdicts[a as usize].load(Ordering::Relaxed);
                VerdictCounts {
                    allow: n(Action::Allow),
                    step_up: n(Action::StepUp),
                    throttle: n(Action::Throttle),
                    block: n(Action::Block),
                }
            },
        }
    }
}

fn sample_of(e: &Event) -> Option<&str> {
    // A request is best told by its path; an application event by whom it was about.
    match (&e.http, e.name == EventName::HTTP_REQUEST) {
        (Some(h), true) => Some(&h.path),
        (h, _) => e
            .subject
            .user
            .as_deref()
            .or(h.as_ref().map(|h| h.path.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    /// The table `wants_request` reads agrees with asking every rule, for every status and
    /// gate, and a status outside the table still gets an answer.
    #[test]
    fn wants_request_table_matches_the_rules() {
        let e = Engine::new(
            &RuleSet::default(),
            Arc::new(MemoryStore::default()),
            EngineConfig::default(),
        )
        .unwrap();
        let rules = e.rules.load();
        assert!(!rules.request_rules.is_empty());
        let slow = |status: Option<u16>, gate: Action| {
            rules
                .request_rules
                .iter()
                .any(|&i| rules.rules[i].accepts(status, Some(gate)))
        };
        let mut wanted = 0;
        for status in (0..=1100).map(Some).chain([None]) {
            for gate in ACTIONS {
                let w = e.wants_request(status, gate);
                assert_eq!(w, slow(status, gate), "status {status:?}, gate {gate:?}");
                wanted += usize::from(w);
            }
        }
        // The default pack reads 404s (probing); it must not read every 200.
        assert!(e.wants_request(Some(404), Action::Allow));
        assert!(!e.wants_request(Some(200), Action::Allow));
        assert!(wanted > 0);
    }
}
