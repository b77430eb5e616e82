//! Sustained events/s into the SQLite store through the real pipeline with default batching
//! (512 events per batch, one transaction each), WAL, every index and the full event JSON.
//!
//! A second run uses `batch_max = 4096`, for comparison.
//!
//! Each iteration emits 100,000 fresh `http.request` events (new UUID v7 ids, so none is
//! skipped as a duplicate; built outside the timed section) and waits for `Pipeline::flush`,
//! which returns once all are committed and the WAL is checkpointed. The overflow policy is
//! `Wait`, so nothing is dropped and the figure is the store's own rate; the bench asserts
//! that every event was delivered. The file keeps growing across iterations, up to the
//! default retention bound of 1,000,000 rows, past which retention deletes as it inserts.
//!
//! After each group it prints the CPU time per event of each thread: `tower-siem-sqli` is the
//! writer (SQLite only), `tower-siem-ckpt` the checkpoints, `tower-siem-pipe` the pipeline's
//! worker (which encodes the rows), the bench's own thread building and emitting events.
//!
//! ```text
//! cargo bench --bench sqlite
//! ```

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tower_siem::event::HttpInfo;
use tower_siem::pipeline::{Overflow, Pipeline, PipelineConfig};
use tower_siem::sink::SqliteSink;
use tower_siem::{Action, Event, Verdict};

#[path = "support/proc_cpu.rs"]
mod proc_cpu;
use proc_cpu::thread_cpu;

const CHROME_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const PER_ITER: u64 = 100_000;

/// Event `i` of the mix: 20,000 clients in a scrambled order (each batch touches IP-index
/// pages all over the index, as real traffic does), a user on every tenth event.
fn request(i: u64) -> Event {
    let client = (i.wrapping_mul(7_919) % 20_000) as u32;
    let ip = IpAddr::V4(Ipv4Addr::from(0x5100_0000 + client * 7));
    let mut e = Event::new("http.request").ip(ip).user_agent(CHROME_UA);
    if i % 10 == 0 {
        e = e.user(format!("user{}", i % 5_000));
    }
    let (route, path) = match i % 4 {
        0 => ("/api/items/{id}", format!("/api/items/{}", i % 977)),
        1 => ("/login", "/login".to_owned()),
        2 => ("/", "/".to_owned()),
        _ => ("/api/search", "/api/search".to_owned()),
    };
    e.http = Some(HttpInfo {
        method: "GET".into(),
        route: Some(route.into()),
        path,
        query: (i % 4 == 3).then(|| "q=shoes&page=2".to_owned()),
        status: Some(if i % 20 == 0 { 404 } else { 200 }),
        latency_us: Some(180 + i % 400),
        bytes: Some(1024 + i % 4096),
        request_id: Some(format!("req-{i:016x}")),
        headers: vec![("accept-language".into(), "en-US,en;q=0.9".into())],
    });
    e.verdict = Some(Verdict {
        action: Action::Allow,
        score: 0.0,
        reasons: Vec::new(),
        retry_after_secs: None,
    });
    e
}

fn measure(c: &mut Criterion, name: &str, batch_max: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let pipeline = Pipeline::new(
        vec![Box::new(SqliteSink::new(dir.path().join("bench.db")))],
        PipelineConfig {
            batch_max,
            overflow: Overflow::Wait(Duration::from_secs(30)),
            ..PipelineConfig::default()
        },
    );
    let mut next = 0u64;
    let cpu_before = thread_cpu();
    let mut g = c.benchmark_group("sqlite");
    g.throughput(Throughput::Elements(PER_ITER));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(8));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let events: Vec<Event> = (next..next + PER_ITER).map(request).collect();
                next += PER_ITER;
                let start = Instant::now();
                for e in events {
                    pipeline.emit(e);
                }
                assert!(pipeline.flush(Duration::from_secs(60)), "flush timed out");
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
    // Where the CPU went, per event, over every event of this group (warm-up included): the
    // threads alive now (this group's writer, checkpointer and worker, and the bench's own),
    // less what each had used before the group started.
    let mut by_name: Vec<(String, f64)> = Vec::new();
    for (tid, thread, secs) in thread_cpu() {
        let before = cpu_before
            .iter()
            .find(|(t, _, _)| *t == tid)
            .map_or(Duration::ZERO, |e| e.2);
        let used = secs.saturating_sub(before).as_secs_f64();
        match by_name.iter_mut().find(|(n, _)| *n == thread) {
            Some(entry) => entry.1 += used,
            None => by_name.push((thread, used)),
        }
    }
    let mut line = format!("sqlite/{name}: CPU per event by thread:");
    for (thread, secs) in by_name {
        let per_event = secs * 1e6 / next.max(1) as f64;
        if per_event >= 0.05 {
            line.push_str(&format!(" {thread} {per_event:.2} µs"));
        }
    }
    // A group filtered out on the command line emitted nothing.
    if next > 0 {
        println!("{line}");
    }
    let stats = pipeline.shutdown(Duration::from_secs(10));
    let s = &stats.sinks[0];
    assert_eq!(s.delivered, s.emitted, "{s:?}");
    assert_eq!(s.dropped.total(), 0, "{s:?}");
}

fn sqlite(c: &mut Criterion) {
    measure(
        c,
        "default_batching_512",
        PipelineConfig::default().batch_max,
    );
    // For comparison: larger transactions write each hot index page to the WAL fewer times,
    // which mattered when the writer also encoded and checkpointed; now it hardly does.
    measure(c, "batch_max_4096", 4096);
}

criterion_group!(benches, sqlite);
criterion_main!(benches);
