//! The fleet detector (features `nats` and `redis`): the rules run again, in the background,
//! over the events of every replica.
//!
//! Each replica's [`NatsSink`](crate::sink::NatsSink) publishes its events to a JetStream
//! stream. A [`FleetDetector`] reads that stream with a durable consumer and feeds every event
//! to an engine of its own, whose store is a [`RedisStore`] in the replicas' namespace. So it
//! sees what no single replica sees (a credential-stuffing run spread round-robin over three
//! replicas, a password guessed from many networks), and its decisions are written to Redis,
//! from where every replica's gate applies them: its blocks always, and its step-ups and
//! throttles when its store shares scores
//! ([`RedisStoreBuilder::share_scores`](crate::store::RedisStoreBuilder::share_scores)).
//!
//! Delivery: an event is acknowledged only after the decisions it led to are written to Redis,
//! so a detector that stops (or crashes) is given the unacknowledged events again when it
//! starts, and never the acknowledged ones. Events seen twice (redelivered before their
//! acknowledgement landed) are recognised by their id and counted once.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy};
use futures_util::StreamExt;

use crate::engine::RuleSet;
use crate::store::RedisStore;
use crate::{Event, Siem};

/// Reads the replicas' events from JetStream and runs the rules over the whole fleet; see the
/// [module docs](self).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use tower_siem::detect::FleetDetector;
/// use tower_siem::store::RedisStore;
///
/// let store = RedisStore::builder("redis://127.0.0.1:6379/")
///     .namespace("shop")
///     .share_scores(true) // its step-ups and throttles too, not only its blocks
///     .build()?;
/// let detector = FleetDetector::builder("nats://127.0.0.1:4222", store)
///     .stream("SIEM_EVENTS")
///     .consumer("tower-siem-detect")
///     .build()?;
/// detector.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(()) }
/// ```
pub struct FleetDetector {
    siem: Siem,
    store: RedisStore,
    config: Config,
    counters: Arc<Counters>,
}

#[derive(Clone, Debug)]
struct Config {
    /// Never printed: it may hold a user and password.
    url: String,
    connection: crate::sink::nats::Connection,
    stream: String,
    subject_prefix: String,
    consumer: String,
    batch: usize,
    store_timeout: Duration,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    applied: AtomicU64,
    duplicates: AtomicU64,
    malformed: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
}

/// Counters of a [`FleetDetector`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DetectorStats {
    /// Messages read from the stream.
    pub received: u64,
    /// Events run through the rules.
    pub applied: u64,
    /// Events seen before (redelivered), not run again.
    pub duplicates: u64,
    /// Messages that were not a native-format event (acknowledged, so not read again).
    pub malformed: u64,
    /// Messages acknowledged (after their decisions were written to Redis).
    pub acked: u64,
    /// Failed reads, acknowledgements or writes (the run goes on after each).
    pub errors: u64,
}

/// Errors of a [`FleetDetector`].
#[derive(Debug)]
pub struct DetectError(String);

impl fmt::Display for DetectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DetectError {}

/// Builds a [`FleetDetector`]; see [`FleetDetector::builder`].
pub struct FleetDetectorBuilder {
    store: RedisStore,
    rules: RuleSet,
    config: Config,
}

impl FleetDetectorBuilder {
    /// The JetStream stream the replicas' `NatsSink` writes to (default `SIEM_EVENTS`). It is
    /// created, as the sink would, when absent.
    pub fn stream(mut self, name: impl Into<String>) -> Self {
        self.config.stream = name.into();
        self
    }

    /// The replicas' subject prefix (default `siem.events`), for creating the stream.
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.subject_prefix = prefix.into();
        self
    }

    /// The durable consumer's name (default `tower-siem-detect`): a detector restarted with
    /// the same name resumes after the last event it acknowledged.
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.config.consumer = name.into();
        self
    }

    /// The rules to run (default: the built-in pack, as the replicas run it).
    pub fn rules(mut self, rules: RuleSet) -> Self {
        self.rules = rules;
        self
    }

    /// Events read and acknowledged at a time (default 256).
    pub fn batch(mut self, n: usize) -> Self {
        self.config.batch = n.max(1);
        self
    }

    /// How long a batch waits for its decisions to be written to Redis before it is left
    /// unacknowledged, to be read again (default 5 s).
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.config.store_timeout = timeout;
        self
    }

    /// Refuses to connect to NATS without TLS, as
    /// [`NatsSink::require_tls`](crate::sink::NatsSink::require_tls).
    pub fn require_tls(mut self, on: bool) -> Self {
        self.config.connection.require_tls = on;
        self
    }

    /// Trusts the certificate authority in `pem` instead of the system's roots, as
    /// [`NatsSink::tls_root_certificate`](crate::sink::NatsSink::tls_root_certificate);
    /// implies TLS.
    ///
    /// # Errors
    ///
    /// When `pem` holds no usable certificate.
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Result<Self, DetectError> {
        let pem = pem.into();
        crate::sink::nats::tls::roots(&pem).map_err(|e| DetectError(format!("detector: {e}")))?;
        self.config.connection.root = Some(Arc::new(pem));
        Ok(self)
    }

    /// Presents this client certificate and key (PEM) to the NATS server, as
    /// [`NatsSink::tls_client_certificate`](crate::sink::NatsSink::tls_client_certificate).
    ///
    /// # Errors
    ///
    /// When `cert_pem` holds no certificate or `key_pem` no private key.
    pub fn tls_client_certificate(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Result<Self, DetectError> {
        let pair = crate::sink::nats::tls::ClientCert::new(cert_pem.into(), key_pem.into())
            .map_err(|e| DetectError(format!("detector: {e}")))?;
        self.config.connection.client_cert = Some(Arc::new(pair));
        Ok(self)
    }

    /// Authenticates to NATS with this token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.config.connection.token = Some(token.into().into());
        self
    }

    /// Authenticates to NATS as the NKey user whose seed this is, as
    /// [`NatsSink::nkey`](crate::sink::NatsSink::nkey).
    ///
    /// # Errors
    ///
    /// When `seed` is not a user NKey seed.
    pub fn nkey(mut self, seed: impl Into<String>) -> Result<Self, DetectError> {
        let seed = seed.into();
        crate::sink::nats::check_seed(&seed).map_err(|e| DetectError(format!("detector: {e}")))?;
        self.config.connection.nkey = Some(seed.into());
        Ok(self)
    }

    /// Authenticates to NATS with the credentials file at `path`, read when connecting, as
    /// [`NatsSink::credentials_file`](crate::sink::NatsSink::credentials_file).
    pub fn credentials_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.connection.credentials_file = Some(path.into());
        self
    }

    /// Builds the detector's engine. Nothing connects until [`FleetDetector::run`].
    pub fn build(self) -> Result<FleetDetector, DetectError> {
        crate::sink::nats::server_of(&self.config.url)
            .map_err(|e| DetectError(format!("detector: {e}")))?;
        if self.config.consumer.is_empty()
            || self
                .config
                .consumer
                .contains(|c: char| c.is_whitespace() || matches!(c, '.' | '*' | '>'))
        {
            return Err(DetectError(format!(
                "detector: consumer name {:?} must be non-empty, without spaces, `.`, `*` or `>`",
                self.config.consumer
            )));
        }
        let siem = Siem::builder()
            .rules(self.rules)
            .store(self.store.clone())
            .build()
            .map_err(|e| DetectError(format!("detector: {e}")))?;
        Ok(FleetDetector {
            siem,
            store: self.store,
            config: self.config,
            counters: Arc::default(),
        })
    }
}

/// How long a batch waits for more events already on their way before it is acknowledged.
const GATHER: Duration = Duration::from_millis(2);
/// How long one pull request waits for events (a stop takes at most this long).
const PULL: Duration = Duration::from_millis(500);

/// Event ids remembered to recognise a redelivered event.
const SEEN: u64 = 200_000;

impl FleetDetector {
    /// A detector reading JetStream at `nats_url` and sharing its decisions through `store`
    /// (a [`RedisStore`] in the replicas' namespace).
    pub fn builder(nats_url: impl Into<String>, store: RedisStore) -> FleetDetectorBuilder {
        FleetDetectorBuilder {
            store,
            rules: RuleSet::default(),
            config: Config {
                url: nats_url.into(),
                connection: crate::sink::nats::Connection::default(),
                stream: "SIEM_EVENTS".to_owned(),
                subject_prefix: "siem.events".to_owned(),
                consumer: "tower-siem-detect".to_owned(),
                batch: 256,
                store_timeout: Duration::from_secs(5),
            },
        }
    }

    /// The NATS server's `host:port`, without credentials.
    fn server(&self) -> String {
        crate::sink::nats::server_of(&self.config.url).unwrap_or_else(|e| e)
    }

    /// The detector's engine: its offenders, explanations and rule counters.
    pub fn siem(&self) -> &Siem {
        &self.siem
    }

    /// The detector's counters.
    pub fn stats(&self) -> DetectorStats {
        let c = &self.counters;
        DetectorStats {
            received: c.received.load(Ordering::Relaxed),
            applied: c.applied.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            acked: c.acked.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
    }

    /// Reads and judges events until `shutdown` completes (then returns `Ok`). Errors only when
    /// it cannot start (NATS unreachable, the stream or consumer cannot be set up); once
    /// running, failures are counted and retried.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), DetectError> {
        let c = &self.config;
        let server = self.server();
        let options = c
            .connection
            .options(&c.url)
            .await
            .map_err(|e| DetectError(format!("detector: {e}")))?;
        let client = options
            .name("tower-siem-detect")
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .connect(c.url.as_str())
            .await
            .map_err(|e| {
                DetectError(format!(
                    "detector: cannot connect to NATS at {server}: {}",
                    crate::sink::nats::connect_error(&e)
                ))
            })?;
        let js = jetstream::new(client);
        let stream = js
            .get_or_create_stream(jetstream::stream::Config {
                name: c.stream.clone(),
                subjects: vec![format!("{}.>", c.subject_prefix)],
                storage: jetstream::stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| DetectError(format!("detector: stream {:?}: {e}", c.stream)))?;
        let consumer: jetstream::consumer::Consumer<pull::Config> = stream
            .get_or_create_consumer(
                &c.consumer,
                pull::Config {
                    durable_name: Some(c.consumer.clone()),
                    // Acknowledging the last event of a batch acknowledges the batch.
                    ack_policy: AckPolicy::All,
                    ack_wait: Duration::from_secs(30),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| DetectError(format!("detector: consumer {:?}: {e}", c.consumer)))?;
        let seen: moka::sync::Cache<uuid::Uuid, (), ahash::RandomState> =
            moka::sync::Cache::builder()
                .max_capacity(SEEN)
                .build_with_hasher(ahash::RandomState::new());

        tokio::pin!(shutdown);
        loop {
            // One pull at a time, each ending within `PULL`: when the detector stops, no
            // pull is left at the server to swallow events meant for its successor.
            let batch = tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                b = consumer.batch().max_messages(c.batch).expires(PULL).messages() => b,
            };
            let mut batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    self.trouble(&format!("cannot read the stream: {e}")).await;
                    continue;
                }
            };
            let mut last = None;
            let mut n = 0u64;
            loop {
                // Events already on their way join the batch; when none comes within
                // `GATHER`, what was judged is acknowledged (after its decisions are written).
                let next = match tokio::time::timeout(GATHER, batch.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        if let Some(m) = last.take() {
                            self.acknowledge(&m, std::mem::take(&mut n)).await;
                        }
                        batch.next().await
                    }
                };
                match next {
                    Some(Ok(m)) => {
                        self.counters.received.fetch_add(1, Ordering::Relaxed);
                        self.judge(&m.payload, &seen);
                        n += 1;
                        last = Some(m);
                    }
                    Some(Err(e)) => {
                        self.trouble(&format!("cannot read the stream: {e}")).await;
                        break;
                    }
                    None => break,
                }
            }
            if let Some(m) = last {
                self.acknowledge(&m, n).await;
            }
        }
    }

    /// Acknowledges `n` events up to `last` once the decisions they led to are written.
    async fn acknowledge(&self, last: &jetstream::Message, n: u64) {
        if !self.store.flush(self.config.store_timeout).await {
            // Left unacknowledged: read again after `ack_wait`, and recognised by id.
            self.trouble("decisions not written to Redis in time").await;
            return;
        }
        match last.double_ack().await {
            Ok(()) => {
                self.counters.acked.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => self.trouble(&format!("cannot acknowledge: {e}")).await,
        }
    }

    /// Runs one message through the rules.
    fn judge(&self, payload: &[u8], seen: &moka::sync::Cache<uuid::Uuid, (), ahash::RandomState>) {
        let Ok(event) = serde_json::from_slice::<Event>(payload) else {
            self.counters.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if seen.contains_key(&event.id) {
            self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        seen.insert(event.id, ());
        // Events arrive as the replicas recorded them (user ids already in stored form):
        // straight to the engine, as observed.
        self.siem.engine().ingest_only(&event);
        self.counters.applied.fetch_add(1, Ordering::Relaxed);
    }

    async fn trouble(&self, what: &str) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("tower-siem detector: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl fmt::Debug for FleetDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetDetector")
            .field("server", &self.server())
            .field("connection", &self.config.connection)
            .field("stream", &self.config.stream)
            .field("consumer", &self.config.consumer)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
