//! The [`Siem`] handle: engine, clock and event pipeline behind one cheap clone.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::engine::{
    AllowListError, AllowedNetwork, Clock, ConfigError, Engine, EngineConfig, EngineStats,
    EntityKey, Offender, RuleSet, SystemClock, Verdict,
};
use crate::event::{Event, Redactor, Subject};
use crate::layer::SiemLayer;
use crate::pipeline::{FlushGuard, Pipeline, PipelineConfig, PipelineStats};
use crate::sink::Sink;
use crate::store::{MemoryStore, RiskStore};

/// The SIEM: rules, per-entity risk and the event pipeline, shared by every clone.
///
/// ```
/// use tower_siem::{Event, Siem};
///
/// let siem = Siem::builder().build().unwrap();
/// for _ in 0..6 {
///     siem.fire(Event::new("auth.failure").user("alice"));
/// }
/// // The account is under attack: the next login must pass a second factor.
/// let v = siem.fire(Event::new("auth.success").user("alice"));
/// assert!(v.is_suspicious());
/// assert_eq!(v.reasons, ["auth.bruteforce.user"]);
/// ```
#[derive(Clone)]
pub struct Siem {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    /// The rules file and the last reload (see [`crate::reload`]).
    pub(crate) reload: crate::reload::ReloadState,
    pipeline: Pipeline,
    clock: Arc<dyn Clock>,
    redactor: Redactor,
    /// Whether any sink takes `http.request` events (an alert-only webhook does not).
    records_requests: bool,
}

impl fmt::Debug for Siem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Siem")
            .field("engine", &self.inner.engine)
            .finish_non_exhaustive()
    }
}

/// Why a [`Siem`] could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// The rules were refused.
    Rules(ConfigError),
    /// An option was out of range.
    Invalid(String),
    /// The pipeline's disk spool could not be opened.
    Spool(std::io::Error),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Rules(e) => write!(f, "invalid rules: {e}"),
            BuildError::Invalid(m) => f.write_str(m),
            BuildError::Spool(e) => write!(f, "event spool: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Rules(e) => Some(e),
            BuildError::Invalid(_) => None,
            BuildError::Spool(e) => Some(e),
        }
    }
}

impl From<ConfigError> for BuildError {
    fn from(e: ConfigError) -> Self {
        BuildError::Rules(e)
    }
}

/// Builds a [`Siem`]. Every option has a safe default.
#[must_use]
pub struct SiemBuilder {
    rules: Option<RuleSet>,
    rules_file: Option<std::path::PathBuf>,
    store: Option<Arc<dyn RiskStore>>,
    clock: Arc<dyn Clock>,
    sinks: Vec<Box<dyn Sink>>,
    pipeline: PipelineConfig,
    engine: EngineConfig,
    entity_capacity: u64,
    decision_capacity: Option<u64>,
    redactor: Redactor,
}

impl fmt::Debug for SiemBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiemBuilder")
            .field(
                "sinks",
                &self
                    .sinks
                    .iter()
                    .map(|s| s.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .field("engine", &self.engine)
            .field("entity_capacity", &self.entity_capacity)
            .finish_non_exhaustive()
    }
}

impl Default for SiemBuilder {
    fn default() -> Self {
        SiemBuilder {
            rules: None,
            rules_file: None,
            store: None,
            clock: Arc::new(SystemClock),
            sinks: Vec::new(),
            pipeline: PipelineConfig::default(),
            engine: EngineConfig::default(),
            entity_capacity: 100_000,
            decision_capacity: None,
            redactor: Redactor::default(),
        }
    }
}

impl SiemBuilder {
    /// Uses exactly these rules instead of the built-in pack ([`RuleSet::default`]); start
    /// from it to keep it (`RuleSet::default().with_rule(..)`). [`build`](Self::build)
    /// refuses a set that does not validate, including one with no active rule.
    pub fn rules(mut self, rules: RuleSet) -> Self {
        self.rules = Some(rules);
        self.rules_file = None;
        self
    }

    /// Reads the rules from a TOML file, which extends the built-in pack: a rule with a
    /// built-in id overrides the fields it names (`enabled = false` switches it off), a new id
    /// adds a rule, `[scoring]` fields override the built-in ones, and `builtin = false` at
    /// the top drops the pack (see [`RuleSet`]).
    ///
    /// # Errors
    /// The file cannot be read or is invalid (a bound exceeded, no active rule left, …); the
    /// error names the line and field.
    ///
    /// The SIEM remembers the path: [`Siem::reload_rules_file`] and the admin API's
    /// `POST /api/rules/reload` read it again.
    pub fn rules_file(self, path: impl AsRef<Path>) -> Result<Self, BuildError> {
        let mut b = self.rules(RuleSet::from_file(path.as_ref())?);
        b.rules_file = Some(path.as_ref().to_owned());
        Ok(b)
    }

    /// Keeps entity risk in this store instead of the in-process default.
    pub fn store(mut self, store: impl RiskStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The most entities the default in-process store holds (default 100,000).
    pub fn entity_capacity(mut self, n: u64) -> Self {
        self.entity_capacity = n;
        self
    }

    /// The most decided entities the default in-process store holds (blocked, allow-listed,
    /// throttled, or with a repeat-offender history; default: the entity capacity). Others'
    /// traffic never evicts them; past this bound the least severe that ends soonest goes
    /// first, counted in `stats().engine.decisions.evicted`.
    pub fn decision_capacity(mut self, n: u64) -> Self {
        self.decision_capacity = Some(n.max(1));
        self
    }

    /// Networks never acted against (offices, monitors, partners): requests from inside them
    /// are neither scored nor gated by their address, and subnet escalation never blocks a
    /// network that overlaps them. User, session and device verdicts still apply.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] for an entry that is not an address or CIDR.
    pub fn allow_networks<I, S>(mut self, cidrs: I) -> Result<Self, BuildError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for c in cidrs {
            let text = c.as_ref().trim();
            let net = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|e| {
                    BuildError::Invalid(format!(
                        "invalid allow-listed network {text:?}: {e}; expected an address or \
                         CIDR such as \"192.0.2.0/24\""
                    ))
                })?;
            self.engine.allowed_networks.push(net);
        }
        Ok(self)
    }

    /// The most keys each rule keeps window state for (default 65,536).
    pub fn window_capacity(mut self, n: usize) -> Self {
        self.engine.window_capacity = n.max(1);
        self
    }

    /// The most sessions remembered as belonging to a user (default 65,536).
    pub fn session_capacity(mut self, n: usize) -> Self {
        self.engine.session_capacity = n.max(1);
        self
    }

    /// IPv6 clients are keyed by this prefix (default /64): the one place the key prefix is
    /// set, for the layer and for events fired from anywhere else.
    ///
    /// A typical residential or cloud customer controls a whole /64 (often a /56 or /48), so
    /// keying by the full address would let one attacker appear as 2^64 clients.
    ///
    /// ```
    /// use tower_siem::Siem;
    ///
    /// let siem = Siem::builder().ipv6_prefix(56)?.build()?;
    /// assert_eq!(
    ///     siem.engine().ip_key("2001:db8:0:ff::1".parse()?),
    ///     "2001:db8::".parse::<std::net::IpAddr>()?,
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`BuildError::Invalid`] unless `bits` is in `1..=128`.
    pub fn ipv6_prefix(mut self, bits: u8) -> Result<Self, BuildError> {
        self.engine.ipv6_prefix = crate::identify::IdentifyError::check_prefix(true, bits)
            .map_err(|e| BuildError::Invalid(e.to_string()))?;
        Ok(self)
    }

    /// IPv4 clients are keyed by this prefix (default /32, the whole address). A shorter one
    /// (say /24) groups neighbours, at the risk of grouping an office with its attacker.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] unless `bits` is in `1..=32`.
    pub fn ipv4_prefix(mut self, bits: u8) -> Result<Self, BuildError> {
        self.engine.ipv4_prefix = crate::identify::IdentifyError::check_prefix(false, bits)
            .map_err(|e| BuildError::Invalid(e.to_string()))?;
        Ok(self)
    }

    /// Where "now" comes from (a [`ManualClock`](crate::engine::ManualClock) in tests).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Adds an event destination.
    pub fn sink(mut self, sink: impl Sink) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Queue sizes, batching, retries and overflow policy of the event pipeline.
    pub fn pipeline(mut self, config: PipelineConfig) -> Self {
        self.pipeline = config;
        self
    }

    /// What may be recorded of requests, and how ids are hashed.
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// Builds the SIEM. Starts the pipeline's worker thread when there are sinks, opening its
    /// disk spool if one is configured.
    ///
    /// # Errors
    /// Invalid rules (with line and field) or options; a spool that cannot be opened.
    pub fn build(self) -> Result<Siem, BuildError> {
        let rules = self.rules.unwrap_or_default();
        let store = self.store.unwrap_or_else(|| {
            Arc::new(MemoryStore::with_limits(
                self.entity_capacity,
                self.decision_capacity.unwrap_or(self.entity_capacity),
                Duration::from_secs(24 * 3600),
            ))
        });
        let engine = Engine::new(&rules, store, self.engine)?.with_redactor(self.redactor.clone());
        let pipeline = if self.sinks.is_empty() {
            Pipeline::disabled()
        } else {
            Pipeline::try_new(self.sinks, self.pipeline).map_err(BuildError::Spool)?
        };
        // Entities whose action rises become `siem.alert` events for the sinks.
        let engine = if pipeline.takes(&crate::EventName::SIEM_ALERT) {
            let alerts = pipeline.clone();
            engine.with_alerts(move |alert| alerts.emit(alert))
        } else {
            engine
        };
        let records_requests = pipeline.takes(&crate::EventName::HTTP_REQUEST);
        Ok(Siem {
            inner: Arc::new(Inner {
                engine,
                reload: crate::reload::ReloadState {
                    file: parking_lot::Mutex::new(self.rules_file),
                    ..Default::default()
                },
                pipeline,
                clock: self.clock,
                redactor: self.redactor,
                records_requests,
            }),
        })
    }
}

/// Counters of the engine and the pipeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiemStats {
    /// Events, rule hits and structure sizes.
    pub engine: EngineStats,
    /// Delivery accounting per sink.
    pub pipeline: PipelineStats,
}

impl Siem {
    /// A builder with the built-in rule pack and no sinks.
    pub fn builder() -> SiemBuilder {
        SiemBuilder::default()
    }

    /// The tower layer for this SIEM.
    pub fn layer(&self) -> SiemLayer {
        SiemLayer::new(self.clone())
    }

    /// Applies an event and returns the verdict for its subject *after* it was applied; then
    /// hands the event to the pipeline (never waiting on it).
    ///
    /// An event without an explicit time ([`Event::at`]) is stamped with the SIEM's clock.
    /// Rules see the event as given; sinks get it through [`Redactor::event`]: attributes
    /// under a secret name (`new_password`, `reset_token`, …) and secret-shaped values are
    /// replaced.
    pub fn fire(&self, mut event: Event) -> Verdict {
        if let Some(u) = event.subject.user.take() {
            event.subject.user = Some(self.inner.redactor.user_id_owned(u));
        }
        self.fire_prepared(event)
    }

    /// [`Siem::fire`] for an event whose user id is already in stored form.
    pub(crate) fn fire_prepared(&self, mut event: Event) -> Verdict {
        if !event.has_explicit_time() {
            event.time = self.now();
        }
        let v = self.inner.engine.ingest(&event);
        self.inner.engine.count_verdict(v.action);
        #[cfg(feature = "metrics")]
        crate::metrics::event(event.name.as_str(), v.action);
        if self.inner.pipeline.is_enabled() {
            // The rules saw the event as fired; the sinks get it redacted.
            self.inner.redactor.event(&mut event);
            event.verdict = Some(v.clone());
            self.inner.pipeline.emit(event);
        }
        v
    }

    /// Emits an event already behind an `Arc` (see `Pipeline::take_spent`).
    pub(crate) fn emit_shared(&self, event: crate::event::SharedEvent) {
        self.inner.pipeline.emit_shared(event);
    }

    /// A spent event to fill in, from the pipeline's pool.
    pub(crate) fn take_spent(&self) -> Option<crate::event::SharedEvent> {
        self.inner.pipeline.take_spent()
    }

    /// Whether the layer's `http.request` events go to any sink (else it skips building them).
    pub(crate) fn records_requests(&self) -> bool {
        self.inner.records_requests
    }

    /// The verdict for a subject now, without recording anything.
    pub fn verdict_for(&self, subject: &Subject) -> Verdict {
        if self.inner.redactor.hashes_user_ids() && subject.user.is_some() {
            let mut s = subject.clone();
            s.user = s.user.map(|u| self.inner.redactor.user_id_owned(u));
            return self.inner.engine.verdict_at(&s, self.now_millis());
        }
        self.inner.engine.verdict_at(subject, self.now_millis())
    }

    /// The engine (rules, inspection, stats).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The redaction policy.
    pub fn redactor(&self) -> &Redactor {
        &self.inner.redactor
    }

    /// Milliseconds since the epoch on the SIEM's clock.
    pub fn now_millis(&self) -> i64 {
        self.inner.clock.now_millis()
    }

    /// Now on the SIEM's clock.
    pub fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::from_millisecond(self.now_millis()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    /// Entities stepped up, throttled or blocked now, highest score first, with the rules
    /// behind each.
    pub fn offenders(&self) -> Vec<Offender> {
        self.inner.engine.offenders(self.now_millis())
    }

    /// Everything known about one entity.
    pub fn explain(&self, entity: &EntityKey) -> Option<Offender> {
        self.inner
            .engine
            .explain(&self.normalize(entity), self.now_millis())
    }

    /// Blocks an entity for `duration` (operator decision; any entity kind).
    pub fn block(&self, entity: &EntityKey, duration: Duration) {
        let now = self.now_millis();
        let until = now.saturating_add(duration.as_millis().min(i64::MAX as u128) as i64);
        self.inner.engine.block(&self.normalize(entity), until, now);
    }

    /// Lifts a block and clears the entity's score.
    pub fn unblock(&self, entity: &EntityKey) {
        self.inner.engine.unblock(&self.normalize(entity));
    }

    /// Never acts against an entity for `duration`, and adds no score to it meanwhile.
    pub fn allow(&self, entity: &EntityKey, duration: Duration) {
        let now = self.now_millis();
        let until = now.saturating_add(duration.as_millis().min(i64::MAX as u128) as i64);
        self.inner.engine.allow(&self.normalize(entity), until, now);
    }

    /// Allow-lists a network (an office, a monitor, a partner) from now on, for `duration`
    /// or, with `None`, until [`disallow_network`](Self::disallow_network): requests from it
    /// are neither scored nor gated by their address, as with
    /// [`SiemBuilder::allow_networks`]. Adding a network added already renews it. Returns the
    /// network as listed (host bits cleared).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_siem::Siem;
    ///
    /// let siem = Siem::builder().allow_networks(["10.0.0.0/8"])?.build()?;
    /// siem.allow_network("198.51.100.0/24", Some(Duration::from_secs(3600)))?;
    /// assert_eq!(siem.allowed_networks().len(), 2);
    /// // Too broad: nothing in it would ever be acted against.
    /// assert!(siem.allow_network("64.0.0.0/4", None).is_err());
    /// siem.disallow_network("198.51.100.0/24")?;
    /// // A configured network stays.
    /// assert!(siem.disallow_network("10.0.0.0/8").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Not an address or CIDR; a public network broader than IPv4 /8 or IPv6 /24, or one that
    /// with the others would cover every address; a configured network;
    /// [`MAX_ADDED_NETWORKS`](crate::engine::MAX_ADDED_NETWORKS) networks added already.
    pub fn allow_network(
        &self,
        cidr: &str,
        duration: Option<Duration>,
    ) -> Result<AllowedNetwork, AllowListError> {
        let net = crate::engine::allowlist_parse(cidr)?;
        let now = self.now_millis();
        let until =
            duration.map(|d| now.saturating_add(d.as_millis().min(i64::MAX as u128) as i64));
        self.inner.engine.allow_network(net, until, now)?;
        Ok(self
            .allowed_networks()
            .into_iter()
            .find(|n| n.net == crate::engine::allowlist_canonical(&net))
            .unwrap_or(AllowedNetwork::new(
                net,
                crate::engine::NetSource::Admin,
                until,
            )))
    }

    /// Removes a network added by [`allow_network`](Self::allow_network) (or the admin API);
    /// the gate acts on it again from the next request.
    ///
    /// # Errors
    /// Not an address or CIDR; a configured network; one not on the list.
    pub fn disallow_network(&self, cidr: &str) -> Result<(), AllowListError> {
        let net = crate::engine::allowlist_parse(cidr)?;
        self.inner.engine.disallow_network(net, self.now_millis())
    }

    /// The networks allow-listed now: the configured ones first, then those added at run time
    /// (expired ones left out).
    pub fn allowed_networks(&self) -> Vec<AllowedNetwork> {
        self.inner.engine.allowed_networks(self.now_millis())
    }

    /// The entity as the engine keys it: an address masked to its prefix, a user id hashed
    /// when the redactor hashes them.
    pub(crate) fn normalize(&self, entity: &EntityKey) -> EntityKey {
        match entity {
            EntityKey::Ip(ip) => EntityKey::Ip(self.inner.engine.ip_key(*ip)),
            EntityKey::Net(net) => EntityKey::Net(net.trunc()),
            EntityKey::User(u) if self.inner.redactor.hashes_user_ids() => {
                EntityKey::User(self.inner.redactor.hash_id(u).into())
            }
            other => other.clone(),
        }
    }

    /// Subscribes to the events recorded from now on, exactly as the sinks get them (redacted):
    /// the admin API's live feed. `None` when there are no sinks (nothing is recorded then),
    /// or when [`MAX_FEED_SUBSCRIBERS`](crate::pipeline::MAX_FEED_SUBSCRIBERS) are subscribed
    /// already. Costs the request path nothing while nobody is subscribed; a subscriber that
    /// falls [`FEED_CAPACITY`](crate::pipeline::FEED_CAPACITY) events behind skips the oldest
    /// and is told how many.
    pub fn subscribe(&self) -> Option<crate::pipeline::Subscription> {
        self.inner.pipeline.subscribe()
    }

    /// Whether events are recorded anywhere (there are sinks).
    #[cfg(feature = "dashboard")]
    pub(crate) fn records_events(&self) -> bool {
        self.inner.pipeline.is_enabled()
    }

    /// Engine counters and per-sink delivery accounting.
    pub fn stats(&self) -> SiemStats {
        SiemStats {
            engine: self.inner.engine.stats(),
            pipeline: self.inner.pipeline.stats(),
        }
    }

    /// Waits until every event emitted so far is delivered, or `timeout` passes. Returns
    /// whether all sinks caught up. From async code, prefer [`Siem::flush_async`].
    pub fn flush(&self, timeout: Duration) -> bool {
        self.inner.pipeline.flush(timeout)
    }

    /// [`Siem::flush`] for async code.
    pub async fn flush_async(&self, timeout: Duration) -> bool {
        self.inner.pipeline.flush_async(timeout).await
    }

    /// Stops the pipeline, delivering what it can within `deadline`; what is left is counted
    /// as dropped.
    pub fn shutdown(&self, deadline: Duration) -> PipelineStats {
        self.inner.pipeline.shutdown(deadline)
    }

    /// A guard that shuts the pipeline down (with `deadline`) when dropped: hold it in `main`.
    pub fn guard(&self, deadline: Duration) -> FlushGuard {
        self.inner.pipeline.guard(deadline)
    }
}
