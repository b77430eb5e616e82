//! The SQLite store end to end: through the layer into the file and back out through the read
//! API; an unwritable directory and a full disk cost events (every one counted), never a
//! request, and writing resumes when the problem clears.
#![cfg(feature = "sqlite")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::TestApp;
use tower_siem::pipeline::{Pipeline, PipelineConfig, RetryPolicy, SinkStats};
use tower_siem::sink::sqlite::{EventQuery, OffenderKey, SqliteStore};
use tower_siem::sink::SqliteSink;
use tower_siem::{Action, Event};

fn assert_accounting(s: &SinkStats) {
    assert_eq!(
        s.emitted,
        s.delivered + s.dropped.total() + s.buffered,
        "emitted == delivered + dropped + buffered: {s:?}"
    );
}

fn quick_config() -> PipelineConfig {
    PipelineConfig {
        retry: RetryPolicy {
            max_retries: 1,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        },
        flush_interval: Duration::from_millis(10),
        ..PipelineConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_land_in_the_store_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    // The test clock is fixed; age retention would eventually delete its events.
    let sink = SqliteSink::new(&db).with_unbounded_retention();
    let app = TestApp::with(|b| b.sink(sink), |l| l);

    let attacker = "203.0.113.50";
    for i in 0..8u32 {
        app.clock.advance(Duration::from_secs(1));
        let res = app.login(attacker, "alice", &format!("guess{i}")).await;
        assert!(res.status().is_client_error(), "{}", res.status());
    }
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(app.get("192.0.2.10", "/").await.status(), StatusCode::OK);
    let res = app.get_ua(attacker, "/", "sqlmap/1.7").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(app.siem.flush(Duration::from_secs(10)));
    let s = app.siem.stats().pipeline.sinks[0].clone();
    assert_eq!((s.delivered, s.dropped.total()), (s.emitted, 0), "{s:?}");

    let store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.count().unwrap(), s.delivered);
    store.integrity_check().unwrap();

    let failures = store
        .events(&EventQuery::new().name("auth.failure").user("alice"))
        .unwrap();
    assert_eq!(failures.len(), 8);
    assert!(failures
        .iter()
        .all(|e| e.subject.ip == Some(attacker.parse().unwrap())));
    // What was stored is the event as the layer built it, secrets redacted.
    let from_attacker = store
        .events(&EventQuery::new().ip(attacker.parse().unwrap()).limit(1000))
        .unwrap();
    let blocked = from_attacker
        .iter()
        .find(|e| e.status() == Some(403))
        .expect("the blocked request is stored");
    assert_eq!(blocked.verdict.as_ref().unwrap().action, Action::Block);
    let benign = store
        .events(&EventQuery::new().ip("192.0.2.10".parse().unwrap()))
        .unwrap();
    assert_eq!(benign.len(), 1);
    assert_eq!(benign[0].http.as_ref().unwrap().path, "/");

    let top = store
        .offenders(OffenderKey::Ip, "2026-01-01T00:00:00Z".parse().unwrap(), 5)
        .unwrap();
    assert_eq!(top.len(), 1, "{top:?}");
    assert_eq!(top[0].key, attacker);
    assert_eq!(top[0].worst, Action::Block);
    assert!(!top[0].reasons.is_empty());
}

/// A path no one can write to, not even root: its parent is a regular file.
fn blocked_path(dir: &Path) -> (PathBuf, PathBuf) {
    let blocker = dir.join("data");
    std::fs::write(&blocker, b"").unwrap();
    (blocker.clone(), blocker.join("events.db"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_directory_costs_counted_events_not_requests_and_heals() {
    let dir = tempfile::tempdir().unwrap();
    let (blocker, db) = blocked_path(dir.path());
    let sink = SqliteSink::new(&db).with_unbounded_retention();
    let app = TestApp::with(|b| b.sink(sink).pipeline(quick_config()), |l| l);

    let started = Instant::now();
    for i in 0..100u32 {
        let ip = format!("198.18.0.{}", 1 + i);
        assert_eq!(app.get(&ip, "/").await.status(), StatusCode::OK);
    }
    let serving = started.elapsed();
    assert!(app.siem.flush(Duration::from_secs(10)));
    let s = app.siem.stats().pipeline.sinks[0].clone();
    assert_accounting(&s);
    assert_eq!(s.emitted, 100, "{s:?}");
    assert_eq!(s.delivered, 0, "{s:?}");
    assert_eq!(s.dropped.sink_error, 100, "{s:?}");
    assert!(
        s.write_errors >= 2,
        "each batch failed, then its retry: {s:?}"
    );
    assert!(!db.exists());
    println!("100 requests with the store unwritable: {serving:?}");

    // The directory appears: the next batch opens the file and writing resumes.
    std::fs::remove_file(&blocker).unwrap();
    for i in 0..50u32 {
        let ip = format!("198.18.1.{}", 1 + i);
        assert_eq!(app.get(&ip, "/").await.status(), StatusCode::OK);
    }
    assert!(app.siem.flush(Duration::from_secs(10)));
    let s = app.siem.stats().pipeline.sinks[0].clone();
    assert_accounting(&s);
    assert_eq!(
        (s.emitted, s.delivered, s.dropped.sink_error),
        (150, 50, 100)
    );
    let store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.count().unwrap(), 50);
}

#[test]
fn retention_keeps_the_newest_rows_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let sink = SqliteSink::new(&db)
        .max_rows(300)
        .retention_batch(100)
        .retention_interval(Duration::from_secs(3600));
    let pipeline = Pipeline::new(vec![Box::new(sink)], PipelineConfig::default());
    let base = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    for i in 0..1000i64 {
        let at = base + jiff::SignedDuration::from_millis(i);
        pipeline.emit(Event::new("auth.failure").user("u").at(at));
    }
    assert!(pipeline.flush(Duration::from_secs(10)));
    // Retention runs on the writer thread between batches, 100 rows a step.
    let store = SqliteStore::open(&db).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.count().unwrap() > 300 {
        assert!(
            Instant::now() < deadline,
            "still {}",
            store.count().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(store.count().unwrap(), 300);
    let oldest = store
        .events(&EventQuery::new().until(base + jiff::SignedDuration::from_millis(700)))
        .unwrap();
    assert!(oldest.is_empty(), "the oldest 700 are gone");
    let s = pipeline.shutdown(Duration::from_secs(5));
    assert_eq!(s.sinks[0].delivered, 1000);
}

/// Unmounts (lazily) when dropped, so a failed assertion leaves no mount behind.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Mount {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CAP_SYS_ADMIN): {status}"
        );
        Mount(at.to_owned())
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(status.success(), "remount: {status}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
#[ignore = "needs root: mounts a 1 MiB tmpfs to fill it (CI runs it)"]
fn full_disk_costs_counted_events_and_writing_resumes_with_space() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mount = Mount::tmpfs(&mnt, "1m");
    let db = mnt.join("events.db");
    let pipeline = Pipeline::new(
        vec![Box::new(SqliteSink::new(&db).with_unbounded_retention())],
        quick_config(),
    );
    let padding = "x".repeat(2000);
    let event = |i: u64| {
        Event::new("http.request")
            .ip("198.51.100.1".parse().unwrap())
            .attr("n", i.to_string())
            .attr("pad", padding.as_str())
    };

    // Fill the disk: about 400 events of 2 KB fit in 1 MiB, so most of 2,000 fail. Batches of
    // 50, so the first ones fit.
    let mut emitting = Duration::ZERO;
    for chunk in 0..40 {
        let started = Instant::now();
        for i in chunk * 50..(chunk + 1) * 50 {
            pipeline.emit(event(i));
        }
        emitting += started.elapsed();
        assert!(pipeline.flush(Duration::from_secs(20)));
    }
    let full = pipeline.stats().sinks[0].clone();
    assert_accounting(&full);
    assert_eq!(full.emitted, 2000);
    assert!(full.dropped.sink_error > 0, "the disk filled up: {full:?}");
    assert!(full.write_errors > 0, "{full:?}");
    assert!(full.delivered > 0, "{full:?}");
    println!("2,000 emits onto a full disk took {emitting:?}; {full:?}");

    // Space returns: every later event is stored.
    mount.resize("64m");
    for i in 2000..2500 {
        pipeline.emit(event(i));
    }
    assert!(pipeline.flush(Duration::from_secs(20)));
    let after = pipeline.stats().sinks[0].clone();
    assert_accounting(&after);
    assert_eq!(after.delivered, full.delivered + 500, "{after:?}");
    assert_eq!(
        after.dropped.sink_error, full.dropped.sink_error,
        "{after:?}"
    );
    let store = SqliteStore::open(&db).unwrap();
    store.integrity_check().unwrap();
    assert_eq!(store.count().unwrap(), after.delivered);
    pipeline.shutdown(Duration::from_secs(5));
    drop(store);
}
