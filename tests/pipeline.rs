//! The event pipeline: accounting, overflow, retries, isolation between sinks, flush, shutdown,
//! and the JSONL sink on a real file system.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tower_siem::event::SharedEvent;
use tower_siem::pipeline::{Overflow, Pipeline, PipelineConfig, RetryPolicy, SinkStats};
use tower_siem::sink::{BoxFuture, JsonlSink, Sink, SinkError};
use tower_siem::Event;

const LONG: Duration = Duration::from_secs(10);
/// Long enough that only an explicit wake-up (flush, batch size, shutdown) moves events.
const NEVER: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------------------------
// Test doubles

/// Collects every event it is given; optionally reports each batch's size on a channel.
#[derive(Default)]
struct Collect {
    name: &'static str,
    events: Mutex<Vec<SharedEvent>>,
    batches: Mutex<Option<mpsc::Sender<usize>>>,
}

impl Collect {
    fn named(name: &'static str) -> Arc<Self> {
        Arc::new(Collect {
            name,
            ..Collect::default()
        })
    }

    fn reporting(name: &'static str) -> (Arc<Self>, mpsc::Receiver<usize>) {
        let (tx, rx) = mpsc::channel();
        (
            Arc::new(Collect {
                name,
                batches: Mutex::new(Some(tx)),
                ..Collect::default()
            }),
            rx,
        )
    }

    fn ids(&self) -> Vec<uuid::Uuid> {
        self.events.lock().unwrap().iter().map(|e| e.id).collect()
    }

    fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    fn take(&self, batch: &[SharedEvent]) {
        self.events.lock().unwrap().extend(batch.iter().cloned());
        if let Some(tx) = self.batches.lock().unwrap().as_ref() {
            let _ = tx.send(batch.len());
        }
    }
}

impl Sink for Collect {
    fn name(&self) -> &str {
        self.name
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        self.take(batch);
        Box::pin(async { Ok(()) })
    }
}

/// Blocks every write on a semaphore the test controls; tells the test when a write starts.
struct Gate {
    gate: Arc<Semaphore>,
    entered: Mutex<mpsc::Sender<()>>,
    inner: Arc<Collect>,
    /// What it answers to `max_in_flight`.
    window: usize,
    /// Writes running now, and the most seen at once.
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Gate {
    fn new() -> (Self, Arc<Semaphore>, mpsc::Receiver<()>, Arc<Collect>) {
        let gate = Arc::new(Semaphore::new(0));
        let (tx, rx) = mpsc::channel();
        let inner = Collect::named("gate");
        (
            Gate {
                gate: gate.clone(),
                entered: Mutex::new(tx),
                inner: inner.clone(),
                window: 1,
                running: Arc::default(),
                most: Arc::default(),
            },
            gate,
            rx,
            inner,
        )
    }
}

impl Sink for Gate {
    fn name(&self) -> &str {
        "gate"
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            let _ = self.entered.lock().unwrap().send(());
            // A closed semaphore is an open gate.
            let permit = self.gate.acquire().await;
            self.inner.take(batch);
            self.running.fetch_sub(1, Ordering::SeqCst);
            // Each permit lets one write through.
            if let Ok(p) = permit {
                p.forget();
            }
            Ok(())
        })
    }

    fn max_in_flight(&self) -> usize {
        self.window
    }
}

/// Fails its first `failures` writes, then collects.
struct Flaky {
    failures: AtomicUsize,
    inner: Arc<Collect>,
}

impl Sink for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let left = self.failures.load(Ordering::SeqCst);
            if left > 0 {
                self.failures.store(left - 1, Ordering::SeqCst);
                return Err(SinkError::unavailable("try again"));
            }
            self.inner.take(batch);
            Ok(())
        })
    }
}

/// Panics on its first write (inside the future), then collects.
struct Panicky {
    panicked: AtomicBool,
    inner: Arc<Collect>,
}

impl Sink for Panicky {
    fn name(&self) -> &str {
        "panicky"
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if !self.panicked.swap(true, Ordering::SeqCst) {
                panic!("sink bug");
            }
            self.inner.take(batch);
            Ok(())
        })
    }
}

fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base: Duration::from_millis(1),
        max: Duration::from_millis(5),
    }
}

fn config() -> PipelineConfig {
    PipelineConfig {
        retry: fast_retry(5),
        ..PipelineConfig::default()
    }
}

fn balanced(s: &SinkStats) -> bool {
    s.emitted == s.delivered + s.dropped.total() + s.buffered
}

fn sink(p: &Pipeline, name: &str) -> SinkStats {
    p.stats()
        .sink(name)
        .cloned()
        .unwrap_or_else(|| panic!("no sink {name}"))
}

fn wait_entered(rx: &mpsc::Receiver<()>) {
    rx.recv_timeout(LONG)
        .expect("the sink never started a write");
}

// ---------------------------------------------------------------------------------------------
// Accounting

#[test]
fn accounting_is_exact_under_concurrent_emitters() {
    let a = Collect::named("a");
    let b = Collect::named("b");
    let p = Pipeline::new(
        vec![Box::new(a.clone()), Box::new(b.clone())],
        PipelineConfig {
            queue_capacity: 512,
            batch_max: 64,
            ..config()
        },
    );
    let done = Arc::new(AtomicBool::new(false));
    let checker = {
        let (p, done) = (p.clone(), done.clone());
        thread::spawn(move || {
            let mut snapshots = 0u64;
            let mut last = HashMap::new();
            while !done.load(Ordering::SeqCst) {
                for s in p.stats().sinks {
                    assert!(balanced(&s), "{s:?}");
                    let prev = last.insert(s.name.clone(), s.clone()).unwrap_or_default();
                    assert!(
                        s.emitted >= prev.emitted && s.delivered >= prev.delivered,
                        "{prev:?} -> {s:?}"
                    );
                }
                snapshots += 1;
            }
            snapshots
        })
    };
    let threads = 4;
    let per_thread = 5_000;
    let emitters: Vec<_> = (0..threads)
        .map(|t| {
            let p = p.clone();
            thread::spawn(move || {
                for i in 0..per_thread {
                    p.emit(
                        Event::new("http.request")
                            .attr("t", t.to_string())
                            .attr("i", i.to_string()),
                    );
                }
            })
        })
        .collect();
    for e in emitters {
        e.join().unwrap();
    }
    assert!(p.flush(LONG));
    done.store(true, Ordering::SeqCst);
    assert!(checker.join().unwrap() > 0);

    let total = (threads * per_thread) as u64;
    for (name, collected) in [("a", &a), ("b", &b)] {
        let s = sink(&p, name);
        assert!(balanced(&s), "{s:?}");
        assert_eq!(s.emitted, total);
        assert_eq!(s.buffered, 0);
        assert_eq!(s.delivered + s.dropped.queue_full, total, "{s:?}");
        assert_eq!((s.dropped.sink_error, s.dropped.shutdown), (0, 0));
        assert_eq!(s.delivered, collected.len() as u64);
        let unique: HashSet<_> = collected.ids().into_iter().collect();
        assert_eq!(
            unique.len(),
            collected.len(),
            "an event was delivered twice"
        );
    }
    let end = p.shutdown(LONG);
    assert!(end.sinks.iter().all(|s| balanced(s) && s.buffered == 0));
}

#[test]
fn full_queue_drops_the_newest_and_counts_them() {
    let (gate_sink, gate, entered, collected) = Gate::new();
    let p = Pipeline::new(
        vec![Box::new(gate_sink)],
        PipelineConfig {
            queue_capacity: 4,
            batch_max: 1,
            flush_interval: NEVER,
            ..config()
        },
    );
    let first = Event::new("first");
    let first_id = first.id;
    p.emit(first);
    wait_entered(&entered); // the worker holds `first`; the queue is empty and stalled

    let mut accepted = vec![first_id];
    for i in 0..10 {
        let e = Event::new("next").attr("i", i.to_string());
        if i < 4 {
            accepted.push(e.id);
        }
        p.emit(e);
    }
    let s = sink(&p, "gate");
    assert_eq!(
        (s.emitted, s.delivered, s.dropped.queue_full, s.buffered),
        (11, 0, 6, 5),
        "{s:?}"
    );
    assert!(balanced(&s));

    gate.close();
    assert!(p.flush(LONG));
    let s = sink(&p, "gate");
    assert_eq!(
        (s.emitted, s.delivered, s.dropped.queue_full, s.buffered),
        (11, 5, 6, 0),
        "{s:?}"
    );
    assert_eq!(collected.ids(), accepted);
}

#[test]
fn overflow_wait_blocks_then_drops_or_gets_room() {
    let (gate_sink, gate, entered, collected) = Gate::new();
    let p = Pipeline::new(
        vec![Box::new(gate_sink)],
        PipelineConfig {
            queue_capacity: 2,
            batch_max: 1,
            flush_interval: NEVER,
            overflow: Overflow::Wait(Duration::from_millis(200)),
            ..config()
        },
    );
    p.emit(Event::new("held"));
    wait_entered(&entered);
    p.emit(Event::new("queued"));
    p.emit(Event::new("queued"));
    let started = Instant::now();
    p.emit(Event::new("waits, then dropped"));
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sink(&p, "gate").dropped.queue_full, 1);

    let emitter = {
        let p = p.clone();
        thread::spawn(move || p.emit(Event::new("waits, then accepted")))
    };
    gate.close();
    emitter.join().unwrap();
    assert!(p.flush(LONG));
    let s = sink(&p, "gate");
    assert_eq!(
        (s.emitted, s.delivered, s.dropped.queue_full, s.buffered),
        (5, 4, 1, 0),
        "{s:?}"
    );
    assert_eq!(collected.len(), 4);
}

// ---------------------------------------------------------------------------------------------
// Retries and failures

#[test]
fn transient_failures_are_retried_and_delivered_exactly_once() {
    let inner = Collect::named("inner");
    let flaky = Flaky {
        failures: AtomicUsize::new(3),
        inner: inner.clone(),
    };
    let p = Pipeline::new(
        vec![Box::new(flaky)],
        PipelineConfig {
            flush_interval: NEVER,
            ..config()
        },
    );
    let events: Vec<Event> = (0..20)
        .map(|i| Event::new("auth.failure").attr("i", i.to_string()))
        .collect();
    let ids: Vec<_> = events.iter().map(|e| e.id).collect();
    for e in events {
        p.emit(e);
    }
    assert!(p.flush(LONG));
    assert_eq!(inner.ids(), ids);
    let s = sink(&p, "flaky");
    assert_eq!(
        (s.delivered, s.dropped.total(), s.buffered),
        (20, 0, 0),
        "{s:?}"
    );
    assert_eq!((s.write_errors, s.retries), (3, 3), "{s:?}");
}

#[test]
fn batches_failing_past_the_retry_limit_count_as_sink_errors() {
    let flaky = Flaky {
        failures: AtomicUsize::new(usize::MAX),
        inner: Collect::named("inner"),
    };
    let p = Pipeline::new(
        vec![Box::new(flaky)],
        PipelineConfig {
            flush_interval: NEVER,
            retry: fast_retry(2),
            ..config()
        },
    );
    for _ in 0..7 {
        p.emit(Event::new("x"));
    }
    assert!(p.flush(LONG));
    let s = sink(&p, "flaky");
    assert_eq!(
        (s.delivered, s.dropped.sink_error, s.buffered),
        (0, 7, 0),
        "{s:?}"
    );
    let batches = s.write_errors / 3;
    assert!(
        batches >= 1 && s.write_errors == batches * 3 && s.retries == batches * 2,
        "{s:?}"
    );
}

#[test]
fn a_panicking_sink_does_not_kill_the_pipeline() {
    let inner = Collect::named("inner");
    let other = Collect::named("other");
    let panicky = Panicky {
        panicked: AtomicBool::new(false),
        inner: inner.clone(),
    };
    let p = Pipeline::new(vec![Box::new(panicky), Box::new(other.clone())], config());
    for _ in 0..10 {
        p.emit(Event::new("x"));
    }
    assert!(p.flush(LONG));
    for _ in 0..5 {
        p.emit(Event::new("y"));
    }
    assert!(p.flush(LONG));
    let s = sink(&p, "panicky");
    assert_eq!(
        (s.delivered, s.write_errors, s.retries, s.dropped.total()),
        (15, 1, 1, 0),
        "{s:?}"
    );
    assert_eq!(inner.len(), 15);
    assert_eq!(other.len(), 15);
}

// ---------------------------------------------------------------------------------------------
// Isolation, flush, shutdown

#[test]
fn a_stalled_sink_does_not_delay_another() {
    let (gate_sink, gate, entered, slow) = Gate::new();
    let (fast, batches) = Collect::reporting("fast");
    let p = Pipeline::new(
        vec![Box::new(gate_sink), Box::new(fast.clone())],
        PipelineConfig {
            batch_max: 10_000,
            flush_interval: NEVER,
            ..config()
        },
    );
    for _ in 0..100 {
        p.emit(Event::new("x"));
    }
    // Nothing moves until asked: the interval is an hour and no queue reached the batch size.
    assert!(
        !p.flush(Duration::from_millis(50)),
        "the stalled sink cannot have caught up"
    );
    wait_entered(&entered);
    let mut got = 0;
    while got < 100 {
        got += batches
            .recv_timeout(LONG)
            .expect("the fast sink was held back");
    }
    assert_eq!(got, 100);
    assert_eq!(sink(&p, "fast").delivered, 100);
    assert_eq!(sink(&p, "gate").buffered, 100);
    assert_eq!(slow.len(), 0);

    gate.close();
    assert!(p.flush(LONG));
    assert_eq!(sink(&p, "gate").delivered, 100);
    assert_eq!(slow.len(), 100);
}

#[test]
fn flush_waits_for_delivery() {
    let c = Collect::named("c");
    let p = Pipeline::new(
        vec![Box::new(c.clone())],
        PipelineConfig {
            batch_max: 10_000,
            flush_interval: NEVER,
            ..config()
        },
    );
    let emitter = {
        let p = p.clone();
        thread::spawn(move || {
            let mut ids = Vec::new();
            for _ in 0..50 {
                let e = Event::new("x");
                ids.push(e.id);
                p.emit(e);
            }
            ids
        })
    };
    let ids = emitter.join().unwrap();
    assert!(p.flush(LONG));
    // No sleep: everything emitted before `flush` has landed when it returns.
    assert_eq!(c.ids(), ids);
    assert!(p.flush(LONG), "an idle flush also completes");
}

#[tokio::test(flavor = "current_thread")]
async fn works_inside_a_runtime_with_flush_async() {
    let c = Collect::named("c");
    let p = Pipeline::new(
        vec![Box::new(c.clone())],
        PipelineConfig {
            flush_interval: NEVER,
            ..config()
        },
    );
    for _ in 0..10 {
        p.emit(Event::new("x"));
    }
    assert!(p.flush_async(LONG).await);
    assert_eq!(c.len(), 10);
    let end = tokio::task::spawn_blocking(move || p.shutdown(LONG))
        .await
        .unwrap();
    assert_eq!(end.sinks[0].delivered, 10);
}

#[test]
fn shutdown_counts_what_it_could_not_deliver() {
    let (gate_sink, _gate, entered, _) = Gate::new();
    let p = Pipeline::new(
        vec![Box::new(gate_sink)],
        PipelineConfig {
            queue_capacity: 16,
            batch_max: 1,
            flush_interval: NEVER,
            ..config()
        },
    );
    p.emit(Event::new("held"));
    wait_entered(&entered);
    for _ in 0..5 {
        p.emit(Event::new("queued"));
    }
    let started = Instant::now();
    let end = p.shutdown(Duration::from_millis(100));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let s = &end.sinks[0];
    assert_eq!(
        (s.emitted, s.delivered, s.dropped.shutdown, s.buffered),
        (6, 0, 6, 0),
        "{s:?}"
    );

    p.emit(Event::new("late"));
    let s = sink(&p, "gate");
    assert_eq!(
        (s.emitted, s.dropped.shutdown, s.buffered),
        (7, 7, 0),
        "{s:?}"
    );
    assert_eq!(p.shutdown(LONG), p.stats(), "shutdown is idempotent");
    assert!(!p.flush(Duration::from_millis(10)));
}

#[test]
fn guard_flushes_on_drop() {
    let c = Collect::named("c");
    let p = Pipeline::new(
        vec![Box::new(c.clone())],
        PipelineConfig {
            flush_interval: NEVER,
            ..config()
        },
    );
    {
        let _guard = p.guard(LONG);
        for _ in 0..20 {
            p.emit(Event::new("x"));
        }
    }
    assert_eq!(c.len(), 20);
    let s = sink(&p, "c");
    assert_eq!((s.delivered, s.buffered), (20, 0));
    p.emit(Event::new("after"));
    assert_eq!(sink(&p, "c").dropped.shutdown, 1);
}

#[test]
fn dropping_the_last_handle_drains_in_the_background() {
    let (c, batches) = Collect::reporting("c");
    let p = Pipeline::new(
        vec![Box::new(c.clone())],
        PipelineConfig {
            flush_interval: NEVER,
            ..config()
        },
    );
    for _ in 0..3 {
        p.emit(Event::new("x"));
    }
    drop(p);
    let mut got = 0;
    while got < 3 {
        got += batches
            .recv_timeout(LONG)
            .expect("queued events were lost on drop");
    }
    assert_eq!(c.len(), 3);
}

#[test]
fn boxed_and_shared_sinks_plug_in() {
    let c = Collect::named("c");
    let boxed: Box<dyn Sink> = Box::new(c.clone());
    let p = Pipeline::new(vec![Box::new(boxed)], config());
    p.emit(Event::new("x"));
    assert!(p.flush(LONG));
    assert_eq!(c.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// JSONL

fn read_events(path: &std::path::Path) -> Vec<Event> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

#[test]
fn jsonl_lines_parse_back_into_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let p = Pipeline::new(vec![Box::new(JsonlSink::new(&path))], config());
    let mut ids = Vec::new();
    for i in 0..100 {
        let e = Event::new("auth.failure")
            .user(format!("user{i}"))
            .attr("i", i.to_string());
        ids.push(e.id);
        p.emit(e);
    }
    assert!(p.flush(LONG));
    let back = read_events(&path);
    assert_eq!(back.iter().map(|e| e.id).collect::<Vec<_>>(), ids);
    assert_eq!(back[7].subject.user.as_deref(), Some("user7"));
    assert_eq!(sink(&p, "jsonl").delivered, 100);
}

#[test]
fn jsonl_rotation_caps_file_count_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let max_bytes = 4096;
    let p = Pipeline::new(
        vec![Box::new(
            JsonlSink::new(&path).max_bytes(max_bytes).max_files(2),
        )],
        PipelineConfig {
            batch_max: 37,
            ..config()
        },
    );
    let mut order = HashMap::new();
    for i in 0..400 {
        let e = Event::new("http.request")
            .attr("padding", "x".repeat(i % 50))
            .attr("i", i.to_string());
        order.insert(e.id, i);
        p.emit(e);
    }
    assert!(p.flush(LONG));
    assert_eq!(sink(&p, "jsonl").delivered, 400);

    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]);
    let mut previous: Option<(usize, u64)> = None; // last index and size of the older file
    for name in ["events.jsonl.2", "events.jsonl.1", "events.jsonl"] {
        let file = dir.path().join(name);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.len() as u64 <= max_bytes,
            "{name}: {} bytes",
            text.len()
        );
        let indexes: Vec<usize> = read_events(&file).iter().map(|e| order[&e.id]).collect();
        assert!(
            indexes.windows(2).all(|w| w[0] + 1 == w[1]),
            "{name}: lines out of order"
        );
        if let Some((last, size)) = previous {
            assert_eq!(
                indexes[0],
                last + 1,
                "{name} does not continue the older file"
            );
            let first_line = text.lines().next().unwrap().len() as u64 + 1;
            assert!(
                size + first_line > max_bytes,
                "the file before {name} was rotated early"
            );
        }
        previous = Some((*indexes.last().unwrap(), text.len() as u64));
    }
    let previous_max = previous.map(|(last, _)| last);
    assert_eq!(
        previous_max,
        Some(399),
        "the newest event is in the current file"
    );
}

#[test]
fn jsonl_unwritable_path_drops_without_blocking_then_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("logs");
    std::fs::write(&blocker, b"a regular file where a directory should be").unwrap();
    let path = blocker.join("events.jsonl");
    let p = Pipeline::new(
        vec![Box::new(JsonlSink::new(&path))],
        PipelineConfig {
            retry: fast_retry(1),
            flush_interval: NEVER,
            ..config()
        },
    );
    let started = Instant::now();
    for _ in 0..5 {
        p.emit(Event::new("x"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "emit blocked: {:?}",
        started.elapsed()
    );
    assert!(p.flush(LONG));
    let s = sink(&p, "jsonl");
    assert_eq!(
        (s.delivered, s.dropped.sink_error, s.buffered),
        (0, 5, 0),
        "{s:?}"
    );
    assert!(s.write_errors >= 2 && s.retries >= 1, "{s:?}");

    std::fs::remove_file(&blocker).unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let e = Event::new("y");
        ids.push(e.id);
        p.emit(e);
    }
    assert!(p.flush(LONG));
    let s = sink(&p, "jsonl");
    assert_eq!(
        (s.delivered, s.dropped.sink_error, s.buffered),
        (3, 5, 0),
        "{s:?}"
    );
    assert_eq!(
        read_events(&path).iter().map(|e| e.id).collect::<Vec<_>>(),
        ids
    );
}

#[test]
fn jsonl_keeps_one_event_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let p = Pipeline::new(vec![Box::new(JsonlSink::new(&path))], config());
    let nasty = "a\nb\rc\u{2028}d\u{2029}e\u{85}f\u{0}g";
    p.emit(
        Event::new("x")
            .user(nasty)
            .user_agent("ua\r\n")
            .attr("k\n", nasty),
    );
    assert!(p.flush(LONG));
    let raw = std::fs::read(&path).unwrap();
    assert_eq!(raw.iter().filter(|&&b| b == b'\n' || b == b'\r').count(), 1);
    assert_eq!(raw.last(), Some(&b'\n'));
    let text = String::from_utf8(raw).unwrap();
    assert!(!text.contains(['\u{2028}', '\u{2029}', '\u{85}']), "{text}");
    let back = read_events(&path);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].subject.user.as_deref(), Some(nasty));
    assert_eq!(back[0].get_attr("k\n"), Some(nasty));
}

// ---------------------------------------------------------------------------------------------
// Batches in flight

/// A sink that asks for two batches in flight gets the next one while the first is still being
/// written, never a third, and a flush still waits for both.
#[test]
fn a_sink_with_a_window_of_two_gets_two_batches_at_once_and_flush_waits_for_both() {
    let (mut g, gate, entered, inner) = Gate::new();
    g.window = 2;
    let (running, most) = (g.running.clone(), g.most.clone());
    let p = Pipeline::new(
        vec![Box::new(g)],
        PipelineConfig {
            batch_max: 10,
            flush_interval: NEVER,
            ..config()
        },
    );
    // A full batch wakes the worker; its write starts and stays blocked.
    for _ in 0..10 {
        p.emit(Event::new("x"));
    }
    wait_entered(&entered);
    // The next full batch starts while the first is still being written.
    for _ in 0..20 {
        p.emit(Event::new("x"));
    }
    wait_entered(&entered);
    let flusher = {
        let p = p.clone();
        thread::spawn(move || p.flush(LONG))
    };
    assert_eq!(running.load(Ordering::SeqCst), 2);
    assert_eq!(inner.len(), 0);
    assert!(
        !flusher.is_finished(),
        "flush returned with two batches unwritten"
    );
    gate.add_permits(3);
    assert!(flusher.join().unwrap(), "flush gave up");
    assert_eq!(inner.len(), 30);
    assert_eq!(most.load(Ordering::SeqCst), 2, "never more than the window");
    let s = sink(&p, "gate");
    assert_eq!((s.delivered, s.buffered, s.dropped.total()), (30, 0, 0));
    assert!(balanced(&s));
}

/// By default a sink gets one batch at a time.
#[test]
fn a_sink_gets_one_batch_at_a_time_by_default() {
    let (g, gate, entered, inner) = Gate::new();
    let most = g.most.clone();
    let p = Pipeline::new(
        vec![Box::new(g)],
        PipelineConfig {
            batch_max: 10,
            flush_interval: NEVER,
            ..config()
        },
    );
    for _ in 0..30 {
        p.emit(Event::new("x"));
    }
    let flusher = {
        let p = p.clone();
        thread::spawn(move || p.flush(LONG))
    };
    for _ in 0..3 {
        wait_entered(&entered);
        gate.add_permits(1);
    }
    assert!(flusher.join().unwrap());
    assert_eq!(inner.len(), 30);
    assert_eq!(most.load(Ordering::SeqCst), 1);
}
