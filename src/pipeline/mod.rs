//! Delivery of events to sinks, off the request path.
//!
//! The [`Pipeline`] is the event pipeline in miniature, after `tracing-appender`'s
//! `non_blocking` writer: a bounded queue per sink, lossy by default with every loss counted,
//! and a `#[must_use]` [`FlushGuard`] that flushes on drop.
//!
//! - **The request path never waits.** [`Pipeline::emit`] wraps the event in an `Arc` once and
//!   pushes it onto each sink's lock-free bounded queue. It takes no lock and makes no system
//!   call in the common case: the worker is woken only when a queue reaches the batch size, and
//!   otherwise wakes on its own every [`flush_interval`](PipelineConfig::flush_interval).
//! - **One worker thread.** `Pipeline::new` starts one OS thread, `tower-siem-pipeline`, running a
//!   current-thread tokio runtime with one task per sink, so a slow sink holds back only its own
//!   queue. It works the same whether or not the caller runs inside a tokio runtime.
//! - **Batching and retries.** Each task writes batches of up to
//!   [`batch_max`](PipelineConfig::batch_max) events; a failed batch is retried with exponential
//!   backoff and jitter ([`RetryPolicy`]), then dropped and counted. A sink that panics counts
//!   as a failed write; it does not take the worker down.
//! - **Exact accounting.** For every sink, at every [`Pipeline::stats`] call,
//!   `emitted == delivered + dropped.total() + buffered`, with drops split by reason
//!   ([`Dropped`]).
//! - **Flush and shutdown.** [`Pipeline::flush`] waits until everything emitted before it is
//!   delivered (or dropped after its retries); [`Pipeline::shutdown`] stops accepting, drains
//!   until a deadline and counts the rest as dropped at shutdown.
//!
//! - **Disk spool (opt-in).** With [`PipelineConfig::spool`], a sink's events are written ahead
//!   to a size-capped log on disk by the worker (never by the request), so a sink outage within
//!   the spool's size, and a process restart, lose nothing. See [`spool`].
//! - **Alerts only.** A sink may take only some events ([`Sink::interest`]); an alert sink
//!   takes the engine's `siem.alert` events and is not counted for the others.
//!
//! Detection state never goes through here: only delivery to sinks may be lossy.
//!
//! # Restarts and accounting
//!
//! Counters start at zero in every process. Events found in a spool when the pipeline starts
//! count as emitted in the new process (and as [`SinkStats::recovered`]), so the identity
//! `emitted == delivered + dropped.total() + buffered` holds within each process lifetime; an
//! event delivered after a restart is counted once, by the process that delivered it. After
//! [`Pipeline::shutdown`], events left in a spool stay `buffered` (and [`SinkStats::spooled`]):
//! they are delivered by the next start, not lost.

mod feed;
pub mod spool;
mod worker;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use self::spool::SpoolConfig;
use self::worker::{deadline_after, Core};
use crate::event::{Event, SharedEvent};
use crate::sink::Sink;

pub use self::feed::{FeedItem, Subscription, FEED_CAPACITY, MAX_FEED_SUBSCRIBERS};

/// How long the worker keeps draining after the last handle is dropped without a shutdown.
const DROP_DRAIN: Duration = Duration::from_secs(5);
/// Extra time `shutdown` gives the worker past its deadline to flush and stop its runtime.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(250);

/// What [`Pipeline::emit`] does when a sink's queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// Drop the event for that sink, counted as `dropped.queue_full`. Never blocks.
    #[default]
    DropNewest,
    /// Block the emitting thread up to this long for room, then drop (counted as
    /// `dropped.queue_full`).
    ///
    /// # Deployment caveat
    ///
    /// This makes a request wait on a slow sink, which is what the pipeline otherwise
    /// prevents; inside an async handler it also blocks a runtime worker thread.
    Wait(Duration),
}

/// How failed batch writes are retried.
///
/// The delay before retry `n` (from 1) is `min(max, base * 2^(n-1))`, of which a random half is
/// taken off ("equal jitter"), so sinks failing together do not retry in lockstep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt before the batch is dropped (default 5).
    pub max_retries: u32,
    /// Delay before the first retry (default 50 ms).
    pub base: Duration,
    /// Longest delay between two attempts (default 5 s).
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base: Duration::from_millis(50),
            max: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries: a failed batch is dropped at once.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// The delay before retry `attempt` (from 1), given a random number for the jitter.
    fn delay(&self, attempt: u32, random: u64) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let cap = self.base.saturating_mul(factor).min(self.max);
        let half = cap / 2;
        let spread = u64::try_from((cap - half).as_nanos()).unwrap_or(u64::MAX);
        half.saturating_add(Duration::from_nanos(random % spread.saturating_add(1)))
    }
}

/// Settings of a [`Pipeline`].
///
/// ```
/// use std::time::Duration;
/// use tower_siem::pipeline::{Overflow, PipelineConfig};
///
/// let config = PipelineConfig {
///     queue_capacity: 10_000,
///     flush_interval: Duration::from_millis(250),
///     overflow: Overflow::DropNewest,
///     ..PipelineConfig::default()
/// };
/// assert_eq!(config.batch_max, 512);
/// ```
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Events each sink's queue holds (default 65 536; at least 1).
    pub queue_capacity: usize,
    /// Most events per write (default 512; at least 1). A queue this long wakes the worker.
    pub batch_max: usize,
    /// How often the worker looks at a queue that has not reached `batch_max` (default 100 ms;
    /// at least 1 ms).
    pub flush_interval: Duration,
    /// Retries of failed writes.
    pub retry: RetryPolicy,
    /// What to do when a queue is full.
    pub overflow: Overflow,
    /// Write ahead to a disk spool, for all sinks or some (default: none).
    pub spool: Option<SpoolConfig>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            queue_capacity: 65_536,
            batch_max: 512,
            flush_interval: Duration::from_millis(100),
            retry: RetryPolicy::default(),
            overflow: Overflow::default(),
            spool: None,
        }
    }
}

/// Counters of a pipeline, one entry per sink, in the order the sinks were given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PipelineStats {
    /// Per-sink counters.
    pub sinks: Vec<SinkStats>,
}

impl PipelineStats {
    /// The counters of the first sink with this name.
    pub fn sink(&self, name: &str) -> Option<&SinkStats> {
        self.sinks.iter().find(|s| s.name == name)
    }
}

/// Counters of one sink. `emitted == delivered + dropped.total() + buffered`, always.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SinkStats {
    /// The sink's [`name`](Sink::name).
    pub name: String,
    /// Events handed to this sink's queue (or dropped trying).
    pub emitted: u64,
    /// Events the sink acknowledged.
    pub delivered: u64,
    /// Events lost, by reason.
    pub dropped: Dropped,
    /// Events queued or being written.
    pub buffered: u64,
    /// Write attempts after a failure.
    pub retries: u64,
    /// Failed writes and flushes (each attempt counts once), and failed spool writes.
    pub write_errors: u64,
    /// Events found in the spool when the pipeline started (included in `emitted`).
    pub recovered: u64,
    /// Events in the spool, not yet delivered (included in `buffered`).
    pub spooled: u64,
    /// How long its batch writes took.
    pub write_seconds: WriteLatency,
}

/// Upper bounds (seconds) of the buckets of [`WriteLatency`]: 100 µs to 5 s.
pub const WRITE_BUCKETS: [f64; 10] = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// Durations of a sink's batch writes, successful or failed (a write abandoned at the
/// shutdown deadline is not counted).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WriteLatency {
    /// Writes by duration: `counts[i]` took at most [`WRITE_BUCKETS`]`[i]` seconds and more
    /// than the bucket before; the last entry counts those over 5 s. Not cumulative.
    pub counts: Vec<u64>,
    /// Their total duration, in microseconds.
    pub sum_micros: u64,
}

impl WriteLatency {
    /// Writes timed.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Events lost, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// The sink's queue was full (see [`Overflow`]).
    pub queue_full: u64,
    /// The sink kept failing past [`RetryPolicy::max_retries`].
    pub sink_error: u64,
    /// Still undelivered at the shutdown deadline, or emitted after shutdown. (With a spool,
    /// what reached the spool is not dropped at shutdown: it stays there for the next start.)
    pub shutdown: u64,
    /// The sink's spool was at its size cap ([`SpoolConfig::max_bytes`]).
    pub spool_full: u64,
    /// Unreadable in the spool (damaged on disk); each damaged region counts once.
    pub corrupt: u64,
}

impl Dropped {
    /// Each cause with its count, named as the metrics' `reason` label.
    pub fn by_reason(&self) -> [(&'static str, u64); 5] {
        [
            ("queue_full", self.queue_full),
            ("sink_error", self.sink_error),
            ("shutdown", self.shutdown),
            ("spool_full", self.spool_full),
            ("corrupt", self.corrupt),
        ]
    }

    /// All drops together.
    pub fn total(&self) -> u64 {
        self.queue_full
            .saturating_add(self.sink_error)
            .saturating_add(self.shutdown)
            .saturating_add(self.spool_full)
            .saturating_add(self.corrupt)
    }
}

/// The last user handle: dropping it starts a best-effort drain of what is queued.
struct Handle {
    core: Arc<Core>,
    feed: Arc<feed::Feed>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // No join here: drop may run on an async thread. `guard` or `shutdown` wait properly.
        self.core.close(deadline_after(DROP_DRAIN));
    }
}

/// The bounded, non-blocking event pipeline. Cheap to clone (an `Arc` inside).
///
/// ```
/// use std::time::Duration;
/// use tower_siem::pipeline::{Pipeline, PipelineConfig};
/// use tower_siem::sink::{JsonlSink, TracingSink};
/// use tower_siem::Event;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("events.jsonl");
/// let pipeline = Pipeline::new(
///     vec![Box::new(JsonlSink::new(&path)), Box::new(TracingSink::new())],
///     PipelineConfig::default(),
/// );
/// // Flushes (within 5 s) when `main` returns, however it returns.
/// let _guard = pipeline.guard(Duration::from_secs(5));
///
/// pipeline.emit(Event::new("auth.failure").user("alice"));
///
/// assert!(pipeline.flush(Duration::from_secs(5)));
/// let jsonl = pipeline.stats().sink("jsonl").cloned().unwrap();
/// assert_eq!((jsonl.emitted, jsonl.delivered, jsonl.buffered), (1, 1, 0));
/// assert_eq!(std::fs::read_to_string(&path)?.lines().count(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Pipeline {
    handle: Option<Arc<Handle>>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sinks: Vec<&str> = match &self.handle {
            Some(h) => h.core.sinks.iter().map(|s| s.name()).collect(),
            None => Vec::new(),
        };
        f.debug_struct("Pipeline")
            .field("enabled", &self.is_enabled())
            .field("sinks", &sinks)
            .finish()
    }
}

impl Default for Pipeline {
    /// A [disabled](Pipeline::disabled) pipeline.
    fn default() -> Self {
        Pipeline::disabled()
    }
}

impl Pipeline {
    /// Starts a pipeline delivering to `sinks`, with its worker thread.
    ///
    /// With no sinks this is [`Pipeline::disabled`]. Out-of-range settings are clamped
    /// (a zero capacity becomes 1, …), so this never panics. If the OS refuses the thread,
    /// every event is counted as `dropped.shutdown`. A sink whose spool cannot be opened runs
    /// without one (logged as an error); use [`try_new`](Self::try_new) to refuse that instead.
    pub fn new(sinks: Vec<Box<dyn Sink>>, config: PipelineConfig) -> Self {
        let spools = match &config.spool {
            Some(spool) => spool::open_all(spool, &sinks)
                .into_iter()
                .map(|opened| {
                    opened.unwrap_or_else(|error| {
                        tracing::error!(
                            target: "tower_siem::pipeline",
                            %error,
                            "spool unusable; the sink runs without it"
                        );
                        None
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        Pipeline::start(sinks, config, spools)
    }

    /// [`Pipeline::new`], but a spool that cannot be opened is an error.
    ///
    /// Opening a spool reads it whole (to find a torn tail and count what is left), so this
    /// takes about as long as reading [`SpoolConfig::max_bytes`] per sink, at worst.
    ///
    /// # Errors
    ///
    /// A spool directory or file cannot be created, read or written.
    pub fn try_new(sinks: Vec<Box<dyn Sink>>, config: PipelineConfig) -> std::io::Result<Self> {
        let spools = match &config.spool {
            Some(spool) => spool::open_all(spool, &sinks)
                .into_iter()
                .collect::<std::io::Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        Ok(Pipeline::start(sinks, config, spools))
    }

    fn start(
        sinks: Vec<Box<dyn Sink>>,
        config: PipelineConfig,
        spools: Vec<Option<(spool::Spool, spool::Recovered)>>,
    ) -> Self {
        if sinks.is_empty() {
            return Pipeline::disabled();
        }
        Pipeline {
            handle: Some(Arc::new(Handle {
                core: Core::start(sinks, config, spools),
                feed: Arc::new(feed::Feed::new()),
            })),
        }
    }

    /// A pipeline with no sinks and no thread: `emit` does nothing and counts nothing.
    pub fn disabled() -> Self {
        Pipeline { handle: None }
    }

    /// Whether events go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.handle.is_some()
    }

    /// Whether any sink takes events with this name (see [`Sink::interest`]).
    ///
    /// ```
    /// use tower_siem::pipeline::{Pipeline, PipelineConfig};
    /// use tower_siem::sink::TracingSink;
    /// use tower_siem::EventName;
    ///
    /// let p = Pipeline::new(vec![Box::new(TracingSink::new())], PipelineConfig::default());
    /// assert!(p.takes(&EventName::HTTP_REQUEST));
    /// assert!(!Pipeline::disabled().takes(&EventName::SIEM_ALERT));
    /// ```
    pub fn takes(&self, name: &crate::EventName) -> bool {
        self.core()
            .is_some_and(|core| core.sinks.iter().any(|s| s.takes(name)))
    }

    fn core(&self) -> Option<&Core> {
        self.handle.as_deref().map(|h| &*h.core)
    }

    /// Hands an event to every sink. Never blocks (unless [`Overflow::Wait`] is configured) and
    /// never fails: a full queue or a closed pipeline counts the event as dropped.
    pub fn emit(&self, event: Event) {
        if let Some(h) = self.handle.as_deref() {
            let event = Arc::new(event);
            h.feed.publish(&event);
            h.core.emit(event);
        }
    }

    /// Like [`emit`](Self::emit), for an event already behind an `Arc` (one from
    /// [`take_spent`](Self::take_spent)).
    pub(crate) fn emit_shared(&self, event: SharedEvent) {
        if let Some(h) = self.handle.as_deref() {
            h.feed.publish(&event);
            h.core.emit(event);
        }
    }

    /// Subscribes to every event emitted from now on, as the sinks get it (redacted, when
    /// emitted through a [`Siem`](crate::Siem)). `None` when the pipeline is disabled or
    /// [`MAX_FEED_SUBSCRIBERS`] are subscribed already. Costs nothing while nobody is.
    pub fn subscribe(&self) -> Option<Subscription> {
        self.handle.as_deref().and_then(|h| h.feed.subscribe())
    }

    /// A spent event from the pool, unshared, for `Event::reuse_as`; `None` when the pool is
    /// empty or the pipeline is disabled.
    pub(crate) fn take_spent(&self) -> Option<SharedEvent> {
        self.core().and_then(Core::take_spent)
    }

    /// The counters, one entry per sink. Exact: `emitted == delivered + dropped.total() +
    /// buffered` holds for every sink in every snapshot.
    pub fn stats(&self) -> PipelineStats {
        match self.core() {
            Some(core) => PipelineStats {
                sinks: core.sinks.iter().map(|s| s.stats()).collect(),
            },
            None => PipelineStats::default(),
        }
    }

    /// Delivers everything emitted before this call, then flushes the sinks
    /// ([`Sink::flush`]), or gives up at `timeout`.
    ///
    /// Returns `true` when every sink caught up: each event emitted before the call was either
    /// delivered or dropped after its retries (see [`stats`](Self::stats)). Returns `true` at
    /// once for a disabled pipeline and `false` once the pipeline is shut down.
    ///
    /// For a spooled sink, caught up means delivered: while its sink is down this returns
    /// `false` at `timeout` even though nothing is at risk; [`persist`](Self::persist) waits
    /// only for the spool.
    ///
    /// Blocks the calling thread. Inside a tokio runtime that is fine on a multi-thread runtime
    /// (it only ties up one worker), but on a current-thread runtime it stalls every other task
    /// until it returns: use [`flush_async`](Self::flush_async) there.
    pub fn flush(&self, timeout: Duration) -> bool {
        match self.core() {
            Some(core) => core.flush(timeout),
            None => true,
        }
    }

    /// Waits until every event emitted before this call is delivered, dropped, or written and
    /// synced (`fdatasync`) into its sink's spool, or gives up at `timeout`. For a sink without
    /// a spool this is [`flush`](Self::flush). Returns whether every sink got there.
    ///
    /// After `true`, a crash of the process loses none of those events: the next start
    /// delivers them from the spool. Blocks the calling thread, like `flush`.
    pub fn persist(&self, timeout: Duration) -> bool {
        match self.core() {
            Some(core) => core.persist(timeout),
            None => true,
        }
    }

    /// [`flush`](Self::flush) for async code.
    ///
    /// # Panics
    ///
    /// When not called from a tokio runtime with time enabled (it uses a tokio timer).
    pub async fn flush_async(&self, timeout: Duration) -> bool {
        match self.core() {
            Some(core) => core.flush_async(timeout).await,
            None => true,
        }
    }

    /// Stops accepting events, delivers what is queued until `deadline` from now, counts what
    /// could not be delivered as `dropped.shutdown`, and joins the worker thread. Returns the
    /// final counters. Idempotent: later calls just return the counters.
    ///
    /// Events emitted afterwards (through any clone) are counted as `dropped.shutdown`. Blocks
    /// the calling thread up to `deadline` plus a short grace; if a sink is stuck in blocking
    /// code past that, the thread is left to finish on its own.
    pub fn shutdown(&self, deadline: Duration) -> PipelineStats {
        if let Some(core) = self.core() {
            let until: Instant = deadline_after(deadline);
            core.shutdown(until, SHUTDOWN_GRACE);
        }
        self.stats()
    }

    /// A guard that calls [`shutdown(deadline)`](Self::shutdown) when dropped: keep it alive
    /// in `main` so events are flushed on the way out, even on an early return.
    ///
    /// Dropping the last `Pipeline` handle without a shutdown also drains what is queued, but
    /// in the background, with nothing waiting for it.
    pub fn guard(&self, deadline: Duration) -> FlushGuard {
        FlushGuard {
            pipeline: self.clone(),
            deadline,
        }
    }
}

/// Shuts the pipeline down, flushing what it can, when dropped. See [`Pipeline::guard`].
#[must_use = "the pipeline is shut down when the guard is dropped; bind it to a named variable"]
pub struct FlushGuard {
    pipeline: Pipeline,
    deadline: Duration,
}

impl fmt::Debug for FlushGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlushGuard")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.pipeline.shutdown(self.deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let policy = RetryPolicy {
            max_retries: 10,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let d1 = policy.delay(1, 0);
        assert_eq!(d1, Duration::from_millis(50));
        assert!(policy.delay(1, u64::MAX) <= Duration::from_millis(100));
        assert!(policy.delay(2, 7) >= Duration::from_millis(100));
        for attempt in [5, 31, 32, 1000, u32::MAX] {
            let d = policy.delay(attempt, 12345);
            assert!(
                d >= Duration::from_millis(500) && d <= Duration::from_secs(1),
                "{d:?}"
            );
        }
        let huge = RetryPolicy {
            max_retries: 1,
            base: Duration::MAX,
            max: Duration::MAX,
        };
        let _ = huge.delay(u32::MAX, u64::MAX);
        let zero = RetryPolicy {
            max_retries: 1,
            base: Duration::ZERO,
            max: Duration::ZERO,
        };
        assert_eq!(zero.delay(3, 99), Duration::ZERO);
    }

    #[test]
    fn disabled_pipeline_counts_nothing() {
        let p = Pipeline::disabled();
        assert!(!p.is_enabled());
        p.emit(Event::new("x"));
        assert_eq!(p.stats(), PipelineStats::default());
        assert!(p.flush(Duration::ZERO));
        assert_eq!(p.shutdown(Duration::ZERO), PipelineStats::default());
        assert!(!Pipeline::new(Vec::new(), PipelineConfig::default()).is_enabled());
    }

    #[test]
    fn a_delivered_batch_of_the_default_size_goes_back_to_the_pool_whole() {
        let dir = tempfile::tempdir().unwrap();
        let sink = crate::sink::JsonlSink::new(dir.path().join("events.jsonl"));
        let p = Pipeline::new(vec![Box::new(sink)], PipelineConfig::default());
        let batch = PipelineConfig::default().batch_max;
        for round in 0..2 {
            for _ in 0..batch {
                // The layer's way: a spent event when there is one, else a fresh one.
                let mut e = p.take_spent().unwrap_or_else(|| Arc::new(Event::new("x")));
                let name = crate::event::EventName::HTTP_REQUEST;
                Arc::make_mut(&mut e).reuse_as(name, jiff::Timestamp::now());
                p.emit_shared(e);
            }
            assert!(p.flush(Duration::from_secs(30)));
            // Every event of the batch came back, unshared, so the next `batch` requests of
            // the layer allocate none.
            let mut back = Vec::new();
            while let Some(mut e) = p.take_spent() {
                assert!(Arc::get_mut(&mut e).is_some());
                back.push(e);
            }
            assert_eq!(back.len(), batch, "round {round}");
            for e in back {
                p.emit_shared(e);
            }
            assert!(p.flush(Duration::from_secs(30)));
        }
        let stats = p.shutdown(Duration::from_secs(5));
        assert_eq!(stats.sinks[0].delivered, 4 * batch as u64);
    }

    #[test]
    fn handles_are_send_sync() {
        fn check<T: Send + Sync + Clone + fmt::Debug>() {}
        check::<Pipeline>();
        fn send<T: Send>() {}
        send::<FlushGuard>();
    }
}
