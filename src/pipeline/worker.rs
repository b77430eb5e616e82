//! The shared state between emitters and the worker thread, and the worker itself.
//!
//! Emitters push onto one lock-free bounded queue per sink and bump counters; the worker thread
//! runs a current-thread tokio runtime with one task per sink, so a slow sink only ever holds up
//! its own queue.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use parking_lot::{Condvar, Mutex};
use tokio::sync::{watch, Notify};

use super::spool::{Recovered, Spool};
use super::{Dropped, Overflow, PipelineConfig, SinkStats, WriteLatency, WRITE_BUCKETS};
use crate::event::{EventName, SharedEvent};
use crate::sink::{BoxFuture, Interest, Sink, SinkError};

mod spooled;

/// How long the runtime waits for abandoned blocking sink work when the worker stops.
const BLOCKING_GRACE: Duration = Duration::from_millis(50);
/// Longest pause between two tries of an emitter waiting for room (`Overflow::Wait`).
const MAX_WAIT_PAUSE: Duration = Duration::from_millis(1);

/// A point `after` from now, saturating instead of overflowing.
pub(super) fn deadline_after(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .or_else(|| now.checked_add(Duration::from_secs(30 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

#[derive(Default)]
struct Counters {
    emitted: AtomicU64,
    delivered: AtomicU64,
    queue_full: AtomicU64,
    sink_error: AtomicU64,
    shutdown: AtomicU64,
    retries: AtomicU64,
    write_errors: AtomicU64,
    spool_full: AtomicU64,
    corrupt: AtomicU64,
    recovered: AtomicU64,
    spooled: AtomicU64,
    /// Batch writes by duration: bucket `i` counts those of at most `WRITE_BUCKETS[i]`
    /// seconds (not cumulative; the last counts the rest).
    write_buckets: [AtomicU64; WRITE_BUCKETS.len() + 1],
    /// Their total duration, in microseconds.
    write_micros: AtomicU64,
}

impl Counters {
    /// Records the duration of one batch write (successful or failed).
    pub(super) fn write_took(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = WRITE_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(WRITE_BUCKETS.len());
        self.write_buckets[i].fetch_add(1, SeqCst);
        self.write_micros
            .fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), SeqCst);
    }
}

/// Times a write, whatever its outcome; a write abandoned at the shutdown deadline is not
/// recorded.
pub(super) async fn timed<F: std::future::Future>(slot: &Slot, write: F) -> F::Output {
    let started = Instant::now();
    let out = write.await;
    slot.c.write_took(started.elapsed());
    out
}

/// One sink's queue, counters and wake-up state.
pub(super) struct Slot {
    name: String,
    queue: ArrayQueue<SharedEvent>,
    notify: Notify,
    /// Set by the emitter that woke the worker; cleared by the worker when it wakes. Keeps
    /// emitters from notifying on every event while the queue stays above the batch size.
    wake_pending: AtomicBool,
    /// Highest flush generation this sink has caught up with.
    flushed: AtomicU64,
    c: Counters,
    /// The only event names this sink takes (`None`: all).
    names: Option<Box<[EventName]>>,
    /// Whether this sink writes ahead to a disk spool.
    spooled: bool,
    /// Highest persist generation whose events are all in the spool (spooled sinks only).
    persisted: AtomicU64,
}

impl Slot {
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    fn wake(&self) {
        if !self.wake_pending.load(SeqCst) && !self.wake_pending.swap(true, SeqCst) {
            self.notify.notify_one();
        }
    }

    pub(super) fn stats(&self) -> SinkStats {
        // Every event is counted in `emitted` before it can be counted as delivered or dropped,
        // so reading the outcomes first and `emitted` last keeps `buffered` from going negative
        // and makes `emitted == delivered + dropped + buffered` hold exactly.
        let delivered = self.c.delivered.load(SeqCst);
        let dropped = Dropped {
            queue_full: self.c.queue_full.load(SeqCst),
            sink_error: self.c.sink_error.load(SeqCst),
            shutdown: self.c.shutdown.load(SeqCst),
            spool_full: self.c.spool_full.load(SeqCst),
            corrupt: self.c.corrupt.load(SeqCst),
        };
        let retries = self.c.retries.load(SeqCst);
        let write_errors = self.c.write_errors.load(SeqCst);
        let emitted = self.c.emitted.load(SeqCst);
        let resolved = delivered.saturating_add(dropped.total());
        SinkStats {
            name: self.name.clone(),
            emitted: emitted.max(resolved),
            delivered,
            dropped,
            buffered: emitted.saturating_sub(resolved),
            retries,
            write_errors,
            recovered: self.c.recovered.load(SeqCst),
            spooled: self.c.spooled.load(SeqCst),
            write_seconds: WriteLatency {
                counts: self
                    .c
                    .write_buckets
                    .iter()
                    .map(|b| b.load(SeqCst))
                    .collect(),
                sum_micros: self.c.write_micros.load(SeqCst),
            },
        }
    }

    /// Whether this sink takes the event at all.
    fn wants(&self, event: &SharedEvent) -> bool {
        self.takes(&event.name)
    }

    /// Whether this sink takes events with this name.
    pub(super) fn takes(&self, name: &EventName) -> bool {
        self.names.as_ref().is_none_or(|names| names.contains(name))
    }
}

/// Wakes threads (condvar) and tasks (`Notify`) waiting for flush progress or the worker's end.
#[derive(Default)]
struct Signal {
    lock: Mutex<()>,
    cv: Condvar,
    notify: Notify,
}

impl Signal {
    fn bump(&self) {
        drop(self.lock.lock());
        self.cv.notify_all();
        self.notify.notify_waiters();
    }

    fn wait(&self, deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
        let mut guard = self.lock.lock();
        loop {
            if done() {
                return true;
            }
            if self.cv.wait_until(&mut guard, deadline).timed_out() {
                return done();
            }
        }
    }

    async fn wait_async(&self, deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
        loop {
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            if done() {
                return true;
            }
            if tokio::time::timeout_at(deadline.into(), notified)
                .await
                .is_err()
            {
                return done();
            }
        }
    }
}

/// Everything emitters, the handle and the worker share.
pub(super) struct Core {
    pub(super) sinks: Box<[Slot]>,
    config: PipelineConfig,
    /// Queue length at which an emitter wakes the worker early.
    wake_at: usize,
    closed: AtomicBool,
    finished: AtomicBool,
    flush_gen: AtomicU64,
    persist_gen: AtomicU64,
    /// Set when shutting down: drain until then.
    deadline: watch::Sender<Option<Instant>>,
    signal: Signal,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Spent events, given back by the worker once every sink is done with them, for the layer
    /// to fill its next `http.request` event in without allocating (see `Event::reuse_as`).
    /// Bounded, and only small events are kept (`Event::reusable`). A stack: the event taken
    /// next is the one given back last, whose memory is still in the cache; the oldest would
    /// have to come back from memory on the request's thread.
    spent: Mutex<Vec<SharedEvent>>,
}

/// How many spent events the pool keeps: two batches of the default size, so a delivered batch
/// fits whole (a smaller pool dropped half of each batch, and the request's thread allocated
/// those events again); at most `SPENT * 2 KiB` of buffers.
const SPENT: usize = 1024;

impl Core {
    /// Builds the shared state and starts the worker thread.
    pub(super) fn start(
        sinks: Vec<Box<dyn Sink>>,
        config: PipelineConfig,
        mut spools: Vec<Option<(Spool, Recovered)>>,
    ) -> Arc<Core> {
        spools.resize_with(sinks.len(), || None);
        let config = PipelineConfig {
            queue_capacity: config.queue_capacity.max(1),
            batch_max: config.batch_max.max(1),
            flush_interval: config.flush_interval.max(Duration::from_millis(1)),
            ..config
        };
        let slots = sinks
            .iter()
            .zip(&spools)
            .map(|(sink, spool)| new_slot(&**sink, &config, spool.as_ref().map(|s| s.1)))
            .collect();
        let core = Arc::new(Core {
            sinks: slots,
            wake_at: config.batch_max.min(config.queue_capacity),
            config,
            closed: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            flush_gen: AtomicU64::new(0),
            persist_gen: AtomicU64::new(0),
            deadline: watch::channel(None).0,
            signal: Signal::default(),
            thread: Mutex::new(None),
            spent: Mutex::new(Vec::new()),
        });
        let worker = Arc::clone(&core);
        let spawned = thread::Builder::new()
            .name("tower-siem-pipeline".into())
            .spawn(move || run(worker, sinks, spools));
        match spawned {
            Ok(handle) => *core.thread.lock() = Some(handle),
            // No thread, no delivery: every event is counted as dropped at shutdown.
            Err(_) => core.finish(),
        }
        core
    }

    /// A spent event to reuse, if the pool has one. It is not shared: `Arc::get_mut` succeeds.
    pub(super) fn take_spent(&self) -> Option<SharedEvent> {
        // Never waits: while the worker fills the pool, the request allocates instead.
        self.spent.try_lock()?.pop()
    }

    /// Empties a delivered batch: each event no other sink still holds goes to the pool (while
    /// it has room and the event is small), the rest are dropped.
    fn recycle(&self, batch: &mut Vec<SharedEvent>) {
        let mut pool = self.spent.lock();
        for mut event in batch.drain(..) {
            if pool.len() < SPENT && Arc::get_mut(&mut event).is_some_and(|e| e.reusable()) {
                pool.push(event);
            }
            // Otherwise the event is dropped here.
        }
    }

    pub(super) fn emit(&self, event: SharedEvent) {
        if self.closed.load(SeqCst) {
            for slot in self.sinks.iter().filter(|s| s.wants(&event)) {
                slot.c.emitted.fetch_add(1, SeqCst);
                slot.c.shutdown.fetch_add(1, SeqCst);
            }
            return;
        }
        for slot in self.sinks.iter() {
            if !slot.wants(&event) {
                continue;
            }
            // Counted before the push, so the worker can never resolve an uncounted event.
            slot.c.emitted.fetch_add(1, SeqCst);
            match slot.queue.push(Arc::clone(&event)) {
                Ok(()) => {
                    if slot.queue.len() >= self.wake_at {
                        slot.wake();
                    }
                }
                Err(event) => match self.config.overflow {
                    Overflow::Wait(limit) => self.push_waiting(slot, event, limit),
                    Overflow::DropNewest => {
                        slot.c.queue_full.fetch_add(1, SeqCst);
                    }
                },
            }
        }
        // Pairs with the fence in `finish`: either the worker's final sweep sees this push, or
        // this thread sees that the worker is gone and sweeps the queue itself.
        fence(SeqCst);
        if self.finished.load(SeqCst) {
            self.sweep();
        }
    }

    fn push_waiting(&self, slot: &Slot, mut event: SharedEvent, limit: Duration) {
        let until = deadline_after(limit);
        let mut pause = Duration::from_micros(20);
        loop {
            slot.wake_pending.store(true, SeqCst);
            slot.notify.notify_one();
            if self.finished.load(SeqCst) {
                slot.c.shutdown.fetch_add(1, SeqCst);
                return;
            }
            let now = Instant::now();
            if now >= until {
                slot.c.queue_full.fetch_add(1, SeqCst);
                return;
            }
            thread::sleep(pause.min(until - now));
            pause = (pause * 2).min(MAX_WAIT_PAUSE);
            match slot.queue.push(event) {
                Ok(()) => return,
                Err(back) => event = back,
            }
        }
    }

    /// Counts everything still queued as dropped at shutdown.
    pub(super) fn sweep(&self) {
        for slot in self.sinks.iter() {
            while slot.queue.pop().is_some() {
                slot.c.shutdown.fetch_add(1, SeqCst);
            }
        }
    }

    fn finish(&self) {
        self.closed.store(true, SeqCst);
        self.finished.store(true, SeqCst);
        fence(SeqCst);
        self.sweep();
        self.signal.bump();
    }

    pub(super) fn is_finished(&self) -> bool {
        self.finished.load(SeqCst)
    }

    /// Stops accepting events and asks the worker to drain until `deadline`.
    pub(super) fn close(&self, deadline: Instant) {
        self.closed.store(true, SeqCst);
        self.deadline.send_if_modified(|current| match current {
            Some(existing) if *existing <= deadline => false,
            _ => {
                *current = Some(deadline);
                true
            }
        });
        for slot in self.sinks.iter() {
            slot.notify.notify_one();
        }
    }

    fn past_deadline(&self) -> bool {
        self.deadline.borrow().is_some_and(|d| Instant::now() >= d)
    }

    /// Asks every sink task to catch up; returns the generation to wait for.
    fn request_flush(&self) -> u64 {
        let generation = self.flush_gen.fetch_add(1, SeqCst) + 1;
        for slot in self.sinks.iter() {
            slot.notify.notify_one();
        }
        generation
    }

    fn caught_up(&self, generation: u64) -> bool {
        self.sinks
            .iter()
            .all(|s| s.flushed.load(SeqCst) >= generation)
    }

    pub(super) fn flush(&self, timeout: Duration) -> bool {
        let generation = self.request_flush();
        let deadline = deadline_after(timeout);
        self.signal.wait(deadline, || {
            self.caught_up(generation) || self.is_finished()
        });
        self.caught_up(generation)
    }

    pub(super) async fn flush_async(&self, timeout: Duration) -> bool {
        let generation = self.request_flush();
        let deadline = deadline_after(timeout);
        self.signal
            .wait_async(deadline, || {
                self.caught_up(generation) || self.is_finished()
            })
            .await;
        self.caught_up(generation)
    }

    /// Closes, waits for the worker until `deadline` (plus a short grace) and joins it.
    pub(super) fn shutdown(&self, deadline: Instant, grace: Duration) {
        self.close(deadline);
        let until = deadline.checked_add(grace).unwrap_or(deadline);
        if self.signal.wait(until, || self.is_finished()) {
            if let Some(handle) = self.thread.lock().take() {
                let _ = handle.join();
            }
        } else {
            // The worker is stuck inside a sink: give up on what is still queued.
            self.sweep();
        }
    }

    /// Runs `fut` to completion, or until the shutdown deadline (`None` then).
    async fn until_deadline<F: Future>(&self, fut: F) -> Option<F::Output> {
        let mut rx = self.deadline.subscribe();
        let mut fut = pin!(fut);
        loop {
            let deadline = *rx.borrow_and_update();
            match deadline {
                Some(d) => return tokio::time::timeout_at(d.into(), fut).await.ok(),
                None => tokio::select! {
                    out = &mut fut => return Some(out),
                    changed = rx.changed() => if changed.is_err() {
                        return Some(fut.await);
                    },
                },
            }
        }
    }
}

/// One sink's slot: queue, counters, and what it was recovered with from its spool.
fn new_slot(sink: &dyn Sink, config: &PipelineConfig, recovered: Option<Recovered>) -> Slot {
    let c = Counters::default();
    if let Some(r) = recovered {
        // Events found in the spool count as emitted in this process (see `SinkStats`).
        c.emitted.store(r.records + r.corrupt, SeqCst);
        c.corrupt.store(r.corrupt, SeqCst);
        c.recovered.store(r.records, SeqCst);
        c.spooled.store(r.records, SeqCst);
    }
    Slot {
        name: sink.name().to_owned(),
        queue: ArrayQueue::new(config.queue_capacity),
        notify: Notify::new(),
        wake_pending: AtomicBool::new(false),
        flushed: AtomicU64::new(0),
        c,
        names: match sink.interest() {
            Interest::All => None,
            Interest::Names(names) => Some(names.into_boxed_slice()),
        },
        spooled: recovered.is_some(),
        persisted: AtomicU64::new(0),
    }
}

impl Core {
    /// Whether every sink is caught up: spooled sinks with persist generation `persist`, the
    /// others with flush generation `flush`.
    fn persisted_all(&self, flush: u64, persist: u64) -> bool {
        self.sinks.iter().all(|s| {
            if s.spooled {
                s.persisted.load(SeqCst) >= persist || s.flushed.load(SeqCst) >= flush
            } else {
                s.flushed.load(SeqCst) >= flush
            }
        })
    }

    /// Waits until every event emitted before the call is delivered, dropped, or synced into
    /// its sink's spool.
    pub(super) fn persist(&self, timeout: Duration) -> bool {
        // Bumped before the flush request, whose wake-up makes the sink tasks read both.
        let persist = self.persist_gen.fetch_add(1, SeqCst) + 1;
        let flush = self.request_flush();
        let deadline = deadline_after(timeout);
        self.signal.wait(deadline, || {
            self.persisted_all(flush, persist) || self.is_finished()
        });
        self.persisted_all(flush, persist)
    }
}

fn run(core: Arc<Core>, sinks: Vec<Box<dyn Sink>>, spools: Vec<Option<(Spool, Recovered)>>) {
    // I/O for network sinks (HTTP, databases, brokers), which run on this runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .enable_io()
        .build();
    if let Ok(runtime) = runtime {
        runtime.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for (index, (sink, spool)) in sinks.into_iter().zip(spools).enumerate() {
                match spool {
                    Some((spool, _)) => {
                        tasks.spawn(spooled::spooled_task(Arc::clone(&core), index, sink, spool))
                    }
                    None => tasks.spawn(sink_task(Arc::clone(&core), index, sink)),
                };
            }
            while tasks.join_next().await.is_some() {}
        });
        runtime.shutdown_timeout(BLOCKING_GRACE);
    }
    core.finish();
}

async fn sink_task(core: Arc<Core>, index: usize, sink: Box<dyn Sink>) {
    let slot = &core.sinks[index];
    let mut deadline_rx = core.deadline.subscribe();
    let batch_max = core.config.batch_max;
    let window = sink.max_in_flight().clamp(1, MAX_IN_FLIGHT);
    // Batches handed to the sink and not yet resolved (delivered or counted as dropped); each
    // gives its batch back. At most `window` of them, holding `in_flight` events.
    let mut running: Vec<BoxFuture<'_, Vec<SharedEvent>>> = Vec::with_capacity(window);
    let mut in_flight = 0usize;
    let mut spare: Vec<Vec<SharedEvent>> = Vec::new();
    let mut started = 0usize;
    loop {
        #[cfg(feature = "metrics")]
        crate::metrics::sinks(&core.sinks.iter().map(Slot::stats).collect::<Vec<_>>());
        slot.wake_pending.store(false, SeqCst);
        // Read before draining: once stopping, nothing new is accepted, so this drain is the last.
        let stopping = deadline_rx.borrow_and_update().is_some();
        let mut generation = core.flush_gen.load(SeqCst);
        // Everything queued before the flush request is within the first `owed` events; a
        // batch counts as owed until it is resolved.
        let mut owed = slot.queue.len();
        let mut out_of_time = false;
        loop {
            if owed == 0 && running.is_empty() && generation > slot.flushed.load(SeqCst) {
                flush_sink(&core, slot, &*sink, generation).await;
            }
            while !out_of_time && running.len() < window {
                let mut batch = spare.pop().unwrap_or_default();
                batch.reserve(batch_max.min(4096));
                while batch.len() < batch_max {
                    match slot.queue.pop() {
                        Some(event) => batch.push(event),
                        None => break,
                    }
                }
                if batch.is_empty() {
                    spare.push(batch);
                    break;
                }
                started = started.wrapping_add(1);
                in_flight += batch.len();
                let mut jitter = Jitter::new(index.wrapping_mul(1 << 20).wrapping_add(started));
                let (core, sink) = (&*core, &*sink);
                running.push(Box::pin(async move {
                    deliver(core, slot, sink, &batch, &mut jitter).await;
                    batch
                }));
            }
            if running.is_empty() {
                break;
            }
            // Drop nothing half-way: a running batch always ends delivered or counted. While
            // the window has room, a wake-up (a full batch queued, a flush, a close) starts the
            // next batch without waiting for a running one to finish.
            let finished = if running.len() < window && !out_of_time {
                slot.wake_pending.store(false, SeqCst);
                tokio::select! {
                    biased;
                    batch = next_done(&mut running) => Some(batch),
                    _ = slot.notify.notified() => None,
                }
            } else {
                Some(next_done(&mut running).await)
            };
            if let Some(mut batch) = finished {
                owed = owed.saturating_sub(batch.len());
                in_flight -= batch.len();
                core.recycle(&mut batch);
                spare.push(batch);
            }
            let latest = core.flush_gen.load(SeqCst);
            if latest > generation {
                generation = latest;
                owed = slot.queue.len() + in_flight;
            }
            if core.past_deadline() {
                // Finish what is running (each write stops at the deadline), start nothing new.
                out_of_time = true;
            }
        }
        if !out_of_time && (stopping || generation > slot.flushed.load(SeqCst)) {
            flush_sink(&core, slot, &*sink, generation).await;
        }
        if stopping {
            // Whatever a racing emitter still pushes is swept as dropped by `finish`.
            return;
        }
        tokio::select! {
            _ = slot.notify.notified() => {}
            _ = tokio::time::sleep(core.config.flush_interval) => {}
            _ = deadline_rx.changed() => {}
        }
    }
}

/// The most batches one sink may have in flight, whatever it asks for.
const MAX_IN_FLIGHT: usize = 8;

/// Waits for whichever running batch finishes first and takes it out of `running`.
async fn next_done<T>(running: &mut Vec<BoxFuture<'_, T>>) -> T {
    std::future::poll_fn(|cx| {
        for i in 0..running.len() {
            if let Poll::Ready(out) = running[i].as_mut().poll(cx) {
                drop(running.swap_remove(i));
                return Poll::Ready(out);
            }
        }
        Poll::Pending
    })
    .await
}

/// Writes one batch with retries; every event ends up delivered or counted as dropped.
async fn deliver(
    core: &Core,
    slot: &Slot,
    sink: &dyn Sink,
    batch: &[SharedEvent],
    jitter: &mut Jitter,
) {
    let n = batch.len() as u64;
    let retry = &core.config.retry;
    let mut attempt = 0u32;
    loop {
        let write = timed(slot, guarded(|| sink.write(batch)));
        #[cfg(feature = "metrics")]
        let write = crate::metrics::timed(
            &slot.name,
            crate::metrics::position(&core.sinks, slot),
            write,
        );
        let error = match core.until_deadline(write).await {
            None => {
                slot.c.shutdown.fetch_add(n, SeqCst);
                return;
            }
            Some(Ok(())) => {
                slot.c.delivered.fetch_add(n, SeqCst);
                return;
            }
            Some(Err(error)) => error,
        };
        slot.c.write_errors.fetch_add(1, SeqCst);
        if attempt >= retry.max_retries {
            slot.c.sink_error.fetch_add(n, SeqCst);
            tracing::warn!(
                target: "tower_siem::pipeline",
                sink = %slot.name,
                events = n,
                attempts = attempt + 1,
                %error,
                "sink write failed; batch dropped"
            );
            return;
        }
        attempt += 1;
        let delay = retry.delay(attempt, jitter.next());
        if core
            .until_deadline(tokio::time::sleep(delay))
            .await
            .is_none()
        {
            slot.c.shutdown.fetch_add(n, SeqCst);
            return;
        }
        slot.c.retries.fetch_add(1, SeqCst);
    }
}

/// Flushes the sink, then records that it caught up with `generation`.
async fn flush_sink(core: &Core, slot: &Slot, sink: &dyn Sink, generation: u64) {
    if let Some(Err(_)) = core.until_deadline(guarded(|| sink.flush())).await {
        slot.c.write_errors.fetch_add(1, SeqCst);
    }
    #[cfg(feature = "metrics")]
    crate::metrics::sinks(&core.sinks.iter().map(Slot::stats).collect::<Vec<_>>());
    slot.flushed.fetch_max(generation, SeqCst);
    core.signal.bump();
}

/// Calls a sink method so that a panic, in the call or while polling, becomes an error.
fn guarded<'a, T>(call: impl FnOnce() -> BoxFuture<'a, Result<T, SinkError>>) -> CatchPanic<'a, T> {
    CatchPanic {
        inner: catch_unwind(AssertUnwindSafe(call)).ok(),
    }
}

struct CatchPanic<'a, T> {
    inner: Option<BoxFuture<'a, Result<T, SinkError>>>,
}

impl<T> Future for CatchPanic<'_, T> {
    type Output = Result<T, SinkError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(fut) = self.inner.as_mut() else {
            return Poll::Ready(Err(SinkError::other("sink panicked")));
        };
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(_) => {
                self.inner = None;
                Poll::Ready(Err(SinkError::other("sink panicked")))
            }
        }
    }
}

/// A small xorshift generator for backoff jitter; not for anything secret.
struct Jitter(u64);

impl Jitter {
    fn new(salt: usize) -> Self {
        Jitter(RandomState::new().hash_one(salt) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_varies() {
        let mut j = Jitter::new(0);
        let a = j.next();
        let b = j.next();
        assert_ne!(a, b);
        assert_ne!(a, 0);
    }

    #[tokio::test]
    async fn panics_become_errors() {
        struct Boom;
        impl Sink for Boom {
            fn name(&self) -> &str {
                "boom"
            }
            fn write<'a>(&'a self, _: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
                panic!("in the call")
            }
            fn flush(&self) -> BoxFuture<'_, Result<(), SinkError>> {
                Box::pin(async { panic!("while polling") })
            }
        }
        assert!(guarded(|| Boom.write(&[])).await.is_err());
        assert!(guarded(|| Boom.flush()).await.is_err());
    }
}
